"""The REST API of nbripple (base path ``/nbripple/api/``) on tornado.

* :mod:`.handlers` — the handlers, thin over :mod:`nbripple.service.api`, and the
  HTTP rules (token on every verb, body limit, one JSON error shape);
* :mod:`.discovery` — ``<home>/server.json``, how other processes find the server;
* :mod:`.host` — ``nbripple serve``: the standalone server and its watcher.

Example::

    app = make_app(ServerContext(Workspace(home), token="secret"))
"""

from __future__ import annotations

import tornado.web

from .handlers import MAX_BODY_BYTES, ROUTES, ApiHandler, NotFoundHandler, ServerContext

BASE_PATH = "/nbripple/api/"


def make_app(ctx: ServerContext, base_path: str = BASE_PATH) -> tornado.web.Application:
    """The tornado application serving every endpoint of :data:`ROUTES` under
    ``base_path``; any other path answers 404 in the API's error shape."""
    base = "/" + base_path.strip("/") + "/"
    rules = [(base + pattern, handler, {"ctx": ctx}) for pattern, handler in ROUTES]
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


__all__ = ["BASE_PATH", "MAX_BODY_BYTES", "ROUTES", "ServerContext", "make_app", "route_table"]
