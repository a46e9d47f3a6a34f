"""``<home>/server.json``: kept here for old imports; it lives in
:mod:`nbripple.discovery` (the catalog selection of every process reads it)."""

from __future__ import annotations

from ..discovery import (
    FILENAME,
    HEALTH_TIMEOUT_S,
    ServerInfo,
    health_check,
    is_alive,
    live_server,
    read_server_file,
    remove_server_file,
    server_file,
    write_server_file,
)

__all__ = [
    "FILENAME",
    "HEALTH_TIMEOUT_S",
    "ServerInfo",
    "health_check",
    "is_alive",
    "live_server",
    "read_server_file",
    "remove_server_file",
    "server_file",
    "write_server_file",
]
