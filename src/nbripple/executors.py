"""Where the watcher's runs execute: a pluggable seam with a local default.

An executor takes :class:`RunJob` s and runs each with :func:`nbripple.runner.run`
(or :func:`~nbripple.runner.rerun`) against a ``queued`` execution the watcher — or
the server, for a run launched over its API — created. :class:`LocalExecutor` runs each
job in its own Python process (``python -m nbripple.workers``), so a crashing
notebook or kernel never takes the watcher down and a cancelled run can be stopped.
A few processes wait ahead of time with a kernel already started, so a triggered run
skips both the interpreter and the kernel start-up.

Nothing keeps running unobserved after the watcher dies (even by ``kill -9``): each
job process checks that its watcher is alive and stops itself when it is not, and
its kernel follows it. The next watcher finds the orphaned execution, marks it
failed, and starts the firing again.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Literal, Protocol, overload

from .forking import READY, ForkServer

FORK_SERVERS = 3  # fork servers one executor starts at most, then it starts processes afresh


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
    are never reused) and is replaced at once, by a thread of the executor's own. A
    job goes to a warm process that said it is ready, else to the one that started
    first; a run that needs another kernel, or that finds no warm process, gets a
    fresh process.

    With ``fork_server`` (Linux), processes are forked from one that has imported what
    a run needs (:mod:`nbripple.forking`): a warm process is ready in about half the
    time and CPU, which is what lets the pool keep up with runs back to back. Each run
    still gets a kernel process of its own, started fresh.
    """

    def __init__(self, warm: int = 2, kernel_name: str = "python3",
                 fork_server: bool = True) -> None:
        self._procs: dict[str, _Process] = {}
        self._idle: list[_Process] = []  # the warm processes, oldest first
        self.warm = self._warm_target = max(0, warm)
        self.kernel_name = kernel_name
        self.fork_server = fork_server and sys.platform.startswith("linux")
        self._owner: int | None = None
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._filler: threading.Thread | None = None
        self._forks: ForkServer | None = None
        self._fork_servers = 0  # started so far: a server that keeps dying is given up
        self._stopping = False

    def start(self, owner_pid: int) -> None:
        """Start the warm processes; they (and every run) die with ``owner_pid``."""
        self._owner = owner_pid
        self.warm = self._warm_target
        self._stopping = False
        self._fork_servers = 0
        self._refill()

    def _refill(self) -> None:
        """Have the pool's thread start the warm processes it lacks (never blocks)."""
        if self._filler is None or not self._filler.is_alive():
            self._filler = threading.Thread(target=self._fill_forever, daemon=True,
                                            name="nbripple-warm-pool")
            self._filler.start()
        self._wanted.set()

    def _fill_forever(self) -> None:
        while not self._stopping:
            self._wanted.wait()
            self._wanted.clear()
            # One round per wake-up: a process that dies at start is replaced at the
            # next job, not in a loop.
            with self._lock:
                self._idle = [proc for proc in self._idle if _alive(proc)]
                short = self.warm - len(self._idle)
            for _ in range(max(0, short)):
                if self._stopping:
                    break
                proc = self._start_process(self.kernel_name, wait_for_forks=True)
                if proc is None:  # shut down meanwhile
                    break
                with self._lock:
                    self._idle.append(proc)
                if self._stopping:  # shutdown may have taken the list meanwhile
                    self._close_idle()

    @overload
    def _start_process(self, warm_kernel: None, *, wait_for_forks: Literal[False]
                       ) -> _Process: ...
    @overload
    def _start_process(self, warm_kernel: str, *, wait_for_forks: Literal[True]
                       ) -> _Process | None: ...
    def _start_process(self, warm_kernel: str | None, *, wait_for_forks: bool
                       ) -> _Process | None:
        """A worker: forked when the fork server can (``wait_for_forks``: even if it is
        still importing; then None if the executor was shut down meanwhile), else a new
        interpreter."""
        forks = self._fork_server()
        if forks is not None and (wait_for_forks or forks.ready):
            request = {"kernel": warm_kernel, "owner": self._owner,
                       "env": dict(os.environ), "cwd": os.getcwd()}
            forked = forks.fork(request)
            if forked is not None:
                return forked
            if wait_for_forks and self._stopping:
                return None
            self._fork_server(instead_of=forks)  # it died (killed, out of memory)
        command = [sys.executable, "-m", "nbripple.workers"]
        if warm_kernel is not None:
            command += ["--warm", warm_kernel]
        if self._owner is not None:
            command += ["--owner", str(self._owner)]
        return _Spawned(command)

    def _fork_server(self, instead_of: ForkServer | None = None) -> ForkServer | None:
        """The fork server, started if there is none (or ``instead_of`` died)."""
        with self._lock:
            if instead_of is not None and self._forks is instead_of:
                self._forks = None
            if (self.fork_server and self._forks is None and not self._stopping
                    and self._fork_servers < FORK_SERVERS):
                self._forks = ForkServer("nbripple.workers", [])
                self._fork_servers += 1
            return self._forks

    def submit(self, job: RunJob) -> None:
        if self._owner is None:
            self._owner = job.watcher_pid
        wanted = job.kernel_name or self.kernel_name
        data = pickle.dumps(job)  # both ends are nbripple itself
        process: _Process | None = None
        while wanted == self.kernel_name and process is None:
            with self._lock:
                self._idle = [proc for proc in self._idle if _alive(proc)]
                ready = [proc for proc in self._idle if proc.ready()]
                candidate = next(iter(ready or self._idle), None)
                if candidate is not None:
                    self._idle.remove(candidate)
            if candidate is None:
                break
            if candidate.send(data):
                process = candidate
        if process is None:
            process = self._start_process(None, wait_for_forks=False)
            if not process.send(data):
                process.kill()
        self._procs[job.execution_id] = process
        if not self._stopping:
            self._refill()

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

    def _close_idle(self) -> list[_Process]:
        with self._lock:
            idle, self._idle = self._idle, []
        for proc in idle:
            proc.close_input()  # EOF: the warm process shuts its kernel down and exits
        return idle

    def shutdown(self) -> None:
        self.warm = 0
        self._stopping = True
        self._wanted.set()
        if self._forks is not None:  # also ends a request that waits for its imports
            self._forks.close()
        if self._filler is not None and self._filler is not threading.current_thread():
            self._filler.join(timeout=70)
        idle = self._close_idle()
        for proc in idle:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait(timeout=5)
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        self._forks = None


class _Process(Protocol):
    """A run's process as the executor sees it: started fresh or forked."""

    pid: int

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def ready(self) -> bool: ...
    def send(self, data: bytes) -> bool: ...
    def close_input(self) -> None: ...


class _Spawned:
    """A worker started as a new interpreter: its job comes on stdin, and it says it is
    ready on a pipe of its own (not stdout, which its kernel inherits)."""

    def __init__(self, command: list[str]) -> None:
        read_end, write_end = os.pipe()
        try:
            # Its own session and process group: Ctrl-C in the watcher's terminal
            # reaches the run (and its kernel) only through the watcher's shutdown.
            self.proc = subprocess.Popen(
                [*command, "--ready-fd", str(write_end)], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, start_new_session=True, pass_fds=[write_end])
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        os.set_blocking(read_end, False)
        self._ready_fd: int | None = read_end
        self._ready = False
        self.pid = self.proc.pid

    def ready(self) -> bool:
        if self._ready_fd is not None:
            try:
                data = os.read(self._ready_fd, 64)
            except BlockingIOError:
                data = None
            if data is not None:
                self._ready = self._ready or READY in data
                if not data:  # it said so and closed the pipe, or it ended
                    os.close(self._ready_fd)
                    self._ready_fd = None
        return self._ready and self.proc.poll() is None

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout=timeout)

    def terminate(self) -> None:
        self.proc.terminate()

    def kill(self) -> None:
        self.proc.kill()

    def send(self, data: bytes) -> bool:
        return _send(self.proc.stdin, data)

    def close_input(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def __del__(self) -> None:
        if getattr(self, "_ready_fd", None) is not None:
            with contextlib.suppress(OSError):
                os.close(self._ready_fd)  # type: ignore[arg-type]


def _alive(proc: _Process) -> bool:
    if proc.poll() is None:
        return True
    proc.close_input()
    return False


def _kill_group(proc: _Process) -> None:
    """SIGKILL a run process and everything in its process group (its kernel)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _send(stdin: IO[bytes] | None, data: bytes) -> bool:
    """Hand a job to a worker process on its stdin."""
    if stdin is None:
        return False
    try:
        stdin.write(data)
        stdin.close()
        return True
    except (BrokenPipeError, OSError):
        return False

