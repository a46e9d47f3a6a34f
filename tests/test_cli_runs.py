"""The run commands of the CLI, with real papermill runs."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

import nbripple as nr
from nbripple.cli import main

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture
def nbdir(tmp_path: Path) -> Path:
    target = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, target)
    return target


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_run_reports_a_succeeded_execution_as_json(home, nbdir):
    code, out, _ = cli("run", str(nbdir / "producer_three.ipynb"), "--no-progress", "--json")
    assert code == 0
    code, out, _ = cli("run", str(nbdir / "consumer.ipynb"), "-p", "scale", "3", "--json",
                       "--no-progress")
    assert code == 0, out
    data = json.loads(out)
    assert data["status"] == "succeeded"
    assert data["parameters"] == {"model": "blessed_model@2", "scale": 3}
    assert data["inputs"] == [{"ref": "blessed_model@2", "parameter": "model"}]
    assert data["outputs"] == ["prediction@1"]
    assert nr.load("prediction@1") == [3, 6, 9]


def test_p_infers_types_and_r_keeps_strings(home, nbdir):
    assert cli("run", str(nbdir / "echo.ipynb"), "-p", "text", "42", "--no-progress")[0] == 0
    assert cli("run", str(nbdir / "echo.ipynb"), "-r", "text", "42", "--no-progress")[0] == 0
    assert [nr.load("echo@1")["text"], nr.load("echo@2")["text"]] == [42, "42"]


def test_failed_run_exits_1_and_shows_the_error_cell(home, nbdir):
    code, out, _ = cli("run", str(nbdir / "fails_in_cell_3.ipynb"), "--no-progress")
    assert code == 1
    assert "failed" in out and "ValueError: boom in cell 3" in out


def test_executions_execution_and_the_executed_notebook(home, nbdir, tmp_path):
    ok = nr.run(nbdir / "trivial.ipynb")
    bad = nr.run(nbdir / "fails_in_cell_3.ipynb")
    code, out, _ = cli("executions", "--json")
    assert code == 0
    assert {e["id"] for e in json.loads(out)} >= {ok.id, bad.id}
    code, out, _ = cli("executions", "--status", "failed", "--json")
    assert [e["id"] for e in json.loads(out)] == [bad.id]
    code, out, _ = cli("execution", bad.id[:8], "--json")
    data = json.loads(out)
    assert data["status"] == "failed" and data["error"]["cell_index"] == 3
    saved = tmp_path / "executed.ipynb"
    code, _, err = cli("execution", bad.id, "--notebook", str(saved))
    assert code == 0 and "saved" in err
    executed = nbformat.read(str(saved), as_version=4)
    assert any(out.get("ename") == "ValueError" for cell in executed.cells
               for out in cell.get("outputs", []))
    code, out, _ = cli("execution", ok.id, "--notebook")
    assert code == 0 and nbformat.reads(out, as_version=4).cells
    code, out, _ = cli("execution", ok.id, "--snapshot")
    assert code == 0 and "y = x + 1" in out


def test_rerun_and_relaunch_link_to_the_original(home, nbdir):
    nr.run(nbdir / "producer_three.ipynb")
    original = nr.run(nbdir / "consumer.ipynb")
    for command in ("rerun", "relaunch"):
        code, out, _ = cli(command, original.id, "--json", "--no-progress")
        assert code == 0, out
        data = json.loads(out)
        assert data["parent_id"] == original.id
        assert data["trigger"] == {"type": command, "of": original.id}


def test_run_errors_are_one_line(home, nbdir):
    code, _, err = cli("run", str(nbdir / "trivial.ipynb"), "-p", "nope", "1")
    assert code != 0
    assert err.strip().count("\n") == 0 and "has no parameter 'nope'" in err
    code, _, err = cli("run", str(nbdir / "missing.ipynb"))
    assert code != 0 and err.startswith("error:") and err.strip().count("\n") == 0
    code, _, err = cli("execution", "ffffffffffff")
    assert code != 0 and "no execution" in err


def test_pull_is_load(home, tmp_path):
    nr.Artifact("numbers").create_from({"a": 1})
    code, out, _ = cli("pull", "numbers@1")
    assert code == 0 and json.loads(out) == {"a": 1}


def test_run_takes_papermills_options(home, nbdir, tmp_path):
    code, out, err = cli("run", str(nbdir / "echo.ipynb"), "--no-progress", "--report-mode",
                         "-y", "text: from yaml", "-p", "text", "true", "--json")
    assert code == 0, err
    assert nr.load("echo@1") == {"text": "true"}  # -p after -y; papermill keeps 'true' text
    executed = nbformat.read(str(nr.current().execution(json.loads(out)["id"])
                                 .output_notebook), as_version=4)
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") for c in executed.cells
               if c.cell_type == "code")  # --report-mode hides the inputs
    params = tmp_path / "p.yaml"
    params.write_text("text: [1, 2]\n", encoding="utf-8")
    code, _, err = cli("run", str(nbdir / "echo.ipynb"), "--no-progress", "-f", str(params),
                       "--log-output", "--start-timeout", "90", "-k", "python3")
    assert code == 0, err
    assert "Executing Cell 1" in err  # --log-output: papermill's log on stderr
    assert nr.load("echo@2") == {"text": [1, 2]}
    code, _, err = cli("run", str(nbdir / "echo.ipynb"), "--no-progress")
    assert code == 0 and "Executing Cell" not in err


def test_run_of_a_directory_says_it_is_one(home, nbdir):
    code, _, err = cli("run", str(nbdir))
    assert code == 1 and "is a directory, not a notebook" in err
    assert err.strip().count("\n") == 0


def test_the_shown_execution_names_its_kernel_and_its_kept_notebook(home, nbdir):
    code, out, _ = cli("run", str(nbdir / "kills_kernel.ipynb"), "--no-progress")
    assert code == 1
    assert "python3" in out and "DeadKernelError" in out and "in cell 3" in out
    assert "--notebook" in out


def test_run_timeout_option_fails_the_run_and_keeps_its_notebook(home, nbdir):
    code, out, err = cli("run", str(nbdir / "sleeps.ipynb"), "--no-progress",
                         "--run-timeout", "3", "--json")
    assert code == 1, err
    data = json.loads(out)
    assert data["status"] == "failed"
    assert data["error"]["ename"] == "RunTimeout" and data["error"]["cell_index"] == 3
    assert nr.current().execution(data["id"]).output_notebook is not None


def test_a_run_records_its_phases_and_timings_prints_them(home, nbdir):
    ex = nr.run(nbdir / "trivial.ipynb")
    phases = ex.phases or {}
    assert list(phases) == ["claimed", "kernel_ready", "cells_done", "committed"]
    times = [datetime.fromisoformat(t) for t in phases.values()]
    assert times == sorted(times)
    assert ex.finished_at is not None and times[0] <= ex.finished_at <= times[-1]
    code, out, _ = cli("execution", ex.id, "--timings")
    assert code == 0, out
    for label in ("claimed", "kernel ready", "cells done", "committed"):
        assert label in out
    assert "ms" in out


def test_timings_of_a_triggered_run_start_at_the_triggering_commit(home, nbdir):
    v = nr.Artifact("raw").create_from(1)
    start = v.created_at
    phases = {"detected": (start + timedelta(milliseconds=30)).isoformat(),
              "claimed": (start + timedelta(milliseconds=32)).isoformat(),
              "committed": (start + timedelta(milliseconds=400)).isoformat(),
              "kernel_ready": "\x1b[31mnot a time"}
    ex = nr.current()._new_execution("notebook", trigger={"type": "artifact"},
                                     trigger_artifact="raw", trigger_version=1)
    nr.current().catalog.update_execution(ex.id, phases=phases)
    code, out, _ = cli("execution", ex.id, "--timings")
    assert code == 0, out
    lines = [line for line in out.splitlines() if "ms" in line]
    assert [line.split()[1] for line in lines] == ["trigger", "detected", "claimed", "committed"]
    assert "30 ms" in lines[1] and "+2 ms" in lines[2] and "400 ms" in lines[3]
    assert "\x1b" not in out


def test_timings_of_an_execution_without_phases_says_so(home):
    ex = nr.current()._new_execution("external")
    code, out, err = cli("execution", ex.id, "--timings")
    assert code == 0
    assert "recorded no phases" in out + err
