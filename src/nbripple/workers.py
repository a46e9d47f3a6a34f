"""A run's process: what ``python -m nbripple.workers`` does for the local executor.

A worker reads one :class:`~nbripple.executors.RunJob` and runs it; a warm one first
starts its kernel and does every part of a run's start that needs no job, then says it
is ready. ``--fork-server`` serves forks of workers instead (:mod:`nbripple.forking`).
Every worker dies with the process that started it (its watcher).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .executors import RunJob
from .forking import READY
from .pids import pid_alive

WATCHER_CHECK_S = 0.25


def worker_main(argv: list[str] | None = None) -> None:
    """``python -m nbripple.workers [--warm KERNEL] [--owner PID] [--ready-fd FD]``:
    read one job from stdin and run it (on a kernel started before the job arrived
    with --warm); ``--fork-server FD``: serve forks of workers (:mod:`nbripple.forking`)."""
    parser = argparse.ArgumentParser(prog="python -m nbripple.workers")
    parser.add_argument("--warm", default=None, help="start this kernel before the job")
    parser.add_argument("--owner", type=int, default=None, help="die with this process")
    parser.add_argument("--ready-fd", type=int, default=None,
                        help="say 'ready for a job' on this file descriptor")
    parser.add_argument("--fork-server", type=int, default=None, metavar="FD",
                        help="fork workers on requests from this socket")
    args = parser.parse_args(argv)
    if args.fork_server is not None:
        from .forking import serve

        serve(args.fork_server, _preload, _forked_worker)
        return

    def say_ready() -> None:
        if args.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(args.ready_fd, READY)
                os.close(args.ready_fd)

    _serve(args.warm, args.owner, sys.stdin.buffer.read, say_ready)


def _forked_worker(control: socket.socket, request: dict[str, Any]) -> None:
    """A worker forked by the fork server: take the owner's environment and working
    directory of the moment, then serve one job from ``control``. The socket stays open
    until this process ends, which is how the owner sees it end."""
    os.environ.clear()
    os.environ.update(request["env"])
    with contextlib.suppress(OSError):
        os.chdir(request["cwd"])
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    os.set_inheritable(control.fileno(), False)

    def read_job() -> bytes:
        chunks = []
        while chunk := control.recv(1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)

    _serve(request["kernel"], request["owner"], read_job, lambda: control.sendall(READY))


def _serve(warm: str | None, owner: int | None, read_job: Callable[[], bytes],
           say_ready: Callable[[], None]) -> None:
    _die_with(owner)
    km = None
    tmp = None
    if warm is not None:
        import tempfile
        from pathlib import Path

        from jupyter_core.utils import run_sync

        from .kernels import kernel_manager, preload_code, start_and_enter

        tmp = tempfile.mkdtemp(prefix="nbripple-warm-")
        km = kernel_manager(warm, Path(tmp))
        run_sync(km.start_kernel)()
        # Import what a run needs while waiting, here and in the kernel (nbripple and
        # the libraries of its kinds, no user code), so the job starts at once.
        with contextlib.suppress(Exception):  # a kernel without nbripple: the run says so
            start_and_enter(km, preload_code(), Path(tmp), 120.0, hand_over=False)
        _ready_for_a_job(warm)
    say_ready()
    data = read_job()
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


def _preload() -> None:
    """The fork server's imports (see :func:`_import_for_runs`). Nothing here may start
    a thread or open a catalog: each worker is forked from this process."""
    _import_for_runs()
    if threading.active_count() != 1:  # forking would copy a thread's locks, not the thread
        raise SystemExit("nbripple: an import started a thread; not serving forks")


def _import_for_runs() -> None:
    """What every run's process imports, and nbformat's validator: no job needed."""
    import nbclient  # noqa: F401
    import nbformat
    import papermill  # noqa: F401
    from jupyter_core.utils import run_sync  # noqa: F401
    from nbformat.v4 import new_notebook

    from . import discovery, kernels, runner, workspace  # noqa: F401
    from .service import Workspace  # noqa: F401

    nbformat.reads(nbformat.writes(new_notebook()), as_version=4)  # type: ignore[no-untyped-call]


def _ready_for_a_job(kernel_name: str) -> None:
    """While waiting, do the once-per-process part of a run's start that needs no job:
    the imports (done already in a forked process), the kernelspec lookup and the
    in-memory DuckDB database the catalog file will be attached to (only for the job)."""
    from nbformat.v4 import new_notebook

    from .catalog.embedded import host
    from .kernels import resolve_kernel

    _import_for_runs()
    nb = new_notebook()  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = {"name": kernel_name}
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
