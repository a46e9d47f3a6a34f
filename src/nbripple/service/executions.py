"""Executions the workspace records itself: the interactive one of a process, and
external ones around a block of work (``nbripple push``, ``nbripple load``, scripts).

:func:`run_error` builds the error record of every failed or cancelled execution
(runner, executors, external executions), so each has the same shape.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import context
from ..model import ArtifactVersion, Execution

if TYPE_CHECKING:
    from .workspace import Workspace


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


def finish_interactive(ws: Workspace, execution_id: str, pid: int) -> None:
    """At exit: the interactive execution succeeded (not in a forked child)."""
    if os.getpid() != pid:
        return
    try:
        ws.catalog.update_execution(
            execution_id, status="succeeded", finished_at=datetime.now(UTC)
        )
        ws.catalog.close()
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
