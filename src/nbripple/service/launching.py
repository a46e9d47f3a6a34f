"""Runs started over the REST API — a plan launched with overrides, a rerun, a
relaunch — and the launch form that shows what a launch would use.

Each is checked first with :func:`nbripple.preparation.check`, the steps
:func:`nbripple.runner.run` takes before its kernel starts: an unknown parameter, a
value of the wrong type or an input that is no version of its artifact is refused
before anything is created. Then a ``queued`` execution is recorded and handed to a
:class:`Launcher`, whose executor runs it in the background (the same
:class:`~nbripple.executors.RunJob` the watcher submits), and the caller gets the
execution at once.

The launcher is the serving process's own, not its watcher's: a watcher's executor
is driven by the watcher's thread alone, and stopping the watcher (``POST
watcher/stop``) must not cancel the runs people launched. The server shuts the
launcher down when it stops: running executions get the watcher's grace period, then
they are cancelled.

Example::

    launcher = Launcher(ws)
    execution = launch_plan(ws, launcher, "predict", {"model": "blessed_model@1"})
    execution.status                                   # "queued"
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .. import launchplans as lp
from ..errors import NbrippleError, NotFound, ServerStateError
from ..executors import Executor, RunJob
from ..model import ArtifactVersion, Execution, PlanRecord
from ..parameters import ParametersError
from ..preparation import (
    InputResolutionError,
    NotebookNotFound,
    Prepared,
    check,
    check_rerun,
    declared_artifact,
    prepare_notebook,
    read_notebook,
    relaunch_parameters,
    requested_value,
    resolve_input,
)
from ..registry import make_executor
from .executions import make_execution, run_error
from .workspace import Workspace

log = logging.getLogger("nbripple.launching")

REAP_EVERY_S = 0.5
"""How often the launcher looks for runs whose process ended."""


class Launcher:
    """The executor of runs started over the API, made on the first launch (from the
    home's ``[executor]`` settings, as the watcher's is) and shut down with the server.

    Thread-safe: requests submit from the server's pool threads. A run whose process
    ends without finishing its execution is marked failed, as the watcher does.
    """

    def __init__(self, ws: Workspace, executor: Callable[[], Executor] | None = None) -> None:
        self.ws = ws
        self._make = executor or (lambda: make_executor(ws.settings))
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._closed = False
        self._reaper: threading.Thread | None = None

    def submit(self, job: RunJob) -> None:
        """Start ``job`` in the background."""
        with self._lock:
            self.check_open()
            if self._executor is None:
                executor = self._make()
                start = getattr(executor, "start", None)  # optional in custom executors
                if start is not None:
                    start(os.getpid())
                self._executor = executor
            self._executor.submit(job)
            self._running.add(job.execution_id)
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap_while_running,
                                                name="nbripple-launcher-reap", daemon=True)
                self._reaper.start()

    def check_open(self) -> None:
        """Raise ServerStateError once the launcher is shutting down."""
        if self._closed:
            raise ServerStateError("the server is stopping; launch again once it runs")

    @property
    def running(self) -> list[str]:
        """Execution ids of the launched runs still in flight."""
        with self._lock:
            return sorted(self._running)

    def _reap_while_running(self) -> None:
        while True:
            time.sleep(REAP_EVERY_S)
            with self._lock:
                if self._executor is None or self._closed:
                    self._reaper = None
                    return
                ended = self._executor.ended()
                self._running.difference_update(ended)
            for execution_id in ended:
                self._settle(execution_id, "RunProcessDied",
                             "the run's process ended before the run finished")
            with self._lock:  # a submit after this starts a new reaper
                if not self._running:
                    self._reaper = None
                    return

    def _settle(self, execution_id: str, ename: str, evalue: str,
                status: str = "failed") -> None:
        """Finish an execution its run left queued or running (a no-op if it ended)."""
        try:
            found = self.ws.catalog.get_execution(execution_id)
            if found is not None and found.status in ("queued", "running"):
                self.ws.catalog.finish_execution(
                    execution_id, commit_staged=False, status=status,
                    finished_at=datetime.now(UTC), error=run_error(ename, evalue))
        except Exception as exc:  # the next sweep of dead executions marks it
            log.warning("launched run %s not settled: %s: %s", execution_id,
                        type(exc).__name__, exc)

    def shutdown(self, grace_s: float | None = None) -> None:
        """Refuse new runs, let running ones finish for ``grace_s`` (default: the
        watcher's grace period), cancel the rest and stop the executor."""
        with self._lock:
            self._closed = True
            executor = self._executor
        if executor is None:
            return
        grace = self.ws.settings.watcher.grace_period_s if grace_s is None else grace_s
        deadline = time.monotonic() + grace
        while executor.active() and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped = executor.cancel_all() if executor.active() else []
        executor.shutdown()
        with self._lock:
            left, self._running = self._running, set()
        for execution_id in sorted(left):
            if execution_id in stopped:
                self._settle(execution_id, "Cancelled", "the server stopped before the run "
                             "finished", status="cancelled")
            else:
                self._settle(execution_id, "RunProcessDied",
                             "the run's process ended before the run finished")


# -- launching ---------------------------------------------------------------------
def launch_plan(ws: Workspace, launcher: Launcher, name: str,
                overrides: dict[str, Any] | None = None) -> Execution:
    """Run plan ``name`` now with ``overrides`` on top of its parameters (active or
    not: the run does not go through the watcher). Returns the queued execution."""
    plan = lp.get_plan(name, workspace=ws)
    spec = plan.spec
    given = {**lp.spec_parameters(spec, None), **(overrides or {})}
    checked = check(ws, spec["notebook"], given, kernel_name=spec.get("kernel_name"))
    _check_types(checked.prepared, overrides)
    trigger = {"type": "manual", "plan": plan.name, "plan_version": plan.version,
               "by": "api"}
    return _start(ws, launcher, notebook=spec["notebook"], parameters=given, trigger=trigger,
                  kernel_name=spec.get("kernel_name"), timeout=spec.get("timeout"))


def rerun(ws: Workspace, launcher: Launcher, execution_id: str) -> Execution:
    """Rerun an execution (its notebook snapshot, its pinned inputs) in the background."""
    original = ws.execution(execution_id)
    check_rerun(ws, original)
    return _start(ws, launcher, notebook=str(original.notebook or ""),
                  parameters=dict(original.parameters),
                  trigger={"type": "rerun", "of": original.id}, parent_id=original.id,
                  chain_depth=original.chain_depth, cwd=original.cwd, rerun_of=original.id)


def relaunch(ws: Workspace, launcher: Launcher, execution_id: str,
             overrides: dict[str, Any] | None = None) -> Execution:
    """Relaunch an execution (the notebook as it is now, smart defaults resolved again,
    ``overrides`` on top of what it was given) in the background."""
    original = ws.execution(execution_id)
    given = relaunch_parameters(original, overrides)
    checked = check(ws, str(original.notebook), given, cwd=original.cwd)
    _check_types(checked.prepared, overrides)
    return _start(ws, launcher, notebook=str(original.notebook), parameters=given,
                  trigger={"type": "relaunch", "of": original.id}, parent_id=original.id,
                  chain_depth=original.chain_depth, cwd=original.cwd)


def _check_types(prepared: Prepared, overrides: dict[str, Any] | None) -> None:
    """Refuse an override whose JSON type cannot stand for its notebook default."""
    for key, value in (overrides or {}).items():
        param = prepared.params.get(key)
        problem = param.type_problem(value) if param is not None else None
        if problem is not None:
            raise ParametersError(f"{prepared.label}: {problem}")


def _start(ws: Workspace, launcher: Launcher, *, notebook: str, parameters: dict[str, Any],
           trigger: dict[str, Any], parent_id: str | None = None, chain_depth: int = 0,
           kernel_name: str | None = None, timeout: float | None = None,
           cwd: str | None = None, rerun_of: str | None = None) -> Execution:
    launcher.check_open()
    execution = make_execution(
        "notebook", status="queued", notebook=notebook, trigger=trigger,
        requested={k: requested_value(v) for k, v in parameters.items()},
        parent_id=parent_id, chain_depth=chain_depth, cwd=cwd,
        label=Path(notebook).name if notebook else None)
    ws.catalog.create_execution(execution)
    job = RunJob(execution_id=execution.id, home=str(ws.home), notebook=notebook,
                 parameters=parameters, kernel_name=kernel_name, timeout=timeout,
                 watcher_pid=os.getpid(), cwd=cwd, rerun_of=rerun_of)
    try:
        launcher.submit(job)
    except Exception as exc:  # the run never started: record why
        ws.catalog.finish_execution(
            execution.id, commit_staged=False, status="failed", finished_at=datetime.now(UTC),
            error=run_error(type(exc).__name__, f"the run could not start: {exc}"))
        raise
    log.info("launched %s (%s) -> execution %s", notebook, trigger["type"], execution.id)
    return ws.execution(execution.id)


# -- the launch form ------------------------------------------------------------------
@dataclass(frozen=True)
class FormField:
    """One parameter of a plan's notebook as a launch would set it now.

    ``declared`` is the notebook's default as written; ``source`` says where the value
    comes from (``notebook``, ``plan`` or ``trigger``: the plan's trigger query, as in
    a launch that no version started). For a parameter, ``value`` is what a launch
    injects (None when the default is not a literal); for an artifact input,
    ``query`` is what it resolves and ``resolved`` the version it would pin now
    (None: nothing matches, ``problem`` says why unless the input is optional),
    ``artifact`` the artifact it takes versions of and ``choices`` the newest of them
    (what a form offers to pick from; any ref or query of that artifact is accepted).
    """

    name: str
    type: str | None
    declared: str
    source: str
    is_input: bool
    optional: bool = False
    value: Any = None
    plan_value: Any = None
    query: str | None = None
    resolved: ArtifactVersion | None = None
    problem: str | None = None
    artifact: str | None = None
    choices: tuple[ArtifactVersion, ...] = ()


@dataclass(frozen=True)
class PlanForm:
    """A plan's launch form: the plan, its notebook and kernel, and every parameter."""

    plan: PlanRecord
    notebook: str
    kernel_name: str
    fields: list[FormField]


def plan_form(ws: Workspace, name: str) -> PlanForm:
    """What launching plan ``name`` would use now, parameter by parameter."""
    plan = lp.get_plan(name, workspace=ws)
    spec = plan.spec
    given = lp.spec_parameters(spec, None)
    raw, path = read_notebook(spec["notebook"], None)
    prepared = prepare_notebook(ws, raw, path, given, spec.get("kernel_name"), None,
                                snapshot=False)
    sources = {key: "trigger" if item.get("trigger") else "plan"
               for key, item in spec["inputs"].items()}
    return PlanForm(plan, spec["notebook"], prepared.kernel_name,
                    form_fields(ws, prepared, given, sources))


CHOICES = 50
"""How many of an input's newest versions a form offers to pick from."""


def form_fields(ws: Workspace, prepared: Prepared, given: dict[str, Any],
                sources: dict[str, str]) -> list[FormField]:
    """Each parameter of ``prepared`` as a run given ``given`` would set it now;
    ``sources`` says where each given value comes from (``notebook`` when not given)."""
    fields = []
    for key, param in prepared.params.items():
        source = sources.get(key, "notebook") if key in given else "notebook"
        given_value = requested_value(given[key]) if key in given else None
        if not param.is_input:
            value = given_value if key in given else param.default_value
            fields.append(FormField(key, param.type, param.default_source, source, False,
                                    value=value, plan_value=given_value))
            continue
        resolved, problem = None, None
        try:
            resolved = resolve_input(ws, key, param, given)
        except InputResolutionError as exc:
            problem = str(exc)
        artifact = declared_artifact(param)
        fields.append(FormField(
            key, param.type, param.default_source, source, True, optional=param.optional,
            plan_value=given_value, query=str(requested_value(given.get(key, param.input_ref))),
            resolved=resolved, problem=problem, artifact=artifact,
            choices=_choices(ws, artifact)))
    return fields


def _choices(ws: Workspace, artifact: str | None) -> tuple[ArtifactVersion, ...]:
    """The newest versions of ``artifact`` (none when it has none, or is undeclared)."""
    if artifact is None:
        return ()
    try:
        return tuple(ws.versions(artifact, limit=CHOICES))
    except NotFound:  # no version was ever made: nothing to pick
        return ()


# -- the relaunch form, and runs of a notebook file --------------------------------
class NotebookPathError(NbrippleError):
    """A notebook path given over the API is not one of the server's notebook root."""


@dataclass(frozen=True)
class RunForm:
    """The form of a run that is no plan's launch: a relaunch of ``execution``, or a
    run of the notebook file ``notebook`` (``execution`` None)."""

    notebook: str
    kernel_name: str
    fields: list[FormField]
    execution: Execution | None = None


def relaunch_form(ws: Workspace, execution_id: str) -> RunForm:
    """What relaunching an execution would use now: the notebook as it is now, what
    the original was given explicitly (source ``execution``), every other parameter
    from the notebook, its inputs resolved again."""
    original = ws.execution(execution_id)
    given = relaunch_parameters(original)
    raw, path = read_notebook(str(original.notebook), original.cwd)
    prepared = prepare_notebook(ws, raw, path, given, None, original.cwd, snapshot=False)
    fields = form_fields(ws, prepared, given, dict.fromkeys(given, "execution"))
    return RunForm(str(original.notebook), prepared.kernel_name, fields, original)


def notebook_under(root: Path, path: str) -> Path:
    """The notebook file ``path`` names under ``root``: a relative path with ``/``
    separators (as Jupyter's contents API writes them) of an existing ``.ipynb`` file.
    NotebookPathError when it is empty, absolute, not an .ipynb, or leaves ``root``
    (``..``, or a symlink that points outside); NotebookNotFound when no such file.

    Example::

        notebook_under(Path("/srv/notebooks"), "reports/daily.ipynb")
    """
    if not path.strip():
        raise NotebookPathError("path is empty: give a notebook path relative to the "
                                f"server's notebook root {root}")
    if "\x00" in path:
        raise NotebookPathError(f"path {path!r} holds a NUL character")
    given = PurePosixPath(path)
    if given.is_absolute() or PureWindowsPath(path).drive or path.startswith("\\"):
        raise NotebookPathError(f"path {path!r} is absolute: give it relative to the "
                                f"server's notebook root {root}")
    if given.suffix != ".ipynb":
        raise NotebookPathError(f"{path} is not a notebook: give the path of an .ipynb file")
    base = root.resolve()
    target = (base / given).resolve()
    if not target.is_relative_to(base):
        raise NotebookPathError(f"{path} is outside the server's notebook root {base}")
    if not target.is_file():
        raise NotebookNotFound(f"no notebook {path} under {base}, the notebook root of the "
                               "server (Jupyter's root directory, or the directory "
                               "`nbripple serve --root` names)")
    return target


def notebook_form(ws: Workspace, notebook: Path) -> RunForm:
    """What running ``notebook`` would use now: each parameter of its parameters cell,
    each input resolved by its smart default."""
    raw, path = read_notebook(notebook, None)
    prepared = prepare_notebook(ws, raw, path, {}, None, None, snapshot=False)
    return RunForm(str(path), prepared.kernel_name, form_fields(ws, prepared, {}, {}))


def launch_notebook(ws: Workspace, launcher: Launcher, notebook: Path,
                    parameters: dict[str, Any] | None = None) -> Execution:
    """Run ``notebook`` now with ``parameters`` (checked as ``nbripple run`` checks
    them, before anything is created), as ``nbripple run`` would: in its own
    directory. Returns the queued execution."""
    given = dict(parameters or {})
    checked = check(ws, notebook, given)
    _check_types(checked.prepared, given)
    return _start(ws, launcher, notebook=str(notebook), parameters=given,
                  trigger={"type": "manual", "by": "api"})


__all__ = ["FormField", "Launcher", "NotebookPathError", "PlanForm", "RunForm", "form_fields",
           "launch_notebook", "launch_plan", "notebook_form", "notebook_under", "plan_form",
           "relaunch", "relaunch_form", "rerun"]
