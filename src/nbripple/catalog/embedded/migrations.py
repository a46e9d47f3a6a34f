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


def stored_schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version recorded in the file; 0 for a file without nbripple's tables."""
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?",
                          [SCHEMA_VERSION_KEY]).fetchone()
    except duckdb.CatalogException:  # no meta table: a new (or replaced) file
        return 0
    return int(row[0]) if row else 0


def is_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the file has exactly the schema version of this nbripple."""
    return stored_schema_version(con) == SCHEMA_VERSION


def migrate(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Apply the missing migrations in one transaction (rolled back entirely on error).

    Raises :class:`SchemaVersionError` for a file newer than this nbripple.
    """
    current = stored_schema_version(con)
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the catalog {path} has schema version {current}, but this nbripple "
            f"knows versions up to {SCHEMA_VERSION}: upgrade nbripple "
            "(pip install -U nbripple) to open it"
        )
    if current == SCHEMA_VERSION:
        return
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
