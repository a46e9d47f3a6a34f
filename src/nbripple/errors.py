"""The nbripple exception hierarchy.

Every error raised on purpose by nbripple derives from :class:`NbrippleError` and
says what went wrong and what to do about it, so the CLI can print it on one line.
"""

from __future__ import annotations


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
