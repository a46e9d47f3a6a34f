"""The endpoints of `nbripple serve` that act: the launch form, launch, rerun, relaunch
and the watcher's start and stop — on a real server, with real papermill runs.

The home is made before the server starts (the server's process holds the catalog
file while it runs); everything after that goes through the API. A refused request
must leave the list of executions as it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from serving import Server, start_server
from waiting import wait_for

NOTEBOOKS = Path(__file__).parent / "notebooks"
RUN_DEADLINE_S = 90.0


def make_home(root: Path) -> Path:
    """blessed_model@1 (blessed, weights 1 2 3), @2 (not blessed), @3 (blessed, 4 5 6),
    sales@1, and the plans predict (consumer.ipynb, scale=3) and echo."""
    home = nr.init_home(root)
    ws = nr.use(home)
    model = nr.Artifact("blessed_model", partition_keys=["blessed"])
    for weights, blessed in (([1, 2, 3], "true"), ([0], "false"), ([4, 5, 6], "true")):
        model.create_from({"weights": weights}, blessed=blessed)
    nr.Artifact("sales").create_from({"total": 1})
    nr.register(nr.LaunchPlan("predict", notebook=str(NOTEBOOKS / "consumer.ipynb"),
                              parameters={"scale": 3}), workspace=ws)
    nr.register(nr.LaunchPlan("echo", notebook=str(NOTEBOOKS / "echo.ipynb"),
                              parameters={"text": "from the plan"}), workspace=ws)
    EmbeddedCatalog.close_all()
    return home


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    served = start_server(make_home(tmp_path_factory.mktemp("act")), "--no-watch")
    try:
        yield served
    finally:
        assert served.stop() == 0


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as made:
        yield made


def finished(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    """The execution once it is no longer queued or running (fails after a deadline)."""
    def done() -> dict[str, Any] | None:
        found = client.get(f"executions/{execution_id}")
        assert found.status_code == 200, found.text
        data: dict[str, Any] = found.json()
        return data if data["status"] not in ("queued", "running") else None
    result: dict[str, Any] = wait_for(done, RUN_DEADLINE_S, f"execution {execution_id}",
                                      interval=0.1)
    return result


def execution_ids(client: httpx.Client) -> list[str]:
    return [e["id"] for e in client.get("executions", params={"limit": 500}).json()]


def accepted(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    data: dict[str, Any] = answer.json()
    assert data["status"] == "queued" and data["kind"] == "notebook"
    assert answer.headers["Location"] == f"../../executions/{data['id']}"
    return data


@pytest.fixture(scope="module")
def launched(server: Server) -> dict[str, Any]:
    """A run of plan predict with model=blessed_model@1, finished."""
    with server.client() as client:
        before = execution_ids(client)
        start = time.monotonic()
        answer = client.post("plans/predict/launch",
                             json={"parameters": {"model": "blessed_model@1"}})
        took = time.monotonic() - start
        queued = accepted(answer)
        assert took < 5.0, "the launch must not wait for the run"
        assert queued["trigger"] == {"type": "manual", "plan": "predict", "plan_version": 1,
                                     "by": "api"}
        assert queued["requested"] == {"scale": 3, "model": "blessed_model@1"}
        assert execution_ids(client) == [queued["id"], *before]
        return finished(client, queued["id"])


# -- the form ------------------------------------------------------------------------
def test_the_form_shows_each_parameter_and_the_version_a_launch_would_pick(
        client: httpx.Client) -> None:
    answer = client.get("plans/predict/form")
    assert answer.status_code == 200, answer.text
    form = answer.json()
    assert (form["plan"], form["version"], form["active"], form["kernel_name"]) == \
        ("predict", 1, False, "python3")
    assert form["notebook"] == str(NOTEBOOKS / "consumer.ipynb")
    assert form["parameters"] == [
        {"name": "scale", "type": "integer", "input": False, "declared": "2",
         "source": "plan", "plan_value": 3, "value": 3}]
    [model] = form["inputs"]
    assert {k: model[k] for k in ("name", "type", "declared", "source", "query", "value",
                                  "optional", "problem")} == {
        "name": "model", "type": "artifact",
        "declared": "'nbripple://blessed_model?blessed=true'", "source": "notebook",
        "query": "nbripple://blessed_model?blessed=true", "value": "blessed_model@3",
        "optional": False, "problem": None}
    assert model["resolved"]["ref"] == "blessed_model@3"
    assert model["resolved"]["partitions"] == {"blessed": "true"}
    echo = client.get("plans/echo/form").json()
    assert echo["parameters"][0]["value"] == "from the plan" and echo["inputs"] == []


def test_the_form_of_an_unknown_or_malformed_plan_name(client: httpx.Client) -> None:
    missing = client.get("plans/nope/form")
    assert missing.status_code == 404 and missing.json()["error"] == "PlanNotFound"
    traversal = client.get("plans/..%2F..%2Fetc/form")
    assert traversal.status_code == 400, traversal.text
    assert traversal.json()["error"] == "InvalidNameError"


# -- launch --------------------------------------------------------------------------
def test_a_launch_with_an_override_runs_in_the_background_and_records_its_lineage(
        server: Server, client: httpx.Client, launched: dict[str, Any]) -> None:
    assert launched["status"] == "succeeded", launched["error"]
    assert launched["inputs"] == [{"ref": "blessed_model@1", "parameter": "model"}]
    assert launched["parameters"] == {"model": "blessed_model@1", "scale": 3}
    assert [ref.split("@")[0] for ref in launched["outputs"]] == ["prediction"]
    assert launched["pid"] != server.process.pid  # a process of its own
    graph = client.get("lineage", params={"ref": launched["id"]}).json()
    edges = {(e["data"]["source"], e["data"]["target"], e["data"]["kind"])
             for e in graph["elements"]["edges"]}
    root = f"execution:{launched['id']}"
    assert ("version:blessed_model@1", root, "consumed") in edges
    assert (root, f"version:{launched['outputs'][0]}", "produced") in edges
    producer = client.get("versions/" + launched["outputs"][0].replace("@", "/")).json()
    assert producer["producer"]["id"] == launched["id"]


@pytest.mark.parametrize(("body", "status", "error", "says"), [
    ({"parameters": {"colour": "red"}}, 400, "ParametersError", "has no parameter 'colour'"),
    ({"parameters": {"model": "sales@1"}}, 400, "InputResolutionError",
     "takes a version of blessed_model, and sales@1 is a version of sales"),
    ({"parameters": {"model": "nbripple://sales"}}, 400, "InputResolutionError",
     "is a version of sales"),
    ({"parameters": {"model": "blessed_model@9"}}, 400, "InputResolutionError",
     "resolved to nothing"),
    ({"parameters": {"model": 3}}, 400, "InputResolutionError", "not int 3"),
    ({"parameters": {"scale": "three"}}, 400, "ParametersError",
     "parameter 'scale' takes an integer"),
    ({"parameters": {"scale": True}}, 400, "ParametersError", "not boolean true"),
    ({"parameters": ["scale"]}, 400, "BadRequest", "parameters must be an object"),
    ({"parameters": {}, "now": True}, 400, "BadRequest", "unknown field(s) now"),
    (b"{not json", 400, "BadRequest", "not valid JSON"),
    (b"[1]", 400, "BadRequest", "must be a JSON object"),
])
def test_a_refused_launch_says_why_in_one_line_and_creates_no_execution(
        client: httpx.Client, body: dict[str, Any] | bytes, status: int, error: str,
        says: str) -> None:
    before = execution_ids(client)
    answer = (client.post("plans/predict/launch", content=body) if isinstance(body, bytes)
              else client.post("plans/predict/launch", json=body))
    assert answer.status_code == status, answer.text
    data = answer.json()
    assert set(data) == {"error", "message"} and data["error"] == error
    assert says in data["message"] and "\n" not in data["message"]
    assert execution_ids(client) == before


@pytest.mark.parametrize(("method", "path", "status", "error"), [
    ("POST", "plans/nope/launch", 404, "PlanNotFound"),
    ("POST", "plans/..%2F..%2Fetc/launch", 400, "InvalidNameError"),
    ("POST", "plans/predict/launch?now=1", 400, "BadRequest"),
    ("GET", "plans/predict/launch", 405, "MethodNotAllowed"),
    ("PUT", "executions/x/rerun", 405, "MethodNotAllowed"),
    ("POST", "executions/nope/rerun", 404, "ExecutionNotFound"),
    ("POST", "executions/..%2F..%2Fetc/relaunch", 404, "ExecutionNotFound"),
    ("POST", "executions/nope/cancel", 404, "NotFound"),
    ("POST", "plans/predict/fire", 404, "NotFound"),
])
def test_unknown_targets_routes_and_methods_are_refused(
        client: httpx.Client, method: str, path: str, status: int, error: str) -> None:
    before = execution_ids(client)
    answer = client.request(method, path)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error and "\n" not in answer.json()["message"]
    assert execution_ids(client) == before


def test_an_inactive_plan_launches_too_and_its_defaults_apply(client: httpx.Client) -> None:
    assert not {p["name"]: p["active"] for p in client.get("plans").json()}["echo"]
    queued = accepted(client.post("plans/echo/launch"))
    done = finished(client, queued["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["parameters"] == {"text": "from the plan"}


# -- rerun and relaunch ----------------------------------------------------------------
def test_rerun_runs_the_same_snapshot_with_the_same_pinned_inputs(
        client: httpx.Client, launched: dict[str, Any]) -> None:
    queued = accepted(client.post(f"executions/{launched['id']}/rerun"))
    assert queued["trigger"] == {"type": "rerun", "of": launched["id"]}
    done = finished(client, queued["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["inputs"] == launched["inputs"]
    assert done["notebook_hash"] == launched["notebook_hash"]
    assert done["parent_id"] == launched["id"]


def test_relaunch_takes_overrides_checked_like_a_launch(
        client: httpx.Client, launched: dict[str, Any]) -> None:
    queued = accepted(client.post(f"executions/{launched['id']}/relaunch",
                                  json={"parameters": {"scale": 10}}))
    assert queued["trigger"] == {"type": "relaunch", "of": launched["id"]}
    done = finished(client, queued["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["inputs"] == [{"ref": "blessed_model@1", "parameter": "model"}]  # given
    assert done["requested"] == {"scale": 10, "model": "blessed_model@1"}
    smart = accepted(client.post(
        f"executions/{launched['id']}/relaunch",
        json={"parameters": {"model": "nbripple://blessed_model?blessed=true"}}))
    again = finished(client, smart["id"])
    assert again["inputs"] == [{"ref": "blessed_model@3", "parameter": "model"}]


@pytest.mark.parametrize(("action", "body", "status", "error"), [
    ("rerun", {"parameters": {"scale": 1}}, 400, "BadRequest"),
    ("relaunch", {"parameters": {"colour": 1}}, 400, "ParametersError"),
    ("relaunch", {"parameters": {"model": "sales@1"}}, 400, "InputResolutionError"),
    ("relaunch", {"parameters": {"scale": 1.5}}, 400, "ParametersError"),
    ("relaunch", {"parameters": "scale=1"}, 400, "BadRequest"),
])
def test_a_refused_rerun_or_relaunch_creates_no_execution(
        client: httpx.Client, launched: dict[str, Any], action: str, body: dict[str, Any],
        status: int, error: str) -> None:
    before = execution_ids(client)
    answer = client.post(f"executions/{launched['id']}/{action}", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert execution_ids(client) == before


def test_an_interactive_execution_cannot_be_rerun(client: httpx.Client) -> None:
    interactive = client.get("executions", params={"kind": "interactive"}).json()[0]["id"]
    before = execution_ids(client)
    for action in ("rerun", "relaunch"):
        answer = client.post(f"executions/{interactive}/{action}")
        assert answer.status_code == 400, answer.text
        assert "not a notebook run" in answer.json()["message"]
    assert execution_ids(client) == before


# -- the watcher -----------------------------------------------------------------------
def test_the_watcher_stops_and_starts_and_get_watcher_follows(client: httpx.Client) -> None:
    assert client.get("watcher").json()["local"] is None  # --no-watch
    started = client.post("watcher/start")
    assert started.status_code == 200, started.text
    local = started.json()["local"]
    assert local is not None and local["healthy"] is True
    assert client.get("watcher").json()["local"]["id"] == local["id"]
    again = client.post("watcher/start", json={})
    assert again.json()["local"]["id"] == local["id"]  # already running: the same one
    stopped = client.post("watcher/stop")
    assert stopped.status_code == 200 and stopped.json()["local"] is None
    assert client.get("watcher").json() == stopped.json()
    assert client.post("watcher/stop").json()["local"] is None
    refused = client.post("watcher/start", json={"now": True})
    assert refused.status_code == 400 and refused.json()["error"] == "BadRequest"
    assert client.get("watcher").json()["local"] is None
    restarted = client.post("watcher/start").json()["local"]
    assert restarted["id"] != local["id"]
    assert client.post("watcher/stop").json()["local"] is None


# -- the server stops -------------------------------------------------------------------
def sleepy_home(root: Path, grace_s: float | None = None) -> Path:
    home = nr.init_home(root)
    if grace_s is not None:
        with (home / "config.toml").open("a") as config:
            config.write(f"\n[watcher]\ngrace_period_s = {grace_s}\n")
    nr.register(nr.LaunchPlan("sleepy", notebook=str(NOTEBOOKS / "sleeps.ipynb")),
                workspace=nr.use(home))
    EmbeddedCatalog.close_all()
    return home


def launch_and_wait_running(served: Server, seconds: float) -> str:
    with served.client() as client:
        queued = accepted(client.post("plans/sleepy/launch",
                                      json={"parameters": {"seconds": seconds}}))
        wait_for(lambda: client.get(f"executions/{queued['id']}").json()["status"]
                 == "running", RUN_DEADLINE_S, "the run to start", interval=0.1)
    return str(queued["id"])


def outcome(home: Path, execution_id: str) -> nr.Execution:
    try:
        return nr.use(home).execution(execution_id)
    finally:
        EmbeddedCatalog.close_all()


def test_a_stopping_server_lets_a_launched_run_finish_within_the_grace_period(
        tmp_path: Path) -> None:
    home = sleepy_home(tmp_path)
    served = start_server(home, "--no-watch")
    try:
        execution_id = launch_and_wait_running(served, 2)
    finally:
        assert served.stop() == 0
    done = outcome(home, execution_id)
    assert done.status == "succeeded", done.error
    assert [v.name for v in done.outputs] == ["sleepy"]


def test_a_stopping_server_cancels_a_launched_run_after_the_grace_period(
        tmp_path: Path) -> None:
    home = sleepy_home(tmp_path, grace_s=0.5)
    served = start_server(home, "--no-watch")
    try:
        execution_id = launch_and_wait_running(served, 120)
    finally:
        start = time.monotonic()
        assert served.stop() == 0
        assert time.monotonic() - start < 20.0
    done = outcome(home, execution_id)
    assert done.status == "cancelled", (done.status, done.error)
    assert done.outputs == []
