"""New versions -> firings: the part of a watcher's pass that reads the event log.

Each new version is matched against the triggers of the active plans; a match owes
one firing, whose unique key (``v<plan version>:event:<seq>``) makes it exactly
once however many watchers or passes see the event. A run's outputs trigger at one
chain depth more than the run (the loop guard: ``max_chain_depth``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .catalog import Catalog
from .launchplans import trigger_matches
from .model import PlanRecord, TriggerEvent

log = logging.getLogger("nbripple.watcher")

EVENT_BATCH = 500  # events read at a time; the cursor is advanced after each batch


def trigger_events(catalog: Catalog, after: int, names: set[str],
                   limit: int = EVENT_BATCH) -> list[TriggerEvent]:
    """The events after seq ``after`` with what matching needs. One read where the
    catalog has ``trigger_events`` (the embedded one); otherwise the event log, then
    the version and its producer for the events of the artifacts in ``names``."""
    joined = getattr(catalog, "trigger_events", None)
    if joined is not None:
        found: list[TriggerEvent] = joined(after, limit)
        return found
    out = []
    for event in catalog.events_after(after, limit):
        record = catalog.get_version(event.name, event.version) if event.name in names \
            else None
        producer = catalog.get_execution(record.execution_id) \
            if record is not None and record.execution_id else None
        out.append(TriggerEvent(event.seq, event.name, event.version,
                                record.partitions if record is not None else None,
                                producer.chain_depth if producer is not None else 0))
    return out


def fire_on_events(catalog: Catalog, plans: dict[str, PlanRecord], cursor: int,
                   failed: Callable[[PlanRecord, str, Exception], None]) -> int:
    """Add the firings the events after ``cursor`` owe to the triggered ``plans`` and
    return the seq of the last event read. The caller advances the catalog's watch
    cursor to it, after starting the new firings if it likes: they are committed
    already, so a pass that fails before reads the events again, and their unique keys
    make the same firings (a backlog of full batches is advanced batch by batch here).
    ``failed`` gets what a plan raised while matching (it raises a catalog fault again)."""
    triggered = [p for p in plans.values() if p.spec.get("trigger")]
    names = {str(trigger.get("artifact")) for plan in triggered  # a broken one fails below
             if isinstance(trigger := plan.spec["trigger"], dict)}
    while True:
        events = trigger_events(catalog, cursor, names)
        for event in events:
            for plan in triggered:
                if event.seq > (plan.activated_seq or 0):
                    try:
                        _consider(catalog, plan, event)
                    except Exception as exc:
                        failed(plan, "matching a new version", exc)
            cursor = event.seq
        if len(events) < EVENT_BATCH:  # the rest was committed after this read
            return cursor
        catalog.advance_watch_cursor(cursor)


def _consider(catalog: Catalog, plan: PlanRecord, event: TriggerEvent) -> None:
    name, version, seq = event.name, event.version, event.seq
    if event.partitions is None or not trigger_matches(plan.spec, name, event.partitions):
        return
    depth = event.producer_depth + 1
    key = f"v{plan.version}:event:{seq}"
    limit = int(plan.spec["max_chain_depth"])
    if depth >= limit:
        reason = (f"stopped at max_chain_depth={limit}: {name}@{version} would start a run "
                  f"at chain depth {depth}")
        created = catalog.add_firing(
            plan=plan.name, plan_version=plan.version, dedup_key=key, kind="artifact",
            chain_depth=depth, status="skipped", event_seq=seq, trigger_artifact=name,
            trigger_version=version, reason=reason,
        )
        if created:
            catalog.update_plan_state(plan.name, stopped_reason=reason)
            log.warning("plan %s: %s", plan.name, reason)
        return
    catalog.add_firing(
        plan=plan.name, plan_version=plan.version, dedup_key=key, kind="artifact",
        chain_depth=depth, event_seq=seq, trigger_artifact=name, trigger_version=version,
    )


__all__ = ["EVENT_BATCH", "fire_on_events", "trigger_events"]
