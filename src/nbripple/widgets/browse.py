"""The artifact browser: ``nr.browse()``.

A search box, a partition filter (``blessed=true, env=prod``), a kind filter and an
"all versions" switch above a results table (name, version, partitions, created,
producer) that follows every keystroke; selecting a row opens the artifact view
(:class:`~nbripple.widgets.artifact_view.ArtifactView`) below the table.

The methods :meth:`Browser.set_query`, :meth:`Browser.set_partitions`,
:meth:`Browser.set_kind` and :meth:`Browser.select` change the same widget values
a user changes in the browser, so they run the same callbacks.
"""

from __future__ import annotations

import html
import shlex
from typing import Any

import ipywidgets as widgets

from ..ambient import current_workspace
from ..display import execution_title, partitions_text, shorten
from ..errors import NbrippleError
from ..model import KINDS, ArtifactVersion, Execution, Handle
from . import close_tree
from .artifact_view import ArtifactView

COLUMNS = (("name", 30), ("version", 7), ("partitions", 30), ("created", 16),
           ("producer", 26))
"""The results table's columns and their widths in characters."""

_NBSP = "\u00a0"  # option labels collapse ordinary spaces; these keep the columns aligned
_STYLE = """<style>
.nbripple-results select, .nbripple-results-header {
  font-family: var(--jp-code-font-family, monospace);
  font-size: var(--jp-code-font-size, 12px);
}
.nbripple-results-header { white-space: pre; padding: 0 0 2px 4px;
  color: var(--jp-ui-font-color2, #757575); }
</style>"""


def parse_partition_filter(text: str) -> dict[str, str]:
    """``'blessed=true, env=prod'`` → ``{'blessed': 'true', 'env': 'prod'}``.

    Entries are separated by commas or spaces; quote a value that holds spaces
    (``note="two words"``). Raises ValueError on an entry without ``=``.
    """
    try:
        words = shlex.split(text.replace(",", " "))
    except ValueError as exc:
        raise ValueError(f"partition filter: {exc} (close the quote)") from exc
    found: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ValueError(f"partition filter: write {word!r} as key=value "
                             "(e.g. blessed=true, env=prod)")
        found[key] = value
    return found


def _column(text: str, width: int) -> str:
    return shorten(text, width).ljust(width).replace(" ", _NBSP)


class Browser(widgets.VBox):
    """Search artifact versions as you type; select one to see it in full.

    Attributes:
        query, partitions, kind, all_versions: the filter widgets.
        results: the ``ipywidgets.Select`` listing the matches (values are refs).
        rows: the matching versions, in the order shown.
        view: the artifact view of the selected row (None before a selection).
        status: a one-line message (counts, or why a filter is not applied).
    """

    def __init__(self, text: str = "", *, partitions: str = "", kind: str | None = None,
                 limit: int = 50, all_versions: bool = False,
                 workspace: Handle | None = None) -> None:
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
        self.limit = limit
        # The workspace current now: a later nr.use(...) does not change an open browser.
        self.workspace: Handle = workspace or current_workspace()
        self.rows: list[ArtifactVersion] = []
        self.view: ArtifactView | None = None
        self._producers: dict[str, str] = {}
        self._updating = False
        self.query = widgets.Text(value=text, placeholder="words in names, descriptions, cards",
                                  description="search", continuous_update=True)
        self.partitions = widgets.Text(value=partitions, placeholder="key=value, …",
                                       description="partitions", continuous_update=True)
        self.kind = widgets.Dropdown(options=[("any", ""), *((k, k) for k in KINDS)],
                                     value=kind or "", description="kind",
                                     layout=widgets.Layout(width="12em"))
        self.all_versions = widgets.Checkbox(value=all_versions, description="all versions",
                                             indent=False, layout=widgets.Layout(width="auto"))
        self.status = widgets.HTML()
        header = "  ".join(_column(title, width) for title, width in COLUMNS)
        self.header = widgets.HTML(f'<div class="nbripple-results-header">'
                                   f"{html.escape(header.replace(_NBSP, ' '))}</div>")
        self.results = widgets.Select(options=[], rows=10, layout=widgets.Layout(width="100%"))
        self.results.add_class("nbripple-results")
        self.view_box = widgets.VBox()
        for control in (self.query, self.partitions, self.kind, self.all_versions):
            control.observe(self._filters_changed, names="value")
        self.results.observe(self._row_selected, names="value")
        filters = widgets.HBox([self.query, self.partitions, self.kind, self.all_versions],
                               layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([widgets.HTML(_STYLE), filters, self.status, self.header,
                          self.results, self.view_box])
        self.add_class("nbripple-browser")
        self.refresh()

    # -- what a user does ---------------------------------------------------------
    def set_query(self, text: str) -> None:
        """Type ``text`` into the search box."""
        self.query.value = text

    def set_partitions(self, text: str) -> None:
        """Type ``text`` (``key=value, ...``) into the partition filter."""
        self.partitions.value = text

    def set_kind(self, kind: str | None) -> None:
        """Choose a kind (None: any)."""
        self.kind.value = kind or ""

    def select(self, ref: str) -> ArtifactView:
        """Select the row of ``ref`` (``name@N``) and return the view that opens."""
        refs = [v.ref for v in self.rows]
        if ref not in refs:
            shown = ", ".join(refs[:8]) + (", …" if len(refs) > 8 else "")
            raise ValueError(f"{ref} is not among the results ({shown or 'none'}); "
                             "change the filters to find it")
        self.results.value = ref
        assert self.view is not None and self.view.version.ref == ref
        return self.view

    # -- callbacks ----------------------------------------------------------------
    def _filters_changed(self, change: dict[str, Any]) -> None:
        self.refresh()

    def _row_selected(self, change: dict[str, Any]) -> None:
        ref = change["new"]
        if self._updating or not ref or (self.view is not None and self.view.version.ref == ref):
            return
        version = next(v for v in self.rows if v.ref == ref)
        old, self.view = self.view, ArtifactView(version)
        self.view_box.children = [self.view]
        if old is not None:
            old.close()  # its widgets, graph included, leave the kernel and the page

    def refresh(self) -> list[ArtifactVersion]:
        """Search again with the current filters and update the table."""
        try:
            partitions = parse_partition_filter(self.partitions.value)
            found = self.workspace.search(
                self.query.value or None, partitions=partitions, kind=self.kind.value or None,
                latest_only=not self.all_versions.value, limit=self.limit)
        except (NbrippleError, ValueError) as exc:
            self.status.value = ('<span style="color:var(--jp-error-color1,#d32f2f)">'
                                 f"{html.escape(str(exc))}</span>")
            return self.rows
        self.rows = found
        # The open view's row stays selected whenever it is listed. A Select whose
        # options change selects their first one: clear the selection first, and keep
        # these changes from opening views.
        selected = self.view.version.ref if self.view is not None else None
        self._updating = True
        try:
            self.results.index = None
            self.results.options = [(self._label(v), v.ref) for v in found]
            if selected is not None and selected in {v.ref for v in found}:
                self.results.value = selected
        finally:
            self._updating = False
        count = f"{len(found)} version{'' if len(found) == 1 else 's'}"
        more = f" (the first {self.limit})" if len(found) >= self.limit else ""
        self.status.value = f"<small>{count}{more}; select one to open it</small>" if found \
            else "<small>nothing matches</small>"
        return self.rows

    # -- rows ---------------------------------------------------------------------
    def _label(self, version: ArtifactVersion) -> str:
        created = version.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
        cells = [version.name, f"@{version.version}", partitions_text(version.partitions),
                 created, self._producer(version.execution_id)]
        row = (_NBSP * 2).join(_column(text, width)
                               for text, (_title, width) in zip(cells, COLUMNS, strict=True))
        return row.rstrip(_NBSP)

    def _producer(self, execution_id: str | None) -> str:
        if execution_id is None:
            return ""
        if execution_id not in self._producers:
            try:
                execution: Execution | None = self.workspace.execution(execution_id)
            except NbrippleError:
                execution = None
            self._producers[execution_id] = _producer_label(execution, execution_id)
        return self._producers[execution_id]

    def close(self) -> None:
        """Close the browser, its view and its controls."""
        for child in self.children:
            close_tree(child)
        super().close()


def _producer_label(execution: Execution | None, execution_id: str) -> str:
    if execution is None:
        return execution_id[:8]
    return f"{execution_title(execution)} {execution.id[:8]}"


def browse(text: str = "", *, partitions: str = "", kind: str | None = None,
           limit: int = 50) -> Browser:
    """Search the catalog interactively: results follow your typing; select a row to
    open the artifact view.

    >>> nr.browse("model", partitions="blessed=true")   # doctest: +SKIP
    """
    return Browser(text, partitions=partitions, kind=kind, limit=limit)
