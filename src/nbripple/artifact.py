"""Artifacts: named, versioned, partitioned streams of values.

An :class:`Artifact` works on the workspace given to it (``workspace=``) or, without
one, on the current workspace at the time of each call (the ambient handle of
:mod:`nbripple.ambient`), so declaring one does no I/O.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from .ambient import AMBIENT, current_workspace
from .cards import Card
from .errors import UnknownPartitionKey
from .model import ArtifactVersion, Handle, declare
from .refs import (
    Query,
    make_query,
)

if TYPE_CHECKING:
    from .workspace import Workspace

__all__ = ["Artifact", "make_query"]


class Artifact:
    """A declared artifact. Declaring one does no I/O; the declaration is recorded in
    the catalog on first use, and a later declaration with other partition keys is an
    error.

    Example::

        blessed_model = nr.Artifact("blessed_model", partition_keys=["blessed"])
        v = blessed_model.create_from(model, nr.ModelCard("# My model"), blessed="true")
        blessed_model.query(blessed="true").load()
    """

    def __init__(
        self,
        name: str,
        partition_keys: tuple[str, ...] | list[str] = (),
        time_partitioned: bool = False,
        time_granularity: str = "day",
        kind: str | None = None,
        description: str = "",
        *,
        workspace: Workspace | None = None,
    ) -> None:
        self.declaration = declare(name, partition_keys, time_partitioned, time_granularity,
                                   kind, description)
        self._workspace = workspace

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return self.declaration.partition_keys

    @property
    def kind(self) -> str | None:
        return self.declaration.kind

    @property
    def description(self) -> str:
        return self.declaration.description

    def __repr__(self) -> str:
        keys = ", ".join(self.partition_keys)
        return f"Artifact({self.name!r}, partition_keys=[{keys}])"

    def _ws(self) -> Workspace:
        return self._workspace if self._workspace is not None else current_workspace()

    def _handle(self) -> Handle:
        return self._workspace if self._workspace is not None else AMBIENT

    def create_from(
        self,
        value: Any,
        card: Card | str | None = None,
        *,
        time_partition: datetime | date | str | None = None,
        follow_symlinks: bool = False,
        **partitions: Any,
    ) -> ArtifactVersion:
        """Store ``value`` as the next version of this artifact.

        Every declared partition key needs a value (``str()`` of it; dates as ISO
        dates). Outside a notebook run the version is committed at once under this
        process's ``interactive`` execution; inside a run it is staged and committed
        only if the run succeeds.

        Without a declared ``kind=`` the first version fixes the kind of every later
        one. A path that is a symbolic link, or a directory holding links that lead
        out of it, is refused unless ``follow_symlinks=True`` stores what they point
        to (links inside a directory are stored as links).
        """
        return self._ws().create_from(
            self, value, card, time_partition=time_partition, partitions=partitions,
            follow_symlinks=follow_symlinks,
        )

    def query(
        self, *, strict: bool = False, time_partition: datetime | date | str | None = None,
        **partitions: Any,
    ) -> Query:
        """A query for the newest version whose partitions contain these values."""
        unknown = [key for key in partitions if key not in self.partition_keys]
        if unknown:
            raise UnknownPartitionKey(
                f"{unknown[0]!r} is not a partition key of {self.name} "
                f"(keys: {', '.join(self.partition_keys) or 'none declared'})"
            )
        return make_query(self.name, partitions, strict=strict, time_partition=time_partition,
                          workspace=self._handle())

    def get(self, **partitions: Any) -> ArtifactVersion:
        """The newest version matching ``partitions`` (records consumption)."""
        return self._handle().get(self.query(**partitions))

    def load(self, *, as_: str | None = None, **partitions: Any) -> Any:
        """Load the newest version matching ``partitions`` (records consumption)."""
        return self._handle().load(self.query(**partitions), as_=as_)

    def versions(self, limit: int | None = None) -> list[ArtifactVersion]:
        """Every committed version, newest first."""
        return self._ws().versions(self.name, limit)

