"""Launch plans: validation, versions, activation, triggers, plans files and launches.

The watcher here is the real one, driven pass by pass with ``run_once()`` against a
real catalog; only its executor is replaced by the ``recording_executor`` fixture of
conftest.py, which records the jobs it is given instead of running them, so no kernel
starts.
"""

from __future__ import annotations

import inspect
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import nbripple as nr
from nbripple import launchplans as lp
from nbripple.executors import Executor
from nbripple.launchplans import PlanError, PlanNotFound
from nbripple.model import Firing
from nbripple.refs import Pinned, Query
from nbripple.watcher import Watcher

if TYPE_CHECKING:
    from conftest import RecordingExecutor

NOTEBOOKS = Path(__file__).parent / "notebooks"
CONSUMER = NOTEBOOKS / "consumer.ipynb"  # parameters: model (blessed_model?blessed=true), scale
ECHO = NOTEBOOKS / "echo.ipynb"  # parameters: text


@pytest.fixture
def executor(recording_executor: Callable[..., RecordingExecutor]) -> RecordingExecutor:
    return recording_executor()


@pytest.fixture
def watcher(ws: nr.Workspace, executor: RecordingExecutor) -> Watcher:
    return Watcher(workspace=ws, executor=executor)


@pytest.fixture
def blessed() -> nr.Artifact:
    return nr.Artifact("blessed_model", partition_keys=["blessed"])


def write_notebook(path: Path, parameters: str, body: str = "pass") -> Path:
    """A notebook with a tagged ``parameters`` cell."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    cell = new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def commit(artifact: nr.Artifact, value: Any = None, **partitions: str) -> int:
    """Commit a version of ``artifact`` now (an interactive execution); its number."""
    return artifact.create_from(value if value is not None else {"weights": [1]},
                                **partitions).version


def all_firings(ws: nr.Workspace, plan: str) -> list[Firing]:
    """A plan's firings, oldest first."""
    found: list[Firing] = ws.catalog.firings(plan=plan)  # type: ignore[attr-defined]
    return sorted(found, key=lambda f: (f.created_at, f.event_seq or 0))


def fired_versions(ws: nr.Workspace, plan: str) -> list[int | None]:
    return [f.trigger_version for f in all_firings(ws, plan)]


def blessed_plan(blessed: nr.Artifact, name: str = "predict", **options: Any) -> nr.LaunchPlan:
    """Run consumer.ipynb on every blessed model, with the blessed version as ``model``."""
    options.setdefault("trigger", nr.OnArtifact(blessed.query(blessed="true"),
                                                inputs={"model": blessed}))
    options.setdefault("concurrency", 100)  # the recording executor never finishes a job
    return nr.LaunchPlan(name, notebook=CONSUMER, **options)


def test_the_recording_executor_satisfies_the_executor_protocol(
        recording_executor: Callable[..., RecordingExecutor]) -> None:
    executor = recording_executor()
    methods = [name for name, value in vars(Executor).items()
               if callable(value) and not name.startswith("_")]
    assert {"submit", "ended", "start", "cancel_all"} <= set(methods)
    for name in methods:
        wanted = list(inspect.signature(getattr(Executor, name)).parameters)[1:]  # no self
        assert list(inspect.signature(getattr(executor, name)).parameters) == wanted, name
    assert executor.ended() == []


# -- validation at register time ------------------------------------------------------
def _bad_plans() -> list[tuple[str, dict[str, Any], str]]:
    blessed = nr.Artifact("blessed_model", partition_keys=["blessed"])
    other = nr.Artifact("other_model")
    return [
        ("unknown-parameter", {"parameters": {"scael": 3}},
         "consumer.ipynb has no parameter 'scael' (its parameters: model, scale)"),
        ("unknown-input", {"trigger": nr.OnArtifact(blessed, inputs={"modle": blessed})},
         "consumer.ipynb has no parameter 'modle'"),
        ("other-artifact-as-trigger",
         {"trigger": nr.OnArtifact(blessed, inputs={"model": other})},
         "input 'model' names artifact other_model as the triggering version, but the plan "
         "triggers on blessed_model; use other_model.query(...)"),
        ("artifact-input-without-trigger", {"parameters": {"model": blessed}},
         "parameter 'model' names artifact blessed_model as the triggering version, but the "
         "plan has no artifact trigger; pass blessed_model.query(...)"),
        ("missing-notebook", {"notebook": "no_such.ipynb"},
         "notebook no_such.ipynb not found"),
        ("bad-cron", {"schedule": "61 * * * *"}, "'61 * * * *' is not a valid cron schedule"),
        ("seconds-cron", {"schedule": "* * * * * *"}, "is not a valid cron schedule"),
        ("bad-timezone", {"schedule": "0 2 * * *", "timezone": "Mars/Olympus_Mons"},
         "unknown timezone 'Mars/Olympus_Mons'"),
        ("bad-catchup", {"schedule": "0 2 * * *", "catchup": "some"},
         "catchup must be one of ('latest', 'all', 'none')"),
        ("non-json-literal", {"parameters": {"scale": {1, 2}}},
         "parameter 'scale' must be JSON data"),
        ("nan-literal", {"parameters": {"scale": float("nan")}},
         "parameter 'scale' must be JSON data"),
        ("twice", {"parameters": {"model": "blessed_model@1"},
                   "trigger": nr.OnArtifact(blessed, inputs={"model": blessed})},
         "parameter 'model' is given both in parameters and in the trigger's inputs"),
        ("bad-depth", {"max_chain_depth": 0}, "max_chain_depth must be an integer >= 1"),
        ("not-a-trigger", {"trigger": blessed},
         "trigger must be nr.OnArtifact(...), got Artifact"),
        ("time-partition-trigger",
         {"trigger": nr.OnArtifact(nr.query("daily", time_partition="2024-01-01"))},
         "cannot pin a time partition"),
    ]


@pytest.mark.parametrize(("case", "options", "message"), _bad_plans(),
                         ids=[case for case, _, _ in _bad_plans()])
def test_an_invalid_plan_is_refused_with_a_clear_error_and_nothing_registered(
        ws: nr.Workspace, case: str, options: dict[str, Any], message: str) -> None:
    options.setdefault("notebook", CONSUMER)
    plan = nr.LaunchPlan(case, **options)
    with pytest.raises(PlanError) as info:
        nr.register(plan)
    assert message in str(info.value)
    assert str(info.value).startswith(f"plan {case}: ")
    assert nr.plans() == []
    assert ws.catalog.plan_versions(case) == []  # type: ignore[attr-defined]


def test_a_missing_notebook_error_says_where_it_looked(tmp_path: Path, home: Path) -> None:
    plan = nr.LaunchPlan("lost", notebook="lost.ipynb", base_dir=tmp_path / "plans")
    with pytest.raises(PlanError, match=r"lost\.ipynb not found") as info:
        nr.register(plan)
    assert str(tmp_path / "plans") in str(info.value)


def test_one_invalid_plan_registers_none_of_the_others(ws: nr.Workspace) -> None:
    good = nr.LaunchPlan("good", notebook=ECHO, parameters={"text": "hi"})
    bad = nr.LaunchPlan("bad", notebook=ECHO, parameters={"txet": "hi"})
    with pytest.raises(PlanError, match=r"plan bad: echo\.ipynb has no parameter 'txet'"):
        lp.register_all([good, bad])
    assert nr.plans() == []


def test_two_plans_with_one_name_are_refused(ws: nr.Workspace) -> None:
    first = nr.LaunchPlan("same", notebook=ECHO)
    second = nr.LaunchPlan("same", notebook=ECHO, parameters={"text": "other"})
    with pytest.raises(PlanError, match="two launch plans are named 'same'"):
        lp.register_all([first, second])
    assert nr.plans() == []


def test_a_valid_plan_stores_a_json_spec_of_its_inputs(ws: nr.Workspace,
                                                       blessed: nr.Artifact) -> None:
    plan = blessed_plan(blessed, parameters={"scale": 3}, schedule="0 2 * * *",
                        timezone="Europe/Paris", catchup="all", retries=2)
    assert nr.register(plan) == 1
    record = lp.get_plan("predict")
    assert record.spec["notebook"] == str(CONSUMER)
    assert record.spec["inputs"] == {"model": {"trigger": True}, "scale": {"value": 3}}
    assert record.spec["trigger"] == {"artifact": "blessed_model",
                                      "partitions": {"blessed": "true"}, "strict": False,
                                      "time_partition": None}
    assert (record.spec["schedule"], record.spec["timezone"], record.spec["catchup"],
            record.spec["retries"]) == ("0 2 * * *", "Europe/Paris", "all", 2)
    assert not record.active


# -- versions ------------------------------------------------------------------------
def test_registering_the_same_plan_again_keeps_its_version(ws: nr.Workspace,
                                                           blessed: nr.Artifact) -> None:
    assert nr.register(blessed_plan(blessed, parameters={"scale": 2})) == 1
    assert nr.register(blessed_plan(blessed, parameters={"scale": 2})) == 1
    assert lp.register_all([blessed_plan(blessed, parameters={"scale": 2})]) == [
        lp.Registration("predict", 1, False)]
    assert [v for v, _ in ws.catalog.plan_versions("predict")] == [1]  # type: ignore[attr-defined]


def test_a_changed_plan_gets_a_new_version(ws: nr.Workspace, blessed: nr.Artifact) -> None:
    assert nr.register(blessed_plan(blessed, parameters={"scale": 2})) == 1
    assert lp.register_all([blessed_plan(blessed, parameters={"scale": 3})]) == [
        lp.Registration("predict", 2, True)]
    assert nr.register(blessed_plan(blessed, parameters={"scale": 3}, retries=1)) == 3
    versions = ws.catalog.plan_versions("predict")  # type: ignore[attr-defined]
    assert [(v, spec["inputs"]["scale"]["value"]) for v, spec in versions] == [
        (1, 2), (2, 3), (3, 3)]
    record = lp.get_plan("predict")
    assert (record.version, record.latest_version) == (3, 3)


def test_an_active_plan_moves_to_its_new_version(ws: nr.Workspace, watcher: Watcher,
                                                 executor: RecordingExecutor,
                                                 blessed: nr.Artifact) -> None:
    nr.register(blessed_plan(blessed, parameters={"scale": 2}))
    nr.activate("predict")
    assert nr.register(blessed_plan(blessed, parameters={"scale": 5})) == 2
    record = lp.get_plan("predict")
    assert record.active and record.version == 2
    assert record.spec["inputs"]["scale"] == {"value": 5}

    version = commit(blessed, blessed="true")
    watcher.run_once()
    [firing] = all_firings(ws, "predict")
    assert firing.plan_version == 2
    assert [job.parameters for job in executor.jobs] == [
        {"model": Pinned("blessed_model", version), "scale": 5}]


def test_an_inactive_plan_stays_inactive_at_its_new_version(ws: nr.Workspace,
                                                            blessed: nr.Artifact) -> None:
    nr.register(blessed_plan(blessed, parameters={"scale": 2}))
    nr.activate("predict")
    nr.deactivate("predict")
    nr.register(blessed_plan(blessed, parameters={"scale": 4}))
    record = lp.get_plan("predict")
    assert not record.active
    assert record.version == 2
    [listed] = nr.plans()
    assert (listed.name, listed.active, listed.version) == ("predict", False, 2)


# -- activation and deactivation ---------------------------------------------------------
def test_activation_starts_from_now(ws: nr.Workspace, executor: RecordingExecutor,
                                    blessed: nr.Artifact) -> None:
    nr.register(blessed_plan(blessed))
    before = [commit(blessed, blessed="true"), commit(blessed, blessed="true")]
    nr.activate("predict")
    # the first watcher pass sees the versions committed before activation: none fires
    watcher = Watcher(workspace=ws, executor=executor)
    watcher.run_once()
    assert all_firings(ws, "predict") == []
    assert executor.jobs == []

    after = commit(blessed, blessed="true")
    watcher.run_once()
    assert fired_versions(ws, "predict") == [after]
    assert after not in before
    assert [job.parameters["model"] for job in executor.jobs] == [Pinned("blessed_model", after)]


def test_a_running_watcher_does_not_fire_versions_from_before_activation(
        ws: nr.Workspace, watcher: Watcher, executor: RecordingExecutor,
        recording_executor: Callable[..., RecordingExecutor], blessed: nr.Artifact) -> None:
    watcher.run_once()
    nr.register(blessed_plan(blessed))
    commit(blessed, blessed="true")
    watcher.run_once()
    nr.activate("predict")
    watcher.run_once()
    Watcher(workspace=ws, executor=recording_executor()).run_once()
    assert all_firings(ws, "predict") == []
    after = commit(blessed, blessed="true")
    watcher.run_once()
    assert fired_versions(ws, "predict") == [after]


def test_a_new_watcher_fires_versions_committed_while_the_plan_was_active(
        ws: nr.Workspace, executor: RecordingExecutor, blessed: nr.Artifact) -> None:
    nr.register(blessed_plan(blessed))
    nr.activate("predict")
    versions = [commit(blessed, blessed="true") for _ in range(3)]
    Watcher(workspace=ws, executor=executor).run_once()
    assert fired_versions(ws, "predict") == versions
    assert {f.kind for f in all_firings(ws, "predict")} == {"artifact"}


def test_deactivate_stops_firing(ws: nr.Workspace, watcher: Watcher, blessed: nr.Artifact,
                                 recording_executor: Callable[..., RecordingExecutor]) -> None:
    nr.register(blessed_plan(blessed))
    nr.activate("predict")
    first = commit(blessed, blessed="true")
    watcher.run_once()
    assert fired_versions(ws, "predict") == [first]

    record = nr.deactivate("predict")
    assert not record.active
    commit(blessed, blessed="true")
    watcher.run_once()
    Watcher(workspace=ws, executor=recording_executor()).run_once()
    assert fired_versions(ws, "predict") == [first]

    nr.activate("predict")  # again from now: the version committed while off never fires
    watcher.run_once()
    assert fired_versions(ws, "predict") == [first]
    third = commit(blessed, blessed="true")
    watcher.run_once()
    assert fired_versions(ws, "predict") == [first, third]


def test_activating_an_unknown_plan_names_the_registered_ones(ws: nr.Workspace) -> None:
    nr.register(nr.LaunchPlan("echo_plan", notebook=ECHO))
    with pytest.raises(PlanNotFound,
                       match=r"no launch plan named 'ecoh_plan' \(plans: echo_plan\)"):
        nr.activate("ecoh_plan")
    with pytest.raises(PlanNotFound, match="no launch plan named 'x'"):
        nr.deactivate("x")


# -- what fires ----------------------------------------------------------------------
def test_an_artifact_trigger_fires_on_every_version(ws: nr.Workspace, watcher: Watcher,
                                                    blessed: nr.Artifact) -> None:
    plan = blessed_plan(blessed, trigger=nr.OnArtifact(blessed, inputs={"model": blessed}))
    nr.register(plan)
    nr.activate("predict")
    versions = [commit(blessed, blessed=flag) for flag in ("true", "false", "true")]
    commit(nr.Artifact("unrelated"), 1)
    watcher.run_once()
    assert fired_versions(ws, "predict") == versions
    assert {f.trigger_artifact for f in all_firings(ws, "predict")} == {"blessed_model"}


def test_the_watcher_passes_only_when_what_it_acts_on_changed(
        ws: nr.Workspace, executor: RecordingExecutor, blessed: nr.Artifact) -> None:
    """Any commit moves the change token; one that adds no version, changes no plan and
    leaves nothing pending (a run's own writes) costs the watcher one read, no pass."""
    nr.register(blessed_plan(blessed))
    nr.activate("predict")
    watcher = Watcher(workspace=ws, executor=executor, housekeeping_s=3600)
    assert watcher.run_once(force=False)  # the first pass
    assert not watcher.run_once(force=False)  # nothing was committed
    token = ws.catalog.change_token()
    ws.catalog.watcher_heartbeat("another", os.getpid(), "host")  # type: ignore[attr-defined]
    assert ws.catalog.change_token() != token
    assert not watcher.run_once(force=False)
    assert watcher.passes == 1
    version = commit(blessed, blessed="true")  # a new version
    assert watcher.run_once(force=False)
    assert fired_versions(ws, "predict") == [version]
    nr.deactivate("predict")  # a change of the plans
    assert watcher.run_once(force=False)
    nr.activate("predict")
    assert watcher.run_once(force=False)
    firing_id = nr.launch("predict")  # a pending firing
    assert watcher.run_once(force=False)
    assert ws.catalog.get_firing(firing_id).status == "running"  # type: ignore[attr-defined]
    assert watcher.passes == 5 and len(executor.jobs) == 2


def test_a_query_trigger_fires_only_on_matching_versions(ws: nr.Workspace, watcher: Watcher,
                                                         blessed: nr.Artifact) -> None:
    nr.register(blessed_plan(blessed))
    nr.activate("predict")
    versions = {flag: [] for flag in ("true", "false")}  # type: dict[str, list[int]]
    for flag in ("false", "true", "false", "true"):
        versions[flag].append(commit(blessed, blessed=flag))
    watcher.run_once()
    assert fired_versions(ws, "predict") == versions["true"]


def test_a_query_trigger_matches_a_partition_subset_unless_strict(
        ws: nr.Workspace, watcher: Watcher) -> None:
    model = nr.Artifact("regional_model", partition_keys=["blessed", "region"])
    nr.register(nr.LaunchPlan("subset", notebook=ECHO, concurrency=100,
                              trigger=nr.OnArtifact(model.query(blessed="true"))))
    nr.register(nr.LaunchPlan("strict_eu", notebook=ECHO, concurrency=100,
                              trigger=nr.OnArtifact(model.query(blessed="true", region="eu",
                                                                strict=True))))
    nr.register(nr.LaunchPlan("strict_partial", notebook=ECHO, concurrency=100,
                              trigger=nr.OnArtifact(model.query(blessed="true", strict=True))))
    for name in ("subset", "strict_eu", "strict_partial"):
        nr.activate(name)
    eu = commit(model, blessed="true", region="eu")
    us = commit(model, blessed="true", region="us")
    commit(model, blessed="false", region="eu")
    watcher.run_once()
    assert fired_versions(ws, "subset") == [eu, us]
    assert fired_versions(ws, "strict_eu") == [eu]
    # strict: {blessed} is never equal to {blessed, region}
    assert fired_versions(ws, "strict_partial") == []


def test_a_plan_stops_at_its_max_chain_depth_and_says_why(ws: nr.Workspace, watcher: Watcher,
                                                          executor: RecordingExecutor,
                                                          blessed: nr.Artifact) -> None:
    nr.register(blessed_plan(blessed, max_chain_depth=1))
    nr.activate("predict")
    version = commit(blessed, blessed="true")  # depth 1 would be the first run's depth
    watcher.run_once()
    [firing] = all_firings(ws, "predict")
    assert (firing.status, firing.trigger_version) == ("skipped", version)
    assert executor.jobs == []
    reason = lp.get_plan("predict").stopped_reason
    assert reason is not None and "max_chain_depth=1" in reason


# -- parameters of a firing ------------------------------------------------------------
def test_spec_parameters_maps_trigger_query_and_literal_inputs(
        tmp_path: Path, ws: nr.Workspace, watcher: Watcher, executor: RecordingExecutor,
        blessed: nr.Artifact) -> None:
    notebook = write_notebook(
        tmp_path / "nb" / "three_inputs.ipynb",
        "model = 'nbripple://blessed_model?blessed=true'\n"
        "baseline = 'nbripple://baseline'\nthreshold = 0.5\nlabels = []",
    )
    baseline = nr.Artifact("baseline")
    plan = nr.LaunchPlan(
        "three", notebook=notebook,
        parameters={"threshold": 0.9, "labels": ["a", "b"]},
        trigger=nr.OnArtifact(blessed.query(blessed="true"),
                              inputs={"model": blessed, "baseline": baseline.query()}),
    )
    nr.register(plan)
    spec = lp.get_plan("three").spec
    assert spec["inputs"] == {"threshold": {"value": 0.9}, "labels": {"value": ["a", "b"]},
                              "model": {"trigger": True},
                              "baseline": {"query": "nbripple://baseline"}}
    nr.activate("three")
    version = commit(blessed, blessed="true")
    watcher.run_once()
    [firing] = all_firings(ws, "three")
    expected = {"threshold": 0.9, "labels": ["a", "b"], "baseline": Query("baseline"),
                "model": Pinned("blessed_model", version)}
    assert lp.spec_parameters(spec, firing) == expected
    assert [job.parameters for job in executor.jobs] == [expected]
    assert executor.jobs[0].notebook == str(notebook)

    # without a triggering version (a launch, a tick), "the triggering version" is the
    # trigger's query: the run takes the newest matching version
    assert lp.spec_parameters(spec, None)["model"] == Query("blessed_model",
                                                            {"blessed": "true"})


def test_spec_parameters_of_a_pinned_version_input(ws: nr.Workspace,
                                                   blessed: nr.Artifact) -> None:
    first = blessed.create_from({"weights": [1]}, blessed="true")
    nr.register(nr.LaunchPlan("pinned", notebook=CONSUMER, parameters={"model": first}))
    spec = lp.get_plan("pinned").spec
    assert spec["inputs"] == {"model": {"query": "nbripple://blessed_model@1"}}
    assert lp.spec_parameters(spec, None) == {"model": Pinned("blessed_model", 1)}


# -- plans files -----------------------------------------------------------------------
PLANS_PY = '''\
"""Plans of a small project."""
import nbripple as nr
from contracts import blessed_model

predict = nr.LaunchPlan(
    "predict", notebook="consumer.ipynb",
    trigger=nr.OnArtifact(blessed_model.query(blessed="true"),
                          inputs={"model": blessed_model}),
)
nightly = nr.LaunchPlan("nightly", notebook="notebooks/echo.ipynb",
                        parameters={"text": "night"}, schedule="0 2 * * *")
same_plan_again = predict
not_a_plan = {"name": "ignored"}
'''


def make_project(root: Path) -> Path:
    """A plans.py with its contracts.py and notebooks beside it; returns plans.py."""
    root.mkdir(parents=True)
    (root / "contracts.py").write_text(
        "import nbripple as nr\n"
        "blessed_model = nr.Artifact('blessed_model', partition_keys=['blessed'])\n")
    (root / "consumer.ipynb").write_bytes(CONSUMER.read_bytes())
    (root / "notebooks").mkdir()
    (root / "notebooks" / "echo.ipynb").write_bytes(ECHO.read_bytes())
    (root / "plans.py").write_text(PLANS_PY)
    return root / "plans.py"


def test_load_plans_file_finds_every_plan_with_notebooks_next_to_it(
        tmp_path: Path, ws: nr.Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    plans_py = make_project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    found = lp.load_plans_file(plans_py)
    assert [p.name for p in found] == ["predict", "nightly"]
    assert [p.notebook_path() for p in found] == [
        (tmp_path / "project" / "consumer.ipynb").resolve(),
        (tmp_path / "project" / "notebooks" / "echo.ipynb").resolve()]
    assert [r.version for r in lp.register_all(found)] == [1, 1]
    specs = {p.name: p.spec for p in nr.plans()}
    assert specs["predict"]["notebook"] == str(tmp_path / "project" / "consumer.ipynb")
    assert specs["nightly"]["schedule"] == "0 2 * * *"
    assert str(tmp_path / "project") not in sys.path


@pytest.mark.parametrize(("source", "message"), [
    ("import nbripple as nr\nx = 1\n", "defines no nr.LaunchPlan at its top level"),
    ("import nbripple as nr\n\nraise RuntimeError('no config here')\n",
     "failed to import (line 3): RuntimeError: no config here"),
    ("import nbripple as nr\nplan = nr.LaunchPlan(\n", "failed to import: SyntaxError"),
    ("from contracts_missing import x\n",
     "failed to import (line 1): ModuleNotFoundError"),
])
def test_a_broken_plans_file_is_a_plan_error(tmp_path: Path, home: Path, source: str,
                                             message: str) -> None:
    path = tmp_path / "plans.py"
    path.write_text(source)
    with pytest.raises(PlanError) as info:
        lp.load_plans_file(path)
    assert message in str(info.value)


def test_a_missing_plans_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"plans file .*nowhere\.py not found"):
        lp.load_plans_file(tmp_path / "nowhere.py")


def test_a_plan_declared_in_a_module_resolves_its_notebook_next_to_that_module(
        tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "lib"
    write_notebook(package / "job.ipynb", "x = 1")
    (package / "jobplans.py").write_text(textwrap.dedent("""\
        import nbripple as nr
        plan = nr.LaunchPlan("job", notebook="job.ipynb", parameters={"x": 2})
    """))
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.chdir(tmp_path)
    try:
        import jobplans  # type: ignore[import-not-found]

        assert jobplans.plan.notebook_path() == (package / "job.ipynb").resolve()
        assert nr.register(jobplans.plan) == 1
    finally:
        sys.modules.pop("jobplans", None)


# -- launch --------------------------------------------------------------------------
def test_launch_creates_a_manual_firing_that_the_watcher_runs(
        ws: nr.Workspace, watcher: Watcher, executor: RecordingExecutor) -> None:
    nr.register(nr.LaunchPlan("echo_plan", notebook=ECHO, parameters={"text": "now"}))
    nr.activate("echo_plan")
    firing_id = nr.launch("echo_plan")
    [firing] = all_firings(ws, "echo_plan")
    assert (firing.id, firing.kind, firing.status, firing.plan_version, firing.chain_depth) == (
        firing_id, "manual", "pending", 1, 0)
    assert firing.trigger_artifact is None

    watcher.run_once()
    [job] = executor.jobs
    assert (job.notebook, job.parameters) == (str(ECHO), {"text": "now"})
    firing = ws.catalog.get_firing(firing_id)  # type: ignore[attr-defined]
    assert (firing.status, firing.execution_id) == ("running", job.execution_id)
    execution = ws.execution(job.execution_id)
    assert execution.trigger is not None
    assert (execution.trigger["type"], execution.trigger["plan"]) == ("manual", "echo_plan")

    second = nr.launch("echo_plan")  # every launch is its own firing
    assert second != firing_id
    assert len(all_firings(ws, "echo_plan")) == 2


def test_launching_a_triggered_plan_uses_the_newest_matching_version(
        ws: nr.Workspace, watcher: Watcher, executor: RecordingExecutor,
        blessed: nr.Artifact) -> None:
    nr.register(blessed_plan(blessed))
    nr.activate("predict")
    nr.launch("predict")
    watcher.run_once()
    [job] = executor.jobs
    assert job.parameters == {"model": Query("blessed_model", {"blessed": "true"})}


def test_launch_refuses_an_inactive_or_unknown_plan(ws: nr.Workspace) -> None:
    nr.register(nr.LaunchPlan("echo_plan", notebook=ECHO))
    with pytest.raises(PlanError, match="plan echo_plan is inactive; activate it first"):
        nr.launch("echo_plan")
    with pytest.raises(PlanNotFound, match="no launch plan named 'nope'"):
        nr.launch("nope")
    assert all_firings(ws, "echo_plan") == []


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 6,9,11 *"])
def test_a_schedule_that_never_fires_is_refused_at_register(ws: nr.Workspace,
                                                            expression: str) -> None:
    plan = nr.LaunchPlan("never", notebook=ECHO, parameters={"text": "x"},
                         schedule=expression)
    with pytest.raises(PlanError, match=r"plan never: schedule .* never fires") as info:
        nr.register(plan)
    assert "\n" not in str(info.value)
    assert nr.plans() == []


@pytest.mark.parametrize(("option", "value", "message"), [
    ("retry_delay_s", "x", "retry_delay_s must be a number of seconds >= 0, got 'x'"),
    ("retry_delay_s", True, "retry_delay_s must be a number"),
    ("retry_delay_s", float("nan"), "retry_delay_s must be a number"),
    ("timeout", "x", "timeout must be a number of seconds > 0"),
    ("timeout", 0, "timeout must be a number of seconds > 0"),
    ("concurrency", True, "concurrency must be an integer >= 1, got True"),
    ("max_chain_depth", 2.5, "max_chain_depth must be an integer >= 1"),
    ("retries", False, "retries must be an integer >= 0"),
    ("kernel_name", 3, "kernel_name must be a string or None, got int 3"),
    ("kernel_name", "", "kernel_name is empty"),
    ("description", None, "description must be a string, got NoneType"),
    ("parameters", ["text"], "parameters must be a dict"),
    ("schedule", 5, "schedule must be a cron string"),
    ("notebook", 5, "notebook must be a path to a .ipynb file, got int 5"),
])
def test_every_launch_plan_argument_is_type_checked(ws: nr.Workspace, option: str,
                                                    value: Any, message: str) -> None:
    arguments: dict[str, Any] = {"notebook": ECHO, "parameters": {"text": "x"}, option: value}
    plan = nr.LaunchPlan("typed", **arguments)
    with pytest.raises(PlanError) as info:
        nr.register(plan)
    assert message in str(info.value)
    assert str(info.value).startswith("plan typed: ")
    assert "\n" not in str(info.value)
    assert nr.plans() == []


def test_a_plan_name_that_is_not_a_string_is_a_plan_error(ws: nr.Workspace) -> None:
    with pytest.raises(PlanError, match="a launch plan's name must be a string, got int 5"):
        nr.register(nr.LaunchPlan(5, notebook=ECHO))  # type: ignore[arg-type]
