"""The watcher with real papermill runs: triggers, chains, crashes, two watchers, cron."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import nbripple as nr
from nbripple.executors import LocalExecutor, RunJob
from nbripple.launchplans import load_plans_file
from nbripple.phases import PHASES
from nbripple.watcher import Watcher
from serving import both_catalogs
from waiting import wait_for

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "notebooks"
FIXTURES = Path(__file__).parent / "notebooks"

WATCH_SCRIPT = """
import logging, sys
import nbripple as nr
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
nr.Watcher(sys.argv[1], poll_interval=0.05, housekeeping_s=0.5,
           grace_period_s=float(sys.argv[2])).run_forever()
"""

pytestmark = both_catalogs  # every watcher rule, on an embedded and a served home


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    target = tmp_path / "examples"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns(".nbripple", "*.md"))
    return target


@pytest.fixture
def watcher(home: Path) -> Iterator[Watcher]:
    w = Watcher(poll_interval=0.05, housekeeping_s=0.5)
    yield w
    w.stop(timeout=60)


class WatcherProcess:
    """`nr.Watcher(home).run_forever()` in its own Python process."""

    def __init__(self, home: Path, grace: float = 30.0) -> None:
        self.log = home.parent / f"watcher-{time.monotonic_ns()}.log"
        self._log = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WATCH_SCRIPT, str(home), str(grace)],
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


def register_work_plan(nbdir: Path, **options: object) -> None:
    work_item = nr.Artifact("work_item")
    plan = nr.LaunchPlan("work", notebook=nbdir / "triggered_work.ipynb",
                         trigger=nr.OnArtifact(work_item, inputs={"item": work_item}),
                         **options)  # type: ignore[arg-type]
    nr.register(plan)
    nr.activate("work")


def executions_of(ws: nr.Workspace, plan: str) -> list[nr.Execution]:
    found = [e for e in ws.executions(kind="notebook", limit=1000)
             if (e.trigger or {}).get("plan") == plan]
    ws.catalog.close()  # polled in loops: leave the file to the watchers in between
    return found


# -- blessed model ------------------------------------------------------------------
def test_blessed_version_fires_exactly_one_ops_run_with_lineage(home, ws, examples, watcher):
    for plan in load_plans_file(examples / "blessed_model" / "plans.py"):
        nr.register(plan)
    nr.activate("trigger_ops")
    watcher.start()
    producer = examples / "blessed_model" / "product_development.ipynb"

    unblessed = nr.run(producer, parameters={"blessed": "false"})
    assert unblessed.status == "succeeded", unblessed.error
    assert watcher.wait_idle(60)
    assert executions_of(ws, "trigger_ops") == []

    blessed = nr.run(producer, parameters={"blessed": "true", "seed": 1})
    assert blessed.status == "succeeded", blessed.error
    assert watcher.wait_idle(120)
    runs = executions_of(ws, "trigger_ops")
    assert len(runs) == 1
    ops = runs[0]
    assert ops.status == "succeeded", ops.error
    assert [(i.ref, i.parameter) for i in ops.inputs] == [("blessed_model@2", "model")]
    assert (ops.trigger_artifact, ops.trigger_version) == ("blessed_model", 2)
    assert [v.ref for v in ops.outputs] == ["prediction@1"]
    # every phase of the hop is recorded, in order (see nbripple.phases)
    phases = ops.phases or {}
    assert list(phases) == list(PHASES)
    assert list(phases.values()) == sorted(phases.values())
    assert blessed.outputs[0].created_at.isoformat() <= phases["detected"]

    graph = nr.lineage("prediction@1", depth=None, direction="up")
    edges = {(e.source, e.target, e.kind) for e in graph.edges}
    assert ("version:blessed_model@2", f"execution:{ops.id}", "triggered") in edges
    assert ("version:blessed_model@2", f"execution:{ops.id}", "consumed") in edges
    assert (f"execution:{ops.id}", "version:prediction@1", "produced") in edges
    assert "version:blessed_model@1" not in {n.id for n in graph.nodes}


# -- a self-triggering chain ----------------------------------------------------------
def test_find_next_prime_runs_until_max_chain_depth(home, ws, examples, watcher):
    for plan in load_plans_file(examples / "find_next_prime" / "plans.py"):
        nr.register(plan)
    nr.activate("next_prime")
    watcher.start()
    first = nr.run(examples / "find_next_prime" / "find_next_prime.ipynb")
    assert first.status == "succeeded", first.error
    assert watcher.wait_idle(240, settle=1.0)
    versions = sorted(nr.versions("largest_baillie_wagstaff"), key=lambda v: v.version)
    assert [v.version for v in versions] == list(range(1, 11))
    assert [v.load() for v in versions] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    plan = nr.launchplans.get_plan("next_prime")
    assert plan.stopped_reason is not None and "max_chain_depth=10" in plan.stopped_reason
    firings = ws.catalog.firings(plan="next_prime")
    assert sorted(f.status for f in firings) == ["skipped"] + ["succeeded"] * 9
    depths = sorted(e.chain_depth for e in executions_of(ws, "next_prime"))
    assert depths == list(range(1, 10))


# -- crashes --------------------------------------------------------------------------
def test_kill_9_during_a_triggered_run_loses_nothing_and_fires_nothing_twice(home, ws):
    register_work_plan(FIXTURES, parameters={"seconds": 4})
    item = nr.Artifact("work_item")
    first = WatcherProcess(home)
    try:
        item.create_from("first")
        ws.catalog.close()
        running = wait_for(
            lambda: [e for e in executions_of(ws, "work") if e.status == "running"],
            90, "the triggered run to start",
        )
        ws.catalog.close()
        orphan = running[0]  # type: ignore[index]
        first.kill9()
    finally:
        first.stop()
    item.create_from("second")  # committed while no watcher runs
    ws.catalog.close()
    wait_for(lambda: not _alive(orphan.pid), 20, "the run process to die with its watcher")

    second = WatcherProcess(home)
    try:
        def settled() -> bool:
            firings = ws.catalog.firings(plan="work")
            ws.catalog.close()
            return len(firings) == 2 and all(f.status == "succeeded" for f in firings)

        wait_for(settled, 180, "both firings to succeed after the restart")
    finally:
        assert second.terminate() == 0
    executions = executions_of(ws, "work")
    assert ws.execution(orphan.id).status == "failed"
    assert ws.execution(orphan.id).error["ename"] == "Orphaned"  # type: ignore[index]
    assert not [e for e in executions if e.status in ("queued", "running")]
    succeeded = [e for e in executions if e.status == "succeeded"]
    assert sorted(e.trigger_version for e in succeeded) == [1, 2]  # type: ignore[type-var]
    assert sorted(nr.load(v) for v in nr.versions("done")) == ["first", "second"]


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_two_watchers_fire_every_event_exactly_once(home, ws):
    register_work_plan(FIXTURES, concurrency=4)
    watchers = [WatcherProcess(home), WatcherProcess(home)]
    try:
        item = nr.Artifact("work_item")
        for i in range(6):
            item.create_from(f"item-{i}")
        ws.catalog.close()

        def done() -> bool:
            firings = ws.catalog.firings(plan="work")
            ws.catalog.close()
            return len(firings) == 6 and all(f.status == "succeeded" for f in firings)

        wait_for(done, 240, "six triggered runs")
    finally:
        codes = [w.terminate() for w in watchers]
    assert codes == [0, 0]
    runs = executions_of(ws, "work")
    assert len(runs) == 6
    assert sorted(e.trigger_version for e in runs) == [1, 2, 3, 4, 5, 6]  # type: ignore[type-var]
    assert sorted(nr.load(v) for v in nr.versions("done")) == [f"item-{i}" for i in range(6)]


def test_sigterm_lets_runs_finish_within_grace_then_cancels_and_owes(home, ws):
    register_work_plan(FIXTURES, parameters={"seconds": 60})
    proc = WatcherProcess(home, grace=1.0)
    try:
        nr.Artifact("work_item").create_from("slow")
        ws.catalog.close()
        wait_for(lambda: [e for e in executions_of(ws, "work") if e.status == "running"],
                 90, "the slow run to start")
        ws.catalog.close()
        started = time.monotonic()
        assert proc.terminate(timeout=60) == 0
        assert time.monotonic() - started < 30
    finally:
        proc.stop()
    (run,) = executions_of(ws, "work")
    assert run.status == "cancelled"
    assert ws.catalog.get_artifact("done") is None
    (firing,) = ws.catalog.firings(plan="work")
    assert firing.status == "pending"  # stopped with its watcher: owed to the next one
    assert firing.reason is not None and "owed again" in firing.reason


# -- retries ------------------------------------------------------------------------
class TimedExecutor:
    """The local executor, noting when the watcher submits each job and when it learns
    that a job ended (the moment it schedules the retry)."""

    def __init__(self) -> None:
        self.inner = LocalExecutor()
        self.submitted: list[datetime] = []
        self.seen_ended: list[datetime] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def submit(self, job: RunJob) -> None:
        self.submitted.append(datetime.now(UTC))
        self.inner.submit(job)

    def ended(self) -> list[str]:
        done = self.inner.ended()
        self.seen_ended.extend(datetime.now(UTC) for _ in done)
        return done


def test_failed_triggered_run_is_retried_with_backoff(home, ws):
    delay = 1.0
    trigger = nr.Artifact("work_item")
    plan = nr.LaunchPlan("flaky", notebook=FIXTURES / "fails_in_cell_3.ipynb",
                         trigger=nr.OnArtifact(trigger), retries=2, retry_delay_s=delay)
    nr.register(plan)
    nr.activate("flaky")
    executor = TimedExecutor()
    watcher = Watcher(poll_interval=0.05, housekeeping_s=0.5, executor=executor).start()
    try:
        trigger.create_from("go")
        assert watcher.wait_idle(120, settle=2 * delay + 1.0)
    finally:
        watcher.stop(timeout=60)
    runs = executions_of(ws, "flaky")
    assert [e.status for e in runs] == ["failed"] * 3
    (firing,) = ws.catalog.firings(plan="flaky")
    assert firing.status == "failed" and firing.attempts == 3
    assert firing.reason is not None and "boom in cell 3" in firing.reason
    # The retry after attempt k is submitted retry_delay_s * 2**(k-1) after the watcher
    # saw attempt k end, no sooner: 1 s, then 2 s (a constant delay would give 1 s twice).
    assert len(executor.submitted) == 3 and len(executor.seen_ended) == 3
    waits = [(submitted - ended).total_seconds()
             for ended, submitted in zip(executor.seen_ended, executor.submitted[1:],
                                         strict=False)]
    assert waits[0] >= delay, waits
    assert waits[1] >= 2 * delay, waits
    assert ws.catalog.get_artifact("doomed") is None


def test_retry_delays_double_with_each_attempt(home, ws, recording_executor):
    """Each failed attempt is retried after retry_delay_s * 2**(attempt - 1), on the
    watcher's clock: the firing's next_attempt_at says exactly when."""
    trigger = nr.Artifact("work_item")
    nr.register(nr.LaunchPlan("flaky", notebook=FIXTURES / "fails_in_cell_3.ipynb",
                              trigger=nr.OnArtifact(trigger), retries=3, retry_delay_s=5))
    nr.activate("flaky")
    clock = FakeClock(datetime.now(UTC))
    executor = recording_executor(end=True)  # every attempt 'dies' at once
    w = Watcher(clock=clock, executor=executor)
    trigger.create_from("go")
    w.run_once()  # fires the first attempt
    waits = []
    for attempt in range(1, 5):
        assert len(executor.jobs) == attempt
        w.run_once()  # learns that the attempt ended: a retry is due later, or none
        (firing,) = ws.catalog.firings(plan="flaky")
        if attempt == 4:
            assert (firing.status, firing.attempts) == ("failed", 4)
            break
        assert (firing.status, firing.attempts) == ("pending", attempt)
        waits.append((firing.next_attempt_at - clock.now).total_seconds())
        clock.advance(seconds=waits[-1] - 0.5)
        w.run_once()
        assert len(executor.jobs) == attempt  # not yet
        clock.advance(seconds=0.5)
        w.run_once()  # due now: the next attempt starts
    assert waits == [5, 10, 20]


# -- schedules ------------------------------------------------------------------------
class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def test_cron_plan_fires_on_time_and_coalesces_missed_ticks(home, ws):
    plan = nr.LaunchPlan("every_minute", notebook=FIXTURES / "trivial.ipynb",
                         schedule="* * * * *")
    nr.register(plan)
    activated = nr.activate("every_minute").activated_at
    assert activated is not None
    clock = FakeClock(activated)
    w = Watcher(clock=clock, poll_interval=0.05)
    try:
        w.run_once()
        assert ws.catalog.firings(plan="every_minute") == []
        first_tick = (activated + timedelta(minutes=1)).replace(second=0, microsecond=0)
        clock.now = first_tick + timedelta(seconds=1)
        w.run_once()
        (firing,) = ws.catalog.firings(plan="every_minute")
        assert firing.tick == first_tick and firing.kind == "schedule"
        run = wait_for(lambda: [e for e in executions_of(ws, "every_minute")
                                if e.status == "succeeded"] and w.run_once(), 60, "the run")
        assert run
        w.run_once()  # the same tick never fires twice
        assert len(ws.catalog.firings(plan="every_minute")) == 1

        clock.advance(minutes=5)  # five ticks missed while "down": one coalesced run
        w.run_once()
        firings = ws.catalog.firings(plan="every_minute")
        assert len(firings) == 2
        assert max(f.tick for f in firings if f.tick) == first_tick + timedelta(minutes=5)
        assert w.wait_idle(60)
    finally:
        w.stop()
    assert all(e.status == "succeeded" for e in executions_of(ws, "every_minute"))
    assert all(e.chain_depth == 0 for e in executions_of(ws, "every_minute"))


@pytest.mark.parametrize(("mode", "expected"), [("all", 6), ("latest", 2), ("none", 1)])
def test_catchup_modes(home, ws, recording_executor, mode, expected):
    plan = nr.LaunchPlan(f"catchup_{mode}", notebook=FIXTURES / "trivial.ipynb",
                         schedule="* * * * *", catchup=mode)
    nr.register(plan)
    activated = nr.activate(plan.name).activated_at
    assert activated is not None
    first_tick = (activated + timedelta(minutes=1)).replace(second=0, microsecond=0)
    clock = FakeClock(first_tick + timedelta(seconds=2))
    w = Watcher(clock=clock, executor=recording_executor())
    w.run_once()  # the first tick, on time
    clock.advance(minutes=5, seconds=30)  # then five missed minutes
    w.run_once()
    ticks = sorted(f.tick for f in ws.catalog.firings(plan=plan.name) if f.tick)
    assert len(ticks) == expected


def test_versions_committed_before_activation_do_not_fire(home, ws, recording_executor):
    item = nr.Artifact("work_item")
    item.create_from("before")
    register_work_plan(FIXTURES)
    recorder = recording_executor()
    w = Watcher(executor=recorder)
    w.run_once()
    assert ws.catalog.firings(plan="work") == []
    item.create_from("after")
    w.run_once()
    (firing,) = ws.catalog.firings(plan="work")
    assert firing.trigger_version == 2
    assert len(recorder.jobs) == 1
    _ = UTC
