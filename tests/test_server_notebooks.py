"""The notebook endpoints of `nbripple serve`: an execution's executed notebook (and the
one it ran), the relaunch form, and runs of a notebook file by its path under the
server's notebook root (`--root`) — on a real server, with real papermill runs.

The home and the notebook root are made before the server starts; everything after
that goes through the API. A refused request leaves the executions as they were.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.errors import NotFound
from nbripple.service.launching import NotebookPathError, notebook_under
from serving import Server, child_env, start_server
from waiting import wait_for

NOTEBOOKS = Path(__file__).parent / "notebooks"
RUN_DEADLINE_S = 90.0
GREETER = ["greeting = 'hi'\ntimes = 2", "print(greeting * times)"]


def write_notebook(path: Path, cells: list[str], parameters_cell: int = 0) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.cells[parameters_cell].metadata["tags"] = ["parameters"]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def make_root(base: Path) -> Path:
    """The notebook root: reports/consumer.ipynb, greeter.ipynb, sleeps.ipynb, a text
    file, and a symlink to a notebook outside the root (which sits beside it)."""
    root = base / "root"
    (root / "reports").mkdir(parents=True)
    shutil.copy(NOTEBOOKS / "consumer.ipynb", root / "reports" / "consumer.ipynb")
    shutil.copy(NOTEBOOKS / "sleeps.ipynb", root / "sleeps.ipynb")
    write_notebook(root / "greeter.ipynb", GREETER)
    (root / "notes.txt").write_text("not a notebook\n")
    outside = shutil.copy(NOTEBOOKS / "echo.ipynb", base / "outside.ipynb")
    (root / "link.ipynb").symlink_to(outside)
    return root


def make_home(base: Path) -> Path:
    """blessed_model@1 (blessed, weights 1 2 3), @2 (not blessed), @3 (blessed, 4 5 6)
    and sales@1."""
    home = nr.init_home(base)
    nr.use(home)
    model = nr.Artifact("blessed_model", partition_keys=["blessed"])
    for weights, blessed in (([1, 2, 3], "true"), ([0], "false"), ([4, 5, 6], "true")):
        model.create_from({"weights": weights}, blessed=blessed)
    nr.Artifact("sales").create_from({"total": 1})
    EmbeddedCatalog.close_all()
    return home


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("notebooks"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, root: Path) -> Iterator[Server]:
    served = start_server(make_home(tmp_path_factory.mktemp("home")), "--no-watch",
                          "--root", str(root))
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
        data: dict[str, Any] = client.get(f"executions/{execution_id}").json()
        return data if data["status"] not in ("queued", "running") else None
    result: dict[str, Any] = wait_for(done, RUN_DEADLINE_S, f"execution {execution_id}",
                                      interval=0.1)
    return result


def execution_ids(client: httpx.Client) -> list[str]:
    return [e["id"] for e in client.get("executions", params={"limit": 500}).json()]


def run(client: httpx.Client, path: str, parameters: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    answer = client.post("notebooks/run", json={"path": path, "parameters": parameters or {}})
    assert answer.status_code == 202, answer.text
    queued: dict[str, Any] = answer.json()
    assert queued["status"] == "queued" and queued["kind"] == "notebook"
    assert answer.headers["Location"] == f"../executions/{queued['id']}"
    return queued


def refused(answer: httpx.Response, status: int, error: str, says: str = "") -> None:
    assert answer.status_code == status, answer.text
    data = answer.json()
    assert set(data) == {"error", "message"} and data["error"] == error, data
    assert says in data["message"] and "\n" not in data["message"], data


@pytest.fixture(scope="module")
def greeted(server: Server) -> dict[str, Any]:
    """A run of greeter.ipynb with times=3, finished."""
    with server.client() as client:
        return finished(client, run(client, "greeter.ipynb", {"times": 3})["id"])


@pytest.fixture(scope="module")
def predicted(server: Server) -> dict[str, Any]:
    """A run of reports/consumer.ipynb with scale=10 and its model by default, finished."""
    with server.client() as client:
        return finished(client, run(client, "reports/consumer.ipynb", {"scale": 10})["id"])


# -- the executed notebook -------------------------------------------------------------
def test_the_executed_notebook_comes_back_as_nbformat_json_with_its_outputs(
        client: httpx.Client, greeted: dict[str, Any]) -> None:
    assert greeted["status"] == "succeeded", greeted["error"]
    answer = client.get(f"executions/{greeted['id']}/notebook")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    executed = nbformat.reads(answer.text, as_version=4)  # joins the lines of sources
    nbformat.validate(executed)
    sources = [cell.source for cell in executed.cells]
    assert any("times = 3" in s for s in sources), sources  # papermill's injected cell
    printed = [o.get("text", "") for cell in executed.cells if cell.cell_type == "code"
               for o in cell.outputs if o.output_type == "stream"]
    assert printed == ["hihihi\n"], printed


def test_which_input_is_the_notebook_exactly_as_it_was_run(
        client: httpx.Client, greeted: dict[str, Any], root: Path) -> None:
    answer = client.get(f"executions/{greeted['id']}/notebook", params={"which": "input"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == json.loads((root / "greeter.ipynb").read_text())


def test_a_run_still_going_has_no_executed_notebook_yet(client: httpx.Client) -> None:
    queued = run(client, "sleeps.ipynb", {"seconds": 3})
    answer = client.get(f"executions/{queued['id']}/notebook")
    refused(answer, 404, "NotebookNotFound", f"execution {queued['id']} has no executed "
            "notebook yet: it is ")
    done = finished(client, queued["id"])
    assert done["status"] == "succeeded", done["error"]
    for which in ("output", "input"):
        answer = client.get(f"executions/{queued['id']}/notebook", params={"which": which})
        assert answer.status_code == 200, answer.text


def test_an_execution_that_is_no_notebook_run_has_no_notebook(
        server: Server, client: httpx.Client) -> None:
    import subprocess
    import sys

    code = ("import nbripple as nr; v = nr.Artifact('by_hand').create_from({'x': 1}); "
            "print(v.execution_id)")
    done = subprocess.run([sys.executable, "-c", code], env=child_env(server.home),
                          capture_output=True, text=True, timeout=120, check=True)
    interactive = done.stdout.strip().splitlines()[-1]
    refused(client.get(f"executions/{interactive}/notebook"), 404, "NotebookNotFound",
            "not a notebook run")
    refused(client.get(f"executions/{interactive}/form"), 400, "NbrippleError",
            "not a notebook run")


@pytest.mark.parametrize(("path", "status", "error"), [
    ("executions/nope/notebook", 404, "ExecutionNotFound"),
    ("executions/nope/notebook?which=input", 404, "ExecutionNotFound"),
    ("executions/nope/notebook?which=both", 400, "InvalidReference"),
    ("executions/nope/notebook?as=html", 400, "BadRequest"),
    ("executions/..%2F..%2Fetc/notebook", 404, "ExecutionNotFound"),
    ("executions/nope/form", 404, "ExecutionNotFound"),
])
def test_a_notebook_of_an_unknown_execution_or_with_bad_arguments_is_refused(
        client: httpx.Client, path: str, status: int, error: str) -> None:
    refused(client.get(path), status, error)


# -- a notebook file: its form and its run ----------------------------------------------
def test_the_notebook_form_shows_each_parameter_and_the_version_an_input_would_pick(
        client: httpx.Client, root: Path) -> None:
    answer = client.get("notebooks/form", params={"path": "reports/consumer.ipynb"})
    assert answer.status_code == 200, answer.text
    form = answer.json()
    assert (form["path"], form["notebook"], form["kernel_name"]) == \
        ("reports/consumer.ipynb", str(root.resolve() / "reports" / "consumer.ipynb"),
         "python3")
    assert form["parameters"] == [
        {"name": "scale", "type": "integer", "input": False, "declared": "2",
         "source": "notebook", "plan_value": None, "value": 2}]
    [model] = form["inputs"]
    assert {k: model[k] for k in ("name", "type", "source", "query", "value", "optional",
                                  "problem", "artifact")} == {
        "name": "model", "type": "artifact", "source": "notebook",
        "query": "nbripple://blessed_model?blessed=true", "value": "blessed_model@3",
        "optional": False, "problem": None, "artifact": "blessed_model"}
    assert [(c["ref"], c["partitions"]) for c in model["choices"]] == [
        ("blessed_model@3", {"blessed": "true"}), ("blessed_model@2", {"blessed": "false"}),
        ("blessed_model@1", {"blessed": "true"})]
    assert "execution" not in form


def test_a_notebook_run_with_overrides_runs_in_the_background(
        client: httpx.Client, root: Path) -> None:
    queued = run(client, "reports/consumer.ipynb", {"scale": 10, "model": "blessed_model@1"})
    assert queued["trigger"] == {"type": "manual", "by": "api"}
    assert queued["requested"] == {"scale": 10, "model": "blessed_model@1"}
    assert queued["notebook"] == str(root.resolve() / "reports" / "consumer.ipynb")
    done = finished(client, queued["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["parameters"] == {"scale": 10, "model": "blessed_model@1"}
    assert done["inputs"] == [{"ref": "blessed_model@1", "parameter": "model"}]
    [output] = done["outputs"]
    assert output.startswith("prediction@")


@pytest.mark.parametrize(("path", "status", "error", "says"), [
    ("../outside.ipynb", 400, "NotebookPathError", "outside the server's notebook root"),
    ("reports/../../outside.ipynb", 400, "NotebookPathError", "outside"),
    ("link.ipynb", 400, "NotebookPathError", "outside the server's notebook root"),
    ("/etc/passwd.ipynb", 400, "NotebookPathError", "is absolute"),
    ("notes.txt", 400, "NotebookPathError", "is not a notebook"),
    ("reports", 400, "NotebookPathError", "is not a notebook"),
    ("missing.ipynb", 404, "NotebookNotFound", "no notebook missing.ipynb under"),
    ("reports/consumer.ipynb\x00.txt", 400, "NotebookPathError", "NUL"),
    ("", 400, "BadRequest", "needs ?path="),
])
def test_a_notebook_path_that_is_not_a_notebook_of_the_root_is_refused(
        client: httpx.Client, path: str, status: int, error: str, says: str) -> None:
    before = execution_ids(client)
    refused(client.get("notebooks/form", params={"path": path}), status, error, says)
    answer = client.post("notebooks/run", json={"path": path, "parameters": {}})
    if path:
        refused(answer, status, error, says)
    else:
        refused(answer, 400, "BadRequest", "path must be")
    assert execution_ids(client) == before


@pytest.mark.parametrize(("body", "error", "says"), [
    ({"path": "greeter.ipynb", "parameters": {"colour": "red"}}, "ParametersError",
     "has no parameter 'colour'"),
    ({"path": "greeter.ipynb", "parameters": {"times": "two"}}, "ParametersError",
     "parameter 'times' takes an integer"),
    ({"path": "reports/consumer.ipynb", "parameters": {"model": "sales@1"}},
     "InputResolutionError", "is a version of sales"),
    ({"path": "greeter.ipynb", "parameters": ["times"]}, "BadRequest",
     "parameters must be an object"),
    ({"path": 3}, "BadRequest", "path must be"),
    ({"path": "greeter.ipynb", "now": True}, "BadRequest", "unknown field(s) now"),
    ({}, "BadRequest", "path must be"),
    (b"", "BadRequest", "needs a JSON object"),
    (b"{not json", "BadRequest", "not valid JSON"),
])
def test_a_refused_notebook_run_says_why_in_one_line_and_creates_nothing(
        client: httpx.Client, body: dict[str, Any] | bytes, error: str, says: str) -> None:
    before = execution_ids(client)
    answer = (client.post("notebooks/run", content=body) if isinstance(body, bytes)
              else client.post("notebooks/run", json=body))
    refused(answer, 400, error, says)
    assert execution_ids(client) == before


def test_the_form_and_run_take_only_their_arguments(client: httpx.Client) -> None:
    refused(client.get("notebooks/form", params={"path": "greeter.ipynb", "x": "1"}), 400,
            "BadRequest", "unknown query argument(s) x")
    refused(client.post("notebooks/run?path=greeter.ipynb", json={"path": "greeter.ipynb"}),
            400, "BadRequest", "unknown query argument(s) path")
    refused(client.post("notebooks/form"), 405, "MethodNotAllowed")
    refused(client.get("notebooks/run"), 405, "MethodNotAllowed")


# -- relaunch --------------------------------------------------------------------------
def test_the_relaunch_form_keeps_what_the_run_was_given_and_resolves_the_rest_again(
        client: httpx.Client, predicted: dict[str, Any]) -> None:
    assert predicted["status"] == "succeeded", predicted["error"]
    answer = client.get(f"executions/{predicted['id']}/form")
    assert answer.status_code == 200, answer.text
    form = answer.json()
    assert form["execution"]["id"] == predicted["id"]
    assert form["notebook"] == predicted["notebook"]
    [scale] = form["parameters"]
    assert (scale["source"], scale["value"], scale["previous"]) == ("execution", 10, 10)
    [model] = form["inputs"]
    # the model came from the smart default: a relaunch resolves it again
    assert (model["source"], model["value"], model["previous"]) == \
        ("notebook", "blessed_model@3", "blessed_model@3")


def test_a_relaunch_with_an_override_from_the_form_keeps_the_rest(
        client: httpx.Client, predicted: dict[str, Any]) -> None:
    answer = client.post(f"executions/{predicted['id']}/relaunch",
                         json={"parameters": {"model": "blessed_model@1"}})
    assert answer.status_code == 202, answer.text
    done = finished(client, answer.json()["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["parameters"] == {"scale": 10, "model": "blessed_model@1"}
    assert done["trigger"] == {"type": "relaunch", "of": predicted["id"]}
    form = client.get(f"executions/{done['id']}/form").json()
    assert [(f["name"], f["source"], f["value"]) for f in form["parameters"] + form["inputs"]
            ] == [("scale", "execution", 10), ("model", "execution", "blessed_model@1")]


# -- the notebook root, without a server ------------------------------------------------
def test_a_notebook_path_is_resolved_under_the_root_and_never_leaves_it(root: Path) -> None:
    assert notebook_under(root, "reports/consumer.ipynb") == \
        root.resolve() / "reports" / "consumer.ipynb"
    assert notebook_under(root, "reports/./../greeter.ipynb") == root.resolve() / "greeter.ipynb"
    for bad in ("../outside.ipynb", "link.ipynb", "C:\\x.ipynb", "\\\\host\\x.ipynb", " ",
                "/x.ipynb", "notes.txt"):
        with pytest.raises(NotebookPathError):
            notebook_under(root, bad)
    with pytest.raises(NotFound, match=r"no notebook nope\.ipynb under"):
        notebook_under(root, "nope.ipynb")
