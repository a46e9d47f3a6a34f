"""Being woken when a process releases the catalog file (Linux: inotify).

A watcher polls the change token (a ``stat`` of the file and of its log) every
``poll_interval_s``, and on average a commit waited half of that before anyone
looked. A process releases the file by closing its lock file (see :mod:`.lockfile`;
the kernel does it for a process that dies), and on Linux the kernel can say so at
once: :func:`watch_releases` calls back on every close of the lock file that follows
a write, which is every release. The caller then compares the change token as a poll
would. The poll stays: it is what sees commits made from another machine on a
network filesystem, of which the kernel says nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from collections.abc import Callable
from pathlib import Path

try:
    import inotify_simple
except ImportError:  # not Linux (the dependency is Linux-only)
    inotify_simple = None

log = logging.getLogger("nbripple.catalog")


def watch_releases(lock: Path, wake: Callable[[], None]) -> Callable[[], None] | None:
    """Call ``wake`` (from a daemon thread) each time a process releases the lock
    file ``lock``, until the returned function is called; None where the kernel cannot
    tell (not Linux, or no inotify instance left: ``fs.inotify.max_user_instances``)."""
    if inotify_simple is None:
        return None
    try:
        notifier = inotify_simple.INotify()
    except OSError as exc:
        log.info("not woken on releases of the catalog (polling only): %s", exc)
        return None
    try:
        notifier.add_watch(str(lock.parent), inotify_simple.flags.CLOSE_WRITE)
    except OSError as exc:
        notifier.close()
        log.info("not woken on releases of the catalog (polling only): %s", exc)
        return None
    stop_read, stop_write = os.pipe()

    def run() -> None:
        try:
            while True:
                ready, _, _ = select.select([notifier.fileno(), stop_read], [], [])
                if stop_read in ready:
                    return
                if any(event.name == lock.name for event in notifier.read(timeout=0)):
                    wake()
        except Exception as exc:  # the poll goes on without it
            log.warning("waking on releases of the catalog stopped: %s: %s",
                        type(exc).__name__, exc)
        finally:
            notifier.close()
            os.close(stop_read)

    thread = threading.Thread(target=run, name="nbripple-catalog-releases", daemon=True)
    thread.start()

    stopped = threading.Lock()

    def stop() -> None:
        if not stopped.acquire(blocking=False):
            return  # stopped already (its descriptor may be another file's by now)
        with contextlib.suppress(OSError):
            os.write(stop_write, b"x")
        os.close(stop_write)
        thread.join(timeout=5)

    return stop


__all__ = ["watch_releases"]
