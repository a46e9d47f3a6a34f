"""The serving process's feed of changes: what it committed, the moment it did.

A process that owns a catalog (``nbripple serve``, the Jupyter extension) wraps it in
a :class:`FeedingCatalog`: every write that returns publishes one or more items on
the :class:`ChangeFeed` — ``version``, ``execution``, ``firing``, ``plan``, ``card``.
The server's watcher subscribes to it (a commit wakes it at once: no timer, no file
stat) and the live endpoint long-polls it.

A cursor is ``"<feed id>:<n>"``: the feed id changes when the server restarts, so a
client holding a cursor of another feed is told to ``reset`` (reload what it shows).
The feed keeps the last :data:`CAPACITY` items; a cursor older than that resets too.

Example::

    feed = ChangeFeed()
    catalog = FeedingCatalog(EmbeddedCatalog(path), feed)
    cursor, items, reset = feed.since(None)        # now: nothing yet
    catalog.commit(None, [new])
    cursor, items, reset = feed.since(cursor)      # [{"type": "version", ...}]
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

CAPACITY = 10_000

Item = dict[str, Any]
Listener = Callable[[list[Item]], None]


class ChangeFeed:
    """Items published by writers (any thread), read by cursor, waited for."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.id = uuid.uuid4().hex[:10]
        self._items: deque[tuple[int, Item]] = deque(maxlen=capacity)
        self._n = 0
        self._cond = threading.Condition()
        self._listeners: list[Listener] = []
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    # -- writing ------------------------------------------------------------------
    def publish(self, items: list[Item]) -> None:
        """Append ``items`` (each a dict with a ``type``) and wake everyone waiting."""
        if not items:
            return
        with self._cond:
            for item in items:
                self._n += 1
                self._items.append((self._n, {**item, "n": self._n}))
            self._cond.notify_all()
            waiters = list(self._waiters)
            listeners = list(self._listeners)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed
                self._waiters.discard((loop, event))
        for listener in listeners:
            listener(items)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(items)`` (in the publishing thread) after each publish;
        returns the function that unsubscribes it."""
        with self._cond:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._cond:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return unsubscribe

    # -- reading ------------------------------------------------------------------
    @property
    def cursor(self) -> str:
        """The cursor of now: :meth:`since` it returns only what comes later."""
        with self._cond:
            return f"{self.id}:{self._n}"

    def _position(self, cursor: str | None) -> int | None:
        """The item number a cursor stands for; None when it is not of this feed (or
        lost: older than what the feed keeps)."""
        if cursor is None:
            return None
        feed_id, _, number = cursor.partition(":")
        if feed_id != self.id or not number.isdigit():
            return None
        n = int(number)
        if n > self._n:
            return None
        oldest = self._items[0][0] if self._items else self._n + 1
        if n + 1 < oldest and n < self._n:
            return None
        return n

    def since(self, cursor: str | None) -> tuple[str, list[Item], bool]:
        """``(new cursor, items after cursor, reset)``. ``reset`` is True when the
        cursor is None, of another feed or too old: then no items are returned and
        the caller reloads whatever it shows."""
        with self._cond:
            n = self._position(cursor)
            now = f"{self.id}:{self._n}"
            if n is None:
                return now, [], True
            return now, [item for number, item in self._items if number > n], False

    def wait(self, cursor: str, timeout: float) -> bool:
        """Block until something is published after ``cursor`` (True) or ``timeout``
        seconds pass (False)."""
        with self._cond:
            n = self._position(cursor)
            if n is None or n < self._n:
                return True
            return self._cond.wait_for(lambda: self._n > n, timeout)

    async def wait_async(self, cursor: str | None, timeout: float
                         ) -> tuple[str, list[Item], bool]:
        """:meth:`since`, but when nothing is new, wait (on the running event loop) up
        to ``timeout`` seconds for an item first."""
        found = self.since(cursor)
        if found[1] or found[2]:
            return found
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._cond:
            self._waiters.add(entry)
        try:
            found = self.since(cursor)  # published between the first look and now?
            if not (found[1] or found[2]):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(entry[1].wait(), timeout)
                found = self.since(cursor)
        finally:
            with self._cond:
                self._waiters.discard(entry)
        return found


def version_item(version: Any) -> Item:
    """A new version as a feed item: what a client shows of it without asking."""
    return {"type": "version", "name": version.name, "version": version.version,
            "ref": version.ref, "kind": version.kind, "partitions": dict(version.partitions),
            "seq": version.seq, "execution_id": version.execution_id}


class FeedingCatalog:
    """A catalog whose writes publish on a :class:`ChangeFeed`; every other attribute
    is the wrapped catalog's."""

    def __init__(self, inner: Any, feed: ChangeFeed) -> None:
        self.inner = inner
        self.feed = feed
        self._held = threading.local()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Within this block (in this thread), keep what the writes publish and
        publish it at the end — unless the block fails: then what it wrote was rolled
        back, and nothing is published."""
        if getattr(self._held, "items", None) is not None:  # nested: the outer one
            yield
            return
        self._held.items = []
        try:
            yield
            items, self._held.items = self._held.items, None
        except BaseException:
            self._held.items = None
            raise
        self.feed.publish(items)

    def _publish(self, items: list[Item]) -> None:
        kept = getattr(self._held, "items", None)
        if kept is not None:
            kept.extend(items)
        else:
            self.feed.publish(items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"FeedingCatalog({self.inner!r})"

    def close(self) -> None:
        """Nothing: the serving process holds its catalog until :meth:`release`."""

    def release(self) -> None:
        """Close the wrapped catalog (the server stops)."""
        self.inner.close()

    # -- versions and cards ---------------------------------------------------------
    def commit(self, execution_id: str | None, new: list[Any]) -> list[Any]:
        versions: list[Any] = self.inner.commit(execution_id, new)
        self._publish([version_item(v) for v in versions])
        return versions

    def commit_many(self, batches: list[tuple[str | None, list[Any]]]) -> list[list[Any]]:
        committed: list[list[Any]] = self.inner.commit_many(batches)
        self._publish([version_item(v) for versions in committed for v in versions])
        return committed

    def idempotent_commits(self, calls: list[Any], answer: Any) -> list[tuple[str, Any]]:
        done: list[tuple[str, Any]] = self.inner.idempotent_commits(calls, answer)
        self._publish([version_item(v) for _, versions in done for v in versions or ()])
        return done

    def add_card(self, name: str, version: int, card_type: str, markdown: str) -> Any:
        revision = self.inner.add_card(name, version, card_type, markdown)
        self._publish([{"type": "card", "name": name, "version": version,
                            "revision": revision.revision}])
        return revision

    # -- executions -------------------------------------------------------------------
    def create_execution(self, execution: Any) -> None:
        self.inner.create_execution(execution)
        self._publish([{"type": "execution", "id": execution.id,
                            "status": execution.status}])

    def update_execution(self, execution_id: str, **fields: Any) -> None:
        self.inner.update_execution(execution_id, **fields)
        self._publish([{"type": "execution", "id": execution_id,
                            "status": fields.get("status")}])

    def finish_execution(self, execution_id: str, *, commit_staged: bool,
                         **changes: Any) -> list[Any]:
        versions: list[Any] = self.inner.finish_execution(
            execution_id, commit_staged=commit_staged, **changes)
        self._publish([*(version_item(v) for v in versions),
                           {"type": "execution", "id": execution_id,
                            "status": changes.get("status")}])
        return versions

    # -- plans and firings ----------------------------------------------------------
    def register_plan(self, name: str, spec: dict[str, Any], spec_hash: str
                      ) -> tuple[int, bool]:
        version, created = self.inner.register_plan(name, spec, spec_hash)
        if created:
            self._publish([{"type": "plan", "name": name, "version": version}])
        return version, created

    def set_plan_active(self, name: str, active: bool) -> bool:
        changed: bool = self.inner.set_plan_active(name, active)
        self._publish([{"type": "plan", "name": name, "active": active}])
        return changed

    def update_plan_state(self, name: str, **changes: Any) -> None:
        self.inner.update_plan_state(name, **changes)
        self._publish([{"type": "plan", "name": name}])

    def add_firing(self, **fields: Any) -> str | None:
        firing_id: str | None = self.inner.add_firing(**fields)
        if firing_id is not None:
            self._publish([{"type": "firing", "id": firing_id, "plan": fields.get("plan"),
                                "status": fields.get("status", "pending")}])
        return firing_id

    def start_firing(self, firing_id: str, execution: Any) -> bool:
        started: bool = self.inner.start_firing(firing_id, execution)
        if started:
            self._publish([{"type": "firing", "id": firing_id, "status": "running",
                                "execution_id": execution.id},
                               {"type": "execution", "id": execution.id,
                                "status": execution.status}])
        return started

    def claim_firing(self, firing_id: str, execution_id: str) -> bool:
        claimed: bool = self.inner.claim_firing(firing_id, execution_id)
        if claimed:
            self._publish([{"type": "firing", "id": firing_id, "status": "running",
                                "execution_id": execution_id}])
        return claimed

    def update_firing(self, firing_id: str, **changes: Any) -> None:
        self.inner.update_firing(firing_id, **changes)
        self._publish([{"type": "firing", "id": firing_id,
                            "status": changes.get("status")}])


__all__ = ["CAPACITY", "ChangeFeed", "FeedingCatalog", "version_item"]
