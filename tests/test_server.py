"""`nbripple serve`: a real server process on a free 127.0.0.1 port, spoken to over HTTP.

The data is committed through the Python API before the server starts (the server's
process owns the catalog file while it runs); the reads must answer what the service
functions answer for the same home, every verb of every route must demand the token,
and bad input must get a one-line JSON error with nothing written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.server import ServerContext, make_app, route_table
from nbripple.server.discovery import (
    ServerInfo,
    live_server,
    read_server_file,
    server_file,
    write_server_file,
)
from nbripple.service import api
from serving import DEADLINE_S, SRC, Server, start_server

NOTEBOOKS = Path(__file__).parent / "notebooks"
VERBS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")


def make_home(root: Path) -> Path:
    """A home with versions, a card, a consumption and two registered plans."""
    home = nr.init_home(root)
    ws = nr.use(home)
    sales = nr.Artifact("sales", partition_keys=["region"], description="regional sales")
    card = '# Sales\n\nEU <b onclick="x()">only</b><script>alert(1)</script>'
    sales.create_from({"total": 1}, region="eu", card=card)
    sales.create_from({"total": 2}, region="us")
    nr.Artifact("notes").create_from("first", card="# Notes")
    nr.load("sales@1")  # the interactive execution of this process consumes it
    for name in ("echo", "toggle"):
        nr.register(nr.LaunchPlan(name, notebook=str(NOTEBOOKS / "echo.ipynb"),
                                  parameters={"text": name}), workspace=ws)
    nr.activate("echo")
    return home


def expected(home: Path) -> dict[str, Any]:
    """What the service answers for each read, computed in this process."""
    ws = nr.use(home)
    last = ws.executions(limit=1)[0].id
    found = {
        "artifacts": api.artifacts(ws),
        "search?text=sales": api.search(ws, "sales"),
        "search?partition=region=us&all_versions=true&limit=5":
            api.search(ws, None, partitions={"region": "us"}, all_versions=True, limit=5),
        "search?kind=value&all_versions=1": api.search(ws, None, kind="value",
                                                        all_versions=True),
        "versions/sales/1": api.version_detail(ws, "sales", 1),
        "versions/sales/1/card": api.card(ws, "sales", 1),
        "resolve?ref=nbripple://sales?region=eu": api.resolve(ws, "nbripple://sales?region=eu"),
        "lineage?ref=sales@1&depth=all&direction=down":
            api.lineage(ws, "sales@1", depth=None, direction="down"),
        "lineage?ref=sales@2": api.lineage(ws, "sales@2"),
        "executions": api.executions(ws),
        f"executions/{last}": api.execution(ws, last),
        "plans": api.plans(ws),
    }
    EmbeddedCatalog.close_all()
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    home = make_home(tmp_path_factory.mktemp("served"))
    answers = expected(home)
    server = start_server(home, "--no-watch")
    try:
        yield server, answers
    finally:
        assert server.stop() == 0


# -- reads ---------------------------------------------------------------------------
def test_each_read_answers_what_the_service_answers(
        served: tuple[Server, dict[str, Any]]) -> None:
    server, answers = served
    with server.client() as client:
        for path, wanted in answers.items():
            if path == "plans":
                continue  # test_plans_activate_and_deactivate compares them
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            assert answer.json() == wanted, path
        detail = client.get("versions/sales/1").json()
    assert detail["snippet"] == 'nr.load("sales@1")'
    assert detail["producer"]["kind"] == "interactive"
    assert [c["kind"] for c in detail["consumers"]] == ["interactive"]
    html = answers["versions/sales/1/card"]["html"]
    assert "<b>only</b>" in html and "<script" not in html and "onclick" not in html


def test_health_and_watcher_state_without_a_watcher(
        served: tuple[Server, dict[str, Any]]) -> None:
    server, _ = served
    with server.client() as client:
        assert client.get("health").json()["home"] == str(server.home)
        assert client.get("watcher").json() == {"local": None, "live": []}


def test_plans_activate_and_deactivate(served: tuple[Server, dict[str, Any]]) -> None:
    server, answers = served
    with server.client() as client:
        assert client.get("plans").json() == answers["plans"]
        on = client.post("plans/toggle/activate")
        assert on.status_code == 200 and on.json()["state"] == "active", on.text
        assert {p["name"]: p["active"] for p in client.get("plans").json()} == \
            {"echo": True, "toggle": True}
        off = client.post("plans/toggle/deactivate", json={})
        assert off.status_code == 200 and off.json()["active"] is False
        missing = client.post("plans/nope/activate")
        assert missing.status_code == 404 and missing.json()["error"] == "PlanNotFound"
        assert client.get("plans").json() == answers["plans"]


def test_put_card_adds_a_revision_and_keeps_the_history(
        served: tuple[Server, dict[str, Any]]) -> None:
    server, _ = served
    with server.client() as client:
        saved = client.put("versions/notes/1/card",
                           json={"markdown": "# Notes v2\n<script>alert(1)</script>",
                                 "card_type": "data"})
        assert saved.status_code == 200, saved.text
        card = saved.json()
        assert card["markdown"].startswith("# Notes v2") and card["card_type"] == "data"
        assert "<script" not in card["html"]
        assert [r["revision"] for r in card["history"]] == [1, 2]
        assert client.get("versions/notes/1/card").json() == card


# -- authentication ------------------------------------------------------------------
def _example_paths() -> list[str]:
    """One concrete path per route of the application (every alternative of a choice)."""
    app = make_app(ServerContext(cast(Any, None), token="unused"))
    paths: list[str] = []
    for pattern, _handler in route_table(app):
        path = pattern.rstrip("$").replace("\\", "")
        choices = re.findall(r"\(\?P<\w+>([\w|]+)\)", path)
        path = re.sub(r"\(\?P<number>\[\^/\]\+\)", "1", path)
        path = re.sub(r"\(\?P<\w+>\[\^/\]\+\)", "sales", path)
        for alternatives in choices or [""]:
            for choice in alternatives.split("|") if alternatives else [""]:
                paths.append(re.sub(r"\(\?P<\w+>[\w|]+\)", choice, path))
    return paths


def test_the_route_walk_finds_every_endpoint() -> None:
    paths = _example_paths()
    assert "/nbripple/api/plans/sales/deactivate" in paths
    assert "/nbripple/api/versions/sales/1/card" in paths
    assert len(paths) >= 13


def test_every_verb_of_every_route_needs_the_token(
        served: tuple[Server, dict[str, Any]]) -> None:
    server, _ = served
    root = server.url.split("/nbripple/api/")[0]
    refused: list[tuple[str, str, int]] = []
    with httpx.Client(timeout=20.0) as anonymous, server.client("wrong-token") as wrong:
        for path in [*_example_paths(), "/nbripple/api/no/such/route"]:
            for verb in VERBS:
                bare = anonymous.request(verb, root + path)
                bad = wrong.request(verb, root + path)
                refused.append((verb, path, bare.status_code))
                assert bare.status_code == 401, (verb, path, bare.text)
                assert bad.status_code == 403, (verb, path, bad.text)
                if verb != "HEAD":
                    assert bare.json()["error"] == "Unauthorized"
                    assert "\n" not in bad.json()["message"]
    assert len(refused) == len(VERBS) * (len(_example_paths()) + 1)


# -- bad input -----------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body", "status", "error"), [
    ("PUT", "versions/sales/1/card", b"{not json", 400, "BadRequest"),
    ("PUT", "versions/sales/1/card", b"[1, 2]", 400, "BadRequest"),
    ("PUT", "versions/sales/1/card", b'{"markdown": 3}', 400, "BadRequest"),
    ("PUT", "versions/sales/1/card", b'{"markdown": "x", "owner": 1}', 400, "BadRequest"),
    ("PUT", "versions/sales/1/card", b'{"markdown": "x", "card_type": "poem"}', 400,
     "InvalidReference"),
    ("PUT", "versions/sales/1/card", b"\xff\xfe", 400, "BadRequest"),
    ("PUT", "versions/sales/1/card", b'{"markdown": "' + b"x" * (2 * 1024 * 1024) + b'"}',
     413, "PayloadTooLarge"),
    ("PUT", "versions/sales/x/card", b'{"markdown": "x"}', 400, "BadRequest"),
    ("PUT", "versions/..%2F..%2Fetc/1/card", b'{"markdown": "x"}', 400, "InvalidNameError"),
    ("GET", "versions/..%2F..%2Fetc/1", b"", 400, "InvalidNameError"),
    ("GET", "versions/sales/9", b"", 404, "VersionNotFound"),
    ("GET", "versions/nope/1", b"", 404, "ArtifactNotFound"),
    ("GET", "executions/..%2F..%2Fetc", b"", 404, "ExecutionNotFound"),
    ("GET", "search?limit=many", b"", 400, "BadRequest"),
    ("GET", "search?limit=0", b"", 400, "InvalidReference"),
    ("GET", "search?kind=poem", b"", 400, "KindError"),
    ("GET", "search?partition=region", b"", 400, "BadRequest"),
    ("GET", "search?all_versions=maybe", b"", 400, "BadRequest"),
    ("GET", "search?colour=red", b"", 400, "BadRequest"),
    ("GET", "resolve", b"", 400, "BadRequest"),
    ("GET", "resolve?ref=sales@@1", b"", 400, "InvalidReference"),
    ("GET", "lineage?ref=sales@1&direction=sideways", b"", 400, "InvalidReference"),
    ("GET", "lineage?ref=sales@1&depth=-1", b"", 400, "InvalidReference"),
    ("GET", "no/such/route", b"", 404, "NotFound"),
    ("DELETE", "artifacts", b"", 405, "MethodNotAllowed"),
    ("POST", "plans/echo/launch", b'{"parameters": []}', 400, "BadRequest"),
    ("POST", "plans/echo/form", b"", 405, "MethodNotAllowed"),
    ("POST", "plans/toggle/activate", b'{"now": true}', 400, "BadRequest"),
])
def test_bad_input_is_a_one_line_json_error_and_writes_nothing(
        served: tuple[Server, dict[str, Any]], method: str, path: str, body: bytes,
        status: int, error: str) -> None:
    server, answers = served
    with server.client() as client:
        answer = client.request(method, path, content=body or None)
        assert answer.status_code == status, answer.text
        data = answer.json()
        assert data["error"] == error
        assert set(data) == {"error", "message"}
        assert data["message"] and "\n" not in data["message"]
        assert "Traceback" not in answer.text
        assert client.get("versions/sales/1/card").json() == \
            answers["versions/sales/1/card"]
        assert client.get("plans").json() == answers["plans"]


# -- lifecycle -----------------------------------------------------------------------
def test_sigterm_stops_the_server_and_removes_server_json(tmp_path: Path) -> None:
    home = nr.init_home(tmp_path)
    server = start_server(home)  # with its watcher
    info = live_server(home)
    assert info is not None and info.pid == server.process.pid
    assert server_file(home).stat().st_mode & 0o777 == 0o600
    with server.client() as client:
        state = client.get("watcher").json()
    assert state["local"]["pid"] == server.process.pid
    assert state["local"]["healthy"] is True
    assert server.stop() == 0
    assert not server_file(home).exists()
    assert live_server(home) is None


def test_a_stale_server_json_is_replaced_and_a_live_one_refuses_a_second_server(
        tmp_path: Path) -> None:
    home = nr.init_home(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = ServerInfo.for_this_process("http://127.0.0.1:1/nbripple/api/", "old")
    write_server_file(home, ServerInfo(stale.url, stale.token, dead.pid, stale.host,
                                       stale.started_at, None))
    assert read_server_file(home) is not None and live_server(home) is None
    server = start_server(home, "--no-watch")
    try:
        info = live_server(home)
        assert info is not None and info.pid == server.process.pid and info.token != "old"
        second = subprocess.run(
            [sys.executable, "-c", "from nbripple.cli import main; main()", "serve",
             "--home", str(home), "--no-watch"], capture_output=True, text=True,
            timeout=DEADLINE_S, env={**os.environ, "PYTHONPATH": str(SRC)})
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"error: {home} is already served at {server.url} (pid {server.process.pid} on "
            f"{info.host}); stop that server first"]
        assert json.loads(server_file(home).read_text())["pid"] == server.process.pid
    finally:
        assert server.stop() == 0
    assert not server_file(home).exists()
