"""Where the watcher's runs execute: a pluggable seam with a local default.

An executor takes :class:`RunJob` s and runs each with :func:`nbripple.runner.run`
against a ``queued`` execution the watcher created. :class:`LocalExecutor` starts
one process per run from a ``forkserver`` (which has nbripple and papermill
imported already, so a start costs milliseconds), so a crashing notebook or kernel
never takes the watcher down, and a cancelled run can be stopped. Each job process
dies with the watcher (``PR_SET_PDEATHSIG`` on Linux), so nothing keeps running
unobserved after a ``kill -9``: it checks that its watcher is alive and stops
itself when it is not, and its kernel follows it. The next watcher finds the
orphaned execution, marks it failed, and starts the firing again.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

WATCHER_CHECK_S = 0.25
_PRELOAD = ["nbripple.runner", "nbripple.workspace", "papermill", "nbclient",
            "jupyter_client.manager", "ipykernel"]


@dataclass(frozen=True)
class RunJob:
    """One run for an executor: everything is picklable and self-contained."""

    execution_id: str
    home: str
    notebook: str
    parameters: dict[str, Any] = field(default_factory=dict)
    kernel_name: str | None = None
    timeout: float | None = None
    watcher_pid: int | None = None  # the run dies with this process (None: never)


class Executor(Protocol):
    """The seam: submit jobs, learn which ended, cancel on shutdown."""

    def submit(self, job: RunJob) -> None: ...
    def ended(self) -> list[str]:
        """Execution ids of jobs that ended since the last call."""
        ...

    def active(self) -> int: ...
    def start(self, owner_pid: int) -> None:
        """Get ready (e.g. start warm kernels); runs die with ``owner_pid``."""
        ...

    def cancel_all(self, grace_s: float = 10.0) -> list[str]:
        """Stop every running job; return the execution ids that had to be stopped."""
        ...

    def shutdown(self) -> None: ...


class LocalExecutor:
    """One forkserver process per run, with kernels started ahead of time.

    ``warm`` processes wait with a kernel already started (``python3`` unless
    ``kernel_name`` says otherwise), so a triggered run skips the kernel start-up; a
    warm process serves exactly one run (kernels are never reused) and is replaced
    at once. A run that needs another kernel starts its own.
    """

    def __init__(self, warm: int = 1, kernel_name: str = "python3") -> None:
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(_PRELOAD)
        self._procs: dict[str, Any] = {}
        self._idle: list[tuple[Any, Any]] = []  # (process, connection)
        self.warm = max(0, warm)
        self.kernel_name = kernel_name
        self._owner: int | None = None

    def start(self, owner_pid: int) -> None:
        """Start the warm processes; they (and every run) die with ``owner_pid``."""
        self._owner = owner_pid
        self._replenish()

    def _replenish(self) -> None:
        self._idle = [(proc, conn) for proc, conn in self._idle if proc.is_alive()]
        while len(self._idle) < self.warm:
            parent, child = self._ctx.Pipe()
            proc = self._ctx.Process(target=warm_worker,
                                     args=(child, self.kernel_name, self._owner),
                                     name="nbripple-warm-run")
            proc.start()
            child.close()
            self._idle.append((proc, parent))

    def submit(self, job: RunJob) -> None:
        wanted = job.kernel_name or self.kernel_name
        if self._idle and wanted == self.kernel_name:
            proc, conn = self._idle.pop(0)
            try:
                conn.send(job)
                conn.close()
                self._procs[job.execution_id] = proc
                self._replenish()
                return
            except (BrokenPipeError, OSError):
                proc.kill()
        process = self._ctx.Process(target=run_job, args=(job,),
                                    name=f"nbripple-run-{job.execution_id}")
        process.start()
        self._procs[job.execution_id] = process
        self._replenish()

    def ended(self) -> list[str]:
        done = [eid for eid, proc in self._procs.items() if not proc.is_alive()]
        for eid in done:
            self._procs.pop(eid).join(timeout=1)
        return done

    def active(self) -> int:
        return sum(1 for proc in self._procs.values() if proc.is_alive())

    def cancel_all(self, grace_s: float = 10.0) -> list[str]:
        stopped = [eid for eid, proc in self._procs.items() if proc.is_alive()]
        for eid in stopped:
            self._procs[eid].terminate()  # SIGTERM: the run is marked cancelled
        deadline = time.monotonic() + grace_s
        for proc in self._procs.values():
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        return stopped

    def shutdown(self) -> None:
        self.warm = 0
        for proc, conn in self._idle:
            conn.close()  # the warm process sees EOF, shuts its kernel down and exits
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        self._idle = []
        for proc in self._procs.values():
            proc.join(timeout=1)


def warm_worker(conn: Any, kernel_name: str, owner_pid: int | None) -> None:
    """Start a kernel, wait for one job, run it on that kernel, exit."""
    _die_with(owner_pid)
    import tempfile
    from pathlib import Path

    from jupyter_core.utils import run_sync

    from .runner import _kernel_manager, _shutdown

    tmp = tempfile.mkdtemp(prefix="nbripple-warm-")
    km = _kernel_manager(kernel_name, Path(tmp))
    run_sync(km.start_kernel)()
    try:
        job = conn.recv()
    except (EOFError, OSError):
        _shutdown(km)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        os._exit(0)
    run_job(job, km=km)


def _die_with(watcher_pid: int | None) -> None:
    """Kill this process as soon as the watcher that started it is gone."""
    if watcher_pid is None:
        return

    def watch() -> None:
        while True:
            time.sleep(WATCHER_CHECK_S)
            try:
                os.kill(watcher_pid, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="nbripple-watcher-alive", daemon=True).start()


def _cancel_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_job(job: RunJob, km: Any = None) -> None:
    """Run one job in this (child) process; the execution row records the outcome."""
    _die_with(job.watcher_pid)
    signal.signal(signal.SIGTERM, _cancel_on_sigterm)
    from .errors import NbrippleError
    from .runner import run
    from .workspace import Workspace

    ws = Workspace(job.home)
    try:
        run(job.notebook, job.parameters, kernel_name=job.kernel_name, timeout=job.timeout,
            workspace=ws, execution_id=job.execution_id, km=km)
    except KeyboardInterrupt:
        _mark(ws, job.execution_id, "cancelled", "Cancelled", "the watcher stopped this run")
    except NbrippleError as exc:
        _mark(ws, job.execution_id, "failed", type(exc).__name__, str(exc))
    except Exception as exc:  # the run could not start: record why, never lose it
        _mark(ws, job.execution_id, "failed", type(exc).__name__, str(exc))
    finally:
        ws.catalog.close()
        os._exit(0)  # skip interpreter teardown of kernels/threads we already closed


def _mark(ws: Any, execution_id: str, status: str, ename: str, evalue: str) -> None:
    """Finish an execution the runner could not finish itself (no-op if it did)."""
    execution = ws.catalog.get_execution(execution_id)
    if execution is None or execution.status not in ("queued", "running"):
        return
    ws.catalog.finish_execution(
        execution_id, commit_staged=False, status=status, finished_at=datetime.now(UTC),
        error={"ename": ename, "evalue": evalue, "cell_index": None},
    )
