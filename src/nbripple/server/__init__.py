"""The REST API of nbripple (base path ``/nbripple/api/``) on tornado.

* :mod:`.handlers` — the handlers, thin over :mod:`nbripple.service.api`, and the
  HTTP rules (token on every verb, body limit, one JSON error shape);
* :mod:`.actions` — the endpoints that act (launch, rerun, relaunch, watcher
  start/stop), the launch form and the live long poll;
* :mod:`.discovery` — ``<home>/server.json``, how other processes find the server;
* :mod:`.host` — ``nbripple serve``: the standalone server and its watcher.

Example::

    app = make_app(ServerContext(Workspace(home), token="secret"))
"""

from __future__ import annotations

from typing import Any

import tornado.web

from .actions import ACTION_ROUTES
from .handlers import MAX_BODY_BYTES, ROUTES, ApiHandler, NotFoundHandler, ServerContext
from .rpc import RPC_ROUTES

BASE_PATH = "/nbripple/api/"


def all_routes() -> list[tuple[str, type[ApiHandler]]]:
    """Every endpoint, relative to the base path: the REST API of :data:`ROUTES` and
    :data:`.actions.ACTION_ROUTES`, and the catalog methods writers call
    (:data:`.rpc.RPC_ROUTES`, first: tornado tries the rules in order, and writers call
    them most)."""
    return [*RPC_ROUTES, *ROUTES, *ACTION_ROUTES]


def api_rules(ctx: ServerContext, base_path: str = BASE_PATH
              ) -> list[tuple[str, type[ApiHandler], dict[str, Any]]]:
    """The tornado rules of :func:`all_routes` under ``base_path`` (both hosts use
    them: :func:`make_app` and the Jupyter server extension)."""
    base = "/" + base_path.strip("/") + "/"
    return [(base + pattern, handler, {"ctx": ctx}) for pattern, handler in all_routes()]


def make_app(ctx: ServerContext, base_path: str = BASE_PATH) -> tornado.web.Application:
    """The tornado application serving every endpoint of :func:`all_routes` under
    ``base_path``; any other path answers 404 in the API's error shape."""
    rules = api_rules(ctx, base_path)
    return tornado.web.Application(rules, default_handler_class=NotFoundHandler,
                                   default_handler_args={"ctx": ctx}, compress_response=False)


def route_table(app: tornado.web.Application) -> list[tuple[str, type[ApiHandler]]]:
    """Every route of ``app`` as (path regex, handler class), as tornado matches them."""
    found = []
    for rule in app.wildcard_router.rules:
        regex = getattr(rule.matcher, "regex", None)
        if regex is not None:
            found.append((regex.pattern, rule.target))
    return found


__all__ = ["BASE_PATH", "MAX_BODY_BYTES", "ROUTES", "ServerContext", "all_routes", "api_rules",
           "make_app", "route_table"]
