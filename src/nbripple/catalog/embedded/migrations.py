"""Bringing a catalog file to the schema this nbripple knows (:mod:`..schema`).

Checked on every open: another process may have upgraded (or replaced) the file
since this one last had it. The missing migrations run in one transaction; a file
from a newer nbripple is refused without being touched.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ...errors import SchemaVersionError
from ..schema import MIGRATIONS, SCHEMA_VERSION, SCHEMA_VERSION_KEY


def stored_identity(con: duckdb.DuckDBPyConnection) -> tuple[int, str | None]:
    """The schema version recorded in the file (0 for a file without nbripple's
    tables) and its catalog id (None before it has one), in one read: every open of
    the file asks."""
    try:
        found = dict(con.execute("SELECT key, value FROM meta WHERE key IN (?, 'catalog_id')",
                                 [SCHEMA_VERSION_KEY]).fetchall())
    except duckdb.CatalogException:  # no meta table: a new (or replaced) file
        return 0, None
    return int(found.get(SCHEMA_VERSION_KEY, 0)), found.get("catalog_id")


def stored_schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version recorded in the file; 0 for a file without nbripple's tables."""
    return stored_identity(con)[0]


def is_current(stored: int) -> bool:
    """Whether a file's stored schema version is exactly this nbripple's."""
    return stored == SCHEMA_VERSION


def migrate(con: duckdb.DuckDBPyConnection, path: Path, stored: int | None = None) -> bool:
    """Apply the missing migrations in one transaction (rolled back entirely on error);
    returns whether any ran. ``stored``: the file's schema version, if read already.

    Raises :class:`SchemaVersionError` for a file newer than this nbripple.
    """
    current = stored_schema_version(con) if stored is None else stored
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the catalog {path} has schema version {current}, but this nbripple "
            f"knows versions up to {SCHEMA_VERSION}: upgrade nbripple "
            "(pip install -U nbripple) to open it"
        )
    if current == SCHEMA_VERSION:
        return False
    con.execute("BEGIN TRANSACTION")
    try:
        for steps in MIGRATIONS[current:]:
            for statement in steps:
                con.execute(statement)
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [SCHEMA_VERSION_KEY, str(SCHEMA_VERSION)],
        )
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return True
