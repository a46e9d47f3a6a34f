"""`GET live` of `nbripple serve`: a long poll on what the serving process commits.

A poll waiting when another client commits through the server returns at once; a
cursor of another server (or none) says to reset; the wait holds no thread, so many
polls leave the other endpoints free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from serving import Server, start_server
from waiting import wait_for

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = nr.init_home(tmp_path_factory.mktemp("live"))
    ws = nr.use(home)
    nr.Artifact("notes").create_from("first", card="# Notes")
    nr.register(nr.LaunchPlan("echo", notebook=str(NOTEBOOKS / "echo.ipynb")), workspace=ws)
    EmbeddedCatalog.close_all()
    served = start_server(home, "--no-watch")
    try:
        yield served
    finally:
        assert served.stop() == 0


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as made:
        yield made


def now_cursor(client: httpx.Client) -> str:
    answer = client.get("live")
    assert answer.status_code == 200, answer.text
    cursor: str = answer.json()["cursor"]
    return cursor


def put_card(client: httpx.Client, text: str) -> None:
    saved = client.put("versions/notes/1/card", json={"markdown": text})
    assert saved.status_code == 200, saved.text


def test_no_cursor_answers_at_once_with_reset_and_the_cursor_of_now(
        client: httpx.Client) -> None:
    start = time.monotonic()
    answer = client.get("live", params={"timeout": 20})
    assert time.monotonic() - start < 2.0
    data = answer.json()
    assert data["reset"] is True and data["items"] == []
    assert data["cursor"].count(":") == 1


def test_a_waiting_poll_returns_as_soon_as_another_client_commits(
        server: Server, client: httpx.Client) -> None:
    cursor = now_cursor(client)
    result: dict[str, Any] = {}

    def poll() -> None:
        with server.client() as own:
            answer = own.get("live", params={"cursor": cursor, "timeout": 30})
            result["returned"] = time.monotonic()
            result["answer"] = answer

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)  # the poll is waiting by now
    assert "answer" not in result, "the poll must wait while nothing is new"
    put_card(client, "# Notes, revised")
    committed = time.monotonic()
    poller.join(timeout=30)
    answer = result["answer"]
    assert answer.status_code == 200, answer.text
    assert result["returned"] - committed < 0.5
    data = answer.json()
    assert data["reset"] is False and data["cursor"] != cursor
    assert [(i["type"], i["name"], i["version"]) for i in data["items"]] == \
        [("card", "notes", 1)]


def test_what_came_after_the_cursor_is_answered_without_waiting(
        client: httpx.Client) -> None:
    cursor = now_cursor(client)
    put_card(client, "# one")
    put_card(client, "# two")
    start = time.monotonic()
    data = client.get("live", params={"cursor": cursor, "timeout": 30}).json()
    assert time.monotonic() - start < 2.0
    assert [i["type"] for i in data["items"]] == ["card", "card"]
    assert data["items"][0]["revision"] + 1 == data["items"][1]["revision"]
    assert data["items"][0]["n"] + 1 == data["items"][1]["n"]
    later = client.get("live", params={"cursor": data["cursor"], "timeout": 0}).json()
    assert later == {"cursor": data["cursor"], "reset": False, "items": []}


def test_nothing_new_returns_an_empty_list_after_the_timeout(client: httpx.Client) -> None:
    cursor = now_cursor(client)
    start = time.monotonic()
    data = client.get("live", params={"cursor": cursor, "timeout": 0.5}).json()
    took = time.monotonic() - start
    assert 0.4 <= took < 3.0, took
    assert data == {"cursor": cursor, "reset": False, "items": []}


@pytest.mark.parametrize("cursor", ["0123456789:0", "not-a-cursor", "", "{feed}:999999",
                                    "{feed}:-1"])
def test_a_cursor_of_another_server_or_of_the_future_resets(
        client: httpx.Client, cursor: str) -> None:
    feed = now_cursor(client).split(":")[0]
    start = time.monotonic()
    data = client.get("live", params={"cursor": cursor.format(feed=feed), "timeout": 30}).json()
    assert time.monotonic() - start < 2.0
    assert data["reset"] is True and data["items"] == []
    assert data["cursor"].startswith(feed + ":")


@pytest.mark.parametrize("query", ["timeout=61", "timeout=-1", "timeout=soon", "timeout=nan",
                                   "timeout=1&timeout=2", "since=3"])
def test_bad_arguments_are_refused_in_one_line(client: httpx.Client, query: str) -> None:
    answer = client.get("live?" + query)
    assert answer.status_code == 400, answer.text
    data = answer.json()
    assert data["error"] == "BadRequest" and "\n" not in data["message"]


def test_many_waiting_polls_leave_the_other_endpoints_free(
        server: Server, client: httpx.Client) -> None:
    cursor = now_cursor(client)
    polls = 48  # more than the server has threads (32)

    def poll(_: int) -> dict[str, Any]:
        with server.client() as own:
            found: dict[str, Any] = own.get("live", params={"cursor": cursor,
                                                            "timeout": 20}).json()
            return found

    with ThreadPoolExecutor(polls) as waiters:
        futures = [waiters.submit(poll, i) for i in range(polls)]
        time.sleep(1.0)
        start = time.monotonic()
        assert client.get("artifacts").status_code == 200
        assert client.get("plans").status_code == 200
        assert time.monotonic() - start < 2.0, "a long poll ties up the server's threads"
        assert not any(f.done() for f in futures)
        put_card(client, "# wake them all")
        answers = [f.result(timeout=30) for f in futures]
    assert all([i["type"] for i in a["items"]] == ["card"] for a in answers)


def test_a_launched_run_reaches_the_poll_as_it_is_queued_and_as_it_ends(
        client: httpx.Client) -> None:
    cursor = now_cursor(client)
    launched = client.post("plans/echo/launch", json={"parameters": {"text": "live"}})
    assert launched.status_code == 202, launched.text
    execution_id = launched.json()["id"]
    seen: list[dict[str, Any]] = []

    def ended() -> bool:
        nonlocal cursor
        data = client.get("live", params={"cursor": cursor, "timeout": 10}).json()
        assert data["reset"] is False
        cursor = data["cursor"]
        seen.extend(data["items"])
        return any(i["type"] == "execution" and i["id"] == execution_id
                   and i["status"] == "succeeded" for i in seen)

    wait_for(ended, 90.0, f"execution {execution_id} to be announced as succeeded")
    statuses = [i["status"] for i in seen if i["type"] == "execution"
                and i["id"] == execution_id]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded"
    [version] = [i for i in seen if i["type"] == "version"]
    assert (version["name"], version["execution_id"], version["kind"]) == \
        ("echo", execution_id, "value")
    assert version["ref"] == f"echo@{version['version']}" and version["partitions"] == {}
