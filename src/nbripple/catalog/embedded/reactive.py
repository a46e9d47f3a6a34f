"""Catalog tables of the reactive layer: launch plans, their state, firings, the watch
cursor and the watchers.

A *firing* is one start a plan owes (for a triggering version, a schedule tick or a
manual launch). Its ``(plan, dedup_key)`` is unique, so however many watchers see
the same event, one firing exists; a watcher starts a pending firing with
:meth:`ReactiveTables.start_firing` — a conditional update that claims it and the
insert of its execution, in one transaction — so one execution starts.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import duckdb

from ...model import Execution, Firing, PlanRecord
from . import rows
from .connection import CatalogConnection
from .executions import insert_execution
from .rows import FIRING_COLUMNS, aware, naive
from .rows import utcnow as _now

_FIRING_UPDATABLE = {"status", "attempts", "recoveries", "next_attempt_at", "execution_id",
                     "reason"}


class ReactiveTables(CatalogConnection):
    """Mixed into :class:`EmbeddedCatalog`: plans, plan state, firings and watchers."""

    # -- plans ----------------------------------------------------------------
    def register_plan(self, name: str, spec: dict[str, Any], spec_hash: str
                      ) -> tuple[int, bool]:
        """Store a plan version unless the latest has the same hash.

        Returns ``(version, created)``. An active plan moves to the new version.
        """
        now = _now()
        with self.transaction() as con:
            row = con.execute(
                "SELECT version, spec_hash FROM plans WHERE name = ? ORDER BY version DESC "
                "LIMIT 1", [name],
            ).fetchone()
            if row is not None and row[1] == spec_hash:
                return int(row[0]), False
            version = int(row[0]) + 1 if row else 1
            con.execute("INSERT INTO plans VALUES (?, ?, ?, ?, ?)",
                        [name, version, json.dumps(spec, sort_keys=True), spec_hash, now])
            con.execute(
                "INSERT INTO plan_state (name, active, active_version, updated_at) "
                "VALUES (?, false, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "active_version = EXCLUDED.active_version, updated_at = EXCLUDED.updated_at",
                [name, version, now],
            )
        return version, True

    def set_plan_active(self, name: str, active: bool) -> bool:
        """Activate (from now on) or deactivate a plan; False if it was already so."""
        now = _now()
        with self.transaction() as con:
            row = con.execute("SELECT active FROM plan_state WHERE name = ?", [name]).fetchone()
            if row is None:
                raise KeyError(name)
            if bool(row[0]) == active:
                if active:  # activating again clears a loop-guard stop
                    con.execute("UPDATE plan_state SET stopped_reason = NULL, updated_at = ? "
                                "WHERE name = ?", [now, name])
                return False
            if active:
                seq_row = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
                latest = con.execute("SELECT max(version) FROM plans WHERE name = ?",
                                     [name]).fetchone()
                con.execute(
                    "UPDATE plan_state SET active = true, active_version = ?, activated_at = ?, "
                    "activated_seq = ?, schedule_anchor = ?, stopped_reason = NULL, "
                    "updated_at = ? WHERE name = ?",
                    [latest[0] if latest else 1, now, seq_row[0] if seq_row else 0, now, now,
                     name],
                )
            else:
                con.execute("UPDATE plan_state SET active = false, updated_at = ? WHERE name = ?",
                            [now, name])
        return True

    def update_plan_state(self, name: str, **changes: Any) -> None:
        allowed = {"schedule_anchor", "stopped_reason"}
        if set(changes) - allowed:
            raise ValueError(f"unknown plan state fields {sorted(set(changes) - allowed)}")
        assignments = ", ".join(f"{key} = ?" for key in changes)
        values = [naive(v) if isinstance(v, datetime) else v for v in changes.values()]
        with self.connection() as con:
            con.execute(f"UPDATE plan_state SET {assignments}, updated_at = ? WHERE name = ?",
                        [*values, _now(), name])

    def list_plans(self, *, active_only: bool = False) -> list[PlanRecord]:
        # the latest version by a join on one grouping (a correlated subquery per plan
        # took twice as long; a watcher lists the plans on every pass)
        sql = (
            "SELECT s.name, p.version, p.spec, p.created_at, s.active, s.active_version, "
            "l.latest, s.activated_at, s.activated_seq, s.schedule_anchor, s.stopped_reason "
            "FROM plan_state s JOIN plans p ON p.name = s.name AND p.version = s.active_version "
            "JOIN (SELECT name, max(version) AS latest FROM plans GROUP BY name) l "
            "ON l.name = s.name"
        )
        if active_only:
            sql += " WHERE s.active"
        sql += " ORDER BY s.name"
        with self.connection() as con:
            found = con.execute(sql).fetchall()
        return [rows.plan(row) for row in found]

    def get_plan(self, name: str) -> PlanRecord | None:
        return next((p for p in self.list_plans() if p.name == name), None)

    def plan_versions(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        with self.connection() as con:
            found = con.execute("SELECT version, spec FROM plans WHERE name = ? ORDER BY version",
                                [name]).fetchall()
        return [(int(r[0]), json.loads(r[1])) for r in found]

    # -- firings --------------------------------------------------------------
    def add_firing(
        self,
        *,
        plan: str,
        plan_version: int,
        dedup_key: str,
        kind: str,
        chain_depth: int,
        status: str = "pending",
        event_seq: int | None = None,
        trigger_artifact: str | None = None,
        trigger_version: int | None = None,
        tick: datetime | None = None,
        reason: str | None = None,
    ) -> str | None:
        """Insert a firing unless ``(plan, dedup_key)`` exists; its id, or None.

        A look-up then a plain insert: DuckDB's ``ON CONFLICT DO NOTHING`` costs ~3 ms
        more (a watcher's pass makes one per new firing). The unique key still decides:
        another thread of this process inserting the same key in between makes this
        insert fail, which reads as "exists" (outside a transaction, where it wrote
        nothing)."""
        now = _now()
        firing_id = uuid.uuid4().hex[:16]
        with self.connection() as con:
            if con.execute("SELECT 1 FROM firings WHERE plan = ? AND dedup_key = ?",
                           [plan, dedup_key]).fetchone():
                return None
            try:
                con.execute(
                    f"INSERT INTO firings ({FIRING_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL, NULL, ?, ?, ?)",
                    [firing_id, plan, plan_version, dedup_key, kind, event_seq,
                     trigger_artifact, trigger_version, naive(tick), chain_depth, status,
                     reason, now, now])
            except duckdb.ConstraintException:
                if self._in_transaction:
                    raise
                return None
        return firing_id

    def claim_firing(self, firing_id: str, execution_id: str) -> bool:
        """Move a pending firing to running for ``execution_id``; False if another
        watcher claimed it first."""
        with self.connection() as con:
            return _claim(con, firing_id, execution_id)

    def start_firing(self, firing_id: str, execution: Execution) -> bool:
        """Claim a pending firing for ``execution`` and record the execution, in one
        transaction; False, with nothing written, if another watcher took it first."""
        with self.transaction() as con:
            if not _claim(con, firing_id, execution.id):
                return False
            insert_execution(con, execution)
        return True

    def update_firing(self, firing_id: str, **changes: Any) -> None:
        unknown = set(changes) - _FIRING_UPDATABLE
        if unknown:
            raise ValueError(f"unknown firing fields {sorted(unknown)}")
        assignments = ", ".join(f"{key} = ?" for key in changes)
        values = [naive(v) if isinstance(v, datetime) else v for v in changes.values()]
        with self.connection() as con:
            con.execute(f"UPDATE firings SET {assignments}, updated_at = ? WHERE id = ?",
                        [*values, _now(), firing_id])

    def firings(
        self,
        *,
        plan: str | None = None,
        status: str | list[str] | None = None,
        due_before: datetime | None = None,
        limit: int = 1000,
    ) -> list[Firing]:
        where: list[str] = []
        params: list[Any] = []
        if plan is not None:
            where.append("plan = ?")
            params.append(plan)
        if status is not None:
            statuses = [status] if isinstance(status, str) else status
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if due_before is not None:
            where.append("(next_attempt_at IS NULL OR next_attempt_at <= ?)")
            params.append(naive(due_before))
        sql = f"SELECT {FIRING_COLUMNS} FROM firings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id LIMIT ?" if plan is not None and status is None \
            else " ORDER BY coalesce(event_seq, 0), created_at, id LIMIT ?"
        params.append(limit)
        with self.connection() as con:
            found = con.execute(sql, params).fetchall()
        return [rows.firing(row) for row in found]

    def get_firing(self, firing_id: str) -> Firing | None:
        with self.connection() as con:
            row = con.execute(f"SELECT {FIRING_COLUMNS} FROM firings WHERE id = ?",
                              [firing_id]).fetchone()
        return rows.firing(row) if row else None

    # -- the watch cursor and watchers -----------------------------------------
    def watch_cursor(self) -> int:
        with self.connection() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'watch_cursor'").fetchone()
        return int(row[0]) if row else 0

    def watch_state(self) -> tuple[tuple[int, tuple[Any, ...]], bool]:
        """What a watcher's pass acts on, in one read: ``(digest, pending)``, where the
        digest is ``(newest event's seq, the plans' stamp)`` — the stamp being how many
        plans there are and when they changed (every change of a plan or of its state
        stamps it) — and ``pending`` whether any firing is pending. A watcher that
        took it at the end of its last pass need not pass again while it is the same
        and nothing is pending (a run's own writes move the file's change token, not
        this), and need not list the plans again while their stamp is the same."""
        with self.connection() as con:
            row = con.execute(
                "SELECT (SELECT coalesce(max(seq), 0) FROM events), "
                "(SELECT count(*) FROM plan_state), (SELECT max(updated_at) FROM plan_state), "
                # the sum too: a change stamped before the newest (a clock set back)
                "(SELECT sum(epoch_us(updated_at)) FROM plan_state), "
                "EXISTS (SELECT 1 FROM firings WHERE status = 'pending')"
            ).fetchone()
        assert row is not None
        return (int(row[0]), (row[1], row[2], row[3])), bool(row[4])

    def advance_watch_cursor(self, seq: int) -> None:
        with self.connection() as con:
            con.execute(
                "UPDATE meta SET value = CAST(greatest(CAST(value AS BIGINT), ?) AS VARCHAR) "
                "WHERE key = 'watch_cursor'", [seq],
            )

    def watcher_heartbeat(self, watcher_id: str, pid: int, host: str,
                          *, stopped: bool = False, consecutive_failures: int = 0,
                          last_error: str | None = None,
                          last_error_at: datetime | None = None) -> None:
        now = _now()
        with self.connection() as con:
            con.execute(
                "INSERT INTO watchers (id, pid, host, started_at, heartbeat_at, stopped_at, "
                "consecutive_failures, last_error, last_error_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "heartbeat_at = EXCLUDED.heartbeat_at, stopped_at = EXCLUDED.stopped_at, "
                "consecutive_failures = EXCLUDED.consecutive_failures, "
                "last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at",
                [watcher_id, pid, host, now, now, now if stopped else None,
                 consecutive_failures, last_error, naive(last_error_at)],
            )

    def live_watchers(self, stale_s: float = 30.0) -> list[dict[str, Any]]:
        """Watchers not stopped whose last heartbeat is under ``stale_s`` seconds old
        (a watcher beats every few seconds): id, pid, host, started_at, heartbeat_at,
        consecutive_failures, last_error, last_error_at."""
        since = _now() - timedelta(seconds=stale_s)  # naive UTC, as stored
        with self.connection() as con:
            found = con.execute(
                "SELECT id, pid, host, started_at, heartbeat_at, consecutive_failures, "
                "last_error, last_error_at FROM watchers "
                "WHERE stopped_at IS NULL AND heartbeat_at >= ? ORDER BY started_at",
                [since],
            ).fetchall()
        return [{"id": r[0], "pid": int(r[1]), "host": r[2], "started_at": aware(r[3]),
                 "heartbeat_at": aware(r[4]), "consecutive_failures": int(r[5] or 0),
                 "last_error": r[6], "last_error_at": aware(r[7])} for r in found]


def _claim(con: duckdb.DuckDBPyConnection, firing_id: str, execution_id: str) -> bool:
    row = con.execute(
        "UPDATE firings SET status = 'running', execution_id = ?, "
        "attempts = attempts + 1, updated_at = ? "
        "WHERE id = ? AND status = 'pending' RETURNING id",
        [execution_id, _now(), firing_id],
    ).fetchone()
    return row is not None
