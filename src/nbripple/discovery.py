"""``<home>/server.json``: how the processes of a home find the server that owns it.

The serving process writes the file (mode 0600, atomically: a reader never sees half
of it) and removes it on exit. A reader trusts it only while its owner is alive: the
pid on this host (with its start time, so a reused pid does not count), else a health
check over HTTP. A stale file — its owner died without removing it — is ignored, and
the next server replaces it.

Example::

    info = live_server(home)
    if info is not None:
        print(info.url, info.pid)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .pids import pid_alive, process_start_time

FILENAME = "server.json"
HEALTH_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ServerInfo:
    """What ``server.json`` holds: where the server is, its token and who runs it."""

    url: str
    token: str
    pid: int
    host: str
    started_at: str
    start_time: float | None = None  # the owner's process start time (pid reuse)

    @classmethod
    def for_this_process(cls, url: str, token: str) -> ServerInfo:
        """The record of a server run by this process, started now."""
        return cls(url=url, token=token, pid=os.getpid(), host=socket.gethostname(),
                   started_at=datetime.now(UTC).isoformat(),
                   start_time=process_start_time())


def server_file(home: str | os.PathLike[str]) -> Path:
    """Where the discovery file of ``home`` is."""
    return Path(home) / FILENAME


def write_server_file(home: str | os.PathLike[str], info: ServerInfo) -> Path:
    """Write ``server.json`` atomically with mode 0600 (it holds the token)."""
    target = server_file(home)
    temporary = target.with_name(f".{FILENAME}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(info), out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return target


def read_server_file(home: str | os.PathLike[str]) -> ServerInfo | None:
    """The record in ``server.json`` (None when there is none or it is not one)."""
    try:
        data: Any = json.loads(server_file(home).read_text(encoding="utf-8"))
        info = ServerInfo(url=str(data["url"]), token=str(data["token"]),
                          pid=int(data["pid"]), host=str(data["host"]),
                          started_at=str(data["started_at"]),
                          start_time=None if data.get("start_time") is None
                          else float(data["start_time"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info


def remove_server_file(home: str | os.PathLike[str], pid: int | None = None) -> bool:
    """Remove ``server.json`` if it is this process's (or ``pid``'s); True if removed."""
    owner = os.getpid() if pid is None else pid
    info = read_server_file(home)
    if info is None or info.pid != owner or info.host != socket.gethostname():
        return False
    with contextlib.suppress(FileNotFoundError):
        server_file(home).unlink()
    return True


def health_check(info: ServerInfo, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    """True when the server at ``info.url`` answers its health endpoint with its token."""
    request = urllib.request.Request(info.url.rstrip("/") + "/health",
                                     headers={"Authorization": f"token {info.token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (OSError, ValueError):
        return False


def is_alive(info: ServerInfo) -> bool:
    """Whether the server a record names still runs: its pid on this host, else (on
    another host) a health check."""
    if info.host == socket.gethostname():
        return pid_alive(info.pid, start_time=info.start_time)
    return health_check(info)


def live_server(home: str | os.PathLike[str]) -> ServerInfo | None:
    """The server that owns ``home`` if it is alive; None otherwise (a stale file is
    ignored)."""
    info = read_server_file(home)
    if info is None or not is_alive(info):
        return None
    return info


__all__ = [
    "FILENAME",
    "ServerInfo",
    "health_check",
    "is_alive",
    "live_server",
    "read_server_file",
    "remove_server_file",
    "server_file",
    "write_server_file",
]
