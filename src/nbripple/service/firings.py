"""How a firing ends once its run has: succeeded, retried, failed, or owed again.

A run stopped with its watcher (SIGINT, SIGTERM past the grace period) or whose
process died (kill -9, a crash of the machine) is not the run's fault: its firing is
owed again to the next watcher. Only a cancel that did not come from a stopping
watcher is final.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..catalog import Catalog
from ..model import Execution
from .executions import ORPHANED

MAX_RECOVERIES = 3
"""How many times a firing whose process died is run again before it fails."""

SHUTDOWN_CANCEL = "the watcher stopped this run"
"""The ``evalue`` of a run cancelled because its watcher stopped (owed again)."""


def settle_firing(catalog: Catalog, firing_id: str, execution: Execution | None, *,
                  now: datetime, shutdown: bool = False) -> None:
    """Settle the firing of an execution that ended (``shutdown``: its watcher
    cancelled it while stopping). Retries wait ``retry_delay_s * 2**(try-1)`` from
    ``now``."""
    firing = catalog.get_firing(firing_id)
    if firing is None:
        return
    status = execution.status if execution else "failed"
    error = (execution.error or {}) if execution else {}
    if status == "succeeded":
        catalog.update_firing(firing_id, status="succeeded", reason=None)
        return
    if status == "cancelled" and (shutdown or error.get("evalue") == SHUTDOWN_CANCEL):
        # stopped with its watcher, not by a user: owed again, as after kill -9
        catalog.update_firing(
            firing_id, status="pending", recoveries=firing.recoveries + 1,
            reason=f"owed again: the watcher stopped before execution "
                   f"{firing.execution_id} finished")
        return
    if status == "cancelled":
        catalog.update_firing(firing_id, status="cancelled", reason="the run was cancelled")
        return
    if status == "failed" and error.get("ename") == ORPHANED:
        if firing.recoveries < MAX_RECOVERIES:
            catalog.update_firing(
                firing_id, status="pending", recoveries=firing.recoveries + 1,
                reason=f"re-run: execution {firing.execution_id} was orphaned")
        else:
            catalog.update_firing(firing_id, status="failed", reason="orphaned too many times")
        return
    spec = dict(catalog.plan_versions(firing.plan)).get(firing.plan_version, {})
    retries = int(spec.get("retries", 0))
    tries = firing.attempts - firing.recoveries
    reason = f"{error.get('ename', 'failed')}: {error.get('evalue', '')}".strip()
    if tries <= retries:
        delay = float(spec.get("retry_delay_s", 1.0)) * (2 ** (tries - 1))
        catalog.update_firing(firing_id, status="pending", reason=f"retrying after {reason}",
                              next_attempt_at=now + timedelta(seconds=delay))
    else:
        catalog.update_firing(firing_id, status="failed", reason=reason)


def reconcile_firings(catalog: Catalog, running: set[str], *, now: datetime) -> None:
    """Settle running firings whose execution ended while no watcher was looking (or
    was never recorded); ``running``: execution ids a live watcher still tracks."""
    for firing in catalog.firings(status="running"):
        if firing.execution_id is None or firing.execution_id in running:
            continue
        execution = catalog.get_execution(firing.execution_id)
        if execution is None:
            catalog.update_firing(
                firing.id, status="pending", recoveries=firing.recoveries + 1,
                reason="re-run: its execution was never recorded",
            )
        elif execution.status not in ("queued", "running"):
            settle_firing(catalog, firing.id, execution, now=now)
