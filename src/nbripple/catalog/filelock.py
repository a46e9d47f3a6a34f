"""The lock a process holds beside the catalog file while its connection is open.

DuckDB 2.0 reads a database file's headers *before* it takes its own lock on the
file. A process that opens the catalog while another one is closing it (closing
checkpoints: it rewrites the headers and truncates the file) can start from stale
headers and fail with ``Could not read enough bytes from file`` — or write with
them. Taking this lock before ``duckdb.connect`` and holding it until the
connection is closed keeps every nbripple open out of every nbripple close.

The lock is ``flock`` on ``<catalog>.lock``. Unlike ``fcntl`` locks it belongs to
the open file, so closing some other descriptor of that file never drops it, and
the kernel releases it when the process dies (even by SIGKILL). Within a process it
is reference-counted, because DuckDB shares one database instance between all the
connections a process opens to the same file. The holder writes its PID into the
file, for error messages.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: DuckDB's own lock is all there is
    fcntl = None  # type: ignore[assignment]

_registry_lock = threading.Lock()
_held: dict[str, tuple[int, int]] = {}  # lock path -> (descriptor, users in this process)


def lock_path(catalog_path: Path) -> Path:
    """Where the lock of a catalog file lives: ``catalog.duckdb.lock``."""
    return catalog_path.with_name(catalog_path.name + ".lock")


def try_acquire(path: Path) -> bool:
    """Take the lock without waiting; False if another process holds it."""
    if fcntl is None:  # pragma: no cover
        return True
    key = str(path)
    with _registry_lock:
        if key in _held:
            fd, users = _held[key]
            _held[key] = (fd, users + 1)
            return True
        fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[key] = (fd, 1)
        return True


def release(path: Path) -> None:
    """Give back one use of the lock; the last one unlocks the file."""
    if fcntl is None:  # pragma: no cover
        return
    key = str(path)
    with _registry_lock:
        if key not in _held:
            return
        fd, users = _held[key]
        if users > 1:
            _held[key] = (fd, users - 1)
            return
        del _held[key]
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def holder(path: Path) -> int | None:
    """The PID that last took the lock, if the file says so."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def is_held_here(path: Path) -> bool:
    """Whether this process holds the lock (for tests and diagnostics)."""
    with _registry_lock:
        return str(path) in _held


def _forget_after_fork() -> None:
    # The child shares the parent's open lock files: closing its copies leaves the
    # parent's lock in place, and the child has to take the lock for itself.
    global _registry_lock
    _registry_lock = threading.Lock()
    for fd, _ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
