"""Faults the watcher must survive without stopping or dropping owed work: a broken
plan next to good ones, failing passes, Ctrl-C / SIGTERM on `nbripple watch`, and
executions whose process died."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

import nbripple as nr
from nbripple import launchplans as lp
from nbripple.cli import main
from nbripple.errors import CatalogLockedError
from nbripple.pids import pid_alive
from nbripple.service.executions import make_execution
from nbripple.watcher import Watcher
from waiting import wait_for

FIXTURES = Path(__file__).parent / "notebooks"
CLI = [sys.executable, "-c", "from nbripple.cli import main; main()"]


def cli(*args: str) -> Any:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


# -- one broken plan never stops the others -------------------------------------------
def _raw_plan(ws: nr.Workspace, name: str, spec: dict[str, Any]) -> None:
    """Record a plan as an older nbripple (or a hand-edited catalog) might have."""
    ws.catalog.register_plan(name, spec, lp.spec_hash(spec))
    ws.catalog.set_plan_active(name, True)


def _active_plan_on(item: nr.Artifact, name: str = "good") -> None:
    """Register and activate a plan that runs echo.ipynb on each new version of item."""
    nr.register(nr.LaunchPlan(name, notebook=FIXTURES / "echo.ipynb",
                              parameters={"text": name}, trigger=nr.OnArtifact(item)))
    nr.activate(name)


def test_broken_plans_are_recorded_and_the_good_one_still_fires(home, ws,
                                                                recording_executor):
    item = nr.Artifact("item")
    _active_plan_on(item)
    base = lp.get_plan("good").spec
    _raw_plan(ws, "never", {**base, "name": "never", "trigger": None,
                            "schedule": "0 0 30 2 *"})
    _raw_plan(ws, "badmatch", {**base, "name": "badmatch", "trigger": {"strict": False}})
    _raw_plan(ws, "badlaunch", {k: v for k, v in {**base, "name": "badlaunch"}.items()
                                if k != "notebook"})
    executor = recording_executor()
    watcher = Watcher(executor=executor, poll_interval=0.01, housekeeping_s=0.01,
                      grace_period_s=0)
    assert watcher.run_once()
    item.create_from("one")
    assert watcher.run_once()
    assert watcher.run_once()
    fired = {job.notebook for job in executor.jobs}
    assert fired == {base["notebook"]}  # the good plan fired (for badlaunch: never started)
    assert [f.plan for f in lp.firings("good")] == ["good"]
    reasons = {p.name: p.stopped_reason for p in lp.plans()}
    assert reasons["good"] is None
    assert reasons["never"] is not None and reasons["never"].startswith("scheduling failed")
    assert reasons["badmatch"] is not None and "matching" in reasons["badmatch"]
    assert reasons["badlaunch"] is not None and "launching" in reasons["badlaunch"]

    listing = cli("plans").stdout
    assert "never" in listing and "scheduling failed" in listing
    rows = {row["name"]: row for row in json.loads(cli("plans", "--json").stdout)}
    assert rows["never"]["next_run"] is None
    assert rows["never"]["stopped_reason"].startswith("scheduling failed")
    assert rows["good"]["stopped_reason"] is None
    watcher.stop()


def test_listing_a_never_firing_plan_no_watcher_yet(home, ws):
    nr.register(nr.LaunchPlan("good", notebook=FIXTURES / "echo.ipynb",
                              parameters={"text": "hi"}, schedule="0 2 * * *"))
    nr.activate("good")
    spec = {**lp.get_plan("good").spec, "name": "never", "schedule": "0 0 30 2 *"}
    _raw_plan(ws, "never", spec)
    rows = {row["name"]: row for row in json.loads(cli("plans", "--json").stdout)}
    assert rows["good"]["next_run"] is not None
    assert rows["never"]["next_run"] is None
    assert "never fires" in rows["never"]["stopped_reason"]
    assert "never fires" in cli("plans").stdout


# -- woken by another process's commit, not by the poll --------------------------------
COMMITS_ONE = """
import sys
import nbripple as nr
nr.use(sys.argv[1])
nr.Artifact("item").create_from("from another process")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")
def test_a_commit_by_another_process_wakes_the_watcher_before_its_poll(home, ws,
                                                                        recording_executor):
    item = nr.Artifact("item")
    _active_plan_on(item)
    ws.catalog.close()
    executor = recording_executor()
    watcher = Watcher(executor=executor, poll_interval=60, housekeeping_s=60,
                      grace_period_s=0).start()
    try:
        wait_for(lambda: watcher.passes, 30, "the watcher's first pass")
        done = subprocess.run([sys.executable, "-c", COMMITS_ONE, str(home)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        # its poll is a minute away: only the release of the file could have woken it
        wait_for(lambda: executor.jobs, 10, "the firing of the new version")
    finally:
        watcher.stop()
    assert [f.trigger_version for f in lp.firings("good")] == [1]


def test_a_plan_change_stamped_before_the_newest_still_reaches_the_watcher(
        home, ws, recording_executor):
    # The watcher keeps the active plans while their stamp is the same: a deactivation
    # stamped earlier than another plan's last change (a clock set back) must move it.
    item = nr.Artifact("item")
    for name in ("early", "late"):
        _active_plan_on(item, name)
    with ws.catalog.connection() as con:  # "late" was changed by a clock a day ahead
        con.execute("UPDATE plan_state SET updated_at = updated_at + INTERVAL 1 DAY "
                    "WHERE name = 'late'")
    watcher = Watcher(executor=recording_executor(), poll_interval=0.01, grace_period_s=0)
    assert watcher.run_once()  # lists the plans
    nr.deactivate("early")  # stamped now: before "late"'s stamp
    item.create_from("one")
    assert watcher.run_once()
    assert [f.plan for f in lp.firings("late")] == ["late"]
    assert lp.firings("early") == []
    watcher.stop()


# -- a failing pass is retried ------------------------------------------------------
def test_watcher_survives_failing_passes_and_says_so(home, ws, recording_executor,
                                                     monkeypatch):
    nr.register(nr.LaunchPlan("good", notebook=FIXTURES / "echo.ipynb",
                              parameters={"text": "hi"}))
    nr.activate("good")
    watcher = Watcher(executor=recording_executor(), poll_interval=0.01, housekeeping_s=0.01,
                      grace_period_s=0)
    real = watcher.catalog.list_plans
    failures = threading.Semaphore(3)
    seen: list[dict[str, Any]] = []

    def flaky(**kwargs: Any) -> Any:
        if failures.acquire(blocking=False):
            seen.append(watcher.state())
            raise CatalogLockedError("the catalog is locked by pid 1 (test)")
        return real(**kwargs)

    monkeypatch.setattr(watcher.catalog, "list_plans", flaky)
    watcher.start()
    try:
        wait_for(lambda: len(seen) == 3 and watcher.consecutive_failures == 3, 30,
                 "three failed passes")
        state = watcher.state()
        assert state["healthy"] is False
        assert state["last_error"] == "CatalogLockedError: the catalog is locked by pid 1 (test)"
        lp.launch("good")
        wait_for(lambda: watcher.state()["consecutive_failures"] == 0, 30, "a good pass")
        assert watcher.is_running
        wait_for(lambda: [f for f in lp.firings("good") if f.status == "running"], 30,
                 "the launch to fire after the failures")
        assert watcher.state()["healthy"] is True
        assert [s["consecutive_failures"] for s in seen] == [0, 1, 2]
    finally:
        watcher.stop(timeout=30)


def test_a_failing_watcher_says_so_in_its_heartbeat(home, ws, recording_executor,
                                                   monkeypatch):
    nr.register(nr.LaunchPlan("good", notebook=FIXTURES / "echo.ipynb",
                              parameters={"text": "hi"}))
    watcher = Watcher(executor=recording_executor(), poll_interval=0.01, housekeeping_s=0.01,
                      grace_period_s=0)
    failing = threading.Event()
    failing.set()
    real = watcher.catalog.list_plans

    def broken(**kwargs: Any) -> Any:
        if failing.is_set():
            raise OSError(28, "No space left on device (test)")
        return real(**kwargs)

    monkeypatch.setattr(watcher.catalog, "list_plans", broken)
    watcher.start()
    try:
        def failing_beat() -> list[dict[str, Any]]:
            return [w for w in ws.catalog.live_watchers()
                    if w["id"] == watcher.id and w["consecutive_failures"] >= 2]

        wait_for(failing_beat, 30, "a heartbeat that reports failing passes")
        (beat,) = failing_beat()
        assert "No space left on device (test)" in beat["last_error"]
        assert beat["last_error_at"] is not None
        assert watcher.is_running
        # `nbripple plans` (another process) tells the user the live watcher is failing
        listed = subprocess.run([str(Path(sys.executable).parent / "nbripple"), "--home",
                                 str(home), "plans"], capture_output=True, text=True,
                                timeout=120)
        assert listed.returncode == 0, listed.stderr
        assert "is failing" in listed.stderr and "No space left" in listed.stderr
        failing.clear()
        wait_for(lambda: [w for w in ws.catalog.live_watchers()
                          if w["id"] == watcher.id and w["consecutive_failures"] == 0],
                 30, "a heartbeat that reports the watcher healthy again")
    finally:
        watcher.stop(timeout=30)


def test_a_run_that_ended_during_a_failing_pass_is_settled_by_the_next(
        home, ws, recording_executor, monkeypatch):
    nr.register(nr.LaunchPlan("good", notebook=FIXTURES / "echo.ipynb",
                              parameters={"text": "hi"}))
    nr.activate("good")
    lp.launch("good")
    executor = recording_executor(end=True)  # each job 'ends' at once, as a dead run
    watcher = Watcher(executor=executor, poll_interval=0.01, housekeeping_s=3600,
                      grace_period_s=0)
    assert watcher.run_once()
    assert len(executor.jobs) == 1
    real = watcher.catalog.get_execution
    fail = iter([True])

    def flaky(execution_id: str) -> Any:
        if next(fail, False):
            raise CatalogLockedError("the catalog is locked (test)")
        return real(execution_id)

    monkeypatch.setattr(watcher.catalog, "get_execution", flaky)
    with pytest.raises(CatalogLockedError):
        watcher.run_once(force=False)
    assert watcher.run_once(force=False)  # the failed pass is done again at once
    (firing,) = lp.firings("good")
    assert firing.status == "failed"
    assert firing.reason is not None and "RunProcessDied" in firing.reason
    watcher.stop()


LOCK_HOLDER = """
import sys, time
import nbripple as nr
ws = nr.Workspace(sys.argv[1])
with ws.catalog.transaction():
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_watcher_survives_a_process_holding_the_catalog(home, ws, recording_executor):
    (home / "config.toml").write_text("[catalog]\nlock_timeout_s = 0.3\n")
    nr.register(nr.LaunchPlan("good", notebook=FIXTURES / "echo.ipynb",
                              parameters={"text": "hi"}))
    nr.activate("good")
    firing = lp.launch("good")
    ws.catalog.close()
    watcher = Watcher(home, executor=recording_executor(), poll_interval=0.01,
                      housekeeping_s=0.01, grace_period_s=0)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(home), "3"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        watcher.start()
        wait_for(lambda: watcher.consecutive_failures >= 1, 30, "a pass to fail on the lock")
        assert "CatalogLocked" in (watcher.state()["last_error"] or "")
        assert holder.wait(timeout=30) == 0
        wait_for(lambda: watcher.consecutive_failures == 0 and watcher.passes > 0, 60,
                 "a pass after the lock was released")
        assert watcher.is_running
        wait_for(lambda: (lp.get_plan("good") and
                          [f for f in lp.firings("good") if f.id == firing
                           and f.status == "running"]), 30, "the launch to fire")
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        watcher.stop(timeout=30)


# -- Ctrl-C and SIGTERM on `nbripple watch` -------------------------------------------
def _waiting_notebook(path: Path) -> Path:
    """A notebook that waits until its ``marker`` file exists, then commits ``done``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell('marker = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os, time\n"
        "import nbripple as nr\n"
        "while not os.path.exists(marker):\n"
        "    time.sleep(0.05)\n"
        "nr.Artifact('done').create_from('finished')")]
    nbformat.write(nb, str(path))
    return path


def _plan_runs(ws: nr.Workspace, plan: str) -> list[nr.Execution]:
    found = [e for e in ws.executions(kind="notebook", limit=100)
             if (e.trigger or {}).get("plan") == plan]
    ws.catalog.close()
    return found


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_stopped_watcher_owes_its_run_to_the_next_one(home, ws, tmp_path, how):
    marker = tmp_path / "go"
    notebook = _waiting_notebook(tmp_path / "waits.ipynb")
    nr.register(nr.LaunchPlan("slow", notebook=notebook, parameters={"marker": str(marker)}))
    nr.activate("slow")
    lp.launch("slow")
    ws.catalog.close()
    log = open(tmp_path / "watch.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*CLI, "watch", "--grace-period", "1", "--poll-interval", "0.05"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        (run,) = wait_for(lambda: [e for e in _plan_runs(ws, "slow")
                                   if e.status == "running" and e.pid != proc.pid], 120,
                          "the slow run to start")
        assert run.pid is not None
        assert os.getsid(run.pid) != os.getsid(proc.pid)  # its own session
        if how == "ctrl-c":  # the terminal signals the whole foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    wait_for(lambda: not pid_alive(run.pid, started_before=run.started_at), 30,
             "the run process to end")
    (stopped,) = _plan_runs(ws, "slow")
    assert stopped.status == "cancelled"
    (firing,) = lp.firings("slow")
    assert firing.status == "pending", firing.reason
    assert ws.catalog.get_artifact("done") is None

    marker.write_text("go")
    watcher = Watcher(poll_interval=0.05, housekeeping_s=0.5)
    try:
        assert watcher.wait_idle(180)
    finally:
        watcher.stop(timeout=60)
    (firing,) = lp.firings("slow")
    assert firing.status == "succeeded", firing.reason
    runs = _plan_runs(ws, "slow")
    assert sorted(e.status for e in runs) == ["cancelled", "succeeded"]
    assert [v.version for v in nr.versions("done")] == [1]


# -- executions whose process is gone ---------------------------------------------------
HOLDS_EXECUTION = """
import sys, time
import nbripple as nr
ws = nr.Workspace(sys.argv[1])
if sys.argv[2] == "interactive":
    print(ws.interactive_execution_id(), flush=True)
    ws.release()
    time.sleep(120)
with ws.external_execution("a script") as execution_id:
    print(execution_id, flush=True)
    ws.release()
    time.sleep(120)
"""


def _killed_holder(home: Path, kind: str) -> str:
    proc = subprocess.Popen([sys.executable, "-c", HOLDS_EXECUTION, str(home), kind],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    execution_id = proc.stdout.readline().strip()
    proc.kill()
    proc.wait()
    proc.stdout.close()
    return execution_id


@pytest.mark.parametrize("kind", ["interactive", "external"])
def test_dead_execution_is_marked_by_the_listing(home, ws, kind):
    execution_id = _killed_holder(home, kind)
    assert ws._catalog.get_execution(execution_id).status == "running"  # type: ignore[union-attr]
    (found,) = [e for e in ws.executions(kind=kind, sweep=True) if e.id == execution_id]
    assert found.status == "failed"
    assert found.error is not None and found.error["ename"] == "Orphaned"
    assert "its process ended" in found.error["evalue"]
    assert found.finished_at is not None


@pytest.mark.parametrize("kind", ["interactive", "external"])
def test_dead_execution_is_marked_by_any_process_opening_the_catalog(home, ws, kind):
    execution_id = _killed_holder(home, kind)
    opens = "import sys, nbripple as nr; nr.Workspace(sys.argv[1]).catalog.list_artifacts()"
    subprocess.run([sys.executable, "-c", opens, str(home)], check=True)
    found = ws._catalog.get_execution(execution_id)
    assert found is not None and found.status == "failed"


def test_killed_nbripple_run_is_marked_by_nbripple_executions(home, ws, tmp_path):
    proc = subprocess.Popen([*CLI, "run", str(FIXTURES / "sleeps.ipynb"), "-p", "seconds",
                             "120"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        def running() -> list[nr.Execution]:
            found = [e for e in ws._catalog.list_executions(kind="notebook", status="running")
                     if e.pid == proc.pid]
            ws.catalog.close()
            return found
        (run,) = wait_for(running, 120, "the run to start")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its kernel
        proc.wait()
    listed = subprocess.run([*CLI, "executions", "--json"], capture_output=True, text=True,
                            check=True)
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[run.id]["status"] == "failed", rows[run.id]
    found = ws._catalog.get_execution(run.id)
    assert found is not None and found.error is not None
    assert found.error["ename"] == "Orphaned"


def test_reused_pid_and_stale_heartbeat_count_as_gone(home, ws):
    catalog = ws._catalog
    reused = make_execution("interactive", label="old")
    sleeper = subprocess.Popen(["sleep", "60"])  # started after the execution
    try:
        catalog.create_execution(replace(reused, pid=sleeper.pid,
                                         started_at=datetime.now(UTC) - timedelta(minutes=5)))
        far = datetime.now(UTC) - timedelta(minutes=5)
        stale = replace(make_execution("notebook", label="elsewhere"), host="elsewhere",
                        pid=1, heartbeat_at=far)
        fresh = replace(make_execution("notebook", label="beating"), host="elsewhere",
                        pid=1, heartbeat_at=datetime.now(UTC))
        unknown = replace(make_execution("interactive", label="remote"), host="elsewhere",
                          pid=1, started_at=far)
        mine = make_execution("interactive", label="me")  # this process: alive
        for execution in (stale, fresh, unknown, mine):
            catalog.create_execution(execution)
        statuses = {e.id: e.status for e in ws.executions(limit=100)}
        assert statuses[reused.id] == "failed"
        assert statuses[stale.id] == "failed"
        assert statuses[fresh.id] == "running"
        assert statuses[unknown.id] == "running"  # no heartbeat: nothing proves it gone
        assert statuses[mine.id] == "running"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_never_firing_plan_is_not_activated(home, ws):
    nr.register(nr.LaunchPlan("good", notebook=FIXTURES / "echo.ipynb",
                              parameters={"text": "hi"}, schedule="0 2 * * *"))
    spec = {**lp.get_plan("good").spec, "name": "never", "schedule": "0 0 30 2 *"}
    ws.catalog.register_plan("never", spec, lp.spec_hash(spec))
    result = CliRunner().invoke(main, ["activate", "never"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: plan never cannot be activated: scheduling "
                                    "failed: schedule '0 0 30 2 *' never fires")
    assert len(result.stderr.splitlines()) == 1
    assert lp.get_plan("never").active is False
