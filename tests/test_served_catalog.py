"""The catalog over HTTP, at the level of its requests: idempotency keys, group commit,
the codec's refusals and the client's errors — against a real `nbripple serve`.

(The catalog contract itself runs against the served catalog in
``test_catalog_contract.py``; the run and watcher tests run on served homes too.)
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.catalog.served import ServedCatalog
from nbripple.catalog.served.codec import CodecError, dumps, loads
from nbripple.errors import ServerUnavailable
from nbripple.model import ArtifactDecl, Execution, NewVersion
from nbripple.refs import Query
from nbripple.service.feed import ChangeFeed
from nbripple.service.serving import DUCKDB_THREADS, release, serving_workspace
from serving import Server, start_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    home.mkdir()
    running = start_server(home, "--no-watch")
    yield running
    assert running.stop() == 0


def new(name: str = "counter", value: str = "1") -> NewVersion:
    return NewVersion(artifact=ArtifactDecl(name=name), partitions={}, time_partition=None,
                      kind="value", python_type="builtins.str", content_hash=uuid.uuid4().hex,
                      size=len(value), uri=None, inline_value=value)


def call(server: Server, method: str, args: list[Any], key: str | None = None,
         **kwargs: Any) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    with server.client() as client:
        return client.post(f"catalog/{method}", headers=headers,
                           content=dumps({"args": args, "kwargs": kwargs}))


def test_a_commit_repeated_with_its_key_is_answered_again_not_committed_again(
        server: Server) -> None:
    key = uuid.uuid4().hex
    first = call(server, "commit", [None, [new(value="a")]], key)
    again = call(server, "commit", [None, [new(value="a")]], key)
    assert first.status_code == again.status_code == 200
    assert loads(first.content)["result"] == loads(again.content)["result"]
    assert [v.version for v in loads(first.content)["result"]] == [1]
    other = call(server, "commit", [None, [new(value="b")]], uuid.uuid4().hex)
    assert [v.version for v in loads(other.content)["result"]] == [2]
    catalog = ServedCatalog(server.url, server.token)
    assert [v.inline_value for v in reversed(catalog.list_versions("counter"))] == ["a", "b"]


def test_a_key_used_for_another_method_is_refused_and_writes_nothing(server: Server) -> None:
    key = uuid.uuid4().hex
    assert call(server, "commit", [None, [new()]], key).status_code == 200
    execution = Execution(
        id="e1", kind="external", status="running", notebook=None, notebook_hash=None,
        parameters={}, requested=None, cwd="/", started_at=ServedCatalog(
            server.url, server.token).now(), finished_at=None, error=None,
        output_notebook_hash=None, pid=1, host="h", trigger=None, trigger_artifact=None,
        trigger_version=None, parent_id=None, chain_depth=0, label=None)
    answer = call(server, "create_execution", [execution], key)
    assert answer.status_code == 400
    assert answer.json()["error"] == "ValueError" and "new key" in answer.json()["message"]
    assert ServedCatalog(server.url, server.token).get_execution("e1") is None


def test_concurrent_commits_are_grouped_and_each_is_numbered_once(server: Server) -> None:
    catalog = ServedCatalog(server.url, server.token)
    results: list[int] = []
    lock = threading.Lock()

    def commit_many(worker: int) -> None:
        mine = ServedCatalog(server.url, server.token)
        for i in range(25):
            (version,) = mine.commit(None, [new(value=f"{worker}-{i}")])
            with lock:
                results.append(version.version)

    threads = [threading.Thread(target=commit_many, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == list(range(1, 201))
    values = [v.inline_value for v in catalog.list_versions("counter")]
    assert sorted(values) == sorted(f"{w}-{i}" for w in range(8) for i in range(25))
    assert catalog.last_event_seq() == 200


def test_a_bad_commit_in_a_group_fails_alone(server: Server) -> None:
    good: list[int] = []
    bad: list[httpx.Response] = []

    def commit(i: int) -> None:
        item = new(value=str(i))
        if i == 3:  # a size that is not a number: the database refuses the row
            payload = json.loads(dumps({"args": [None, [item]], "kwargs": {}}))
            payload["args"][1][0]["fields"]["size"] = "not a number"
            with server.client() as client:
                bad.append(client.post("catalog/commit", content=json.dumps(payload),
                                       headers={"Idempotency-Key": uuid.uuid4().hex}))
            return
        (version,) = ServedCatalog(server.url, server.token).commit(None, [item])
        good.append(version.version)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(good) == list(range(1, 8))
    assert bad[0].status_code in (400, 500) and "Traceback" not in bad[0].text


@pytest.mark.parametrize("payload", [
    '{"args": [{"$type": "os.system", "fields": {}}], "kwargs": {}}',
    '{"args": [{"$type": "Query", "fields": {"name": "x", "__class__": 1}}], "kwargs": {}}',
    '{"args": [{"$dt": "yesterday"}], "kwargs": {}}',
    '{"args": "x"}',
    '{"args": [], "kwargs": {}, "extra": 1}',
    "not json",
])
def test_a_body_that_is_not_a_catalog_call_is_a_400_and_runs_nothing(
        server: Server, payload: str) -> None:
    with server.client() as client:
        answer = client.post("catalog/find_version", content=payload)
    assert answer.status_code == 400
    assert answer.json()["error"] in ("BadRequest", "TypeError")
    assert "\n" not in answer.json()["message"]


def test_unknown_methods_and_private_attributes_are_not_callable(server: Server) -> None:
    for method in ("connection", "transaction", "close", "idempotent", "backup",
                   "forget_requests", "Commit"):
        answer = call(server, method, [])
        assert answer.status_code == 404, method
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.post("catalog/commit", content=b"{}").status_code == 401


def test_errors_come_back_as_the_exceptions_they_were(server: Server) -> None:
    catalog = ServedCatalog(server.url, server.token)
    with pytest.raises(KeyError):
        catalog.set_plan_active("no-such-plan", True)
    with pytest.raises(ValueError, match="field"):
        catalog.update_execution("nothing", no_such_field=1)
    assert catalog.find_version(Query("absent")) is None


def test_a_wrong_token_and_a_dead_server_raise_server_unavailable_quickly(
        server: Server) -> None:
    with pytest.raises(ServerUnavailable, match="refused the token"):
        ServedCatalog(server.url, "wrong").list_artifacts()
    dead = ServedCatalog("http://127.0.0.1:9/nbripple/api/", "t", retry_s=1.0)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match=r"127\.0\.0\.1:9"):
        dead.list_artifacts()
    assert time.monotonic() - started < 10


def test_the_codec_round_trips_records_and_refuses_other_objects() -> None:
    version = new("a")
    assert loads(dumps({"x": [version, (1, "b"), {"k"}, {1: 2}]})) == \
        {"x": [version, (1, "b"), {"k"}, {1: 2}]}
    assert loads(dumps(replace(version, partitions={"$dt": "x"}))).partitions == {"$dt": "x"}
    with pytest.raises(CodecError):
        dumps(object())
    with pytest.raises(CodecError):
        loads('{"$type": "Workspace", "fields": {}}')


def test_the_serving_connection_runs_duckdb_on_one_thread_and_others_keep_the_default(
        tmp_path: Path) -> None:
    home = nr.init_home(tmp_path / "home")
    EmbeddedCatalog.close_all()
    ws = serving_workspace(home, ChangeFeed())
    try:
        inner = ws.catalog.inner  # type: ignore[attr-defined]
        with inner.connection() as con:
            assert con.execute("SELECT current_setting('threads')").fetchone() == (
                DUCKDB_THREADS,)
    finally:
        release(ws)
    plain = EmbeddedCatalog.for_path(nr.Workspace(home).settings.catalog_path)
    with plain.connection() as con:
        threads = con.execute("SELECT current_setting('threads')").fetchone()
    plain.close()
    assert threads is not None and threads[0] >= 1
    assert plain is not inner  # the settings are part of the instance's key


def test_a_call_leaves_the_client_in_one_write(server: Server,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Head and body in one packet: the server wakes up once per call, not twice.
    writes: list[bytes] = []
    real = socket.socket.sendall

    def counting(sock: socket.socket, data: Any, *args: Any) -> None:
        writes.append(bytes(data))
        real(sock, data, *args)

    catalog = ServedCatalog(server.url, server.token)
    catalog.commit(None, [new(value="warm")])  # connected
    monkeypatch.setattr(socket.socket, "sendall", counting)
    versions = catalog.commit(None, [new(value="x" * 3000)])
    monkeypatch.undo()
    assert [v.version for v in versions] == [2]
    assert len(writes) == 1
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST ") and b"Idempotency-Key" in head
    assert len(body) == int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]) > 3000
