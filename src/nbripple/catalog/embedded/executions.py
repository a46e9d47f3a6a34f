"""Executions: their rows, what they consumed, and the outputs they staged.

A running execution's outputs are staged (``staged_outputs``) and become versions
only when :meth:`ExecutionTables.finish_execution` commits them, in the same
transaction that records how the execution ended.
"""

from __future__ import annotations

from typing import Any

import duckdb

from ...model import ArtifactVersion, Execution, InputRecord, NewVersion
from ...phases import stamp
from ...refs import Query
from ..staged import new_version_from_json, new_version_to_json
from . import rows
from .rows import EXECUTION_FIELDS, aware, execution_value, utcnow
from .versions import VersionTables


def insert_execution(con: duckdb.DuckDBPyConnection, execution: Execution) -> None:
    """Insert the row of a new execution (inside the caller's connection/transaction)."""
    values = [execution_value(name, getattr(execution, name)) for name in EXECUTION_FIELDS]
    columns = ", ".join(EXECUTION_FIELDS)
    marks = ", ".join("?" for _ in EXECUTION_FIELDS)
    con.execute(f"INSERT INTO executions ({columns}) VALUES ({marks})", values)


class ExecutionTables(VersionTables):
    """Mixed into :class:`EmbeddedCatalog`: ``executions``, ``consumed`` and
    ``staged_outputs`` (finishing an execution commits versions, hence the base)."""

    def create_execution(self, execution: Execution) -> None:
        """Record a new execution (its id must be new)."""
        with self.connection() as con:
            insert_execution(con, execution)

    def update_execution(self, execution_id: str, **changes: Any) -> None:
        """Set fields of an execution's row; ValueError for a name that is not a field
        of :class:`Execution`."""
        unknown = set(changes) - set(EXECUTION_FIELDS)
        if unknown:
            raise ValueError(f"unknown execution fields: {sorted(unknown)}")
        if not changes:
            return
        assignments = ", ".join(f"{name} = ?" for name in changes)
        values = [execution_value(name, value) for name, value in changes.items()]
        with self.connection() as con:
            con.execute(f"UPDATE executions SET {assignments} WHERE id = ?",
                        [*values, execution_id])

    def get_execution(self, execution_id: str) -> Execution | None:
        """The execution with this id, or with this unique prefix (4 characters or
        more); None if there is none (or the prefix is ambiguous)."""
        columns = ", ".join(EXECUTION_FIELDS)
        with self.connection() as con:
            row = con.execute(f"SELECT {columns} FROM executions WHERE id = ?",
                              [execution_id]).fetchone()
            if row is None and len(execution_id) >= 4:
                found = con.execute(
                    f"SELECT {columns} FROM executions WHERE starts_with(id, ?) LIMIT 2",
                    [execution_id],
                ).fetchall()
                row = found[0] if len(found) == 1 else None
        return rows.execution(row) if row else None

    def list_executions(
        self,
        *,
        notebook: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
    ) -> list[Execution]:
        """Executions matching the filters, most recently started first."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("notebook", notebook), ("status", status), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {', '.join(EXECUTION_FIELDS)} FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC LIMIT ?"
        params.append(limit)
        with self.connection() as con:
            found = con.execute(sql, params).fetchall()
        return [rows.execution(row) for row in found]

    # -- consumption ------------------------------------------------------------
    def record_consumption(
        self, execution_id: str, name: str, version: int, parameter: str | None = None
    ) -> None:
        """Record that an execution read ``name@version`` (through ``parameter``, if
        any); recorded once per (execution, version, parameter)."""
        with self.connection() as con:
            con.execute(
                "INSERT INTO consumed SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS ("
                "SELECT 1 FROM consumed WHERE execution_id = ? AND artifact = ? AND version = ? "
                "AND (CAST(? AS VARCHAR) IS NULL OR parameter IS NOT DISTINCT FROM ?))",
                [execution_id, name, version, parameter, utcnow(),
                 execution_id, name, version, parameter, parameter],
            )

    def find_and_consume(self, query: Query, execution_id: str,
                         parameter: str | None = None) -> ArtifactVersion | None:
        """The newest version matching ``query``, its consumption recorded (one lease
        of the file)."""
        with self.connection():
            found = self.find_version(query)
            if found is not None:
                self.record_consumption(execution_id, found.name, found.version, parameter)
        return found

    def execution_inputs(self, execution_id: str) -> list[InputRecord]:
        """What an execution consumed, in the order it did."""
        with self.connection() as con:
            found = con.execute(
                "SELECT artifact, version, parameter, consumed_at FROM consumed "
                "WHERE execution_id = ? ORDER BY consumed_at, artifact, version",
                [execution_id],
            ).fetchall()
        return [InputRecord(r[0], r[1], r[2], aware(r[3]) or r[3]) for r in found]

    # -- staging (outputs of running executions) ------------------------------
    def stage(self, execution_id: str, new: NewVersion) -> int:
        """Record an output of a running execution; return its ordinal (1, 2, ...)."""
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
        with self.connection() as con:
            found = con.execute(
                "SELECT payload FROM staged_outputs WHERE execution_id = ? ORDER BY ordinal",
                [execution_id],
            ).fetchall()
        return [new_version_from_json(row[0]) for row in found]

    def finish_execution(
        self, execution_id: str, *, commit_staged: bool, **changes: Any
    ) -> list[ArtifactVersion]:
        """End an execution in one transaction: commit (or discard) its staged outputs and
        apply ``changes`` (status, finished_at, error...) to its row; ``phases`` given
        among them gain ``committed``, the time of this transaction. Returns the
        committed versions."""
        with self.transaction():
            if changes.get("phases") is not None:
                changes["phases"] = {**changes["phases"], "committed": stamp()}
            committed = self.commit(execution_id, self.staged(execution_id)) \
                if commit_staged else []
            with self.connection() as con:
                con.execute("DELETE FROM staged_outputs WHERE execution_id = ?", [execution_id])
            self.update_execution(execution_id, **changes)
        return committed
