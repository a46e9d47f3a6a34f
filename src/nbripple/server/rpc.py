"""The catalog over HTTP: ``POST catalog/{method}`` runs one method of the served
catalog for a client process (:mod:`nbripple.catalog.served` is the client), idempotent
on the client's ``Idempotency-Key``. The work is :func:`nbripple.service.remote.call`'s.
"""

from __future__ import annotations

import functools

from tornado.ioloop import IOLoop

from ..service import remote
from .handlers import ApiHandler, RequestProblem

MAX_CALL_BYTES = 8 * 1024 * 1024
"""A catalog call's body may be this long (a commit of many versions with their
schemas and inline values); the REST API's own limit is smaller."""


class CatalogCall(ApiHandler):
    async def post(self, method: str) -> None:
        self.query()
        if len(self.request.body) > MAX_CALL_BYTES:
            raise RequestProblem(413, "PayloadTooLarge",
                                 f"a catalog call is limited to {MAX_CALL_BYTES} bytes; "
                                 "commit fewer versions at once")
        key = self.request.headers.get("Idempotency-Key")
        first_try = self.request.headers.get("Idempotency-Attempt", "") == "1"
        try:
            soon = (remote.commit_soon(self.ctx.ws, self.request.body, key, first_try=first_try)
                    if method == "commit" and key is not None else None)
            if soon is not None:  # the group commit settles it: no pool thread waits
                answer = await soon
            else:
                job = functools.partial(remote.call, self.ctx.ws, method, self.request.body,
                                        key, first_try=first_try)
                answer = await IOLoop.current().run_in_executor(self.ctx.pool, job)
        except remote.Refused as exc:
            raise RequestProblem(exc.status, exc.kind, exc.message) from exc
        self.finish(answer)


RPC_ROUTES: list[tuple[str, type[ApiHandler]]] = [
    (r"catalog/(?P<method>[a-z_]+)", CatalogCall),
]
"""The catalog endpoints, relative to the base path."""

__all__ = ["MAX_CALL_BYTES", "RPC_ROUTES", "CatalogCall"]
