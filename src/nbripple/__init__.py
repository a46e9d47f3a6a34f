"""nbripple: artifacts, lineage and reactive workflows for Jupyter notebooks.

>>> import nbripple as nr
>>> model = nr.Artifact("blessed_model", partition_keys=["blessed"])

Submodules are imported on first use, so ``import nbripple`` stays cheap in every
kernel a run starts. Importing the package installs the presenter that gives records
their ``repr``, HTML and widgets (nbripple.display and nbripple.widgets, imported
when first needed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import NbrippleError
from .model import set_presenter

__version__ = "0.1.0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the built JupyterLab extension is (``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "nbripple"}]


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
    "LineageGraph": "graph",
    "ModelCard": "cards",
    "NbrippleError": "errors",
    "Query": "refs",
    "SearchResults": "model",
    "Workspace": "workspace",
    "browse": "widgets.browse",
    "card": "api",
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

__all__ = [
    "Artifact",
    "ArtifactVersion",
    "Card",
    "CardRevision",
    "DataCard",
    "Execution",
    "LaunchPlan",
    "LineageGraph",
    "ModelCard",
    "NbrippleError",
    "OnArtifact",
    "Query",
    "SearchResults",
    "Watcher",
    "Workspace",
    "__version__",
    "activate",
    "browse",
    "card",
    "card_html",
    "current",
    "deactivate",
    "execution",
    "executions",
    "get",
    "init_home",
    "launch",
    "lineage",
    "load",
    "plans",
    "query",
    "register",
    "relaunch",
    "render_html",
    "rerun",
    "run",
    "search",
    "set_card",
    "show",
    "use",
    "versions",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'nbripple' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Presenter:
    """Records' text, HTML and widgets, from nbripple.display and nbripple.widgets (both
    imported on first use: a kernel that never displays a record never loads them)."""

    def text(self, obj: Any) -> str:
        from . import display, model

        if isinstance(obj, model.ArtifactVersion):
            return display.version_text(obj)
        if isinstance(obj, model.Execution):
            return display.execution_text(obj)
        if isinstance(obj, model.SearchResults):
            return display.search_results_text(obj)
        return object.__repr__(obj)

    def html(self, obj: Any) -> str:
        from . import display, graph, model

        if isinstance(obj, model.ArtifactVersion):
            return display.version_html(obj)
        if isinstance(obj, model.Execution):
            return display.execution_html(obj)
        if isinstance(obj, model.SearchResults):
            return display.search_results_html(obj)
        if isinstance(obj, graph.LineageGraph):
            return display.lineage_html(obj)
        return display.code_html(self.text(obj))

    def widget(self, obj: Any, **options: Any) -> Any:
        from . import graph, model

        if isinstance(obj, model.ArtifactVersion):
            from .widgets.artifact_view import ArtifactView

            return ArtifactView(obj, **options)
        if isinstance(obj, graph.LineageGraph):
            from .widgets.graph import LineageGraphWidget

            return LineageGraphWidget(obj, **options)
        raise NbrippleError(f"nbripple has no widget for a {type(obj).__name__}")


set_presenter(_Presenter())


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbripple``: register the ``%nbripple`` magics (see nbripple.magics)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbripple``: stop a watcher started by ``%nbripple watch start``."""
    from .magics import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter server extension (nbripple.server.extension: the REST API under
    ``<base_url>nbripple/api/``); imported only when a Jupyter server loads it."""
    from .server.extension import NbrippleApp

    return [{"module": "nbripple.server.extension", "app": NbrippleApp}]


if TYPE_CHECKING:
    from .api import (
        card,
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
    from .graph import LineageGraph
    from .launchplans import LaunchPlan, OnArtifact, activate, deactivate, launch, plans, register
    from .model import ArtifactVersion, CardRevision, Execution, SearchResults
    from .refs import Query
    from .runner import relaunch, rerun, run
    from .watcher import Watcher
    from .widgets.artifact_view import show
    from .widgets.browse import browse
    from .workspace import Workspace, current, use
