"""The graph canvas: cytoscape.js in the notebook, through ipycytoscape.

This is the only module that imports ipycytoscape (pinned at 1.3.3, unmaintained
upstream): replacing it means rewriting :class:`GraphCanvas` here, keeping its
small interface — ``widget``, ``show(elements)``, ``on_node_click(callback)``,
``click(node_id)``, ``node_ids``/``edge_ids``/``node_classes`` — and nothing else.

Elements are cytoscape.js JSON, as :meth:`nbripple.graph.LineageGraph.to_dict`
makes them: nodes carry the classes ``version``/``execution`` plus ``root``,
``failed``, ``missing``; edges carry their kind (``consumed``, ``produced``,
``triggered``). The style draws each class from a palette of theme colours (see
:data:`PALETTE_ROLES`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipycytoscape
import ipywidgets as widgets

Elements = Mapping[str, list[dict[str, Any]]]

PALETTE_ROLES = ("version", "execution", "failed", "root", "missing", "text", "edge",
                 "triggered", "outline")
"""The colours a palette gives: node fills per type, the root's ring, text, edges."""

LAYOUT = {"name": "dagre", "rankDir": "LR", "nodeSep": 30, "rankSep": 90, "padding": 20,
          "animate": False, "fit": True}
"""A layered, left-to-right layout: inputs on the left, what was made from them right."""


def stylesheet(palette: Mapping[str, str]) -> list[dict[str, Any]]:
    """The cytoscape.js stylesheet for lineage graphs in ``palette``'s colours.

    It replaces ipycytoscape's default stylesheet entirely, so it also states the
    rules that default had: labels, and arrows on ``edge.directed``.
    """
    p = dict(palette)
    return [
        {"selector": "node", "style": {
            "label": "data(display)", "color": p["text"], "font-size": 11,
            "text-wrap": "wrap", "text-max-width": 180, "text-valign": "bottom",
            "text-halign": "center", "text-margin-y": 5, "width": 26, "height": 26,
            "border-width": 1, "border-color": p["outline"],
        }},
        {"selector": "node.version", "style": {
            "shape": "round-rectangle", "background-color": p["version"], "width": 34,
        }},
        {"selector": "node.execution", "style": {
            "shape": "ellipse", "background-color": p["execution"],
        }},
        {"selector": "node.failed", "style": {
            "shape": "octagon", "background-color": p["failed"], "border-width": 3,
            "border-color": p["failed"], "border-style": "double", "font-weight": "bold",
        }},
        {"selector": "node.missing", "style": {
            "background-color": p["missing"], "border-style": "dashed", "opacity": 0.6,
        }},
        {"selector": "node.root", "style": {
            "border-width": 4, "border-color": p["root"], "font-weight": "bold",
        }},
        {"selector": "edge", "style": {
            "width": 2, "line-color": p["edge"], "curve-style": "bezier",
            "label": "data(kind)", "font-size": 8, "color": p["text"],
            "text-rotation": "autorotate", "text-margin-y": -7,
        }},
        {"selector": "edge.directed", "style": {
            "curve-style": "bezier", "target-arrow-shape": "triangle",
            "target-arrow-color": p["edge"], "arrow-scale": 1.2,
        }},
        {"selector": "edge.triggered", "style": {
            "line-style": "dashed", "line-color": p["triggered"],
            "target-arrow-color": p["triggered"],
        }},
    ]


class GraphCanvas:
    """A directed graph drawn with cytoscape.js, whose node clicks reach the kernel.

    Example::

        canvas = GraphCanvas(palette)
        canvas.show(graph.to_dict())
        canvas.on_node_click(lambda node_id: print(node_id))
        display(canvas.widget)
    """

    def __init__(self, palette: Mapping[str, str], *, height: str = "420px") -> None:
        missing = [role for role in PALETTE_ROLES if role not in palette]
        if missing:
            raise ValueError(f"the palette lacks colours for {', '.join(missing)}")
        self._cy = ipycytoscape.CytoscapeWidget(layout=widgets.Layout(height=height,
                                                                      width="100%"))
        self._cy.set_style(stylesheet(palette))
        self._cy.set_layout(**LAYOUT)
        self._cy.min_zoom = 0.2
        self._cy.max_zoom = 3.0
        self._callbacks: list[Callable[[str], None]] = []
        self._cy.on("node", "click", self._dispatch_click)

    @property
    def widget(self) -> widgets.DOMWidget:
        """The ipywidgets widget to display."""
        return self._cy

    def show(self, elements: Elements) -> None:
        """Replace every node and edge with ``elements`` (cytoscape.js JSON); the
        front end lays the new graph out again."""
        graph = self._cy.graph
        old = [*graph.nodes, *graph.edges]
        # Clear and add in separate syncs: within one update ipycytoscape's front end
        # adds the new elements before it removes the old ones, so a node kept across a
        # re-centre throws "Can not create second element with ID" and the graph is
        # left empty (tests/browser shows it).
        graph.clear()
        graph.add_graph_from_json({"nodes": list(elements.get("nodes", [])),
                                   "edges": list(elements.get("edges", []))},
                                  directed=True)
        for element in old:  # their models would otherwise live on in the front end
            element.close()

    def on_node_click(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(node_id)`` when a node is clicked in the browser."""
        self._callbacks.append(callback)

    def _dispatch_click(self, node: Mapping[str, Any]) -> None:
        # ipycytoscape passes the clicked element's cytoscape.js JSON.
        node_id = (node.get("data") or {}).get("id")
        if not isinstance(node_id, str):
            return
        for callback in self._callbacks:
            callback(node_id)

    def click(self, node_id: str) -> None:
        """Deliver a click on ``node_id`` exactly as the browser does: a custom comm
        message to the widget, with the node's JSON (for tests and demos)."""
        node = next((n for n in self._cy.graph.nodes if n.data.get("id") == node_id), None)
        if node is None:
            raise KeyError(f"{node_id!r} is not drawn on this canvas")
        payload = {"event": "click", "widget": "node",
                   "data": {"group": "nodes", "data": dict(node.data), "classes": node.classes}}
        self._cy._handle_msg({"content": {"data": {"method": "custom", "content": payload}},
                              "buffers": []})

    @property
    def node_ids(self) -> list[str]:
        """The ids of the nodes drawn, in drawing order."""
        return [str(node.data["id"]) for node in self._cy.graph.nodes]

    @property
    def edge_ids(self) -> list[str]:
        """The ids of the edges drawn."""
        return [str(edge.data.get("id", "")) for edge in self._cy.graph.edges]

    def node_classes(self, node_id: str) -> set[str]:
        """The style classes of a drawn node (``version``, ``root``, ``failed``...)."""
        for node in self._cy.graph.nodes:
            if node.data.get("id") == node_id:
                return set(str(node.classes).split())
        raise KeyError(f"{node_id!r} is not drawn on this canvas")

    def node_data(self, node_id: str) -> dict[str, Any]:
        """The data of a drawn node."""
        for node in self._cy.graph.nodes:
            if node.data.get("id") == node_id:
                return dict(node.data)
        raise KeyError(f"{node_id!r} is not drawn on this canvas")

    @property
    def style(self) -> list[dict[str, Any]]:
        """The stylesheet in use (cytoscape.js JSON)."""
        return list(self._cy.get_style())

    @property
    def layout(self) -> dict[str, Any]:
        """The layout options in use (cytoscape.js JSON)."""
        return dict(self._cy.get_layout())

    def close(self) -> None:
        """Close the widget and its elements."""
        for element in [*self._cy.graph.nodes, *self._cy.graph.edges]:
            element.close()
        self._cy.graph.close()
        self._cy.close()
