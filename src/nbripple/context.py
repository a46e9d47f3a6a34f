"""The run context: which execution the current process is working for.

Outside a notebook run there is none, and nbripple records ad-hoc work under one
``interactive`` execution per process. Inside a run, the runner activates a
context in the kernel (see :mod:`nbripple.kernels`), and ``create_from`` stages
outputs that are committed only if the run succeeds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import NewVersion


@dataclass
class RunContext:
    """The execution a process works for while a notebook run is active."""

    execution_id: str
    home: str | None = None
    staged: list[NewVersion] = field(default_factory=list)


_lock = threading.Lock()
_active: RunContext | None = None


def current_run() -> RunContext | None:
    """The active run context, or None outside a notebook run."""
    return _active


def activate(execution_id: str, home: str | None = None) -> RunContext:
    """Make this process work for ``execution_id`` (called by the runner in the kernel)."""
    global _active
    with _lock:
        _active = RunContext(execution_id, home)
        return _active


def deactivate() -> None:
    global _active
    with _lock:
        _active = None


def enter(execution_id: str, home: str | None = None, cwd: str | None = None) -> RunContext:
    """Enter a run inside a kernel: activate the context, point the workspace at
    ``home`` and move to ``cwd``. The runner calls this in the run's kernel with a
    silent execute request before the first cell (no cell added, no execution count
    used), so it works as well in a kernel that was started before the run."""
    import os
    import sys

    if cwd is not None and os.getcwd() != cwd:
        os.chdir(cwd)
    run = activate(execution_id, home)
    workspace = sys.modules.get(f"{__package__}.workspace")
    if workspace is not None:  # a kernel that already used nbripple: repoint it
        workspace.use(home)
    return run
