"""Whether a process on this machine is still alive (for locks and orphaned runs).

One place for both users: the catalog's waiting markers and the watcher's check for
orphaned runs. A pid can be reused once its process has ended, so when the caller
knows when the owner started, a process that started at another time (a new process
with the old pid) does not count as the owner.
"""

from __future__ import annotations

from datetime import datetime

import psutil

# psutil derives start times from the boot time (whole seconds on Linux) plus clock
# ticks, and a wall clock can be stepped: a start time within this slack matches.
START_TIME_SLACK_S = 2.0


def process_start_time(pid: int | None = None) -> float | None:
    """When process ``pid`` (default: this process) started, in seconds since the epoch;
    None if no such process runs (or it is a zombie)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # it exists; when it started is not ours to know
        return None


def pid_alive(
    pid: int, *, start_time: float | None = None, started_before: datetime | None = None
) -> bool:
    """True while the process ``pid`` runs on this machine; a zombie counts as dead.

    ``start_time``: the owner's own start time, as :func:`process_start_time` gave it;
    a process with this pid that started at another time is not the owner.
    ``started_before``: the owner was already running at that moment (e.g. when it
    recorded an execution); a process with this pid that started later is not it.
    """
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:  # another user's process: it exists, nothing more known
        return True
    if start_time is not None and abs(created - start_time) > START_TIME_SLACK_S:
        return False  # the pid was reused
    late = started_before is not None and created > started_before.timestamp() + START_TIME_SLACK_S
    return not late  # a process that started later is not the owner


__all__ = ["START_TIME_SLACK_S", "pid_alive", "process_start_time"]
