"""A workspace: one nbripple home with its catalog and store, and the reads of it.

Writing (:mod:`.writing`) and executions (:mod:`.executions`) are collaborators the
methods below delegate to. The module-level API (``nr.get``, ``nr.load``,
``nr.search``...) uses the current workspace, resolved from the home rules in
:mod:`nbripple.config`; call :func:`use` to switch (tests and multi-project scripts do).
"""

from __future__ import annotations

import difflib
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import context
from ..cards import Card, as_card
from ..catalog import Catalog
from ..config import Settings, resolve_settings
from ..errors import (
    ArtifactNotFound,
    ExecutionNotFound,
    InvalidReference,
    KindError,
    VersionNotFound,
)
from ..model import KINDS, ArtifactDecl, ArtifactVersion, CardRevision, Execution
from ..refs import Pinned, Query, parse, partition_value, truncate_time
from ..registry import make_catalog
from ..store import Store
from . import executions, values, writing
from .views import Views

if TYPE_CHECKING:
    from ..artifact import Artifact

RefLike = str | Query | Pinned | ArtifactVersion
BLOB_KINDS = ("table", "file", "directory")


class Workspace(Views):
    """One nbripple home: settings, catalog and store.

    Example::

        ws = Workspace("/data/team/.nbripple")
        ws.get("blessed_model@3")
    """

    def __init__(self, home: str | os.PathLike[str] | None = None,
                 catalog: Catalog | None = None) -> None:
        self.settings: Settings = resolve_settings(home)
        self.home: Path = self.settings.home
        self._catalog: Catalog = catalog or make_catalog(self.settings)
        self._store: Store | None = None
        self._lock = threading.RLock()
        self._interactive: tuple[int, str] | None = None  # (pid, execution id)
        # Recorded declarations, whose keys, time partitioning and kind never change.
        self._recorded: dict[str, ArtifactDecl] = {}

    def __repr__(self) -> str:
        return f"Workspace(home={str(self.home)!r}, store={self.settings.resolved_store_url!r})"

    @property
    def catalog(self) -> Catalog:
        """The catalog; using it sweeps executions whose process is gone (at most once
        per process every :data:`~nbripple.service.executions.SWEEP_EVERY_S`)."""
        executions.sweep_if_due(self)
        return self._catalog

    @catalog.setter
    def catalog(self, value: Catalog) -> None:
        self._catalog = value

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self._store_url(), self.settings.store_options)
        return self._store

    def _store_url(self) -> str:
        """Where blobs go: the store this home names, unless the catalog is served and
        the home names only a path relative to itself (as a new home does) — then the
        server's store, which every process of that catalog shares (its other clients
        may run on other machines). An absolute path or a URL set here always wins."""
        own = self.settings.store.url
        if "://" in own or Path(own).expanduser().is_absolute():
            return self.settings.resolved_store_url
        ask = getattr(self._catalog, "server_store_url", None)
        served = ask() if ask is not None else None
        return str(served) if served else self.settings.resolved_store_url

    def release(self) -> None:
        """Let other processes have the catalog file now (it reopens on the next use)."""
        self.catalog.close()

    def _warm_catalog(self, wanted: bool) -> Callable[[], None]:
        """While a large blob is written or read, open the catalog in the background
        (for the commit or the consumption record that follows); returns the release."""
        warm = getattr(self.catalog, "warm", None)
        if warm is None or not wanted:
            return lambda: None
        release: Callable[[], None] = warm()
        return release

    def _bind(self, version: ArtifactVersion) -> ArtifactVersion:
        if version._workspace is self:
            return version
        return replace(version, _workspace=self)

    # -- declarations -------------------------------------------------------
    def declaration(self, name: str) -> ArtifactDecl:
        """The recorded declaration of ``name`` (ArtifactNotFound if none)."""
        decl = self.catalog.get_artifact(name)
        if decl is None:
            raise ArtifactNotFound(self._unknown_artifact_message(name))
        return decl

    def check_declaration(self, decl: ArtifactDecl) -> ArtifactDecl:
        """Compare a declaration in code with the recorded one; raise on a mismatch."""
        return writing.check_declaration(self, decl)

    def normalize_partitions(self, decl: ArtifactDecl, given: dict[str, Any], *,
                             complete: bool) -> dict[str, str]:
        """Validate partition values against the declared keys; return them as strings."""
        return writing.normalize_partitions(decl, given, complete=complete)

    def _unknown_artifact_message(self, name: str) -> str:
        names = [d.name for d in self.catalog.list_artifacts()]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else (
            "; `nbripple ls` lists the artifacts" if names else
            "; nothing has been committed in this home yet"
        )
        return f"no artifact named {name!r} in {self.home}{hint}"

    # -- writing (see .writing) ---------------------------------------------
    def create_from(
        self,
        artifact: Artifact,
        value: Any,
        card: Card | str | None = None,
        *,
        time_partition: datetime | date | str | None = None,
        partitions: dict[str, Any] | None = None,
        execution_id: str | None = None,
        follow_symlinks: bool = False,
    ) -> ArtifactVersion:
        """Store ``value`` as a new version of ``artifact`` (see Artifact.create_from)."""
        return writing.create_from(self, artifact.declaration, value, card,
                                   time_partition=time_partition, partitions=partitions,
                                   execution_id=execution_id, follow_symlinks=follow_symlinks)

    # -- executions (see .executions) ---------------------------------------
    def interactive_execution_id(self) -> str:
        """The ``interactive`` execution of this process (created on first use)."""
        return executions.interactive_execution_id(self)

    def _new_execution(self, kind: str, *, label: str | None = None, **fields: Any) -> Execution:
        return executions.new_execution(self, kind, label=label, **fields)

    def external_execution(self, label: str) -> AbstractContextManager[str]:
        """An ``external`` execution (CLI push, scripts) around a block of work."""
        return executions.external_execution(self, label)

    def consumer_execution_id(self) -> str:
        return executions.consumer_execution_id(self)

    def notebook_file(self, digest: str, name: str) -> Path:
        """A stored notebook (snapshot or executed) copied into the local cache, verified."""
        return values.cached_notebook(self, digest, name)

    def find_execution(self, execution_id: str) -> Execution | None:
        """The execution with that id, or None."""
        found = self.catalog.get_execution(execution_id)
        return None if found is None else replace(found, _workspace=self)

    def execution(self, execution_id: str) -> Execution:
        found = self.find_execution(execution_id)
        if found is None:
            raise ExecutionNotFound(
                f"no execution with id {execution_id!r}; `nbripple executions` lists them"
            )
        return found

    def executions(self, notebook: str | None = None, status: str | None = None,
                   kind: str | None = None, limit: int = 50, *,
                   sweep: bool = False) -> list[Execution]:
        """Recent executions, newest first. ``sweep``: first mark every execution whose
        process is gone as failed (what ``nbripple executions`` and ``nr.executions``
        show); without it the sweep runs at most every SWEEP_EVERY_S, so a loop that
        polls this stays cheap."""
        if sweep:
            executions.sweep_if_due(self, every_s=0.0)
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

    def fixed_declaration(self, name: str) -> ArtifactDecl:
        """The declaration of ``name`` for its fixed parts only (partition keys, time
        partitioning, kind once set): remembered once read, so resolving a query asks
        the catalog one question, not two. Its description and latest_version may be
        stale; :meth:`declaration` reads them fresh."""
        decl = self._recorded.get(name)
        if decl is None:
            decl = self._recorded[name] = self.declaration(name)
        return decl

    def _find(self, query: Query, consumer: str | None = None) -> ArtifactVersion:
        """The version ``query`` names; with ``consumer``, its consumption by that
        execution recorded in the same catalog call."""
        decl = self.fixed_declaration(query.name)
        writing.normalize_partitions(decl, query.partitions, complete=False)
        if query.time_partition is not None:
            query = replace(
                query, time_partition=truncate_time(query.time_partition, decl.time_granularity)
            )
        found = self.catalog.find_version(query) if consumer is None else \
            self.catalog.find_and_consume(query, consumer)
        if found is not None:
            return found
        decl = self.declaration(query.name)  # fresh: what the message says is now
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
        target = parse(ref) if isinstance(ref, str) else ref
        if record and isinstance(target, Query):  # one catalog call for both
            return self._bind(self._find(target, self.consumer_execution_id()))
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
        release = self._warm_catalog(version.kind in BLOB_KINDS)
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
        if found is None or found.kind not in BLOB_KINDS:
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
        return values.read_value(self, version, as_)

    def _cached_path(self, version: ArtifactVersion) -> Path:
        return values.cached_path(self, version)

    def download(self, version: ArtifactVersion, dest: str | os.PathLike[str]) -> Path:
        """Write a version's data to ``dest`` (a directory keeps the original name)."""
        return values.download(self, version, dest)

    def versions(self, name: str, limit: int | None = None) -> list[ArtifactVersion]:
        """Every version of ``name``, newest first."""
        self.declaration(name)
        return [self._bind(v) for v in self.catalog.list_versions(name, limit)]

    def artifacts(self) -> list[ArtifactDecl]:
        return self.catalog.list_artifacts()

    def artifacts_with_latest(self) -> list[tuple[ArtifactDecl, ArtifactVersion | None]]:
        """Every artifact with its newest version (None before the first commit)."""
        decls = self.artifacts()
        # one query for the newest version of every artifact
        latest = {v.name: v for v in self.search(None, latest_only=True,
                                                 limit=max(1, len(decls)))}
        return [(decl, latest.get(decl.name)) for decl in decls]

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
            from ..refs import validate_key

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


__all__ = ["RefLike", "Workspace", "current", "truncate_time", "use"]
