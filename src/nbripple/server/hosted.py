"""The API's handlers hosted by a Jupyter server (see :mod:`.extension`): Jupyter's
authentication, XSRF and authorization rules, or the nbripple token; and forwarding
to the server that owns the home when that is another process.

:func:`hosted_rules` wraps every handler of :func:`nbripple.server.all_routes` in
:class:`JupyterHosted`, so the extension answers the same endpoints as
``nbripple serve`` (and a JSON 404 for any other path under the API's base). A request
is let in when

* it carries ``Authorization: token <t>`` with the nbripple token — the one in
  ``<home>/server.json``, which kernels and the CLI read — with no XSRF check, as for
  Jupyter's own token; or
* Jupyter's identity provider knows its user (Jupyter's login cookie, its token in the
  ``Authorization`` header or ``?token=``), it passes Jupyter's XSRF and origin checks
  (a browser's POST, PUT, PATCH or DELETE sends the ``_xsrf`` cookie's value as
  ``X-XSRFToken``, as JupyterLab does), and Jupyter's authorizer lets that user
  ``read`` (GET, HEAD) or ``write`` (any other verb) the resource ``nbripple``.

Anything else is refused before any handler runs: 401 without credentials, 403 with
wrong ones or a failed check, in the API's error shape. OPTIONS is no exception (no
unauthenticated CORS preflight, as with ``nbripple serve``).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth.identity import User
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.base.handlers import APIHandler
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.ioloop import IOLoop

from ..errors import one_line
from . import all_routes
from .discovery import ServerInfo, is_alive, live_server
from .handlers import ApiHandler, RequestProblem, ServerContext

if TYPE_CHECKING:
    from asyncio import Future

AUTH_RESOURCE = "nbripple"
"""The resource Jupyter's authorizer is asked about (actions ``read`` and ``write``)."""

VERBS = ("get", "head", "post", "put", "delete", "patch")
FORWARDED_HEADERS = ("Content-Type", "Accept", "Idempotency-Key", "Idempotency-Attempt")
CONNECT_TIMEOUT_S = 5.0
FORWARD_TIMEOUT_S = 300.0
"""How long a forwarded request may take (long polls included)."""

TOKEN_USER = User(username="nbripple-token", name="nbripple token",
                  display_name="nbripple token")
"""Who a request with the nbripple token is, to Jupyter (its activity tracking)."""


@dataclass
class Hosting:
    """How this Jupyter server answers for its home: it serves it (``ctx``), or it
    forwards to the process that does (``upstream``, which wins when both are set)."""

    home: Path
    prefix: str  # the API's URL path on this server: <base_url>nbripple/api/
    ctx: ServerContext | None = None
    upstream: ServerInfo | None = None

    @property
    def token(self) -> str:
        """The nbripple token accepted here: this server's, or the owner's."""
        if self.upstream is not None:
            return self.upstream.token
        return self.ctx.token if self.ctx is not None else ""


def is_this_process(info: ServerInfo) -> bool:
    return info.pid == os.getpid() and info.host == socket.gethostname()


class JupyterHosted(ApiHandler, APIHandler):
    """An API handler under Jupyter's rules (see the module's docstring). In the MRO,
    the route's own handler and :class:`ApiHandler` (errors, input, output) come
    before Jupyter's :class:`APIHandler` (identity, XSRF, origin, activity)."""

    hosting: Hosting
    auth_resource = AUTH_RESOURCE
    # Jupyter answers OPTIONS unauthenticated (CORS preflight); this API does not.
    options = tornado.web.RequestHandler._unimplemented_method

    def initialize(self, hosting: Hosting) -> None:  # type: ignore[override]
        self.hosting = hosting
        if hosting.ctx is not None:
            self.ctx = hosting.ctx

    def set_default_headers(self) -> None:
        APIHandler.set_default_headers(self)  # Jupyter's CSP and configured headers
        ApiHandler.set_default_headers(self)

    def finish(self, *args: Any, **kwargs: Any) -> Future[None]:
        kwargs.setdefault("set_content_type", "application/json; charset=utf-8")
        return APIHandler.finish(self, *args, **kwargs)

    def query(self, *allowed: str) -> dict[str, list[str]]:
        # ?token= is Jupyter's way of logging in, not an argument of the endpoint
        return super().query(*allowed, "token")

    async def prepare(self) -> None:  # type: ignore[override]
        if not self.check_host():
            raise RequestProblem(403, "Forbidden",
                                 f"requests for host {self.request.host!r} are refused "
                                 "(see ServerApp.allow_remote_access)")
        if self._bears_nbripple_token():
            self.current_user = self._jupyter_current_user = TOKEN_USER
        else:
            await self._jupyter_authentication()
        if self.hosting.upstream is not None:
            await self._forward()
        elif self.hosting.ctx is None:
            raise RequestProblem(503, "ServerUnavailable", "nbripple has stopped in this "
                                 "Jupyter server; restart Jupyter to serve the home again")

    # -- who may ------------------------------------------------------------------
    def _bears_nbripple_token(self) -> bool:
        header = self.request.headers.get("Authorization", "")
        scheme, _, given = header.strip().partition(" ")
        token = self.hosting.token
        return (scheme.lower() in ("token", "bearer") and bool(given.strip()) and bool(token)
                and hmac.compare_digest(given.strip().encode(), token.encode()))

    async def _jupyter_authentication(self) -> None:
        try:
            await APIHandler.prepare(self)
        except tornado.web.HTTPError as exc:
            if getattr(self, "_jupyter_current_user", None):
                raise _refused(exc, self.request.method or "") from None
        user = getattr(self, "_jupyter_current_user", None)
        if not user:
            raise self._unauthenticated()
        method = (self.request.method or "").upper()
        action = HTTP_METHOD_TO_AUTH_ACTION.get(method, "write")
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, action, AUTH_RESOURCE))
        if not allowed:
            name = getattr(user, "username", "this user")
            raise RequestProblem(403, "Forbidden",
                                 f"{name} may not {action} nbripple (Jupyter's authorizer)")

    def _unauthenticated(self) -> RequestProblem:
        if self.request.headers.get("Authorization") or "token" in self.request.query_arguments:
            return RequestProblem(403, "Forbidden", "wrong token for this server: neither "
                                  "Jupyter's nor the nbripple token of server.json")
        return RequestProblem(401, "Unauthorized",
                              "not logged in: log in to Jupyter, or send 'Authorization: "
                              "token <token>' (the token is in the home's server.json)")

    # -- forwarding ---------------------------------------------------------------
    async def _forward(self) -> None:
        upstream = self.hosting.upstream
        assert upstream is not None
        answer, problem = await self._fetch(upstream)
        if answer is None or answer.code in (401, 403):
            # The owner may have restarted (a new port or token): server.json says.
            fresh = await IOLoop.current().run_in_executor(None, live_server, self.hosting.home)
            if (fresh is not None and not is_this_process(fresh)
                    and (fresh.url, fresh.token) != (upstream.url, upstream.token)):
                self.hosting.upstream = upstream = fresh
                answer, problem = await self._fetch(fresh)
        if answer is None:
            alive = await IOLoop.current().run_in_executor(None, is_alive, upstream)
            raise _unreachable(self.hosting.home, upstream, alive, problem)
        self.set_status(answer.code, answer.reason)
        if answer.body and self.request.method != "HEAD":
            self.write(answer.body)
        kind = answer.headers.get("Content-Type", "application/json; charset=utf-8")
        await self.finish(set_content_type=kind)

    async def _fetch(self, upstream: ServerInfo) -> tuple[HTTPResponse | None, str]:
        path = self.request.path
        if not path.startswith(self.hosting.prefix):  # routes are under it: never
            raise RequestProblem(404, "NotFound", f"no endpoint at {path}")
        pairs = [(k, v) for k, v in parse_qsl(self.request.query, keep_blank_values=True)
                 if k != "token"]  # Jupyter's credential stays here
        url = upstream.url.rstrip("/") + "/" + path[len(self.hosting.prefix):]
        if pairs:
            url += "?" + urlencode(pairs)
        headers = {name: self.request.headers[name] for name in FORWARDED_HEADERS
                   if name in self.request.headers}
        headers["Authorization"] = f"token {upstream.token}"
        method = self.request.method or "GET"
        body = self.request.body
        request = HTTPRequest(
            url, method=method, headers=headers,
            body=body if body or method in ("POST", "PUT", "PATCH") else None,
            allow_nonstandard_methods=True, follow_redirects=False,
            connect_timeout=CONNECT_TIMEOUT_S, request_timeout=FORWARD_TIMEOUT_S)
        try:
            return await AsyncHTTPClient().fetch(request, raise_error=False), ""
        except (OSError, HTTPClientError) as exc:  # refused, reset, timed out
            return None, one_line(str(exc) or type(exc).__name__)


class JupyterNotFound(JupyterHosted):
    """Any other path under the API's base: 404 in the API's shape once the request
    is let in (forwarded as it is when another process owns the home)."""

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if not self._finished:
            raise RequestProblem(404, "NotFound", f"no endpoint at {self.request.path}; "
                                 f"the API is under {self.hosting.prefix}")


def _refused(exc: tornado.web.HTTPError, method: str) -> RequestProblem:
    """Jupyter's refusal of a request whose user it knows, in the API's shape."""
    reason = exc.log_message or ""
    if exc.args:
        with contextlib.suppress(TypeError, ValueError):
            reason = reason % exc.args
    if exc.status_code == 404:  # APIHandler's answer to a cross-origin request
        return RequestProblem(403, "Forbidden", "cross-origin request refused (see "
                              "ServerApp.allow_origin)")
    if "xsrf" in reason.lower():
        return RequestProblem(403, "Forbidden", f"XSRF check failed on {method} "
                              f"({one_line(reason)}): send the _xsrf cookie's value as an "
                              "X-XSRFToken header, as JupyterLab does, or use a token")
    return RequestProblem(403, "Forbidden", one_line(reason) or "refused by Jupyter")


def _unreachable(home: Path, upstream: ServerInfo, alive: bool, problem: str
                 ) -> RequestProblem:
    where = f"the nbripple server of {home} at {upstream.url} (pid {upstream.pid} on " \
            f"{upstream.host})"
    restart = f"restart it (nbripple serve --home {home}), or stop it and restart Jupyter " \
              "to serve the home here"
    if alive:
        return RequestProblem(502, "BadGateway", f"{where} does not answer ({problem}); "
                              f"{restart}")
    return RequestProblem(503, "ServerUnavailable", f"{where} has stopped; {restart}")


def jupyter_hosted(handler: type[ApiHandler]) -> type[JupyterHosted]:
    """``handler`` under Jupyter's rules: each verb it implements is also marked
    ``@tornado.web.authenticated`` (as Jupyter requires of extension endpoints)."""
    if handler.prepare is not ApiHandler.prepare:
        raise TypeError(f"{handler.__name__} overrides prepare(); the Jupyter host replaces "
                        "ApiHandler.prepare's token check, so it cannot host it")
    unimplemented = tornado.web.RequestHandler._unimplemented_method
    namespace: dict[str, Any] = {
        verb: tornado.web.authenticated(getattr(handler, verb)) for verb in VERBS
        if getattr(handler, verb) is not unimplemented}
    namespace["__module__"] = __name__
    namespace["__doc__"] = f"{handler.__name__}, hosted by Jupyter."
    return cast("type[JupyterHosted]",
                type(f"Jupyter{handler.__name__}", (JupyterHosted, handler), namespace))


def hosted_rules(hosting: Hosting, base_path: str = "/nbripple/api/"
                 ) -> list[tuple[str, type[JupyterHosted], dict[str, Any]]]:
    """The tornado rules of :func:`~nbripple.server.all_routes` under ``base_path``
    (relative to the Jupyter server's ``base_url``), then the JSON 404 for any other
    path under it."""
    base = "/" + base_path.strip("/") + "/"
    kwargs = {"hosting": hosting}
    rules: list[tuple[str, type[JupyterHosted], dict[str, Any]]] = [
        (base + pattern, jupyter_hosted(handler), kwargs) for pattern, handler in all_routes()]
    rules.append((base + ".*", JupyterNotFound, kwargs))
    return rules


__all__ = ["AUTH_RESOURCE", "Hosting", "JupyterHosted", "hosted_rules", "jupyter_hosted"]
