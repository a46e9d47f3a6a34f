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
GATHER_S = 0.002
"""How long a group commit waits for more calls when the last group had several: a
transaction's cost barely grows with its size, so fuller groups commit more per second."""
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


class GroupCommit:
    """Concurrent ``commit`` calls made one transaction (DuckDB's cost is per statement
    and per transaction, not per row): the first caller commits every call queued
    while the previous group ran, each remembered under its own key; the others wait
    for their answer. A group that fails is retried one call at a time, so a bad call
    fails alone."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._busy = False
        self._last_size = 0

    def submit(self, key: str, args: list[Any], kwargs: dict[str, Any], *,
               first_try: bool = False) -> str:
        """Commit one call with its group; ``first_try`` (the client says it never sent
        this key before) spares the group the lookup of remembered answers."""
        try:
            pending = _Pending(key, *_commit_arguments(args, kwargs))
            pending.first_try = first_try
        except (TypeError, ValueError) as exc:
            raise Refused(type(exc).__name__, str(exc)) from exc
        with self._lock:
            self._queue.append(pending)
            lead = not self._busy
            self._busy = True
        if not lead:
            pending.done.wait()
            if not pending.lead:
                return pending.outcome()
        self._run_groups()
        return pending.outcome()

    def _run_groups(self) -> None:
        """Commit what is queued as one group; then hand over (or stop). When the last
        group had company, wait :data:`GATHER_S` first for the writers that are on
        their way (a lone writer never waits)."""
        if self._last_size > 1:
            time.sleep(GATHER_S)
        with self._lock:
            group, self._queue = self._queue, []
            self._last_size = len(group)
        try:
            self._commit(group)
        finally:
            with self._lock:
                if self._queue:  # the next group is led by its first caller
                    successor = self._queue[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._busy = False
            for pending in group:
                pending.done.set()

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


class _Pending:
    def __init__(self, key: str, execution_id: str | None, new: list[Any]) -> None:
        self.key, self.execution_id, self.new = key, execution_id, new
        self.done = threading.Event()
        self.first_try = False
        self.lead = False
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
    bound = inspect.signature(_commit_signature).bind(*args, **kwargs)
    execution_id, new = bound.arguments["execution_id"], bound.arguments["new"]
    if execution_id is not None and not isinstance(execution_id, str):
        raise TypeError("commit's execution_id must be a string or None")
    if not isinstance(new, list) or not all(isinstance(n, NewVersion) for n in new):
        raise TypeError("commit's new must be a list of NewVersion records")
    return execution_id, new


def _commit_signature(execution_id: str | None, new: list[Any]) -> None:
    """The signature of ``commit``, to bind a call's arguments to."""


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


__all__ = ["KEY_PATTERN", "REMEMBER_FOR", "GroupCommit", "Refused", "call", "forget_old_requests"]
