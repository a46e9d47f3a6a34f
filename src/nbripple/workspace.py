"""The workspace (now :mod:`nbripple.service.workspace`; this module is kept for imports)."""

from __future__ import annotations

from .service.executions import new_execution_id
from .service.workspace import RefLike, Workspace, current, truncate_time, use

__all__ = ["RefLike", "Workspace", "current", "new_execution_id", "truncate_time", "use"]
