"""Writing versions: declarations checked against the catalog, partitions normalized,
values encoded and committed (or staged inside a run), and ``push`` of files,
directories and tables under an external execution.
"""

from __future__ import annotations

import unicodedata
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import codecs, context
from ..cards import Card, as_card
from ..errors import (
    DeclarationMismatch,
    IngestError,
    KindError,
    MissingPartitionKey,
    PartitionError,
    UnknownPartitionKey,
)
from ..model import ArtifactDecl, ArtifactVersion, NewVersion, declare
from ..refs import partition_value, truncate_time
from .executions import external_execution

if TYPE_CHECKING:
    from .workspace import Workspace

MAX_PARTITION_VALUE = 1024
# Besides the control characters (C0, DEL, C1): line and paragraph separators and the
# bidi overrides, which rearrange how a value (and the line it is printed on) reads.
_REFUSED_IN_PARTITIONS = frozenset("\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
                                   "\u2066\u2067\u2068\u2069")
PUSH_KINDS = ("table", "file", "directory")
TABLE_SUFFIXES = (".parquet", ".pq", ".csv")


# -- declarations and partitions -------------------------------------------------------
def check_declaration(ws: Workspace, decl: ArtifactDecl) -> ArtifactDecl:
    """Compare a declaration in code with the recorded one; raise on a mismatch.

    Only the fixed parts of the recorded declaration are compared, so it is
    remembered once seen: a create_from need not open the catalog file before a
    long write as well as after it (its description and latest_version may be
    stale).
    """
    recorded = ws._recorded.get(decl.name) or ws.catalog.get_artifact(decl.name)
    if recorded is None:
        return decl
    ws._recorded[decl.name] = recorded
    if set(recorded.partition_keys) != set(decl.partition_keys):
        raise DeclarationMismatch(
            f"{decl.name} was first declared with partition keys "
            f"({', '.join(recorded.partition_keys) or 'none'}) but is now declared with "
            f"({', '.join(decl.partition_keys) or 'none'}); partition keys are fixed at "
            "the first declaration, so declare a new artifact name for the new layout"
        )
    if recorded.time_partitioned != decl.time_partitioned:
        raise DeclarationMismatch(
            f"{decl.name} was first declared with time_partitioned="
            f"{recorded.time_partitioned}, now with {decl.time_partitioned}"
        )
    if recorded.kind and decl.kind and recorded.kind != decl.kind:
        raise DeclarationMismatch(
            f"{decl.name} was first declared with kind={recorded.kind!r}, now with "
            f"kind={decl.kind!r}"
        )
    return recorded


def normalize_partitions(decl: ArtifactDecl, given: dict[str, Any], *,
                         complete: bool) -> dict[str, str]:
    """Validate partition values against the declared keys; return them as strings."""
    keys = decl.partition_keys
    unknown = [key for key in given if key not in keys]
    if unknown:
        listing = ", ".join(keys) if keys else "none declared"
        raise UnknownPartitionKey(
            f"{unknown[0]!r} is not a partition key of {decl.name} (keys: {listing})"
        )
    if complete:
        missing = [key for key in keys if key not in given]
        if missing:
            raise MissingPartitionKey(
                f"{decl.name} needs a value for partition key"
                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"(e.g. create_from(value, {missing[0]}=...))"
            )
    out: dict[str, str] = {}
    for key in keys:
        if key not in given:
            continue
        text = partition_value(given[key])
        bad = next((ch for ch in text if _refused_in_partition(ch)), None)
        if len(text) > MAX_PARTITION_VALUE or bad is not None:
            found = "" if bad is None else \
                f" (it holds U+{ord(bad):04X} {unicodedata.name(bad, 'a control character')})"
            raise PartitionError(
                f"partition value for {key!r} must be at most {MAX_PARTITION_VALUE} "
                "characters without control characters (newlines, NUL, DEL, C1 controls, "
                f"line separators, bidi overrides){found}"
            )
        out[key] = text
    return out


def _refused_in_partition(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _REFUSED_IN_PARTITIONS


def resolve_time_partition(decl: ArtifactDecl,
                           value: datetime | date | str | None) -> datetime | None:
    """The truncated time partition of a new version of ``decl`` (now if not given)."""
    if not decl.time_partitioned:
        if value is not None:
            raise PartitionError(
                f"{decl.name} is not time-partitioned; declare it with "
                "time_partitioned=True to give a time_partition"
            )
        return None
    return truncate_time(value if value is not None else datetime.now(UTC),
                         decl.time_granularity)


# -- create_from -----------------------------------------------------------------------
def create_from(
    ws: Workspace,
    decl: ArtifactDecl,
    value: Any,
    card: Card | str | None = None,
    *,
    time_partition: datetime | date | str | None = None,
    partitions: dict[str, Any] | None = None,
    execution_id: str | None = None,
    follow_symlinks: bool = False,
) -> ArtifactVersion:
    """Store ``value`` as a new version of the declared artifact (see Artifact.create_from)."""
    parts = normalize_partitions(decl, partitions or {}, complete=True)
    tp = resolve_time_partition(decl, time_partition)
    card_obj = as_card(card)
    recorded = check_declaration(ws, decl)  # also when the kind is pinned in code
    pinned = decl.kind or recorded.kind
    kind = pinned or _unpinned_kind(ws, decl, recorded is not decl, value)
    slow = kind in ("table", "file", "directory")
    release = ws._warm_catalog(slow and context.current_run() is None)
    try:
        try:
            encoded = codecs.encode(value, ws.store, kind, follow_symlinks=follow_symlinks)
        except KindError as exc:
            if pinned is None:
                raise
            raise type(exc)(f"{decl.name} is declared kind={pinned!r}: {exc}") from exc
        version = _commit_or_stage(ws, decl, parts, tp, card_obj, encoded, execution_id)
    finally:
        release()
    if version.version == 1:
        _first_kinds.setdefault(ws, {})[decl.name] = version.kind
    return version


# The kind of each artifact's first committed version, per workspace (it never changes).
_first_kinds: weakref.WeakKeyDictionary[Workspace, dict[str, str]] = \
    weakref.WeakKeyDictionary()


def fixed_kind(ws: Workspace, name: str) -> str | None:
    """The kind of the first committed version of ``name`` (None before there is one):
    the kind every version takes while the declaration pins none."""
    known = _first_kinds.setdefault(ws, {})
    if name not in known:
        first = ws.catalog.get_version(name, 1)
        if first is None:
            return None
        known[name] = first.kind
    return known[name]


def _unpinned_kind(ws: Workspace, decl: ArtifactDecl, recorded: bool, value: Any) -> str:
    """The kind ``value`` is stored as for an artifact whose declaration pins none: the
    inferred kind, which must be the kind of the first version, so a consumer never
    finds (say) a pickle where it read JSON before."""
    kind = codecs.infer_kind(value)
    first = fixed_kind(ws, decl.name) if recorded else None
    if first is not None and first != kind:
        raise KindError(
            f"{decl.name} holds {first} versions (its first version fixed the kind), but this "
            f"value would be stored as {kind}; pass a {first}, or declare "
            f"nr.Artifact({decl.name!r}, ..., kind={kind!r}) to store {kind} versions from now on"
        )
    return kind


def _commit_or_stage(
    ws: Workspace,
    decl: ArtifactDecl,
    parts: dict[str, str],
    tp: datetime | None,
    card_obj: Card | None,
    encoded: codecs.Encoded,
    execution_id: str | None,
) -> ArtifactVersion:
    new = NewVersion(
        artifact=decl,
        partitions=parts,
        time_partition=tp,
        **vars(encoded),  # kind, python_type, content_hash, size, uri, schema, ...
        card_type=card_obj.card_type if card_obj else None,
        card=card_obj.markdown if card_obj else None,
    )
    run = context.current_run()
    if run is not None and execution_id is None:
        from .. import staging

        return ws._bind(staging.stage(ws, run, new))
    producer = execution_id or ws.interactive_execution_id()
    (version,) = ws.catalog.commit(producer, [new])
    return ws._bind(version)


# -- push: files, directories and tables from outside Python --------------------------
@dataclass(frozen=True)
class Pushed:
    """What :func:`push` made: the version and the external execution that produced it."""

    version: ArtifactVersion
    execution_id: str


def push(
    ws: Workspace,
    name: str,
    path: Path,
    *,
    partitions: dict[str, str],
    card: Card | None = None,
    kind: str | None = None,
    description: str | None = None,
    time_partition: str | None = None,
    label: str = "nbripple push",
    notify: Callable[[str], None] | None = None,
    follow_symlinks: bool = False,
) -> Pushed:
    """Register ``path`` (a file, a directory, a .parquet/.csv table) as a new version
    of ``name`` under an ``external`` execution labelled ``label``.

    A new artifact is declared with the keys of ``partitions`` (time-partitioned by day
    when ``time_partition`` is given); a declared one must fit. Everything is checked
    before the execution is recorded, so a typo leaves no trace. ``notify`` receives
    remarks for the user (a description that is not applied).

    Example::

        push(ws, "sales", Path("data/sales.csv"), partitions={"region": "eu"}).version
    """
    recorded = ws.catalog.get_artifact(name)
    if recorded is not None:
        if kind and recorded.kind and kind != recorded.kind:
            raise KindError(f"{name} is declared kind={recorded.kind!r}; it cannot take a {kind}")
        if recorded.kind and recorded.kind not in PUSH_KINDS:
            raise KindError(f"{name} is declared kind={recorded.kind!r}; push stores tables, "
                            "files and directories only: create its versions from Python")
        if time_partition is not None and not recorded.time_partitioned:
            raise PartitionError(f"{name} is not time-partitioned; drop --time-partition")
        if description is not None and description != recorded.description and notify:
            notify(f"note: {name} keeps the description of its first declaration")
        decl = declare(name, recorded.partition_keys, recorded.time_partitioned,
                       recorded.time_granularity, recorded.kind, recorded.description)
    else:
        decl = declare(name, list(partitions), time_partitioned=time_partition is not None,
                       description=description or "")
    parts = normalize_partitions(decl, partitions, complete=True)
    if time_partition is not None:
        truncate_time(time_partition, decl.time_granularity)
    if kind is None and decl.kind is None and recorded is not None:
        kind = fixed_kind(ws, name)  # e.g. a .csv pushed to an artifact of files
        if kind is not None and kind not in PUSH_KINDS:
            raise KindError(f"{name} holds {kind} versions (its first version fixed the "
                            "kind); push stores tables, files and directories only: create "
                            "its versions from Python")
    value = ingest_value(path, kind or decl.kind, name)
    with external_execution(ws, label) as execution_id:
        version = create_from(ws, decl, value, card, time_partition=time_partition,
                              partitions=parts, execution_id=execution_id,
                              follow_symlinks=follow_symlinks)
    return Pushed(version, execution_id)


def ingest_value(path: Path, kind: str | None, name: str) -> Any:
    """What to store for ``path`` as ``kind`` (None: inferred from the path)."""
    if path.is_dir():
        if kind not in (None, "directory"):
            raise KindError(f"{path} is a directory; {name} takes kind {kind!r}")
        return path
    if kind == "directory":
        raise KindError(f"{path} is a file, but {name} takes directories (kind 'directory')")
    if kind == "table" or (kind is None and path.suffix.lower() in TABLE_SUFFIXES):
        return read_table(path)
    return path


def read_table(path: Path) -> Any:
    """A .parquet or .csv file as a pyarrow Table."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pa_csv.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"cannot read {path} as a {suffix[1:]} table: {exc}; fix the file or "
                          "push it with --kind file to keep it as a plain file") from exc
    raise IngestError(f"cannot read {path} as a table: push a .parquet or .csv file, or use "
                      "--kind file")
