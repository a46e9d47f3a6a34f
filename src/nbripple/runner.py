"""Running a notebook as a task: papermill in a fresh kernel, all-or-nothing outputs.

The steps of :func:`run`:

1. snapshot the notebook (its bytes go to the store; the hash is recorded);
2. create the execution (``running``);
3. resolve artifact inputs (smart defaults or the caller's overrides) to pinned
   versions, record them as consumed — an input that resolves to nothing fails the
   run here, before any kernel starts;
4. execute with papermill in a fresh kernel; the run context reaches the kernel
   through a first, injected cell (so a kernel started before the run works too);
5. on success commit every staged output in one transaction and mark the execution
   ``succeeded``; on failure mark it ``failed`` (error name, message, cell index) and
   commit nothing. The executed notebook is stored either way.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import tempfile
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from . import context
from .errors import NbrippleError, NotFound
from .model import ArtifactVersion, Execution
from .parameters import Parameter, ParametersError, find_parameters_cell, parse_parameters
from .refs import Pinned, Query, parse
from .service import Workspace, current
from .service.executions import exception_error, run_error

CONTEXT_TAG = "injected-nbripple-context"
HEARTBEAT_S = 5.0


class NotebookNotFound(NotFound):
    """The notebook to run does not exist."""


class KernelNotFound(NbrippleError):
    """The requested kernel is not installed."""


class InputResolutionError(NbrippleError):
    """An artifact input resolved to nothing; the run failed before its kernel started."""

    def __init__(self, message: str, execution_id: str) -> None:
        super().__init__(message)
        self.execution_id = execution_id


@dataclass(frozen=True)
class _Prepared:
    nb: Any
    path: Path | None
    snapshot_hash: str
    params: dict[str, Parameter]
    kernel_name: str
    cwd: Path


def run(
    notebook: str | os.PathLike[str],
    parameters: dict[str, Any] | None = None,
    *,
    kernel_name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    progress: bool = False,
    trigger: dict[str, Any] | None = None,
    parent_id: str | None = None,
    chain_depth: int = 0,
    workspace: Workspace | None = None,
    execution_id: str | None = None,
    km: Any = None,
) -> Execution:
    """Run ``notebook`` as an nbripple task and return its :class:`Execution`.

    ``parameters`` override the notebook's defaults; an artifact input accepts a ref
    (``"blessed_model@3"``), a URI, a :class:`Query` or an :class:`ArtifactVersion`.
    ``timeout`` limits each cell (seconds), as in papermill. A notebook error does
    not raise: the returned execution is ``failed`` with ``.error`` set. Problems
    found before the kernel starts (missing notebook, unknown kernel or parameter,
    an input that matches nothing) raise an :class:`NbrippleError`.

    Executors pass ``execution_id`` (a ``queued`` execution they created, carrying
    the trigger) and may pass ``km``, a kernel manager whose kernel was started
    before the run; it is shut down afterwards, never reused.

    Example::

        ex = nr.run("ops.ipynb", parameters={"threshold": 0.5})
        ex.status, [v.ref for v in ex.outputs]
    """
    ws = workspace or current()
    path = Path(notebook).expanduser()
    if not path.is_absolute():
        path = (Path(cwd) if cwd is not None else Path.cwd()) / path
    path = path.resolve()
    if not path.is_file():
        raise NotebookNotFound(f"notebook {notebook} not found (looked at {path})")
    raw = path.read_bytes()
    prepared = _prepare(ws, raw, path, parameters, kernel_name, cwd)
    return _execute(ws, prepared, parameters or {}, timeout=timeout, progress=progress,
                    trigger=trigger, parent_id=parent_id, chain_depth=chain_depth,
                    execution_id=execution_id, km=km)


def rerun(execution_id: str, *, workspace: Workspace | None = None,
          progress: bool = False, timeout: float | None = None) -> Execution:
    """Run the same notebook snapshot again with the same pinned inputs and parameters."""
    ws = workspace or current()
    original = ws.execution(execution_id)
    if original.kind != "notebook" or original.notebook_hash is None:
        raise NbrippleError(f"execution {original.id} is {original.kind}, not a notebook run")
    raw = ws.store.read(original.notebook_hash, label=f"notebook of execution {original.id}")
    path = Path(original.notebook) if original.notebook else None
    prepared = _prepare(ws, raw, path, original.parameters, None, original.cwd)
    return _execute(ws, prepared, dict(original.parameters), timeout=timeout,
                    progress=progress, trigger={"type": "rerun", "of": original.id},
                    parent_id=original.id, chain_depth=original.chain_depth)


def relaunch(execution_id: str, *, workspace: Workspace | None = None,
             progress: bool = False, timeout: float | None = None) -> Execution:
    """Run the notebook as it is now, with smart defaults resolved again.

    Parameters the caller gave explicitly are given again; artifact inputs that came
    from defaults or queries are resolved anew.
    """
    ws = workspace or current()
    original = ws.execution(execution_id)
    if original.kind != "notebook" or not original.notebook:
        raise NbrippleError(f"execution {original.id} is {original.kind}, not a notebook run")
    requested = dict(original.requested or {})
    return run(original.notebook, requested, cwd=original.cwd, workspace=ws,
               progress=progress, timeout=timeout,
               trigger={"type": "relaunch", "of": original.id}, parent_id=original.id,
               chain_depth=original.chain_depth)


# -- preparation ------------------------------------------------------------
def _prepare(
    ws: Workspace,
    raw: bytes,
    path: Path | None,
    parameters: dict[str, Any] | None,
    kernel_name: str | None,
    cwd: str | os.PathLike[str] | None,
) -> _Prepared:
    label = path.name if path else "the notebook"
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise ParametersError(f"{label} is not a readable notebook: {exc}") from exc
    index = find_parameters_cell(nb)
    params = parse_parameters(nb.cells[index].source, notebook=label) if index is not None else {}
    given = parameters or {}
    if given and index is None:
        raise ParametersError(
            f"{label} has no cell tagged 'parameters', so it cannot take parameters "
            f"({', '.join(sorted(given))}); tag the cell that holds the defaults with "
            "'parameters' (View → Cell Toolbar → Tags in Jupyter)"
        )
    unknown = sorted(set(given) - set(params))
    if unknown:
        known = ", ".join(params) or "none"
        raise ParametersError(
            f"{label} has no parameter {unknown[0]!r} (its parameters: {known})"
        )
    kernel = kernel_name or nb.metadata.get("kernelspec", {}).get("name") or "python3"
    _check_kernel(kernel)
    workdir = Path(cwd) if cwd is not None else (path.parent if path else Path.cwd())
    if not workdir.is_dir():
        raise NbrippleError(f"working directory {workdir} does not exist")
    snapshot = ws.store.put_bytes(raw)
    return _Prepared(nb, path, snapshot.digest, params, kernel, workdir.resolve())


def _check_kernel(name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(name)
    except NoSuchKernel as exc:
        available = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise KernelNotFound(
            f"no Jupyter kernel named {name!r} (installed: {available}); install it or pass "
            "kernel_name="
        ) from exc


def _requested_value(value: Any) -> Any:
    if isinstance(value, ArtifactVersion):
        return value.ref
    if isinstance(value, Query | Pinned):
        return value.uri
    return value


def _resolve_inputs(
    ws: Workspace, prepared: _Prepared, given: dict[str, Any], execution_id: str
) -> dict[str, Any]:
    """Pin every artifact input; return the values to inject."""
    injected: dict[str, Any] = {}
    for name, param in prepared.params.items():
        if not param.is_input:
            continue
        wanted = given.get(name, param.input_ref)
        if wanted is None:
            if param.optional:
                injected[name] = None
                continue
            raise InputResolutionError(
                f"input {name!r} is required: pass a ref such as 'name@3' or a query",
                execution_id,
            )
        target = wanted
        if isinstance(wanted, str):
            try:
                target = parse(wanted)
            except NbrippleError as exc:
                raise InputResolutionError(
                    f"input {name!r}: {exc}", execution_id
                ) from exc
        try:
            version = ws.resolve(target)
        except NotFound as exc:
            if param.optional and name not in given:
                injected[name] = None
                continue
            shown = _requested_value(wanted)
            raise InputResolutionError(
                f"input {name!r} ({shown}) resolved to nothing: {exc}", execution_id
            ) from exc
        ws.catalog.record_consumption(execution_id, version.name, version.version, name)
        injected[name] = version.ref
    for name, value in given.items():
        if name not in injected:
            injected[name] = _requested_value(value)
    return injected


def _context_cell(execution_id: str, home: Path, cwd: Path) -> Any:
    # Only literals built with repr() reach the kernel: ids and paths never become code.
    # The working directory is set here too, for kernels started before the run.
    source = (
        "import nbripple.context as _nbripple_context\n"
        f"_nbripple_context.enter({execution_id!r}, home={str(home)!r}, cwd={str(cwd)!r})"
    )
    cell = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
    cell.metadata["tags"] = [CONTEXT_TAG]
    cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


# -- execution ----------------------------------------------------------------
def _execute(
    ws: Workspace,
    prepared: _Prepared,
    given: dict[str, Any],
    *,
    timeout: float | None,
    progress: bool,
    trigger: dict[str, Any] | None,
    parent_id: str | None,
    chain_depth: int,
    execution_id: str | None = None,
    km: Any = None,
) -> Execution:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    caller = context.current_run()
    if trigger is None:
        trigger = {"type": "notebook", "by": caller.execution_id} if caller else {"type": "user"}
    requested = {name: _requested_value(value) for name, value in given.items()}
    details: dict[str, Any] = {
        "label": prepared.path.name if prepared.path else None,
        "notebook": str(prepared.path) if prepared.path else None,
        "notebook_hash": prepared.snapshot_hash,
        "requested": requested,
        "cwd": str(prepared.cwd),
    }
    if execution_id is not None:
        ws.catalog.update_execution(
            execution_id, status="running", started_at=datetime.now(UTC), pid=os.getpid(),
            host=socket.gethostname(), heartbeat_at=datetime.now(UTC), **details,
        )
        execution = ws.execution(execution_id)
    else:
        execution = ws._new_execution(
            "notebook",
            trigger=trigger,
            trigger_artifact=trigger.get("artifact"),
            trigger_version=trigger.get("version"),
            parent_id=parent_id,
            chain_depth=chain_depth,
            **details,
        )
    try:
        injected = _resolve_inputs(ws, prepared, given, execution.id)
    except BaseException as exc:
        ws.catalog.finish_execution(
            execution.id, commit_staged=False, status="failed", finished_at=datetime.now(UTC),
            error=exception_error(exc),
        )
        raise
    ws.catalog.update_execution(execution.id, parameters=injected)

    nb = copy.deepcopy(prepared.nb)
    original_ids = []
    for cell in nb.cells:
        if not cell.get("id"):
            cell["id"] = uuid.uuid4().hex[:8]
        original_ids.append(cell["id"])
    nb.cells.insert(0, _context_cell(execution.id, ws.home, prepared.cwd))

    status, error = "succeeded", None
    _quiet_papermill_parameter_warnings()
    with tempfile.TemporaryDirectory(prefix="nbripple-run-") as tmp:
        output_path = Path(tmp) / (prepared.path.name if prepared.path else "notebook.ipynb")
        km = km if km is not None else _kernel_manager(prepared.kernel_name, Path(tmp))
        heartbeat = _Heartbeat(ws, execution.id)
        try:
            pm.execute_notebook(
                nb,
                str(output_path),
                parameters=injected,
                kernel_name=prepared.kernel_name,
                cwd=str(prepared.cwd),
                progress_bar=progress,
                log_output=False,
                request_save_on_cell_execute=False,
                execution_timeout=timeout,
                km=km,
            )
        except PapermillExecutionError as exc:
            status = "failed"
            error = run_error(
                exc.ename, exc.evalue,
                cell_index=_original_index(output_path, original_ids),
                execution_count=exc.exec_count,
                traceback=[str(line) for line in (exc.traceback or [])][-20:],
            )
        except KeyboardInterrupt:
            status = "cancelled"
            error = run_error("KeyboardInterrupt", "the run was interrupted")
        except Exception as exc:
            status = "failed"
            error = exception_error(exc)
        finally:
            heartbeat.stop()
            _shutdown(km)
        output_hash = None
        if output_path.exists():
            output_hash = ws.store.put_bytes(output_path.read_bytes()).digest
    ws.catalog.finish_execution(
        execution.id,
        commit_staged=status == "succeeded",
        status=status,
        finished_at=datetime.now(UTC),
        error=error,
        output_notebook_hash=output_hash,
    )
    if status == "cancelled":
        raise KeyboardInterrupt
    return ws.execution(execution.id)


class _Heartbeat:
    """Refresh the execution's ``heartbeat_at`` while it runs, so watchers on other
    machines can tell a live run from an orphan."""

    def __init__(self, ws: Workspace, execution_id: str) -> None:
        self._ws = ws
        self._execution_id = execution_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="nbripple-heartbeat",
                                        daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._ws.catalog.update_execution(self._execution_id,
                                                  heartbeat_at=datetime.now(UTC))
            except Exception:  # a busy catalog must not fail the run
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _kernel_manager(kernel_name: str, tmp: Path) -> Any:
    """A fresh kernel manager for one run, on local (ipc) sockets in the run's temp dir.

    The runner owns it (papermill's ``km=``), which is also how a pre-started kernel
    would be handed over; it records the clients nbclient makes so they are closed.
    """
    from jupyter_client.manager import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.clients: list[Any] = []

        def client(self, **kwargs: Any) -> Any:
            kc = super().client(**kwargs)
            self.clients.append(kc)
            return kc

    return RunKernelManager(kernel_name=kernel_name, transport="ipc", ip=str(tmp / "kernel"))


def _shutdown(km: Any) -> None:
    from jupyter_core.utils import run_sync

    for kc in km.clients:
        kc.stop_channels()
    if km.has_kernel:
        run_sync(km.shutdown_kernel)(now=True)


class _DropParameterNoise(logging.Filter):
    # papermill re-parses the parameters cell with its own regexes and warns about
    # URIs it cannot read; nbripple has already validated every parameter with ast.
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(("Unable to parse line", "Passed unknown parameter"))


_noise_filter = _DropParameterNoise()


def _quiet_papermill_parameter_warnings() -> None:
    for name in ("papermill", "papermill.translators"):
        logger = logging.getLogger(name)
        if _noise_filter not in logger.filters:
            logger.addFilter(_noise_filter)


def _original_index(output_path: Path, original_ids: list[str]) -> int | None:
    """Index, in the user's notebook, of the cell whose output holds the error."""
    if not output_path.exists():
        return None
    nb = nbformat.read(str(output_path), as_version=4)  # type: ignore[no-untyped-call]
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            cell_id = cell.get("id")
            if cell_id in original_ids:
                return original_ids.index(cell_id)
    return None
