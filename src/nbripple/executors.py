"""Where the watcher's runs execute: a pluggable seam with a local default.

An executor takes :class:`RunJob` s and runs each with :func:`nbripple.runner.run`
(or :func:`~nbripple.runner.rerun`) against a ``queued`` execution the watcher — or
the server, for a run launched over its API — created. :class:`LocalExecutor` runs each
job in its own Python process (``python -m nbripple.executors``), so a crashing
notebook or kernel never takes the watcher down and a cancelled run can be stopped.
A few processes wait ahead of time with a kernel already started, so a triggered run
skips both the interpreter and the kernel start-up.

Nothing keeps running unobserved after the watcher dies (even by ``kill -9``): each
job process checks that its watcher is alive and stops itself when it is not, and
its kernel follows it. The next watcher finds the orphaned execution, marks it
failed, and starts the firing again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Protocol

from .pids import pid_alive

WATCHER_CHECK_S = 0.25


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
    cwd: str | None = None  # the run's working directory (None: the notebook's)
    rerun_of: str | None = None  # rerun this execution's notebook snapshot instead


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
    """One process per run, with kernels started ahead of time.

    ``warm`` processes wait with a kernel already started (``kernel_name``), so a
    triggered run skips the start-up; a warm process serves exactly one run (kernels
    are never reused) and is replaced at once. A run that needs another kernel, or
    that finds no warm process, gets a fresh process.
    """

    def __init__(self, warm: int = 2, kernel_name: str = "python3") -> None:
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._idle: list[subprocess.Popen[bytes]] = []
        self.warm = self._warm_target = max(0, warm)
        self.kernel_name = kernel_name
        self._owner: int | None = None

    def start(self, owner_pid: int) -> None:
        """Start the warm processes; they (and every run) die with ``owner_pid``."""
        self._owner = owner_pid
        self.warm = self._warm_target
        self._replenish()

    def _spawn(self, warm_kernel: str | None) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "nbripple.executors"]
        if warm_kernel is not None:
            command += ["--warm", warm_kernel]
        if self._owner is not None:
            command += ["--owner", str(self._owner)]
        # Its own session and process group: Ctrl-C in the watcher's terminal reaches
        # the run (and its kernel) only through the watcher's shutdown.
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                start_new_session=True)

    def _replenish(self) -> None:
        for proc in self._idle:
            if proc.poll() is not None and proc.stdin is not None:
                proc.stdin.close()
        self._idle = [proc for proc in self._idle if proc.poll() is None]
        while len(self._idle) < self.warm:
            self._idle.append(self._spawn(self.kernel_name))

    def submit(self, job: RunJob) -> None:
        if self._owner is None:
            self._owner = job.watcher_pid
        wanted = job.kernel_name or self.kernel_name
        process: subprocess.Popen[bytes] | None = None
        while self._idle and wanted == self.kernel_name and process is None:
            candidate = self._idle.pop(0)
            if candidate.poll() is None and _send(candidate.stdin, job):
                process = candidate
        if process is None:
            process = self._spawn(None)
            if not _send(process.stdin, job):
                process.kill()
        self._procs[job.execution_id] = process
        self._replenish()

    def ended(self) -> list[str]:
        done = [eid for eid, proc in self._procs.items() if proc.poll() is not None]
        for eid in done:
            self._procs.pop(eid)
        return done

    def active(self) -> int:
        return sum(1 for proc in self._procs.values() if proc.poll() is None)

    def cancel_all(self, grace_s: float = 10.0) -> list[str]:
        stopped = [eid for eid, proc in self._procs.items() if proc.poll() is None]
        for eid in stopped:
            self._procs[eid].terminate()  # SIGTERM: the run is marked cancelled
        deadline = time.monotonic() + grace_s
        for proc in self._procs.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait(timeout=5)
        return stopped

    def shutdown(self) -> None:
        self.warm = 0
        for proc in self._idle:
            if proc.stdin is not None:
                proc.stdin.close()  # EOF: the warm process shuts its kernel down and exits
        for proc in self._idle:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait(timeout=5)
        self._idle = []
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a run process and everything in its process group (its kernel)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _send(stdin: IO[bytes] | None, job: RunJob) -> bool:
    """Hand a job to a worker process (pickled: both ends are nbripple itself)."""
    if stdin is None:
        return False
    try:
        stdin.write(pickle.dumps(job))
        stdin.close()
        return True
    except (BrokenPipeError, OSError):
        return False


def worker_main(argv: list[str] | None = None) -> None:
    """``python -m nbripple.executors [--warm KERNEL] [--owner PID]``: read one job
    from stdin and run it (on a kernel started before the job arrived with --warm)."""
    parser = argparse.ArgumentParser(prog="python -m nbripple.executors")
    parser.add_argument("--warm", default=None, help="start this kernel before the job")
    parser.add_argument("--owner", type=int, default=None, help="die with this process")
    args = parser.parse_args(argv)
    _die_with(args.owner)
    km = None
    tmp = None
    if args.warm is not None:
        import tempfile
        from pathlib import Path

        from jupyter_core.utils import run_sync

        from .kernels import kernel_manager, preload_code, start_and_enter

        tmp = tempfile.mkdtemp(prefix="nbripple-warm-")
        km = kernel_manager(args.warm, Path(tmp))
        run_sync(km.start_kernel)()
        # Import what a run needs while waiting, here and in the kernel (nbripple and
        # the libraries of its kinds, no user code), so the job starts at once.
        with contextlib.suppress(Exception):  # a kernel without nbripple: the run says so
            start_and_enter(km, preload_code(), Path(tmp), 120.0, hand_over=False)
        _ready_for_a_job(args.warm)
    data = sys.stdin.buffer.read()
    if not data:  # shut down before any job arrived
        if km is not None:
            from .kernels import shutdown

            shutdown(km)
        if tmp is not None:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        return
    job: RunJob = pickle.loads(data)
    run_job(job, km=km, ready_at=datetime.now(UTC))


def _ready_for_a_job(kernel_name: str) -> None:
    """While waiting, do the once-per-process part of a run's start that needs no job:
    the imports, the kernelspec lookup, nbformat's validator and the in-memory DuckDB
    database the catalog file will be attached to (only for the job)."""
    import nbclient  # noqa: F401
    import nbformat
    import papermill  # noqa: F401
    from nbformat.v4 import new_notebook

    from . import discovery, runner, workspace  # noqa: F401
    from .catalog.embedded import host
    from .kernels import resolve_kernel
    from .service import Workspace  # noqa: F401

    nb = new_notebook()  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = {"name": kernel_name}
    nbformat.reads(nbformat.writes(nb), as_version=4)  # type: ignore[no-untyped-call]
    with contextlib.suppress(Exception):  # the job's own lookup reports it
        resolve_kernel(nb, kernel_name, "the warm kernel")
    host.prepare()


def _die_with(watcher_pid: int | None) -> None:
    """Kill this process as soon as the watcher that started it is gone."""
    if watcher_pid is None:
        return

    def watch() -> None:
        while True:
            time.sleep(WATCHER_CHECK_S)
            if not pid_alive(watcher_pid):
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="nbripple-watcher-alive", daemon=True).start()


def _cancel_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_job(job: RunJob, km: Any = None, ready_at: datetime | None = None) -> None:
    """Run one job in this (child) process; the execution row records the outcome.
    ``ready_at``: when this process had the job (its ``process_ready`` phase)."""
    _die_with(job.watcher_pid)
    signal.signal(signal.SIGTERM, _cancel_on_sigterm)
    from .errors import NbrippleError
    from .phases import stamp
    from .runner import rerun, run
    from .service import Workspace
    from .service.executions import leave_sweeps_to_the_watcher

    ws = Workspace(job.home)
    leave_sweeps_to_the_watcher(ws)
    try:
        if job.rerun_of is not None:
            rerun(job.rerun_of, workspace=ws, timeout=job.timeout, into=job.execution_id,
                  km=km)
        else:
            run(job.notebook, job.parameters, kernel_name=job.kernel_name,
                timeout=job.timeout, cwd=job.cwd, workspace=ws,
                execution_id=job.execution_id, km=km,
                phases={"process_ready": stamp(ready_at)})
    except KeyboardInterrupt:
        _mark(ws, job.execution_id, "cancelled", "Cancelled", "the watcher stopped this run")
    except NbrippleError as exc:
        _mark(ws, job.execution_id, "failed", type(exc).__name__, str(exc))
    except Exception as exc:  # the run could not start: record why, never lose it
        _mark(ws, job.execution_id, "failed", type(exc).__name__, str(exc))
    finally:
        ws.release()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip interpreter teardown of kernels/threads we already closed


def _mark(ws: Any, execution_id: str, status: str, ename: str, evalue: str) -> None:
    """Finish an execution the runner could not finish itself (no-op if it did)."""
    execution = ws.catalog.get_execution(execution_id)
    if execution is None or execution.status not in ("queued", "running"):
        return
    from .service.executions import run_error

    ws.catalog.finish_execution(
        execution_id, commit_staged=False, status=status, finished_at=datetime.now(UTC),
        error=run_error(ename, evalue),
    )


if __name__ == "__main__":
    worker_main()
