"""What a fault of the catalog file or its disk means to a user: DuckDB's and the OS's
errors mapped to nbripple's (damaged file, full disk, read-only home)."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import duckdb

from ...errors import CatalogDamaged, CatalogError, CatalogLockedError, CatalogReadOnly, DiskFull

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


_LOCK_PID_RE = re.compile(r"PID (\d+)")


def locked_error(path: Path, holder_pid: int | None, conflict: duckdb.Error | None,
                 timeout_s: float) -> CatalogLockedError:
    """The error of an open that found the file at ``path`` held for ``timeout_s``, by
    ``holder_pid`` (what the lock file says) or as DuckDB's ``conflict`` says."""
    match = _LOCK_PID_RE.search(str(conflict)) if conflict else None
    pid = match.group(1) if match else holder_pid
    holder = f" (held by PID {pid})" if pid else ""
    return CatalogLockedError(
        f"the catalog {path} stayed locked by another process{holder} "
        f"for {timeout_s:g} s: wait for that process to finish or stop it, "
        "or raise lock_timeout_s in config.toml (one process at a time opens the "
        "catalog file, each for a burst of operations)"
    )
