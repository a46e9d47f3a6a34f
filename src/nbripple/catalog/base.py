"""The interface every catalog implements, as one protocol per role.

The embedded DuckDB catalog (:mod:`nbripple.catalog.embedded`) is the default; a
served catalog that talks HTTP to a process owning the file implements the same
protocols, so the rest of nbripple never knows which one it has. The contract
tests (``tests/test_catalog_contract.py``) run against every implementation.

Times are aware (UTC) datetimes. Versions are numbered per artifact from 1 in
commit order; every committed version also gets the next value of one global
sequence (``seq``) and one event with that seq. Implementation extras — such as the
embedded catalog's ``transaction()``, ``connection()``, ``warm()`` and
``cached_version()`` — are not part of the protocol: callers look them up with
``getattr(catalog, name, None)``.
"""

from __future__ import annotations

from collections.abc import Hashable
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


class VersionsRole(Protocol):
    """Artifacts (their declarations) and their immutable versions."""

    def get_artifact(self, name: str) -> ArtifactDecl | None:
        """The declaration recorded for ``name`` (with its latest version number), or
        None if no version of it was ever committed."""
        ...

    def list_artifacts(self) -> list[ArtifactDecl]:
        """Every artifact's declaration, ordered by name."""
        ...

    def commit(self, execution_id: str | None, new: list[NewVersion]) -> list[ArtifactVersion]:
        """Commit versions in one transaction (all or none): record each artifact's
        declaration if new, number each version after its artifact's latest, give each
        the next seq, record its card as revision 1 and append one ``version`` event.
        Returns the committed versions, in the order given."""
        ...

    def get_version(self, name: str, version: int) -> ArtifactVersion | None:
        """Version ``version`` of ``name``, with its current card; None if absent."""
        ...

    def find_version(self, query: Query) -> ArtifactVersion | None:
        """The newest version of ``query.name`` whose partitions equal ``query``'s
        (``strict``) or contain them, with its time partition if given; None if none."""
        ...

    def get_versions(self, keys: list[tuple[str, int]]) -> list[ArtifactVersion]:
        """The versions among ``(name, number)`` keys that exist, in commit order."""
        ...

    def list_versions(self, name: str, limit: int | None = None) -> list[ArtifactVersion]:
        """The versions of ``name``, newest first, at most ``limit`` of them."""
        ...

    def versions_produced_by(self, execution_id: str) -> list[ArtifactVersion]:
        """The versions an execution committed, in commit order."""
        ...

    def partition_values(self, name: str, keys: list[str]) -> dict[str, list[str]]:
        """For each of ``keys``, the sorted distinct values it takes in ``name``'s
        versions (an empty list for a key no version has)."""
        ...

    def search(
        self,
        terms: list[str],
        *,
        partitions: dict[str, str],
        kind: str | None,
        latest_only: bool,
        limit: int,
    ) -> list[ArtifactVersion]:
        """Versions matching every term (case-insensitively, in the artifact's name or
        description or the version's current card) and every partition and kind
        filter, newest (highest seq) first, at most ``limit``. With ``latest_only``,
        each artifact contributes its newest version that passes the partition and
        kind filters, and only if that version matches the terms."""
        ...

    def referenced_blobs(self) -> tuple[set[str], set[str]]:
        """Digests the catalog points to: ``(blobs, directory manifests)`` — of versions
        with a blob, staged outputs, and every execution's notebook snapshots."""
        ...


class CardsRole(Protocol):
    """Cards: Markdown attached to a version, revised without touching its data."""

    def add_card(self, name: str, version: int, card_type: str, markdown: str) -> CardRevision:
        """Add the next revision (1, 2, ...) of the card of ``name@version``; it becomes
        the version's current card. Returns the new revision."""
        ...

    def card_history(self, name: str, version: int) -> list[CardRevision]:
        """Every revision of the card of ``name@version``, oldest first."""
        ...


class ExecutionsRole(Protocol):
    """Executions (notebook runs, interactive sessions, external processes), what they
    consumed, and the outputs a running execution stages until it ends."""

    def create_execution(self, execution: Execution) -> None:
        """Record a new execution (its id must not exist yet)."""
        ...

    def update_execution(self, execution_id: str, **fields: Any) -> None:
        """Set fields of an execution; ValueError for a name that is not an
        :class:`Execution` field."""
        ...

    def get_execution(self, execution_id: str) -> Execution | None:
        """The execution with this id, or the one whose id starts with this prefix
        (at least 4 characters, unique); None otherwise."""
        ...

    def list_executions(
        self,
        *,
        notebook: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
    ) -> list[Execution]:
        """Executions matching every given filter, most recently started first."""
        ...

    def record_consumption(
        self, execution_id: str, name: str, version: int, parameter: str | None = None
    ) -> None:
        """Record that an execution read ``name@version`` (through a parameter, if
        named); reading the same version again records nothing new."""
        ...

    def execution_inputs(self, execution_id: str) -> list[InputRecord]:
        """What an execution consumed, in the order it first did."""
        ...

    def find_and_consume(self, query: Query, execution_id: str,
                         parameter: str | None = None) -> ArtifactVersion | None:
        """:meth:`VersionsRole.find_version`, and when it finds a version, record its
        consumption by ``execution_id`` as :meth:`record_consumption` does — in one
        call (resolving a query in a notebook is one round trip)."""
        ...

    def stage(self, execution_id: str, new: NewVersion) -> int:
        """Record an output of a running execution, not yet a version (it fires
        nothing). Returns its ordinal within the execution: 1, 2, ..."""
        ...

    def staged(self, execution_id: str) -> list[NewVersion]:
        """The outputs an execution has staged, in the order it staged them."""
        ...

    def finish_execution(
        self, execution_id: str, *, commit_staged: bool, **changes: Any
    ) -> list[ArtifactVersion]:
        """End an execution in one transaction: commit its staged outputs (as
        :meth:`VersionsRole.commit` would) or discard them, and apply ``changes``
        (status, finished_at, error...) to it. Returns the committed versions."""
        ...


class PlansRole(Protocol):
    """Launch plans and their state, the firings they owe, the watch cursor and the
    watchers' heartbeats."""

    def register_plan(self, name: str, spec: dict[str, Any], spec_hash: str
                      ) -> tuple[int, bool]:
        """Store a new version of plan ``name`` unless its latest has ``spec_hash``.
        Returns ``(version, created)``; an active plan moves to the new version, a new
        plan starts inactive."""
        ...

    def set_plan_active(self, name: str, active: bool) -> bool:
        """Activate (on its latest version, from the current event on) or deactivate a
        plan; False if it was already so (activating again clears a loop-guard stop).
        KeyError for an unknown plan."""
        ...

    def update_plan_state(self, name: str, **changes: Any) -> None:
        """Set ``schedule_anchor`` and/or ``stopped_reason`` of a plan; ValueError for
        any other name."""
        ...

    def list_plans(self, *, active_only: bool = False) -> list[PlanRecord]:
        """Every plan (or the active ones) at its active version, by name."""
        ...

    def get_plan(self, name: str) -> PlanRecord | None:
        """The plan ``name`` at its active version, or None."""
        ...

    def plan_versions(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        """Every ``(version, spec)`` of plan ``name``, oldest first."""
        ...

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
        """Record a firing unless one with ``(plan, dedup_key)`` exists. Returns the
        new firing's id, or None if it existed (however many watchers try)."""
        ...

    def claim_firing(self, firing_id: str, execution_id: str) -> bool:
        """Move a pending firing to running for ``execution_id`` (one more attempt);
        False if it was not pending (another watcher took it)."""
        ...

    def start_firing(self, firing_id: str, execution: Execution) -> bool:
        """Claim a pending firing for ``execution`` and record the execution, both in
        one transaction. False, with nothing written, if the firing was not pending
        (another watcher took it): each firing starts at most one execution."""
        ...

    def update_firing(self, firing_id: str, **changes: Any) -> None:
        """Set status, attempts, recoveries, next_attempt_at, execution_id and/or
        reason of a firing; ValueError for any other name."""
        ...

    def firings(
        self,
        *,
        plan: str | None = None,
        status: str | list[str] | None = None,
        due_before: datetime | None = None,
        limit: int = 1000,
    ) -> list[Firing]:
        """Firings matching the filters (``due_before``: no retry time, or one not
        after it). A plan's history (plan without status) is newest first; otherwise
        in the order owed: by triggering event, then creation."""
        ...

    def get_firing(self, firing_id: str) -> Firing | None:
        """The firing with this id, or None."""
        ...

    def watch_cursor(self) -> int:
        """The seq of the last event the watchers have turned into firings (0 at first)."""
        ...

    def advance_watch_cursor(self, seq: int) -> None:
        """Move the watch cursor to ``seq``; it never moves back."""
        ...

    def watcher_heartbeat(self, watcher_id: str, pid: int, host: str,
                          *, stopped: bool = False, consecutive_failures: int = 0,
                          last_error: str | None = None,
                          last_error_at: datetime | None = None) -> None:
        """Record that a watcher is alive now (registering it the first time), or that
        it stopped, with its health: how many passes in a row failed and the last
        error (a watcher whose passes fail keeps beating and says so)."""
        ...

    def live_watchers(self, stale_s: float = 30.0) -> list[dict[str, Any]]:
        """Watchers not stopped that beat in the last ``stale_s`` seconds, oldest
        first: dicts of id, pid, host, started_at, heartbeat_at, consecutive_failures,
        last_error, last_error_at."""
        ...


class LineageRole(Protocol):
    """The lineage graph: versions consumed by, produced by and triggering executions."""

    def lineage_walk(
        self, start: str, *, direction: str, depth: int | None
    ) -> tuple[list[str], list[tuple[str, str, str]]]:
        """Walk the lineage graph from the node ``start`` (``version:name@N`` or
        ``execution:<id>``): ``direction`` is ``up`` (against the edges), ``down``
        (along them) or ``both`` (the two walks); ``depth`` counts hops, None walks
        everything reachable (cycle-safe). Returns the reached node ids (the start
        included) and the edges ``(source, target, kind)`` the walk crossed, kind
        being ``consumed``, ``produced`` or ``triggered``. ValueError for another
        direction or a malformed node id."""
        ...

    def lineage_nodes(self, node_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Details of the nodes that exist, by node id, fetched in batch: for a version
        name, version, kind, partitions, time_partition, created_at, execution_id; for
        an execution execution_id, kind, status, notebook, label, started_at,
        finished_at, error, trigger_artifact, trigger_version, parent_id."""
        ...


class EventsRole(Protocol):
    """The append-only event log (one ``version`` event per committed version) and a
    cheap way to notice that anything changed."""

    def events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        """Events with a seq greater than ``seq``, in seq order, at most ``limit``."""
        ...

    def last_event_seq(self) -> int:
        """The seq of the newest event; 0 for an empty catalog."""
        ...

    def change_token(self) -> Hashable:
        """A cheap token that differs after anything was committed, by any process (it
        may also differ when nothing did). Pollers compare it before doing real work."""
        ...


class Catalog(VersionsRole, CardsRole, ExecutionsRole, PlansRole, LineageRole, EventsRole,
              Protocol):
    """Where artifacts, versions, cards, executions, plans and events are recorded."""

    def now(self) -> datetime:
        """The current time (aware, UTC) as the catalog sees it."""
        ...

    def close(self) -> None:
        """Release what the catalog holds (a file, a connection) until its next use;
        the catalog stays usable."""
        ...


__all__ = [
    "CardsRole",
    "Catalog",
    "EventsRole",
    "ExecutionsRole",
    "LineageRole",
    "PlansRole",
    "VersionsRole",
]
