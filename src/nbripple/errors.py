"""The nbripple exception hierarchy.

Every error raised on purpose by nbripple derives from :class:`NbrippleError` and
says what went wrong and what to do about it, so the CLI can print it on one line.
"""

from __future__ import annotations

from dataclasses import dataclass


class NbrippleError(Exception):
    """Base class of every error nbripple raises on purpose."""


class ConfigError(NbrippleError):
    """The nbripple home or its config.toml is missing or invalid."""


class InvalidNameError(NbrippleError, ValueError):
    """An artifact name or partition key does not follow the naming rules."""


class DeclarationMismatch(NbrippleError):
    """An artifact was declared again with different partition keys or settings."""


class PartitionError(NbrippleError, ValueError):
    """Partition values do not fit the artifact's declared partition keys."""


class UnknownPartitionKey(PartitionError):
    """A partition key that the artifact does not declare."""


class MissingPartitionKey(PartitionError):
    """A declared partition key that was not given a value."""


class KindError(NbrippleError, TypeError):
    """A value cannot be stored as the requested (or pinned) kind."""


class InvalidReference(NbrippleError, ValueError):
    """A reference or URI string is malformed."""


class NotFound(NbrippleError, LookupError):
    """Something that was looked up does not exist."""


class ArtifactNotFound(NotFound):
    """No artifact of that name has been declared or committed."""


class VersionNotFound(NotFound):
    """No committed version matches the reference or query."""


class ExecutionNotFound(NotFound):
    """No execution has that id."""


class IntegrityError(NbrippleError):
    """A stored blob does not match the hash recorded for it."""


class StorePathError(NbrippleError, ValueError):
    """A path would escape the store (or cache) root."""


class CatalogLockedError(NbrippleError):
    """The catalog file stayed locked by another process beyond the retry budget."""


class SchemaVersionError(NbrippleError):
    """The catalog was written by a newer nbripple than this one."""


class IngestError(NbrippleError, ValueError):
    """A file or directory cannot be read as the value to store (``nbripple push``)."""


class CatalogError(NbrippleError):
    """The catalog file cannot be used (see the subclasses for why)."""


class CatalogDamaged(CatalogError):
    """The catalog file (or its write-ahead log) is truncated, corrupt or not a catalog."""


class CatalogReadOnly(CatalogError):
    """The catalog file or its directory cannot be written (read-only file system,
    permissions)."""


class DiskFull(CatalogError):
    """The disk holding the catalog is full (or a file size limit was reached)."""


class ServerUnavailable(CatalogError):
    """The nbripple server a process uses did not answer (after retries), or refused
    its token."""


class SymlinkError(KindError, ValueError):
    """A file or directory to store is, or holds, a symbolic link nbripple will not
    follow on its own (out of its tree, dangling or looping)."""


class StoreError(NbrippleError):
    """The blob store cannot be opened (unknown protocol, a package missing)."""


class StoreWriteError(StoreError, OSError):
    """A blob or a cached copy could not be written: the disk is full, read-only or not
    writable. Nothing half-written is left behind."""


class ServerStateError(NbrippleError):
    """The server cannot do that in its current state: it is stopping, or it runs no
    watcher of its own."""


class UnpicklingWarning(UserWarning):
    """Loading an ``object`` version unpickles it: that runs code chosen by its producer."""


class TamperedCacheWarning(UserWarning):
    """A cached copy of a file or directory version was changed outside nbripple and was
    replaced with verified data from the store."""


# -- how each error reaches a user -----------------------------------------------------
EXIT_ERROR = 1
"""The exit code of a command that ends with an error (click uses 2 for bad usage)."""

BAD_INPUT, NOT_FOUND, CONFLICT, SERVER_ERROR, UNAVAILABLE = 400, 404, 409, 500, 503

ERROR_TABLE: dict[str, tuple[int, int]] = {
    # class name: (CLI exit code, HTTP status). Keyed by name because some errors are
    # defined in modules above this one (runner, launchplans, parameters); a subclass
    # without an entry of its own takes its nearest mapped base class's.
    "NbrippleError": (EXIT_ERROR, BAD_INPUT),
    "ConfigError": (EXIT_ERROR, SERVER_ERROR),
    "InvalidNameError": (EXIT_ERROR, BAD_INPUT),
    "DeclarationMismatch": (EXIT_ERROR, CONFLICT),
    "PartitionError": (EXIT_ERROR, BAD_INPUT),
    "UnknownPartitionKey": (EXIT_ERROR, BAD_INPUT),
    "MissingPartitionKey": (EXIT_ERROR, BAD_INPUT),
    "KindError": (EXIT_ERROR, BAD_INPUT),
    "InvalidReference": (EXIT_ERROR, BAD_INPUT),
    "NotFound": (EXIT_ERROR, NOT_FOUND),
    "ArtifactNotFound": (EXIT_ERROR, NOT_FOUND),
    "VersionNotFound": (EXIT_ERROR, NOT_FOUND),
    "ExecutionNotFound": (EXIT_ERROR, NOT_FOUND),
    "IntegrityError": (EXIT_ERROR, SERVER_ERROR),
    "StorePathError": (EXIT_ERROR, BAD_INPUT),
    "CatalogLockedError": (EXIT_ERROR, CONFLICT),
    "SchemaVersionError": (EXIT_ERROR, SERVER_ERROR),
    "IngestError": (EXIT_ERROR, BAD_INPUT),
    "CatalogError": (EXIT_ERROR, SERVER_ERROR),
    "CatalogDamaged": (EXIT_ERROR, SERVER_ERROR),
    "CatalogReadOnly": (EXIT_ERROR, SERVER_ERROR),
    "DiskFull": (EXIT_ERROR, SERVER_ERROR),
    "ServerUnavailable": (EXIT_ERROR, UNAVAILABLE),
    "SymlinkError": (EXIT_ERROR, BAD_INPUT),
    "StoreError": (EXIT_ERROR, SERVER_ERROR),
    "StoreWriteError": (EXIT_ERROR, SERVER_ERROR),
    "ServerStateError": (EXIT_ERROR, CONFLICT),
    # nbripple.parameters
    "ParametersError": (EXIT_ERROR, BAD_INPUT),
    # nbripple.preparation (re-exported by nbripple.runner)
    "NotebookNotFound": (EXIT_ERROR, NOT_FOUND),
    "KernelNotFound": (EXIT_ERROR, NOT_FOUND),
    "InputResolutionError": (EXIT_ERROR, BAD_INPUT),
    # nbripple.launchplans
    "PlanError": (EXIT_ERROR, BAD_INPUT),
    "PlanNotFound": (EXIT_ERROR, NOT_FOUND),
    # nbripple.service.launching (a notebook path given over the API)
    "NotebookPathError": (EXIT_ERROR, BAD_INPUT),
}


@dataclass(frozen=True)
class ErrorInfo:
    """How an error is shown: its class name, a one-line message, the exit code of a
    command it ends and the HTTP status of a request it fails."""

    name: str
    message: str
    exit_code: int
    http_status: int


def one_line(message: str) -> str:
    """Collapse a message onto one line (multi-line messages are joined with ' | ')."""
    return " | ".join(line.strip() for line in str(message).splitlines() if line.strip())


def error_info(exc: BaseException) -> ErrorInfo:
    """The table's entry for ``exc`` (by its class, else its nearest mapped base).

    Example::

        error_info(ArtifactNotFound("no artifact named 'x'")).http_status  # 404

    An error that is not an NbrippleError is a bug: exit code 1, HTTP 500.
    """
    exit_code, status = EXIT_ERROR, SERVER_ERROR
    if isinstance(exc, NbrippleError):
        for cls in type(exc).__mro__:
            entry = ERROR_TABLE.get(cls.__name__)
            if entry is not None and issubclass(cls, NbrippleError):
                exit_code, status = entry
                break
    name = type(exc).__name__
    return ErrorInfo(name, one_line(str(exc)) or name, exit_code, status)
