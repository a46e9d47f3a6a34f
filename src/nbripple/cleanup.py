"""Garbage collection of the store (now :mod:`nbripple.service.gc`; kept for imports)."""

from __future__ import annotations

from .service.gc import DEFAULT_GRACE_S, GarbageReport, collect_garbage

__all__ = ["DEFAULT_GRACE_S", "GarbageReport", "collect_garbage"]
