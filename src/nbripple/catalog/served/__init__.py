"""The served catalog: the catalog protocols over HTTP, to a process that owns the
home's DuckDB file (``nbripple serve`` or the Jupyter extension).

Each method is one ``POST catalog/<method>`` (:mod:`.transport`), its arguments and
result as tagged JSON (:mod:`.codec`); the server runs the method on its embedded
catalog. Writes are idempotent on a key the client sends, so the bounded retries
never duplicate a commit. Which catalog a process uses is decided in
:func:`nbripple.registry.make_catalog`: a live ``<home>/server.json``,
``NBRIPPLE_URL``/``NBRIPPLE_TOKEN`` or ``[catalog] url``.

Example::

    catalog = ServedCatalog("http://127.0.0.1:8765/nbripple/api/", token)
    catalog.get_version("blessed_model", 3)
"""

from __future__ import annotations

from collections.abc import Hashable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...model import (
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
from ...refs import Query
from .transport import Discover, Transport

if TYPE_CHECKING:
    from ..base import Catalog

READS = frozenset({
    "get_artifact", "list_artifacts", "get_version", "find_version", "get_versions",
    "list_versions", "versions_produced_by", "partition_values", "search",
    "referenced_blobs", "card_history", "get_execution", "list_executions",
    "execution_inputs", "staged", "list_plans", "get_plan", "plan_versions", "firings",
    "get_firing", "watch_cursor", "live_watchers", "lineage_walk", "lineage_nodes",
    "events_after", "last_event_seq", "change_token",
})
WRITES = frozenset({
    "commit", "add_card", "create_execution", "update_execution", "record_consumption",
    "stage", "finish_execution", "register_plan", "set_plan_active", "update_plan_state",
    "add_firing", "claim_firing", "start_firing", "update_firing", "advance_watch_cursor",
    "watcher_heartbeat", "find_and_consume",
})
"""The catalog methods the server runs for a client (every method of the protocol
but ``now`` and ``close``, which the client answers itself)."""
REPEATABLE = frozenset({
    "record_consumption", "update_execution", "update_firing", "update_plan_state",
    "advance_watch_cursor", "watcher_heartbeat", "find_and_consume",
})
"""Writes that do the same when repeated, so they are retried without an idempotency
key (and the server does not remember their answer)."""


class ServedCatalog:
    """The :class:`~nbripple.catalog.Catalog` of a server, over HTTP.

    Args:
        url: the server's API base URL (``.../nbripple/api/``).
        token: its token (``server.json``, ``NBRIPPLE_TOKEN``).
        discover: how to find the server again after a failed request (its
            ``server.json``), or None.
        retry_s: how long a request is retried before ServerUnavailable is raised.
    """

    def __init__(self, url: str, token: str | None, *, discover: Discover | None = None,
                 retry_s: float | None = None) -> None:
        self.transport = Transport(url, token, discover=discover) if retry_s is None \
            else Transport(url, token, discover=discover, retry_s=retry_s)

    def __repr__(self) -> str:
        return f"ServedCatalog({self.transport.url!r})"

    @property
    def url(self) -> str:
        return self.transport.url

    def retrying_for(self, seconds: float) -> AbstractContextManager[None]:
        """Within this block (this thread), calls give up after ``seconds`` instead of
        the usual budget — for best-effort writes, e.g. at a process's exit."""
        return self.transport.budget(seconds)

    def _read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.transport.call(method, args, kwargs, write=False)

    def _write(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.transport.call(method, args, kwargs, write=method not in REPEATABLE)

    # -- the client's own ---------------------------------------------------------
    def server_store_url(self) -> str | None:
        """The URL of the store the server's home uses (its health answer): where the
        blobs of this catalog's versions go when this process names no store of its own."""
        found = self.transport.get("health").get("store_url")
        return str(found) if found else None

    def now(self) -> datetime:
        return datetime.now(UTC)

    def close(self) -> None:
        """Nothing to release between uses: connections are kept alive (and closed
        by the server when idle)."""

    # -- versions -----------------------------------------------------------------
    def get_artifact(self, name: str) -> ArtifactDecl | None:
        return self._read("get_artifact", name)  # type: ignore[no-any-return]

    def list_artifacts(self) -> list[ArtifactDecl]:
        return self._read("list_artifacts")  # type: ignore[no-any-return]

    def commit(self, execution_id: str | None, new: list[NewVersion]) -> list[ArtifactVersion]:
        return self._write("commit", execution_id, new)  # type: ignore[no-any-return]

    def get_version(self, name: str, version: int) -> ArtifactVersion | None:
        return self._read("get_version", name, version)  # type: ignore[no-any-return]

    def find_version(self, query: Query) -> ArtifactVersion | None:
        return self._read("find_version", query)  # type: ignore[no-any-return]

    def get_versions(self, keys: list[tuple[str, int]]) -> list[ArtifactVersion]:
        return self._read("get_versions", keys)  # type: ignore[no-any-return]

    def list_versions(self, name: str, limit: int | None = None) -> list[ArtifactVersion]:
        return self._read("list_versions", name, limit)  # type: ignore[no-any-return]

    def versions_produced_by(self, execution_id: str) -> list[ArtifactVersion]:
        return self._read("versions_produced_by", execution_id)  # type: ignore[no-any-return]

    def partition_values(self, name: str, keys: list[str]) -> dict[str, list[str]]:
        return self._read("partition_values", name, keys)  # type: ignore[no-any-return]

    def search(self, terms: list[str], *, partitions: dict[str, str], kind: str | None,
               latest_only: bool, limit: int) -> list[ArtifactVersion]:
        return self._read("search", terms, partitions=partitions,  # type: ignore[no-any-return]
                          kind=kind, latest_only=latest_only, limit=limit)

    def referenced_blobs(self) -> tuple[set[str], set[str]]:
        return self._read("referenced_blobs")  # type: ignore[no-any-return]

    # -- cards ----------------------------------------------------------------------
    def add_card(self, name: str, version: int, card_type: str, markdown: str) -> CardRevision:
        return self._write("add_card", name, version, card_type,  # type: ignore[no-any-return]
                           markdown)

    def card_history(self, name: str, version: int) -> list[CardRevision]:
        return self._read("card_history", name, version)  # type: ignore[no-any-return]

    # -- executions -------------------------------------------------------------------
    def create_execution(self, execution: Execution) -> None:
        self._write("create_execution", execution)

    def update_execution(self, execution_id: str, **fields: Any) -> None:
        self._write("update_execution", execution_id, **fields)

    def get_execution(self, execution_id: str) -> Execution | None:
        return self._read("get_execution", execution_id)  # type: ignore[no-any-return]

    def list_executions(self, *, notebook: str | None = None, status: str | None = None,
                        kind: str | None = None, limit: int = 50) -> list[Execution]:
        return self._read("list_executions", notebook=notebook,  # type: ignore[no-any-return]
                          status=status, kind=kind, limit=limit)

    def record_consumption(self, execution_id: str, name: str, version: int,
                           parameter: str | None = None) -> None:
        self._write("record_consumption", execution_id, name, version, parameter)

    def find_and_consume(self, query: Query, execution_id: str,
                         parameter: str | None = None) -> ArtifactVersion | None:
        return self._write("find_and_consume", query,  # type: ignore[no-any-return]
                           execution_id, parameter)

    def execution_inputs(self, execution_id: str) -> list[InputRecord]:
        return self._read("execution_inputs", execution_id)  # type: ignore[no-any-return]

    def stage(self, execution_id: str, new: NewVersion) -> int:
        return self._write("stage", execution_id, new)  # type: ignore[no-any-return]

    def staged(self, execution_id: str) -> list[NewVersion]:
        return self._read("staged", execution_id)  # type: ignore[no-any-return]

    def finish_execution(self, execution_id: str, *, commit_staged: bool,
                         **changes: Any) -> list[ArtifactVersion]:
        return self._write("finish_execution", execution_id,  # type: ignore[no-any-return]
                           commit_staged=commit_staged, **changes)

    # -- plans, firings, watchers -------------------------------------------------------
    def register_plan(self, name: str, spec: dict[str, Any], spec_hash: str
                      ) -> tuple[int, bool]:
        return self._write("register_plan", name, spec, spec_hash)  # type: ignore[no-any-return]

    def set_plan_active(self, name: str, active: bool) -> bool:
        return self._write("set_plan_active", name, active)  # type: ignore[no-any-return]

    def update_plan_state(self, name: str, **changes: Any) -> None:
        self._write("update_plan_state", name, **changes)

    def list_plans(self, *, active_only: bool = False) -> list[PlanRecord]:
        return self._read("list_plans", active_only=active_only)  # type: ignore[no-any-return]

    def get_plan(self, name: str) -> PlanRecord | None:
        return self._read("get_plan", name)  # type: ignore[no-any-return]

    def plan_versions(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        return self._read("plan_versions", name)  # type: ignore[no-any-return]

    def add_firing(self, *, plan: str, plan_version: int, dedup_key: str, kind: str,
                   chain_depth: int, status: str = "pending", event_seq: int | None = None,
                   trigger_artifact: str | None = None, trigger_version: int | None = None,
                   tick: datetime | None = None, reason: str | None = None) -> str | None:
        return self._write(  # type: ignore[no-any-return]
            "add_firing", plan=plan, plan_version=plan_version, dedup_key=dedup_key,
            kind=kind, chain_depth=chain_depth, status=status, event_seq=event_seq,
            trigger_artifact=trigger_artifact, trigger_version=trigger_version, tick=tick,
            reason=reason)

    def claim_firing(self, firing_id: str, execution_id: str) -> bool:
        return self._write("claim_firing", firing_id, execution_id)  # type: ignore[no-any-return]

    def start_firing(self, firing_id: str, execution: Execution) -> bool:
        return self._write("start_firing", firing_id, execution)  # type: ignore[no-any-return]

    def update_firing(self, firing_id: str, **changes: Any) -> None:
        self._write("update_firing", firing_id, **changes)

    def firings(self, *, plan: str | None = None, status: str | list[str] | None = None,
                due_before: datetime | None = None, limit: int = 1000) -> list[Firing]:
        return self._read("firings", plan=plan, status=status,  # type: ignore[no-any-return]
                          due_before=due_before, limit=limit)

    def get_firing(self, firing_id: str) -> Firing | None:
        return self._read("get_firing", firing_id)  # type: ignore[no-any-return]

    def watch_cursor(self) -> int:
        return self._read("watch_cursor")  # type: ignore[no-any-return]

    def advance_watch_cursor(self, seq: int) -> None:
        self._write("advance_watch_cursor", seq)

    def watcher_heartbeat(self, watcher_id: str, pid: int, host: str, *,
                          stopped: bool = False, consecutive_failures: int = 0,
                          last_error: str | None = None,
                          last_error_at: datetime | None = None) -> None:
        self._write("watcher_heartbeat", watcher_id, pid, host, stopped=stopped,
                    consecutive_failures=consecutive_failures, last_error=last_error,
                    last_error_at=last_error_at)

    def live_watchers(self, stale_s: float = 30.0) -> list[dict[str, Any]]:
        return self._read("live_watchers", stale_s)  # type: ignore[no-any-return]

    # -- lineage and events ---------------------------------------------------------------
    def lineage_walk(self, start: str, *, direction: str, depth: int | None
                     ) -> tuple[list[str], list[tuple[str, str, str]]]:
        return self._read("lineage_walk", start,  # type: ignore[no-any-return]
                          direction=direction, depth=depth)

    def lineage_nodes(self, node_ids: list[str]) -> dict[str, dict[str, Any]]:
        return self._read("lineage_nodes", node_ids)  # type: ignore[no-any-return]

    def events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        return self._read("events_after", seq, limit)  # type: ignore[no-any-return]

    def last_event_seq(self) -> int:
        return self._read("last_event_seq")  # type: ignore[no-any-return]

    def change_token(self) -> Hashable:
        token = self._read("change_token")
        return tuple(token) if isinstance(token, list) else token


if TYPE_CHECKING:
    _: type[Catalog] = ServedCatalog  # the served catalog implements the protocol

__all__ = ["READS", "REPEATABLE", "WRITES", "ServedCatalog"]
