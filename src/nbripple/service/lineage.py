"""Building lineage graphs from the catalog: what ``nr.lineage`` and ``ws.lineage`` run.

The catalog finds the nodes and edges of a walk (``Catalog.lineage_walk``: deep
graphs with one recursive SQL query, shallow ones hop by hop, both safe on cycles),
then their details in one batch (``Catalog.lineage_nodes``); this module turns them
into the records of :mod:`nbripple.graph`, bound to the workspace they came from.

Example::

    g = build_lineage(ws, "prediction@1", depth=None, direction="up")
    [v.ref for v in g.upstream_versions()]    # ['blessed_model@2']
"""

from __future__ import annotations

import difflib
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import InvalidReference, NotFound
from ..graph import (
    DIRECTIONS,
    EXECUTION_PREFIX,
    VERSION_PREFIX,
    LineageEdge,
    LineageGraph,
    LineageNode,
    LineageStart,
    execution_node_id,
    version_node_id,
)
from ..model import ArtifactVersion, Execution, Handle
from ..refs import NAME_RE, SCHEME, Pinned, Query

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = ["LineageSource", "build_lineage"]


class LineageSource(Handle, Protocol):
    """What a walk needs of a workspace besides the :class:`~nbripple.model.Handle` the
    graph keeps: its home (for messages) and its catalog."""

    home: Path
    catalog: Catalog


def build_lineage(ws: LineageSource, start: LineageStart, *, depth: int | None = 1,
                  direction: str = "both") -> LineageGraph:
    """Walk the lineage around ``start`` in ``ws`` (what ``nr.lineage`` does).

    The catalog finds the nodes and edges (:meth:`Catalog.lineage_walk`), then their
    details in one batch (:meth:`Catalog.lineage_nodes`).
    """
    if direction not in DIRECTIONS:
        raise ValueError(
            f"direction must be 'up' (what it came from), 'down' (what was made from it) "
            f"or 'both', not {direction!r}"
        )
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)
                              or depth < 0):
        raise ValueError(
            f"depth must be a number of hops >= 0, or None for the whole graph; got {depth!r}"
        )
    root = _root_node_id(ws, start)
    node_ids, raw_edges = ws.catalog.lineage_walk(root, direction=direction, depth=depth)
    if root not in node_ids:
        node_ids.append(root)
    edges = [LineageEdge(*edge) for edge in sorted(set(raw_edges))]
    depths = _depths(root, direction, edges)
    details = ws.catalog.lineage_nodes(node_ids)
    nodes = [
        (_version_node if node_id.startswith(VERSION_PREFIX) else _execution_node)(
            node_id, depths.get(node_id, 0), details.get(node_id))
        for node_id in node_ids
    ]
    nodes.sort(key=lambda n: (n.id != root, n.depth, n.type != "version", n.label, n.id))
    return LineageGraph(root, direction, depth, nodes, edges, ws)


def _root_node_id(ws: LineageSource, start: LineageStart) -> str:
    """The node id of the start: a version (any reference) or an execution (id or prefix)."""
    if isinstance(start, Execution):
        return execution_node_id(ws.execution(start.id).id)
    if isinstance(start, ArtifactVersion | Query | Pinned):
        version = ws.resolve(start)
        return version_node_id(version.name, version.version)
    if not isinstance(start, str):
        raise InvalidReference(
            f"cannot start a lineage walk at a {type(start).__name__}: pass 'name@N', an "
            "nbripple:// URI, a Query, a version, or an execution id"
        )
    text = start.strip()
    if text.startswith(EXECUTION_PREFIX):
        return execution_node_id(ws.execution(text[len(EXECUTION_PREFIX):]).id)
    if text.startswith(VERSION_PREFIX):
        text = text[len(VERSION_PREFIX):]
    if "@" in text or "?" in text or text.startswith(SCHEME) or not text:
        version = ws.resolve(text)
        return version_node_id(version.name, version.version)
    # A bare word is an artifact (its latest version) or an execution id (or prefix).
    is_artifact = bool(NAME_RE.fullmatch(text)) and ws.catalog.get_artifact(text) is not None
    execution = ws.catalog.get_execution(text)
    if is_artifact and execution is not None:
        raise InvalidReference(
            f"{text!r} names both an artifact and an execution: write '{text}@N' (or "
            f"'nbripple://{text}') for the artifact, 'execution:{text}' for the execution"
        )
    if execution is not None:
        return execution_node_id(execution.id)
    if is_artifact:
        version = ws.resolve(text)
        return version_node_id(version.name, version.version)
    names = [decl.name for decl in ws.catalog.list_artifacts()]
    close = difflib.get_close_matches(text, names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise NotFound(
        f"{text!r} is neither an artifact nor an execution id in {ws.home}{hint}; pass "
        "'name@N', an nbripple:// URI, or an id from `nbripple executions`"
    )


def _depths(root: str, direction: str, edges: list[LineageEdge]) -> dict[str, int]:
    """The fewest hops from the root to each node, walking as the catalog walked."""
    best: dict[str, int] = {root: 0}
    for upstream in ((True, False) if direction == "both" else (direction == "up",)):
        neighbours: dict[str, list[str]] = {}
        for edge in edges:
            here, there = (edge.target, edge.source) if upstream else (edge.source, edge.target)
            neighbours.setdefault(here, []).append(there)
        seen = {root: 0}
        queue = deque([root])
        while queue:
            current = queue.popleft()
            for nxt in neighbours.get(current, ()):
                if nxt not in seen:
                    seen[nxt] = seen[current] + 1
                    queue.append(nxt)
        for node_id, hops in seen.items():
            best[node_id] = min(hops, best.get(node_id, hops))
    return best


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _version_node(node_id: str, depth: int, row: dict[str, Any] | None) -> LineageNode:
    ref = node_id[len(VERSION_PREFIX):]
    name, _, number = ref.rpartition("@")
    if row is None:
        return LineageNode(node_id, "version", ref, depth,
                           {"name": name, "version": int(number), "ref": ref, "missing": True})
    data: dict[str, Any] = {
        "name": name,
        "version": int(number),
        "ref": ref,
        "kind": row["kind"],
        "partitions": row["partitions"],
        "time_partition": _iso(row["time_partition"]),
        "created_at": _iso(row["created_at"]),
        "execution_id": row["execution_id"],
    }
    return LineageNode(node_id, "version", ref, depth, data)


def _execution_node(node_id: str, depth: int, row: dict[str, Any] | None) -> LineageNode:
    execution_id = node_id[len(EXECUTION_PREFIX):]
    if row is None:
        return LineageNode(node_id, "execution", f"execution {execution_id[:8]}", depth,
                           {"execution_id": execution_id, "missing": True})
    title = Path(row["notebook"]).name if row["notebook"] else row["label"] or row["kind"]
    error = row["error"] or {}
    trigger = row["trigger_artifact"], row["trigger_version"]
    data: dict[str, Any] = {
        "execution_id": execution_id,
        "kind": row["kind"],
        "status": row["status"],
        "notebook": row["notebook"],
        "execution_label": row["label"],
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "failed": row["status"] == "failed",
        "error": f"{error.get('ename', '')}: {error.get('evalue', '')}" if error else None,
        "trigger": f"{trigger[0]}@{trigger[1]}" if trigger[0] and trigger[1] else None,
        "parent_id": row["parent_id"],
    }
    return LineageNode(node_id, "execution", f"{title} · {row['status']}", depth, data)
