"""The lineage graph widget: ``nr.lineage("blessed_model@3").widget()``.

Versions and executions are drawn differently (shape and theme colour; failed
executions in the error colour, the centre ringed), edges are arrows labelled with
their kind, laid out in layers from left to right. Clicking a node re-centres the
graph on it — one hop around, up and down — so a user can walk the whole
meta-workflow; ``back`` returns to the previous centre.

The widget's state stays inspectable from the kernel: ``centre`` (the node in the
middle now), ``clicks`` (every node id a click delivered), ``graph`` (the
:class:`~nbripple.graph.LineageGraph` drawn) and ``canvas.node_ids``.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..ambient import AMBIENT
from ..display import partitions_text, run_title, shorten, when
from ..errors import NbrippleError
from ..graph import LineageGraph, LineageNode
from ..model import Handle
from . import close_tree
from .cytoscape import GraphCanvas

THEMES = ("light", "dark")

ROLE_VARIABLES = {
    "version": "--jp-brand-color1",
    "execution": "--jp-accent-color1",
    "failed": "--jp-error-color1",
    "root": "--jp-warn-color1",
    "missing": "--jp-border-color1",
    "text": "--jp-ui-font-color1",
    "edge": "--jp-ui-font-color2",
    "triggered": "--jp-warn-color1",
    "outline": "--jp-border-color2",
}
"""The JupyterLab theme variable each colour of the graph takes its value from."""

DEFAULT_VARIABLES = {
    "light": {"--jp-brand-color1": "#1976d2", "--jp-accent-color1": "#388e3c",
              "--jp-error-color1": "#d32f2f", "--jp-warn-color1": "#f57c00",
              "--jp-border-color1": "#bdbdbd", "--jp-border-color2": "#e0e0e0",
              "--jp-ui-font-color1": "rgba(0,0,0,0.87)",
              "--jp-ui-font-color2": "rgba(0,0,0,0.54)"},
    "dark": {"--jp-brand-color1": "#2196f3", "--jp-accent-color1": "#4caf50",
             "--jp-error-color1": "#f44336", "--jp-warn-color1": "#ff9800",
             "--jp-border-color1": "#616161", "--jp-border-color2": "#424242",
             "--jp-ui-font-color1": "rgba(255,255,255,0.87)",
             "--jp-ui-font-color2": "rgba(255,255,255,0.54)"},
}
"""The theme variables' values in JupyterLab 4's light and dark themes, used when the
installed theme's CSS cannot be read."""

_VARIABLE_RE = re.compile(r"(--[a-z0-9-]+)\s*:\s*([^;}]+)")
_VAR_REF_RE = re.compile(r"var\(\s*(--[a-z0-9-]+)\s*(?:,\s*([^)]+))?\)")
_COLOUR_RE = re.compile(r"#[0-9a-fA-F]{3,8}|rgba?\([0-9.,\s]+\)|[a-z]+")
_THEME_SETTING_RE = re.compile(r'"theme"\s*:\s*"([^"]+)"')


# -- theme ----------------------------------------------------------------------
def current_theme() -> str:
    """``"dark"`` when the user's JupyterLab settings choose a dark theme, else ``"light"``."""
    try:
        from jupyter_core.paths import jupyter_config_dir

        base = os.environ.get("JUPYTERLAB_SETTINGS_DIR") or os.path.join(
            jupyter_config_dir(), "lab", "user-settings")
        path = Path(base, "@jupyterlab", "apputils-extension", "themes.jupyterlab-settings")
        found = _THEME_SETTING_RE.search(path.read_text(encoding="utf-8"))
    except (OSError, ImportError, UnicodeDecodeError):
        return "light"
    return "dark" if found and "dark" in found.group(1).lower() else "light"


@lru_cache(maxsize=2)
def theme_variables(theme: str) -> dict[str, str]:
    """The values of the theme variables the graph uses, read from the installed
    JupyterLab theme's CSS when possible (``var(--x, fallback)`` resolved), else the
    JupyterLab 4 defaults."""
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)} or 'auto', not {theme!r}")
    values = dict(DEFAULT_VARIABLES[theme])
    css = _theme_css(theme)
    if css:
        found = {name: value.strip() for name, value in _VARIABLE_RE.findall(css)}
        for name in values:
            colour = _resolve(found.get(name, ""), found)
            if colour:
                values[name] = colour
    return values


def _theme_css(theme: str) -> str:
    try:
        from jupyter_core.paths import jupyter_path
    except ImportError:
        return ""
    relative = Path("themes", "@jupyterlab", f"theme-{theme}-extension", "index.css")
    for base in jupyter_path("lab"):
        try:
            return (Path(base) / relative).read_text(encoding="utf-8")
        except OSError:
            continue
    return ""


def _resolve(value: str, variables: Mapping[str, str], depth: int = 0) -> str:
    """A CSS value reduced to one colour cytoscape.js can parse ('' if it cannot)."""
    match = _VAR_REF_RE.fullmatch(value.strip())
    if match and depth < 4:
        name, fallback = match.groups()
        if name in variables:
            resolved = _resolve(variables[name], variables, depth + 1)
            if resolved:
                return resolved
        return _resolve(fallback or "", variables, depth + 1)
    value = re.sub(r"(?<![0-9])\.(?=[0-9])", "0.", value.strip())  # rgba(0,0,0,.87)
    return value if _COLOUR_RE.fullmatch(value) else ""


def palette(theme: str = "auto") -> dict[str, str]:
    """The graph's colours for ``theme`` (``"light"``, ``"dark"`` or ``"auto"``), keyed by
    role (see :data:`ROLE_VARIABLES`)."""
    chosen = current_theme() if theme == "auto" else theme
    variables = theme_variables(chosen)
    return {role: variables[name] for role, name in ROLE_VARIABLES.items()}


# -- elements ---------------------------------------------------------------------
def node_display(node: LineageNode) -> str:
    """The label drawn under a node: its name, then its partitions or status."""
    if node.missing:
        return f"{node.label}\n(not in the catalog)"
    if node.type == "version":
        extra = partitions_text(node.data.get("partitions") or {})
        return f"{node.label}\n{extra}" if extra else node.label
    title = run_title(node.label.rsplit(" · ", 1)[0])
    status = str(node.data.get("status", ""))
    return f"✗ {title}\n{status}" if node.failed else f"{title}\n{status}"


def elements(graph: LineageGraph) -> dict[str, list[dict[str, Any]]]:
    """The graph's cytoscape.js elements with the drawn label (``display``) added."""
    drawn = graph.to_dict()
    labels = {node.id: node_display(node) for node in graph.nodes}
    for node in drawn["nodes"]:
        node["data"]["display"] = labels[node["data"]["id"]]
    return drawn


def node_details_html(node: LineageNode) -> str:
    """A few lines about one node, escaped: what the centre of the graph is."""
    data = node.data
    if node.missing:
        return f"<b>{html.escape(node.label)}</b>: not in the catalog"
    if node.type == "version":
        ref = str(data.get("ref", node.label))
        parts = [f"<b>{html.escape(ref)}</b> {html.escape(str(data.get('kind', '')))}"]
        if data.get("partitions"):
            parts.append(html.escape(partitions_text(data["partitions"])))
        if data.get("created_at"):
            parts.append("created " + html.escape(when(datetime.fromisoformat(
                data["created_at"]))))
        parts.append(f"<code>nr.load({html.escape(json.dumps(ref))})</code>")
        return " · ".join(parts)
    parts = [f"<b>{html.escape(node.label)}</b>",
             f"<code>{html.escape(str(data.get('execution_id', '')))}</code>"]
    if data.get("notebook"):
        parts.append(html.escape(str(data["notebook"])))
    if data.get("trigger"):
        parts.append("triggered by " + html.escape(str(data["trigger"])))
    if data.get("error"):
        parts.append('<span style="color:var(--jp-error-color1,#d32f2f)">'
                     + html.escape(shorten(str(data["error"]), 160)) + "</span>")
    return " · ".join(parts)


# -- the widget ---------------------------------------------------------------------
class LineageGraphWidget(widgets.VBox):
    """A lineage graph to explore: click a node to re-centre the graph on it.

    Args:
        graph: what to draw first (any depth and direction).
        theme: ``"light"``, ``"dark"`` or ``"auto"`` (JupyterLab's setting).
        height: the canvas height (CSS).
        hops: how far around a clicked node the re-centred graph reaches.

    Attributes:
        graph: the :class:`LineageGraph` drawn now.
        centre: its root's node id (``version:name@N`` or ``execution:<id>``).
        clicks: every node id a click delivered, oldest first.
        canvas: the drawing (see :mod:`nbripple.widgets.cytoscape`).
    """

    def __init__(self, graph: LineageGraph, *, theme: str = "auto", height: str = "420px",
                 hops: int = 1) -> None:
        self.graph = graph
        self.centre = graph.root
        self.clicks: list[str] = []
        self.hops = hops
        self._history: list[LineageGraph] = []
        self.canvas = GraphCanvas(palette(theme), height=height)
        self.canvas.on_node_click(self._node_clicked)
        self.title = widgets.HTML()
        self.details = widgets.HTML()
        self.message = widgets.HTML()
        self.back_button = widgets.Button(description="back", icon="arrow-left", disabled=True,
                                          tooltip="return to the previous centre",
                                          layout=widgets.Layout(width="auto"))
        self.back_button.on_click(lambda _button: self.back())
        self.refresh_button = widgets.Button(description="refresh", icon="refresh",
                                             tooltip="read the lineage again from the catalog",
                                             layout=widgets.Layout(width="auto"))
        self.refresh_button.on_click(lambda _button: self._guarded(self.refresh))
        bar = widgets.HBox([self.back_button, self.refresh_button, self.title],
                           layout=widgets.Layout(align_items="center"))
        super().__init__([bar, self.canvas.widget, self.details, self.message])
        self.add_class("nbripple-lineage-widget")
        self._draw()

    # -- navigation ---------------------------------------------------------------
    def recenter(self, node_id: str) -> LineageGraph:
        """Draw the graph ``hops`` around ``node_id`` (what a click on it does).

        Raises an NbrippleError when the node is not in the catalog.
        """
        graph = self._workspace().lineage(node_id, depth=self.hops, direction="both")
        if graph.root != self.centre:
            self._history.append(self.graph)
        self.graph = graph
        self._draw()
        return graph

    def back(self) -> LineageGraph:
        """Return to the previous centre (nothing happens at the first one)."""
        if self._history:
            self.graph = self._history.pop()
            self._draw()
        return self.graph

    def refresh(self) -> LineageGraph:
        """Read the graph around the centre again (new runs may have joined it)."""
        self.graph = self._workspace().lineage(self.centre, depth=self.graph.depth,
                                               direction=self.graph.direction)
        self._draw()
        return self.graph

    @property
    def node_ids(self) -> list[str]:
        """The ids of the nodes drawn now."""
        return self.canvas.node_ids

    def close(self) -> None:
        """Close the widget, its canvas and its controls."""
        self.canvas.close()
        for child in self.children:
            close_tree(child)
        super().close()

    # -- internals ----------------------------------------------------------------
    def _node_clicked(self, node_id: str) -> None:
        # Called by the canvas for a click in the browser: record it, then re-centre.
        self.clicks.append(node_id)
        if node_id != self.centre:
            self._guarded(lambda: self.recenter(node_id))

    def _guarded(self, action: Any) -> None:
        try:
            action()
        except NbrippleError as exc:
            self.message.value = ('<span style="color:var(--jp-error-color1,#d32f2f)">'
                                  f"{html.escape(str(exc))}</span>")

    def _workspace(self) -> Handle:
        # The graph's own workspace; a graph built by hand walks the current one.
        return self.graph._workspace or AMBIENT

    def _draw(self) -> None:
        graph = self.graph
        self.centre = graph.root
        self.canvas.show(elements(graph))
        depth = "all" if graph.depth is None else str(graph.depth)
        root = graph.node(graph.root)
        self.title.value = (
            f"<b>{html.escape(root.label)}</b> · {len(graph.nodes)} nodes, "
            f"{len(graph.edges)} edges ({html.escape(graph.direction)}, depth {depth}) · "
            "<small>click a node to re-centre on it</small>"
        )
        self.details.value = node_details_html(root)
        self.message.value = ""
        self.back_button.disabled = not self._history
