"""The lock a process holds beside the catalog file while its connection is open.

DuckDB 2.0 reads a database file's headers *before* it takes its own lock on the
file. A process that opens the catalog while another one is closing it (closing
checkpoints: it rewrites the headers and truncates the file) can start from stale
headers and fail with ``Could not read enough bytes from file`` — or write with
them. Taking this lock before ``duckdb.connect`` and holding it until the
connection is closed keeps every nbripple open out of every nbripple close.

The lock is a :class:`filelock.UnixFileLock` (``flock``) on ``<catalog>.lock``.
Unlike ``fcntl`` locks it belongs to the open file, so closing some other descriptor
of that file never drops it, and the kernel releases it when the process dies (even
by SIGKILL). Within a process it is reference-counted across threads (one lock
object per path, not thread-local), because DuckDB shares one database instance
between all the connections a process opens to the same file. The holder writes its
PID into the file, for error messages. A forked child starts with no lock: filelock
closes the child's copies of the descriptors (which leaves the parent's lock in
place) and this module forgets the inherited lock objects.

At interpreter exit filelock releases the locks still held. A connection still open
then would be closed (and checkpointed) only later, without the lock, so
:func:`before_exit_release` lets the catalog close its connections first.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import filelock

_registry_lock = threading.Lock()
_locks: dict[str, filelock.UnixFileLock] = {}  # lock path -> this process's lock on it
_probes: dict[str, int] = {}  # lock path -> a read-only descriptor (held_elsewhere)
_exit_hooks: list[Callable[[], None]] = []
_exit_registered = False


def lock_path(catalog_path: Path) -> Path:
    """Where the lock of a catalog file lives: ``catalog.duckdb.lock``."""
    return catalog_path.with_name(catalog_path.name + ".lock")


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def before_exit_release(hook: Callable[[], None]) -> None:
    """Run ``hook`` at interpreter exit before filelock releases the locks still held."""
    _exit_hooks.append(hook)


def _run_exit_hooks() -> None:
    for hook in _exit_hooks:
        hook()


def _lock(path: Path) -> filelock.UnixFileLock:
    global _exit_registered
    key = str(path)
    with _registry_lock:
        lock = _locks.get(key)
        if lock is None:
            lock = filelock.UnixFileLock(
                key, thread_local=False, blocking=False, fallback_to_soft=False,
                preserve_lock_file=True, on_acquired=_write_pid,
            )
            _locks[key] = lock
            if not _exit_registered:
                # After filelock has registered its own exit handler (exit handlers
                # run last registered first), so the hooks run before it.
                atexit.register(_run_exit_hooks)
                _exit_registered = True
        return lock


def try_acquire(path: Path) -> bool:
    """Take the lock without waiting (or take one more use of it if this process holds
    it); False if another process holds it."""
    if not filelock.has_fcntl:  # pragma: no cover - Windows: DuckDB's own lock is all there is
        return True
    try:
        _lock(path).acquire(blocking=False)
    except filelock.Timeout:
        return False
    return True


def release(path: Path) -> None:
    """Give back one use of the lock; the last one unlocks the file."""
    with _registry_lock:
        lock = _locks.get(str(path))
    if lock is not None and lock.is_locked:
        lock.release()


def held_elsewhere(path: Path) -> bool:
    """Whether another process holds the lock (so :func:`try_acquire` would fail; this
    process's own use of it never makes it wait), found without taking it: a
    test-and-unlock through a read-only descriptor kept open for it. Taking it would
    open and close the file, which is what a watch of the file's releases
    (:mod:`.releases`) sees as a release."""
    if not filelock.has_fcntl:  # pragma: no cover - Windows
        return False
    import fcntl  # (POSIX)

    key = str(path)
    with _registry_lock:
        lock = _locks.get(key)
        if lock is not None and lock.is_locked:
            return False  # this process holds it
        fd = _probes.get(key)
        if fd is None:
            try:
                fd = _probes[key] = os.open(key, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return False  # nobody ever took it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False


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
        lock = _locks.get(str(path))
    return lock is not None and lock.is_locked


def _forget_after_fork() -> None:
    # filelock has closed the child's copies of the lock descriptors; its lock objects
    # refuse to be used in the child, which takes locks of its own.
    global _registry_lock
    _registry_lock = threading.Lock()
    _locks.clear()
    for fd in _probes.values():  # (the parent's; closing them here leaves its locks be)
        with contextlib.suppress(OSError):
            os.close(fd)
    _probes.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def marker_start_time(marker: str | os.PathLike[str]) -> float | None:
    """The start time a waiting process wrote into its marker (None: gone, or written
    by an older nbripple)."""
    try:
        return float(Path(marker).read_text(encoding="ascii"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
