"""The in-memory DuckDB database a process attaches its catalog file to, per burst.

Making a DuckDB database (``duckdb.connect(path)``) costs ~10 ms before it reads a
byte of the file (DuckDB builds its built-in catalog of functions and settings), and
a process opens the catalog file for every burst. So a process keeps one in-memory
database per catalog file and, for a burst, ``ATTACH``\\ es the file to it (<1 ms)
and hands out a connection of its own (a cursor) whose default database is the file;
at the end it ``DETACH``\\ es the file, which checkpoints and releases DuckDB's lock
on it exactly as closing the connection did. Connections of one process to the same
file share the attachment (as they shared the database before), and the file is
detached when the last one ends.

A detach that found the write-ahead log empty at its attach leaves its own commits
in the log instead of checkpointing them (a small log, ``WAL_LEFT_MAX`` at most):
the next process to attach replays them (~1 ms a commit) and, having found them
there, checkpoints them with its own at its detach if it wrote (DuckDB's detach
checkpoints only after writes: a reader leaves them to the next writer, rather than
holding the file for a checkpoint). So a writer hands the file over some 5 ms
sooner (the checkpoint rewrites and syncs the file), which is what a watcher waiting
for it sees of a commit; the log never holds more than one burst's commits; and the
commits are as durable either way (DuckDB syncs the log at each commit).

A failed detach (a checkpoint on a full disk) closes that in-memory database too, so
the file is released whatever happens; its commits stay in the write-ahead log,
replayed on the next attach. A forked child forgets its parent's databases.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import duckdb

ALIAS = "nbripple_catalog"  # the name of the attached file in its in-memory database
WAL_LEFT_MAX = 64 * 1024  # bytes of the log a detach may leave for the next attach


def _wal_size(key: str) -> int:
    try:
        return os.stat(key + ".wal").st_size
    except FileNotFoundError:
        return 0


class _Host:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.users = 0  # connections handed out on the attached file
        self.replayed = False  # whether the attach found commits in the log


_lock = threading.Lock()
_hosts: dict[str, _Host] = {}  # real path of a catalog file -> its in-memory database
_issued: dict[int, str] = {}  # id() of a connection handed out -> the real path
_spare: duckdb.DuckDBPyConnection | None = None  # made ahead by prepare()


def _new_database(threads: int | None) -> duckdb.DuckDBPyConnection:
    global _spare
    if _spare is not None and threads is None:
        con, _spare = _spare, None
        return con
    return duckdb.connect(":memory:", config={} if threads is None else {"threads": threads})


def prepare() -> None:
    """Make the in-memory database the first attach will use, ahead of time (a warm
    process or kernel, before its job)."""
    global _spare
    with _lock:
        if _spare is None:
            _spare = duckdb.connect(":memory:")


def attach(path: Path, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the catalog file at ``path`` (attached
    now unless another connection of this process has it); end it with :func:`end`.
    Raises what ``ATTACH`` raises (DuckDB's lock conflict, a damaged file...)."""
    key = os.path.realpath(path)
    with _lock:
        host = _hosts.get(key)
        if host is None:
            host = _hosts[key] = _Host(_new_database(threads))
        if host.users == 0:
            quoted = key.replace("'", "''")
            host.replayed = _wal_size(key) > 0  # (the caller holds the file's lock)
            host.con.execute(f"ATTACH '{quoted}' AS {ALIAS}")
        host.users += 1
        try:
            con = host.con.cursor()
            con.execute(f"USE {ALIAS}")
        except BaseException:
            _end_locked(key, None)
            raise
        _issued[id(con)] = key
        return con


def end(con: duckdb.DuckDBPyConnection) -> None:
    """Close a connection; the file is detached (checkpointed, released) with the last
    one. A connection :func:`attach` did not hand out is closed as it is."""
    with _lock:
        key = _issued.pop(id(con), None)
        if key is None:
            con.close()
            return
        _end_locked(key, con)


def _end_locked(key: str, con: duckdb.DuckDBPyConnection | None) -> None:
    host = _hosts[key]
    try:
        if con is not None:
            con.close()
    finally:
        host.users -= 1
        if host.users == 0:
            try:
                leave = not host.replayed and _wal_size(key) <= WAL_LEFT_MAX
                host.con.execute("SET checkpoint_on_detach = "
                                 + ("'DISABLED'" if leave else "'DEFAULT'"))
                host.con.execute(f"DETACH {ALIAS}")
            except duckdb.Error:
                del _hosts[key]  # closing the database releases the file in any case
                with contextlib.suppress(duckdb.Error):
                    host.con.close()
                raise


def _forget_after_fork() -> None:
    # The parent's databases (and their threads) are not the child's to use or close.
    global _lock, _spare
    _lock = threading.Lock()
    _hosts.clear()
    _issued.clear()
    _spare = None


os.register_at_fork(after_in_child=_forget_after_fork)
