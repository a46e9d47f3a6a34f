"""Runs started over the API, in this process with an executor that runs nothing: what
is created (or not) before a run starts, the launch form, and the launcher's life."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import nbripple as nr
from nbripple.errors import ServerStateError
from nbripple.parameters import ParametersError
from nbripple.runner import InputResolutionError
from nbripple.server import ServerContext
from nbripple.service import api, launching
from nbripple.service.launching import Launcher
from waiting import wait_for

if TYPE_CHECKING:
    from conftest import RecordingExecutor

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture
def plans(ws: nr.Workspace) -> nr.Workspace:
    model = nr.Artifact("blessed_model", partition_keys=["blessed"])
    model.create_from({"weights": [1]}, blessed="true")
    model.create_from({"weights": [2]}, blessed="false")
    nr.register(nr.LaunchPlan("predict", notebook=str(NOTEBOOKS / "consumer.ipynb"),
                              trigger=nr.OnArtifact(model.query(blessed="false"),
                                                    inputs={"model": model})), workspace=ws)
    nr.register(nr.LaunchPlan("count", notebook=str(NOTEBOOKS / "optional_input.ipynb")),
                workspace=ws)
    return ws


def launcher_of(ws: nr.Workspace, make: Callable[..., RecordingExecutor], **options: Any
                ) -> tuple[Launcher, list[RecordingExecutor]]:
    made: list[RecordingExecutor] = []

    def executor() -> RecordingExecutor:
        made.append(make(**options))
        return made[-1]
    return Launcher(ws, executor=executor), made


def test_a_launch_queues_an_execution_and_hands_its_job_to_the_executor(
        plans: nr.Workspace, recording_executor: Callable[..., RecordingExecutor]) -> None:
    launcher, made = launcher_of(plans, recording_executor)
    queued = launching.launch_plan(plans, launcher, "predict", {"scale": 5})
    assert queued.status == "queued" and queued.requested == {
        "model": "nbripple://blessed_model?blessed=false", "scale": 5}
    assert queued.trigger == {"type": "manual", "plan": "predict", "plan_version": 1,
                              "by": "api"}
    [job] = made[0].jobs
    assert (job.execution_id, job.rerun_of, job.cwd) == (queued.id, None, None)
    assert job.notebook == str(NOTEBOOKS / "consumer.ipynb")
    assert launcher.running == [queued.id]


def test_a_refused_launch_creates_nothing_and_starts_no_executor(
        plans: nr.Workspace, recording_executor: Callable[..., RecordingExecutor]) -> None:
    launcher, made = launcher_of(plans, recording_executor)
    for overrides, error in (({"colour": 1}, ParametersError),
                             ({"scale": "big"}, ParametersError),
                             ({"model": "blessed_model@7"}, InputResolutionError)):
        with pytest.raises(error):
            launching.launch_plan(plans, launcher, "predict", overrides)
    assert plans.executions(kind="notebook") == [] and made == []


def test_a_run_whose_process_ends_without_finishing_is_marked_failed(
        plans: nr.Workspace, recording_executor: Callable[..., RecordingExecutor]) -> None:
    launcher, _ = launcher_of(plans, recording_executor, end=True)
    queued = launching.launch_plan(plans, launcher, "count")
    failed = wait_for(lambda: (e := plans.execution(queued.id)).status == "failed" and e,
                      10.0, "the execution to be marked failed")
    assert failed.error["ename"] == "RunProcessDied"
    assert launcher.running == []


def test_a_stopped_launcher_refuses_before_anything_is_created(
        plans: nr.Workspace, recording_executor: Callable[..., RecordingExecutor]) -> None:
    launcher, made = launcher_of(plans, recording_executor)
    queued = launching.launch_plan(plans, launcher, "count")
    launcher.shutdown(grace_s=0)
    assert plans.execution(queued.id).status == "failed"  # it never ran
    with pytest.raises(ServerStateError, match="stopping"):
        launching.launch_plan(plans, launcher, "count")
    assert [e.id for e in plans.executions(kind="notebook")] == [queued.id]
    assert len(made) == 1


def test_the_form_shows_a_trigger_input_and_an_optional_one(plans: nr.Workspace) -> None:
    form = launching.plan_form(plans, "predict")
    [model] = [f for f in form.fields if f.is_input]
    assert (model.source, model.query, model.optional, model.problem) == \
        ("trigger", "nbripple://blessed_model?blessed=false", False, None)
    assert model.resolved is not None and model.resolved.ref == "blessed_model@2"
    [scale] = [f for f in form.fields if not f.is_input]
    assert (scale.type, scale.declared, scale.source, scale.value) == \
        ("integer", "2", "notebook", 2)
    [previous] = launching.plan_form(plans, "count").fields
    assert (previous.optional, previous.resolved, previous.problem, previous.query) == \
        (True, None, None, "nbripple://counter")


def test_the_form_says_why_an_input_resolves_to_nothing(ws: nr.Workspace) -> None:
    nr.register(nr.LaunchPlan("predict", notebook=str(NOTEBOOKS / "consumer.ipynb")),
                workspace=ws)
    [model] = [f for f in launching.plan_form(ws, "predict").fields if f.is_input]
    assert model.resolved is None and model.problem is not None
    assert "resolved to nothing" in model.problem


def test_a_host_without_a_watcher_refuses_to_start_one(ws: nr.Workspace) -> None:
    ctx = ServerContext(ws, token="unused")  # no make_watcher
    with pytest.raises(ServerStateError, match="cannot run a watcher"):
        api.set_watcher(ws, ctx, True)
    assert api.set_watcher(ws, ctx, False)["local"] is None
