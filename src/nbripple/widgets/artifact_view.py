"""The artifact view: ``nr.show("blessed_model@3")`` or ``version.widget()``.

Four tabs:

- **Overview**: the version, its partitions, when it was made, the execution that
  produced it, the executions that consumed it, and a usage snippet to copy
  (``nr.load("blessed_model@3")``).
- **Object**: kind, URI, size and hash; the schema and first rows of a table, the
  file list of a directory, a small value itself.
- **Card**: the card, rendered from Markdown and sanitized (no script runs).
- **Lineage**: the lineage graph one hop around the version; click to walk on. It
  is drawn when the tab is first opened (a canvas drawn hidden has no size).

Showing a version never records it as consumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..ambient import AMBIENT
from ..display import (
    card_block_html,
    card_excerpt,
    code_html,
    esc,
    field_table,
    grid_table,
    human_size,
    partitions_text,
    run_title,
    schema_html,
    table_preview_html,
    usage_snippet,
    value_preview_html,
    when,
)
from ..graph import LineageGraph, LineageNode
from ..model import ArtifactVersion, Handle
from . import close_tree
from .graph import LineageGraphWidget

if TYPE_CHECKING:
    from ..workspace import RefLike

TAB_TITLES = ("Overview", "Object", "Card", "Lineage")
DIRECTORY_LISTING_LIMIT = 200

def _execution_line(node: LineageNode) -> str:
    """``ops.ipynb · succeeded (3f2a9c1b)``, escaped, with the failure marked."""
    title, _, status = node.label.rpartition(" · ")
    text = (f"{esc(run_title(title or status))}{' · ' + esc(status) if title else ''} "
            f"{code_html(str(node.data.get('execution_id', ''))[:8])}")
    if node.failed:
        text = f'<span style="color:var(--jp-error-color1,#d32f2f)">✗ {text}</span>'
    return text


class ArtifactView(widgets.VBox):
    """One version in tabs: Overview, Object, Card and Lineage.

    Attributes:
        version: the version shown.
        tabs: the ``ipywidgets.Tab`` (``tabs.titles`` are :data:`TAB_TITLES`).
        snippet: a text box holding the usage snippet, ready to copy.
        overview, object, card: the HTML widgets of the first three tabs.
        lineage: the :class:`LineageGraph` one hop around the version.
        workspace: the handle of the workspace it reads from (``workspace=``, else the
            version's own, else the current workspace).
    """

    def __init__(self, version: ArtifactVersion, *, preview_rows: int = 10,
                 theme: str = "auto", workspace: Handle | None = None) -> None:
        handle = workspace or version._workspace or AMBIENT
        self.version = handle.resolve(version)  # bound to its workspace
        self.workspace: Handle = self.version._workspace or handle
        self.theme = theme
        self.preview_rows = preview_rows
        self.lineage: LineageGraph = self.workspace.lineage(self.version, depth=1,
                                                            direction="both")
        self.snippet = widgets.Text(value=usage_snippet(self.version), description="use it",
                                    layout=widgets.Layout(width="min(100%, 36em)"))
        self.snippet.observe(self._keep_snippet, names="value")
        self.overview = widgets.HTML(self._overview_html())
        self.object = widgets.HTML(self._object_html())
        self.card = widgets.HTML(card_block_html(self.version.card_markdown,
                                                 ref=self.version.ref))
        self._graph_widget: LineageGraphWidget | None = None
        self._lineage_box = widgets.VBox([widgets.HTML(
            "<i>the graph is drawn when this tab opens</i>")])
        self.tabs = widgets.Tab(
            children=[widgets.VBox([self.overview, self.snippet]), self.object, self.card,
                      self._lineage_box],
            titles=TAB_TITLES,
        )
        self.tabs.observe(self._tab_selected, names="selected_index")
        title = widgets.HTML(
            f"<b>{esc(self.version.ref)}</b> <small>{esc(self.version.kind)}"
            + (f" · {esc(partitions_text(self.version.partitions))}"
               if self.version.partitions else "") + "</small>")
        super().__init__([title, self.tabs])
        self.add_class("nbripple-artifact-view")

    # -- tabs ---------------------------------------------------------------------
    @property
    def tab_titles(self) -> tuple[str, ...]:
        """The tab titles, in order."""
        return tuple(self.tabs.titles)

    def open_tab(self, title: str) -> None:
        """Select a tab by title, as a click on it does."""
        if title not in TAB_TITLES:
            raise ValueError(f"no tab {title!r}; the tabs are {', '.join(TAB_TITLES)}")
        self.tabs.selected_index = TAB_TITLES.index(title)

    @property
    def lineage_widget(self) -> LineageGraphWidget:
        """The graph of the Lineage tab (drawn now if the tab was never opened)."""
        if self._graph_widget is None:
            self._graph_widget = LineageGraphWidget(self.lineage, theme=self.theme)
            self._lineage_box.children = [self._graph_widget]
        return self._graph_widget

    def _tab_selected(self, change: dict[str, object]) -> None:
        if change["new"] == TAB_TITLES.index("Lineage"):
            self.lineage_widget  # noqa: B018  (drawn once the tab is visible)

    def _keep_snippet(self, change: dict[str, object]) -> None:
        # The box is for copying: an accidental edit is undone.
        expected = usage_snippet(self.version)
        if change["new"] != expected:
            self.snippet.value = expected

    # -- content ------------------------------------------------------------------
    def _overview_html(self) -> str:
        v = self.version
        graph = self.lineage
        root = graph.root
        producers = [graph.node(e.source) for e in graph.edges
                     if e.target == root and e.kind == "produced"]
        consumers: dict[str, LineageNode] = {}
        for edge in graph.edges:
            if edge.source == root and edge.kind in ("consumed", "triggered"):
                consumers.setdefault(edge.target, graph.node(edge.target))
        produced_by = ", ".join(_execution_line(n) for n in producers) or (
            code_html(v.execution_id) if v.execution_id else "")
        consumed_by = "<br>".join(_execution_line(n) for n in consumers.values()) or \
            "<i>no execution has consumed it yet</i>"
        latest = ""
        try:
            newest = self.workspace.latest_version_number(v.name)
            if newest > v.version:
                latest = f"a newer version exists: {code_html(f'{v.name}@{newest}')}"
        except Exception:  # the overview shows what it can
            latest = ""
        rows = [
            ("version", code_html(v.ref)),
            ("URI", code_html(v.artifact_uri)),
            ("partitions", esc(partitions_text(v.partitions)) or "<i>none</i>"),
            ("time partition", esc(v.time_partition.isoformat()) if v.time_partition else ""),
            ("kind", esc(v.kind)),
            ("created", esc(when(v.created_at))),
            ("produced by", produced_by),
            ("consumed by", consumed_by),
            ("description", esc(v.description)),
            ("card", esc(card_excerpt(v.card_markdown))),
            ("note", latest),
        ]
        return field_table(rows) + "<div><small>copy the line below to use it:</small></div>"

    def _object_html(self) -> str:
        v = self.version
        rows = [
            ("kind", esc(v.kind)),
            ("python type", code_html(v.python_type) if v.python_type else ""),
            ("URI", code_html(v.uri) if v.uri else "<i>stored inline in the catalog</i>"),
            ("size", esc(f"{human_size(v.size)} ({v.size:,} bytes)")),
            ("hash", code_html(f"sha256:{v.content_hash}")),
            ("rows", esc(f"{v.num_rows:,}") if v.num_rows is not None else ""),
        ]
        body = field_table(rows)
        if v.kind == "table":
            body += "<h4>schema</h4>" + schema_html(v.schema)
            body += "<h4>first rows</h4>" + table_preview_html(v, self.preview_rows)
        elif v.kind == "directory":
            body += "<h4>files</h4>" + self._directory_html()
        elif v.kind == "file":
            body += field_table([("file name", esc(v.meta.get("filename", "")))])
        elif v.kind == "value":
            body += "<h4>value</h4>" + (value_preview_html(v) or
                                        "<i>stored as a blob; v.load() reads it</i>")
        elif v.kind == "object":
            body += ("<p><i>a pickled Python object: loading it runs code chosen by its "
                     "producer, so load objects only from producers you trust</i></p>")
        return body

    def _directory_html(self) -> str:
        v = self.version
        try:
            files = self.workspace.directory_entries(v)
        except Exception as exc:  # a missing blob is reported, not raised
            return f"<i>the file list cannot be read: {esc(exc)}</i>"
        shown = files[:DIRECTORY_LISTING_LIMIT]
        rows = [[code_html(str(f.get("path", ""))), esc(human_size(f.get("size")))]
                for f in shown]
        more = (f"<div><small>… and {len(files) - len(shown):,} more files</small></div>"
                if len(files) > len(shown) else "")
        return (grid_table(["path", "size"], rows)
                + f"<div><small>{len(files):,} files</small></div>{more}")

    def close(self) -> None:
        """Close the view and every widget in it (the graph included, drawn or not)."""
        for child in self.children:
            close_tree(child)
        super().close()

    def __repr__(self) -> str:
        return f"<ArtifactView {self.version.ref}>"


def show(ref: RefLike, *, theme: str = "auto") -> ArtifactView:
    """The artifact view of a version: tabs Overview / Object / Card / Lineage.

    ``ref`` is anything ``nr.get`` accepts; nothing is recorded as consumed.

    >>> nr.show("blessed_model@3")       # doctest: +SKIP
    """
    return ArtifactView(AMBIENT.resolve(ref), theme=theme)
