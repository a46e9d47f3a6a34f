"""A fork server: one process imports what a worker needs once and forks each worker.

A run's process spends most of its start-up importing (papermill, nbclient, nbformat's
validator, jupyter_client, nbripple's runner): about 2 s of CPU on a small machine,
paid again by every process the executor keeps warm. Forked from a process that has
done those imports, a worker starts in a few milliseconds and shares those pages.

The standard library's ``multiprocessing`` forkserver does this too, but every child
it starts imports the parent's ``__main__`` again (a Jupyter server's, pytest's, or a
user's script without an ``if __name__ == "__main__"`` guard, which would run again).
This one forks a server started as ``python -m <module>`` that imports only what its
owner preloads.

The protocol, over a Unix socket pair: the server sends one byte when its imports are
done; then for each request the owner sends a pickled request and one file
descriptor (the worker's end of its own control socket); the server forks, the child
runs the worker with that socket, and the server answers with the child's pid. The
server exits when its owner's end closes (the owner exited, even by ``kill -9``), and
the kernel reaps its children (``SIGCHLD`` ignored). Requests and answers are framed
by a 4-byte length.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_HEADER = struct.Struct("!I")
READY = b"R"  # a worker says it is ready for a job with this byte on its control socket


class ForkServer:
    """The owner's side: start the server (``python -m <module> <argv>``), fork workers."""

    def __init__(self, module: str, argv: list[str]) -> None:
        self._lock = threading.Lock()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = mine
        try:
            # Its own session: Ctrl-C in the owner's terminal reaches it only through
            # the owner (it ends when the owner's end of the socket closes).
            self._proc = subprocess.Popen(
                [sys.executable, "-m", module, "--fork-server", str(theirs.fileno()), *argv],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, start_new_session=True)
        finally:
            theirs.close()
        self._ready = False

    @property
    def ready(self) -> bool:
        """Whether the server has done its imports (it says so once, never blocks)."""
        if not self._ready and self._lock.acquire(blocking=False):
            try:
                self._sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    self._ready = self._sock.recv(1) == READY
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    self._sock.setblocking(True)
                self._lock.release()
        return self._ready

    def fork(self, request: Any, timeout: float = 60.0) -> Worker | None:
        """Fork one worker for ``request``; None when the server is gone or does not
        answer within ``timeout`` seconds (the caller starts a process another way)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = None
        try:
            with self._lock:
                if self._proc.poll() is None:
                    pid = self._request(request, theirs, timeout)
        finally:
            theirs.close()
        if isinstance(pid, int) and pid > 0:
            return Worker(pid, mine)
        mine.close()
        return None

    def _request(self, request: Any, theirs: socket.socket, timeout: float) -> Any:
        try:
            self._sock.settimeout(timeout)
            if not self._ready:  # wait for the imports
                self._ready = _recv_exact(self._sock, 1) == READY
            _send_frame(self._sock, pickle.dumps(request), fds=[theirs.fileno()])
            return pickle.loads(_recv_frame(self._sock))
        except (OSError, EOFError, pickle.UnpicklingError):  # a timeout is an OSError
            self.close()  # out of step with the server: start no more through it
            return None
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(None)

    def close(self) -> None:
        """End the server (its running children are not affected); from any thread,
        it also ends a request waiting for an answer."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)


    def __del__(self) -> None:  # forgotten: the server ends when its socket closes
        with contextlib.suppress(Exception):
            self._sock.close()


class Worker:
    """A forked worker, seen from its owner through its control socket. It is not the
    owner's child, so its end is seen as the socket's end of file (the worker holds its
    end until it exits); ``poll`` and ``wait`` mimic :class:`subprocess.Popen` (an
    ended worker's ``returncode`` is 0: the run's outcome is in its execution row)."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self._sock = sock
        self._sock.setblocking(False)
        self.returncode: int | None = None
        self._ready = False
        self._job_sent = False

    def _read(self, timeout: float) -> None:
        if self.returncode is not None:
            return
        readable, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
        if not readable:
            return
        try:
            data = self._sock.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._ready = self._ready or READY in data
            return
        self.returncode = 0
        self._sock.close()

    def ready(self) -> bool:
        """Whether the worker said it is ready for a job (and is still there)."""
        self._read(0)
        return self._ready and self.returncode is None

    def poll(self) -> int | None:
        self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            self._read(min(left, 1.0))
        return 0

    def send(self, data: bytes) -> bool:
        """Hand the worker its job and mark its end; False if it is gone."""
        if self.returncode is not None or self._job_sent:
            return False
        try:
            self._sock.setblocking(True)
            self._sock.sendall(data)
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                self._sock.setblocking(False)
        self._job_sent = True
        return True

    def close_input(self) -> None:
        """No job is coming: the worker shuts down (end of file before any job)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        self._job_sent = True

    def _signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def __del__(self) -> None:  # forgotten while it runs: the worker does not mind
        with contextlib.suppress(Exception):
            self._sock.close()


def serve(fd: int, preload: Callable[[], None],
          child: Callable[[socket.socket, Any], None]) -> None:
    """The server's side: ``preload()`` (imports only: no threads, no open files that
    workers must not share), then fork ``child(control socket, request)`` for each
    request until the owner's end closes. Each child gets its own session."""
    sock = socket.socket(fileno=fd)
    with contextlib.suppress(Exception):  # a failed import: workers import it themselves
        preload()
    sock.sendall(READY)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            data, fds = _recv_frame_fds(sock)
        except (OSError, EOFError):
            os._exit(0)
        pid = -1
        if fds:
            try:
                pid = os.fork()
            except OSError:
                pid = -1
            if pid == 0:
                _child(sock, fds, data, child)
            for extra in fds:
                os.close(extra)
        try:
            _send_frame(sock, pickle.dumps(pid))
        except OSError:
            os._exit(0)


def _child(server: socket.socket, fds: list[int], data: bytes,
           child: Callable[[socket.socket, Any], None]) -> None:
    code = 1
    try:
        server.close()
        for extra in fds[1:]:
            os.close(extra)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        child(socket.socket(fileno=fds[0]), pickle.loads(data))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a child must never return into the server's loop
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _send_frame(sock: socket.socket, data: bytes, fds: list[int] | None = None) -> None:
    payload = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [payload[:1]], fds)
        sock.sendall(payload[1:])
    else:
        sock.sendall(payload)


def _recv_exact(sock: socket.socket, n: int, first: bytes = b"") -> bytes:
    buf = bytearray(first)
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("the other end closed the socket")
        buf += chunk
    return bytes(buf)


def _recv_frame(sock: socket.socket) -> bytes:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return _recv_exact(sock, size)


def _recv_frame_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    first, fds, _flags, _addr = socket.recv_fds(sock, 1, 4)
    if not first:
        raise EOFError("the owner closed the socket")
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, first))
    return _recv_exact(sock, size), list(fds)


__all__ = ["READY", "ForkServer", "Worker", "serve"]
