"""One HTTP client of a served catalog: keep-alive connections, the token, bounded
retries, and the server's errors raised again as the exceptions they were.

A write carries an ``Idempotency-Key`` that stays the same across its retries, so a
retry after a lost answer (a killed server, a dropped connection) never writes twice.
A call that still fails after :attr:`Transport.retry_s` seconds (or
:attr:`Transport.attempts` tries) raises :class:`~nbripple.errors.ServerUnavailable`
naming the URL: a client never hangs on a dead server.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import tenacity
import urllib3
import urllib3.connection

from ... import errors
from .codec import dumps, loads

RETRY_S = 30.0
ATTEMPTS = 40
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 120.0
RETRIED_STATUSES = (502, 503, 504)

Discover = Callable[[], "tuple[str, str] | None"]


class _Unreachable(Exception):
    """The server did not answer this time (retried)."""


class _OneWrite:
    """Mixed into urllib3's connections: a request's head and body leave in one write.

    http.client writes the head, then the body: two packets on a TCP_NODELAY socket,
    so the server wakes up for the head and again for the body. A catalog call's body
    is small; one write costs both sides one wake-up and one system call less."""

    _gathered: bytearray | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._gathered = bytearray()
        try:
            super().request(*args, **kwargs)  # type: ignore[misc]
            data = bytes(self._gathered)
        finally:
            self._gathered = None
        super().send(data)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        if self._gathered is not None and isinstance(data, bytes | bytearray):
            self._gathered += data
            return
        super().send(data)  # type: ignore[misc]


class _Connection(_OneWrite, urllib3.connection.HTTPConnection):
    pass


class _SecureConnection(_OneWrite, urllib3.connection.HTTPSConnection):
    pass


class Transport:
    """Calls ``POST <url>catalog/<method>`` with ``{"args": [...], "kwargs": {...}}``.

    Args:
        url: the API's base URL, e.g. ``http://127.0.0.1:8765/nbripple/api/``.
        token: the server's token.
        discover: called after a failed try to find the server again (its
            ``server.json`` may name a new port after a restart): ``(url, token)`` or
            None.
    """

    def __init__(self, url: str, token: str | None, *, discover: Discover | None = None,
                 retry_s: float = RETRY_S, attempts: int = ATTEMPTS,
                 read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.retry_s = retry_s
        self.attempts = attempts
        self.read_timeout_s = read_timeout_s
        self._discover = discover
        self._gave_up = False  # the last call spent its whole budget: try once now
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pool: urllib3.HTTPConnectionPool | None = None
        self._point(url, token)

    def _point(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise errors.ConfigError(f"the catalog URL {url!r} is not an http(s) URL; "
                                     "set NBRIPPLE_URL or [catalog] url to the server's URL")
        self.url = url if url.endswith("/") else url + "/"
        self.token = token or ""
        self._path = parts.path if parts.path.endswith("/") else parts.path + "/"
        pool_class = urllib3.HTTPSConnectionPool if parts.scheme == "https" \
            else urllib3.HTTPConnectionPool
        old, self._pool = self._pool, pool_class(
            parts.hostname, parts.port, maxsize=8, block=False, retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=self.read_timeout_s))
        self._pool.ConnectionCls = _SecureConnection if parts.scheme == "https" \
            else _Connection
        if old is not None:
            old.close()

    @contextlib.contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """Retry for at most ``seconds`` within this block (in this thread)."""
        before = getattr(self._local, "retry_s", None)
        self._local.retry_s = seconds
        try:
            yield
        finally:
            self._local.retry_s = before

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()

    # -- one call -----------------------------------------------------------------
    def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], *,
             write: bool) -> Any:
        """The result of ``method(*args, **kwargs)`` on the served catalog."""
        body = dumps({"args": list(args), "kwargs": kwargs}).encode("utf-8")
        key = uuid.uuid4().hex if write else None
        return self._retried(method, lambda tries: self._send(method, body, key, tries))

    def get(self, path: str) -> Any:
        """The JSON answer of ``GET <url><path>`` (``health``...), retried as calls are."""
        return self._retried(path, lambda _: self._fetch(path))

    def _retried(self, what: str, send: Callable[[int], Any]) -> Any:
        """``send(try_number)`` until it answers, within the retry budget; then
        ServerUnavailable naming the URL and ``what`` was asked."""
        last: list[str] = []
        tries = [0]

        def attempt() -> Any:
            tries[0] += 1
            try:
                return send(tries[0])
            except _Unreachable as exc:
                last[:] = [str(exc)]
                self._rediscover()
                raise

        # After a call spent the whole budget on a dead server, the next ones try once:
        # a command that makes several calls fails within one budget, not one each.
        attempts = 1 if self._gave_up or getattr(self._local, "retry_s", None) == 0 \
            else self.attempts
        budget = getattr(self._local, "retry_s", None)
        retry_s = self.retry_s if budget is None else budget
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Unreachable),
            stop=tenacity.stop_after_delay(retry_s) | tenacity.stop_after_attempt(
                attempts),
            wait=tenacity.wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.1),
            reraise=False,
        )
        try:
            result = retrying(attempt)
        except tenacity.RetryError:
            self._gave_up = True
            raise errors.ServerUnavailable(
                f"the nbripple server at {self.url} did not answer {what} "
                f"({last[0] if last else 'no answer'})"
                + ("" if attempts == 1 else f" after retrying for {retry_s:g} s")
                + "; start it (nbripple serve) or point NBRIPPLE_URL at a running one"
            ) from None
        self._gave_up = False
        return result

    def _rediscover(self) -> None:
        if self._discover is None:
            return
        found = self._discover()
        if found is not None and (found[0] != self.url or found[1] != self.token):
            with self._lock:
                self._point(*found)

    def _send(self, method: str, body: bytes, key: str | None, attempt: int = 1) -> Any:
        headers = {"Authorization": f"token {self.token}",
                   "Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
            headers["Idempotency-Attempt"] = str(attempt)  # 1: the key is new to the server
        pool = self._pool
        assert pool is not None
        try:
            answer = pool.urlopen("POST", f"{self._path}catalog/{method}", body=body,
                                  headers=headers, retries=False, redirect=False,
                                  preload_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Unreachable(_reason(exc)) from exc
        status, data = answer.status, answer.data
        if status == 200:
            return loads(data)["result"]
        if status in RETRIED_STATUSES:
            raise _Unreachable(f"HTTP {status}")
        raise self._error(status, data, method)

    def _fetch(self, path: str) -> Any:
        pool = self._pool
        assert pool is not None
        try:
            answer = pool.urlopen("GET", f"{self._path}{path}", retries=False, redirect=False,
                                  headers={"Authorization": f"token {self.token}"},
                                  preload_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Unreachable(_reason(exc)) from exc
        if answer.status == 200:
            return json.loads(answer.data)
        if answer.status in RETRIED_STATUSES:
            raise _Unreachable(f"HTTP {answer.status}")
        raise self._error(answer.status, answer.data, path)

    def _error(self, status: int, data: bytes, method: str) -> Exception:
        try:
            payload = json.loads(data)
            name, message = str(payload["error"]), str(payload["message"])
        except (ValueError, KeyError, TypeError):
            name, message = "", data[:200].decode("utf-8", "replace")
        if status in (401, 403):
            return errors.ServerUnavailable(
                f"the nbripple server at {self.url} refused the token ({status}: "
                f"{message}); use the token in its server.json or NBRIPPLE_TOKEN")
        builtin = {"KeyError": KeyError, "ValueError": ValueError, "TypeError": TypeError}
        if name in builtin:
            return builtin[name](message)
        cls = _nbripple_error(name)
        if cls is not None:
            try:
                return cls(message)
            except TypeError:  # an error class that takes other arguments
                pass
        return errors.NbrippleError(f"the nbripple server at {self.url} failed on {method} "
                                    f"({status} {name}): {message}")


def _nbripple_error(name: str) -> type[errors.NbrippleError] | None:
    """The NbrippleError subclass called ``name`` (of any module already imported)."""
    pending: list[type[errors.NbrippleError]] = [errors.NbrippleError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason or exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__


__all__ = ["ATTEMPTS", "RETRY_S", "Transport"]
