"""The catalog: where artifacts, versions, cards, executions and events are recorded."""

from .base import Catalog
from .embedded import EmbeddedCatalog

__all__ = ["Catalog", "EmbeddedCatalog"]
