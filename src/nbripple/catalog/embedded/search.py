"""Search: versions by words (in names, descriptions and cards), partitions and kind.

Two steps: the ``(seq, card_revision)`` of the hits from narrow columns — from the
``heads`` table when only the latest versions are wanted and at most one structural
filter is given — then only those rows, from memory when already read.
"""

from __future__ import annotations

import json
from typing import Any

from ...model import ArtifactVersion
from . import rows
from .connection import ROW_CACHE_SIZE, CatalogConnection
from .rows import VERSION_ONLY_COLUMNS


class SearchTables(CatalogConnection):
    """Mixed into :class:`EmbeddedCatalog`: :meth:`search`."""

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
        matches the partition and kind filters, if that version matches the terms."""
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
                    f"SELECT {VERSION_ONLY_COLUMNS}, v.card_revision FROM versions v "
                    f"WHERE v.seq IN ({', '.join(str(seq) for seq in missing)})"
                ).fetchall()
                for row in fetched:
                    self._cache_row((int(row[15]), int(row[-1])), row[:-1])
            found = [self._row_cache[key] for key in keys if key in self._row_cache]
            # A range of names binds two strings; a list parameter costs more than
            # the query itself.
            names = {row[0] for row in found}
            descriptions = dict(con.execute(
                "SELECT name, description FROM artifacts WHERE name BETWEEN ? AND ?",
                [min(names), max(names)],
            ).fetchall())
        return [rows.version((*row, descriptions.get(row[0], ""))) for row in found]

    def _cache_row(self, key: tuple[int, int], row: Any) -> None:
        self._row_cache[key] = row
        self._row_cache.move_to_end(key)
        while len(self._row_cache) > ROW_CACHE_SIZE:
            self._row_cache.popitem(last=False)
