"""nbripple: artifacts, lineage and reactive workflows for Jupyter notebooks.

>>> import nbripple as nr
>>> model = nr.Artifact("blessed_model", partition_keys=["blessed"])

Submodules are imported on first use, so ``import nbripple`` stays cheap in every
kernel a run starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Artifact": "artifact",
    "ArtifactVersion": "model",
    "Card": "cards",
    "CardRevision": "model",
    "DataCard": "cards",
    "Execution": "model",
    "LaunchPlan": "launchplans",
    "OnArtifact": "launchplans",
    "Watcher": "watcher",
    "activate": "launchplans",
    "deactivate": "launchplans",
    "launch": "launchplans",
    "plans": "launchplans",
    "register": "launchplans",
    "LineageGraph": "lineage",
    "ModelCard": "cards",
    "NbrippleError": "errors",
    "Query": "refs",
    "SearchResults": "display",
    "Workspace": "workspace",
    "browse": "widgets.browse",
    "card": "display",
    "card_html": "api",
    "current": "workspace",
    "execution": "api",
    "executions": "api",
    "get": "api",
    "init_home": "config",
    "lineage": "api",
    "load": "api",
    "query": "api",
    "relaunch": "runner",
    "render_html": "cards",
    "rerun": "runner",
    "run": "runner",
    "search": "api",
    "set_card": "api",
    "show": "widgets.artifact_view",
    "use": "workspace",
    "versions": "api",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'nbripple' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbripple``: register the ``%nbripple`` magics (see nbripple.magics)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbripple``: stop a watcher started by ``%nbripple watch start``."""
    from .magics import unload_ipython_extension as unload

    unload(ipython)


if TYPE_CHECKING:
    from .api import (
        card_html,
        execution,
        executions,
        get,
        lineage,
        load,
        query,
        search,
        set_card,
        versions,
    )
    from .artifact import Artifact
    from .cards import Card, DataCard, ModelCard, render_html
    from .config import init_home
    from .display import SearchResults, card
    from .errors import NbrippleError
    from .launchplans import LaunchPlan, OnArtifact, activate, deactivate, launch, plans, register
    from .lineage import LineageGraph
    from .model import ArtifactVersion, CardRevision, Execution
    from .refs import Query
    from .runner import relaunch, rerun, run
    from .watcher import Watcher
    from .widgets.artifact_view import show
    from .widgets.browse import browse
    from .workspace import Workspace, current, use
