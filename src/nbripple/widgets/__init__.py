"""nbripple in the notebook as ipywidgets: browser, artifact view, lineage graph.

- ``nr.browse()`` → :class:`~nbripple.widgets.browse.Browser`
- ``nr.show(ref)`` / ``version.widget()`` → :class:`~nbripple.widgets.artifact_view.ArtifactView`
- ``nr.lineage(ref).widget()`` → :class:`~nbripple.widgets.graph.LineageGraphWidget`

The graph is drawn with ipycytoscape, behind the small adapter in
:mod:`nbripple.widgets.cytoscape` (the only module that imports it). Submodules are
imported on first use, so ``import nbripple.widgets`` does not load ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ArtifactView": "artifact_view",
    "Browser": "browse",
    "LineageGraphWidget": "graph",
    "GraphCanvas": "cytoscape",
    "browse": "browse",
    "show": "artifact_view",
}

__all__ = ["ArtifactView", "Browser", "GraphCanvas", "LineageGraphWidget", "browse", "close_tree",
           "show"]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'nbripple.widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module_name}", __name__), name)


def close_tree(widget: Any) -> None:
    """Close a widget and every widget below it (Box children, Tab pages).

    A closed widget's model leaves the kernel and the front end; views that are
    replaced (a new selection in the browser) are closed this way so a long session
    does not accumulate them.
    """
    for child in list(getattr(widget, "children", ()) or ()):
        close_tree(child)
    widget.close()


if TYPE_CHECKING:
    from .artifact_view import ArtifactView, show
    from .browse import Browser, browse
    from .cytoscape import GraphCanvas
    from .graph import LineageGraphWidget
