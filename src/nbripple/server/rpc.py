"""The catalog over HTTP: ``POST catalog/{method}`` runs one method of the served
catalog for a client process (:mod:`nbripple.catalog.served`), idempotent on the
client's ``Idempotency-Key``."""

from __future__ import annotations

from .handlers import ApiHandler

RPC_ROUTES: list[tuple[str, type[ApiHandler]]] = []
"""The catalog endpoints, relative to the base path."""

__all__ = ["RPC_ROUTES"]
