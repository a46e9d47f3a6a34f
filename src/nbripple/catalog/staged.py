"""A :class:`~nbripple.model.NewVersion` as JSON: the payload of a staged output.

A running execution's outputs are recorded (staged) before they are committed; any
catalog implementation stores or sends them in this form.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from ..model import ArtifactDecl, NewVersion


def new_version_to_json(new: NewVersion) -> str:
    """``new`` as a JSON object (its declaration included, without a creation time)."""
    data = asdict(new)
    data["artifact"]["partition_keys"] = list(new.artifact.partition_keys)
    data["artifact"]["created_at"] = None
    data["time_partition"] = new.time_partition.isoformat() if new.time_partition else None
    return json.dumps(data)


def new_version_from_json(text: str) -> NewVersion:
    """The :class:`NewVersion` that :func:`new_version_to_json` wrote."""
    data: dict[str, Any] = json.loads(text)
    artifact = data.pop("artifact")
    artifact["partition_keys"] = tuple(artifact["partition_keys"])
    tp = data.pop("time_partition")
    return NewVersion(
        artifact=ArtifactDecl(**artifact),
        time_partition=datetime.fromisoformat(tp) if tp else None,
        **data,
    )
