"""The service layer the interfaces call: push, load under an external execution, plan
schedules, the run-error record, the JSON shapes and the interfaces' boundary."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import nbripple as nr
from nbripple.errors import ArtifactNotFound, IngestError, KindError
from nbripple.model import PlanRecord
from nbripple.parameters import parse_cli_value
from nbripple.service import plans, wire
from nbripple.service.executions import load_external, run_error
from nbripple.service.writing import push

SRC = Path(nr.__file__).parent


@pytest.mark.parametrize(("raw", "value"), [
    # papermill's reading: only True/False/None, ints and floats are not strings
    ("42", 42), ("0.5", 0.5), ("true", "true"), ("True", True), ("false", "false"),
    ("null", "null"), ("None", None), ("[1, 2]", "[1, 2]"), ("'quoted'", "'quoted'"),
    ("blessed_model@3", "blessed_model@3"), ("two words", "two words"), ("inf", float("inf")),
    ("nbripple://m?blessed=true", "nbripple://m?blessed=true"),
])
def test_cli_and_magics_read_parameter_values_the_same_way(raw: str, value: Any) -> None:
    assert parse_cli_value(raw) == value


def test_the_run_error_record_always_has_the_same_keys() -> None:
    assert run_error("ValueError", "boom") == {"ename": "ValueError", "evalue": "boom",
                                               "cell_index": None}
    assert run_error("E", "x", cell_index=3, traceback=["t"])["traceback"] == ["t"]


def test_push_records_an_external_execution_and_checks_before_it(
        ws: nr.Workspace, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    pushed = push(ws, "sales", data, partitions={"region": "eu"})
    assert pushed.version.ref == "sales@1" and pushed.version.kind == "table"
    producer = ws.execution(pushed.execution_id)
    assert (producer.kind, producer.label, producer.status) == \
        ("external", "nbripple push", "succeeded")
    before = len(ws.executions(limit=100))
    with pytest.raises(KindError, match="takes directories"):
        push(ws, "sales", data, partitions={"region": "eu"}, kind="directory")
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(IngestError, match="--kind file"):
        push(ws, "other", broken, partitions={})
    assert len(ws.executions(limit=100)) == before  # a refused push leaves no trace


def test_push_notifies_that_a_new_description_is_not_applied(
        ws: nr.Workspace, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    push(ws, "notes", path, partitions={}, description="first")
    heard: list[str] = []
    push(ws, "notes", path, partitions={}, description="second", notify=heard.append)
    assert heard == ["note: notes keeps the description of its first declaration"]


def test_load_external_records_the_consumption_under_its_own_execution(
        ws: nr.Workspace) -> None:
    nr.Artifact("numbers").create_from([1, 2, 3])
    version = ws.resolve("numbers@1")
    assert load_external(ws, version) == [1, 2, 3]
    [reader] = [e for e in ws.executions(kind="external") if e.label == "nbripple load"]
    assert [i.ref for i in reader.inputs] == ["numbers@1"]


def _plan(spec: dict[str, Any], *, anchor: datetime | None, active: bool = True) -> PlanRecord:
    activated = datetime(2026, 4, 30, 23, 30, tzinfo=UTC)  # 01:30 in Paris
    return PlanRecord(name="nightly", version=1, spec=spec, created_at=activated,
                      active=active, active_version=1, latest_version=1,
                      activated_at=activated, activated_seq=1, schedule_anchor=anchor,
                      stopped_reason=None)


def test_next_run_and_due_ticks_count_from_the_same_anchor() -> None:
    spec = {"schedule": "0 2 * * *", "timezone": "Europe/Paris", "notebook": "n.ipynb"}
    plan = _plan(spec, anchor=None)
    first = plans.next_run(plan)
    assert first == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)  # 02:00 in Paris (UTC+2)
    due, wake = plans.due_ticks(plan, datetime(2026, 5, 3, 1, 0, tzinfo=UTC))
    assert due == [first, datetime(2026, 5, 2, 0, 0, tzinfo=UTC),
                   datetime(2026, 5, 3, 0, 0, tzinfo=UTC)]
    assert wake == datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
    assert plans.next_run(_plan(spec, anchor=due[-1])) == wake
    assert plans.next_run(_plan(spec, anchor=None, active=False)) is None


def test_fires_on_shows_trigger_and_schedule() -> None:
    spec = {"trigger": {"artifact": "m", "partitions": {"blessed": "true"}, "strict": True},
            "schedule": "0 2 * * *"}
    assert plans.fires_on(spec) == "m?blessed=true&strict=true; cron 0 2 * * * UTC"
    assert plans.fires_on({}) == "launch only"


def test_wire_shapes_are_json(ws: nr.Workspace) -> None:
    version = nr.Artifact("model").create_from({"w": 1}, card="# Model\n\nGood.")
    producer = ws.execution(version.execution_id or "")
    data = wire.version_with_producer(version, producer)
    assert data["card_excerpt"] == "# Model Good." and data["producer"]["id"] == producer.id
    assert "card" in wire.version_dict(version, card=True)
    assert wire.full_execution_dict(producer)["outputs"] == ["model@1"]
    assert wire.error_dict(ArtifactNotFound("no artifact named 'x'")) == \
        {"error": "ArtifactNotFound", "message": "no artifact named 'x'"}
    json.dumps([data, wire.card_dict(version), wire.execution_row(producer)])


def test_the_workspace_module_still_exports_its_names() -> None:
    from nbripple import workspace

    for name in ("Workspace", "current", "use", "RefLike", "truncate_time", "new_execution_id"):
        assert hasattr(workspace, name)
    assert workspace.Workspace is nr.Workspace


def test_interfaces_never_touch_the_catalog() -> None:
    files = [*sorted((SRC / "cli").glob("*.py")), SRC / "magics.py"]
    offending = []
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\.catalog\.|\bcatalog\.close\b|nbripple\.catalog|from \.+catalog\b",
                         line):
                offending.append(f"{file.name}:{number}: {line.strip()}")
    assert offending == []


def test_make_execution_builds_a_row_without_recording_it(ws: nr.Workspace) -> None:
    from nbripple.errors import ExecutionNotFound
    from nbripple.service.executions import make_execution

    execution = make_execution("notebook", id="0123456789abcdef", status="queued",
                               notebook="/n.ipynb", label="n.ipynb", chain_depth=2)
    assert (execution.id, execution.status, execution.chain_depth) == \
        ("0123456789abcdef", "queued", 2)
    with pytest.raises(ExecutionNotFound):
        ws.execution(execution.id)
