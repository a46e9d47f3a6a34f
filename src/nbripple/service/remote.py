"""The serving side of the catalog over HTTP: run one catalog method for a client.

The handler of ``POST catalog/<method>`` calls :func:`call` with the request body;
the method must be one of the protocol's (:data:`~nbripple.catalog.served.READS` and
``WRITES``), its arguments decode only to catalog records (no code), and a write with
an ``Idempotency-Key`` is run once per key: its answer is remembered in the same
transaction as the write, so a client's retry after a lost answer gets that answer.

Example::

    call(ws, "get_version", b'{"args": ["model", 3], "kwargs": {}}', None)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import sys
import threading
import time
import weakref
from datetime import timedelta
from typing import Any

from ..catalog.served import READS, WRITES
from ..catalog.served.codec import CodecError, dumps, loads
from ..errors import NbrippleError, one_line
from ..model import NewVersion
from .feed import FeedingCatalog
from .workspace import Workspace

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
GATHER_S = 0.004
"""How long a group commit waits at most for more calls when the last group had
several, until as many as the last group are queued: a transaction's cost barely grows
with its size, so fuller groups commit more per second."""
REMEMBER_FOR = timedelta(days=1)
"""How long an answer stays remembered by its idempotency key."""


class Refused(Exception):
    """A call the server will not run: ``kind`` is the error the client raises again
    (``KeyError``, ``ValueError``, ``TypeError``, ``NotFound``, ``BadRequest``)."""

    def __init__(self, kind: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = one_line(message) or kind
        self.status = status


def _arguments(body: bytes) -> tuple[list[Any], dict[str, Any]]:
    try:
        payload = loads(body or b"{}")
    except CodecError as exc:
        raise Refused("BadRequest", f"the body is not a catalog call: {exc}") from exc
    if not isinstance(payload, dict):
        raise Refused("BadRequest", "the body must be an object with args and kwargs")
    args, kwargs = payload.get("args", []), payload.get("kwargs", {})
    unknown = sorted(set(payload) - {"args", "kwargs"})
    if unknown or not isinstance(args, list) or not isinstance(kwargs, dict):
        raise Refused("BadRequest", "the body must be {\"args\": [...], \"kwargs\": {...}}")
    return args, kwargs


def call(ws: Workspace, method: str, body: bytes, key: str | None, *,
         first_try: bool = False) -> str:
    """The JSON answer ``{"result": ...}`` of ``method`` on the workspace's catalog."""
    if method not in READS and method not in WRITES:
        raise Refused("NotFound", f"no catalog method {method!r}", status=404)
    if key is not None and not KEY_PATTERN.match(key):
        raise Refused("BadRequest", "Idempotency-Key must be 8-128 letters, digits or _.:-")
    args, kwargs = _arguments(body)
    catalog: Any = ws.catalog
    if method == "change_token":
        feed = catalog.feed.cursor if isinstance(catalog, FeedingCatalog) else ""
        return dumps({"result": [feed, repr(catalog.change_token())]})
    bound = getattr(catalog, method)

    def run() -> str:
        try:
            return dumps({"result": bound(*args, **kwargs)})
        except NbrippleError:
            raise
        except (KeyError, ValueError, TypeError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise Refused(type(exc).__name__, str(message)) from exc

    if method == "commit" and key is not None and hasattr(catalog, "idempotent_commits"):
        return _group_commit(catalog).submit(key, args, kwargs, first_try=first_try)
    remember = getattr(catalog, "idempotent", None)
    if method not in WRITES or key is None or remember is None:
        return run()
    try:
        if isinstance(catalog, FeedingCatalog):
            with catalog.held():  # publish only once the transaction has committed
                return str(remember(key, method, run))
        return str(remember(key, method, run))
    except ValueError as exc:  # the key was used for another method
        if isinstance(exc, NbrippleError):
            raise
        raise Refused("ValueError", str(exc)) from exc


def commit_soon(ws: Workspace, body: bytes, key: str, *, first_try: bool = False
                ) -> asyncio.Future[str] | None:
    """A keyed ``commit`` for a caller on the event loop: checks and decodes the call
    here, then queues it for the group commit of ``ws``'s catalog; the future of its
    JSON answer. None when that catalog has no group commit (:func:`call` runs it)."""
    if not KEY_PATTERN.match(key):
        raise Refused("BadRequest", "Idempotency-Key must be 8-128 letters, digits or _.:-")
    catalog: Any = ws.catalog
    if not hasattr(catalog, "idempotent_commits"):
        return None
    args, kwargs = _arguments(body)
    return _group_commit(catalog).submit_async(key, args, kwargs, first_try=first_try)


class GroupCommit:
    """Concurrent ``commit`` calls made one transaction (DuckDB's cost is per statement
    and per transaction, not per row). Callers queue their call; one committer thread,
    started when the first call comes and ending when the queue is empty, commits every
    call queued while the previous group ran, each remembered under its own key. A
    group that fails is retried one call at a time, so a bad call fails alone.

    A caller on the event loop (:meth:`submit_async`, the server's handler) waits on a
    future that the committer settles with one wake-up of the loop per group; no pool
    thread waits for each call. :meth:`submit` blocks the calling thread instead."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._company = threading.Condition(self._lock)
        self._queue: list[_Pending] = []
        self._busy = False
        self._last_size = 0

    def submit(self, key: str, args: list[Any], kwargs: dict[str, Any], *,
               first_try: bool = False) -> str:
        """Commit one call with its group and wait for its answer; ``first_try`` (the
        client says it never sent this key before) spares the group the lookup of
        remembered answers."""
        pending = self._pending(key, args, kwargs, first_try)
        pending.done = threading.Event()
        self._enqueue(pending)
        pending.done.wait()
        return pending.outcome()

    def submit_async(self, key: str, args: list[Any], kwargs: dict[str, Any], *,
                     first_try: bool = False) -> asyncio.Future[str]:
        """:meth:`submit` for a caller on the running event loop: the future of the
        answer (or of the call's error)."""
        pending = self._pending(key, args, kwargs, first_try)
        pending.loop = asyncio.get_running_loop()
        pending.future = pending.loop.create_future()
        self._enqueue(pending)
        return pending.future

    @staticmethod
    def _pending(key: str, args: list[Any], kwargs: dict[str, Any], first_try: bool
                 ) -> _Pending:
        try:
            pending = _Pending(key, *_commit_arguments(args, kwargs))
        except (TypeError, ValueError) as exc:
            raise Refused(type(exc).__name__, str(exc)) from exc
        pending.first_try = first_try
        return pending

    def _enqueue(self, pending: _Pending) -> None:
        with self._lock:
            self._queue.append(pending)
            start, self._busy = not self._busy, True
            if len(self._queue) >= self._last_size:
                self._company.notify()
        if start:
            threading.Thread(target=self._run_groups, name="nbripple-group-commit",
                             daemon=True).start()

    def _run_groups(self) -> None:
        """Commit what is queued, group after group, until nothing is. When the last
        group had company, first wait up to :data:`GATHER_S` for as many calls as it
        had: its writers are on their way (a lone writer never waits)."""
        while True:
            with self._lock:
                deadline = time.monotonic() + GATHER_S
                while (self._last_size > 1 and len(self._queue) < self._last_size
                       and (left := deadline - time.monotonic()) > 0):
                    self._company.wait(left)  # woken when the last group's size is queued
                group, self._queue = self._queue, []
                self._last_size = len(group)
                if not group:
                    self._busy = False
                    return
            try:
                self._commit(group)
            except BaseException as exc:  # every caller hears of it (then it goes on)
                for pending in group:
                    if pending.answer is None and pending.error is None:
                        pending.error = exc
            finally:
                _settle(group)

    def _commit(self, group: list[_Pending], *, lookup: bool = False) -> None:
        calls = [(p.key, p.execution_id, p.new) for p in group]
        lookup = lookup or not all(p.first_try for p in group)
        try:
            done = self.catalog.idempotent_commits(calls, _answer, lookup=lookup)
        except Exception:
            if len(group) == 1 and lookup:
                group[0].error = sys.exc_info()[1]
                return
            for pending in group:  # one at a time, looking keys up: a bad call fails alone
                self._commit([pending], lookup=True)
            return
        for pending, (answer, _) in zip(group, done, strict=True):
            pending.answer = answer


def _settle(group: list[_Pending]) -> None:
    """Hand each call of a committed group its outcome: one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
    for pending in group:
        if pending.loop is not None:
            by_loop.setdefault(pending.loop, []).append(pending)
        elif pending.done is not None:
            pending.done.set()
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_resolve, waiting)


def _resolve(waiting: list[_Pending]) -> None:
    for pending in waiting:
        assert pending.future is not None
        if pending.future.done():  # the client went away
            continue
        try:
            pending.future.set_result(pending.outcome())
        except Exception as exc:  # the caller raises it
            pending.future.set_exception(exc)


class _Pending:
    def __init__(self, key: str, execution_id: str | None, new: list[Any]) -> None:
        self.key, self.execution_id, self.new = key, execution_id, new
        self.done: threading.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[str] | None = None
        self.first_try = False
        self.answer: str | None = None
        self.error: BaseException | None = None

    def outcome(self) -> str:
        if self.error is not None:
            if isinstance(self.error, NbrippleError):
                raise self.error
            if isinstance(self.error, KeyError | ValueError | TypeError):
                raise Refused(type(self.error).__name__, str(self.error))
            raise self.error
        assert self.answer is not None
        return self.answer


def _commit_arguments(args: list[Any], kwargs: dict[str, Any]) -> tuple[str | None, list[Any]]:
    bound = _COMMIT_SIGNATURE.bind(*args, **kwargs)
    execution_id, new = bound.arguments["execution_id"], bound.arguments["new"]
    if execution_id is not None and not isinstance(execution_id, str):
        raise TypeError("commit's execution_id must be a string or None")
    if not isinstance(new, list) or not all(isinstance(n, NewVersion) for n in new):
        raise TypeError("commit's new must be a list of NewVersion records")
    return execution_id, new


def _commit_signature(execution_id: str | None, new: list[Any]) -> None:
    """The signature of ``commit``, to bind a call's arguments to."""


_COMMIT_SIGNATURE = inspect.signature(_commit_signature)


def _answer(versions: list[Any]) -> str:
    return dumps({"result": versions})


_committers: weakref.WeakKeyDictionary[Any, GroupCommit] = weakref.WeakKeyDictionary()
_committers_lock = threading.Lock()


def _group_commit(catalog: Any) -> GroupCommit:
    with _committers_lock:
        found = _committers.get(catalog)
        if found is None:
            found = _committers[catalog] = GroupCommit(catalog)
        return found


def forget_old_requests(ws: Workspace) -> int:
    """Forget answers older than :data:`REMEMBER_FOR` (the server does it on start)."""
    forget = getattr(ws.catalog, "forget_requests", None)
    if forget is None:
        return 0
    return int(forget(ws.catalog.now() - REMEMBER_FOR))


__all__ = ["KEY_PATTERN", "REMEMBER_FOR", "GroupCommit", "Refused", "call", "commit_soon",
           "forget_old_requests"]
