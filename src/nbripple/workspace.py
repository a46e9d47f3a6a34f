"""A workspace: one nbripple home with its catalog and store.

The module-level API (``nr.get``, ``nr.load``, ``nr.search``...) uses the current
workspace, resolved from the home rules in :mod:`nbripple.config`; call
:func:`use` to switch (tests and multi-project scripts do).
"""

from __future__ import annotations

import atexit
import difflib
import os
import shutil
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import codecs, context
from .cards import Card, as_card
from .catalog import Catalog, EmbeddedCatalog
from .config import Settings, find_home, load_settings
from .errors import (
    ArtifactNotFound,
    DeclarationMismatch,
    ExecutionNotFound,
    IntegrityError,
    InvalidReference,
    KindError,
    MissingPartitionKey,
    PartitionError,
    UnknownPartitionKey,
    VersionNotFound,
)
from .model import KINDS, ArtifactDecl, ArtifactVersion, CardRevision, Execution, NewVersion
from .refs import Pinned, Query, parse, partition_value
from .store import Store, hash_bytes, safe_join

if TYPE_CHECKING:
    from .artifact import Artifact

RefLike = str | Query | Pinned | ArtifactVersion
MAX_PARTITION_VALUE = 1024


def new_execution_id() -> str:
    return uuid.uuid4().hex[:16]


class Workspace:
    """One nbripple home: settings, catalog and store.

    Example::

        ws = Workspace("/data/team/.nbripple")
        ws.get("blessed_model@3")
    """

    def __init__(self, home: str | os.PathLike[str] | None = None,
                 catalog: Catalog | None = None) -> None:
        self.home: Path = find_home(home)
        self.settings: Settings = load_settings(self.home)
        self.catalog: Catalog = catalog or EmbeddedCatalog.for_path(
            self.settings.catalog_path,
            idle_release_ms=self.settings.idle_release_ms,
            lock_timeout_s=self.settings.lock_timeout_s,
        )
        self._store: Store | None = None
        self._lock = threading.RLock()
        self._interactive: tuple[int, str] | None = None  # (pid, execution id)
        # Recorded declarations, whose keys, time partitioning and kind never change.
        self._recorded: dict[str, ArtifactDecl] = {}

    def __repr__(self) -> str:
        return f"Workspace(home={str(self.home)!r}, store={self.settings.resolved_store_url!r})"

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.resolved_store_url, self.settings.store_options)
        return self._store

    # -- declarations -------------------------------------------------------
    def declaration(self, name: str) -> ArtifactDecl:
        """The recorded declaration of ``name`` (ArtifactNotFound if none)."""
        decl = self.catalog.get_artifact(name)
        if decl is None:
            raise ArtifactNotFound(self._unknown_artifact_message(name))
        return decl

    def check_declaration(self, decl: ArtifactDecl) -> ArtifactDecl:
        """Compare a declaration in code with the recorded one; raise on a mismatch.

        Only the fixed parts of the recorded declaration are compared, so it is
        remembered once seen: a create_from need not open the catalog file before a
        long write as well as after it (its description and latest_version may be
        stale).
        """
        recorded = self._recorded.get(decl.name) or self.catalog.get_artifact(decl.name)
        if recorded is None:
            return decl
        self._recorded[decl.name] = recorded
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

    def _unknown_artifact_message(self, name: str) -> str:
        names = [d.name for d in self.catalog.list_artifacts()]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else (
            "; `nbripple ls` lists the artifacts" if names else
            "; nothing has been committed in this home yet"
        )
        return f"no artifact named {name!r} in {self.home}{hint}"

    # -- writing ------------------------------------------------------------
    def create_from(
        self,
        artifact: Artifact,
        value: Any,
        card: Card | str | None = None,
        *,
        time_partition: datetime | date | str | None = None,
        partitions: dict[str, Any] | None = None,
        execution_id: str | None = None,
    ) -> ArtifactVersion:
        """Store ``value`` as a new version of ``artifact`` (see Artifact.create_from)."""
        decl = artifact.declaration
        parts = self.normalize_partitions(decl, partitions or {}, complete=True)
        tp = self._time_partition(decl, time_partition)
        card_obj = as_card(card)
        recorded = self.check_declaration(decl)  # also when the kind is pinned in code
        pinned = decl.kind or recorded.kind
        slow = pinned in ("table", "file", "directory") or codecs.table_type(value) is not None \
            or isinstance(value, os.PathLike)
        release = self._warm_catalog(slow and context.current_run() is None)
        try:
            try:
                encoded = codecs.encode(value, self.store, pinned)
            except KindError as exc:
                if pinned is None:
                    raise
                raise KindError(f"{decl.name} is declared kind={pinned!r}: {exc}") from exc
            return self._commit_or_stage(decl, parts, tp, card_obj, encoded, execution_id)
        finally:
            release()

    def _warm_catalog(self, wanted: bool) -> Callable[[], None]:
        """While a large blob is written or read, open the catalog in the background
        (for the commit or the consumption record that follows); returns the release."""
        warm = getattr(self.catalog, "warm", None)
        if warm is None or not wanted:
            return lambda: None
        release: Callable[[], None] = warm()
        return release

    def _commit_or_stage(
        self,
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
            from . import staging

            return self._bind(staging.stage(self, run, new))
        producer = execution_id or self.interactive_execution_id()
        (version,) = self.catalog.commit(producer, [new])
        return self._bind(version)

    def normalize_partitions(
        self, decl: ArtifactDecl, given: dict[str, Any], *, complete: bool
    ) -> dict[str, str]:
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
            if len(text) > MAX_PARTITION_VALUE or any(ord(ch) < 32 for ch in text):
                raise PartitionError(
                    f"partition value for {key!r} must be at most {MAX_PARTITION_VALUE} "
                    "characters without control characters (newlines, NUL...)"
                )
            out[key] = text
        return out

    def _time_partition(
        self, decl: ArtifactDecl, value: datetime | date | str | None
    ) -> datetime | None:
        if not decl.time_partitioned:
            if value is not None:
                raise PartitionError(
                    f"{decl.name} is not time-partitioned; declare it with "
                    "time_partitioned=True to give a time_partition"
                )
            return None
        return truncate_time(value if value is not None else datetime.now(UTC),
                             decl.time_granularity)

    # -- executions ---------------------------------------------------------
    def interactive_execution_id(self) -> str:
        """The ``interactive`` execution of this process (created on first use)."""
        with self._lock:
            pid = os.getpid()
            if self._interactive is not None and self._interactive[0] == pid:
                return self._interactive[1]
            label = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv[:3]))
            execution = self._new_execution("interactive", label=label or "python")
            self._interactive = (pid, execution.id)
            atexit.register(self._finish_interactive, execution.id, pid)
            return execution.id

    def _finish_interactive(self, execution_id: str, pid: int) -> None:
        if os.getpid() != pid:
            return
        try:
            self.catalog.update_execution(
                execution_id, status="succeeded", finished_at=datetime.now(UTC)
            )
            self.catalog.close()
        except Exception:  # the process is exiting; the row stays 'running'
            pass

    def _new_execution(self, kind: str, *, label: str | None = None, **fields: Any) -> Execution:
        execution = Execution(
            id=new_execution_id(),
            kind=kind,
            status=fields.pop("status", "running"),
            notebook=fields.pop("notebook", None),
            notebook_hash=fields.pop("notebook_hash", None),
            parameters=fields.pop("parameters", {}),
            requested=fields.pop("requested", None),
            cwd=fields.pop("cwd", None),
            started_at=datetime.now(UTC),
            finished_at=None,
            error=None,
            output_notebook_hash=None,
            pid=os.getpid(),
            host=socket.gethostname(),
            trigger=fields.pop("trigger", None),
            trigger_artifact=fields.pop("trigger_artifact", None),
            trigger_version=fields.pop("trigger_version", None),
            parent_id=fields.pop("parent_id", None),
            chain_depth=fields.pop("chain_depth", 0),
            label=label,
        )
        if fields:
            raise TypeError(f"unexpected execution fields {sorted(fields)}")
        self.catalog.create_execution(execution)
        return replace(execution, _workspace=self)

    @contextmanager
    def external_execution(self, label: str) -> Iterator[str]:
        """An ``external`` execution (CLI push, scripts) around a block of work."""
        execution = self._new_execution("external", label=label)
        try:
            yield execution.id
        except BaseException as exc:
            self.catalog.update_execution(
                execution.id, status="failed", finished_at=datetime.now(UTC),
                error={"ename": type(exc).__name__, "evalue": str(exc)},
            )
            raise
        self.catalog.update_execution(execution.id, status="succeeded",
                                      finished_at=datetime.now(UTC))

    def notebook_file(self, digest: str, name: str) -> Path:
        """A stored notebook (snapshot or executed) copied into the local cache."""
        target = safe_join(self.settings.resolved_cache_dir / "notebooks" / digest, name)
        if not target.exists():
            self.store.fetch_to(digest, target, label=name)
        return target

    def consumer_execution_id(self) -> str:
        run = context.current_run()
        return run.execution_id if run is not None else self.interactive_execution_id()

    def execution(self, execution_id: str) -> Execution:
        found = self.catalog.get_execution(execution_id)
        if found is None:
            raise ExecutionNotFound(
                f"no execution with id {execution_id!r}; `nbripple executions` lists them"
            )
        return replace(found, _workspace=self)

    def executions(self, notebook: str | None = None, status: str | None = None,
                   kind: str | None = None, limit: int = 50) -> list[Execution]:
        found = self.catalog.list_executions(notebook=notebook, status=status, kind=kind,
                                             limit=limit)
        return [replace(e, _workspace=self) for e in found]

    def execution_outputs(self, execution_id: str) -> list[ArtifactVersion]:
        return [self._bind(v) for v in self.catalog.versions_produced_by(execution_id)]

    # -- reading ------------------------------------------------------------
    def resolve(self, ref: RefLike) -> ArtifactVersion:
        """The version a reference or query names, without recording consumption."""
        if isinstance(ref, ArtifactVersion):
            return self._bind(ref)
        target = parse(ref) if isinstance(ref, str) else ref
        if isinstance(target, Pinned):
            found = self.catalog.get_version(target.name, target.version)
            if found is None:
                decl = self.declaration(target.name)
                latest = decl.latest_version
                raise VersionNotFound(
                    f"{target} does not exist: {target.name} has "
                    + (f"versions 1..{latest}" if latest else "no committed versions")
                )
            return self._bind(found)
        if isinstance(target, Query):
            return self._bind(self._find(target))
        raise InvalidReference(
            f"cannot resolve {ref!r}: pass 'name@N', an nbripple:// URI, a Query or a version"
        )

    def _find(self, query: Query) -> ArtifactVersion:
        decl = self.declaration(query.name)
        self.normalize_partitions(decl, query.partitions, complete=False)
        if query.time_partition is not None:
            query = replace(
                query, time_partition=truncate_time(query.time_partition, decl.time_granularity)
            )
        found = self.catalog.find_version(query)
        if found is not None:
            return found
        if decl.latest_version == 0:
            raise VersionNotFound(f"{query.uri} matches nothing: {query.name} has no versions yet")
        keys = list(query.partitions) or list(decl.partition_keys)
        existing = self.catalog.partition_values(query.name, keys)
        listing = "; ".join(
            f"{key}: {', '.join(values) if values else '(none)'}"
            for key, values in existing.items()
        )
        wanted = ", ".join(f"{k}={v}" for k, v in query.partitions.items())
        if query.time_partition is not None:
            wanted += f"{', ' if wanted else ''}time_partition={query.time_partition.isoformat()}"
        return_hint = f"existing values — {listing}" if listing else "it has no partition keys"
        raise VersionNotFound(
            f"no version of {query.name} matches {wanted or 'the query'}"
            f"{' exactly' if query.strict else ''}; {return_hint}"
        )

    def get(self, ref: RefLike, *, record: bool = True) -> ArtifactVersion:
        """Resolve a reference or query; records consumption by the current execution."""
        version = self.resolve(ref)
        if record:
            self.record_consumption(version)
        return version

    def record_consumption(self, version: ArtifactVersion, parameter: str | None = None) -> None:
        self.catalog.record_consumption(self.consumer_execution_id(), version.name,
                                        version.version, parameter)

    def load(self, ref: RefLike, *, as_: str | None = None) -> Any:
        """Resolve and load a value; records the consumption as :meth:`get` does.

        A pinned version this process has already seen is not looked up again (its
        data never changes), and while a large value is read the catalog is opened
        in the background for the consumption record, so neither waits on the file.
        """
        version = self._known_version(ref) or self.get(ref, record=False)
        release = self._warm_catalog(version.kind in ("table", "file", "directory"))
        try:
            value = self._read_value(version, as_)
            if version.version > 0:  # a staged output is not an input
                self.record_consumption(version)
        finally:
            release()
        return value

    def _known_version(self, ref: RefLike) -> ArtifactVersion | None:
        """A pinned, blob-backed version this process has already read (its data never
        changes, and the blob itself is verified against the hash on every read)."""
        cached = getattr(self.catalog, "cached_version", None)
        if cached is None or not isinstance(ref, str):
            return None
        try:
            target = parse(ref)
        except InvalidReference:
            return None
        if not isinstance(target, Pinned):
            return None
        found: ArtifactVersion | None = cached(target.name, target.version)
        if found is None or found.kind not in ("table", "file", "directory"):
            return None  # small values: asking the catalog costs less than the read
        return self._bind(found)

    def load_version(self, version: ArtifactVersion, *, as_: str | None = None,
                     record: bool = True) -> Any:
        """Load a version's value and record that the current execution consumed it."""
        value = self._read_value(version, as_)
        if record and version.version > 0:  # a staged output is not an input
            self.record_consumption(version)
        return value

    def _read_value(self, version: ArtifactVersion, as_: str | None) -> Any:
        label = version.ref
        if as_ is not None and version.kind != "table":
            raise KindError(f"{label} is a {version.kind}; as_= applies to tables only")
        if version.kind == "table":
            return self.store.read_verified(  # decoded while the hash is checked
                version.content_hash,
                lambda buffer: codecs.decode_table(buffer, version.python_type, as_),
                label=label,
            )
        if version.kind == "value":
            if version.inline_value is not None:
                actual = hash_bytes(version.inline_value.encode("utf-8"))
                if actual != version.content_hash:
                    raise IntegrityError(
                        f"the inline value of {label} hashes to {actual}, not "
                        f"{version.content_hash}: the catalog row was modified outside nbripple"
                    )
                return codecs.decode_value(version.inline_value)
            return codecs.decode_value(self.store.read(version.content_hash, label=label))
        if version.kind == "object":
            return codecs.decode_object(self.store.read(version.content_hash, label=label))
        if version.kind in ("file", "directory"):
            return self._cached_path(version)
        raise KindError(f"{label} has unknown kind {version.kind!r}")

    def _cached_path(self, version: ArtifactVersion) -> Path:
        cache = self.settings.resolved_cache_dir
        if version.kind == "file":
            base = cache / "files" / version.content_hash
            target = safe_join(base, str(version.meta.get("filename") or "data"))
            if not target.exists():
                self.store.fetch_to(version.content_hash, target, label=version.ref)
            return target
        # Keyed by content and name: identical trees may be stored under different names.
        base = cache / "dirs" / version.content_hash
        target = safe_join(base, str(version.meta.get("dirname") or "data"))
        if not target.exists():
            base.mkdir(parents=True, exist_ok=True)
            tmp = base / f".{uuid.uuid4().hex}.part"
            try:
                manifest = self.store.read(version.content_hash, label=version.ref)
                codecs.materialize_directory(manifest, self.store, tmp, version.ref)
                try:
                    os.rename(tmp, target)  # atomic: the tree appears only when complete
                except OSError:  # another process finished first
                    if not target.exists():
                        raise
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return target

    def download(self, version: ArtifactVersion, dest: str | os.PathLike[str]) -> Path:
        """Write a version's data to ``dest`` (a directory keeps the original name)."""
        destination = Path(dest)
        if version.kind in ("file", "directory"):
            source = self._cached_path(version)
            if destination.is_dir():
                destination = destination / source.name
            if version.kind == "file":
                shutil.copyfile(source, destination)
            else:
                shutil.copytree(source, destination, dirs_exist_ok=True)
            return destination
        if destination.is_dir():
            suffix = {"table": ".parquet", "value": ".json", "object": ".pickle"}[version.kind]
            destination = destination / f"{version.name}@{version.version}{suffix}"
        if version.kind == "value" and version.inline_value is not None:
            self._read_value(version, None)  # verifies the hash
            destination.write_text(version.inline_value, encoding="utf-8")
        else:
            self.store.fetch_to(version.content_hash, destination, label=version.ref)
        return destination

    def versions(self, name: str, limit: int | None = None) -> list[ArtifactVersion]:
        """Every version of ``name``, newest first."""
        self.declaration(name)
        return [self._bind(v) for v in self.catalog.list_versions(name, limit)]

    def artifacts(self) -> list[ArtifactDecl]:
        return self.catalog.list_artifacts()

    def search(
        self,
        text: str | None = None,
        *,
        partitions: dict[str, Any] | None = None,
        kind: str | None = None,
        latest_only: bool = True,
        limit: int = 50,
    ) -> list[ArtifactVersion]:
        """Versions whose artifact name or description, or card, contain every word of
        ``text`` (case-insensitive), newest first.

        With ``latest_only`` each artifact contributes its newest version that matches
        ``partitions`` and ``kind``, if that version matches the text; with
        ``latest_only=False`` every matching version counts.
        """
        if kind is not None and kind not in KINDS:
            raise KindError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
        if limit < 1:
            raise InvalidReference(f"search limit must be at least 1, got {limit}")
        terms = (text or "").split()
        parts: dict[str, str] = {}
        for key, value in (partitions or {}).items():
            from .refs import validate_key

            parts[validate_key(key)] = partition_value(value)
        found = self.catalog.search(terms, partitions=parts, kind=kind,
                                    latest_only=latest_only, limit=limit)
        return [self._bind(v) for v in found]

    # -- cards --------------------------------------------------------------
    def set_card(self, ref: RefLike, card: Card | str) -> CardRevision:
        """Add a card revision to a version (the history is kept)."""
        version = self.resolve(ref)
        card_obj = as_card(card)
        assert card_obj is not None
        return self.catalog.add_card(version.name, version.version, card_obj.card_type,
                                     card_obj.markdown)

    def card_history(self, ref: RefLike) -> list[CardRevision]:
        version = self.resolve(ref)
        return self.catalog.card_history(version.name, version.version)

    def _bind(self, version: ArtifactVersion) -> ArtifactVersion:
        if version._workspace is self:
            return version
        return replace(version, _workspace=self)


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


_current: Workspace | None = None
_current_lock = threading.Lock()


def current() -> Workspace:
    """The current workspace (created from the home rules on first use)."""
    global _current
    with _current_lock:
        run = context.current_run()
        if _current is None:
            _current = Workspace(run.home if run is not None and run.home else None)
        return _current


def use(home: str | os.PathLike[str] | None = None) -> Workspace:
    """Switch the current workspace to ``home`` (re-resolved when None) and return it."""
    global _current
    with _current_lock:
        _current = Workspace(home)
        return _current
