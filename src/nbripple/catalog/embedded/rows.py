"""Rows of the DuckDB tables <-> nbripple's records.

TIMESTAMP columns hold naive UTC; records carry aware datetimes. JSON columns hold
canonical JSON (``json.dumps``; partitions with sorted keys).
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from ...model import ArtifactDecl, ArtifactVersion, Execution, Firing, PlanRecord

VERSION_COLUMNS = (
    "v.artifact, v.version, v.partitions, v.time_partition, v.kind, v.python_type, "
    "v.content_hash, v.size, v.uri, v.inline_value, v.table_schema, v.num_rows, v.meta, "
    "v.execution_id, v.created_at, v.seq, v.card_type, v.card, a.description"
)
VERSION_FROM = "versions v JOIN artifacts a ON a.name = v.artifact"
# The same columns without the artifact description, which comes last.
VERSION_ONLY_COLUMNS = VERSION_COLUMNS.rsplit(",", 1)[0]
DECL_COLUMNS = ("a.name, a.partition_keys, a.time_partitioned, a.time_granularity, a.kind, "
                "a.description, a.created_at, coalesce(h.version, 0)")
DECL_FROM = "artifacts a LEFT JOIN heads h ON h.artifact = a.name AND h.facet = '*'"
"""An artifact's newest version is its '*' row of ``heads`` (schema version 7)."""
EXECUTION_FIELDS = [f.name for f in fields(Execution) if not f.name.startswith("_")]
EXECUTION_JSON = {"parameters", "requested", "error", "trigger", "phases"}
FIRING_COLUMNS = (
    "id, plan, plan_version, dedup_key, kind, event_seq, trigger_artifact, trigger_version, "
    "tick, chain_depth, status, attempts, recoveries, next_attempt_at, execution_id, reason, "
    "created_at, updated_at"
)


def utcnow() -> datetime:
    """Naive UTC time, as stored in TIMESTAMP columns."""
    return datetime.now(UTC).replace(tzinfo=None)


def aware(value: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as an aware one."""
    return value.replace(tzinfo=UTC) if value is not None else None


def naive(value: datetime | None) -> datetime | None:
    """A time as stored: naive UTC (naive input is taken to be UTC already)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def decl(row: Any) -> ArtifactDecl:
    """An ``artifacts`` row with its newest version (:data:`DECL_COLUMNS`) as a declaration."""
    return ArtifactDecl(
        name=row[0],
        partition_keys=tuple(json.loads(row[1])),
        time_partitioned=bool(row[2]),
        time_granularity=row[3],
        kind=row[4],
        description=row[5],
        created_at=aware(row[6]),
        latest_version=int(row[7]),
    )


def version(row: Any) -> ArtifactVersion:
    """A ``versions`` row (:data:`VERSION_COLUMNS`) as a version."""
    return ArtifactVersion(
        name=row[0],
        version=int(row[1]),
        partitions=json.loads(row[2]),
        time_partition=aware(row[3]),
        kind=row[4],
        python_type=row[5],
        content_hash=row[6],
        size=int(row[7]),
        uri=row[8],
        inline_value=row[9],
        schema=json.loads(row[10]) if row[10] is not None else None,
        num_rows=row[11],
        meta=json.loads(row[12]),
        execution_id=row[13],
        created_at=aware(row[14]) or row[14],
        seq=int(row[15]),
        card_type=row[16],
        card_markdown=row[17],
        description=row[18] or "",
    )


def execution_value(name: str, value: Any) -> Any:
    """A field of :class:`Execution` as stored in its column."""
    if name in EXECUTION_JSON:
        return json.dumps(value, default=str) if value is not None else None
    if isinstance(value, datetime):
        return naive(value)
    return value


def execution(row: Any) -> Execution:
    """An ``executions`` row (:data:`EXECUTION_FIELDS`) as an execution."""
    values: dict[str, Any] = {}
    for name, value in zip(EXECUTION_FIELDS, row, strict=True):
        if name in EXECUTION_JSON:
            value = json.loads(value) if value is not None else None
        elif isinstance(value, datetime):
            value = aware(value)
        values[name] = value
    if values.get("parameters") is None:
        values["parameters"] = {}
    return Execution(**values)


def plan(row: Any) -> PlanRecord:
    """A ``plan_state`` row joined with its active ``plans`` version as a plan."""
    return PlanRecord(
        name=row[0], version=int(row[1]), spec=json.loads(row[2]),
        created_at=aware(row[3]) or row[3], active=bool(row[4]), active_version=int(row[5]),
        latest_version=int(row[6]), activated_at=aware(row[7]),
        activated_seq=int(row[8]) if row[8] is not None else None,
        schedule_anchor=aware(row[9]), stopped_reason=row[10],
    )


def firing(row: Any) -> Firing:
    """A ``firings`` row (:data:`FIRING_COLUMNS`) as a firing."""
    return Firing(
        id=row[0], plan=row[1], plan_version=int(row[2]), dedup_key=row[3], kind=row[4],
        event_seq=row[5], trigger_artifact=row[6], trigger_version=row[7],
        tick=aware(row[8]), chain_depth=int(row[9]), status=row[10], attempts=int(row[11]),
        recoveries=int(row[12]), next_attempt_at=aware(row[13]), execution_id=row[14],
        reason=row[15], created_at=aware(row[16]) or row[16],
        updated_at=aware(row[17]) or row[17],
    )
