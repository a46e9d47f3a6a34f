"""The catalog: where artifacts, versions, cards, executions and events are recorded.

:class:`Catalog` is the interface (one protocol per role, in :mod:`.base`);
:class:`EmbeddedCatalog` is the implementation in one DuckDB file.
"""

from .base import (
    CardsRole,
    Catalog,
    EventsRole,
    ExecutionsRole,
    LineageRole,
    PlansRole,
    VersionsRole,
)
from .embedded import EmbeddedCatalog

__all__ = [
    "CardsRole",
    "Catalog",
    "EmbeddedCatalog",
    "EventsRole",
    "ExecutionsRole",
    "LineageRole",
    "PlansRole",
    "VersionsRole",
]
