"""The plans commands of the CLI: register, plans, activate, deactivate, launch, watch.

The listing commands run in-process (CliRunner) against a real home; the watcher
behind them runs pass by pass with an executor that records jobs, so no kernel
starts. The last test runs `nbripple watch` as a real process that executes a real
notebook when a version is committed, and stops it with SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from croniter import croniter

import nbripple as nr
from nbripple import launchplans as lp
from nbripple.cli import main
from nbripple.watcher import Watcher

if TYPE_CHECKING:
    from conftest import RecordingExecutor

NOTEBOOKS = Path(__file__).parent / "notebooks"
NBRIPPLE_SCRIPT = Path(sys.executable).parent / "nbripple"

PLANS_PY = '''\
import nbripple as nr

blessed_model = nr.Artifact("blessed_model", partition_keys=["blessed"])

predict = nr.LaunchPlan(
    "predict", notebook="consumer.ipynb",
    parameters={"scale": SCALE},
    trigger=nr.OnArtifact(blessed_model.query(blessed="true"),
                          inputs={"model": blessed_model}),
)
nightly = nr.LaunchPlan("nightly", notebook="echo.ipynb", parameters={"text": "night"},
                        schedule="0 2 * * *", timezone="Europe/Paris")
'''


# -- helpers -------------------------------------------------------------------
def cli(*args: str) -> Result:
    """Run the CLI in-process; the home comes from NBRIPPLE_HOME (the `home` fixture)."""
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, list(args))


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr,
                                   result.exception)
    return result


def ok_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def assert_one_line_error(result: Result, contains: str) -> str:
    """The command failed with exactly one `error: ...` line on stderr, no traceback."""
    assert result.exit_code != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert contains in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def write_project(root: Path, scale: int = 2) -> Path:
    """plans.py with consumer.ipynb and echo.ipynb next to it; returns plans.py."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("consumer.ipynb", "echo.ipynb"):
        (root / name).write_bytes((NOTEBOOKS / name).read_bytes())
    (root / "plans.py").write_text(PLANS_PY.replace("SCALE", str(scale)))
    return root / "plans.py"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


# -- register ------------------------------------------------------------------
def test_register_prints_each_plan_with_its_version_and_change(home: Path,
                                                              project: Path) -> None:
    first = ok("register", str(project))
    assert "predict: new version 1, inactive" in first.stdout
    assert "nightly: new version 1, inactive" in first.stdout
    assert "nbripple activate" in first.stderr

    again = ok("register", str(project))
    assert "predict: unchanged (version 1)" in again.stdout
    assert "nightly: unchanged (version 1)" in again.stdout

    ok("activate", "predict")
    write_project(project.parent, scale=3)
    changed = ok("register", str(project))
    assert "predict: new version 2, active" in changed.stdout
    assert "nightly: unchanged (version 1), inactive" in changed.stdout
    assert by_name(ok_json("register", str(project))) == {
        "predict": {"name": "predict", "version": 2, "created": False, "active": True},
        "nightly": {"name": "nightly", "version": 1, "created": False, "active": False},
    }
    assert lp.get_plan("predict").spec["inputs"]["scale"] == {"value": 3}


def test_register_of_an_invalid_plan_is_one_line_and_registers_nothing(
        home: Path, project: Path) -> None:
    project.write_text(PLANS_PY.replace("SCALE", "2").replace('"scale"', '"sacle"'))
    assert_one_line_error(cli("register", str(project)),
                          "plan predict: consumer.ipynb has no parameter 'sacle'")
    assert nr.plans() == []


def test_register_of_a_missing_or_broken_file_is_one_line(home: Path, tmp_path: Path) -> None:
    assert_one_line_error(cli("register", str(tmp_path / "nope.py")), "not found")
    broken = tmp_path / "broken.py"
    broken.write_text("import nbripple as nr\nraise ValueError('bad config')\n")
    assert_one_line_error(cli("register", str(broken)),
                          "failed to import (line 2): ValueError: bad config")


# -- plans ---------------------------------------------------------------------
def test_plans_lists_state_version_trigger_and_schedule(home: Path, project: Path) -> None:
    ok("register", str(project))
    ok("activate", "nightly")
    rows = by_name(ok_json("plans"))
    predict, nightly = rows["predict"], rows["nightly"]
    assert (predict["state"], predict["version"], predict["latest_version"]) == (
        "inactive", 1, 1)
    assert predict["trigger"] == "blessed_model?blessed=true"
    assert predict["schedule"] is None and predict["next_run"] is None
    assert predict["notebook"] == str(project.parent / "consumer.ipynb")
    assert (predict["last_fired"], predict["recent_results"], predict["stopped_reason"]) == (
        None, [], None)

    assert (nightly["state"], nightly["trigger"]) == ("active", None)
    assert (nightly["schedule"], nightly["timezone"]) == ("0 2 * * *", "Europe/Paris")
    anchor = lp.get_plan("nightly").schedule_anchor
    assert anchor is not None
    expected = croniter("0 2 * * *", anchor.astimezone(ZoneInfo("Europe/Paris"))).get_next(
        datetime)
    next_run = datetime.fromisoformat(nightly["next_run"])
    assert next_run == expected
    assert next_run.astimezone(ZoneInfo("Europe/Paris")).hour == 2
    assert next_run > datetime.now(UTC)

    table = ok("plans").stdout
    assert "predict" in table and "nightly" in table
    assert "blessed_model?blessed=true" in table
    assert "cron 0 2 * * * Europe/Paris" in table
    assert "inactive" in table and "active" in table
    local_next = next_run.astimezone()
    same_year = local_next.year == datetime.now().astimezone().year
    assert local_next.strftime("%H:%M" if same_year else "%Y-%m-%d") in table


def test_plans_shows_last_fired_and_recent_results(
        ws: nr.Workspace, project: Path,
        recording_executor: Callable[..., RecordingExecutor]) -> None:
    ok("register", str(project))
    ok("activate", "predict")
    blessed = nr.Artifact("blessed_model", partition_keys=["blessed"])
    executor = recording_executor(end=True)  # every run 'dies' at once: its firing fails
    watcher = Watcher(workspace=ws, executor=executor)
    for _ in range(2):
        blessed.create_from({"weights": [1]}, blessed="true")
        watcher.run_once()
        watcher.run_once()  # reaps the ended job
    launched = ok_json("launch", "predict")["firing"]  # pending until a watcher runs it

    row = by_name(ok_json("plans"))["predict"]
    assert row["recent_results"] == ["pending", "failed", "failed"]
    newest = ws.catalog.get_firing(launched)  # type: ignore[attr-defined]
    assert datetime.fromisoformat(row["last_fired"]) == newest.created_at
    assert len(executor.jobs) == 2

    table = ok("plans").stdout
    assert "… ✗ ✗" in table
    assert newest.created_at.astimezone().strftime("%H:%M:%S") in table


def test_plans_shows_only_the_last_five_results(ws: nr.Workspace, project: Path) -> None:
    ok("register", str(project))
    ok("activate", "predict")
    ids = [ok_json("launch", "predict")["firing"] for _ in range(7)]
    row = by_name(ok_json("plans"))["predict"]
    assert row["recent_results"] == ["pending"] * 5
    assert datetime.fromisoformat(row["last_fired"]) == ws.catalog.get_firing(  # type: ignore[attr-defined]
        ids[-1]).created_at


def test_plans_shows_why_a_plan_stopped(
        ws: nr.Workspace, tmp_path: Path,
        recording_executor: Callable[..., RecordingExecutor]) -> None:
    root = tmp_path / "loop"
    write_project(root)
    (root / "plans.py").write_text(
        "import nbripple as nr\n"
        "blessed_model = nr.Artifact('blessed_model', partition_keys=['blessed'])\n"
        "loop = nr.LaunchPlan('loop', notebook='consumer.ipynb', max_chain_depth=1,\n"
        "                     trigger=nr.OnArtifact(blessed_model, inputs={'model': "
        "blessed_model}))\n")
    ok("register", str(root / "plans.py"))
    ok("activate", "loop")
    nr.Artifact("blessed_model", partition_keys=["blessed"]).create_from(1, blessed="true")
    Watcher(workspace=ws, executor=recording_executor()).run_once()

    row = by_name(ok_json("plans"))["loop"]
    assert "stopped at max_chain_depth=1" in row["stopped_reason"]
    assert row["recent_results"] == ["skipped"]
    table = ok("plans").stdout
    assert "(stopped)" in table
    assert "loop: stopped at max_chain_depth=1" in table


def test_plans_with_none_registered_says_how_to_register(home: Path) -> None:
    result = ok("plans")
    assert result.stdout == ""
    assert "nbripple register plans.py" in result.stderr
    assert ok_json("plans") == []


# -- activate / deactivate / launch ------------------------------------------------
def test_activate_and_deactivate_switch_the_state(home: Path, project: Path) -> None:
    ok("register", str(project))
    result = ok("activate", "predict")
    assert "activated predict (version 1)" in result.stdout
    assert "fires on blessed_model?blessed=true" in result.stderr
    assert "no watcher is running" in result.stderr
    assert lp.get_plan("predict").active
    assert "predict is already active (version 1)" in ok("activate", "predict").stdout

    nightly = ok("activate", "nightly")
    assert "cron 0 2 * * * Europe/Paris; next run" in nightly.stderr

    assert "deactivated predict" in ok("deactivate", "predict").stdout
    assert not lp.get_plan("predict").active
    assert "predict is already inactive" in ok("deactivate", "predict").stdout
    assert ok_json("activate", "predict")["state"] == "active"
    assert ok_json("deactivate", "predict")["state"] == "inactive"


def test_activate_deactivate_and_launch_of_an_unknown_plan_fail_in_one_line(
        home: Path, project: Path) -> None:
    ok("register", str(project))
    for command in ("activate", "deactivate", "launch"):
        assert_one_line_error(cli(command, "predcit"),
                              "no launch plan named 'predcit' (plans: nightly, predict)")


def test_launch_queues_a_manual_firing(ws: nr.Workspace, project: Path) -> None:
    ok("register", str(project))
    assert_one_line_error(cli("launch", "nightly"), "plan nightly is inactive; activate it")
    ok("activate", "nightly")
    result = ok("launch", "nightly")
    assert "launched nightly: firing" in result.stdout
    assert "no watcher is running on this home: start one with `nbripple watch`" in \
        result.stderr
    [firing] = ws.catalog.firings(plan="nightly")  # type: ignore[attr-defined]
    assert (firing.kind, firing.status) == ("manual", "pending")
    assert firing.id in result.stdout
    data = ok_json("launch", "nightly")
    assert data["plan"] == "nightly"
    assert ws.catalog.get_firing(data["firing"]).kind == "manual"  # type: ignore[attr-defined]


# -- watch, for real -------------------------------------------------------------------
def test_watch_runs_triggered_notebooks_and_exits_cleanly_on_sigterm(
        ws: nr.Workspace, project: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "watch.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(NBRIPPLE_SCRIPT), "watch", "--max-parallel", "2", "--poll-interval", "0.05"],
            stdout=subprocess.DEVNULL, stderr=log, cwd=tmp_path, env=os.environ.copy(),
        )
    try:
        wait_for(lambda: bool(ws.catalog.live_watchers()), 30,  # type: ignore[attr-defined]
                 "the watcher to start", log_path)
        ok("register", str(project))
        activated = ok("activate", "predict")
        assert "no watcher is running" not in activated.stderr

        blessed = nr.Artifact("blessed_model", partition_keys=["blessed"])
        blessed.create_from({"weights": [1, 2]}, blessed="false")
        version = blessed.create_from({"weights": [1, 2]}, blessed="true").version
        ws.catalog.close()

        def succeeded() -> bool:
            runs = ws.executions(kind="notebook")
            ws.catalog.close()  # leave the file to the watcher between polls
            return any(e.status == "succeeded" for e in runs)

        wait_for(succeeded, 90, "the triggered run to succeed", log_path)
        [run] = ws.executions(kind="notebook")
        assert run.trigger is not None
        assert (run.trigger["plan"], run.trigger["version"]) == ("predict", version)
        assert [(i.ref, i.parameter) for i in run.inputs] == [
            (f"blessed_model@{version}", "model")]
        assert [v.ref for v in run.outputs] == ["prediction@1"]
        assert nr.load("prediction@1") == [2, 4]
        ws.catalog.close()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log_text = log_path.read_text()
    assert "plan predict fired" in log_text
    assert "Traceback" not in log_text
    assert "stopped" in log_text.splitlines()[-1]
    assert ws.catalog.live_watchers() == []  # type: ignore[attr-defined]
    assert by_name(ok_json("plans"))["predict"]["recent_results"] == ["succeeded"]
    assert "✓" in ok("plans").stdout


def wait_for(condition: Any, timeout: float, what: str, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; watcher log:\n{log_path.read_text()}")


def test_register_of_a_file_calling_sys_exit_is_one_line(home: Path, tmp_path: Path) -> None:
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(3)\n")
    assert_one_line_error(cli("register", str(exits)),
                          "exits.py called sys.exit(3) while it was imported (line 2)")
    assert nr.plans() == []


def test_register_of_a_never_firing_schedule_is_one_line(home: Path, tmp_path: Path) -> None:
    plans_file = tmp_path / "never.py"
    plans_file.write_text(
        "import nbripple as nr\n"
        f"p = nr.LaunchPlan('never', notebook={str(NOTEBOOKS / 'echo.ipynb')!r},\n"
        "                  parameters={'text': 'x'}, schedule='0 0 30 2 *')\n")
    assert_one_line_error(cli("register", str(plans_file)),
                          "plan never: schedule '0 0 30 2 *' never fires")
    assert nr.plans() == []
