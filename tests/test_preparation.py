"""Preparing a run: what a run would use, or why it would not start, before anything
is created — the same rules as ``nr.run``, which applies them too."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbripple as nr
from nbripple.parameters import ParametersError
from nbripple.preparation import check, check_rerun
from nbripple.runner import InputResolutionError

NOTEBOOKS = Path(__file__).parent / "notebooks"
CONSUMER = NOTEBOOKS / "consumer.ipynb"


@pytest.fixture
def models(home: Path) -> nr.Workspace:
    """blessed_model@1 (blessed), @2 (not), @3 (blessed) and sales@1."""
    model = nr.Artifact("blessed_model", partition_keys=["blessed"])
    for weights, blessed in (([1, 2, 3], "true"), ([0], "false"), ([4, 5, 6], "true")):
        model.create_from({"weights": weights}, blessed=blessed)
    nr.Artifact("sales").create_from({"total": 1})
    return nr.current()


def test_check_pins_the_smart_default_and_records_nothing(models: nr.Workspace) -> None:
    before = models.executions(limit=100)
    checked = check(models, CONSUMER)
    assert {k: v.ref if v else None for k, v in checked.inputs.items()} == \
        {"model": "blessed_model@3"}
    assert checked.injected == {"model": "blessed_model@3"}
    assert checked.prepared.kernel_name == "python3"
    overridden = check(models, CONSUMER, {"model": "blessed_model@1", "scale": 5})
    assert overridden.injected == {"model": "blessed_model@1", "scale": 5}
    assert [e.id for e in models.executions(limit=100)] == [e.id for e in before]


def test_check_refuses_an_unknown_parameter(models: nr.Workspace) -> None:
    with pytest.raises(ParametersError, match="has no parameter 'colour'"):
        check(models, CONSUMER, {"colour": "red"})


@pytest.mark.parametrize(("value", "says"), [
    ("sales@1", "takes a version of blessed_model, and sales@1 is a version of sales"),
    ("nbripple://sales", "is a version of sales"),
    (3, "takes a ref such as 'blessed_model@3' or a query URI, not int 3"),
    ("blessed_model@9", "resolved to nothing"),
])
def test_check_refuses_an_input_that_is_no_version_of_its_artifact(
        models: nr.Workspace, value: object, says: str) -> None:
    with pytest.raises(InputResolutionError, match=says) as info:
        check(models, CONSUMER, {"model": value})
    assert info.value.execution_id is None


def test_a_run_refuses_a_version_of_another_artifact_before_its_kernel_starts(
        models: nr.Workspace) -> None:
    with pytest.raises(InputResolutionError, match="is a version of sales") as info:
        nr.run(CONSUMER, parameters={"model": "sales@1"})
    failed = models.execution(str(info.value.execution_id))
    assert failed.status == "failed" and failed.output_notebook is None
    assert failed.inputs == []


def test_check_rerun_uses_the_snapshot_and_the_pinned_inputs(models: nr.Workspace) -> None:
    original = nr.run(CONSUMER, parameters={"model": "blessed_model@1"})
    assert original.status == "succeeded", original.error
    checked = check_rerun(models, original)
    assert checked.injected == {"model": "blessed_model@1"}
    assert checked.prepared.path == CONSUMER


def test_relaunch_takes_overrides_over_what_the_original_was_given(
        models: nr.Workspace) -> None:
    original = nr.run(CONSUMER, parameters={"model": "blessed_model@1"})
    fresh = nr.relaunch(original.id, {"scale": 10})
    assert fresh.status == "succeeded", fresh.error
    assert [i.ref for i in fresh.inputs] == ["blessed_model@1"]
    assert fresh.requested == {"model": "blessed_model@1", "scale": 10}
    assert nr.load(fresh.outputs[0]) == [10, 20, 30]
    with pytest.raises(InputResolutionError, match="is a version of sales"):
        nr.relaunch(original.id, {"model": "sales@1"})
