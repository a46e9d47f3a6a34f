"""The lineage graph records: versions and executions and what links them.

Nodes are artifact versions (``version:blessed_model@2``) and executions
(``execution:<id>``). Edges are *consumed* (version → execution), *produced*
(execution → version) and *triggered* (version → the execution it set off).
A walk goes ``up`` (what the start came from: against the edges), ``down`` (what
was made from it: along the edges) or ``both`` (the two walks, not an undirected
one), ``depth`` hops far or, with ``depth=None``, as far as the graph goes. The
graph is built by :func:`nbripple.service.lineage.build_lineage` (what ``nr.lineage``
calls); this module holds only the records, so it imports nothing above them.

Example::

    g = nr.lineage("prediction@1", depth=None, direction="up")
    [v.ref for v in g.upstream_versions()]    # ['blessed_model@2']
    print(g.to_text())
    g.to_networkx() ; g.to_dict()              # networkx / cytoscape.js elements
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import NotFound
from .model import ArtifactVersion, Execution, Handle, attached, presenter
from .refs import Pinned, Query

if TYPE_CHECKING:
    import networkx as nx

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
    """The part of the lineage graph around one root, as walked by ``nr.lineage``.

    ``nodes`` starts with the root, then the others by their distance from it;
    ``edges`` are every edge the walk crossed. ``workspace`` is the :class:`Handle` of
    the workspace it was read from (the versions it lists are fetched from there).
    """

    def __init__(self, root: str, direction: str, depth: int | None,
                 nodes: list[LineageNode], edges: list[LineageEdge],
                 workspace: Handle | None = None) -> None:
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

        Fetched from the graph's workspace when called.
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
        handle = attached(self._workspace, f"the lineage graph of {self.root}")
        found: list[ArtifactVersion] = []
        for name, number in keys:
            try:
                found.append(handle.resolve(Pinned(name, number)))
            except NotFound:  # deleted since the walk: listed only if it exists
                continue
        return found

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

    def widget(self, *, theme: str = "auto", height: str = "420px") -> Any:
        """The graph drawn in the notebook (ipycytoscape): click a node to re-centre the
        graph on it, one hop around. ``theme``: ``"light"``, ``"dark"`` or ``"auto"``
        (JupyterLab's current theme setting)."""
        return presenter().widget(self, theme=theme, height=height)

    def _repr_html_(self) -> str:
        return presenter().html(self)

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
