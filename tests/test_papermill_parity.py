"""papermill parity: what users moving from papermill rely on, checked against papermill
itself (its CLI's parsing, its own runs of the same notebooks) in real kernels."""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import psutil
import pytest
from click.testing import CliRunner
from papermill.cli import _resolve_type

import nbripple as nr
from nbripple.cli import main
from nbripple.parameters import cli_parameters, parse_cli_value
from nbripple.runner import KernelNotFound, NotebookNotFound

NOTEBOOKS = Path(__file__).parent / "notebooks"
PAPERMILL = Path(sys.executable).parent / "papermill"
RAW_VALUES = [
    "true", "false", "null", "none", "True", "False", "None", " True", "True ", "[1, 2]",
    "{'a': 1}", "'quoted'", '"dq"', "42", " 42", "-7", "+3", "1_000", "0x10", "007", "0.5",
    "1e3", ".5", "nan", "inf", "-inf", "Infinity", "", " ", "blessed_model@3",
    "nbripple://m?blessed=true", "two words", "1,2", "١٢", "3.0.1",
]


@pytest.fixture
def nbdir(tmp_path: Path) -> Path:
    target = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, target)
    return target


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("raw", RAW_VALUES)
def test_a_p_value_is_read_exactly_as_papermill_reads_it(raw: str) -> None:
    assert same(parse_cli_value(raw), _resolve_type(raw)), raw


def many_parameters_notebook(path: Path) -> Path:
    names = [f"v{i}" for i in range(len(RAW_VALUES))] + ["raw", "y1", "f1", "b1", "over"]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    cell = nbformat.v4.new_code_cell("\n".join(f"{name} = 0" for name in names))
    cell.metadata["tags"] = ["parameters"]
    nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_code_cell("print(v0)"))
    nbformat.write(nb, path)
    return path


def injected_source(nb: Any) -> str:
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    return str(cells[0].source)


def test_the_cli_injects_the_parameters_papermill_injects(home: Path, tmp_path: Path) -> None:
    notebook = many_parameters_notebook(tmp_path / "many.ipynb")
    params_file = tmp_path / "params.yaml"
    params_file.write_text("f1: 2026-01-01\nover: from the file\n", encoding="utf-8")
    args: list[str] = []
    for index, raw in enumerate(RAW_VALUES):
        args += ["-p", f"v{index}", raw]
    args += ["-r", "raw", "True", "-y", "y1: [1, two]\nover: from yaml", "-f", str(params_file),
             "-b", base64.b64encode(b"b1: {k: 3}\nover: from base64").decode()]
    theirs = tmp_path / "theirs.ipynb"
    subprocess.run([str(PAPERMILL), "--prepare-only", str(notebook), str(theirs), *args],
                   check=True, capture_output=True, timeout=120)
    result = CliRunner().invoke(main, ["run", "--prepare-only", str(notebook), *args])
    assert result.exit_code == 0, result.stderr
    ours = nbformat.reads(result.stdout, as_version=4)
    assert injected_source(ours) == injected_source(nbformat.read(theirs, as_version=4))
    assert "over = \"from yaml\"" in injected_source(ours)  # -y after -f after -b
    assert nr.current().executions() == []  # nothing ran, nothing recorded


def test_the_api_and_the_magics_parse_as_the_cli(home: Path) -> None:
    parsed = cli_parameters(params=[("a", "true"), ("b", "None"), ("c", "[1, 2]")],
                            raw=[("d", "5")], yaml_texts=["e: [1, 2]"])
    assert parsed == {"a": "true", "b": None, "c": "[1, 2]", "d": "5", "e": [1, 2]}
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbripple")
    echo = Path(home).parent / "echo.ipynb"
    shutil.copy(NOTEBOOKS / "echo.ipynb", echo)
    for raw, expected in (("true", "true"), ("null", "null"), ("1e3", 1000.0)):
        ex = shell.run_line_magic("nbripple", f"run {echo} -p text {raw}")
        assert ex.status == "succeeded", ex.error
        assert same(ex.parameters["text"], expected)
    ex = shell.run_line_magic("nbripple", f"run {echo} -y 'text: [1, 2]'")
    assert ex.parameters["text"] == [1, 2]


def test_a_bad_yaml_parameter_is_one_clear_error(home: Path, nbdir: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(nbdir / "echo.ipynb"), "-y", "[1, 2]"])
    assert result.exit_code == 1
    assert "YAML parameters must be a mapping" in result.stderr
    result = CliRunner().invoke(main, ["run", str(nbdir / "echo.ipynb"), "-f", "nope.yaml"])
    assert "cannot read the parameters file nope.yaml" in result.stderr


# -- kernels -------------------------------------------------------------------
def test_a_python_kernelspec_is_jupyter_clients_python3(home: Path, nbdir: Path) -> None:
    ex = nr.run(nbdir / "kernel_python.ipynb")
    assert ex.status == "succeeded", ex.error
    assert ex.output_notebook is not None
    out = json.loads(ex.output_notebook.read_text(encoding="utf-8"))
    assert out["metadata"]["nbripple"]["kernel_name"] == "python3"
    result = CliRunner().invoke(main, ["execution", ex.id])
    assert "kernel" in result.stdout and "python3" in result.stdout


def test_a_notebook_without_kernelspec_is_refused_as_papermill_refuses_it(
        home: Path, nbdir: Path, tmp_path: Path) -> None:
    notebook = nbdir / "no_kernelspec.ipynb"
    papermill = subprocess.run([str(PAPERMILL), str(notebook), str(tmp_path / "o.ipynb")],
                               capture_output=True, text=True, timeout=120)
    assert papermill.returncode != 0 and "No kernel name found" in papermill.stderr
    with pytest.raises(KernelNotFound, match="kernel_name="):
        nr.run(notebook)
    result = CliRunner().invoke(main, ["run", str(notebook)])
    assert result.exit_code == 1 and "--kernel NAME" in result.stderr
    assert nr.run(notebook, kernel_name="python3").status == "succeeded"
    result = CliRunner().invoke(main, ["run", "--no-progress", "-k", "python3", str(notebook)])
    assert result.exit_code == 0, result.stderr


def test_an_unknown_kernel_names_the_cli_option(home: Path, nbdir: Path) -> None:
    result = CliRunner().invoke(main, ["run", "-k", "nope", str(nbdir / "trivial.ipynb")])
    assert result.exit_code == 1
    assert "no Jupyter kernel named 'nope'" in result.stderr and "--kernel" in result.stderr


# -- the executed notebook -------------------------------------------------------
def test_the_executed_notebook_matches_papermills(home: Path, nbdir: Path,
                                                  tmp_path: Path) -> None:
    notebook = nbdir / "counts.ipynb"
    ex = nr.run(notebook, parameters={"n": 5})
    assert ex.status == "succeeded", ex.error
    assert ex.output_notebook is not None
    ours = nbformat.read(ex.output_notebook, as_version=4)
    theirs = pm.execute_notebook(str(notebook), str(tmp_path / "theirs.ipynb"),
                                 parameters={"n": 5}, progress_bar=False)
    assert [c.source for c in ours.cells] == [c.source for c in theirs.cells]  # no extra cell
    assert ([c.get("execution_count") for c in ours.cells]
            == [c.get("execution_count") for c in theirs.cells])
    meta = ours.metadata.papermill
    assert meta.input_path == str(notebook)
    assert Path(meta.output_path).is_file()
    assert len(ex.output_notebook.read_bytes()) < 3 * len(notebook.read_bytes()) + 8000


@pytest.mark.parametrize("minor", [1, 2, 3, 4])
def test_the_failing_cell_is_named_for_every_nbformat(home: Path, nbdir: Path,
                                                      minor: int) -> None:
    ex = nr.run(nbdir / f"nbformat_4_{minor}.ipynb")
    assert ex.status == "failed"
    assert ex.error is not None
    assert (ex.error["ename"], ex.error["cell_index"]) == ("ValueError", 3)


def test_an_error_papermill_sees_no_message_for_shows_the_real_one(home: Path,
                                                                   nbdir: Path) -> None:
    ex = nr.run(nbdir / "unknown_magic.ipynb")
    assert ex.status == "failed" and ex.error is not None
    assert ex.error["ename"] == "UsageError"
    assert "Line magic function `%no_such_magic_here` not found" in ex.error["evalue"]
    assert ex.error["cell_index"] == 1


def test_a_directory_is_not_a_notebook(home: Path, nbdir: Path) -> None:
    with pytest.raises(NotebookNotFound, match="is a directory, not a notebook"):
        nr.run(nbdir)


# -- runs that stop early keep their notebook -------------------------------------
def marked_cell(ex: nr.Execution) -> tuple[int, Any]:
    """(index, cell) of the cell papermill-style marked as failed in the kept notebook."""
    assert ex.output_notebook is not None, "the executed notebook was kept"
    nb = nbformat.read(ex.output_notebook, as_version=4)
    assert "papermill-error-cell-tag" in nb.cells[0].metadata.get("tags", [])
    failed = [(i, c) for i, c in enumerate(nb.cells)
              if c.metadata.get("papermill", {}).get("exception")]
    assert len(failed) == 1
    return failed[0]


def test_a_cell_timeout_keeps_the_notebook_with_the_cell_marked(home: Path,
                                                                nbdir: Path) -> None:
    ex = nr.run(nbdir / "sleeps.ipynb", timeout=2)
    assert ex.status == "failed" and ex.error is not None
    assert ex.error["cell_index"] == 3
    _, cell = marked_cell(ex)
    assert cell.source == "time.sleep(seconds)"
    assert [v.ref for v in ex.outputs] == []


def test_the_whole_run_timeout_from_config_keeps_the_notebook(home: Path,
                                                              nbdir: Path) -> None:
    (home / "config.toml").write_text("[executor]\nrun_timeout_s = 4\n", encoding="utf-8")
    started = time.monotonic()
    ex = nr.run(nbdir / "sleeps.ipynb", workspace=nr.Workspace(home))
    assert time.monotonic() - started < 25
    assert ex.status == "failed" and ex.error is not None
    assert ex.error["ename"] == "RunTimeout" and "run_timeout_s" in ex.error["evalue"]
    assert ex.error["cell_index"] == 3
    marked_cell(ex)


def test_a_dead_kernel_keeps_the_notebook_with_the_cell_marked(home: Path,
                                                               nbdir: Path) -> None:
    ex = nr.run(nbdir / "kills_kernel.ipynb")
    assert ex.status == "failed" and ex.error is not None
    assert (ex.error["ename"], ex.error["cell_index"]) == ("DeadKernelError", 3)
    _, cell = marked_cell(ex)
    assert "os.kill" in cell.source
    assert any("before the kill" in o.get("text", "") for c in
               nbformat.read(ex.output_notebook, as_version=4).cells  # type: ignore[arg-type]
               for o in c.get("outputs", []))


def test_the_start_timeout_from_config_and_the_option(home: Path, nbdir: Path) -> None:
    (home / "config.toml").write_text("[executor]\nstart_timeout_s = 0.01\n", encoding="utf-8")
    ex = nr.run(nbdir / "trivial.ipynb", workspace=nr.Workspace(home))
    assert ex.status == "failed" and ex.error is not None
    assert ex.error["ename"] == "KernelStartError"
    assert "start_timeout_s" in ex.error["evalue"] and "--start-timeout" in ex.error["evalue"]
    result = CliRunner().invoke(main, ["run", "--no-progress", "--start-timeout", "120",
                                       str(nbdir / "trivial.ipynb")])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("signum", "code", "name"), [
    (signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM"),
])
def test_a_signal_cancels_the_run_stops_its_kernel_and_keeps_the_notebook(
        home: Path, nbdir: Path, signum: int, code: int, name: str) -> None:
    env = {**os.environ, "NBRIPPLE_HOME": str(home),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from nbripple.cli import main; main()", "run",
         "--no-progress", str(nbdir / "sleeps.ipynb")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=nbdir)
    try:
        kernel = wait_for_sleeping_cell(home, proc.pid)
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = err.decode()
    assert proc.returncode == code, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cancelled by {name}" in lines[0], stderr
    assert "Traceback" not in stderr and "Task exception" not in stderr
    assert not kernel.is_running() or kernel.status() == psutil.STATUS_ZOMBIE
    ws = nr.Workspace(home)
    [ex] = ws.executions()
    assert ex.status == "cancelled" and ex.error is not None
    assert ex.error["cell_index"] == 3
    assert name in ex.error["evalue"]
    _, cell = marked_cell(ex)
    assert cell.source == "time.sleep(seconds)"


def wait_for_sleeping_cell(home: Path, pid: int) -> psutil.Process:
    """Poll (deadline 60 s) until the run's notebook shows cell 3 running; its kernel."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in (home / "runs").glob("*/sleeps.ipynb"):
            try:
                nb = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            status = nb["cells"][3]["metadata"].get("papermill", {}).get("status")
            children = psutil.Process(pid).children()
            if status == "running" and children:
                return children[0]
        time.sleep(0.1)
    raise AssertionError("the run never reached its sleeping cell")
