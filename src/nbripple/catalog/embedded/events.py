"""Events: one per committed version, numbered by the global ``seq``."""

from __future__ import annotations

import json
from collections.abc import Callable

from ...model import Event, TriggerEvent
from .connection import CatalogConnection, file_token
from .lockfile import held_elsewhere
from .releases import watch_releases
from .rows import aware


class EventTables(CatalogConnection):
    """Mixed into :class:`EmbeddedCatalog`: the ``events`` table."""

    def events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        """Events with a seq above ``seq``, oldest first (at most ``limit``)."""
        with self.connection() as con:
            found = con.execute(
                "SELECT seq, kind, artifact, version, execution_id, created_at FROM events "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                [seq, limit],
            ).fetchall()
        return [Event(r[0], r[1], r[2], r[3], r[4], aware(r[5]) or r[5]) for r in found]

    def trigger_events(self, seq: int, limit: int = 500) -> list[TriggerEvent]:
        """Events with a seq above ``seq``, oldest first (at most ``limit``), with their
        version's partitions and their producer's chain depth: what a watcher matches
        them on, in one read rather than two more per event."""
        with self.connection() as con:
            found = con.execute(
                "SELECT e.seq, e.artifact, e.version, v.partitions, "
                "coalesce(x.chain_depth, 0) FROM events e "
                "LEFT JOIN versions v ON v.artifact = e.artifact AND v.version = e.version "
                "LEFT JOIN executions x ON x.id = v.execution_id "
                "WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
                [seq, limit],
            ).fetchall()
        return [TriggerEvent(r[0], r[1], r[2], None if r[3] is None else json.loads(r[3]),
                             int(r[4])) for r in found]

    def last_event_seq(self) -> int:
        """The seq of the newest event; 0 for an empty catalog."""
        with self.connection() as con:
            row = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    def change_token(self) -> tuple[int, ...]:
        """``(mtime_ns, size)`` of the file and of its write-ahead log, without opening
        either: a commit by any process changes the log (or, when it checkpoints, the
        file)."""
        return file_token(self.path)

    def watch_releases(self, wake: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``wake`` whenever a process releases this file (then compare the change
        token: see :mod:`.releases`); returns the function that stops it, or None where
        the kernel cannot tell (polling is then all there is)."""
        return watch_releases(self._lock_path, wake)

    def held_elsewhere(self) -> bool:
        """Whether another process holds this file now (an open would wait for it),
        found without trying to take it (see :func:`.lockfile.held_elsewhere`)."""
        return held_elsewhere(self._lock_path)
