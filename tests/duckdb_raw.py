"""Reach the embedded catalog's DuckDB file directly, for tests that tamper with it.

Tampering is DuckDB-specific: such tests say so by using :func:`raw_duckdb` rather
than a catalog object's internals.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from nbripple.catalog import EmbeddedCatalog


@contextmanager
def raw_duckdb(home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of its own to ``home``'s catalog file (created if new), closed on
    exit.

    This process's catalogs release the file first (a workspace made before keeps
    its catalog object and what it has cached; ``nr.use(home)`` reads afresh)."""
    path = home / "catalog.duckdb"
    EmbeddedCatalog(path, idle_release_ms=0).last_event_seq()  # created and migrated
    EmbeddedCatalog.close_all()
    con = duckdb.connect(str(path))
    try:
        yield con
    finally:
        con.close()
