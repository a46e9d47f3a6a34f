"""What the REST API reads and does, as JSON shapes: one function per endpoint, each
calling the workspace and its collaborators and returning a shape of :mod:`.wire`.

The handlers of :mod:`nbripple.server` call these and nothing else, so a rule (what a
version's consumers are, which name is valid) lives here once.

Example::

    version_detail(ws, "blessed_model", 3)["producer"]["id"]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from .. import launchplans as lp
from ..cards import Card, DataCard, ModelCard
from ..display import usage_snippet
from ..errors import IntegrityError, InvalidReference, ServerStateError
from ..model import ArtifactVersion, Execution
from ..preparation import NotebookNotFound
from ..refs import Pinned, validate_name
from . import launching, preview, wire
from .feed import ChangeFeed
from .launching import Launcher
from .plans import live_watchers, overview, recent_firings
from .workspace import Workspace

JSON = dict[str, Any]
CARD_TYPES = ("card", "model", "data")


def _pinned(ws: Workspace, name: str, number: int) -> ArtifactVersion:
    """Version ``number`` of artifact ``name`` (the name checked against the naming rules
    first, so a path like ``../../etc`` never reaches a lookup)."""
    return ws.resolve(Pinned(validate_name(name), number))


def artifacts(ws: Workspace) -> list[JSON]:
    """Every artifact with its newest version (``nbripple ls --json``)."""
    return [wire.decl_dict(decl, latest) for decl, latest in ws.artifacts_with_latest()]


def search(ws: Workspace, text: str | None, *, kind: str | None = None,
           partitions: dict[str, str] | None = None, all_versions: bool = False,
           limit: int = 50) -> list[JSON]:
    """Versions matching ``text`` with their producers (``nbripple search --json``)."""
    found = ws.search(text, partitions=partitions, kind=kind, latest_only=not all_versions,
                      limit=limit)
    producers: dict[str, Execution | None] = {}
    rows = []
    for version in found:
        eid = version.execution_id
        if eid is not None and eid not in producers:
            producers[eid] = ws.find_execution(eid)
        rows.append(wire.version_with_producer(version, producers.get(eid) if eid else None))
    return rows


def consumers(ws: Workspace, version: ArtifactVersion) -> list[Execution]:
    """The executions that consumed (or were triggered by) ``version``, oldest first."""
    graph = ws.lineage(version, depth=1, direction="down")
    ids: list[str] = []
    for edge in graph.edges:
        if edge.source == graph.root and edge.kind in ("consumed", "triggered"):
            execution_id = graph.node(edge.target).data.get("execution_id")
            if execution_id and execution_id not in ids:
                ids.append(execution_id)
    found = [ws.find_execution(i) for i in ids]
    return sorted((e for e in found if e is not None), key=lambda e: e.started_at)


def version_detail(ws: Workspace, name: str, number: int) -> JSON:
    """A version with its producer, consumers and the line that loads it."""
    version = _pinned(ws, name, number)
    producer = ws.find_execution(version.execution_id) if version.execution_id else None
    return wire.version_detail_dict(version, producer, consumers(ws, version),
                                    usage_snippet(version))


def resolve(ws: Workspace, ref: str) -> JSON:
    """The version a ref or query URI names (nothing recorded as consumed)."""
    version = ws.resolve(ref)
    producer = ws.find_execution(version.execution_id) if version.execution_id else None
    return wire.version_with_producer(version, producer, card=True)


def card(ws: Workspace, name: str, number: int) -> JSON:
    """A version's card: Markdown, sanitized HTML and every revision."""
    version = _pinned(ws, name, number)
    return wire.card_view_dict(version, ws.card_history(version))


def set_card(ws: Workspace, name: str, number: int, markdown: str,
             card_type: str | None = None) -> JSON:
    """Add a card revision (the type defaults to the current one); returns the card."""
    version = _pinned(ws, name, number)
    wanted = card_type or version.card_type or "card"
    if wanted not in CARD_TYPES:
        raise InvalidReference(f"card_type must be one of {', '.join(CARD_TYPES)}, "
                               f"not {wanted!r}")
    made: Card = ModelCard(markdown) if wanted == "model" else \
        DataCard(markdown) if wanted == "data" else Card(markdown, "card")
    ws.set_card(version, made)
    return card(ws, name, number)


def lineage(ws: Workspace, ref: str, *, depth: int | None = 1,
            direction: str = "both") -> JSON:
    """The lineage around a version or an execution, as nodes and edges."""
    try:
        graph = ws.lineage(ref, depth=depth, direction=direction)
    except ValueError as exc:  # a bad direction or depth: the caller's input
        if isinstance(exc, InvalidReference):
            raise
        raise InvalidReference(str(exc)) from exc
    return wire.lineage_dict(graph)


def executions(ws: Workspace, *, notebook: str | None = None, status: str | None = None,
               kind: str | None = None, limit: int = 50) -> list[JSON]:
    """Recent executions, newest first (``nbripple executions --json``)."""
    if limit < 1:
        raise InvalidReference(f"limit must be at least 1, got {limit}")
    found = ws.executions(notebook=notebook, status=status, kind=kind, limit=limit)
    return [wire.execution_row(e) for e in found]


def execution(ws: Workspace, execution_id: str) -> JSON:
    """Everything about one execution (``nbripple execution ID --json``)."""
    return wire.full_execution_dict(ws.execution(execution_id))


def plans(ws: Workspace) -> list[JSON]:
    """Every plan's summary (``nbripple plans --json``)."""
    return [wire.plan_summary(plan, recent) for plan, recent in overview(ws)]


def set_plan_active(ws: Workspace, name: str, active: bool) -> JSON:
    """Activate or deactivate plan ``name``; returns its summary."""
    record = (lp.activate if active else lp.deactivate)(name, workspace=ws)
    return wire.plan_summary(record, recent_firings(ws, name))


def watcher_state(ws: Workspace, local: dict[str, Any] | None) -> JSON:
    """The watcher of this server (None with ``--no-watch``) and every live watcher of
    the home, with their health."""
    return wire.watcher_state_dict(local, live_watchers(ws))


def plan_form(ws: Workspace, name: str) -> JSON:
    """Plan ``name``'s launch form: each parameter with the value a launch would use
    now, each artifact input with the version its smart default picks now."""
    return wire.plan_form_dict(launching.plan_form(ws, validate_name(name)))


def launch_plan(ws: Workspace, launcher: Launcher, name: str,
                parameters: dict[str, Any]) -> JSON:
    """Start a run of plan ``name`` with ``parameters`` overriding the plan's, checked
    as a run checks them before anything is created; returns the queued execution."""
    return wire.launched_execution_dict(
        launching.launch_plan(ws, launcher, validate_name(name), parameters))


def rerun(ws: Workspace, launcher: Launcher, execution_id: str) -> JSON:
    """Start a rerun of an execution (same snapshot, same pinned inputs)."""
    return wire.launched_execution_dict(launching.rerun(ws, launcher, execution_id))


def relaunch(ws: Workspace, launcher: Launcher, execution_id: str,
             parameters: dict[str, Any]) -> JSON:
    """Start a relaunch of an execution (the notebook now, defaults resolved again,
    ``parameters`` on top of what the original was given)."""
    return wire.launched_execution_dict(
        launching.relaunch(ws, launcher, execution_id, parameters))


class WatcherSwitch(Protocol):
    """What a server offers to start and stop its own watcher (its ServerContext)."""

    def start_watcher(self) -> bool: ...
    def stop_watcher(self) -> bool: ...
    def watcher_state(self) -> dict[str, Any] | None: ...


def set_watcher(ws: Workspace, switch: WatcherSwitch, running: bool) -> JSON:
    """Start (``running``) or stop the server's own watcher; returns the state as
    :func:`watcher_state` does. Stopping waits for the watcher's grace period."""
    try:
        switch.start_watcher() if running else switch.stop_watcher()
    except RuntimeError as exc:  # a host that runs no watcher
        raise ServerStateError(f"{exc}; run `nbripple watch` beside it instead") from exc
    return watcher_state(ws, switch.watcher_state())


async def live(feed: ChangeFeed, cursor: str | None, timeout: float) -> JSON:
    """What the serving process committed after ``cursor``, waiting up to ``timeout``
    seconds (on the event loop, no thread) for something when nothing is new yet. No
    cursor, or one of another feed or too old: ``reset`` with the cursor of now."""
    found_cursor, items, reset = await feed.wait_async(cursor, timeout)
    return wire.live_dict(found_cursor, items, reset)


def health(ws: Workspace) -> JSON:
    """That the server answers, for which home, and where its store is."""
    return wire.health_dict(ws.home, ws.settings.resolved_store_url)


__all__ = [
    "artifacts",
    "card",
    "consumers",
    "execution",
    "executions",
    "health",
    "launch_plan",
    "lineage",
    "live",
    "plan_form",
    "plans",
    "relaunch",
    "rerun",
    "resolve",
    "search",
    "set_card",
    "set_plan_active",
    "set_watcher",
    "version_detail",
    "watcher_state",
]

# -- executed notebooks, the relaunch form, runs of a notebook file ---------------------
NOTEBOOK_WHICH = ("output", "input")
"""``GET executions/{id}/notebook?which=``: the executed notebook, or the one it ran."""


def execution_notebook(ws: Workspace, execution_id: str, which: str = "output") -> JSON:
    """An execution's executed notebook (outputs and any error) as nbformat JSON;
    ``which="input"``: the notebook snapshot it ran. NotebookNotFound (404) when it
    has none: still queued or running, failed before its kernel started, or no
    notebook run at all."""
    if which not in NOTEBOOK_WHICH:
        raise InvalidReference(f"which must be output or input, not {which!r}")
    execution = ws.execution(execution_id)
    digest = execution.output_notebook_hash if which == "output" else execution.notebook_hash
    if digest is None:
        raise NotebookNotFound(_no_notebook(execution, which))
    raw = ws.store.read(digest, label=f"{which} notebook of execution {execution.id}")
    try:
        notebook: JSON = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"the {which} notebook of execution {execution.id} is not "
                             f"JSON: {exc}") from exc
    return notebook


def _no_notebook(execution: Execution, which: str) -> str:
    what = "executed notebook" if which == "output" else "notebook snapshot"
    head = f"execution {execution.id} has no {what}"
    if execution.kind != "notebook":
        return f"{head}: it is {execution.kind}, not a notebook run"
    if execution.status in ("queued", "running"):
        return f"{head} yet: it is {execution.status}; the notebook is kept when it ends"
    error = execution.error or {}
    reason = ": ".join(str(error[k]) for k in ("ename", "evalue") if error.get(k))
    return f"{head}: it {execution.status} before its notebook ran" + \
        (f" ({reason})" if reason else "")


def relaunch_form(ws: Workspace, execution_id: str) -> JSON:
    """What relaunching an execution would use now, parameter by parameter, with the
    value the original ran with (``previous``)."""
    return wire.run_form_dict(launching.relaunch_form(ws, execution_id))


def notebook_form(ws: Workspace, root: Path | None, path: str) -> JSON:
    """The form of a run of the notebook file ``path`` (relative to ``root``, the
    server's notebook root; None: the working directory)."""
    notebook = launching.notebook_under(root or Path.cwd(), path)
    return wire.run_form_dict(launching.notebook_form(ws, notebook), path=path)


def run_notebook(ws: Workspace, launcher: Launcher, root: Path | None, path: str,
                 parameters: dict[str, Any]) -> JSON:
    """Start a run of the notebook file ``path`` (relative to ``root``, as
    :func:`notebook_form`) with ``parameters``; returns the queued execution."""
    notebook = launching.notebook_under(root or Path.cwd(), path)
    return wire.launched_execution_dict(
        launching.launch_notebook(ws, launcher, notebook, parameters))


__all__ += ["execution_notebook", "notebook_form", "relaunch_form", "run_notebook"]

# -- the Object tab's preview ------------------------------------------------------------
def version_preview(ws: Workspace, name: str, number: int,
                    rows: int = preview.DEFAULT_ROWS) -> JSON:
    """What version ``number`` of ``name`` holds: a table's schema and first ``rows``
    rows, a directory's files, a value's short repr, or why there is no preview."""
    rows = preview.check_rows(rows)  # before any lookup: a bad size is the caller's
    return preview.version_preview(ws, _pinned(ws, name, number), rows)


__all__ += ["version_preview"]
