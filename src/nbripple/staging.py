"""Outputs of a running notebook: staged while it runs, committed only if it succeeds.

Inside a run, ``create_from`` writes the blob to the store at once (so a large
output does not wait for the end of the run) and records the would-be version in
the catalog's ``staged_outputs`` table. The runner commits every staged output of
the execution in one transaction when the notebook succeeds, and discards them
when it fails, times out or is interrupted: those never become versions and fire
nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .catalog.staged import new_version_from_json, new_version_to_json
from .model import ArtifactVersion, NewVersion

if TYPE_CHECKING:
    from .context import RunContext
    from .workspace import Workspace


def stage(ws: Workspace, run: RunContext, new: NewVersion) -> ArtifactVersion:
    """Stage ``new`` for the run's execution; return a provisional (uncommitted) version."""
    ordinal = ws.catalog.stage(run.execution_id, new)
    run.staged.append(new)
    return ArtifactVersion(
        name=new.artifact.name,
        version=0,
        partitions=dict(new.partitions),
        time_partition=new.time_partition,
        kind=new.kind,
        python_type=new.python_type,
        content_hash=new.content_hash,
        size=new.size,
        uri=new.uri,
        inline_value=new.inline_value,
        schema=new.schema,
        num_rows=new.num_rows,
        meta={**new.meta, "staged": ordinal},
        execution_id=run.execution_id,
        created_at=datetime.now(UTC),
        seq=0,
        card_type=new.card_type,
        card_markdown=new.card,
        description=new.artifact.description,
    )


def is_staged(version: ArtifactVersion) -> bool:
    return version.version == 0 and "staged" in version.meta



__all__ = ["is_staged", "new_version_from_json", "new_version_to_json", "stage"]
