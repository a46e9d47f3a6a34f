"""Garbage collection of blobs nothing refers to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
from click.testing import CliRunner

import nbripple as nr
from nbripple.cleanup import collect_garbage
from nbripple.cli import main

NOTEBOOKS = Path(__file__).parent / "notebooks"


def make_world(tmp_path: Path) -> dict[str, object]:
    table = nr.Artifact("table").create_from(pa.table({"x": list(range(1000))}))
    (tmp_path / "f.txt").write_text("file content")
    file = nr.Artifact("file").create_from(tmp_path / "f.txt")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    directory = nr.Artifact("dir").create_from(tree)
    big = nr.Artifact("big").create_from({"blob": "x" * 70_000})
    nbdir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, nbdir)
    ok = nr.run(nbdir / "trivial.ipynb")
    failed = nr.run(nbdir / "fails_after_big_output.ipynb")  # its staged blob: garbage
    return {"versions": [table, file, directory, big], "ok": ok, "failed": failed}


def test_gc_deletes_only_unreferenced_blobs(home, ws, tmp_path):
    world = make_world(tmp_path)
    orphan = ws.store.put_bytes(b"a blob from a process killed before its commit").digest
    before = set(ws.store.iter_digests())
    report = collect_garbage(ws, grace_s=0)
    after = set(ws.store.iter_digests())
    assert orphan in report.deleted
    assert set(report.deleted) == before - after
    assert len(report.deleted) == 2  # the orphan and the failed run's staged output
    assert report.freed_bytes > 0
    for version in world["versions"]:  # type: ignore[attr-defined]
        assert nr.load(version.ref) is not None
    assert (nr.load("dir@1") / "sub" / "b.txt").read_text() == "b"
    for execution in (world["ok"], world["failed"]):
        assert execution.output_notebook is not None  # type: ignore[attr-defined]
        assert execution.notebook_snapshot is not None  # type: ignore[attr-defined]
    assert collect_garbage(ws, grace_s=0).deleted == []


def test_gc_keeps_young_blobs_and_dry_run_deletes_nothing(home, ws):
    orphan = ws.store.put_bytes(b"just written").digest
    report = collect_garbage(ws)  # default grace: a day
    assert report.deleted == [] and report.kept_young == 1
    report = collect_garbage(ws, grace_s=0, dry_run=True)
    assert report.deleted == [orphan] and ws.store.exists(orphan)


def test_gc_cli(home, ws):
    orphan = ws.store.put_bytes(b"orphan").digest
    runner = CliRunner()
    result = runner.invoke(main, ["gc", "--dry-run"])
    assert result.exit_code == 0 and "would delete 0 blob(s)" in result.stdout
    result = runner.invoke(main, ["gc", "--grace", "0", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["deleted"] == [orphan]
    assert not ws.store.exists(orphan)
