"""What launch plans look like from outside: their trigger as a query, what fires
them, their cron ticks (anchored as the watcher anchors them), their newest firings
and the watchers that are alive — one implementation for the CLI, the magics, the
watcher and the REST API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..model import Firing, PlanRecord

if TYPE_CHECKING:
    from .workspace import Workspace

RECENT = 5
"""How many of a plan's newest firings a summary shows."""

MAX_DUE = 10_000
"""Due ticks kept at most: a schedule far behind keeps its newest tick only."""


def trigger_text(spec: dict[str, Any]) -> str | None:
    """A plan's trigger as a query: ``blessed_model?blessed=true`` (None without one)."""
    trigger = spec.get("trigger")
    if not trigger:
        return None
    partitions = trigger.get("partitions") if isinstance(trigger, dict) else None
    if not isinstance(trigger, dict):
        return "(a damaged trigger)"
    params = [f"{key}={value}" for key, value in sorted((partitions or {}).items())]
    if trigger.get("time_partition"):
        params.append(f"time_partition={trigger['time_partition']}")
    if trigger.get("strict"):
        params.append("strict=true")
    artifact = trigger.get("artifact") or "(no artifact: a damaged trigger)"
    return str(artifact) + (f"?{'&'.join(params)}" if params else "")


def fires_on(spec: dict[str, Any]) -> str:
    """What fires a plan: ``blessed_model?blessed=true``, ``cron 0 2 * * * UTC``, both
    (joined by ``; ``), or ``launch only``."""
    trigger = trigger_text(spec)
    parts = [trigger] if trigger else []
    if spec.get("schedule"):
        parts.append(f"cron {spec['schedule']} {spec.get('timezone') or 'UTC'}")
    return "; ".join(parts) or "launch only"


def schedule_anchor(plan: PlanRecord, now: datetime | None = None) -> datetime:
    """Where a plan's cron ticks are counted from: the last tick the watcher handled,
    else the activation, else ``now``."""
    return plan.schedule_anchor or plan.activated_at or now or datetime.now(UTC)


def cron_ticks(plan: PlanRecord, now: datetime | None = None) -> Iterator[datetime]:
    """The plan's cron ticks after its anchor, in UTC (nothing without a schedule).

    Ticks are computed in the plan's timezone, so a daily 02:00 stays at 02:00 local
    time across daylight-saving changes.
    """
    expression = plan.spec.get("schedule")
    if not expression:
        return
    from croniter import croniter

    tz = ZoneInfo(plan.spec.get("timezone") or "UTC")
    itr = croniter(expression, schedule_anchor(plan, now).astimezone(tz))
    while True:
        try:
            tick: datetime = itr.get_next(datetime)
        except Exception as exc:  # CroniterBadDateError: no date matches (30 February)
            raise ValueError(f"schedule {expression!r} never fires (no date matches it); "
                             "register a fixed schedule") from exc
        yield tick.astimezone(UTC)


def schedule_problem(plan: PlanRecord) -> str | None:
    """Why a plan's schedule cannot fire (None when it can, or has no schedule)."""
    if not plan.spec.get("schedule"):
        return None
    try:
        next(cron_ticks(plan), None)
    except Exception as exc:
        return f"scheduling failed: {exc}"
    return None


def due_ticks(plan: PlanRecord, now: datetime) -> tuple[list[datetime], datetime | None]:
    """The ticks of ``plan`` due by ``now`` (oldest first) and the first tick after it.

    Example::

        due, wake_at = due_ticks(plan, datetime.now(UTC))
    """
    due: list[datetime] = []
    for tick in cron_ticks(plan, now):
        if tick > now:
            return due, tick
        due.append(tick)
        if len(due) > MAX_DUE:
            due = due[-1:]
    return due, None


def next_run(plan: PlanRecord, now: datetime | None = None) -> datetime | None:
    """The next cron tick of an active scheduled plan, in UTC (None otherwise).

    Counted from the schedule anchor, as the watcher does: a tick in the past is one
    the watcher owes.
    """
    if not plan.active:
        return None
    try:
        return next(cron_ticks(plan, now), None)
    except Exception:  # a schedule that cannot fire: see schedule_problem
        return None


def recent_firings(ws: Workspace, name: str, limit: int = RECENT) -> list[Firing]:
    """The newest firings of plan ``name``, newest first."""
    found: list[Firing] = ws.catalog.firings(plan=name, limit=limit)
    return found


def overview(ws: Workspace, limit: int = RECENT) -> list[tuple[PlanRecord, list[Firing]]]:
    """Every plan with its newest firings (what ``nbripple plans`` lists)."""
    found: list[PlanRecord] = ws.catalog.list_plans()
    return [(plan, recent_firings(ws, plan.name, limit)) for plan in found]


def live_watchers(ws: Workspace) -> list[dict[str, Any]]:
    """The watchers whose heartbeat is recent and whose process is alive."""
    found: list[dict[str, Any]] = ws.catalog.live_watchers()
    return found
