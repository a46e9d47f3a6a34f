"""``nbripple backup DEST``: a consistent copy of the catalog while others write.

The copy is a plain DuckDB file: restore it by stopping the processes that use the
home and copying it over ``<home>/catalog.duckdb`` (delete a ``catalog.duckdb.wal``
left next to it). The store's blobs are content-addressed and never rewritten, so
any file copy tool (``rsync -a store/ DEST/store/``) backs them up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import CATALOG_FILENAME
from ..errors import NbrippleError

if TYPE_CHECKING:
    from .workspace import Workspace


@dataclass(frozen=True)
class BackupResult:
    """Where :func:`backup` wrote the copy, its size and how many versions it holds."""

    path: Path
    size: int
    versions: int


def backup_target(ws: Workspace, dest: str | os.PathLike[str]) -> Path:
    """The file a backup to ``dest`` writes: ``dest`` itself when it names a ``.duckdb``
    file, else ``dest/catalog.duckdb`` (the directory is created)."""
    path = Path(dest).expanduser()
    if path.suffix != ".duckdb" or path.is_dir():
        path = path / CATALOG_FILENAME
    live = ws.home / CATALOG_FILENAME
    if path.resolve() == live.resolve():
        raise NbrippleError(f"{path} is the catalog itself: back it up to another place")
    return path


def backup(ws: Workspace, dest: str | os.PathLike[str], *, overwrite: bool = False
           ) -> BackupResult:
    """Copy the catalog of ``ws`` to ``dest`` (see :func:`backup_target`), consistent
    while other processes commit.

    Example::

        result = backup(nr.current(), "/backups/2026-05-01")
        result.path, result.versions
    """
    target = backup_target(ws, dest)
    if target.exists() and not overwrite:
        raise NbrippleError(f"{target} exists already: pick a new DEST, or pass --overwrite")
    copy = getattr(ws.catalog, "backup", None)
    if copy is None:
        raise NbrippleError(
            f"the {type(ws.catalog).__name__} cannot be backed up by nbripple: back up "
            "the server that owns it")
    target.parent.mkdir(parents=True, exist_ok=True)
    versions = int(copy(target))
    ws.release()
    return BackupResult(target.resolve(), target.stat().st_size, versions)
