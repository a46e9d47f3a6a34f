"""The ambient handle: records made by the module-level API use the current workspace.

``nr.query(...)``, ``Artifact(...).query(...)`` and an Artifact declared without a
``workspace=`` are bound to :data:`AMBIENT`, a :class:`~nbripple.model.Handle` whose
every method calls the same method of :func:`nbripple.workspace.current` when it is
called. So a contracts module can declare ``nr.query("blessed_model", blessed="true")``
with no home at all, and ``q.load()`` later reads the home current at that time.

This module belongs to the API layer (with :mod:`nbripple.api`); records never
import it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .graph import LineageGraph
    from .model import ArtifactVersion, CardRevision, Execution, Handle, InputRecord
    from .workspace import Workspace

__all__ = ["AMBIENT", "AmbientHandle", "current_workspace"]


def current_workspace() -> Workspace:
    """The current workspace (``nr.current()``), imported and resolved on first use."""
    from .workspace import current

    return current()


def _handle() -> Handle:
    return current_workspace()


class AmbientHandle:
    """A :class:`~nbripple.model.Handle` that is always the current workspace's."""

    def get(self, ref: Any, *, record: bool = True) -> ArtifactVersion:
        return _handle().get(ref, record=record)

    def resolve(self, ref: Any) -> ArtifactVersion:
        return _handle().resolve(ref)

    def load(self, ref: Any, *, as_: str | None = None) -> Any:
        return _handle().load(ref, as_=as_)

    def load_version(self, version: ArtifactVersion, *, as_: str | None = None,
                     record: bool = True) -> Any:
        return _handle().load_version(version, as_=as_, record=record)

    def download(self, version: ArtifactVersion, dest: str | os.PathLike[str]) -> Path:
        return _handle().download(version, dest)

    def card_history(self, ref: Any) -> list[CardRevision]:
        return _handle().card_history(ref)

    def execution(self, execution_id: str) -> Execution:
        return _handle().execution(execution_id)

    def execution_inputs(self, execution_id: str) -> list[InputRecord]:
        return _handle().execution_inputs(execution_id)

    def execution_outputs(self, execution_id: str) -> list[ArtifactVersion]:
        return _handle().execution_outputs(execution_id)

    def notebook_file(self, digest: str, name: str) -> Path:
        return _handle().notebook_file(digest, name)

    def search(self, text: str | None = None, *, partitions: dict[str, Any] | None = None,
               kind: str | None = None, latest_only: bool = True,
               limit: int = 50) -> list[ArtifactVersion]:
        return _handle().search(text, partitions=partitions, kind=kind,
                                latest_only=latest_only, limit=limit)

    def lineage(self, start: Any, *, depth: int | None = 1,
                direction: str = "both") -> LineageGraph:
        return _handle().lineage(start, depth=depth, direction=direction)

    def latest_version_number(self, name: str) -> int:
        return _handle().latest_version_number(name)

    def table_preview(self, version: ArtifactVersion, rows: int) -> Any:
        return _handle().table_preview(version, rows)

    def directory_entries(self, version: ArtifactVersion) -> list[dict[str, Any]]:
        return _handle().directory_entries(version)

    def __repr__(self) -> str:
        return "<the current workspace>"

    def __reduce__(self) -> str:
        return "AMBIENT"  # one per process: unpickled as this module's AMBIENT


AMBIENT = AmbientHandle()
"""The handle of whichever workspace is current when a method is called."""
