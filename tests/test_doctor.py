"""`nbripple doctor` finds each planted fault and names the command that mends it;
`nbripple backup` copies the catalog consistently while another process commits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.cli import main
from nbripple.service.doctor import diagnose


def cli(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(main, list(args))


def doctor_json(*args: str, exit_code: int) -> dict[str, Any]:
    result = cli("doctor", "--json", *args)
    assert result.exit_code == exit_code, (result.output, result.exception)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def findings(data: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [f for f in data["findings"] if f["check"] == check]


def blob_file(ws: nr.Workspace, digest: str) -> Path:
    return Path(ws.store.blob_path(digest))


@pytest.fixture
def stocked(ws: nr.Workspace, tmp_path: Path) -> dict[str, nr.ArtifactVersion]:
    made = {"table": nr.Artifact("sales").create_from(pa.table({"x": [1, 2, 3]})),
            "value": nr.Artifact("cfg").create_from({"a": 1})}
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha", encoding="utf-8")
    (folder / "b.txt").write_text("beta", encoding="utf-8")
    made["dir"] = nr.Artifact("docs", kind="directory").create_from(folder)
    made["big"] = nr.Artifact("blob").create_from({"data": "y" * 100_000})  # not inline
    ws.release()
    return made


def test_a_healthy_home_exits_zero_and_says_so(stocked: dict[str, Any]) -> None:
    result = cli("doctor")
    assert result.exit_code == 0, result.output
    assert "healthy" in result.stdout and "4 versions" in result.stdout
    data = doctor_json(exit_code=0)
    assert data["healthy"] is True and data["findings"] == []
    assert data["checked"]["versions"] == 4 and data["checked"]["blobs"] >= 5


def test_a_missing_blob_is_found_with_its_mend(ws: nr.Workspace,
                                               stocked: dict[str, nr.ArtifactVersion]) -> None:
    blob_file(ws, stocked["table"].content_hash).unlink()
    data = doctor_json(exit_code=1)
    [found] = findings(data, "missing_blob")
    assert found["subject"] == "sales@1"
    assert stocked["table"].content_hash in found["problem"]
    assert "nbripple push sales" in found["fix"]
    human = cli("doctor")
    assert human.exit_code == 1
    assert "sales@1" in human.stdout and "mend:" in human.stdout


def test_a_corrupt_blob_and_a_corrupt_directory_file_are_found(
        ws: nr.Workspace, stocked: dict[str, nr.ArtifactVersion]) -> None:
    path = blob_file(ws, stocked["big"].content_hash)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 1  # same size, one bit flipped
    path.write_bytes(bytes(data))
    manifest = json.loads(ws.store.read(stocked["dir"].content_hash))
    file_blob = blob_file(ws, manifest["files"][0]["hash"])
    file_blob.chmod(0o644)
    file_blob.write_bytes(b"tampered")
    found = {f["subject"]: f for f in findings(doctor_json(exit_code=1), "corrupt_blob")}
    assert set(found) == {"blob@1", "docs@1"}
    assert "corrupt" in found["blob@1"]["problem"]
    assert "file" in found["docs@1"]["problem"]


def test_a_tampered_inline_row_is_found(ws: nr.Workspace,
                                        stocked: dict[str, nr.ArtifactVersion]) -> None:
    EmbeddedCatalog.close_all()
    con = duckdb.connect(str(ws.home / "catalog.duckdb"))
    con.execute("UPDATE versions SET inline_value = '{\"a\": 2}' WHERE inline_value IS NOT NULL")
    con.close()
    [found] = findings(doctor_json(exit_code=1), "corrupt_row")
    assert found["subject"] == "cfg@1"


def test_old_unreferenced_blobs_are_found_and_gc_is_named(
        ws: nr.Workspace, stocked: dict[str, Any]) -> None:
    orphan = ws.store.put_bytes(b"nothing refers to me")
    young = ws.store.put_bytes(b"about to be committed")
    old = time.time() - 3 * 24 * 3600
    os.utime(blob_file(ws, orphan.digest), (old, old))
    [found] = findings(doctor_json(exit_code=1), "unreferenced_blobs")
    assert found["subject"] == "1 blob(s)" and "nbripple gc" in found["fix"]
    assert young.digest  # younger than the grace period: not a fault
    assert cli("gc").exit_code == 0
    assert doctor_json(exit_code=0)["healthy"] is True


def test_an_execution_whose_process_was_killed_is_found_and_fixed(
        ws: nr.Workspace, home: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, nbripple as nr
        nr.use({str(home)!r})
        nr.Artifact("made_by_victim").create_from(1)
        print(nr.current().interactive_execution_id(), flush=True)
        nr.current().release()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    victim = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert victim.returncode == -signal.SIGKILL, victim.stderr
    execution_id = victim.stdout.strip()
    EmbeddedCatalog.close_all()
    report = diagnose(nr.Workspace(home))
    stuck = [f for f in report.findings if f.check == "stuck_execution"]
    if stuck:  # (a catalog that marks dead owners by itself leaves nothing to find)
        assert [f.subject for f in stuck] == [execution_id]
        assert "is gone" in stuck[0].problem and "doctor --fix" in stuck[0].fix
        data = doctor_json("--fix", exit_code=0)
        assert [f["fixed"] for f in findings(data, "stuck_execution")] == [True]
    execution = nr.Workspace(home).execution(execution_id)
    assert execution.status == "failed" and execution.error
    assert findings(doctor_json(exit_code=0), "stuck_execution") == []


def _plant_plan(ws: nr.Workspace, name: str, notebook: Path, schedule: str | None,
                timezone: str = "UTC") -> None:
    spec = {"name": name, "notebook": str(notebook), "inputs": {}, "trigger": None,
            "schedule": schedule, "timezone": timezone, "catchup": "latest",
            "max_chain_depth": 10, "concurrency": 1, "retries": 0, "retry_delay_s": 0,
            "kernel_name": None, "timeout": None, "description": None}
    ws.catalog.register_plan(name, spec, f"hash-{name}")
    ws.catalog.set_plan_active(name, True)


def test_plans_that_cannot_fire_are_found(ws: nr.Workspace, tmp_path: Path) -> None:
    notebook = tmp_path / "ok.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
                        encoding="utf-8")
    _plant_plan(ws, "fine", notebook, "0 2 * * *")
    _plant_plan(ws, "never", notebook, "0 0 30 2 *")
    _plant_plan(ws, "gone", tmp_path / "deleted.ipynb", None)
    _plant_plan(ws, "nozone", notebook, "0 2 * * *", timezone="Mars/Olympus")
    ws.release()
    found = {f["subject"]: f for f in findings(doctor_json(exit_code=1), "plan_cannot_fire")}
    assert set(found) == {"never", "gone", "nozone"}
    assert "never fires" in found["never"]["problem"]
    assert "deleted.ipynb is gone" in found["gone"]["problem"]
    assert "timezone" in found["nozone"]["problem"]
    assert "nbripple deactivate never" in found["never"]["fix"]


def test_a_damaged_catalog_is_a_finding_not_a_crash(home: Path,
                                                    stocked: dict[str, Any]) -> None:
    EmbeddedCatalog.close_all()
    (home / "catalog.duckdb").write_bytes(b"garbage" * 1000)
    data = doctor_json(exit_code=1)
    [found] = findings(data, "catalog")
    assert "damaged" in found["problem"] and "backup" in found["fix"]


# -- backup ---------------------------------------------------------------------------
WRITER = """
import sys, nbripple as nr
nr.use(sys.argv[1])
art = nr.Artifact("counter")
print("started", flush=True)
for i in range(int(sys.argv[2])):
    art.create_from({"i": i})
"""


def test_backup_while_another_process_commits_holds_every_committed_version(
        ws: nr.Workspace, home: Path, tmp_path: Path) -> None:
    nr.Artifact("counter").create_from({"i": -1})
    ws.release()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(home), "60"],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "started"
    copies = []
    while writer.poll() is None or not copies:
        dest = tmp_path / f"backup{len(copies)}"
        committed = nr.Workspace(home).versions("counter", limit=1)[0].version
        EmbeddedCatalog.close_all()
        result = cli("backup", str(dest), "--json")
        assert result.exit_code == 0, result.output
        copies.append({**json.loads(result.stdout), "committed_before": committed})
        EmbeddedCatalog.close_all()
    assert writer.wait(timeout=120) == 0
    writer.stdout.close()
    counts = [copy["versions"] for copy in copies]
    assert len(set(counts)) >= 2  # the copies were taken while the writer committed
    for copy in copies:
        con = duckdb.connect(copy["path"], read_only=True)
        numbers = [row[0] for row in con.execute(
            "SELECT version FROM versions WHERE artifact = 'counter' ORDER BY version").fetchall()]
        con.close()
        assert numbers == list(range(1, len(numbers) + 1))  # a prefix of the commits, no gap
        assert len(numbers) >= copy["committed_before"]  # every commit before it is there
        assert copy["versions"] == len(numbers)
    # the last copy, restored as a home of its own, reads like the original at that time
    restored = tmp_path / "restored"
    restored.mkdir()
    os.replace(copies[-1]["path"], restored / "catalog.duckdb")
    (restored / "config.toml").write_text(
        f'[store]\nurl = "{(home / "store").as_posix()}"\n', encoding="utf-8")
    versions = nr.Workspace(restored).versions("counter")
    assert versions and all(v.version >= 1 for v in versions)
    assert nr.Workspace(restored).load(versions[0].ref)["i"] == len(versions) - 2


def test_backup_refuses_to_overwrite_and_the_live_catalog(home: Path,
                                                          stocked: dict[str, Any],
                                                          tmp_path: Path) -> None:
    assert cli("backup", str(tmp_path / "b")).exit_code == 0
    again = cli("backup", str(tmp_path / "b"))
    assert again.exit_code == 1 and "exists already" in again.stderr
    assert cli("backup", str(tmp_path / "b"), "--overwrite").exit_code == 0
    live = cli("backup", str(home))
    assert live.exit_code == 1 and "the catalog itself" in live.stderr
