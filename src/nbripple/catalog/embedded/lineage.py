"""The lineage graph in SQL: walks over consumed / produced / triggered edges.

Inside SQL a node is ``v<name>@<N>`` or ``x<execution id>`` (short keys hash and
compare faster; names never contain ``@``); :meth:`LineageTables.lineage_walk`
speaks the public ids ``version:<name>@<N>`` and ``execution:<id>``. Each edge is
listed once per walked direction: ``up`` goes from an edge's target to its source,
``down`` the other way.
"""

from __future__ import annotations

import json
from typing import Any

from .connection import CatalogConnection
from .rows import aware


class LineageTables(CatalogConnection):
    """Mixed into :class:`EmbeddedCatalog`: :meth:`lineage_walk` and
    :meth:`lineage_nodes`."""

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
        """Walk the graph from the node ``start`` (``version:name@N`` or
        ``execution:<id>``) ``up``, ``down`` or ``both``, ``depth`` hops (None: all,
        cycle-safe). Returns the reached node ids and the crossed edges
        ``(source, target, kind)``."""
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
        """Details of the nodes among ``node_ids`` that exist, by node id, in batch."""
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
                        "partitions": json.loads(partitions), "time_partition": aware(tp),
                        "created_at": aware(created), "execution_id": execution_id,
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
                        "notebook": notebook, "label": label, "started_at": aware(started),
                        "finished_at": aware(finished),
                        "error": json.loads(error) if error is not None else None,
                        "trigger_artifact": trigger_artifact, "trigger_version": trigger_version,
                        "parent_id": parent_id,
                    }
        return found


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
