"""The records nbripple keeps: artifact declarations, versions, executions, cards, events.

These are plain, immutable dataclasses. :class:`ArtifactVersion` and
:class:`Execution` also carry a reference to the workspace they came from, so
``version.load()`` and ``execution.output_notebook`` work without further arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .refs import SCHEME

if TYPE_CHECKING:
    from .widgets.artifact_view import ArtifactView
    from .workspace import Workspace

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
    _workspace: Workspace | None = field(default=None, compare=False, repr=False)

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

    def _ws(self) -> Workspace:
        if self._workspace is None:
            from .workspace import current

            return current()
        return self._workspace

    def load(self, as_: str | None = None) -> Any:
        """Load the value (a table as the type it was written from unless ``as_`` is given:
        ``"arrow"``, ``"pandas"`` or ``"polars"``). Records consumption."""
        return self._ws().load_version(self, as_=as_)

    def download(self, dest: str | Path) -> Path:
        """Copy the stored data to a local path and return it."""
        return self._ws().download(self, dest)

    def card_history(self) -> list[CardRevision]:
        """Every revision of this version's card, oldest first."""
        return self._ws().card_history(self.ref)

    def widget(self) -> ArtifactView:
        """The artifact view (tabs Overview / Object / Card / Lineage), as ``nr.show``."""
        from .widgets.artifact_view import ArtifactView

        return ArtifactView(self)

    def __str__(self) -> str:
        return self.ref

    def __repr__(self) -> str:
        from .display import version_text

        return version_text(self)

    def _repr_html_(self) -> str:
        from .display import version_html

        return version_html(self)


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
    _workspace: Workspace | None = field(default=None, compare=False, repr=False)

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def _ws(self) -> Workspace:
        if self._workspace is None:
            from .workspace import current

            return current()
        return self._workspace

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
        return self._ws().catalog.execution_inputs(self.id)

    @property
    def outputs(self) -> list[ArtifactVersion]:
        """The versions this execution produced (committed), in commit order."""
        return self._ws().execution_outputs(self.id)

    def __repr__(self) -> str:
        from .display import execution_text

        return execution_text(self)

    def _repr_html_(self) -> str:
        from .display import execution_html

        return execution_html(self)


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
