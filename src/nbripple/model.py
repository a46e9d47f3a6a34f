"""The records nbripple keeps: artifact declarations, versions, executions, cards, events.

These are plain, immutable dataclasses. :class:`ArtifactVersion` and
:class:`Execution` also carry the :class:`Handle` of the workspace that made them,
so ``version.load()`` and ``execution.output_notebook`` work without further
arguments; a record without one says so instead of guessing a workspace.

How records show themselves (``repr``, the HTML a notebook renders, ``.widget()``)
is up to the :class:`Presenter` installed with :func:`set_presenter` (``import
nbripple`` installs nbripple.display and nbripple.widgets); without one they fall
back to a minimal text and an escaped ``<code>`` HTML.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import InvalidNameError, KindError, NbrippleError
from .refs import (
    MAX_PARTITION_KEYS,
    SCHEME,
    TIME_GRANULARITIES,
    validate_key,
    validate_name,
)

if TYPE_CHECKING:
    from .graph import LineageGraph


class Handle(Protocol):
    """What a record needs from the service that made it (a Workspace implements it)."""

    def get(self, ref: Any, *, record: bool = True) -> ArtifactVersion: ...
    def resolve(self, ref: Any) -> ArtifactVersion: ...
    def load(self, ref: Any, *, as_: str | None = None) -> Any: ...
    def load_version(self, version: ArtifactVersion, *, as_: str | None = None,
                     record: bool = True) -> Any: ...
    def download(self, version: ArtifactVersion, dest: str | os.PathLike[str]) -> Path: ...
    def card_history(self, ref: Any) -> list[CardRevision]: ...
    def execution(self, execution_id: str) -> Execution: ...
    def execution_inputs(self, execution_id: str) -> list[InputRecord]: ...
    def execution_outputs(self, execution_id: str) -> list[ArtifactVersion]: ...
    def notebook_file(self, digest: str, name: str) -> Path: ...
    def search(self, text: str | None = None, *, partitions: dict[str, Any] | None = None,
               kind: str | None = None, latest_only: bool = True,
               limit: int = 50) -> list[ArtifactVersion]: ...
    def lineage(self, start: Any, *, depth: int | None = 1,
                direction: str = "both") -> LineageGraph: ...
    def latest_version_number(self, name: str) -> int: ...
    def table_preview(self, version: ArtifactVersion, rows: int) -> Any: ...
    def directory_entries(self, version: ArtifactVersion) -> list[dict[str, Any]]: ...


def attached(handle: Handle | None, what: str) -> Handle:
    """``handle``, or a clear error when a record was made without one."""
    if handle is None:
        raise NbrippleError(
            f"{what} is not attached to a workspace: get it with nr.get(...) (or from a "
            "Workspace) rather than building the record yourself"
        )
    return handle


# -- presentation hook ------------------------------------------------------------------
class Presenter(Protocol):
    """Turns records into text, HTML and widgets (see nbripple.display, nbripple.widgets)."""

    def text(self, obj: Any) -> str: ...
    def html(self, obj: Any) -> str: ...
    def widget(self, obj: Any, **options: Any) -> Any: ...


class _Plain:
    """The fallback presenter: what a record shows when nothing else is installed."""

    def text(self, obj: Any) -> str:
        ref = getattr(obj, "ref", None) or getattr(obj, "id", None) or ""
        return f"<{type(obj).__name__} {ref}>".replace(" >", ">")

    def html(self, obj: Any) -> str:
        from html import escape

        return f"<code>{escape(self.text(obj))}</code>"

    def widget(self, obj: Any, **options: Any) -> Any:
        raise NbrippleError(f"no widget for {type(obj).__name__}: `import nbripple` installs them")


_PLAIN = _Plain()
_presenter: Presenter = _PLAIN


def set_presenter(new: Presenter | None) -> None:
    """Install the presenter records use for ``repr``, HTML and widgets (None: the
    minimal fallback)."""
    global _presenter
    _presenter = new if new is not None else _PLAIN


def presenter() -> Presenter:
    """The presenter installed now."""
    return _presenter


KINDS = ("table", "file", "directory", "value", "object")
EXECUTION_KINDS = ("notebook", "interactive", "external")
EXECUTION_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class ArtifactDecl:
    """An artifact's declaration as recorded in the catalog."""

    name: str
    partition_keys: tuple[str, ...] = ()
    time_partitioned: bool = False
    time_granularity: str = "day"
    kind: str | None = None
    description: str = ""
    created_at: datetime | None = None
    latest_version: int = 0


def declare(
    name: str,
    partition_keys: tuple[str, ...] | list[str] = (),
    time_partitioned: bool = False,
    time_granularity: str = "day",
    kind: str | None = None,
    description: str = "",
) -> ArtifactDecl:
    """A checked declaration (what ``nr.Artifact(...)`` and ``nbripple push`` declare).

    Raises InvalidNameError / KindError naming what is wrong and how to write it.
    """
    validate_name(name)
    if isinstance(partition_keys, str):
        raise InvalidNameError(
            f"partition_keys must be a list of keys, not the string {partition_keys!r}; "
            f"write partition_keys=[{partition_keys!r}]"
        )
    keys = tuple(partition_keys)
    if len(keys) > MAX_PARTITION_KEYS:
        raise InvalidNameError(
            f"{name} declares {len(keys)} partition keys; the limit is {MAX_PARTITION_KEYS}"
        )
    for key in keys:
        validate_key(key)
    if len(set(keys)) != len(keys):
        raise InvalidNameError(f"{name} declares a partition key twice: {keys}")
    if time_granularity not in TIME_GRANULARITIES:
        raise InvalidNameError(
            f"unknown time_granularity {time_granularity!r}; use one of "
            f"{', '.join(TIME_GRANULARITIES)}"
        )
    if kind is not None and kind not in KINDS:
        raise KindError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    return ArtifactDecl(
        name=name,
        partition_keys=keys,
        time_partitioned=bool(time_partitioned),
        time_granularity=time_granularity,
        kind=kind,
        description=description or "",
    )


@dataclass(frozen=True)
class NewVersion:
    """Everything the catalog needs to commit a version whose blob is already stored."""

    artifact: ArtifactDecl
    partitions: dict[str, str]
    time_partition: datetime | None
    kind: str
    python_type: str
    content_hash: str
    size: int
    uri: str | None
    inline_value: str | None = None
    schema: list[dict[str, str]] | None = None
    num_rows: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    card_type: str | None = None
    card: str | None = None


@dataclass(frozen=True)
class ArtifactVersion:
    """One immutable, committed version of an artifact (``name@version``).

    Example::

        v = nr.get("blessed_model@3")
        v.partitions      # {'blessed': 'true'}
        model = v.load()
    """

    name: str
    version: int
    partitions: dict[str, str]
    time_partition: datetime | None
    kind: str
    python_type: str
    content_hash: str
    size: int
    uri: str | None
    inline_value: str | None
    schema: list[dict[str, str]] | None
    num_rows: int | None
    meta: dict[str, Any]
    execution_id: str | None
    created_at: datetime
    seq: int
    card_type: str | None = None
    card_markdown: str | None = None
    description: str = ""
    _workspace: Handle | None = field(default=None, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """The pinned reference, e.g. ``blessed_model@3``.

        An output staged inside a running notebook has no number until the run
        succeeds; its ref reads ``blessed_model@staged-1``.
        """
        if self.version == 0 and "staged" in self.meta:
            return f"{self.name}@staged-{self.meta['staged']}"
        return f"{self.name}@{self.version}"

    @property
    def artifact_uri(self) -> str:
        """The pinned URI, e.g. ``nbripple://blessed_model@3``."""
        return f"{SCHEME}{self.name}@{self.version}"

    @property
    def card(self) -> str | None:
        """The current Markdown card, or None."""
        return self.card_markdown

    def _ws(self) -> Handle:
        return attached(self._workspace, self.ref)

    def load(self, as_: str | None = None) -> Any:
        """Load the value (a table as the type it was written from unless ``as_`` is given:
        ``"arrow"``, ``"pandas"`` or ``"polars"``). Records consumption."""
        return self._ws().load_version(self, as_=as_)

    def download(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the stored data to a local path and return it."""
        return self._ws().download(self, dest)

    def card_history(self) -> list[CardRevision]:
        """Every revision of this version's card, oldest first."""
        return self._ws().card_history(self.ref)

    def widget(self, **options: Any) -> Any:
        """The artifact view (tabs Overview / Object / Card / Lineage), as ``nr.show``:
        a :class:`nbripple.widgets.ArtifactView`."""
        return presenter().widget(self, **options)

    def __str__(self) -> str:
        return self.ref

    def __repr__(self) -> str:
        return presenter().text(self)

    def _repr_html_(self) -> str:
        return presenter().html(self)


@dataclass(frozen=True)
class CardRevision:
    """One revision of a version's card."""

    name: str
    version: int
    revision: int
    card_type: str
    markdown: str
    created_at: datetime


@dataclass(frozen=True)
class InputRecord:
    """A version consumed by an execution (``parameter`` is set for notebook inputs)."""

    name: str
    version: int
    parameter: str | None
    consumed_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Execution:
    """One run that consumed and produced versions.

    ``kind`` is ``notebook`` (a papermill run), ``interactive`` (a live Python process
    that called ``create_from``/``load``) or ``external`` (the CLI's ``push``).
    """

    id: str
    kind: str
    status: str
    notebook: str | None
    notebook_hash: str | None
    parameters: dict[str, Any]
    requested: dict[str, Any] | None
    cwd: str | None
    started_at: datetime
    finished_at: datetime | None
    error: dict[str, Any] | None
    output_notebook_hash: str | None
    pid: int | None
    host: str | None
    trigger: dict[str, Any] | None
    trigger_artifact: str | None
    trigger_version: int | None
    parent_id: str | None
    chain_depth: int
    label: str | None
    heartbeat_at: datetime | None = None
    # when each phase of the run was reached (aware ISO times): see PHASES
    phases: dict[str, str] | None = None
    _workspace: Handle | None = field(default=None, compare=False, repr=False)

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def _ws(self) -> Handle:
        return attached(self._workspace, f"execution {self.id}")

    @property
    def output_notebook(self) -> Path | None:
        """A local copy of the executed notebook (with outputs and any error), or None."""
        if self.output_notebook_hash is None:
            return None
        return self._ws().notebook_file(self.output_notebook_hash, f"{self.id}.ipynb")

    @property
    def notebook_snapshot(self) -> Path | None:
        """A local copy of the exact notebook this execution ran, or None."""
        if self.notebook_hash is None:
            return None
        return self._ws().notebook_file(self.notebook_hash, f"{self.id}-input.ipynb")

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def inputs(self) -> list[InputRecord]:
        """The versions this execution consumed."""
        return self._ws().execution_inputs(self.id)

    @property
    def outputs(self) -> list[ArtifactVersion]:
        """The versions this execution produced (committed), in commit order."""
        return self._ws().execution_outputs(self.id)

    def __repr__(self) -> str:
        return presenter().text(self)

    def _repr_html_(self) -> str:
        return presenter().html(self)


@dataclass(frozen=True)
class Event:
    """An entry of the append-only events table (one per committed version)."""

    seq: int
    kind: str
    name: str
    version: int
    execution_id: str | None
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class TriggerEvent:
    """A new version as a watcher matches it against the plans' triggers: its event's
    seq, its name and number, its partitions (None when the version is gone) and the
    chain depth of the run that produced it (0 when no run did)."""

    seq: int
    name: str
    version: int
    partitions: dict[str, str] | None
    producer_depth: int


@dataclass(frozen=True)
class PlanRecord:
    """A launch plan as the catalog keeps it: its active version's spec and its state."""

    name: str
    version: int
    spec: dict[str, Any]
    created_at: datetime
    active: bool
    active_version: int
    latest_version: int
    activated_at: datetime | None
    activated_seq: int | None
    schedule_anchor: datetime | None
    stopped_reason: str | None


@dataclass(frozen=True)
class Firing:
    """One start a plan owes: for a triggering version, a schedule tick or a launch."""

    id: str
    plan: str
    plan_version: int
    dedup_key: str
    kind: str
    event_seq: int | None
    trigger_artifact: str | None
    trigger_version: int | None
    tick: datetime | None
    chain_depth: int
    status: str
    attempts: int
    recoveries: int
    next_attempt_at: datetime | None
    execution_id: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime


class SearchResults(list[ArtifactVersion]):
    """What ``nr.search`` returns: a plain list of versions that also displays as a table.

    ``text``, ``partitions`` and ``kind`` record the search that found them.
    """

    def __init__(self, versions: Iterable[ArtifactVersion] = (), *, text: str | None = None,
                 partitions: Mapping[str, Any] | None = None, kind: str | None = None) -> None:
        super().__init__(versions)
        self.text = text
        self.partitions = {str(k): str(v) for k, v in (partitions or {}).items()}
        self.kind = kind

    def describe(self) -> str:
        """The search in words: ``'model' blessed=true kind=object``."""
        parts = [repr(self.text)] if self.text else []
        if self.partitions:
            parts.append(", ".join(f"{key}={value}" for key, value in self.partitions.items()))
        if self.kind:
            parts.append(f"kind={self.kind}")
        return " ".join(parts) or "everything"

    def __repr__(self) -> str:
        return presenter().text(self)

    def _repr_html_(self) -> str:
        return presenter().html(self)
