"""The service layer: one Workspace and its collaborators, which the Python API, the
CLI, the magics, the widgets and the REST handlers all call.

* :mod:`.workspace` — Workspace (wiring and reading), ``current``/``use``;
* :mod:`.writing` — create_from, declarations, partitions, push of files and tables;
* :mod:`.values` — reading a version's data, the local cache, downloads;
* :mod:`.executions` — interactive and external executions, the run-error record;
* :mod:`.plans` — plan summaries, triggers, cron ticks, live watchers;
* :mod:`.gc` — garbage collection of the store;
* :mod:`.wire` — every JSON shape (``--json`` and REST).
"""

from __future__ import annotations

from .workspace import RefLike, Workspace, current, truncate_time, use

__all__ = ["RefLike", "Workspace", "current", "truncate_time", "use"]
