"""Artifacts and their versions: committing (numbering, heads, cards, events) and
reading them back."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from ...model import ArtifactDecl, ArtifactVersion, NewVersion
from ...refs import Query
from . import rows
from .connection import ROW_CACHE_SIZE, CatalogConnection
from .rows import DECL_COLUMNS, VERSION_COLUMNS, VERSION_FROM, naive, utcnow


class VersionTables(CatalogConnection):
    """Mixed into :class:`EmbeddedCatalog`: the ``artifacts``, ``versions`` and ``heads``
    tables."""

    # -- artifacts ----------------------------------------------------------
    def get_artifact(self, name: str) -> ArtifactDecl | None:
        """The declaration recorded for ``name``, or None."""
        with self.connection() as con:
            row = con.execute(f"SELECT {DECL_COLUMNS} FROM artifacts WHERE name = ?",
                              [name]).fetchone()
        return rows.decl(row) if row else None

    def list_artifacts(self) -> list[ArtifactDecl]:
        """Every artifact's declaration, by name."""
        with self.connection() as con:
            found = con.execute(f"SELECT {DECL_COLUMNS} FROM artifacts ORDER BY name").fetchall()
        return [rows.decl(row) for row in found]

    @staticmethod
    def _ensure_artifact(con: duckdb.DuckDBPyConnection, decl: ArtifactDecl) -> None:
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

    # -- committing ---------------------------------------------------------
    def commit(self, execution_id: str | None, new: list[NewVersion]) -> list[ArtifactVersion]:
        """Commit versions in one transaction: number each per artifact, give each the
        next event seq, record its card (revision 1) and its event. Returns them."""
        if not new:
            return []
        now = utcnow()
        committed: list[tuple[str, int]] = []
        with self.transaction() as con:
            for item in new:
                committed.append(self._insert_version(con, execution_id, item, now))
            found = [
                con.execute(
                    f"SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} "
                    "WHERE v.artifact = ? AND v.version = ?", [name, number],
                ).fetchone()
                for name, number in committed
            ]
        versions = [rows.version(row) for row in found if row is not None]
        for version in versions:
            self._remember(version)
        return versions

    def _insert_version(self, con: duckdb.DuckDBPyConnection, execution_id: str | None,
                        item: NewVersion, now: datetime) -> tuple[str, int]:
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
                naive(item.time_partition), item.kind, item.python_type,
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
        return item.artifact.name, number

    # -- reading ------------------------------------------------------------
    def get_version(self, name: str, version: int) -> ArtifactVersion | None:
        """Version ``version`` of ``name`` (with its current card), or None."""
        with self.connection() as con:
            row = con.execute(
                f"SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} "
                "WHERE v.artifact = ? AND v.version = ?",
                [name, version],
            ).fetchone()
        found = rows.version(row) if row else None
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
        """The newest version matching ``query`` (its partitions exactly when strict,
        else containing them; its time partition), or None."""
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
            params.append(naive(query.time_partition))
        sql = (
            f"SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} WHERE v.seq = "
            f"(SELECT max_by(seq, version) FROM versions WHERE {' AND '.join(where)})"
        )
        with self.connection() as con:
            row = con.execute(sql, params).fetchone()
        return rows.version(row) if row else None

    def partition_values(self, name: str, keys: list[str]) -> dict[str, list[str]]:
        """For each of ``keys``, the sorted distinct values it has in ``name``'s versions."""
        with self.connection() as con:
            found = con.execute(
                "SELECT DISTINCT partitions FROM versions WHERE artifact = ?", [name]
            ).fetchall()
        values: dict[str, set[str]] = {key: set() for key in keys}
        for (text,) in found:
            parts = json.loads(text)
            for key in keys:
                if key in parts:
                    values[key].add(parts[key])
        return {key: sorted(each) for key, each in values.items()}

    def list_versions(self, name: str, limit: int | None = None) -> list[ArtifactVersion]:
        """``name``'s versions, newest first (at most ``limit``)."""
        sql = f"SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} WHERE v.artifact = ? " \
              "ORDER BY v.version DESC"
        params: list[Any] = [name]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.connection() as con:
            found = con.execute(sql, params).fetchall()
        return [rows.version(row) for row in found]

    def versions_produced_by(self, execution_id: str) -> list[ArtifactVersion]:
        """The versions an execution committed, in commit order."""
        with self.connection() as con:
            found = con.execute(
                f"SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} WHERE v.execution_id = ? "
                "ORDER BY v.seq",
                [execution_id],
            ).fetchall()
        return [rows.version(row) for row in found]

    def get_versions(self, keys: list[tuple[str, int]]) -> list[ArtifactVersion]:
        """The versions among ``(name, number)`` keys that exist, in commit order."""
        if not keys:
            return []
        with self.connection() as con:
            found = con.execute(
                f"SELECT {VERSION_COLUMNS} FROM {VERSION_FROM} "
                "SEMI JOIN (SELECT unnest($names) AS name, unnest($numbers) AS number) k "
                "ON v.artifact = k.name AND v.version = k.number ORDER BY v.seq",
                {"names": [name for name, _ in keys],
                 "numbers": [number for _, number in keys]},
            ).fetchall()
        return [rows.version(row) for row in found]

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
