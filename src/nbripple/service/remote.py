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

import re
from datetime import timedelta
from typing import Any

from ..catalog.served import READS, WRITES
from ..catalog.served.codec import CodecError, dumps, loads
from ..errors import NbrippleError, one_line
from .feed import FeedingCatalog
from .workspace import Workspace

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
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


def call(ws: Workspace, method: str, body: bytes, key: str | None) -> str:
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


def forget_old_requests(ws: Workspace) -> int:
    """Forget answers older than :data:`REMEMBER_FOR` (the server does it on start)."""
    forget = getattr(ws.catalog, "forget_requests", None)
    if forget is None:
        return 0
    return int(forget(ws.catalog.now() - REMEMBER_FOR))


__all__ = ["KEY_PATTERN", "REMEMBER_FOR", "Refused", "call", "forget_old_requests"]
