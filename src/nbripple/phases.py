"""The phases of an execution: when each step of a run was reached.

Every execution records, in :attr:`Execution.phases`, the time (aware ISO 8601) at
which it reached each phase it went through, in this order:

``detected``
    a watcher recorded the firing for the triggering version (triggered runs only);
``claimed``
    the execution was created (for a triggered run: claimed with its firing);
``process_ready``
    the run's process has the job (executor runs only);
``kernel_ready``
    the kernel answers and has entered the run context;
``cells_done``
    papermill has executed the last cell;
``committed``
    the outputs and the execution's end were committed (stamped by the catalog in
    the transaction that commits them).

``nbripple execution ID --timings`` prints them; :func:`timeline` turns them into
offsets, so a slow hop points at its phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

PHASES = ("detected", "claimed", "process_ready", "kernel_ready", "cells_done", "committed")
TRIGGER = "trigger committed"  # the reference of a triggered run's timeline


def stamp(at: datetime | None = None) -> str:
    """The time of a phase as recorded (now unless ``at``)."""
    return (at or datetime.now(UTC)).astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Step:
    """One phase of a timeline: seconds since the reference, and since the step before."""

    phase: str
    at_s: float
    step_s: float


def timeline(phases: dict[str, str] | None, reference: datetime | None = None) -> list[Step]:
    """The recorded phases in order, as offsets from ``reference`` (the triggering
    version's commit, say; default: the first phase). Unknown or unreadable entries
    are left out; phases this code does not know come last, by time."""
    times: list[tuple[str, datetime]] = []
    for name, value in (phases or {}).items():
        try:
            at = datetime.fromisoformat(str(value))
        except ValueError:
            continue
        times.append((name, at if at.tzinfo else at.replace(tzinfo=UTC)))
    order = {name: i for i, name in enumerate(PHASES)}
    times.sort(key=lambda item: (order.get(item[0], len(PHASES)), item[1]))
    if not times:
        return []
    start = reference or times[0][1]
    steps = [Step(TRIGGER, 0.0, 0.0)] if reference is not None else []
    previous = start
    for name, at in times:
        steps.append(Step(name, (at - start).total_seconds(), (at - previous).total_seconds()))
        previous = at
    return steps


__all__ = ["PHASES", "TRIGGER", "Step", "stamp", "timeline"]
