"""Rich display: what a notebook shows when a cell evaluates to an nbripple object.

:class:`~nbripple.model.ArtifactVersion`, :class:`~nbripple.model.Execution`,
:class:`~nbripple.graph.LineageGraph` and :class:`~nbripple.model.SearchResults`
(what ``nr.search`` returns) get a plain one-line ``__repr__`` and an HTML summary
(``_repr_html_``) from the renderers here (the presenter ``import nbripple`` installs
calls them); ``nr.card(ref)`` returns a :class:`CardDisplay`.
These renderers need no widgets, so they also show in saved notebooks and on
nbviewer. They render the records they are given: what a summary needs beyond the
record (the producing execution, a table's first rows) they ask of the record's
workspace handle, and a record without one shows what it holds.

Every piece of user text (names, partition values, parameters, error messages,
table cells) goes through :func:`html.escape`; cards go through
:func:`nbripple.cards.render_html` (Markdown, then sanitized: no script survives).
Displaying never records a consumption.

Example::

    v = nr.get("blessed_model@3")
    v                       # in a notebook: the HTML summary, a table shows its first rows
    nr.search("model")      # a table of the matching versions
    nr.card("blessed_model@3")
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cards import render_html
from .model import ArtifactVersion, Execution, SearchResults, attached

if TYPE_CHECKING:
    from .graph import LineageGraph, LineageNode

__all__ = ["CardDisplay", "SearchResults", "TablePreview", "card_display", "execution_html",
           "lineage_html", "search_results_html", "table_preview", "version_html"]

PREVIEW_ROWS = 5
"""Rows of a table shown under its version's HTML summary."""

PREVIEW_MAX_BYTES = 64 * 1024 * 1024
"""Tables bigger than this are not read for a preview (``v.load()`` reads them)."""

EXCERPT_CHARS = 200
CELL_CHARS = 80
VALUE_CHARS = 4000

_BOX = ("font-family:var(--jp-ui-font-family,sans-serif);font-size:var(--jp-ui-font-size1,13px);"
        "border:1px solid var(--jp-border-color2,#e0e0e0);border-radius:4px;padding:6px 10px;"
        "margin:2px 0;max-width:100%;overflow-x:auto")
_TH = "text-align:left;padding:1px 12px 1px 0;color:var(--jp-ui-font-color2,#757575);" \
      "font-weight:normal;vertical-align:top;white-space:nowrap"
_TD = "text-align:left;padding:1px 12px 1px 0;vertical-align:top"
_CODE = "font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,12px)"
_STATUS_COLOURS = {
    "succeeded": "var(--jp-success-color1,#388e3c)",
    "failed": "var(--jp-error-color1,#d32f2f)",
    "running": "var(--jp-warn-color1,#f57c00)",
    "queued": "var(--jp-ui-font-color2,#757575)",
    "cancelled": "var(--jp-ui-font-color2,#757575)",
}


# -- small formatters ---------------------------------------------------------------
def esc(value: object) -> str:
    """``html.escape`` of any value's text (quotes included)."""
    return html.escape(str(value), quote=True)


def human_size(size: int | None) -> str:
    """``1234567`` → ``'1.2 MB'`` (decimal units, as the CLI prints them)."""
    if size is None:
        return ""
    from rich.filesize import decimal

    return decimal(size)


def when(value: datetime | None) -> str:
    """A time in the kernel's local zone, to the second: ``2026-05-01 14:03:22 CEST``."""
    if value is None:
        return ""
    local = value.astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}".rstrip()


def partitions_text(partitions: Mapping[str, str]) -> str:
    """``{'blessed': 'true'}`` → ``'blessed=true'``."""
    return ", ".join(f"{key}={value}" for key, value in partitions.items())


def card_excerpt(markdown: str | None, limit: int = EXCERPT_CHARS) -> str:
    """The card's first words as one line of plain text, at most ``limit`` characters."""
    if not markdown:
        return ""
    flat = " ".join(line.strip() for line in markdown.strip().splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def usage_snippet(version: ArtifactVersion) -> str:
    """The line that loads this version in a notebook: ``nr.load("blessed_model@3")``."""
    return f"nr.load({json.dumps(version.ref)})"


TITLE_CHARS = 40


def run_title(label: str) -> str:
    """A short name for a run's label: a Jupyter kernel's command line (``ipykernel_launcher.py
    -f /long/path/kernel-….json``) reads ``Jupyter kernel``; others are cut to
    :data:`TITLE_CHARS` characters."""
    if label.startswith(("ipykernel_launcher", "-m ipykernel")):
        return "Jupyter kernel"
    return shorten(label, TITLE_CHARS)


def execution_title(execution: Execution) -> str:
    """What a person calls a run: the notebook's file name, else its (short) label or kind."""
    if execution.notebook:
        return Path(execution.notebook).name
    return run_title(execution.label) if execution.label else execution.kind


def field_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of (label, value); both are HTML already, and rows with an
    empty value are left out."""
    body = "".join(f'<tr><th style="{_TH}">{label}</th><td style="{_TD}">{value}</td></tr>'
                   for label, value in rows if value)
    return f'<table style="border-collapse:collapse;margin:4px 0">{body}</table>'


def grid_table(header: list[str], rows: list[list[str]], *, code: bool = False) -> str:
    """A table with a header row; cells are HTML already (``code``: in a monospace font)."""
    cell = (_TD + (";" + _CODE if code else "")
            + ";border-top:1px solid var(--jp-border-color2,#e0e0e0)")
    head = "".join(f'<th style="{_TH}">{h}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{cell}">{c}</td>' for c in row) + "</tr>"
                   for row in rows)
    return (f'<table style="border-collapse:collapse;margin:4px 0"><thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody></table>")


def _badge(text: str, colour: str = "var(--jp-ui-font-color2,#757575)") -> str:
    return (f'<span style="border:1px solid {colour};color:{colour};border-radius:3px;'
            f'padding:0 4px;font-size:90%;margin-left:6px">{esc(text)}</span>')


def _nowrap(html_text: str) -> str:
    return f'<span style="white-space:nowrap">{html_text}</span>'


def code_html(text: str) -> str:
    """``text`` escaped in a ``<code>`` element."""
    return f'<code style="{_CODE}">{esc(text)}</code>'


# -- lookups that a summary needs (never fatal: a summary shows what it can) -------------
def producer_of(version: ArtifactVersion) -> Execution | None:
    """The execution that produced ``version``, or None if it cannot be read now."""
    if version.execution_id is None or version._workspace is None:
        return None
    try:
        return version._workspace.execution(version.execution_id)
    except Exception:  # a locked or unreachable catalog must not break a repr
        return None


def producer_text(version: ArtifactVersion, execution: Execution | None) -> str:
    """``ops.ipynb (notebook 3f2a9c1b, succeeded)``, or the bare id when unknown."""
    if version.execution_id is None:
        return ""
    if execution is None:
        return f"execution {version.execution_id[:8]}"
    return (f"{execution_title(execution)} ({execution.kind} {execution.id[:8]}, "
            f"{execution.status})")


# -- tables ------------------------------------------------------------------------
@dataclass(frozen=True)
class TablePreview:
    """The first rows of a stored table, as text cells (not yet escaped)."""

    columns: list[str]
    types: list[str]
    rows: list[list[str]]
    total_rows: int | None


def _cell(value: Any) -> str:
    text = "null" if value is None else str(value)
    return shorten(text.replace("\n", " "), CELL_CHARS)


def table_preview(version: ArtifactVersion, rows: int = PREVIEW_ROWS) -> TablePreview:
    """The first ``rows`` rows of a table version, read through its workspace handle
    (verified, never recorded as consumed).

    Raises ValueError for a version that is not a table (or too big to preview).
    """
    if version.kind != "table":
        raise ValueError(f"{version.ref} is a {version.kind}, not a table")
    table = attached(version._workspace, version.ref).table_preview(version, rows)
    if table is None:
        raise ValueError(f"{version.ref} is too big for a preview; v.load() reads it")
    schema = table.schema
    return TablePreview(
        columns=list(schema.names),
        types=[str(t) for t in schema.types],
        rows=[[_cell(record.get(name)) for name in schema.names]
              for record in table.slice(0, rows).to_pylist()],
        total_rows=version.num_rows if version.num_rows is not None else table.num_rows,
    )


def table_preview_html(version: ArtifactVersion, rows: int = PREVIEW_ROWS) -> str:
    """The first rows of a table version as an HTML table, or a note saying why not."""
    if version.size > PREVIEW_MAX_BYTES:
        return (f"<div><i>no preview: the table is {esc(human_size(version.size))}; "
                f"{code_html(usage_snippet(version))} reads it</i></div>")
    try:
        preview = table_preview(version, rows)
    except Exception as exc:  # a missing or corrupt blob is reported, not raised
        return f"<div><i>no preview: {esc(exc)}</i></div>"
    header = [f"{esc(c)}<br><small>{esc(t)}</small>" for c, t in
              zip(preview.columns, preview.types, strict=True)]
    body = [[esc(c) for c in row] for row in preview.rows]
    total = preview.total_rows
    more = (f"<div><small>first {len(preview.rows)} of {total:,} rows</small></div>"
            if total is not None and total > len(preview.rows) else "")
    return grid_table(header, body, code=True) + more


def schema_html(schema: list[dict[str, str]] | None) -> str:
    """A table schema (``[{"name": ..., "type": ...}]``) as an HTML table."""
    if not schema:
        return ""
    rows = [[esc(field.get("name", "")), esc(field.get("type", ""))] for field in schema]
    return grid_table(["column", "type"], rows, code=True)


def value_preview_html(version: ArtifactVersion, limit: int = VALUE_CHARS) -> str:
    """A small JSON value, pretty-printed and escaped (inline values only)."""
    if version.kind != "value" or version.inline_value is None:
        return ""
    try:
        text = json.dumps(json.loads(version.inline_value), indent=2, ensure_ascii=False)
    except ValueError:
        text = version.inline_value
    return f'<pre style="{_CODE};margin:4px 0">{esc(shorten(text, limit))}</pre>'


# -- versions ------------------------------------------------------------------------
def version_text(version: ArtifactVersion) -> str:
    """The one-line ``repr`` of a version (no catalog access)."""
    parts = [version.ref, version.kind]
    if version.partitions:
        parts.append(partitions_text(version.partitions))
    if version.time_partition is not None:
        parts.append(f"time_partition={version.time_partition.isoformat()}")
    parts.append(human_size(version.size))
    parts.append(when(version.created_at))
    if version.execution_id:
        parts.append(f"by execution {version.execution_id[:8]}")
    excerpt = card_excerpt(version.card_markdown, 60)
    if excerpt:
        parts.append(f"card: {excerpt!r}")
    return f"<ArtifactVersion {' · '.join(p for p in parts if p)}>"


def version_html(version: ArtifactVersion, *, preview_rows: int = PREVIEW_ROWS) -> str:
    """The HTML summary of a version: what it is, where it came from, its card's first
    words and, for a table, its first rows."""
    producer = producer_text(version, producer_of(version))
    kind = version.kind + (f" ({version.python_type})" if version.python_type else "")
    rows = [
        ("partitions", esc(partitions_text(version.partitions))),
        ("time partition", esc(version.time_partition.isoformat())
         if version.time_partition else ""),
        ("kind", esc(kind)),
        ("size", esc(human_size(version.size))
         + (f" · {version.num_rows:,} rows" if version.num_rows is not None else "")),
        ("created", esc(when(version.created_at))),
        ("produced by", esc(producer)),
        ("description", esc(version.description)),
        ("card", esc(card_excerpt(version.card_markdown))),
        ("load", code_html(usage_snippet(version)) if version.version > 0 else ""),
        ("staged", "in this run: it gets its number when the run succeeds"
         if version.version == 0 else ""),
    ]
    body = field_table(rows)
    if version.kind == "table" and preview_rows > 0:
        body += table_preview_html(version, preview_rows)
    elif version.kind == "value":
        body += value_preview_html(version, 600)
    title = f"<b>{esc(version.ref)}</b>{_badge(version.kind)}"
    return f'<div class="nbripple nbripple-version" style="{_BOX}">{title}{body}</div>'


# -- executions -------------------------------------------------------------------------
def execution_text(execution: Execution) -> str:
    """The one-line ``repr`` of an execution (no catalog access)."""
    parts = [execution.kind, execution_title(execution), execution.status]
    if execution.duration_s is not None:
        parts.append(f"{execution.duration_s:.1f} s")
    parts.append(f"started {when(execution.started_at)}")
    if execution.error:
        parts.append(f"error: {execution.error.get('ename', '')}")
    return f"<Execution {execution.id[:8]} {' · '.join(p for p in parts if p)}>"


def _status_badge(status: str) -> str:
    return _badge(status, _STATUS_COLOURS.get(status, "var(--jp-ui-font-color2,#757575)"))


def _trigger_text(execution: Execution) -> str:
    trigger = execution.trigger or {}
    parts = [str(trigger.get("type", ""))]
    if trigger.get("plan"):
        parts.append(f"plan {trigger['plan']}")
    if execution.trigger_artifact and execution.trigger_version:
        parts.append(f"by {execution.trigger_artifact}@{execution.trigger_version}")
    if trigger.get("of"):
        parts.append(f"of {trigger['of']}")
    return " ".join(p for p in parts if p)


def execution_html(execution: Execution) -> str:
    """The HTML summary of an execution: status, timings, parameters, inputs, outputs."""
    try:
        inputs = [f"{code_html(i.ref)}" + (f" as {esc(i.parameter)}" if i.parameter else "")
                  for i in execution.inputs]
        outputs = [code_html(v.ref) for v in execution.outputs]
    except Exception as exc:  # a locked catalog: show the rest
        inputs, outputs = [f"<i>unavailable: {esc(exc)}</i>"], []
    error = execution.error or {}
    error_text = f"{error.get('ename', '')}: {error.get('evalue', '')}".strip(": ")
    if error.get("cell_index") is not None:
        error_text += f" (cell {error['cell_index']})"
    duration = execution.duration_s
    rows = [
        ("notebook", code_html(execution.notebook) if execution.notebook else ""),
        ("label", esc(execution.label or "") if not execution.notebook else ""),
        ("started", esc(when(execution.started_at))),
        ("finished", esc(when(execution.finished_at))),
        ("duration", esc(f"{duration:.2f} s") if duration is not None else ""),
        ("trigger", esc(_trigger_text(execution))),
        ("parameters", code_html(json.dumps(execution.parameters, default=str))
         if execution.parameters else ""),
        ("inputs", ", ".join(inputs) or "<i>none</i>"),
        ("outputs", ", ".join(outputs) or "<i>none</i>"),
        ("error", f'<span style="color:{_STATUS_COLOURS["failed"]}">{esc(error_text)}</span>'
         if error_text else ""),
        ("parent", code_html(execution.parent_id) if execution.parent_id else ""),
        ("executed notebook", code_html(f'nr.execution("{execution.id}").output_notebook')
         if execution.output_notebook_hash else ""),
    ]
    title = (f"<b>{esc(execution_title(execution))}</b> {code_html(execution.id)}"
             f"{_badge(execution.kind)}{_status_badge(execution.status)}")
    body = field_table(rows)
    return f'<div class="nbripple nbripple-execution" style="{_BOX}">{title}{body}</div>'


# -- lineage ------------------------------------------------------------------------------
def _node_html(node: LineageNode) -> str:
    if node.missing:
        return f"{esc(node.label)} <i>(not in the catalog)</i>"
    if node.type == "version":
        extra = partitions_text(node.data.get("partitions") or {})
        return code_html(node.label) + (f" <small>{esc(extra)}</small>" if extra else "")
    status = str(node.data.get("status", ""))
    return (f"{esc(run_title(node.label.rsplit(' · ', 1)[0]))} "
            f"{code_html(str(node.data.get('execution_id', ''))[:8])}{_status_badge(status)}")


def lineage_html(graph: LineageGraph) -> str:
    """The HTML summary of a lineage graph: its root, then each edge, and the text tree."""
    depth = "all" if graph.depth is None else str(graph.depth)
    root = graph.node(graph.root)
    title = (f"<b>lineage of {esc(root.label)}</b>"
             f"{_badge(f'{graph.direction}, depth {depth}')}"
             f"{_badge(f'{len(graph.nodes)} nodes, {len(graph.edges)} edges')}")
    by_id = {node.id: node for node in graph.nodes}
    rows = [[_node_html(by_id[e.source]) if e.source in by_id else esc(e.source),
             esc(e.kind) + " →",
             _node_html(by_id[e.target]) if e.target in by_id else esc(e.target)]
            for e in graph.edges]
    table = (grid_table(["from", "edge", "to"], rows) if rows
             else "<div><i>no edges recorded</i></div>")
    tree = (f'<details><summary>as a tree</summary><pre style="{_CODE}">'
            f"{esc(graph.to_text())}</pre></details>")
    hint = "<div><small>g.widget() draws it; click a node to walk the graph</small></div>"
    return f'<div class="nbripple nbripple-lineage" style="{_BOX}">{title}{table}{tree}{hint}</div>'


# -- search results -----------------------------------------------------------------------
def search_results_text(results: SearchResults) -> str:
    """The ``repr`` of a search: what was asked, then one line per version found."""
    head = f"<SearchResults for {results.describe()}: {len(results)} version"
    head += "" if len(results) == 1 else "s"
    if not results:
        return head + ">"
    lines = [f"  {version_text(v)[len('<ArtifactVersion '):-1]}" for v in results]
    return head + "\n" + "\n".join(lines) + "\n>"


def search_results_html(results: SearchResults) -> str:
    """The matches of a search as an HTML table (name, version, partitions, kind, size,
    created, producer, card excerpt)."""
    count = f"{len(results)} version{'' if len(results) == 1 else 's'}"
    title = f"<b>search {esc(results.describe())}</b>{_badge(count)}"
    box = f'<div class="nbripple nbripple-search" style="{_BOX}">'
    if not results:
        hint = f"nothing matches; {code_html('nr.search()')} lists every artifact's newest version"
        return f"{box}{title}<div><i>{hint}</i></div></div>"
    producers: dict[str, Execution | None] = {}
    rows = []
    for version in results:
        key = version.execution_id or ""
        if key and key not in producers:
            producers[key] = producer_of(version)
        rows.append([
            f"<b>{esc(version.name)}</b>",
            esc(version.version),
            esc(partitions_text(version.partitions)),
            esc(version.kind),
            _nowrap(esc(human_size(version.size))),
            _nowrap(esc(when(version.created_at))),
            esc(producer_text(version, producers.get(key))),
            esc(card_excerpt(version.card_markdown, 80)),
        ])
    header = ["name", "version", "partitions", "kind", "size", "created", "producer", "card"]
    return f"{box}{title}{grid_table(header, rows)}</div>"


# -- cards ----------------------------------------------------------------------------------
def card_block_html(markdown: str | None, *, ref: str = "") -> str:
    """A card rendered to sanitized HTML in a box, or a note saying how to add one."""
    if not markdown:
        python = f"nr.set_card({json.dumps(ref or 'name@N')}, nr.ModelCard(markdown))"
        magic = f"%%nbripple card {ref or 'name@N'}"
        return (f'<div class="nbripple-card" style="{_BOX}"><i>no card yet: add one with '
                f"{code_html(python)} or {code_html(magic)}</i></div>")
    return f'<div class="nbripple-card" style="{_BOX}">{render_html(markdown)}</div>'


@dataclass(frozen=True)
class CardDisplay:
    """A version's card, rendered when displayed (what ``nr.card(ref)`` returns)."""

    ref: str
    card_type: str | None
    markdown: str | None

    @property
    def html(self) -> str:
        """The card as sanitized HTML ('' when the version has no card)."""
        return render_html(self.markdown) if self.markdown else ""

    def _repr_html_(self) -> str:
        kind = f"{self.card_type} card" if self.card_type else "card"
        title = f"<div><small>{esc(kind)} of {code_html(self.ref)}</small></div>"
        return title + card_block_html(self.markdown, ref=self.ref)

    def __repr__(self) -> str:
        if not self.markdown:
            return f"<no card on {self.ref}>"
        return f"<{self.card_type or 'card'} card of {self.ref}>\n{self.markdown}"


def card_display(version: ArtifactVersion) -> CardDisplay:
    """The current card of ``version``, rendered when displayed (``nr.card`` returns it)."""
    return CardDisplay(version.ref, version.card_type, version.card_markdown)

