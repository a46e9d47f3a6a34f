"""What the views of a workspace read: the Handle methods records and widgets ask for.

:class:`Views` is a mixin of :class:`~nbripple.workspace.Workspace`. Its methods read
(never record a consumption) what the notebook displays and widgets show: the
lineage around a version, the newest version number of an artifact, a table's first
rows, a directory's file list, an execution's inputs. They use only the parts of a
workspace named in :class:`WorkspaceCore`.

Example::

    ws.lineage("prediction@1", depth=None, direction="up")
    ws.table_preview(ws.resolve("scores@1"), 5)      # a pyarrow.Table of 5 rows
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .. import codecs
from ..errors import KindError
from ..model import ArtifactDecl, ArtifactVersion, InputRecord
from .lineage import LineageSource, build_lineage

if TYPE_CHECKING:
    import pyarrow as pa

    from ..graph import LineageGraph
    from ..store import Store

__all__ = ["PREVIEW_MAX_BYTES", "Views", "WorkspaceCore"]

PREVIEW_MAX_BYTES = 64 * 1024 * 1024
"""Tables bigger than this are not read for a preview (``v.load()`` reads them)."""


class WorkspaceCore(LineageSource, Protocol):
    """The parts of a workspace the views use (besides its catalog and home)."""

    @property
    def store(self) -> Store: ...
    def declaration(self, name: str) -> ArtifactDecl: ...
    def _bind(self, version: ArtifactVersion) -> ArtifactVersion: ...


class Views:
    """Read-only views of a workspace's catalog and store (a mixin of Workspace)."""

    def lineage(self: WorkspaceCore, start: Any, *, depth: int | None = 1,
                direction: str = "both") -> LineageGraph:
        """The lineage graph around a version or an execution (see ``nr.lineage``)."""
        return build_lineage(self, start, depth=depth, direction=direction)

    def latest_version_number(self: WorkspaceCore, name: str) -> int:
        """The number of the newest committed version of ``name`` (0 before the first);
        ArtifactNotFound when no such artifact exists."""
        return self.declaration(name).latest_version

    def table_preview(self: WorkspaceCore, version: ArtifactVersion,
                      rows: int) -> pa.Table | None:
        """The first ``rows`` rows of a table version, read from its verified blob.

        None for a version that is not a table, or one bigger than
        :data:`PREVIEW_MAX_BYTES`. Nothing is recorded as consumed.
        """
        if version.kind != "table" or version.size > PREVIEW_MAX_BYTES:
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = self.store.read_buffer(version.content_hash, label=version.ref)
        parquet = pq.ParquetFile(pa.BufferReader(buffer))
        schema = parquet.schema_arrow
        first = next(parquet.iter_batches(batch_size=max(rows, 1)), None) if rows > 0 else None
        if first is None:
            return schema.empty_table()
        return pa.Table.from_batches([first.slice(0, rows)])

    def directory_entries(self: WorkspaceCore, version: ArtifactVersion) -> list[dict[str, Any]]:
        """The files of a directory version (``path``, ``hash``, ``size``), from its
        manifest; nothing is recorded as consumed."""
        if version.kind != "directory":
            raise KindError(f"{version.ref} is a {version.kind}, not a directory")
        manifest = self.store.read(version.content_hash, label=version.ref)
        return codecs.directory_listing(manifest)

    def execution_inputs(self: WorkspaceCore, execution_id: str) -> list[InputRecord]:
        """The versions an execution consumed, in the order it consumed them."""
        return self.catalog.execution_inputs(execution_id)
