"""``nbripple serve``: the standalone tornado server of one home, with its watcher.

It binds (port 0: a free port), writes ``<home>/server.json`` (see :mod:`.discovery`),
starts a :class:`~nbripple.watcher.Watcher` in a background thread unless told not to,
and runs until SIGINT/SIGTERM: then it gives running executions (the watcher's, and
those launched over the API) the watcher's grace period while it still answers (they
write their outcome through it), stops taking requests, and removes the discovery
file.

Example::

    serve(Workspace(home), ip="127.0.0.1", port=0, token="secret", watch=False,
          ready=lambda url: print(url))
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..service.feed import ChangeFeed
from ..service.remote import forget_old_requests
from ..service.serving import release, serving_workspace
from ..watcher import Watcher
from . import BASE_PATH, make_app
from .discovery import ServerInfo, remove_server_file, write_server_file
from .handlers import ServerContext
from .rpc import MAX_CALL_BYTES

if TYPE_CHECKING:
    from ..service import Workspace

BODY_READ_LIMIT = 8
"""The HTTP server reads bodies up to this many times the API's limit, so a body over
the limit gets a 413 in the API's error shape; a longer one ends the connection."""

CLOSE_CONNECTIONS_S = 5.0
"""On stop, how long open connections may take to finish before they are closed."""

POOL_THREADS = 32
"""Threads that run requests: concurrent commits wait in them to be committed as one
group, so there are more of them than clients committing at once."""


def server_url(ip: str, port: int) -> str:
    """The API's base URL on ``ip``:``port`` (IPv6 addresses in brackets)."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}{BASE_PATH}"


def serve(ws: Workspace, *, ip: str, port: int, token: str, watch: bool,
          ready: Callable[[str], None], root: Path | None = None) -> None:
    """Serve ``ws``'s home until SIGINT/SIGTERM, holding its DuckDB file as the only
    writer; ``ready(url)`` is called once it answers. ``root``: the directory the
    notebook paths of ``notebooks/form`` and ``notebooks/run`` are relative to
    (default: the working directory)."""
    asyncio.run(_serve(ws, ip=ip, port=port, token=token, watch=watch, ready=ready,
                       root=root))


async def _serve(ws: Workspace, *, ip: str, port: int, token: str, watch: bool,
                 ready: Callable[[str], None], root: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    feed = ChangeFeed()
    ws = serving_workspace(ws, feed)
    await loop.run_in_executor(None, forget_old_requests, ws)
    ctx = ServerContext(ws, token, feed=feed, pool=ThreadPoolExecutor(
        POOL_THREADS, thread_name_prefix="nbripple-api"),
        notebook_root=(root or Path.cwd()).resolve())
    ctx.make_watcher = lambda: Watcher(workspace=ws)
    sockets = bind_sockets(port, address=ip)
    url = server_url(ip, sockets[0].getsockname()[1])
    server = HTTPServer(make_app(ctx), max_body_size=max(BODY_READ_LIMIT * ctx.max_body_bytes,
                                                        2 * MAX_CALL_BYTES))
    server.add_sockets(sockets)
    try:
        write_server_file(ws.home, ServerInfo.for_this_process(url, token))
        if watch:
            ctx.start_watcher()
        ready(url)
        await stop.wait()
    finally:
        # Running executions get the grace period while the server still answers: they
        # write their outcome through it (new launches are refused meanwhile).
        await asyncio.gather(
            loop.run_in_executor(None, ctx.stop_watcher),
            loop.run_in_executor(None, ctx.stop_launcher))
        server.stop()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), CLOSE_CONNECTIONS_S)
        ctx.pool.shutdown(wait=True, cancel_futures=True)
        remove_server_file(ws.home)
        release(ws)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


__all__ = ["serve", "server_url"]
