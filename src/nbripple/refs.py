"""Artifact names, references and queries, and the URIs that spell them.

Forms understood by :func:`parse`:

========================================  =====================================
``blessed_model@3``                       version 3 (a pinned reference)
``nbripple://blessed_model@3``            the same
``nbripple://blessed_model?blessed=true`` newest version whose partitions match
``nbripple://blessed_model``              the latest version
``blessed_model``                         the latest version
========================================  =====================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

from .errors import InvalidNameError, InvalidReference, NbrippleError, PartitionError

if TYPE_CHECKING:
    from .model import ArtifactVersion, Handle

SCHEME = "nbripple://"
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME_LENGTH = 128
MAX_KEY_LENGTH = 64
MAX_PARTITION_KEYS = 10
RESERVED_KEYS = frozenset({"time_partition", "version", "name", "partitions", "strict"})
TIME_GRANULARITIES = ("minute", "hour", "day", "month")


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid artifact name, else raise InvalidNameError."""
    if not isinstance(name, str):
        raise InvalidNameError(f"artifact name must be a string, got {type(name).__name__}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"artifact name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if not NAME_RE.fullmatch(name) or name.endswith(".") or ".." in name:
        raise InvalidNameError(
            f"invalid artifact name {name!r}: use letters, digits, '_', '-' and '.', "
            "starting with a letter or '_' (a dotted prefix is a namespace: etl.daily_sales)"
        )
    return name


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid partition key, else raise InvalidNameError."""
    if not isinstance(key, str):
        raise InvalidNameError(f"partition key must be a string, got {type(key).__name__}")
    if not KEY_RE.fullmatch(key) or len(key) > MAX_KEY_LENGTH:
        raise InvalidNameError(
            f"invalid partition key {key!r}: use letters, digits and '_', starting with a "
            f"letter or '_', at most {MAX_KEY_LENGTH} characters"
        )
    if key in RESERVED_KEYS:
        raise InvalidNameError(
            f"{key!r} is reserved and cannot be a partition key "
            f"(reserved: {', '.join(sorted(RESERVED_KEYS))})"
        )
    return key


def partition_value(value: object) -> str:
    """The string stored for a partition value: ``str()``, dates as ISO dates."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Query:
    """The newest committed version of ``name`` whose partitions match.

    ``partitions`` must be contained in a version's partitions (subset match) unless
    ``strict`` is true, in which case they must be equal. ``time_partition``, when
    given, must equal the version's (truncated) time partition.

    Build one with ``artifact.query(...)`` or ``nbripple.query(name, ...)``: it carries
    the handle of the workspace it is for (for ``nr.query``, whichever workspace is
    current when it is used), so ``q.get()`` and ``q.load()`` work. One made by
    :func:`parse` carries none; pass it to ``nr.get`` / ``nr.load`` or a workspace.
    """

    name: str
    partitions: dict[str, str] = field(default_factory=dict)
    time_partition: datetime | None = None
    strict: bool = False
    _workspace: Handle | None = field(default=None, compare=False, repr=False)

    @property
    def uri(self) -> str:
        """The URI form, e.g. ``nbripple://blessed_model?blessed=true``."""
        params: list[tuple[str, str]] = sorted(self.partitions.items())
        if self.time_partition is not None:
            params.append(("time_partition", self.time_partition.isoformat()))
        if self.strict:
            params.append(("strict", "true"))
        query = urlencode(params, quote_via=quote)
        return f"{SCHEME}{self.name}" + (f"?{query}" if query else "")

    def describe(self) -> str:
        """A short human description used in error messages."""
        return self.uri

    def _handle(self) -> Handle:
        if self._workspace is None:
            raise NbrippleError(
                f"{self.uri} is not attached to a workspace: build it with nr.query(...) or "
                "artifact.query(...), or pass it to nr.get / nr.load"
            )
        return self._workspace

    def get(self) -> ArtifactVersion:
        """Resolve to an ArtifactVersion (records consumption), in the workspace this
        query was made for (``nr.query``: the current one, when it is used)."""
        return self._handle().get(self)

    def load(self, as_: str | None = None) -> Any:
        """Resolve and load the value (records consumption)."""
        return self._handle().load(self, as_=as_)

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class Pinned:
    """A reference to one exact version: ``name@version``."""

    name: str
    version: int

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.name}@{self.version}"

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def parse(ref: str) -> Pinned | Query:
    """Parse a reference or URI string into a :class:`Pinned` or a :class:`Query`."""
    if not isinstance(ref, str):
        raise InvalidReference(f"a reference must be a string, got {type(ref).__name__}")
    text = ref.strip()
    if not text:
        raise InvalidReference("empty reference: use 'name@N', 'nbripple://name' or a query URI")
    body = text
    if "://" in text:
        if not text.startswith(SCHEME):
            raise InvalidReference(
                f"unsupported URI {ref!r}: artifact URIs start with {SCHEME} "
                "(e.g. nbripple://blessed_model?blessed=true)"
            )
        body = text[len(SCHEME):]
    name_part, sep, query_part = body.partition("?")
    if "@" in name_part:
        name, _, number = name_part.partition("@")
        if sep:
            raise InvalidReference(
                f"malformed reference {ref!r}: a pinned version (@N) cannot have a query"
            )
        if not (number.isascii() and number.isdigit()) or int(number) < 1:
            raise InvalidReference(
                f"malformed reference {ref!r}: the version after '@' must be a positive integer"
            )
        _check_ref_name(name, ref)
        return Pinned(name, int(number))
    _check_ref_name(name_part, ref)
    partitions: dict[str, str] = {}
    time_partition: datetime | None = None
    strict = False
    if sep:
        try:
            pairs = parse_qsl(query_part, keep_blank_values=True, strict_parsing=True)
        except ValueError as exc:
            raise InvalidReference(
                f"malformed query in {ref!r}: expected key=value pairs joined by '&'"
            ) from exc
        for key, value in pairs:
            if key == "time_partition":
                try:
                    time_partition = datetime.fromisoformat(value)
                except ValueError as exc:
                    raise InvalidReference(
                        f"malformed time_partition {value!r} in {ref!r}: use an ISO date/time"
                    ) from exc
            elif key == "strict":
                if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
                    raise InvalidReference(
                        f"malformed strict={value!r} in {ref!r}: use strict=true or strict=false"
                    )
                strict = value.lower() in ("1", "true", "yes")
            else:
                try:
                    validate_key(key)
                except InvalidNameError as exc:
                    raise InvalidReference(f"malformed query in {ref!r}: {exc}") from exc
                if key in partitions:
                    raise InvalidReference(f"partition key {key!r} given twice in {ref!r}")
                partitions[key] = value
    return Query(name_part, partitions, time_partition, strict)


def _check_ref_name(name: str, ref: str) -> None:
    try:
        validate_name(name)
    except InvalidNameError as exc:
        raise InvalidReference(f"malformed reference {ref!r}: {exc}") from exc


def make_query(
    name: str,
    partitions: dict[str, Any],
    *,
    strict: bool = False,
    time_partition: datetime | date | str | None = None,
    workspace: Handle | None = None,
) -> Query:
    """A validated :class:`Query` (partition values as stored: ``str()``, ISO dates),
    attached to ``workspace`` when given."""
    validate_name(name)
    for key in partitions:
        validate_key(key)
    tp: datetime | None = None
    if time_partition is not None:
        tp = truncate_time(time_partition, "minute")
    return Query(name, {k: partition_value(v) for k, v in partitions.items()}, tp, strict,
                 _workspace=workspace)


def truncate_time(value: datetime | date | str, granularity: str) -> datetime:
    """Truncate a time partition to its granularity (naive values are taken as UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise PartitionError(f"time_partition {value!r} is not an ISO date/time") from exc
    if not isinstance(value, datetime):
        if not isinstance(value, date):
            raise PartitionError(
                f"time_partition must be a datetime, date or ISO string, got {type(value).__name__}"
            )
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    value = value.replace(tzinfo=UTC, microsecond=0, second=0)
    if granularity == "minute":
        return value
    if granularity == "hour":
        return value.replace(minute=0)
    if granularity == "day":
        return value.replace(minute=0, hour=0)
    if granularity == "month":
        return value.replace(minute=0, hour=0, day=1)
    raise PartitionError(f"unknown time granularity {granularity!r}")


def is_artifact_uri(text: object) -> bool:
    """True for strings that look like ``nbripple://...`` URIs."""
    return isinstance(text, str) and text.startswith(SCHEME)
