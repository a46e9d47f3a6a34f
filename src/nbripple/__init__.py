"""nbripple: artifacts, lineage and reactive workflows for Jupyter notebooks.

>>> import nbripple as nr
>>> model = nr.Artifact("blessed_model", partition_keys=["blessed"])
"""

from __future__ import annotations

from .api import card_html, execution, executions, get, load, query, search, set_card, versions
from .artifact import Artifact
from .cards import Card, DataCard, ModelCard, render_html
from .config import init_home
from .errors import NbrippleError
from .model import ArtifactVersion, CardRevision, Execution
from .refs import Query
from .workspace import Workspace, current, use

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "ArtifactVersion",
    "Card",
    "CardRevision",
    "DataCard",
    "Execution",
    "ModelCard",
    "NbrippleError",
    "Query",
    "Workspace",
    "__version__",
    "card_html",
    "current",
    "execution",
    "executions",
    "get",
    "init_home",
    "load",
    "query",
    "render_html",
    "search",
    "set_card",
    "use",
    "versions",
]
