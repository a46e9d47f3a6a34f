"""The endpoints that act — launch a plan, rerun or relaunch an execution, start or
stop the server's watcher — the launch form, and the live long poll.

Runs start in the background (:mod:`nbripple.service.launching`) and answer 202 with
the queued execution. ``GET live`` waits on the event loop, never on a pool thread.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..service import api
from .handlers import SEGMENT, ApiHandler, bad_request

LIVE_TIMEOUT_S, LIVE_MAX_TIMEOUT_S = 25.0, 60.0
"""How long ``GET live`` waits for something new by default, and at most."""


class PlanForm(ApiHandler):
    async def get(self, name: str) -> None:
        self.query()
        await self.answer(api.plan_form, name)


class PlanLaunch(ApiHandler):
    async def post(self, name: str) -> None:
        self.query()
        await self.accepted(api.launch_plan, self.ctx.runs(), name,
                            self.parameters_body("launch"))


class ExecutionAction(ApiHandler):
    async def post(self, execution_id: str, action: str) -> None:
        self.query()
        if action == "rerun":
            if self.json_body(required=False):
                raise bad_request("rerun takes no body: it runs the same notebook snapshot "
                                  "with the same inputs; relaunch takes parameters")
            await self.accepted(api.rerun, self.ctx.runs(), execution_id)
        else:
            await self.accepted(api.relaunch, self.ctx.runs(), execution_id,
                                self.parameters_body("relaunch"))


class WatcherAction(ApiHandler):
    async def post(self, action: str) -> None:
        self.query()
        if self.json_body(required=False):
            raise bad_request(f"watcher/{action} takes no body fields")
        await self.answer(api.set_watcher, self.ctx, action == "start")


class Live(ApiHandler):
    """A long poll on what this process commits: answered at once when something is
    newer than ``cursor``, else when something comes or ``timeout`` passes. It waits
    on the event loop, so any number of them hold no thread."""

    _waiting: asyncio.Future[Any] | None = None

    async def get(self) -> None:
        args = self.query("cursor", "timeout")
        timeout = self.seconds(args, "timeout", LIVE_TIMEOUT_S, LIVE_MAX_TIMEOUT_S)
        self._waiting = asyncio.ensure_future(api.live(self.ctx.feed, self.one(args, "cursor"),
                                                       timeout))
        try:
            result = await self._waiting
        except asyncio.CancelledError:  # the client went away
            return
        self.finish(json.dumps(result, ensure_ascii=False))

    def on_connection_close(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()


ACTION_ROUTES: list[tuple[str, type[ApiHandler]]] = [
    (f"plans/{SEGMENT.format('name')}/form", PlanForm),
    (f"plans/{SEGMENT.format('name')}/launch", PlanLaunch),
    (f"executions/{SEGMENT.format('execution_id')}/(?P<action>rerun|relaunch)",
     ExecutionAction),
    ("watcher/(?P<action>start|stop)", WatcherAction),
    ("live", Live),
]
"""The endpoints that act, and the live one, relative to the base path."""

__all__ = ["ACTION_ROUTES"]
