"""Artifacts and their versions: committing (numbering, heads, cards, events) and
reading them back."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import duckdb

from ...model import ArtifactDecl, ArtifactVersion, NewVersion
from ...refs import Query
from . import rows
from .connection import ROW_CACHE_SIZE, CatalogConnection
from .rows import DECL_COLUMNS, DECL_FROM, VERSION_COLUMNS, VERSION_FROM, naive, utcnow

CHUNK = 200
"""Versions inserted by one set of statements (a longer commit takes several)."""
_EPOCHS: dict[str, int] = {}
"""Per catalog file, how many commits instances of it in this process have numbered."""


def _many(con: duckdb.DuckDBPyConnection, sql: str, width: int,
          values: list[list[Any]]) -> None:
    """``sql`` with its ``{}`` replaced by one ``(?, ...)`` row per entry of ``values``:
    one statement for all of them (DuckDB's cost is per statement)."""
    if not values:
        return
    row = "(" + ", ".join("?" * width) + ")"
    con.execute(sql.format(", ".join([row] * len(values))),
                [value for entry in values for value in entry])


def _facets(item: NewVersion) -> tuple[str, ...]:
    """The rows of ``heads`` a version is the newest of, when it is committed: all of
    its artifact's, its kind's, each of its partition values'."""
    return ("*", f"kind={item.kind}",
            *(f"p:{k}={v}" for k, v in sorted(item.partitions.items())))


class VersionTables(CatalogConnection):
    """Mixed into :class:`EmbeddedCatalog`: the ``artifacts``, ``versions`` and ``heads``
    tables."""

    # -- artifacts ----------------------------------------------------------
    def get_artifact(self, name: str) -> ArtifactDecl | None:
        """The declaration recorded for ``name``, or None."""
        with self.connection() as con:
            row = con.execute(f"SELECT {DECL_COLUMNS} FROM {DECL_FROM} WHERE a.name = ?",
                              [name]).fetchone()
        return rows.decl(row) if row else None

    def list_artifacts(self) -> list[ArtifactDecl]:
        """Every artifact's declaration, by name."""
        with self.connection() as con:
            found = con.execute(f"SELECT {DECL_COLUMNS} FROM {DECL_FROM} ORDER BY a.name"
                                ).fetchall()
        return [rows.decl(row) for row in found]

    # -- committing ---------------------------------------------------------
    def commit(self, execution_id: str | None, new: list[NewVersion]) -> list[ArtifactVersion]:
        """Commit versions in one transaction: number each per artifact, give each the
        next event seq, record its card (revision 1) and its event. Returns them."""
        return self.commit_many([(execution_id, new)])[0]

    def commit_many(self, batches: list[tuple[str | None, list[NewVersion]]]
                    ) -> list[list[ArtifactVersion]]:
        """Commit several producers' versions in one transaction, as :meth:`commit`
        would one batch after the other (numbers and seqs in the order given), in a
        fixed number of statements whatever their count: a server commits concurrent
        requests together this way. Returns each batch's versions."""
        items = [(execution_id, item) for execution_id, new in batches for item in new]
        if not items:
            return [[] for _ in batches]
        found: list[tuple[Any, ...]] = []
        with self.transaction() as con:
            now = utcnow()  # with the file held: in seq order, whoever waited for it
            for start in range(0, len(items), CHUNK):
                found.extend(self._insert_versions(con, items[start:start + CHUNK], now))
        versions = [rows.version(row) for row in found]
        for version in versions:
            self._remember(version)
        out: list[list[ArtifactVersion]] = []
        position = 0
        for _, new in batches:
            out.append(versions[position:position + len(new)])
            position += len(new)
        return out

    def _numbering(self, con: duckdb.DuckDBPyConnection, names: list[str],
                   facets: list[str]) -> tuple[int, int, dict[str, tuple[int, str, set[str]]]]:
        """This numbering's epoch, the newest seq of all, and of each of ``names`` that
        has versions its newest number, description and which of ``facets`` it has in
        ``heads``.

        Read once per open of the file, then kept (``_counters``): while this process
        holds the file no other process can commit. A rolled-back transaction (see
        :meth:`CatalogConnection.transaction`), a new open, or a commit through another
        instance of the same file in this process forgets them. A server holds the
        file for hours, so its commits skip this read."""
        key = os.path.realpath(self.path)
        epoch = _EPOCHS[key] = _EPOCHS.get(key, 0) + 1
        cached = self._counters
        if cached is None or cached[:2] != (self.opens, epoch - 1):
            cached = None
        elif all(name in cached[3] for name in names):
            return epoch, cached[2], cached[3]
        # Number each artifact's new versions after its newest ('*' row of heads; new
        # artifacts from 1) and take seqs after the newest of all: one read.
        # (one row even when none of them exists yet; grouped, not a correlated
        # subquery per artifact: a third cheaper, and a commit's first read)
        known = con.execute(
            "SELECT (SELECT coalesce(max(seq), 0) FROM heads WHERE facet = '*'), a.name, "
            "a.description, coalesce(max(h.version) FILTER (WHERE h.facet = '*'), 0), "
            f"list(h.facet) FILTER (WHERE h.facet IN ({', '.join('?' * len(facets))})) "
            "FROM (SELECT 1) one LEFT JOIN artifacts a ON a.name IN "
            f"({', '.join('?' * len(names))}) LEFT JOIN heads h ON h.artifact = a.name "
            "GROUP BY a.name, a.description",
            [*facets, *names]).fetchall()
        artifacts = dict(cached[3]) if cached is not None else {}
        artifacts.update({name: (int(newest), text or "", set(present or ()))
                          for _, name, text, newest, present in known if name})
        return epoch, int(known[0][0]), artifacts

    def _insert_versions(self, con: duckdb.DuckDBPyConnection,
                         items: list[tuple[str | None, NewVersion]], now: datetime
                         ) -> list[tuple[Any, ...]]:
        """Insert ``items`` (at most :data:`CHUNK`) and return their rows, in order."""
        decls: dict[str, ArtifactDecl] = {}
        facets: dict[str, None] = {}
        for _, item in items:
            decls.setdefault(item.artifact.name, item.artifact)
            facets.update(dict.fromkeys(_facets(item)))
        epoch, last_seq, artifacts = self._numbering(con, list(decls), list(facets))
        first_seq = last_seq + 1
        fresh = [decl for name, decl in decls.items() if name not in artifacts]
        _many(con, "INSERT INTO artifacts VALUES {}", 7, [
            [d.name, json.dumps(list(d.partition_keys)), d.time_partitioned,
             d.time_granularity, d.kind, d.description, now] for d in fresh])
        next_number = {name: artifacts[name][0] + 1 for name in decls if name in artifacts}
        description = {name: artifacts[name][1] for name in next_number}
        for decl in fresh:
            next_number[decl.name], description[decl.name] = 1, decl.description
        for name, decl in decls.items():  # a description given later fills an empty one
            if decl.description and not description[name]:
                con.execute("UPDATE artifacts SET description = ? WHERE name = ?",
                            [decl.description, name])
                description[name] = decl.description
        versions, heads, cards, events, found = [], {}, [], [], []
        for offset, (execution_id, item) in enumerate(items):
            name, seq = item.artifact.name, first_seq + offset
            number = next_number[name]
            next_number[name] = number + 1
            has_card = item.card is not None
            partitions, meta = json.dumps(item.partitions, sort_keys=True), json.dumps(item.meta)
            schema = json.dumps(item.schema) if item.schema is not None else None
            card_type = item.card_type if has_card else None
            versions.append([
                name, number, seq, partitions, naive(item.time_partition), item.kind,
                item.python_type, item.content_hash, item.size, item.uri, item.inline_value,
                schema, item.num_rows, meta, execution_id, card_type, item.card, now,
                1 if has_card else 0,
            ])
            found.append((  # as VERSION_COLUMNS reads it back
                name, number, partitions, naive(item.time_partition), item.kind,
                item.python_type, item.content_hash, item.size, item.uri, item.inline_value,
                schema, item.num_rows, meta, execution_id, now, seq, card_type, item.card,
                description[name]))
            for facet in _facets(item):
                heads[(name, facet)] = [name, facet, seq, number, 1 if has_card else 0,
                                        item.card]  # the newest of the chunk wins
            if has_card:
                cards.append([name, number, 1, item.card_type or "card", item.card, now])
            events.append([seq, "version", name, number, execution_id, now])
        _many(con, "INSERT INTO versions VALUES {}", 19, versions)
        self._move_heads(con, list(heads.values()), artifacts)
        _many(con, "INSERT INTO cards VALUES {}", 6, cards)
        _many(con, "INSERT INTO events VALUES {}", 6, events)
        for name in decls:
            known = artifacts[name][2] if name in artifacts else set()
            artifacts[name] = (next_number[name] - 1, description[name],
                               known | {facet for artifact, facet in heads if artifact == name})
        # this numbering's epoch, not the file's newest: another instance that numbered
        # meanwhile must make the next commit read afresh
        self._counters = (self.opens, epoch, first_seq + len(items) - 1, artifacts)
        return found

    @staticmethod
    def _move_heads(con: duckdb.DuckDBPyConnection, heads: list[list[Any]],
                    artifacts: dict[str, tuple[int, str, set[str]]]) -> None:
        """Point each ``(artifact, facet)`` row of ``heads`` at its newest version.

        When every row names one artifact's facets that exist already and the same
        version (one commit's facets, or a group's to one artifact), that is one UPDATE
        (half the cost of an upsert in DuckDB); otherwise one upsert."""
        name, facets = heads[0][0], [row[1] for row in heads]
        values = {tuple(row[2:]) for row in heads}
        if len(values) == 1 and all(row[0] == name for row in heads) \
                and name in artifacts and artifacts[name][2].issuperset(facets):
            con.execute("UPDATE heads SET seq = ?, version = ?, card_revision = ?, card = ? "
                        f"WHERE artifact = ? AND facet IN ({', '.join('?' * len(facets))})",
                        [*heads[0][2:], name, *facets])
            return
        _many(con, "INSERT INTO heads VALUES {} ON CONFLICT (artifact, facet) DO UPDATE SET "
                   "seq = EXCLUDED.seq, version = EXCLUDED.version, "
                   "card_revision = EXCLUDED.card_revision, card = EXCLUDED.card",
              6, heads)

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
