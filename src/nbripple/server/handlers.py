"""The REST handlers: thin over :mod:`nbripple.service.api`, with the HTTP rules in
:class:`ApiHandler` once — the token on every verb, body limits, JSON in and out, and
every error as ``{"error": "<ClassName>", "message": "<one line>"}``.

Service calls run on a small thread pool, so a catalog that waits for its file never
stalls the other requests.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tornado.web
from tornado.ioloop import IOLoop

from ..errors import NbrippleError, error_info, one_line
from ..service import api, preview
from ..service.feed import ChangeFeed
from ..service.launching import Launcher

if TYPE_CHECKING:
    from ..service import Workspace
    from ..watcher import Watcher

log = logging.getLogger("nbripple.server")

MAX_BODY_BYTES = 1024 * 1024
"""A request body longer than this is refused with 413."""

TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")


@dataclass
class ServerContext:
    """What every handler shares: the workspace, the token, the feed of what this
    process commits, the server's own watcher (started and stopped here, so the
    host and the watcher endpoints do it the same way) and the launcher of the runs
    started over the API (:mod:`nbripple.service.launching`: its own executor, made
    on the first launch; the host shuts it down with :meth:`stop_launcher`)."""

    ws: Workspace
    token: str
    watcher: Watcher | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="nbripple-api"))
    feed: ChangeFeed = field(default_factory=ChangeFeed)
    make_watcher: Callable[[], Watcher] | None = None
    launcher: Launcher | None = None
    # where the notebook paths of notebooks/form and notebooks/run are (None: the
    # working directory): Jupyter's root_dir, or `nbripple serve --root`
    notebook_root: Path | None = None
    _watcher_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _unsubscribe: Callable[[], None] | None = field(default=None, repr=False)

    def start_watcher(self) -> bool:
        """Start the server's own watcher (woken by every commit on the feed); False
        if it already runs. A RuntimeError when this host runs none (no factory)."""
        with self._watcher_lock:
            if self.watcher is not None and self.watcher.is_running:
                return False
            if self.make_watcher is None:
                raise RuntimeError("this server cannot run a watcher")
            watcher = self.make_watcher()
            self._unsubscribe = self.feed.subscribe(watcher.notify)
            self.watcher = watcher.start()
            return True

    def stop_watcher(self) -> bool:
        """Stop the server's own watcher (running executions get its grace period);
        False if none runs."""
        with self._watcher_lock:
            watcher, self.watcher = self.watcher, None
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            if watcher is None or not watcher.is_running:
                return False
            watcher.stop()
            return True

    def watcher_state(self) -> dict[str, Any] | None:
        """The state of the server's own watcher (None when none runs)."""
        watcher = self.watcher
        return watcher.state() if watcher is not None else None

    def runs(self) -> Launcher:
        """The launcher of runs started over the API (made on first use)."""
        with self._watcher_lock:
            if self.launcher is None:
                self.launcher = Launcher(self.ws)
            return self.launcher

    def stop_launcher(self) -> None:
        """Shut the launcher down: running launches get the watcher's grace period,
        then they are cancelled. New launches are refused (409) from now on."""
        with self._watcher_lock:
            launcher = self.launcher
        if launcher is not None:
            launcher.shutdown()


class RequestProblem(tornado.web.HTTPError):
    """A request refused before it reaches the service: ``error`` names the problem."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(status, log_message=message.replace("%", "%%"))
        self.error = error
        self.message = message


def bad_request(message: str) -> RequestProblem:
    return RequestProblem(400, "BadRequest", message)


class ApiHandler(tornado.web.RequestHandler):
    """The base of every handler (also the one answering unknown routes)."""

    ctx: ServerContext

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    # -- every request: the token -----------------------------------------------
    def prepare(self) -> None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() not in ("token", "bearer") or not given.strip():
            raise RequestProblem(401, "Unauthorized",
                                 "missing token: send 'Authorization: token <token>' "
                                 "(the token is in the home's server.json)")
        if not hmac.compare_digest(given.strip().encode(), self.ctx.token.encode()):
            raise RequestProblem(403, "Forbidden", "wrong token for this server")
        # A body over the limit was read (up to the HTTP server's own larger limit, so
        # the connection stays usable); json_body() refuses it with 413.

    def _too_large(self) -> RequestProblem:
        return RequestProblem(413, "PayloadTooLarge",
                              f"request body over {self.ctx.max_body_bytes} bytes; "
                              "send a smaller one")

    # -- input --------------------------------------------------------------------
    def json_body(self, required: bool = True) -> dict[str, Any]:
        """The request's body as a JSON object ({} when empty and not required)."""
        body = self.request.body
        if len(body) > self.ctx.max_body_bytes:
            raise self._too_large()
        if not body.strip():
            if required:
                raise bad_request("this request needs a JSON object as its body")
            return {}
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise bad_request(f"the body is not valid JSON: {one_line(str(exc))}") from exc
        if not isinstance(data, dict):
            raise bad_request(f"the body must be a JSON object, not {type(data).__name__}")
        return data

    def query(self, *allowed: str) -> dict[str, list[str]]:
        """The query arguments, all of them among ``allowed`` (else 400)."""
        found = {k: [v.decode("utf-8", "replace") for v in values]
                 for k, values in self.request.query_arguments.items()}
        unknown = sorted(set(found) - set(allowed))
        if unknown:
            raise bad_request(f"unknown query argument(s) {', '.join(unknown)}; this "
                              f"endpoint takes {', '.join(allowed) or 'none'}")
        return found

    def one(self, args: dict[str, list[str]], name: str, default: str | None = None
            ) -> str | None:
        values = args.get(name)
        if not values:
            return default
        if len(values) > 1:
            raise bad_request(f"query argument {name} given {len(values)} times; give it once")
        return values[0]

    def parameters_body(self, what: str) -> dict[str, Any]:
        """The ``{"parameters": {...}}`` body of a launch (``{}`` when empty)."""
        body = self.json_body(required=False)
        unknown = sorted(set(body) - {"parameters"})
        if unknown:
            raise bad_request(f"unknown field(s) {', '.join(unknown)}; {what} takes "
                              '{"parameters": {"name": value, ...}}')
        parameters = body.get("parameters", {})
        if not isinstance(parameters, dict):
            raise bad_request(f"parameters must be an object of parameter names to values, "
                              f"not {_json_type(parameters)}")
        return parameters

    def seconds(self, args: dict[str, list[str]], name: str, default: float,
                most: float) -> float:
        value = self.one(args, name)
        if value is None:
            return default
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not 0 <= seconds <= most:  # also refuses nan
            raise bad_request(f"{name} must be a number of seconds from 0 to {most:g}, "
                              f"not {value!r}")
        return seconds

    def integer(self, args: dict[str, list[str]], name: str, default: int) -> int:
        value = self.one(args, name)
        return default if value is None else as_int(name, value)

    def flag(self, args: dict[str, list[str]], name: str) -> bool:
        value = (self.one(args, name) or "false").lower()
        if value not in TRUE + FALSE:
            raise bad_request(f"{name} must be true or false, not {value!r}")
        return value in TRUE

    # -- output -------------------------------------------------------------------
    async def answer(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``call(ws, *args, **kwargs)`` on the pool and send its JSON."""
        job = functools.partial(call, self.ctx.ws, *args, **kwargs)
        result = await IOLoop.current().run_in_executor(self.ctx.pool, job)
        self.finish(json.dumps(result, ensure_ascii=False))

    async def accepted(self, call: Callable[..., Any], *args: Any) -> None:
        """:meth:`answer` for a run just started: 202, with the execution's location."""
        job = functools.partial(call, self.ctx.ws, *args)
        result = await IOLoop.current().run_in_executor(self.ctx.pool, job)
        self.set_status(202)
        # relative: plans/{name}/launch and executions/{id}/rerun are both two deep
        self.set_header("Location", f"../../executions/{result['id']}")
        self.finish(json.dumps(result, ensure_ascii=False))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, NbrippleError | tornado.web.HTTPError):
            log.info("%s %s: %s", self.request.method, self.request.path,
                     error_info(value).message if isinstance(value, NbrippleError)
                     else getattr(value, "log_message", ""))
        else:  # a bug: the traceback goes to the server's log, never to the client
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, RequestProblem):
            body = {"error": exc.error, "message": exc.message}
        elif isinstance(exc, NbrippleError):
            info = error_info(exc)
            self.set_status(info.http_status)
            body = {"error": info.name, "message": info.message}
        elif isinstance(exc, tornado.web.HTTPError) or exc is None:
            try:
                phrase = HTTPStatus(status_code).phrase
            except ValueError:
                phrase = "Error"
            message = {404: "no such endpoint; the API is under /nbripple/api/",
                       405: f"{self.request.method} is not allowed on {self.request.path}"}
            body = {"error": phrase.replace(" ", ""),
                    "message": message.get(status_code, phrase.lower())}
        else:
            body = {"error": "InternalError",
                    "message": "the server failed on this request; its log says why"}
        self.finish(json.dumps(body))


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "an array", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def as_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"{name} must be a whole number, not {value!r}") from None


class NotFoundHandler(ApiHandler):
    """Any path that is not an endpoint (after the token check): 404."""

    def prepare(self) -> None:
        super().prepare()
        raise RequestProblem(404, "NotFound",
                             f"no endpoint at {self.request.path}; the API is under "
                             "/nbripple/api/")


# -- reads ------------------------------------------------------------------------------
class Health(ApiHandler):
    async def get(self) -> None:
        self.query()
        await self.answer(api.health)


class Artifacts(ApiHandler):
    async def get(self) -> None:
        self.query()
        await self.answer(api.artifacts)


class Search(ApiHandler):
    async def get(self) -> None:
        args = self.query("text", "kind", "partition", "all_versions", "limit")
        partitions: dict[str, str] = {}
        for item in args.get("partition", []):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise bad_request(f"partition must be key=value, not {item!r}")
            partitions[key] = value
        await self.answer(api.search, self.one(args, "text"), kind=self.one(args, "kind"),
                          partitions=partitions, all_versions=self.flag(args, "all_versions"),
                          limit=self.integer(args, "limit", 50))


class Version(ApiHandler):
    async def get(self, name: str, number: str) -> None:
        self.query()
        await self.answer(api.version_detail, name, as_int("version", number))


class Resolve(ApiHandler):
    async def get(self) -> None:
        ref = self.one(self.query("ref"), "ref")
        if not ref:
            raise bad_request("resolve needs ?ref=name@N or a query URI")
        await self.answer(api.resolve, ref)


class CardHandler(ApiHandler):
    async def get(self, name: str, number: str) -> None:
        self.query()
        await self.answer(api.card, name, as_int("version", number))

    async def put(self, name: str, number: str) -> None:
        self.query()
        body = self.json_body()
        unknown = sorted(set(body) - {"markdown", "card_type"})
        if unknown:
            raise bad_request(f"unknown field(s) {', '.join(unknown)}; a card takes "
                              "markdown and card_type")
        markdown, card_type = body.get("markdown"), body.get("card_type")
        if not isinstance(markdown, str):
            raise bad_request("markdown must be a string")
        if card_type is not None and not isinstance(card_type, str):
            raise bad_request("card_type must be a string: card, model or data")
        await self.answer(api.set_card, name, as_int("version", number), markdown, card_type)


class Lineage(ApiHandler):
    async def get(self) -> None:
        args = self.query("ref", "depth", "direction")
        ref = self.one(args, "ref")
        if not ref:
            raise bad_request("lineage needs ?ref=name@N, a query URI or an execution id")
        depth_text = self.one(args, "depth", "1") or "1"
        depth = None if depth_text.lower() == "all" else as_int("depth", depth_text)
        await self.answer(api.lineage, ref, depth=depth,
                          direction=self.one(args, "direction", "both") or "both")


class Executions(ApiHandler):
    async def get(self) -> None:
        args = self.query("notebook", "status", "kind", "limit")
        await self.answer(api.executions, notebook=self.one(args, "notebook"),
                          status=self.one(args, "status"), kind=self.one(args, "kind"),
                          limit=self.integer(args, "limit", 50))


class ExecutionHandler(ApiHandler):
    async def get(self, execution_id: str) -> None:
        self.query()
        await self.answer(api.execution, execution_id)


class Plans(ApiHandler):
    async def get(self) -> None:
        self.query()
        await self.answer(api.plans)


class PlanAction(ApiHandler):
    async def post(self, name: str, action: str) -> None:
        self.query()
        if self.json_body(required=False):
            raise bad_request(f"{action} takes no body fields")
        await self.answer(api.set_plan_active, name, action == "activate")


class WatcherHandler(ApiHandler):
    async def get(self) -> None:
        self.query()
        await self.answer(api.watcher_state, self.ctx.watcher_state())


SEGMENT = r"(?P<{}>[^/]+)"
ROUTES: list[tuple[str, type[ApiHandler]]] = [
    ("health", Health),
    ("artifacts", Artifacts),
    ("search", Search),
    ("resolve", Resolve),
    (f"versions/{SEGMENT.format('name')}/{SEGMENT.format('number')}", Version),
    (f"versions/{SEGMENT.format('name')}/{SEGMENT.format('number')}/card", CardHandler),
    ("lineage", Lineage),
    ("executions", Executions),
    (f"executions/{SEGMENT.format('execution_id')}", ExecutionHandler),
    ("plans", Plans),
    (f"plans/{SEGMENT.format('name')}/(?P<action>activate|deactivate)", PlanAction),
    ("watcher", WatcherHandler),
]
"""The reads, the card and plan activation, relative to the base path
(:data:`.actions.ACTION_ROUTES` has the runs, the watcher's switch and live)."""


# -- the Object tab's preview ---------------------------------------------------------
class PreviewHandler(ApiHandler):
    async def get(self, name: str, number: str) -> None:
        args = self.query("rows")
        await self.answer(api.version_preview, name, as_int("version", number),
                          self.integer(args, "rows", preview.DEFAULT_ROWS))


ROUTES.append(
    (f"versions/{SEGMENT.format('name')}/{SEGMENT.format('number')}/preview", PreviewHandler))
