"""Notebook runs: real papermill executions in real kernels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

import nbripple as nr
from nbripple.errors import NotFound
from nbripple.parameters import ParametersError
from nbripple.runner import InputResolutionError, KernelNotFound, NotebookNotFound
from serving import both_catalogs

pytestmark = both_catalogs  # every run test, on an embedded and on a served home

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture
def nbdir(tmp_path: Path) -> Path:
    """A private copy of the fixture notebooks (relaunch reads the notebook as it is now)."""
    target = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, target)
    return target


def event_count(ws: nr.Workspace) -> int:
    return len(ws.catalog.events_after(0))


def test_blessed_model_smart_default_consumes_the_blessed_version(home, nbdir):
    producer = nr.run(nbdir / "producer_three.ipynb")
    assert producer.status == "succeeded", producer.error
    assert [v.ref for v in producer.outputs] == [
        "blessed_model@1", "blessed_model@2", "blessed_model@3"
    ]
    assert [v.partitions["blessed"] for v in producer.outputs] == ["false", "true", "false"]

    consumer = nr.run(nbdir / "consumer.ipynb")
    assert consumer.status == "succeeded", consumer.error
    assert [(i.ref, i.parameter) for i in consumer.inputs] == [("blessed_model@2", "model")]
    assert consumer.parameters["model"] == "blessed_model@2"
    assert [v.ref for v in consumer.outputs] == ["prediction@1"]
    assert nr.load("prediction@1") == [2, 4, 6]
    assert nr.get("prediction@1").execution_id == consumer.id


def test_query_call_default_is_an_artifact_input(home, nbdir):
    nr.run(nbdir / "producer_three.ipynb")
    ex = nr.run(nbdir / "consumer_query_call.ipynb")
    assert ex.status == "succeeded", ex.error
    assert [i.ref for i in ex.inputs] == ["blessed_model@2"]


def test_caller_override_pins_a_version_or_resolves_a_query(home, nbdir):
    nr.run(nbdir / "producer_three.ipynb")
    pinned = nr.run(nbdir / "consumer.ipynb", parameters={"model": "blessed_model@3"})
    assert [i.ref for i in pinned.inputs] == ["blessed_model@3"]
    queried = nr.run(nbdir / "consumer.ipynb",
                     parameters={"model": nr.query("blessed_model", blessed="false")})
    assert [i.ref for i in queried.inputs] == ["blessed_model@3"]
    assert queried.requested == {"model": "nbripple://blessed_model?blessed=false"}
    by_version = nr.run(nbdir / "consumer.ipynb",
                        parameters={"model": nr.get("blessed_model@1"), "scale": 10})
    assert [i.ref for i in by_version.inputs] == ["blessed_model@1"]
    assert nr.load(by_version.outputs[0]) == [10, 20, 30]


def test_failing_notebook_commits_nothing_and_keeps_the_executed_notebook(home, ws, nbdir):
    events_before = event_count(ws)
    ex = nr.run(nbdir / "fails_in_cell_3.ipynb")
    assert ex.status == "failed"
    assert ex.error is not None
    assert ex.error["ename"] == "ValueError"
    assert ex.error["evalue"] == "boom in cell 3"
    assert ex.error["cell_index"] == 3
    assert ex.outputs == []
    assert ws.catalog.get_artifact("doomed") is None
    assert event_count(ws) == events_before
    assert ws.catalog.staged(ex.id) == []
    executed = nbformat.read(str(ex.output_notebook), as_version=4)
    errors = [
        out for cell in executed.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "error"
    ]
    assert errors and errors[0]["evalue"] == "boom in cell 3"
    assert ex.finished_at is not None and ex.finished_at >= ex.started_at


def test_timed_out_run_commits_nothing(home, ws, nbdir):
    ex = nr.run(nbdir / "sleeps.ipynb", timeout=3)
    assert ex.status == "failed"
    assert ex.error is not None and "Timeout" in ex.error["ename"] + ex.error["evalue"]
    assert ws.catalog.get_artifact("sleepy") is None
    assert event_count(ws) == 0


def test_same_artifact_twice_gives_two_versions_in_emission_order(home, nbdir):
    ex = nr.run(nbdir / "emits_twice.ipynb", parameters={"first": "one", "second": "two"})
    assert [v.ref for v in ex.outputs] == ["stream@1", "stream@2"]
    assert [nr.load(v) for v in ex.outputs] == ["one", "two"]


def test_load_inside_a_run_records_consumption(home, nbdir):
    nr.run(nbdir / "producer_three.ipynb")
    ex = nr.run(nbdir / "loads_other.ipynb", parameters={"extra": "blessed_model@3"})
    assert ex.status == "succeeded", ex.error
    assert [(i.ref, i.parameter) for i in ex.inputs] == [("blessed_model@3", None)]


def test_parameter_values_are_data_never_code(home, nbdir, tmp_path):
    marker = tmp_path / "pwned"
    hostile = (
        "x' + __import__('os').system('touch " + str(marker) + "') + '\n"
        '"""; import os; os.system("touch ' + str(marker) + '") #\n'
        "\\'; raise SystemExit #"
    )
    ex = nr.run(nbdir / "echo.ipynb", parameters={"text": hostile})
    assert ex.status == "succeeded", ex.error
    assert nr.load(ex.outputs[0]) == {"text": hostile}
    assert not marker.exists()


def test_input_that_resolves_to_nothing_fails_before_the_kernel(home, ws, nbdir):
    with pytest.raises(InputResolutionError) as info:
        nr.run(nbdir / "consumer.ipynb")
    message = str(info.value)
    assert "'model'" in message and "nbripple://blessed_model?blessed=true" in message
    failed = ws.execution(info.value.execution_id)
    assert failed.status == "failed"
    assert failed.output_notebook is None  # no kernel ever ran


def test_optional_input_resolves_to_none_then_feeds_itself(home, nbdir):
    first = nr.run(nbdir / "optional_input.ipynb")
    assert first.status == "succeeded", first.error
    assert first.inputs == []
    assert first.parameters["previous"] is None
    second = nr.run(nbdir / "optional_input.ipynb")
    assert [i.ref for i in second.inputs] == ["counter@1"]
    assert nr.load("counter@2") == 1


def test_rerun_reuses_snapshot_and_pinned_inputs_relaunch_resolves_again(home, nbdir):
    nr.run(nbdir / "producer_three.ipynb")
    original = nr.run(nbdir / "consumer.ipynb")
    assert [i.ref for i in original.inputs] == ["blessed_model@2"]

    nr.run(nbdir / "producer_three.ipynb")  # blessed_model@5 is now the newest blessed
    # change the notebook on disk: rerun must not see it, relaunch must
    nb = nbformat.read(str(nbdir / "consumer.ipynb"), as_version=4)
    nb.cells[-1].source += "\nnr.Artifact('edited').create_from(True)"
    nbformat.write(nb, str(nbdir / "consumer.ipynb"))

    again = nr.rerun(original.id)
    assert again.status == "succeeded", again.error
    assert [i.ref for i in again.inputs] == ["blessed_model@2"]
    assert again.parent_id == original.id
    assert again.trigger == {"type": "rerun", "of": original.id}
    assert again.notebook_hash == original.notebook_hash
    assert [v.name for v in again.outputs] == ["prediction"]

    fresh = nr.relaunch(original.id)
    assert fresh.status == "succeeded", fresh.error
    assert [i.ref for i in fresh.inputs] == ["blessed_model@5"]
    assert fresh.parent_id == original.id
    assert fresh.notebook_hash != original.notebook_hash
    assert sorted(v.name for v in fresh.outputs) == ["edited", "prediction"]


def test_snapshot_is_stored_and_retrievable(home, nbdir):
    ex = nr.run(nbdir / "trivial.ipynb")
    snapshot = nbformat.read(str(ex.notebook_snapshot), as_version=4)
    original = nbformat.read(str(nbdir / "trivial.ipynb"), as_version=4)
    assert [c.source for c in snapshot.cells] == [c.source for c in original.cells]


def test_missing_notebook_is_a_clear_error(home, tmp_path):
    with pytest.raises(NotebookNotFound, match="not found"):
        nr.run(tmp_path / "nope.ipynb")


def test_unknown_kernel_is_a_clear_error(home, nbdir):
    with pytest.raises(KernelNotFound, match="no Jupyter kernel named 'no-such-kernel'"):
        nr.run(nbdir / "trivial.ipynb", kernel_name="no-such-kernel")


def test_unknown_parameter_is_a_clear_error(home, nbdir):
    with pytest.raises(ParametersError, match=r"has no parameter 'typo'.*its parameters: x"):
        nr.run(nbdir / "trivial.ipynb", parameters={"typo": 1})


def test_parameters_without_a_parameters_cell_is_a_clear_error(home, nbdir):
    with pytest.raises(ParametersError, match="no cell tagged 'parameters'"):
        nr.run(nbdir / "no_parameters_cell.ipynb", parameters={"x": 2})
    assert nr.run(nbdir / "no_parameters_cell.ipynb").status == "succeeded"


def test_a_notebook_may_run_another_without_mixing_contexts(home, nbdir):
    parent = nr.run(nbdir / "runs_another.ipynb", parameters={"text": "hi"})
    assert parent.status == "succeeded", parent.error
    record = nr.load(parent.outputs[0])
    assert record["status"] == "succeeded"
    child = nr.execution(record["child"])
    assert child.trigger == {"type": "notebook", "by": parent.id}
    assert [v.ref for v in child.outputs] == ["echo@1"]
    assert [v.ref for v in parent.outputs] == ["parent_out@1"]
    assert nr.load("echo@1") == {"text": "hi"}


def test_executions_listing_and_lookup(home, nbdir):
    ok = nr.run(nbdir / "trivial.ipynb")
    bad = nr.run(nbdir / "fails_in_cell_3.ipynb")
    assert [e.id for e in nr.executions(status="failed")] == [bad.id]
    assert ok.id in [e.id for e in nr.executions(notebook=str(nbdir / "trivial.ipynb"))]
    assert nr.execution(ok.id[:8]).id == ok.id
    with pytest.raises(NotFound):
        nr.execution("0000000000000000")
    json.dumps(nr.execution(ok.id).parameters)


def test_blessed_lineage_reaches_the_blessed_version_and_nothing_unrelated(home, nbdir):
    producer = nr.run(nbdir / "producer_three.ipynb")
    consumer = nr.run(nbdir / "consumer.ipynb")
    nr.Artifact("unrelated").create_from(1)
    graph = nr.lineage("prediction@1", depth=None, direction="up")
    assert {n.id for n in graph.nodes} == {
        "version:prediction@1",
        f"execution:{consumer.id}",
        "version:blessed_model@2",
        f"execution:{producer.id}",
    }
    assert {(e.source, e.target, e.kind) for e in graph.edges} == {
        (f"execution:{consumer.id}", "version:prediction@1", "produced"),
        ("version:blessed_model@2", f"execution:{consumer.id}", "consumed"),
        (f"execution:{producer.id}", "version:blessed_model@2", "produced"),
    }


def test_lineage_cli_prints_a_tree_and_json(home, nbdir):
    from click.testing import CliRunner

    from nbripple.cli import main

    nr.run(nbdir / "producer_three.ipynb")
    consumer = nr.run(nbdir / "consumer.ipynb")
    runner = CliRunner()
    result = runner.invoke(main, ["lineage", "prediction@1", "--depth", "all", "--up"])
    assert result.exit_code == 0, result.output
    assert "blessed_model@2" in result.output and "consumer.ipynb" in result.output
    assert "blessed_model@3" not in result.output
    result = runner.invoke(main, ["lineage", consumer.id[:8], "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["root"] == f"execution:{consumer.id}"
    ids = {n["data"]["id"] for n in data["elements"]["nodes"]}
    assert {"version:blessed_model@2", "version:prediction@1"} <= ids
    bad = runner.invoke(main, ["lineage", "prediction@1", "--depth", "0"])
    assert bad.exit_code == 2 and "depth must be at least 1" in bad.output


def test_a_kernel_started_before_the_run_enters_it_silently(home, nbdir, tmp_path):
    """An executor's warm kernel: the run context arrives without a cell and without
    using up an execution count, and the run's outputs are committed."""
    from jupyter_core.utils import run_sync

    from nbripple.kernels import kernel_manager

    km = kernel_manager("python3", tmp_path)
    run_sync(km.start_kernel)()
    ex = nr.run(nbdir / "echo.ipynb", parameters={"text": "warm"}, km=km)
    assert ex.status == "succeeded", ex.error
    assert not km.has_kernel  # shut down after the run, never reused
    assert [v.ref for v in ex.outputs] == ["echo@1"]
    assert nr.get("echo@1").execution_id == ex.id
    executed = nbformat.read(str(ex.output_notebook), as_version=4)
    assert [c.execution_count for c in executed.cells] == [1, 2, 3, 4]
    assert not any("nbripple.context" in c.source for c in executed.cells)
