"""The module-level API, bound to the current workspace (``import nbripple as nr``).

Records these functions return carry the handle of the workspace that made them; a
query made here (``nr.query``) carries the ambient handle, which reads the workspace
current when the query is used (see :mod:`nbripple.ambient`). The workspace module
(and the catalog) is imported on the first call that needs it, so a module that only
declares queries and artifacts loads none of it.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ambient import AMBIENT
from .ambient import current_workspace as current
from .cards import Card, render_html
from .graph import LineageGraph, LineageStart
from .model import ArtifactVersion, CardRevision, Execution, SearchResults
from .refs import Query, make_query

if TYPE_CHECKING:
    from .display import CardDisplay
    from .workspace import RefLike


def query(
    name: str, *, strict: bool = False, time_partition: datetime | date | str | None = None,
    **partitions: Any,
) -> Query:
    """A query for the newest version of ``name`` whose partitions contain these values.

    >>> nr.query("blessed_model", blessed="true").uri
    'nbripple://blessed_model?blessed=true'
    """
    return make_query(name, partitions, strict=strict, time_partition=time_partition,
                      workspace=AMBIENT)


def get(ref: RefLike) -> ArtifactVersion:
    """Resolve ``name@N``, an ``nbripple://`` URI or a Query to a version.

    Records the version as consumed by the current execution.
    """
    return current().get(ref)


def load(ref: RefLike, *, as_: str | None = None) -> Any:
    """Resolve and load a value; records the version as consumed."""
    return current().load(ref, as_=as_)


def search(
    text: str | None = None,
    *,
    partitions: dict[str, Any] | None = None,
    kind: str | None = None,
    latest_only: bool = True,
    limit: int = 50,
) -> SearchResults:
    """Case-insensitive search over names, descriptions and cards, newest first.

    Every word of ``text`` must appear in one of them. With ``latest_only`` each
    artifact contributes its newest version that matches ``partitions`` and
    ``kind``, if that version matches the text. The
    result is a list that displays as a table in a notebook.
    """
    found = current().search(text, partitions=partitions, kind=kind,
                             latest_only=latest_only, limit=limit)
    return SearchResults(found, text=text, partitions=partitions, kind=kind)


def set_card(ref: RefLike, card: Card | str) -> CardRevision:
    """Add a card revision to a version; earlier revisions are kept."""
    return current().set_card(ref, card)


def card_html(ref: RefLike) -> str:
    """A version's current card rendered to sanitized HTML ('' when it has none)."""
    version = current().resolve(ref)
    return render_html(version.card_markdown or "")


def card(ref: RefLike) -> CardDisplay:
    """The current card of a version, rendered when displayed in a notebook.

    Nothing is recorded as consumed.

    >>> nr.card("blessed_model@3")          # doctest: +SKIP
    """
    from .display import card_display

    return card_display(current().resolve(ref))


def versions(name: str, limit: int | None = None) -> list[ArtifactVersion]:
    """Every version of an artifact, newest first."""
    return current().versions(name, limit)


def execution(execution_id: str) -> Execution:
    """One execution by id (or unique prefix)."""
    return current().execution(execution_id)


def executions(
    notebook: str | None = None, status: str | None = None, limit: int = 50
) -> list[Execution]:
    """Recent executions, newest first (``notebook`` may be a relative path)."""
    if notebook is not None and Path(notebook).exists():
        notebook = str(Path(notebook).resolve())
    return current().executions(notebook=notebook, status=status, limit=limit, sweep=True)


def lineage(ref_or_execution_id: LineageStart, depth: int | None = 1,
            direction: str = "both") -> LineageGraph:
    """The lineage graph around a version or an execution.

    The start is any reference to a version (``"blessed_model@2"``, a URI, a Query,
    an ArtifactVersion) or an execution (its id, a unique prefix, or the Execution).
    ``direction``: ``"up"`` follows the edges backwards (what it came from),
    ``"down"`` forwards (what was made from it), ``"both"`` does the two walks.
    ``depth`` counts hops; ``None`` walks the whole reachable graph (cycle-safe).
    Nothing is recorded as consumed.

    >>> g = nr.lineage("prediction@1", depth=None, direction="up")
    >>> [v.ref for v in g.upstream_versions()]
    ['blessed_model@2']
    """
    return current().lineage(ref_or_execution_id, depth=depth, direction=direction)
