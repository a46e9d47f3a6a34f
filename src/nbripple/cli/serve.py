"""CLI command: `nbripple serve` — the REST API of a home, with its watcher."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click

from ..server.discovery import live_server, server_file
from ..server.host import serve as run_server
from . import fail, get_workspace, main, state
from .plans import _log_to_stderr


@main.command(short_help="Serve the REST API of a home (and run its watcher).")
@click.option("--home", "serve_home", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="The nbripple home to serve (as the group's --home).")
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on (0: a free port).")
@click.option("--token", default=None,
              help="The token clients must send (default: a random one, in server.json).")
@click.option("--no-watch", is_flag=True, help="Do not run a watcher in the server.")
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None,
              help="The directory the notebook paths of the API (notebooks/form, "
                   "notebooks/run) are relative to, and never leave. Default: the "
                   "working directory. When a JupyterLab forwards to this server, give "
                   "JupyterLab's root directory, so that 'Run with nbripple' finds the "
                   "files of its file browser.")
def serve(serve_home: Path | None, ip: str, port: int, token: str | None,
          no_watch: bool, root: Path | None) -> None:
    """Serve the REST API under /nbripple/api/ until SIGINT/SIGTERM.

    The URL and token go to <home>/server.json (mode 0600), removed on exit; other
    processes of the home find the server there. The first line printed is the URL.

    \b
    Examples:
      nbripple serve --port 8765
      nbripple serve --home /data/team/.nbripple --ip 0.0.0.0 --token "$TOKEN"
    """
    if serve_home is not None:
        state().home = serve_home
    if token is not None and not token.strip():
        raise fail("--token is empty: give a token, or leave it out for a random one")
    ws = get_workspace()
    running = live_server(ws.home)
    if running is not None:
        raise fail(f"{ws.home} is already served at {running.url} (pid {running.pid} on "
                   f"{running.host}); stop that server first")
    if not no_watch:
        _log_to_stderr()

    def ready(url: str) -> None:
        click.echo(url)
        sys.stdout.flush()
        click.echo(f"serving {ws.home}; token and URL in {server_file(ws.home)}", err=True)

    try:
        run_server(ws, ip=ip, port=port, token=token or secrets.token_urlsafe(32),
                   watch=not no_watch, ready=ready, root=root)
    except OSError as exc:
        raise fail(f"cannot listen on {ip}:{port}: {exc.strerror or exc}") from exc


__all__ = ["serve"]
