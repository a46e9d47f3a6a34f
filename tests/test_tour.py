"""The guided tour and the example notebooks run top to bottom, as a newcomer would."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import papermill as pm

import nbripple as nr

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def test_tour_runs_top_to_bottom_and_the_watcher_reruns_ops(tmp_path, monkeypatch):
    workdir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, workdir, ignore=shutil.ignore_patterns("tour-home", ".nbripple"))
    monkeypatch.delenv("NBRIPPLE_HOME", raising=False)
    output = tmp_path / "tour-out.ipynb"
    pm.execute_notebook(str(workdir / "tour.ipynb"), str(output), cwd=str(workdir),
                        progress_bar=False, kernel_name="python3")
    executed = nbformat.read(str(output), as_version=4)
    errors = [out for cell in executed.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert errors == []
    text = "\n".join(
        str(out.get("data", {}).get("text/plain", "")) + str(out.get("text", ""))
        for cell in executed.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    assert "('blessed_model@2', 'model')" in text  # the smart default picked the blessed one
    ws = nr.Workspace(workdir / "tour-home" / ".nbripple")
    rerun = ws.execution(ws.resolve("prediction@2").execution_id or "")
    assert (rerun.trigger or {}).get("plan") == "trigger_ops"
    assert (rerun.trigger_artifact, rerun.trigger_version) == ("blessed_model", 3)
    ws.catalog.close()
