"""Lineage: the graph of versions and executions and what links them.

Nodes are artifact versions (``version:blessed_model@2``) and executions
(``execution:<id>``). Edges are *consumed* (version → execution), *produced*
(execution → version) and *triggered* (version → the execution it set off).
A walk goes ``up`` (what the start came from: against the edges), ``down`` (what
was made from it: along the edges) or ``both`` (the two walks, not an undirected
one), ``depth`` hops far or, with ``depth=None``, as far as the graph goes. The
catalog walks deep graphs with one recursive SQL query and shallow ones hop by hop,
both safe on cycles; node details then come in one batch.

Example::

    g = nr.lineage("prediction@1", depth=None, direction="up")
    [v.ref for v in g.upstream_versions()]    # ['blessed_model@2']
    print(g.to_text())
    g.to_networkx() ; g.to_dict()              # networkx / cytoscape.js elements
"""

from __future__ import annotations

import difflib
import sys
import types
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidReference, NotFound
from .model import ArtifactVersion, Execution
from .refs import NAME_RE, SCHEME, Pinned, Query

if TYPE_CHECKING:
    import networkx as nx

    from .widgets.graph import LineageGraphWidget
    from .workspace import Workspace

DIRECTIONS = ("up", "down", "both")
EDGE_KINDS = ("consumed", "produced", "triggered")
VERSION_PREFIX = "version:"
EXECUTION_PREFIX = "execution:"

LineageStart = str | Query | Pinned | ArtifactVersion | Execution

# How each edge kind reads in a tree, seen from the node being expanded.
_UP_VERBS = {"produced": "produced by", "consumed": "consumed", "triggered": "triggered by"}
_DOWN_VERBS = {"produced": "produced", "consumed": "consumed by", "triggered": "triggered"}


def version_node_id(name: str, version: int) -> str:
    """The node id of a version: ``version:blessed_model@2``."""
    return f"{VERSION_PREFIX}{name}@{version}"


def execution_node_id(execution_id: str) -> str:
    """The node id of an execution: ``execution:<id>``."""
    return f"{EXECUTION_PREFIX}{execution_id}"


@dataclass(frozen=True)
class LineageNode:
    """A version or an execution in a :class:`LineageGraph`.

    ``data`` holds JSON-able details: for a version its name, number, partitions and
    kind; for an execution its kind, status, notebook, timings and a ``failed`` flag.
    ``depth`` is the fewest hops from the graph's root. ``missing`` marks a node
    that an edge points to but the catalog has no row for.
    """

    id: str
    type: str
    label: str
    depth: int
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True for an execution that failed."""
        return bool(self.data.get("failed", False))

    @property
    def missing(self) -> bool:
        """True when an edge points to a version or execution the catalog lacks."""
        return bool(self.data.get("missing", False))


@dataclass(frozen=True, order=True)
class LineageEdge:
    """A directed edge: ``consumed`` (version → execution), ``produced`` (execution →
    version) or ``triggered`` (version → execution)."""

    source: str
    target: str
    kind: str


class LineageGraph:
    """The part of the lineage graph around one root, as walked by :func:`build_lineage`.

    ``nodes`` starts with the root, then the others by their distance from it;
    ``edges`` are every edge the walk crossed.
    """

    def __init__(self, root: str, direction: str, depth: int | None,
                 nodes: list[LineageNode], edges: list[LineageEdge],
                 workspace: Workspace | None = None) -> None:
        self.root = root
        self.direction = direction
        self.depth = depth
        self.nodes = nodes
        self.edges = edges
        self._by_id = {node.id: node for node in nodes}
        self._workspace = workspace

    # -- access -------------------------------------------------------------
    @property
    def node_ids(self) -> set[str]:
        """The ids of every node."""
        return set(self._by_id)

    def node(self, node_id: str) -> LineageNode:
        """A node by id (``version:name@N`` / ``execution:<id>``) or by ``name@N``."""
        found = self._by_id.get(node_id) or self._by_id.get(VERSION_PREFIX + node_id)
        if found is None:
            raise KeyError(f"{node_id!r} is not in this lineage graph (root {self.root})")
        return found

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, str) and (
            node_id in self._by_id or VERSION_PREFIX + node_id in self._by_id
        )

    def __len__(self) -> int:
        return len(self.nodes)

    def upstream_versions(self) -> list[ArtifactVersion]:
        """The versions the root came from (reachable against the edges), nearest first.

        Fetched from the catalog in one query when called.
        """
        return self._versions(self._reach(self.root, upstream=True))

    def downstream_versions(self) -> list[ArtifactVersion]:
        """The versions made from the root (reachable along the edges), nearest first."""
        return self._versions(self._reach(self.root, upstream=False))

    def _versions(self, node_ids: list[str]) -> list[ArtifactVersion]:
        wanted = [self._by_id[n] for n in node_ids if n != self.root]
        keys = [(n.data["name"], n.data["version"]) for n in wanted
                if n.type == "version" and not n.missing]
        if not keys:
            return []
        if self._workspace is None:
            from .workspace import current

            self._workspace = current()
        ws = self._workspace
        found = {v.ref: v for v in ws.catalog.get_versions(keys)}
        return [replace(found[f"{name}@{number}"], _workspace=ws)
                for name, number in keys if f"{name}@{number}" in found]

    def _reach(self, start: str, *, upstream: bool) -> list[str]:
        """Node ids reachable from ``start`` in one direction, breadth first."""
        neighbours: dict[str, list[str]] = {}
        for edge in self.edges:
            here, there = (edge.target, edge.source) if upstream else (edge.source, edge.target)
            neighbours.setdefault(here, []).append(there)
        seen = {start}
        order: list[str] = []
        queue = deque([start])
        while queue:
            current = queue.popleft()
            order.append(current)
            for nxt in sorted(neighbours.get(current, ())):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return order

    # -- export -------------------------------------------------------------
    def to_networkx(self) -> nx.DiGraph:
        """A :class:`networkx.DiGraph`: node attributes ``type``, ``label``, ``depth``
        and the node's data; edge attribute ``kind`` (and ``kinds``, every kind
        between the two nodes, e.g. a version that both triggered and fed a run)."""
        import networkx as nx

        graph = nx.DiGraph(root=self.root, direction=self.direction, depth=self.depth)
        for node in self.nodes:
            graph.add_node(node.id, type=node.type, label=node.label, depth=node.depth,
                           **node.data)
        for edge in self.edges:
            if graph.has_edge(edge.source, edge.target):
                graph.edges[edge.source, edge.target]["kinds"].append(edge.kind)
            else:
                graph.add_edge(edge.source, edge.target, kind=edge.kind, kinds=[edge.kind])
        return graph

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        """cytoscape.js elements JSON: ``{"nodes": [{"data": ..., "classes": ...}],
        "edges": [{"data": {"id", "source", "target", "kind"}, "classes": kind}]}``.

        Node classes are the type (``version``/``execution``) plus ``root``,
        ``failed`` and ``missing`` where they apply.
        """
        nodes = []
        for node in self.nodes:
            classes = [node.type]
            if node.id == self.root:
                classes.append("root")
            if node.failed:
                classes.append("failed")
            if node.missing:
                classes.append("missing")
            nodes.append({
                "data": {"id": node.id, "label": node.label, "type": node.type,
                         "depth": node.depth, **node.data},
                "classes": " ".join(classes),
            })
        edges = [
            {"data": {"id": f"{e.source}->{e.target}:{e.kind}", "source": e.source,
                      "target": e.target, "kind": e.kind},
             "classes": e.kind}
            for e in self.edges
        ]
        return {"nodes": nodes, "edges": edges}

    def to_text(self) -> str:
        """A readable tree: the root, then what it came from and/or what was made from
        it. A node reached twice (a shared input, a cycle) is expanded once; a node's
        only neighbour follows on the next line, under it, without a branch glyph.

        Example::

            prediction@1  [value]
            upstream (what it came from):
            └── produced by  ops.ipynb · succeeded  [notebook 3f2a9c1b]
                consumed  blessed_model@2  [object · blessed=true]
                produced by  train.ipynb · succeeded  [notebook 11aa22bb]
                ├── consumed  features@4  [table]
                └── consumed  labels@2  [table]
        """
        root = self._by_id[self.root]
        lines = [_describe(root)]
        sections = [("up", "upstream (what it came from)"),
                    ("down", "downstream (what was made from it)")]
        for direction, title in sections:
            if self.direction not in (direction, "both"):
                continue
            lines.append(f"{title}:")
            body = self._tree_lines(upstream=direction == "up")
            lines.extend(body or ["  (nothing recorded)"])
        return "\n".join(lines)

    def _tree_lines(self, *, upstream: bool) -> list[str]:
        verbs = _UP_VERBS if upstream else _DOWN_VERBS
        children: dict[str, dict[str, list[str]]] = {}
        for edge in self.edges:
            here, there = (edge.target, edge.source) if upstream else (edge.source, edge.target)
            children.setdefault(here, {}).setdefault(there, []).append(edge.kind)

        def ordered(parent: str, base: str, *, branch: bool) -> list[tuple[str, str, str, str]]:
            kids = sorted(children.get(parent, {}), key=lambda k: (self._by_id[k].label, k))
            if len(kids) == 1 and not branch:
                return [(kids[0], parent, base, "")]
            return [(kid, parent, base, "└── " if i == len(kids) - 1 else "├── ")
                    for i, kid in enumerate(kids)]

        lines: list[str] = []
        shown = {self.root}
        # An explicit stack, not recursion: a chain may be thousands of hops long. A
        # node's only child continues on the next line without a glyph, under the
        # node's text, so a long chain stays narrow; indentation grows where it forks.
        stack = list(reversed(ordered(self.root, "", branch=True)))
        while stack:
            node_id, parent, base, glyph = stack.pop()
            kinds = sorted(set(children[parent][node_id]), key=EDGE_KINDS.index)
            verb = " + ".join(verbs[kind] for kind in kinds)
            again = node_id in shown
            lines.append(f"{base}{glyph}{verb}  {_describe(self._by_id[node_id])}"
                         + ("  (see above)" if again else ""))
            if not again:
                shown.add(node_id)
                text_column = base + {"└── ": "    ", "├── ": "│   "}.get(glyph, "")
                stack.extend(reversed(ordered(node_id, text_column, branch=False)))
        return lines

    def widget(self, *, theme: str = "auto", height: str = "420px") -> LineageGraphWidget:
        """The graph drawn in the notebook (ipycytoscape): click a node to re-centre the
        graph on it, one hop around. ``theme``: ``"light"``, ``"dark"`` or ``"auto"``
        (JupyterLab's current theme setting)."""
        from .widgets.graph import LineageGraphWidget

        return LineageGraphWidget(self, theme=theme, height=height)

    def _repr_html_(self) -> str:
        from .display import lineage_html

        return lineage_html(self)

    def __repr__(self) -> str:
        depth = "all" if self.depth is None else self.depth
        return (f"<LineageGraph root={self.root} direction={self.direction} depth={depth}: "
                f"{len(self.nodes)} nodes, {len(self.edges)} edges>")


def _describe(node: LineageNode) -> str:
    """One line for a node in :meth:`LineageGraph.to_text`."""
    if node.missing:
        return f"{node.label}  (not in the catalog)"
    if node.type == "version":
        parts = [str(node.data.get("kind", ""))]
        partitions = node.data.get("partitions") or {}
        if partitions:
            parts.append(", ".join(f"{k}={v}" for k, v in partitions.items()))
        return f"{node.label}  [{' · '.join(parts)}]"
    return f"{node.label}  [{node.data.get('kind')} {node.data.get('execution_id', '')[:8]}]"


# -- building a graph from the catalog -----------------------------------------
def build_lineage(ws: Workspace, start: LineageStart, *, depth: int | None = 1,
                  direction: str = "both") -> LineageGraph:
    """Walk the lineage around ``start`` in ``ws`` (see :func:`nbripple.lineage`).

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


def _root_node_id(ws: Workspace, start: LineageStart) -> str:
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


class _CallableModule(types.ModuleType):
    """Keeps ``nbripple.lineage(...)`` callable after ``import nbripple.lineage``.

    Importing a submodule binds it as an attribute of its package, replacing the
    ``lineage`` function of the same name there; calling the module then calls the
    function.
    """

    def __call__(self, ref_or_execution_id: LineageStart, depth: int | None = 1,
                 direction: str = "both") -> LineageGraph:
        from .api import lineage

        return lineage(ref_or_execution_id, depth=depth, direction=direction)


sys.modules[__name__].__class__ = _CallableModule
