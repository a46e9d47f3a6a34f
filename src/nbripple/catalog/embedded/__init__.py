"""The embedded catalog: one DuckDB file, shared by processes one burst at a time.

DuckDB lets a single process open a database file for writing. So a process holds
its connection only across a burst of operations and releases it after a short idle
time (``idle_release_ms``), letting other processes in; opening while another
process holds the file is retried with jittered exponential backoff until
``lock_timeout_s``, then :class:`~nbripple.errors.CatalogLockedError` is raised.
Nothing holds the file while idle.

The class is assembled from one mixin per group of tables:

* :mod:`.connection` — the lease on the file: lock file (:mod:`.lockfile`), retries,
  idle release, fairness between processes; :mod:`.migrations` on every open;
* :mod:`.versions` — artifacts and versions; :mod:`.search`; :mod:`.cards`;
* :mod:`.executions` — executions, consumption, staged outputs;
* :mod:`.events` — events and the change token; :mod:`.lineage` — the SQL walks;
* :mod:`.reactive` — plans, firings, the watch cursor and watchers;
* :mod:`.requests` — idempotent writes of the served catalog;
* :mod:`.rows` — rows <-> records.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from .cards import CardTables
from .connection import every_catalog
from .events import EventTables
from .executions import ExecutionTables
from .lineage import LineageTables
from .reactive import ReactiveTables
from .requests import RequestTables
from .search import SearchTables

if TYPE_CHECKING:
    from ..base import Catalog


class EmbeddedCatalog(
    ExecutionTables, SearchTables, CardTables, EventTables, LineageTables, ReactiveTables,
    RequestTables,
):
    """The catalog in one DuckDB file (see the module docstring for the locking rules).

    Use :meth:`for_path` to share one instance per file within a process.
    """

    _instances: ClassVar[dict[tuple[str, float, float, int | None], EmbeddedCatalog]] = {}
    _instances_lock = threading.Lock()

    @classmethod
    def for_path(
        cls, path: str | os.PathLike[str], *, idle_release_ms: float = 100.0,
        lock_timeout_s: float = 60.0, threads: int | None = None,
    ) -> EmbeddedCatalog:
        """The instance of this process for the file at ``path`` with these settings."""
        key = (str(Path(path).resolve()), idle_release_ms, lock_timeout_s, threads)
        with cls._instances_lock:
            instance = cls._instances.get(key)
            if instance is not None and not Path(path).exists():
                instance.close()  # the file was deleted: never write to its ghost
                instance = None
            if instance is None:
                instance = cls(path, idle_release_ms=idle_release_ms,
                               lock_timeout_s=lock_timeout_s, threads=threads)
                cls._instances[key] = instance
            return instance

    @classmethod
    def close_all(cls) -> None:
        """Close every instance :meth:`for_path` handed out and forget them, so the next
        call starts afresh (with nothing cached). Instances made otherwise, or forgotten
        by an earlier call and still in use (a workspace keeps its catalog), release
        their files too: the process then holds no catalog file (unless an operation is
        running), and another connection may open one."""
        with cls._instances_lock:
            instances = list(cls._instances.values())
            cls._instances.clear()
        for instance in [*instances, *list(every_catalog)]:
            instance.close()


if TYPE_CHECKING:
    _: type[Catalog] = EmbeddedCatalog  # the embedded catalog implements the protocol

__all__ = ["EmbeddedCatalog"]
