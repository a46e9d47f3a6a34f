"""What a serving process (``nbripple serve``, the Jupyter extension) does to the
home it serves: it holds the DuckDB file as the only writer, and every write it makes
is published on its :class:`~nbripple.service.feed.ChangeFeed`.

Example::

    feed = ChangeFeed()
    ws = serving_workspace(home, feed)      # ws.catalog is the home's file, held
    ...
    release(ws)                             # the server stops
"""

from __future__ import annotations

import os
from typing import cast

from ..catalog import Catalog, EmbeddedCatalog
from ..config import resolve_settings
from .feed import ChangeFeed, FeedingCatalog
from .workspace import Workspace

DUCKDB_THREADS = 1
"""A server's work is many small statements from many clients, one at a time on its
connection: DuckDB's parallelism spends more CPU on them than it saves (measured: a
commit costs the server 15-25% less CPU on one thread, and searches and lookups at
100,000 versions are no slower)."""
HOLD_MS = 3_600_000.0
"""The serving process keeps the file open while it runs (an embedded process that
asks for it still gets it: the catalog hands over to a waiting process)."""


def serving_workspace(home: str | os.PathLike[str] | Workspace | None, feed: ChangeFeed
                      ) -> Workspace:
    """A workspace of ``home`` on its own DuckDB file (never a served catalog, even
    when ``NBRIPPLE_URL`` or a ``server.json`` names one), wrapped so that its writes
    publish on ``feed``."""
    settings = home.settings if isinstance(home, Workspace) else resolve_settings(home)
    embedded = EmbeddedCatalog.for_path(settings.catalog_path, idle_release_ms=HOLD_MS,
                                        lock_timeout_s=settings.catalog.lock_timeout_s,
                                        threads=DUCKDB_THREADS)
    catalog = cast("Catalog", FeedingCatalog(embedded, feed))
    if isinstance(home, Workspace):
        home.catalog = catalog
        return home
    return Workspace(settings.home, catalog=catalog)


def release(ws: Workspace) -> None:
    """Let go of the file a :func:`serving_workspace` holds."""
    catalog = ws.catalog
    releaser = getattr(catalog, "release", None)
    if releaser is not None:
        releaser()
    else:
        catalog.close()


__all__ = ["DUCKDB_THREADS", "HOLD_MS", "release", "serving_workspace"]
