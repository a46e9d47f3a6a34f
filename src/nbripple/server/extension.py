"""The Jupyter server extension: nbripple's REST API under ``<base_url>nbripple/api/``
of a Jupyter server (for JupyterLab's sidebar, and for the kernels it starts).

Installing nbripple enables it (the wheel's
``etc/jupyter/jupyter_server_config.d/nbripple.json``; hatchling's editable installs
add that file too). Where the file is missing, enable it with
``jupyter server extension enable nbripple`` or
``--ServerApp.jpserver_extensions='{"nbripple": True}'``.

When the server starts, the extension looks at ``<home>/server.json``:

* a live server of the home in another process (``nbripple serve``, another Jupyter):
  every API request is forwarded to it, with its token; if it has stopped, requests
  answer 503 saying to restart it (a restarted server is found again);
* otherwise this server serves the home itself: it holds the home's DuckDB file,
  writes ``server.json`` (this server's loopback URL and a fresh token, mode 0600) so
  that kernels and the CLI use it with no setting, runs the home's watcher if
  ``c.NbrippleApp.watch = True``, and on stop removes the file and lets go of the home.

Handlers and authentication: :mod:`.hosted`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Unicode

from ..config import find_home
from ..service.feed import ChangeFeed
from ..service.serving import release, serving_workspace
from ..watcher import Watcher
from .discovery import (
    ServerInfo,
    live_server,
    read_server_file,
    remove_server_file,
    write_server_file,
)
from .handlers import ServerContext
from .hosted import Hosting, hosted_rules, is_this_process

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

API_PATH = "nbripple/api/"
"""Where the API is, relative to the Jupyter server's ``base_url``."""


def kernel_url(serverapp: ServerApp) -> str | None:
    """The API's URL for the processes of this machine (kernels, the CLI): loopback
    when the server listens there, on ``localhost`` or on every address (where
    ``serverapp.connection_url`` names the host name, which a container may not
    resolve), else the address it listens on; None on a UNIX socket."""
    if serverapp.sock:
        return None
    ip = serverapp.ip
    if ip in ("", "0.0.0.0", "localhost"):
        host = "127.0.0.1"
    elif ip == "::":
        host = "[::1]"  # tornado binds '::' to IPv6 only
    else:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            host = ip  # a host name
        else:
            host = f"[{ip}]" if ":" in ip else ip
    scheme = "https" if serverapp.certfile else "http"
    return f"{scheme}://{host}:{serverapp.port}{url_path_join(serverapp.base_url, API_PATH)}"


class NbrippleApp(ExtensionApp):
    """nbripple in a Jupyter server (see the module's docstring)."""

    name = "nbripple"
    description = "nbripple's REST API in the Jupyter server"

    home = Unicode(
        "", help="The nbripple home this server serves or forwards to. Default: as every "
                 "nbripple process finds it (NBRIPPLE_HOME, else the nearest .nbripple "
                 "above the server's root_dir, else ~/.nbripple). Kernels must find the "
                 "same home to use this server.").tag(config=True)
    watch = Bool(
        False, help="Run the home's watcher in this server (triggers and schedules fire "
                    "while it runs), when this server serves the home itself.",
    ).tag(config=True)

    hosting: Hosting | None = None
    _wrote_server_file = False

    def resolved_home(self) -> Path:
        """The home: :attr:`home` if set, else the usual resolution from ``root_dir``."""
        if self.home:
            return Path(self.home).expanduser().resolve()
        root = Path(self.serverapp.root_dir) if self.serverapp is not None else None
        return find_home(cwd=root if root is not None and root.is_dir() else None)

    def initialize_handlers(self) -> None:
        assert self.serverapp is not None
        home = self.resolved_home()
        prefix = url_path_join(self.serverapp.base_url, API_PATH)
        owner = live_server(home)
        if owner is not None and not is_this_process(owner):
            self.hosting = Hosting(home, prefix, upstream=owner)
            self.log.info("nbripple: %s is served at %s (pid %s on %s); forwarding the API "
                          "there", home, owner.url, owner.pid, owner.host)
        else:
            feed = ChangeFeed()
            ws = serving_workspace(home, feed)
            # notebook paths of the API are those of Jupyter's file browser
            ctx = ServerContext(ws, secrets.token_urlsafe(32), feed=feed,
                                notebook_root=Path(self.serverapp.root_dir).resolve())
            ctx.make_watcher = lambda: Watcher(workspace=ws)
            self.hosting = Hosting(ws.home, prefix, ctx=ctx)
            self.log.info("nbripple: serving %s at %s", ws.home, prefix)
        self.handlers.extend(hosted_rules(self.hosting, "/" + API_PATH))

    async def _start_jupyter_server_extension(self, serverapp: ServerApp) -> None:
        """Once the server listens (its port is known): publish ``server.json`` and
        start the watcher, when this server serves the home."""
        hosting = self.hosting
        if hosting is None or hosting.ctx is None:
            if self.watch and hosting is not None and hosting.upstream is not None:
                self.log.info("nbripple: no watcher here: the server at %s owns %s",
                              hosting.upstream.url, hosting.home)
            return
        owner = live_server(hosting.home)
        if owner is not None and not is_this_process(owner):  # it started meanwhile
            self.log.info("nbripple: %s is now served at %s; forwarding the API there",
                          hosting.home, owner.url)
            ctx, hosting.ctx, hosting.upstream = hosting.ctx, None, owner
            ctx.pool.shutdown(wait=False)
            release(ctx.ws)
            return
        url = kernel_url(serverapp)
        if url is None:
            self.log.warning("nbripple: the server listens on a UNIX socket, so no "
                             "server.json: other processes open %s themselves", hosting.home)
        elif not hosting.home.is_dir():
            self.log.warning("nbripple: %s does not exist (nbripple init creates it), so no "
                             "server.json: other processes open it themselves", hosting.home)
        else:
            write_server_file(hosting.home, ServerInfo.for_this_process(url, hosting.ctx.token))
            self._wrote_server_file = True
            self.log.info("nbripple: %s is served at %s (token in %s)", hosting.home, url,
                          hosting.home / "server.json")
        if self.watch:
            await asyncio.get_running_loop().run_in_executor(None, hosting.ctx.start_watcher)

    async def stop_extension(self) -> None:
        """Stop the watcher and the runs launched over the API (their grace period),
        remove ``server.json`` if it is this server's, and let go of the home."""
        hosting = self.hosting
        if hosting is None or hosting.ctx is None:
            return
        ctx, hosting.ctx = hosting.ctx, None
        loop = asyncio.get_running_loop()
        await asyncio.gather(  # both give their running executions the grace period
            loop.run_in_executor(None, ctx.stop_watcher),
            loop.run_in_executor(None, ctx.stop_launcher))
        await loop.run_in_executor(None, lambda: ctx.pool.shutdown(wait=True,
                                                                   cancel_futures=True))
        info = read_server_file(hosting.home)
        if self._wrote_server_file and info is not None and info.token == ctx.token:
            remove_server_file(hosting.home)
        release(ctx.ws)


__all__ = ["API_PATH", "NbrippleApp", "kernel_url"]
