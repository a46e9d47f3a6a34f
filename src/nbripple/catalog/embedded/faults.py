"""What a fault of the catalog file or its disk means to a user: DuckDB's and the OS's
errors mapped to nbripple's (damaged file, full disk, read-only home)."""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb

from ...errors import CatalogDamaged, CatalogError, CatalogReadOnly, DiskFull

_DAMAGED_HINTS = (
    "not a valid duckdb database", "could not read enough bytes", "replaying wal",
    "corrupt", "checksum", "invalid block", "failed to load metadata", "leb128",
    "database has been invalidated", "serialization error", "unexpected end of file",
)
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def catalog_error(exc: BaseException, path: Path) -> CatalogError | None:
    """The nbripple error for a DuckDB or OS error met using the catalog at ``path``
    (None: not a fault of the file or its disk, so let it through as it is).

    Example: DuckDB's "IO Error: ... not a valid DuckDB database file" becomes
    :class:`CatalogDamaged` saying to run ``nbripple doctor`` and restore a backup.
    """
    if isinstance(exc, CatalogError):
        return exc
    message = str(exc)
    lowered = message.lower()
    code = exc.errno if isinstance(exc, OSError) else None
    if isinstance(exc, OSError):
        what = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    else:
        what = f"{type(exc).__name__}: {message}"
    if code in _FULL_ERRNOS or "no space left" in lowered or "file too large" in lowered \
            or "disk quota" in lowered:
        return DiskFull(
            f"the disk holding the catalog {path} is full ({what}); nothing was committed "
            "by this operation and earlier commits are intact: free some space (`nbripple "
            "gc` deletes unreferenced blobs) and retry"
        )
    if code in _READ_ONLY_ERRNOS or "read-only file system" in lowered \
            or "permission denied" in lowered or "read-only mode" in lowered:
        return CatalogReadOnly(
            f"the catalog {path} cannot be written ({what}): make {path.parent} writable "
            "(or remount it read-write) and retry; reading works meanwhile, and "
            "`nbripple backup DEST` copies the catalog somewhere writable"
        )
    if isinstance(exc, duckdb.Error) and (
            isinstance(exc, duckdb.FatalException | duckdb.InternalException)
            or any(hint in lowered for hint in _DAMAGED_HINTS)):
        return CatalogDamaged(
            f"the catalog {path} is damaged ({what}); move it aside and restore your last "
            "`nbripple backup` (cp BACKUP/catalog.duckdb into the home), then run "
            "`nbripple doctor` to check it against the store"
        )
    return None
