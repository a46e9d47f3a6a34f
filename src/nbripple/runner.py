"""Running a notebook as a task: papermill in a fresh kernel, all-or-nothing outputs.

The steps of :func:`run`:

1. snapshot the notebook (its bytes go to the store; the hash is recorded);
2. create the execution (``running``);
3. resolve artifact inputs (smart defaults or the caller's overrides) to pinned
   versions, record them as consumed — an input that resolves to nothing fails the
   run here, before any kernel starts;
4. execute with papermill in a fresh kernel (see :mod:`nbripple.kernels`); the run
   context reaches the kernel through a silent execute request, so no cell is added,
   execution counts are papermill's, and a kernel started before the run works too.
   papermill saves the notebook after every cell into ``<home>/runs/<execution id>/``;
5. on success commit every staged output in one transaction and mark the execution
   ``succeeded``; on failure (an error, the cell or run timeout, a dead kernel) mark it
   ``failed`` (error name, message, cell index), on SIGINT/SIGTERM ``cancelled``, and
   commit nothing. The executed notebook is stored every time, the cell that failed
   marked as papermill marks it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from . import context
from .executed import (
    describe,
    fix_metadata,
    hidden_error,
    log_papermill_output,
    mark_unfinished,
    original_index,
    quiet_papermill_parameter_warnings,
    stopped_outcome,
)
from .kernels import KernelNotFound as KernelNotFound  # re-exported
from .kernels import KernelStartError, RunGuard, enter_code, start_and_enter
from .kernels import kernel_manager as _kernel_manager
from .kernels import kill as _kill
from .kernels import shutdown as _shutdown
from .model import Execution
from .phases import stamp
from .preparation import InputResolutionError as InputResolutionError  # re-exported
from .preparation import NotebookNotFound as NotebookNotFound  # re-exported
from .preparation import (
    Prepared,
    prepare_notebook,
    read_notebook,
    relaunch_parameters,
    requested_value,
    rerun_source,
    resolve_inputs,
)
from .service import Workspace, current
from .service.executions import Heartbeat, exception_error, run_error

HEARTBEAT_S = 5.0


class RunCancelled(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM: recorded ``cancelled``, its notebook kept."""

    def __init__(self, execution_id: str, signal_name: str) -> None:
        super().__init__(f"run {execution_id} cancelled by {signal_name}")
        self.execution_id = execution_id
        self.signal_name = signal_name


@dataclass(frozen=True)
class _Options:
    timeout: float | None = None
    run_timeout: float | None = None
    start_timeout: float | None = None
    progress: bool = False
    report_mode: bool = False
    log_output: bool = False


def run(
    notebook: str | os.PathLike[str],
    parameters: dict[str, Any] | None = None,
    *,
    kernel_name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    run_timeout: float | None = None,
    start_timeout: float | None = None,
    report_mode: bool = False,
    log_output: bool = False,
    progress: bool = False,
    trigger: dict[str, Any] | None = None,
    parent_id: str | None = None,
    chain_depth: int = 0,
    workspace: Workspace | None = None,
    execution_id: str | None = None,
    km: Any = None,
    phases: dict[str, str] | None = None,
) -> Execution:
    """Run ``notebook`` as an nbripple task and return its :class:`Execution`.

    ``parameters`` override the notebook's defaults; an artifact input accepts a ref
    (``"blessed_model@3"``), a URI, a :class:`Query` or an :class:`ArtifactVersion`.
    ``timeout`` limits each cell (seconds), as in papermill; ``run_timeout`` the whole
    run and ``start_timeout`` the kernel's start-up (defaults: ``[executor]
    run_timeout_s`` and ``start_timeout_s`` of config.toml). ``kernel_name`` overrides
    the notebook's kernelspec (papermill's ``-k``); ``report_mode`` hides the inputs;
    ``log_output`` logs the cells' output as papermill does. A notebook error, a
    timeout or a dead kernel does not raise: the returned execution is ``failed`` with
    ``.error`` set, its executed notebook kept. SIGINT/SIGTERM cancel the run (the
    notebook kept) and raise KeyboardInterrupt. Problems found before the kernel
    starts (missing notebook, unknown kernel or parameter, an input that matches
    nothing) raise an :class:`NbrippleError`.

    Executors pass ``execution_id`` (a ``queued`` execution they created, carrying
    the trigger) and may pass ``km``, a kernel manager whose kernel was started
    before the run (shut down afterwards, never reused), and ``phases`` it reached.

    Example::

        ex = nr.run("ops.ipynb", parameters={"threshold": 0.5})
        ex.status, [v.ref for v in ex.outputs]
    """
    ws = workspace or current()
    raw, path = read_notebook(notebook, cwd)
    prepared = prepare_notebook(ws, raw, path, parameters, kernel_name, cwd)
    options = _Options(timeout, run_timeout, start_timeout, progress, report_mode, log_output)
    return _execute(ws, prepared, parameters or {}, options, trigger=trigger,
                    parent_id=parent_id, chain_depth=chain_depth,
                    execution_id=execution_id, km=km, phases=phases)


def prepare(
    notebook: str | os.PathLike[str],
    parameters: dict[str, Any] | None = None,
    *,
    kernel_name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    report_mode: bool = False,
    workspace: Workspace | None = None,
) -> Any:
    """The notebook with its parameters injected, not executed and not recorded
    (papermill's ``--prepare-only``); artifact inputs are resolved to the refs a run
    would pin now.

    Example::

        nb = nr.runner.prepare("ops.ipynb", {"threshold": 0.5})
    """
    import papermill as pm

    ws = workspace or current()
    raw, path = read_notebook(notebook, cwd)
    prepared = prepare_notebook(ws, raw, path, parameters, kernel_name, cwd, snapshot=False)
    injected, _ = resolve_inputs(ws, prepared, parameters or {}, None)
    quiet_papermill_parameter_warnings()
    with tempfile.TemporaryDirectory(prefix="nbripple-prepare-") as tmp:
        source = Path(tmp) / "input.ipynb"
        source.write_bytes(prepared.raw)
        out = Path(tmp) / "prepared.ipynb"
        pm.execute_notebook(str(source), str(out), parameters=injected,
                            kernel_name=kernel_name, prepare_only=True,
                            report_mode=report_mode, progress_bar=False)
        nb = nbformat.read(str(out), as_version=4)  # type: ignore[no-untyped-call]
    fix_metadata(nb, prepared.path, None)
    return nb


def rerun(execution_id: str, *, workspace: Workspace | None = None,
          progress: bool = False, timeout: float | None = None, into: str | None = None,
          km: Any = None) -> Execution:
    """Run the same notebook snapshot again with the same pinned inputs and parameters.

    Executors pass ``into``, the ``queued`` execution they created for the rerun (as
    :func:`run` takes ``execution_id``), and may pass ``km``.
    """
    ws = workspace or current()
    original = ws.execution(execution_id)
    raw, path = rerun_source(ws, original)
    prepared = prepare_notebook(ws, raw, path, original.parameters, None, original.cwd)
    return _execute(ws, prepared, dict(original.parameters),
                    _Options(timeout=timeout, progress=progress),
                    trigger={"type": "rerun", "of": original.id},
                    parent_id=original.id, chain_depth=original.chain_depth,
                    execution_id=into, km=km)


def relaunch(execution_id: str, parameters: dict[str, Any] | None = None, *,
             workspace: Workspace | None = None, progress: bool = False,
             timeout: float | None = None) -> Execution:
    """Run the notebook as it is now, with smart defaults resolved again.

    Parameters the caller gave explicitly are given again (``parameters`` override
    them); artifact inputs that came from defaults or queries are resolved anew.
    """
    ws = workspace or current()
    original = ws.execution(execution_id)
    given = relaunch_parameters(original, parameters)
    return run(str(original.notebook), given, cwd=original.cwd, workspace=ws,
               progress=progress, timeout=timeout,
               trigger={"type": "relaunch", "of": original.id}, parent_id=original.id,
               chain_depth=original.chain_depth)


# -- execution ----------------------------------------------------------------
def _start_session(ws: Workspace) -> AbstractContextManager[Any]:
    """Hold the catalog across a run's start-up (the embedded catalog's burst; a served
    catalog has no file to hold)."""
    burst = getattr(ws.catalog, "burst", None)
    return burst() if burst is not None else contextlib.nullcontext()


def _transaction(ws: Workspace) -> AbstractContextManager[Any]:
    """One transaction for the start-up's writes where the catalog offers one."""
    transaction = getattr(ws.catalog, "transaction", None)
    return transaction() if transaction is not None else contextlib.nullcontext()


def _execute(
    ws: Workspace,
    prepared: Prepared,
    given: dict[str, Any],
    options: _Options,
    *,
    trigger: dict[str, Any] | None,
    parent_id: str | None,
    chain_depth: int,
    execution_id: str | None = None,
    km: Any = None,
    phases: dict[str, str] | None = None,
) -> Execution:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    caller = context.current_run()
    if trigger is None:
        trigger = {"type": "notebook", "by": caller.execution_id} if caller else {"type": "user"}
    requested = {name: requested_value(value) for name, value in given.items()}
    details: dict[str, Any] = {
        "label": prepared.path.name if prepared.path else None,
        "notebook": str(prepared.path) if prepared.path else None,
        "notebook_hash": prepared.snapshot_hash,
        "requested": requested,
        "cwd": str(prepared.cwd),
    }
    reached = dict(phases or {})
    if execution_id is None:
        execution = ws._new_execution(
            "notebook",
            trigger=trigger,
            trigger_artifact=trigger.get("artifact"),
            trigger_version=trigger.get("version"),
            parent_id=parent_id,
            chain_depth=chain_depth,
            **details,
        )
        reached["claimed"] = stamp(execution.started_at)
    # One lease of the file and one transaction: the queued execution read, its inputs
    # pinned and recorded as consumed, and its start (running, details, parameters)
    # written in one update; then the file is released at once, as the kernel opens
    # it next and must not wait for our idle time.
    with _start_session(ws):
        if execution_id is not None:
            queued = ws.execution(execution_id)
            reached = {**(queued.phases or {}), **reached}
            execution = replace(queued, status="running")
        started: dict[str, Any] = {} if execution_id is None else {
            "started_at": datetime.now(UTC), "pid": os.getpid(), "host": socket.gethostname(),
            "heartbeat_at": datetime.now(UTC), "phases": reached, **details}
        try:
            with _transaction(ws):
                injected, _ = resolve_inputs(ws, prepared, given, execution.id)
                ws.catalog.update_execution(execution.id, status="running",
                                            parameters=injected, **started)
        except BaseException as exc:
            ws.catalog.finish_execution(
                execution.id, commit_staged=False, status="failed",
                finished_at=datetime.now(UTC), error=exception_error(exc), **started,
            )
            raise
    ws.catalog.close()

    executor = ws.settings.executor
    start_timeout = options.start_timeout or executor.start_timeout_s
    run_timeout = options.run_timeout or executor.run_timeout_s
    run_dir = ws.home / "runs" / execution.id
    run_dir.mkdir(parents=True, exist_ok=True)
    name = prepared.path.name if prepared.path else "notebook.ipynb"
    source = run_dir / f"input-{name}"  # the snapshot papermill reads (a rerun's may differ)
    source.write_bytes(prepared.raw)
    output_path = run_dir / name

    status, error = "succeeded", None
    quiet_papermill_parameter_warnings()
    with tempfile.TemporaryDirectory(prefix="nbripple-run-") as tmp, \
            log_papermill_output(options.log_output):
        km = km if km is not None else _kernel_manager(prepared.kernel_name, Path(tmp))
        heartbeat = Heartbeat(ws, execution.id, HEARTBEAT_S)
        guard = RunGuard(km, run_timeout)
        try:
            with guard:
                start_and_enter(km, enter_code(execution.id, ws.home, prepared.cwd),
                                prepared.cwd, start_timeout)
                reached["kernel_ready"] = stamp()
                pm.execute_notebook(
                    str(source),
                    str(output_path),
                    parameters=injected,
                    kernel_name=prepared.kernel_name,
                    cwd=str(prepared.cwd),
                    progress_bar=options.progress,
                    log_output=options.log_output,
                    report_mode=options.report_mode,
                    request_save_on_cell_execute=True,
                    execution_timeout=options.timeout,
                    start_timeout=start_timeout,
                    km=km,
                )
                reached["cells_done"] = stamp()
        except PapermillExecutionError as exc:
            status = "failed"
            ename, evalue = exc.ename, exc.evalue
            if not evalue:  # e.g. IPython's UsageError: only on stderr
                ename, _, evalue = hidden_error(exc, prepared.raw, output_path).partition(": ")
                ename, evalue = (ename, evalue) if evalue else (exc.ename, ename)
            error = run_error(
                ename, evalue,
                cell_index=original_index(prepared.raw, output_path),
                execution_count=exc.exec_count,
                traceback=[str(line) for line in (exc.traceback or [])][-20:],
            )
        except KeyboardInterrupt:
            status = "cancelled"
            error = mark_unfinished(prepared.raw, output_path, "KeyboardInterrupt",
                                     "the run was interrupted")
        except KernelStartError as exc:
            status = "failed"
            error = run_error(type(exc).__name__, str(exc))
        except Exception as exc:
            status = "failed"
            error = mark_unfinished(prepared.raw, output_path, type(exc).__name__,
                                     str(exc) or describe(exc))
        finally:
            heartbeat.stop()
            # Killed now, reaped after the commit: its exit is not waited for (0.1 s
            # polls) before the outcome is committed, and it can stage nothing more.
            _kill(km)
        status, error = stopped_outcome(guard.reason, status, error, run_timeout)
        try:
            _finish(ws, execution.id, prepared, source, output_path, status, error, reached)
        finally:
            _shutdown(km)
    if status == "cancelled":
        raise RunCancelled(execution.id, "SIGTERM" if guard.reason == "terminated" else "SIGINT")
    return ws.execution(execution.id)


def _finish(ws: Workspace, execution_id: str, prepared: Prepared, source: Path,
            output_path: Path, status: str, error: dict[str, Any] | None,
            reached: dict[str, str]) -> None:
    """Store the executed notebook and end the execution: on success its staged outputs
    are committed in the same transaction."""
    output_hash = None
    if output_path.exists():
        nb = nbformat.read(str(output_path), as_version=4)  # type: ignore[no-untyped-call]
        fix_metadata(nb, prepared.path, output_path, execution_id, prepared.kernel_name)
        nbformat.write(nb, str(output_path))  # type: ignore[no-untyped-call]
        output_hash = ws.store.put_bytes(output_path.read_bytes()).digest
    source.unlink(missing_ok=True)
    ws.catalog.finish_execution(
        execution_id,
        commit_staged=status == "succeeded",
        status=status,
        finished_at=datetime.now(UTC),
        error=error,
        output_notebook_hash=output_hash,
        phases=reached,  # the catalog adds "committed", stamped in this transaction
    )
