"""Executions the workspace records itself: the interactive one of a process, and
external ones around a block of work (``nbripple push``, ``nbripple load``, scripts).

:func:`run_error` builds the error record of every failed or cancelled execution
(runner, executors, external executions), so each has the same shape.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import context
from ..model import ArtifactVersion, Execution
from ..pids import pid_alive

if TYPE_CHECKING:
    from ..catalog import Catalog
    from .workspace import Workspace

log = logging.getLogger("nbripple.executions")

STALE_HEARTBEAT_S = 60.0
"""An execution on another host whose heartbeat is older than this has lost its owner."""

SWEEP_EVERY_S = 30.0
"""A process sweeps dead executions when it opens a catalog at most this often."""

ORPHANED = "Orphaned"
"""The ``ename`` of an execution marked failed because its process is gone."""

SWEPT_KINDS = ("notebook", "interactive", "external")


def new_execution_id() -> str:
    """A fresh execution id: 16 hex digits."""
    return uuid.uuid4().hex[:16]


def run_error(ename: str, evalue: str, *, cell_index: int | None = None,
              **details: Any) -> dict[str, Any]:
    """The error record of an execution: ``{"ename", "evalue", "cell_index", ...}``.

    ``details`` adds what a failed cell tells (``execution_count``, ``traceback``).

    Example::

        run_error("ValueError", "boom", cell_index=3)
    """
    return {"ename": ename, "evalue": evalue, "cell_index": cell_index, **details}


def exception_error(exc: BaseException) -> dict[str, Any]:
    """:func:`run_error` of an exception raised outside a notebook cell."""
    return run_error(type(exc).__name__, str(exc))


def make_execution(kind: str, *, label: str | None = None, **fields: Any) -> Execution:
    """An execution of ``kind`` started now by this process, not recorded yet (the
    watcher records a queued run with its firing's claim in one catalog call)."""
    execution = Execution(
        id=fields.pop("id", None) or new_execution_id(),
        kind=kind,
        status=fields.pop("status", "running"),
        notebook=fields.pop("notebook", None),
        notebook_hash=fields.pop("notebook_hash", None),
        parameters=fields.pop("parameters", {}),
        requested=fields.pop("requested", None),
        cwd=fields.pop("cwd", None),
        started_at=datetime.now(UTC),
        finished_at=None,
        error=None,
        output_notebook_hash=None,
        pid=os.getpid(),
        host=socket.gethostname(),
        trigger=fields.pop("trigger", None),
        trigger_artifact=fields.pop("trigger_artifact", None),
        trigger_version=fields.pop("trigger_version", None),
        parent_id=fields.pop("parent_id", None),
        chain_depth=fields.pop("chain_depth", 0),
        label=label,
        phases=fields.pop("phases", None),
    )
    if fields:
        raise TypeError(f"unexpected execution fields {sorted(fields)}")
    return execution


def new_execution(ws: Workspace, kind: str, *, label: str | None = None,
                  **fields: Any) -> Execution:
    """Create and record an execution of ``kind`` started now by this process."""
    execution = make_execution(kind, label=label, **fields)
    ws.catalog.create_execution(execution)
    return replace(execution, _workspace=ws)


def interactive_execution_id(ws: Workspace) -> str:
    """The ``interactive`` execution of this process (created on first use)."""
    with ws._lock:
        pid = os.getpid()
        if ws._interactive is not None and ws._interactive[0] == pid:
            return ws._interactive[1]
        label = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv[:3]))
        execution = new_execution(ws, "interactive", label=label or "python")
        ws._interactive = (pid, execution.id)
        atexit.register(finish_interactive, ws, execution.id, pid)
        return execution.id


EXIT_RETRY_S = 0.0
"""How long a process exiting retries marking its interactive execution finished (0:
one try — a process never waits at exit for a server that is gone)."""


def finish_interactive(ws: Workspace, execution_id: str, pid: int) -> None:
    """At exit: the interactive execution succeeded (not in a forked child)."""
    if os.getpid() != pid:
        return
    catalog = ws._catalog  # not ws.catalog: no housekeeping sweep on the way out
    brief = getattr(catalog, "retrying_for", None)  # a served catalog: one try, no wait
    try:  # a server that is gone: the sweep marks the row once the pid is dead
        with brief(EXIT_RETRY_S) if brief is not None else contextlib.nullcontext():
            catalog.update_execution(
                execution_id, status="succeeded", finished_at=datetime.now(UTC)
            )
        catalog.close()
    except Exception:  # the process is exiting; the row stays 'running'
        pass


def consumer_execution_id(ws: Workspace) -> str:
    """The execution a read is recorded for: the current run's, else the interactive one."""
    run = context.current_run()
    return run.execution_id if run is not None else interactive_execution_id(ws)


@contextmanager
def external_execution(ws: Workspace, label: str) -> Iterator[str]:
    """An ``external`` execution around a block of work; failed if the block raises."""
    execution = new_execution(ws, "external", label=label)
    try:
        yield execution.id
    except BaseException as exc:
        ws.catalog.update_execution(
            execution.id, status="failed", finished_at=datetime.now(UTC),
            error=exception_error(exc),
        )
        raise
    ws.catalog.update_execution(execution.id, status="succeeded",
                                finished_at=datetime.now(UTC))


def load_external(ws: Workspace, version: ArtifactVersion, *, output: Path | None = None,
                  as_: str | None = None, label: str = "nbripple load") -> Any:
    """Load ``version`` (or write it to ``output``: returns the path) under an
    ``external`` execution labelled ``label`` that records the consumption.

    Example::

        table = load_external(ws, ws.resolve("sales@1"), as_="arrow")
    """
    with external_execution(ws, label) as execution_id:
        if output is not None:
            value: Any = ws.download(version, output)
        else:
            value = ws.load_version(version, as_=as_, record=False)
        ws.catalog.record_consumption(execution_id, version.name, version.version)
    return value


# -- executions whose process is gone ---------------------------------------------
def owner_gone(execution: Execution, host: str, now: datetime | None = None) -> bool:
    """Is the process that owns a queued/running execution provably gone?

    Same host: its pid is dead, or was reused by a process that started after the
    execution. Another host: its heartbeat (a run's, refreshed while it runs) is older
    than :data:`STALE_HEARTBEAT_S`; an interactive or external execution there, which
    has no heartbeat, is never presumed gone.
    """
    if execution.host == host and execution.pid:
        return not pid_alive(execution.pid, started_before=execution.started_at)
    beat = execution.heartbeat_at
    if beat is None:
        if execution.kind != "notebook":
            return False
        beat = execution.started_at  # a queued run that never beat
    return ((now or datetime.now(UTC)) - beat).total_seconds() > STALE_HEARTBEAT_S


def sweep_dead_executions(catalog: Catalog, *, skip: frozenset[str] | set[str] = frozenset(),
                          host: str | None = None) -> list[Execution]:
    """Mark every queued/running execution whose owner is gone as failed (``Orphaned``,
    with the reason); returns the executions it marked. ``skip``: ids a caller owns.

    A firing whose run was marked so is owed again: the watcher re-runs it.
    """
    host = host or socket.gethostname()
    now = datetime.now(UTC)
    swept: list[Execution] = []
    for status in ("queued", "running"):
        for execution in catalog.list_executions(status=status, limit=10_000):
            if execution.id in skip or execution.kind not in SWEPT_KINDS \
                    or not owner_gone(execution, host, now):
                continue
            current = catalog.get_execution(execution.id)  # it may have just ended
            if current is None or current.status not in ("queued", "running"):
                continue
            where = f"pid {execution.pid} on {execution.host}"
            why = "its heartbeat stopped" if execution.host != host else "its process ended"
            catalog.finish_execution(
                execution.id, commit_staged=False, status="failed",
                finished_at=datetime.now(UTC),
                error=run_error(ORPHANED, f"{why} ({where}) before the "
                                f"{execution.kind} execution finished"),
            )
            log.info("execution %s (%s) lost its process (%s); marked failed",
                     execution.id, execution.kind, where)
            swept.append(execution)
    return swept


_last_sweep: dict[str, float] = {}


def sweep_if_due(ws: Workspace, every_s: float = SWEEP_EVERY_S) -> None:
    """Sweep dead executions of ``ws``'s catalog at most once per ``every_s`` seconds
    per process; never fails the caller (a locked catalog waits for the next time)."""
    if context.current_run() is not None:
        return  # a run's kernel: the process running it and the watchers sweep
    key = f"{os.getpid()}:{ws.home}"
    now = time.monotonic()
    if now - _last_sweep.get(key, -every_s - 1.0) < every_s:
        return
    _last_sweep[key] = now
    try:
        sweep_dead_executions(ws.catalog)
    except Exception as exc:  # never stop a read for housekeeping
        log.debug("sweep of dead executions skipped: %s", exc)


def leave_sweeps_to_the_watcher(ws: Workspace) -> None:
    """This process runs one job for a watcher (which sweeps ``ws``'s catalog itself):
    its catalog uses never sweep, so a run's start-up reads only what it needs."""
    _last_sweep[f"{os.getpid()}:{ws.home}"] = float("inf")


class Heartbeat:
    """Refresh an execution's ``heartbeat_at`` every ``every_s`` while it runs, so
    watchers on other machines can tell a live run from an orphan."""

    def __init__(self, ws: Workspace, execution_id: str, every_s: float) -> None:
        self._ws = ws
        self._execution_id = execution_id
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="nbripple-heartbeat",
                                        daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._ws.catalog.update_execution(self._execution_id,
                                                  heartbeat_at=datetime.now(UTC))
            except Exception:  # a busy catalog must not fail the run
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
