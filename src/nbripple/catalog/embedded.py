"""The embedded catalog: one DuckDB file, shared by processes one burst at a time.

DuckDB lets a single process open a database file for writing. So a process holds
its connection only across a burst of operations and releases it after a short idle
time (``idle_release_ms``), letting other processes in; opening while another
process holds the file is retried with jittered exponential backoff until
``lock_timeout_s``, then :class:`~nbripple.errors.CatalogLockedError` is raised.
Nothing holds the file while idle.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from ..errors import CatalogLockedError, SchemaVersionError
from ..model import (
    ArtifactDecl,
    ArtifactVersion,
    CardRevision,
    Event,
    Execution,
    InputRecord,
    NewVersion,
)
from ..pids import pid_alive
from ..refs import Query
from . import filelock
from .reactive import ReactiveTables
from .schema import MIGRATIONS, SCHEMA_VERSION, SCHEMA_VERSION_KEY

_VERSION_COLUMNS = (
    "v.artifact, v.version, v.partitions, v.time_partition, v.kind, v.python_type, "
    "v.content_hash, v.size, v.uri, v.inline_value, v.table_schema, v.num_rows, v.meta, "
    "v.execution_id, v.created_at, v.seq, v.card_type, v.card, a.description"
)
_VERSION_FROM = "versions v JOIN artifacts a ON a.name = v.artifact"
# The same columns without the artifact description, which comes last.
_VERSION_ONLY_COLUMNS = _VERSION_COLUMNS.rsplit(",", 1)[0]
_EXECUTION_FIELDS = [f.name for f in fields(Execution) if not f.name.startswith("_")]
_EXECUTION_JSON = {"parameters", "requested", "error", "trigger"}
_LOCK_PID_RE = re.compile(r"PID (\d+)")
ROW_CACHE_SIZE = 20_000  # version rows kept in memory for search results
GIVE_WAY_S = 0.05  # how long an opener lets a waiting process go first
MAX_RETRY_DELAY_S = 0.02  # the longest sleep between two tries of a locked file


def utcnow() -> datetime:
    """Naive UTC time, as stored in TIMESTAMP columns."""
    return datetime.now(UTC).replace(tzinfo=None)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def _naive(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set" in text)


class EmbeddedCatalog(ReactiveTables):
    """The catalog in one DuckDB file (see the module docstring for the locking rules).

    Use :meth:`for_path` to share one instance per file within a process.
    """

    _instances: ClassVar[dict[tuple[str, float, float], EmbeddedCatalog]] = {}
    _instances_lock = threading.Lock()

    def __init__(
        self, path: str | os.PathLike[str], *, idle_release_ms: float = 100.0,
        lock_timeout_s: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self._lock_path = filelock.lock_path(self.path)
        self.idle_release_s = max(0.0, idle_release_ms / 1000.0)
        self.lock_timeout_s = lock_timeout_s
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._depth = 0
        self._pins = 0
        self._in_transaction = False
        self._row_cache: OrderedDict[tuple[int, int], Any] = OrderedDict()
        self._pinned: OrderedDict[tuple[str, int], ArtifactVersion] = OrderedDict()
        self._catalog_id: str | None = None
        self._last_used = 0.0
        self._migrated = False
        self._releaser: threading.Thread | None = None
        self._wake = threading.Condition(self._lock)
        self.opens = 0  # how many times the file was opened (for diagnostics/tests)
        os.register_at_fork(after_in_child=self._forget_after_fork)

    @classmethod
    def for_path(
        cls, path: str | os.PathLike[str], *, idle_release_ms: float = 100.0,
        lock_timeout_s: float = 60.0,
    ) -> EmbeddedCatalog:
        key = (str(Path(path).resolve()), idle_release_ms, lock_timeout_s)
        with cls._instances_lock:
            instance = cls._instances.get(key)
            if instance is not None and not Path(path).exists():
                instance.close()  # the file was deleted: never write to its ghost
                instance = None
            if instance is None:
                instance = cls(path, idle_release_ms=idle_release_ms,
                               lock_timeout_s=lock_timeout_s)
                cls._instances[key] = instance
            return instance

    # -- connection lifecycle -----------------------------------------------
    def _forget_after_fork(self) -> None:
        # A forked child must not use (or close) the parent's connection.
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._con = None
        self._depth = 0
        self._in_transaction = False
        self._releaser = None

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The open connection for one operation; reentrant within a thread."""
        with self._lock:
            if self._con is None:
                self._con = self._open()
            self._depth += 1
            try:
                yield self._con
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._last_used = time.monotonic()
                    if self.idle_release_s == 0 or (self._pins == 0 and self._others_waiting()):
                        self._close_locked()  # another process is waiting: hand over now
                    else:
                        self._ensure_releaser()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside BEGIN ... COMMIT (ROLLBACK on error).

        Nested calls join the outermost transaction.
        """
        with self.connection() as con:
            if self._in_transaction:
                yield con
                return
            con.execute("BEGIN TRANSACTION")
            self._in_transaction = True
            try:
                yield con
            except BaseException:
                self._in_transaction = False
                con.execute("ROLLBACK")
                raise
            self._in_transaction = False
            con.execute("COMMIT")

    # -- fairness between processes ------------------------------------------
    # A process that finds the file locked leaves a marker (catalog.duckdb.wait.<pid>)
    # while it retries. A holder releases the file at the end of its current operation
    # when it sees one, and a process about to open gives way for a moment to a
    # waiting one, so a busy process cannot starve the others.
    def _waiting_marker(self) -> Path:
        return self.path.with_name(f"{self.path.name}.wait.{os.getpid()}")

    def _others_waiting(self) -> bool:
        prefix = f"{self.path.name}.wait."
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return False
        for name in names:
            if not name.startswith(prefix):
                continue
            pid_text = name[len(prefix):]
            if not pid_text.isdigit() or int(pid_text) == os.getpid():
                continue
            if pid_alive(int(pid_text)):
                return True
            with contextlib.suppress(OSError):  # left by a process that died
                os.unlink(self.path.parent / name)
        return False

    def _open(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.002
        waiting = False
        gave_way = 0.0
        try:
            while True:
                if not waiting and gave_way < GIVE_WAY_S and self._others_waiting():
                    time.sleep(0.005)  # another process waited first: let it in
                    gave_way += 0.005
                    continue
                # nbripple's own lock first: DuckDB reads the file's headers before taking
                # its lock, so opening during another process's close is unsafe (filelock).
                conflict: duckdb.Error | None = None
                if filelock.try_acquire(self._lock_path):
                    try:
                        con = duckdb.connect(str(self.path))
                        break
                    except duckdb.Error as exc:
                        filelock.release(self._lock_path)
                        if not _is_lock_conflict(exc):
                            raise
                        conflict = exc  # held by a process that does not take our lock
                if time.monotonic() >= deadline:
                    match = _LOCK_PID_RE.search(str(conflict)) if conflict else None
                    pid = match.group(1) if match else filelock.holder(self._lock_path)
                    holder = f" (held by PID {pid})" if pid else ""
                    raise CatalogLockedError(
                        f"the catalog {self.path} stayed locked by another process{holder} "
                        f"for {self.lock_timeout_s:g} s; stop that process, or raise "
                        "lock_timeout_s in config.toml (or use the served catalog for many "
                        "concurrent writers)"
                    ) from conflict
                if not waiting:
                    waiting = True
                    with contextlib.suppress(OSError):
                        self._waiting_marker().touch()
                time.sleep(random.uniform(0, delay))  # full jitter
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
        finally:
            if waiting:
                with contextlib.suppress(OSError):
                    self._waiting_marker().unlink()
        self.opens += 1
        try:
            # Checked on every open: another process may have upgraded the file meanwhile.
            if not self._migrated or self._stored_schema_version(con) != SCHEMA_VERSION:
                self._migrate(con)
                self._migrated = True
            row = con.execute("SELECT value FROM meta WHERE key = 'catalog_id'").fetchone()
            catalog_id = row[0] if row else None
            if catalog_id != self._catalog_id:  # a new catalog at this path: forget rows
                self._row_cache.clear()
                self._pinned.clear()
                self._catalog_id = catalog_id
        except BaseException:
            con.close()
            filelock.release(self._lock_path)
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
        with self._lock:
            while self._con is not None:
                idle = time.monotonic() - self._last_used
                if self._depth == 0 and self._pins == 0 and idle >= self.idle_release_s:
                    self._close_locked()
                    break
                self._wake.wait(timeout=max(self.idle_release_s - idle, 0.005))
            self._releaser = None

    def _close_locked(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            finally:
                self._con = None
                filelock.release(self._lock_path)

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

    def _cache_row(self, key: tuple[int, int], row: Any) -> None:
        self._row_cache[key] = row
        self._row_cache.move_to_end(key)
        while len(self._row_cache) > ROW_CACHE_SIZE:
            self._row_cache.popitem(last=False)

    def close(self) -> None:
        """Release the file now (it is reopened on the next operation)."""
        with self._lock:
            if self._depth == 0:
                self._close_locked()

    @property
    def is_open(self) -> bool:
        return self._con is not None

    def now(self) -> datetime:
        return datetime.now(UTC)

    # -- schema -------------------------------------------------------------
    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        has_meta = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
        ).fetchone()
        current = 0
        if has_meta and has_meta[0]:
            row = con.execute(
                "SELECT value FROM meta WHERE key = ?", [SCHEMA_VERSION_KEY]
            ).fetchone()
            current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the catalog {self.path} has schema version {current}, but this nbripple "
                f"knows versions up to {SCHEMA_VERSION}: upgrade nbripple "
                "(pip install -U nbripple) to open it"
            )
        if current == SCHEMA_VERSION:
            return
        con.execute("BEGIN TRANSACTION")
        try:
            for steps in MIGRATIONS[current:]:
                for statement in steps:
                    con.execute(statement)
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [SCHEMA_VERSION_KEY, str(SCHEMA_VERSION)],
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @staticmethod
    def _stored_schema_version(con: duckdb.DuckDBPyConnection) -> int:
        try:
            row = con.execute("SELECT value FROM meta WHERE key = ?",
                              [SCHEMA_VERSION_KEY]).fetchone()
        except duckdb.CatalogException:  # no meta table: the file was replaced
            return 0
        return int(row[0]) if row else 0

    def schema_version(self) -> int:
        with self.connection() as con:
            row = con.execute("SELECT value FROM meta WHERE key = ?",
                              [SCHEMA_VERSION_KEY]).fetchone()
        return int(row[0]) if row else 0

    # -- artifacts ----------------------------------------------------------
    def get_artifact(self, name: str) -> ArtifactDecl | None:
        with self.connection() as con:
            row = con.execute(
                "SELECT name, partition_keys, time_partitioned, time_granularity, kind, "
                "description, created_at, latest_version FROM artifacts WHERE name = ?",
                [name],
            ).fetchone()
        return _decl(row) if row else None

    def list_artifacts(self) -> list[ArtifactDecl]:
        with self.connection() as con:
            rows = con.execute(
                "SELECT name, partition_keys, time_partitioned, time_granularity, kind, "
                "description, created_at, latest_version FROM artifacts ORDER BY name"
            ).fetchall()
        return [_decl(row) for row in rows]

    def _ensure_artifact(self, con: duckdb.DuckDBPyConnection, decl: ArtifactDecl) -> None:
        con.execute(
            "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING",
            [decl.name, json.dumps(list(decl.partition_keys)), decl.time_partitioned,
             decl.time_granularity, decl.kind, decl.description, utcnow()],
        )
        if decl.description:
            con.execute(
                "UPDATE artifacts SET description = ? WHERE name = ? AND description = ''",
                [decl.description, decl.name],
            )

    # -- versions -----------------------------------------------------------
    def commit(self, execution_id: str | None, new: list[NewVersion]) -> list[ArtifactVersion]:
        if not new:
            return []
        now = utcnow()
        committed: list[tuple[str, int]] = []
        with self.transaction() as con:
            for item in new:
                self._ensure_artifact(con, item.artifact)
                row = con.execute(
                    "UPDATE artifacts SET latest_version = latest_version + 1 WHERE name = ? "
                    "RETURNING latest_version",
                    [item.artifact.name],
                ).fetchone()
                assert row is not None
                number = int(row[0])
                seq_row = con.execute(
                    "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) "
                    "WHERE key = 'seq' RETURNING CAST(value AS BIGINT)"
                ).fetchone()
                assert seq_row is not None
                seq = int(seq_row[0])
                con.execute(
                    "INSERT INTO versions VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        item.artifact.name, number, seq,
                        json.dumps(item.partitions, sort_keys=True),
                        _naive(item.time_partition), item.kind, item.python_type,
                        item.content_hash, item.size, item.uri, item.inline_value,
                        json.dumps(item.schema) if item.schema is not None else None,
                        item.num_rows, json.dumps(item.meta), execution_id,
                        item.card_type if item.card is not None else None, item.card, now,
                        1 if item.card is not None else 0,
                    ],
                )
                facets = ["*", f"kind={item.kind}",
                          *(f"p:{key}={value}" for key, value in sorted(item.partitions.items()))]
                con.executemany(
                    "INSERT INTO heads VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (artifact, facet) "
                    "DO UPDATE SET seq = EXCLUDED.seq, version = EXCLUDED.version, "
                    "card_revision = EXCLUDED.card_revision, card = EXCLUDED.card",
                    [[item.artifact.name, facet, seq, number,
                      1 if item.card is not None else 0, item.card] for facet in facets],
                )
                if item.card is not None:
                    con.execute(
                        "INSERT INTO cards VALUES (?, ?, 1, ?, ?, ?)",
                        [item.artifact.name, number, item.card_type or "card", item.card, now],
                    )
                con.execute(
                    "INSERT INTO events VALUES (?, 'version', ?, ?, ?, ?)",
                    [seq, item.artifact.name, number, execution_id, now],
                )
                committed.append((item.artifact.name, number))
            rows = [
                con.execute(
                    f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} "
                    "WHERE v.artifact = ? AND v.version = ?", [name, number],
                ).fetchone()
                for name, number in committed
            ]
        versions = [_version(row) for row in rows if row is not None]
        for version in versions:
            self._remember(version)
        return versions

    def get_version(self, name: str, version: int) -> ArtifactVersion | None:
        with self.connection() as con:
            row = con.execute(
                f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} "
                "WHERE v.artifact = ? AND v.version = ?",
                [name, version],
            ).fetchone()
        found = _version(row) if row else None
        if found is not None:
            self._remember(found)
        return found

    def cached_version(self, name: str, version: int) -> ArtifactVersion | None:
        """A version this process has already read, without touching the file.

        A version's data never changes, so this is safe for loading it; its card may
        have been revised since (use get_version for the card)."""
        found = self._pinned.get((name, version))
        if found is not None and self._con is None and not self.path.exists():
            return None
        return found

    def _remember(self, version: ArtifactVersion) -> None:
        key = (version.name, version.version)
        self._pinned[key] = version
        self._pinned.move_to_end(key)
        while len(self._pinned) > ROW_CACHE_SIZE:
            self._pinned.popitem(last=False)

    def find_version(self, query: Query) -> ArtifactVersion | None:
        # The newest match is found on a few narrow columns, then its row is read
        # through the index on seq: reading every column of the artifact's versions
        # costs more as the catalog grows (benchmarks/bench_catalog.py).
        where = ["artifact = ?"]
        params: list[Any] = [query.name]
        if query.strict:
            where.append("partitions = ?")
            params.append(json.dumps(query.partitions, sort_keys=True))
        else:
            for key, value in query.partitions.items():
                where.append("json_extract_string(partitions, ?) = ?")
                params.extend([f"$.{key}", value])
        if query.time_partition is not None:
            where.append("time_partition = ?")
            params.append(_naive(query.time_partition))
        sql = (
            f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} WHERE v.seq = "
            f"(SELECT max_by(seq, version) FROM versions WHERE {' AND '.join(where)})"
        )
        with self.connection() as con:
            row = con.execute(sql, params).fetchone()
        return _version(row) if row else None

    def partition_values(self, name: str, keys: list[str]) -> dict[str, list[str]]:
        with self.connection() as con:
            rows = con.execute(
                "SELECT DISTINCT partitions FROM versions WHERE artifact = ?", [name]
            ).fetchall()
        found: dict[str, set[str]] = {key: set() for key in keys}
        for (text,) in rows:
            parts = json.loads(text)
            for key in keys:
                if key in parts:
                    found[key].add(parts[key])
        return {key: sorted(values) for key, values in found.items()}

    def list_versions(self, name: str, limit: int | None = None) -> list[ArtifactVersion]:
        sql = f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} WHERE v.artifact = ? " \
              "ORDER BY v.version DESC"
        params: list[Any] = [name]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.connection() as con:
            rows = con.execute(sql, params).fetchall()
        return [_version(row) for row in rows]

    def versions_produced_by(self, execution_id: str) -> list[ArtifactVersion]:
        with self.connection() as con:
            rows = con.execute(
                f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} WHERE v.execution_id = ? "
                "ORDER BY v.seq",
                [execution_id],
            ).fetchall()
        return [_version(row) for row in rows]

    def search(
        self,
        terms: list[str],
        *,
        partitions: dict[str, str],
        kind: str | None,
        latest_only: bool,
        limit: int,
    ) -> list[ArtifactVersion]:
        """Versions matching every term (in the artifact's name or description, or the
        version's card) and the partition and kind filters, newest first.

        With ``latest_only``, each artifact contributes its newest version that
        matches the partition and kind filters, if that version matches the terms.
        Two steps: the seqs of the hits from narrow columns, then only those rows
        (from memory when already read)."""
        facets = [f"kind={kind}"] if kind is not None else []
        facets += [f"p:{key}={value}" for key, value in partitions.items()]
        if latest_only and len(facets) <= 1:
            return self._search_heads(terms, facets[0] if facets else "*", limit)
        text: list[str] = []
        text_params: list[Any] = []
        for term in terms:
            text.append(
                "(v.artifact IN (SELECT name FROM artifacts WHERE contains(lower(name), ?) "
                "OR contains(lower(description), ?)) OR contains(lower(v.card), ?))"
            )
            text_params.extend([term.lower()] * 3)
        where: list[str] = []
        params: list[Any] = []
        for key, value in partitions.items():
            # The substring test is a cheap prefilter: in the canonical JSON that
            # commit() writes (json.dumps, sorted keys) a key/value pair is spelled
            # exactly so. json_extract_string then decides.
            where.append("contains(v.partitions, ?) AND json_extract_string(v.partitions, ?) = ?")
            params.extend([json.dumps({key: value})[1:-1], f"$.{key}", value])
        if kind is not None:
            where.append("v.kind = ?")
            params.append(kind)
        if latest_only:
            structural = (" WHERE " + " AND ".join(where)) if where else ""
            matching = (" WHERE " + " AND ".join(text)) if text else ""
            hits = (f"WITH newest AS (SELECT max_by(v.seq, v.version) AS seq FROM versions v"
                    f"{structural} GROUP BY v.artifact) "
                    f"SELECT v.seq, v.card_revision FROM versions v SEMI JOIN newest "
                    f"ON v.seq = newest.seq{matching} ORDER BY v.seq DESC LIMIT ?")
            params = [*params, *text_params, limit]
        else:
            condition = " WHERE " + " AND ".join(where + text) if where + text else ""
            hits = (f"SELECT v.seq, v.card_revision FROM versions v{condition} "
                    "ORDER BY v.seq DESC LIMIT ?")
            params = [*params, *text_params, limit]
        return self._rows_for_hits(hits, params)

    def _search_heads(self, terms: list[str], facet: str, limit: int) -> list[ArtifactVersion]:
        """Latest-only search with at most one structural filter: read the heads table
        (one row per artifact and facet), whose size does not grow with versions."""
        where = ["h.facet = ?"]
        params: list[Any] = [facet]
        for term in terms:
            where.append(
                "(h.artifact IN (SELECT name FROM artifacts WHERE contains(lower(name), ?) "
                "OR contains(lower(description), ?)) OR contains(lower(h.card), ?))"
            )
            params.extend([term.lower()] * 3)
        hits = (f"SELECT h.seq, h.card_revision FROM heads h WHERE {' AND '.join(where)} "
                "ORDER BY h.seq DESC LIMIT ?")
        params.append(limit)
        return self._rows_for_hits(hits, params)

    def _rows_for_hits(self, hits: str, params: list[Any]) -> list[ArtifactVersion]:
        """Run a query of (seq, card_revision) hits and return those versions in order."""
        with self.connection() as con:
            keys = [(int(row[0]), int(row[1])) for row in con.execute(hits, params).fetchall()]
            if not keys:
                return []
            # Version rows never change except their card, which bumps card_revision:
            # (seq, card_revision) names one immutable row, so rows already read are
            # served from memory and only the others are read (by seq).
            missing = [seq for seq, rev in keys if (seq, rev) not in self._row_cache]
            if missing:
                # The seqs are integers from the catalog itself. Joining artifacts here
                # would stop DuckDB from filtering the scan by seq, so the descriptions
                # come from a second, small query.
                fetched = con.execute(
                    f"SELECT {_VERSION_ONLY_COLUMNS}, v.card_revision FROM versions v "
                    f"WHERE v.seq IN ({', '.join(str(seq) for seq in missing)})"
                ).fetchall()
                for row in fetched:
                    self._cache_row((int(row[15]), int(row[-1])), row[:-1])
            rows = [self._row_cache[key] for key in keys if key in self._row_cache]
            # A range of names binds two strings; a list parameter costs more than
            # the query itself.
            names = {row[0] for row in rows}
            descriptions = dict(con.execute(
                "SELECT name, description FROM artifacts WHERE name BETWEEN ? AND ?",
                [min(names), max(names)],
            ).fetchall())
        return [_version((*row, descriptions.get(row[0], ""))) for row in rows]

    # -- cards --------------------------------------------------------------
    def add_card(self, name: str, version: int, card_type: str, markdown: str) -> CardRevision:
        now = utcnow()
        with self.transaction() as con:
            row = con.execute(
                "SELECT coalesce(max(revision), 0) + 1 FROM cards "
                "WHERE artifact = ? AND version = ?",
                [name, version],
            ).fetchone()
            revision = int(row[0]) if row else 1
            con.execute("INSERT INTO cards VALUES (?, ?, ?, ?, ?, ?)",
                        [name, version, revision, card_type, markdown, now])
            con.execute(
                "UPDATE versions SET card = ?, card_type = ?, card_revision = ? "
                "WHERE artifact = ? AND version = ?",
                [markdown, card_type, revision, name, version],
            )
            con.execute(
                "UPDATE heads SET card = ?, card_revision = ? WHERE artifact = ? AND version = ?",
                [markdown, revision, name, version],
            )
        return CardRevision(name, version, revision, card_type, markdown, _aware(now) or now)

    def card_history(self, name: str, version: int) -> list[CardRevision]:
        with self.connection() as con:
            rows = con.execute(
                "SELECT artifact, version, revision, card_type, markdown, created_at FROM cards "
                "WHERE artifact = ? AND version = ? ORDER BY revision",
                [name, version],
            ).fetchall()
        return [
            CardRevision(r[0], r[1], r[2], r[3], r[4], _aware(r[5]) or r[5]) for r in rows
        ]

    # -- executions ---------------------------------------------------------
    def create_execution(self, execution: Execution) -> None:
        values = [_execution_value(name, getattr(execution, name)) for name in _EXECUTION_FIELDS]
        columns = ", ".join(_EXECUTION_FIELDS)
        marks = ", ".join("?" for _ in _EXECUTION_FIELDS)
        with self.connection() as con:
            con.execute(f"INSERT INTO executions ({columns}) VALUES ({marks})", values)

    def update_execution(self, execution_id: str, **changes: Any) -> None:
        unknown = set(changes) - set(_EXECUTION_FIELDS)
        if unknown:
            raise ValueError(f"unknown execution fields: {sorted(unknown)}")
        if not changes:
            return
        assignments = ", ".join(f"{name} = ?" for name in changes)
        values = [_execution_value(name, value) for name, value in changes.items()]
        with self.connection() as con:
            con.execute(f"UPDATE executions SET {assignments} WHERE id = ?",
                        [*values, execution_id])

    def get_execution(self, execution_id: str) -> Execution | None:
        columns = ", ".join(_EXECUTION_FIELDS)
        with self.connection() as con:
            row = con.execute(f"SELECT {columns} FROM executions WHERE id = ?",
                              [execution_id]).fetchone()
            if row is None and len(execution_id) >= 4:
                rows = con.execute(
                    f"SELECT {columns} FROM executions WHERE starts_with(id, ?) LIMIT 2",
                    [execution_id],
                ).fetchall()
                row = rows[0] if len(rows) == 1 else None
        return _execution(row) if row else None

    def list_executions(
        self,
        *,
        notebook: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
    ) -> list[Execution]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("notebook", notebook), ("status", status), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {', '.join(_EXECUTION_FIELDS)} FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC LIMIT ?"
        params.append(limit)
        with self.connection() as con:
            rows = con.execute(sql, params).fetchall()
        return [_execution(row) for row in rows]

    def record_consumption(
        self, execution_id: str, name: str, version: int, parameter: str | None = None
    ) -> None:
        with self.connection() as con:
            con.execute(
                "INSERT INTO consumed SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS ("
                "SELECT 1 FROM consumed WHERE execution_id = ? AND artifact = ? AND version = ? "
                "AND (CAST(? AS VARCHAR) IS NULL OR parameter IS NOT DISTINCT FROM ?))",
                [execution_id, name, version, parameter, utcnow(),
                 execution_id, name, version, parameter, parameter],
            )

    def execution_inputs(self, execution_id: str) -> list[InputRecord]:
        with self.connection() as con:
            rows = con.execute(
                "SELECT artifact, version, parameter, consumed_at FROM consumed "
                "WHERE execution_id = ? ORDER BY consumed_at, artifact, version",
                [execution_id],
            ).fetchall()
        return [InputRecord(r[0], r[1], r[2], _aware(r[3]) or r[3]) for r in rows]

    # -- garbage collection ---------------------------------------------------
    def referenced_blobs(self) -> tuple[set[str], set[str]]:
        """Digests the catalog points to: ``(blobs, directory manifests)``.

        Versions with a blob, staged outputs of running executions, and the notebook
        snapshots and executed notebooks of every execution."""
        blobs: set[str] = set()
        manifests: set[str] = set()
        with self.connection() as con:
            for digest, kind in con.execute(
                "SELECT DISTINCT content_hash, kind FROM versions WHERE uri IS NOT NULL"
            ).fetchall():
                (manifests if kind == "directory" else blobs).add(digest)
            for (payload,) in con.execute("SELECT payload FROM staged_outputs").fetchall():
                staged = json.loads(payload)
                if staged.get("uri"):
                    target = manifests if staged.get("kind") == "directory" else blobs
                    target.add(staged["content_hash"])
            for row in con.execute(
                "SELECT notebook_hash, output_notebook_hash FROM executions"
            ).fetchall():
                blobs.update(digest for digest in row if digest)
        return blobs, manifests

    # -- staging (outputs of running executions) ------------------------------
    def stage(self, execution_id: str, new: NewVersion) -> int:
        """Record an output of a running execution; return its ordinal (1, 2, ...)."""
        from ..staging import new_version_to_json

        with self.transaction() as con:
            row = con.execute(
                "SELECT coalesce(max(ordinal), 0) + 1 FROM staged_outputs WHERE execution_id = ?",
                [execution_id],
            ).fetchone()
            ordinal = int(row[0]) if row else 1
            con.execute(
                "INSERT INTO staged_outputs VALUES (?, ?, ?, ?)",
                [execution_id, ordinal, new_version_to_json(new), utcnow()],
            )
        return ordinal

    def staged(self, execution_id: str) -> list[NewVersion]:
        """The staged outputs of an execution, in emission order."""
        from ..staging import new_version_from_json

        with self.connection() as con:
            rows = con.execute(
                "SELECT payload FROM staged_outputs WHERE execution_id = ? ORDER BY ordinal",
                [execution_id],
            ).fetchall()
        return [new_version_from_json(row[0]) for row in rows]

    def finish_execution(
        self, execution_id: str, *, commit_staged: bool, **changes: Any
    ) -> list[ArtifactVersion]:
        """End an execution in one transaction: commit (or discard) its staged outputs and
        apply ``changes`` (status, finished_at, error...) to its row."""
        with self.transaction():
            committed = self.commit(execution_id, self.staged(execution_id)) \
                if commit_staged else []
            with self.connection() as con:
                con.execute("DELETE FROM staged_outputs WHERE execution_id = ?", [execution_id])
            self.update_execution(execution_id, **changes)
        return committed

    # -- events -------------------------------------------------------------
    def events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        with self.connection() as con:
            rows = con.execute(
                "SELECT seq, kind, artifact, version, execution_id, created_at FROM events "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                [seq, limit],
            ).fetchall()
        return [Event(r[0], r[1], r[2], r[3], r[4], _aware(r[5]) or r[5]) for r in rows]

    def last_event_seq(self) -> int:
        with self.connection() as con:
            row = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    # -- lineage --------------------------------------------------------------
    # Inside SQL a node is 'v<name>@<N>' or 'x<execution id>' (short keys hash and
    # compare faster; names never contain '@'); lineage_walk speaks the public ids
    # 'version:<name>@<N>' and 'execution:<id>'. Each edge is listed once per walked
    # direction: 'up' goes from an edge's target to its source, 'down' the other way.
    _LINEAGE_ADJACENCY = """
        edges(src, dst, kind) AS (
            SELECT 'v' || artifact || '@' || version, 'x' || execution_id, 'consumed'
            FROM consumed
            UNION ALL
            SELECT 'x' || execution_id, 'v' || artifact || '@' || version, 'produced'
            FROM versions WHERE execution_id IS NOT NULL
            UNION ALL
            SELECT 'v' || trigger_artifact || '@' || trigger_version, 'x' || id, 'triggered'
            FROM executions WHERE trigger_artifact IS NOT NULL AND trigger_version IS NOT NULL
        ),
        adjacency(dir, here, there, src, dst, kind) AS NOT MATERIALIZED (
            SELECT 'up', dst, src, src, dst, kind FROM edges
            WHERE list_contains($directions, 'up')
            UNION ALL
            SELECT 'down', src, dst, src, dst, kind FROM edges
            WHERE list_contains($directions, 'down')
        )
    """
    # Unbounded: UNION (not UNION ALL) drops every (dir, node) already reached, so the
    # walk ends where the graph ends, and on cycles. The hash table over the adjacency
    # is built once; each step probes it with the new frontier only.
    _LINEAGE_WALK_ALL = f"""
        WITH RECURSIVE {_LINEAGE_ADJACENCY},
        walk(dir, node) AS (
            SELECT unnest($directions), $start
            UNION
            SELECT w.dir, a.there FROM walk w
            JOIN adjacency a ON a.dir = w.dir AND a.here = w.node
        )
        SELECT DISTINCT 'node', node, NULL, NULL FROM walk
        UNION ALL
        SELECT DISTINCT 'edge', a.src, a.dst, a.kind FROM walk w
        JOIN adjacency a ON a.dir = w.dir AND a.here = w.node
    """
    # Bounded: the hop count ends the walk (on a cycle too); the edges are those that
    # leave a node reached in fewer than `depth` hops.
    _LINEAGE_WALK_DEPTH = f"""
        WITH RECURSIVE {_LINEAGE_ADJACENCY},
        walk(dir, node, depth) AS (
            SELECT unnest($directions), $start, 0
            UNION
            SELECT w.dir, a.there, w.depth + 1 FROM walk w
            JOIN adjacency a ON a.dir = w.dir AND a.here = w.node
            WHERE w.depth < $depth
        ),
        reached AS (SELECT dir, node, min(depth) AS depth FROM walk GROUP BY dir, node)
        SELECT DISTINCT 'node', node, NULL, NULL FROM reached
        UNION ALL
        SELECT DISTINCT 'edge', a.src, a.dst, a.kind FROM reached r
        JOIN adjacency a ON a.dir = r.dir AND a.here = r.node
        WHERE r.depth < $depth
    """

    def lineage_walk(
        self, start: str, *, direction: str, depth: int | None
    ) -> tuple[list[str], list[tuple[str, str, str]]]:
        directions = {"up": ["up"], "down": ["down"], "both": ["up", "down"]}.get(direction)
        if directions is None:
            raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
        if depth is not None and depth <= self.lineage_level_walk_max_depth:
            return self._lineage_levels(_short_node(start), directions, depth)
        params: dict[str, Any] = {"directions": directions, "start": _short_node(start)}
        if depth is None:
            sql = self._LINEAGE_WALK_ALL
        else:
            sql = self._LINEAGE_WALK_DEPTH
            params["depth"] = depth
        with self.connection() as con:
            rows = con.execute(sql, params).fetchall()
        nodes = [_long_node(row[1]) for row in rows if row[0] == "node"]
        edges = [(_long_node(row[1]), _long_node(row[2]), row[3])
                 for row in rows if row[0] == "edge"]
        return nodes, edges

    # One hop of a shallow walk: the edges at the frontier, in both directions, found
    # by semi joins against the (small) frontier lists, so nothing is built for the
    # rest of the catalog.
    _LINEAGE_LEVEL = """
        WITH uv AS (SELECT unnest($up_names::VARCHAR[]) AS a,
                           unnest($up_numbers::INTEGER[]) AS n),
             ux AS (SELECT unnest($up_ids::VARCHAR[]) AS id),
             dv AS (SELECT unnest($down_names::VARCHAR[]) AS a,
                           unnest($down_numbers::INTEGER[]) AS n),
             dx AS (SELECT unnest($down_ids::VARCHAR[]) AS id)
        SELECT 'up', 'x' || v.execution_id, 'v' || v.artifact || '@' || v.version, 'produced'
        FROM versions v SEMI JOIN uv ON v.artifact = uv.a AND v.version = uv.n
        WHERE v.execution_id IS NOT NULL
        UNION ALL
        SELECT 'up', 'v' || c.artifact || '@' || c.version, 'x' || c.execution_id, 'consumed'
        FROM consumed c SEMI JOIN ux ON c.execution_id = ux.id
        UNION ALL
        SELECT 'up', 'v' || e.trigger_artifact || '@' || e.trigger_version, 'x' || e.id,
               'triggered'
        FROM executions e SEMI JOIN ux ON e.id = ux.id
        WHERE e.trigger_artifact IS NOT NULL AND e.trigger_version IS NOT NULL
        UNION ALL
        SELECT 'down', 'v' || c.artifact || '@' || c.version, 'x' || c.execution_id, 'consumed'
        FROM consumed c SEMI JOIN dv ON c.artifact = dv.a AND c.version = dv.n
        UNION ALL
        SELECT 'down', 'v' || e.trigger_artifact || '@' || e.trigger_version, 'x' || e.id,
               'triggered'
        FROM executions e SEMI JOIN dv ON e.trigger_artifact = dv.a AND e.trigger_version = dv.n
        UNION ALL
        SELECT 'down', 'x' || v.execution_id, 'v' || v.artifact || '@' || v.version, 'produced'
        FROM versions v SEMI JOIN dx ON v.execution_id = dx.id
    """
    # Up to this depth a walk runs hop by hop (a few small queries); deeper walks use
    # one recursive query, which builds a hash table over every edge once.
    lineage_level_walk_max_depth = 3

    def _lineage_levels(
        self, start: str, directions: list[str], depth: int
    ) -> tuple[list[str], list[tuple[str, str, str]]]:
        seen = {direction: {start} for direction in directions}
        frontier = {direction: [start] for direction in directions}
        edges: set[tuple[str, str, str]] = set()
        with self.connection() as con:
            for _ in range(depth):
                if not any(frontier.values()):
                    break
                params: dict[str, Any] = {}
                for direction in ("up", "down"):
                    keys = frontier.get(direction, [])
                    pairs = [key[1:].rpartition("@") for key in keys if key[0] == "v"]
                    params[f"{direction}_names"] = [name for name, _, _ in pairs]
                    params[f"{direction}_numbers"] = [int(number) for _, _, number in pairs]
                    params[f"{direction}_ids"] = [key[1:] for key in keys if key[0] == "x"]
                rows = con.execute(self._LINEAGE_LEVEL, params).fetchall()
                frontier = {direction: [] for direction in directions}
                for direction, src, dst, kind in rows:
                    edges.add((src, dst, kind))
                    there = src if direction == "up" else dst
                    if there not in seen[direction]:
                        seen[direction].add(there)
                        frontier[direction].append(there)
        nodes = set().union(*seen.values())
        return ([_long_node(key) for key in nodes],
                [(_long_node(src), _long_node(dst), kind) for src, dst, kind in edges])

    def lineage_nodes(self, node_ids: list[str]) -> dict[str, dict[str, Any]]:
        versions: list[tuple[str, int]] = []
        executions: list[str] = []
        for node_id in node_ids:
            if node_id.startswith("version:"):
                name, _, number = node_id[len("version:"):].rpartition("@")
                versions.append((name, int(number)))
            elif node_id.startswith("execution:"):
                executions.append(node_id[len("execution:"):])
        found: dict[str, dict[str, Any]] = {}
        with self.connection() as con:
            if versions:
                rows = con.execute(
                    "SELECT v.artifact, v.version, v.kind, v.partitions, v.time_partition, "
                    "v.created_at, v.execution_id FROM versions v "
                    "SEMI JOIN (SELECT unnest($names) AS name, unnest($numbers) AS number) k "
                    "ON v.artifact = k.name AND v.version = k.number",
                    {"names": [name for name, _ in versions],
                     "numbers": [number for _, number in versions]},
                ).fetchall()
                for name, number, kind, partitions, tp, created, execution_id in rows:
                    found[f"version:{name}@{number}"] = {
                        "name": name, "version": number, "kind": kind,
                        "partitions": json.loads(partitions), "time_partition": _aware(tp),
                        "created_at": _aware(created), "execution_id": execution_id,
                    }
            if executions:
                rows = con.execute(
                    "SELECT id, kind, status, notebook, label, started_at, finished_at, error, "
                    "trigger_artifact, trigger_version, parent_id FROM executions "
                    "WHERE id IN (SELECT unnest($ids))",
                    {"ids": executions},
                ).fetchall()
                for (execution_id, kind, status, notebook, label, started, finished, error,
                     trigger_artifact, trigger_version, parent_id) in rows:
                    found[f"execution:{execution_id}"] = {
                        "execution_id": execution_id, "kind": kind, "status": status,
                        "notebook": notebook, "label": label, "started_at": _aware(started),
                        "finished_at": _aware(finished),
                        "error": json.loads(error) if error is not None else None,
                        "trigger_artifact": trigger_artifact, "trigger_version": trigger_version,
                        "parent_id": parent_id,
                    }
        return found

    def get_versions(self, keys: list[tuple[str, int]]) -> list[ArtifactVersion]:
        if not keys:
            return []
        with self.connection() as con:
            rows = con.execute(
                f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} "
                "SEMI JOIN (SELECT unnest($names) AS name, unnest($numbers) AS number) k "
                "ON v.artifact = k.name AND v.version = k.number ORDER BY v.seq",
                {"names": [name for name, _ in keys],
                 "numbers": [number for _, number in keys]},
            ).fetchall()
        return [_version(row) for row in rows]

    # -- end lineage ----------------------------------------------------------


def _decl(row: Any) -> ArtifactDecl:
    return ArtifactDecl(
        name=row[0],
        partition_keys=tuple(json.loads(row[1])),
        time_partitioned=bool(row[2]),
        time_granularity=row[3],
        kind=row[4],
        description=row[5],
        created_at=_aware(row[6]),
        latest_version=int(row[7]),
    )


def _version(row: Any) -> ArtifactVersion:
    return ArtifactVersion(
        name=row[0],
        version=int(row[1]),
        partitions=json.loads(row[2]),
        time_partition=_aware(row[3]),
        kind=row[4],
        python_type=row[5],
        content_hash=row[6],
        size=int(row[7]),
        uri=row[8],
        inline_value=row[9],
        schema=json.loads(row[10]) if row[10] is not None else None,
        num_rows=row[11],
        meta=json.loads(row[12]),
        execution_id=row[13],
        created_at=_aware(row[14]) or row[14],
        seq=int(row[15]),
        card_type=row[16],
        card_markdown=row[17],
        description=row[18] or "",
    )


def _execution_value(name: str, value: Any) -> Any:
    if name in _EXECUTION_JSON:
        return json.dumps(value, default=str) if value is not None else None
    if isinstance(value, datetime):
        return _naive(value)
    return value


def _execution(row: Any) -> Execution:
    values: dict[str, Any] = {}
    for name, value in zip(_EXECUTION_FIELDS, row, strict=True):
        if name in _EXECUTION_JSON:
            value = json.loads(value) if value is not None else None
        elif isinstance(value, datetime):
            value = _aware(value)
        values[name] = value
    if values.get("parameters") is None:
        values["parameters"] = {}
    return Execution(**values)


# -- lineage helpers --------------------------------------------------------------
def _short_node(node_id: str) -> str:
    """'version:a@1' -> 'va@1', 'execution:ab12' -> 'xab12' (the keys used inside SQL)."""
    if node_id.startswith("version:"):
        return "v" + node_id[len("version:"):]
    if node_id.startswith("execution:"):
        return "x" + node_id[len("execution:"):]
    raise ValueError(f"not a lineage node id: {node_id!r} (use 'version:name@N' or "
                     "'execution:<id>')")


def _long_node(key: str) -> str:
    return ("version:" if key[0] == "v" else "execution:") + key[1:]
# -- end lineage helpers ----------------------------------------------------------
