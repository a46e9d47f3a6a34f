"""The lease on the DuckDB file: open for a burst of operations, released when idle.

DuckDB lets a single process open a database file for writing. So a process holds
its connection only across a burst of operations and releases it after a short idle
time (``idle_release_ms``), letting other processes in; opening while another
process holds the file is retried with jittered exponential backoff until
``lock_timeout_s``, then :class:`~nbripple.errors.CatalogLockedError` is raised.
Nothing holds the file while idle.

Fairness: a process that finds the file locked leaves a marker
(``catalog.duckdb.wait.<pid>``, holding its start time) while it retries. A holder
releases the file at the end of its current operation when it sees one (an idle
holder within :data:`WAITER_CHECK_S`, however long its ``idle_release_ms``),
and a process about to open gives way for a moment to a waiting one, so a busy
process cannot starve the others.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from ...errors import CatalogReadOnly, DiskFull
from ...model import ArtifactVersion
from ...pids import pid_alive, process_start_time
from . import host, lockfile, migrations
from .faults import catalog_error, locked_error

ROW_CACHE_SIZE = 20_000  # versions (and search rows) kept in memory
GIVE_WAY_S = 0.05  # how long an opener lets a waiting process go first
FIRST_RETRY_DELAY_S = 0.002  # the longest sleep after the first failed try
MAX_RETRY_DELAY_S = 0.02  # the longest sleep between two tries of a locked file
EXIT_CLOSE_WAIT_S = 2.0  # at exit, how long to wait for an operation to end before closing
HAND_OVER_AFTER_S = 0.02  # a holder keeps a contended file this long for its next commits
WAITER_CHECK_S = 0.005  # while idle and holding the file, how often to look for waiters
MARKERS_FRESH_S, MTIME_TICK_NS = 0.05, 20_000_000  # see _others_waiting


class _FileBusy(Exception):
    """One try found the file held by another process (``conflict``: DuckDB's error
    when that process does not take nbripple's lock)."""

    def __init__(self, conflict: duckdb.Error | None) -> None:
        super().__init__(str(conflict) if conflict else "the catalog lock is held")
        self.conflict = conflict


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set" in text)


def file_token(path: Path) -> tuple[int, ...]:
    """``(mtime_ns, size)`` of the catalog file and of its write-ahead log, without
    opening either: a commit by any process changes the log (or, when it checkpoints,
    the file)."""
    signature: list[int] = []
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            st = candidate.stat()
            signature.extend((st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            signature.extend((0, 0))
    return tuple(signature)


class Burst:
    """What :meth:`CatalogConnection.burst` learnt: the change token at its release."""

    token: tuple[int, ...] | None = None


class CatalogConnection:
    """The connection lease of :class:`~nbripple.catalog.embedded.EmbeddedCatalog`,
    and the caches of rows read through it (forgotten when the file is replaced)."""

    def __init__(self, path: str | os.PathLike[str], *, idle_release_ms: float = 100.0,
                 lock_timeout_s: float = 60.0, threads: int | None = None) -> None:
        self.path = Path(path)
        self.threads = threads  # DuckDB's worker threads (None: its default, the cores)
        self._lock_path = lockfile.lock_path(self.path)
        self._markers_dir = (str(self.path.parent), f"{self.path.name}.wait.")
        self._markers: tuple[int, float, list[str]] = (0, 0.0, [])  # see _others_waiting
        self.idle_release_s = max(0.0, idle_release_ms / 1000.0)
        self.lock_timeout_s = lock_timeout_s
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._depth = 0
        self._pins = 0
        self._in_transaction = False
        # (seq, card_revision) -> version row, for search results
        self._row_cache: OrderedDict[tuple[int, int], Any] = OrderedDict()
        # (name, number) -> version read or committed by this process
        self._pinned: OrderedDict[tuple[str, int], ArtifactVersion] = OrderedDict()
        self._catalog_id: str | None = None
        # (opens, epoch, newest seq, name -> (newest, description, facets)): VersionTables
        self._counters: tuple[int, int, int, dict[str, tuple[int, str, set[str]]]] | None = None
        self._last_used = 0.0
        self._releaser: threading.Thread | None = None
        self._wake = threading.Condition(self._lock)
        self.opens = 0  # how many times the file was opened (for diagnostics/tests)
        self._token_at_close: tuple[int, ...] | None = None
        self._opened_at = 0.0
        os.register_at_fork(after_in_child=self._forget_after_fork)
        every_catalog.add(self)

    def _forget_after_fork(self) -> None:
        # A forked child must not use (or close) the parent's connection.
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._con = None
        self._depth = 0
        self._in_transaction = False
        self._releaser = None
        self._counters = None

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The open connection for one operation; reentrant within a thread."""
        with self._lock:
            if self._con is None:
                self._con = self._open()
            self._depth += 1
            try:
                yield self._con
            except duckdb.Error as exc:
                mapped = catalog_error(exc, self.path)
                if mapped is None:
                    raise
                if self._depth == 1:  # start afresh on the next operation
                    with contextlib.suppress(duckdb.Error, OSError):
                        self._close_locked()
                raise mapped from exc
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._last_used = time.monotonic()
                    if self.idle_release_s == 0 or (self._pins == 0 and self._share_used()
                                                    and self._others_waiting()):
                        self._close_locked()  # another process is waiting: hand over now
                    else:
                        self._ensure_releaser()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN ... COMMIT (ROLLBACK on error); nested calls join
        the outermost transaction."""
        with self.connection() as con:
            if self._in_transaction:
                yield con
                return
            con.execute("BEGIN TRANSACTION")
            self._in_transaction, committed = True, False
            try:
                yield con
                self._in_transaction = False
                con.execute("COMMIT")
                committed = True
            finally:
                if not committed:  # rolled back: so is the numbering it took
                    self._in_transaction, self._counters = False, None
                    with contextlib.suppress(duckdb.Error):
                        con.execute("ROLLBACK")

    @contextmanager
    def burst(self) -> Iterator[Burst]:
        """Hold the file across several operations (a watcher's pass), then release it.

        Between the operations of a burst the file is never handed over, so a burst pays
        for one open however many operations it makes, and nobody else can commit
        meanwhile; a waiting process gets the file when the burst ends. On exit,
        :attr:`Burst.token` is the change token taken while the file was still held:
        it includes every commit up to the release, the burst's own writes among
        them (None when the file was not held to the end, e.g. after an error).
        """
        outcome = Burst()
        with self._lock:
            with self.connection():
                opens = self.opens
                yield outcome
                held = self.opens == opens
            if self._depth == 0:
                self._close_locked()  # (unless the hand-over to a waiter closed it)
                if held:
                    outcome.token = self._token_at_close

    # -- fairness between processes ------------------------------------------
    def _waiting_marker(self) -> Path:
        return self.path.with_name(f"{self.path.name}.wait.{os.getpid()}")

    def _leave_waiting_marker(self) -> None:
        started = process_start_time()
        with contextlib.suppress(OSError):
            self._waiting_marker().write_text(str(started) if started else "", encoding="ascii")

    def _others_waiting(self) -> bool:
        # Asked after each operation and every WAITER_CHECK_S: list the directory only
        # when it changed (a marker came or went), or after MARKERS_FRESH_S. A listing
        # within a tick of the mtime's clock is not kept: a change in that same tick
        # would leave the mtime as it is (git's "racy" index entries).
        home, prefix = self._markers_dir
        try:
            stamp, now = os.stat(home).st_mtime_ns, time.monotonic()
            if stamp != self._markers[0] or now >= self._markers[1]:
                settled = time.time_ns() - stamp > MTIME_TICK_NS
                self._markers = (stamp if settled else -1, now + MARKERS_FRESH_S, [
                    name for name in os.listdir(home) if name.startswith(prefix)])
        except OSError:
            return False
        for name in self._markers[2]:
            pid_text = name[len(prefix):]
            if not pid_text.isdigit() or int(pid_text) == os.getpid():
                continue
            marker = os.path.join(home, name)
            if pid_alive(int(pid_text), start_time=lockfile.marker_start_time(marker)):
                return True
            with contextlib.suppress(OSError):  # left by a process that died
                os.unlink(marker)
        return False

    def _share_used(self) -> bool:
        """Whether this process has held the file for its share of a contended burst
        (``HAND_OVER_AFTER_S``): a writer's consecutive commits share one open — each
        open costs more than a commit — and a waiter waits at most that long more."""
        return time.monotonic() - self._opened_at >= HAND_OVER_AFTER_S

    def _give_way(self) -> None:
        gave_way = 0.0
        while gave_way < GIVE_WAY_S and self._others_waiting():
            time.sleep(0.005)  # another process waited first: let it in
            gave_way += 0.005

    # -- opening and releasing -------------------------------------------------
    def _try_connect(self) -> duckdb.DuckDBPyConnection:
        # nbripple's own lock first: DuckDB reads the file's headers before taking its
        # lock, so opening during another process's close is unsafe (see lockfile).
        if not lockfile.try_acquire(self._lock_path):
            raise _FileBusy(None)
        try:  # attached to this process's in-memory database: no new one per burst
            return host.attach(self.path, self.threads)
        except duckdb.Error as exc:
            lockfile.release(self._lock_path)
            if not _is_lock_conflict(exc):
                raise
            raise _FileBusy(exc) from exc  # held by a process that does not take our lock

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            return self._open_file()
        except (duckdb.Error, OSError) as exc:
            mapped = catalog_error(exc, self.path)
            if mapped is None:
                raise
            if isinstance(mapped, CatalogReadOnly):
                con = self._open_read_only()
                if con is not None:
                    return con
            raise mapped from exc

    def _open_read_only(self) -> duckdb.DuckDBPyConnection | None:
        """On a home nobody can write (a read-only mount), reads need no lock: open the
        file read-only, so listings and loads work and a write is a CatalogReadOnly.
        None if that fails too, or the file needs a migration (a write)."""
        if not self.path.is_file():
            return None
        try:
            con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error:
            return None
        try:
            version, catalog_id = migrations.stored_identity(con)
            if not migrations.is_current(version):
                con.close()
                return None
            self._remember_catalog(catalog_id)
        except duckdb.Error:
            con.close()
            return None
        self.opens += 1
        return con

    def _remember_catalog(self, catalog_id: str | None) -> None:
        if catalog_id != self._catalog_id:  # a new catalog at this path: forget rows
            self._row_cache.clear()
            self._pinned.clear()
            self._catalog_id = catalog_id

    def _open_file(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._give_way()
        waiting = False

        def wait_in_line(_: RetryCallState) -> None:
            nonlocal waiting
            if not waiting:
                waiting = True
                self._leave_waiting_marker()

        retrying = Retrying(
            retry=retry_if_exception_type(_FileBusy),
            # full jitter: a random sleep up to 2 ms, 4 ms, ... 20 ms
            wait=wait_random_exponential(multiplier=FIRST_RETRY_DELAY_S, max=MAX_RETRY_DELAY_S),
            stop=stop_after_delay(self.lock_timeout_s),
            before_sleep=wait_in_line,
            reraise=True,
        )
        try:
            con = retrying(self._try_connect)
        except _FileBusy as busy:
            raise locked_error(self.path, lockfile.holder(self._lock_path), busy.conflict,
                               self.lock_timeout_s) from busy.conflict
        finally:
            if waiting:
                with contextlib.suppress(OSError):
                    self._waiting_marker().unlink()
        self.opens += 1
        self._opened_at = time.monotonic()
        try:
            version, catalog_id = migrations.stored_identity(con)  # one read per open
            if migrations.migrate(con, self.path, version):
                catalog_id = migrations.stored_identity(con)[1]
            self._remember_catalog(catalog_id)
        except BaseException:
            host.end(con)
            lockfile.release(self._lock_path)
            raise
        return con

    def _ensure_releaser(self) -> None:
        if self._releaser is not None and self._releaser.is_alive():
            return
        self._releaser = threading.Thread(
            target=self._release_when_idle, name="nbripple-catalog-release", daemon=True
        )
        self._releaser.start()

    def _release_when_idle(self) -> None:
        # A process that holds the file long (a server: idle_release_ms of an hour)
        # still hands it over while idle: every WAITER_CHECK_S it looks for a
        # waiting process's marker.
        with self._lock:
            while self._con is not None:
                idle = time.monotonic() - self._last_used
                if self._depth == 0 and self._pins == 0 and (
                        idle >= self.idle_release_s
                        or (self._share_used() and self._others_waiting())):
                    self._close_locked()  # idle, or another process waits: hand over
                    break
                # look for waiters every few ms: a process that wants the file should
                # not wait out this process's idle time
                self._wake.wait(timeout=min(max(self.idle_release_s - idle, 0.001),
                                            WAITER_CHECK_S))
            self._releaser = None

    def _close_locked(self) -> None:
        if self._con is not None:
            try:
                host.end(self._con)  # detached: checkpointed, DuckDB's lock released
            except duckdb.Error:
                # DuckDB checkpoints on close; when that fails (a full disk) the commits
                # stay in the write-ahead log, replayed on the next open: nothing is lost
                pass
            finally:
                self._con = None
                # taken before the lock goes: no other process has written since
                self._token_at_close = file_token(self.path)
                lockfile.release(self._lock_path)

    def warm(self, hold_s: float = 1.0) -> Callable[[], None]:
        """Open the file in the background and keep it open until the returned function
        is called (or ``hold_s`` has passed), so a commit that follows slow work — such as
        writing a large blob — does not pay for the open. Returns the release function.
        """
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                self._pins -= 1
                self._last_used = time.monotonic()
                self._ensure_releaser()

        def open_and_hold() -> None:
            try:
                with self._lock:
                    if self._con is None:
                        self._con = self._open()
            except Exception:  # the commit will open (and report) it itself
                pass
            released.wait(hold_s)
            release()

        with self._lock:
            self._pins += 1
        threading.Thread(target=open_and_hold, name="nbripple-catalog-warm", daemon=True).start()
        return release

    def close(self) -> None:
        """Release the file now (it is reopened on the next operation)."""
        with self._lock:
            if self._depth == 0:
                self._close_locked()

    @property
    def is_open(self) -> bool:
        """Whether this process holds the file open right now."""
        return self._con is not None

    def now(self) -> datetime:
        """The current time (aware UTC), as the catalog stamps records."""
        return datetime.now(UTC)

    def backup(self, target: str | os.PathLike[str]) -> int:
        """Copy the catalog file to ``target`` (a new file), consistent even while other
        processes write: the copy is made holding the file (so no other process can
        write meanwhile) right after a checkpoint (so the file holds every commit and
        no write-ahead log is needed). The copy appears only when complete.
        Returns how many versions the copy holds.
        """
        dest = Path(target)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        try:
            with self.connection() as con:
                con.execute("CHECKPOINT")
                row = con.execute("SELECT count(*) FROM versions").fetchone()
                with self.path.open("rb") as source, tmp.open("wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            mapped = catalog_error(exc, dest)
            if mapped is None or not isinstance(mapped, DiskFull | CatalogReadOnly):
                raise
            raise type(mapped)(f"cannot write the backup {dest}: {exc.strerror or exc}; "
                               "pick a writable DEST with free space") from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return int(row[0]) if row else 0

    def schema_version(self) -> int:
        """The schema version of the file (the current one, once opened)."""
        with self.connection() as con:
            return migrations.stored_schema_version(con)


every_catalog: weakref.WeakSet[CatalogConnection] = weakref.WeakSet()


def _close_at_exit() -> None:
    # Close each open connection (DuckDB checkpoints) while its lock is still held. A
    # connection that stays busy in another thread is left alone: a live thread keeps
    # filelock from releasing the lock, and the kernel releases it when the process ends.
    for catalog in list(every_catalog):
        if catalog._lock.acquire(timeout=EXIT_CLOSE_WAIT_S):
            try:
                if catalog._depth == 0:
                    catalog._close_locked()
            finally:
                catalog._lock.release()


lockfile.before_exit_release(_close_at_exit)

