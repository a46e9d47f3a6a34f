"""The narrow interface every catalog implements.

The embedded DuckDB catalog (:mod:`nbripple.catalog.embedded`) is the default; a
served catalog that talks HTTP to a process owning the file implements the same
protocol, so the rest of nbripple never knows which one it has.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ..model import (
    ArtifactDecl,
    ArtifactVersion,
    CardRevision,
    Event,
    Execution,
    Firing,
    InputRecord,
    NewVersion,
    PlanRecord,
)
from ..refs import Query


class Catalog(Protocol):
    """Where artifacts, versions, cards, executions and events are recorded."""

    # artifacts
    def get_artifact(self, name: str) -> ArtifactDecl | None: ...
    def list_artifacts(self) -> list[ArtifactDecl]: ...

    # versions
    def commit(self, execution_id: str | None, new: list[NewVersion]) -> list[ArtifactVersion]:
        """Commit versions in one transaction: number them, record events and cards."""
        ...

    def get_version(self, name: str, version: int) -> ArtifactVersion | None: ...
    def find_version(self, query: Query) -> ArtifactVersion | None: ...
    def partition_values(self, name: str, keys: list[str]) -> dict[str, list[str]]: ...
    def list_versions(self, name: str, limit: int | None = None) -> list[ArtifactVersion]: ...
    def versions_produced_by(self, execution_id: str) -> list[ArtifactVersion]: ...
    def search(
        self,
        terms: list[str],
        *,
        partitions: dict[str, str],
        kind: str | None,
        latest_only: bool,
        limit: int,
    ) -> list[ArtifactVersion]: ...

    # cards
    def add_card(self, name: str, version: int, card_type: str, markdown: str) -> CardRevision: ...
    def card_history(self, name: str, version: int) -> list[CardRevision]: ...

    # executions
    def create_execution(self, execution: Execution) -> None: ...
    def update_execution(self, execution_id: str, **fields: Any) -> None: ...
    def get_execution(self, execution_id: str) -> Execution | None: ...
    def list_executions(
        self,
        *,
        notebook: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
    ) -> list[Execution]: ...
    def record_consumption(
        self, execution_id: str, name: str, version: int, parameter: str | None = None
    ) -> None: ...
    def execution_inputs(self, execution_id: str) -> list[InputRecord]: ...

    # staging: outputs of running executions, committed only when the run succeeds
    def stage(self, execution_id: str, new: NewVersion) -> int: ...
    def staged(self, execution_id: str) -> list[NewVersion]: ...
    def finish_execution(
        self, execution_id: str, *, commit_staged: bool, **changes: Any
    ) -> list[ArtifactVersion]: ...

    # events
    def events_after(self, seq: int, limit: int = 1000) -> list[Event]: ...
    def last_event_seq(self) -> int: ...

    # -- lineage ------------------------------------------------------------
    def lineage_walk(
        self, start: str, *, direction: str, depth: int | None
    ) -> tuple[list[str], list[tuple[str, str, str]]]:
        """Walk the lineage graph from the node ``start`` (``version:name@N`` or
        ``execution:<id>``): ``direction`` is ``up`` (against the edges), ``down``
        (along them) or ``both`` (the two walks); ``depth`` counts hops, None walks
        everything reachable (cycle-safe). Returns the reached node ids (the start
        included) and the edges ``(source, target, kind)`` the walk crossed, kind
        being ``consumed``, ``produced`` or ``triggered``."""
        ...

    def lineage_nodes(self, node_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Details of the nodes that exist, by node id, fetched in batch: for a version
        name, version, kind, partitions, time_partition, created_at, execution_id; for
        an execution execution_id, kind, status, notebook, label, started_at,
        finished_at, error, trigger_artifact, trigger_version, parent_id."""
        ...

    def get_versions(self, keys: list[tuple[str, int]]) -> list[ArtifactVersion]:
        """The versions among ``(name, number)`` keys that exist, in commit order."""
        ...
    # -- end lineage --------------------------------------------------------

    def referenced_blobs(self) -> tuple[set[str], set[str]]:
        """Digests the catalog points to: ``(blobs, directory manifests)``."""
        ...

    # -- reactive: launch plans, their state, firings, watchers ---------------
    def register_plan(self, name: str, spec: dict[str, Any], spec_hash: str
                      ) -> tuple[int, bool]: ...
    def set_plan_active(self, name: str, active: bool) -> bool: ...
    def update_plan_state(self, name: str, **changes: Any) -> None: ...
    def list_plans(self, *, active_only: bool = False) -> list[PlanRecord]: ...
    def get_plan(self, name: str) -> PlanRecord | None: ...
    def plan_versions(self, name: str) -> list[tuple[int, dict[str, Any]]]: ...
    def add_firing(
        self,
        *,
        plan: str,
        plan_version: int,
        dedup_key: str,
        kind: str,
        chain_depth: int,
        status: str = "pending",
        event_seq: int | None = None,
        trigger_artifact: str | None = None,
        trigger_version: int | None = None,
        tick: datetime | None = None,
        reason: str | None = None,
    ) -> str | None:
        """Insert a firing unless ``(plan, dedup_key)`` exists; its id, or None."""
        ...

    def claim_firing(self, firing_id: str, execution_id: str) -> bool:
        """Move a pending firing to running; False if another watcher took it."""
        ...

    def update_firing(self, firing_id: str, **changes: Any) -> None: ...
    def firings(
        self,
        *,
        plan: str | None = None,
        status: str | list[str] | None = None,
        due_before: datetime | None = None,
        limit: int = 1000,
    ) -> list[Firing]: ...
    def get_firing(self, firing_id: str) -> Firing | None: ...
    def watch_cursor(self) -> int: ...
    def advance_watch_cursor(self, seq: int) -> None: ...
    def watcher_heartbeat(self, watcher_id: str, pid: int, host: str,
                          *, stopped: bool = False) -> None: ...
    def live_watchers(self, stale_s: float = 30.0) -> list[dict[str, Any]]: ...

    def now(self) -> datetime: ...
    def close(self) -> None: ...
