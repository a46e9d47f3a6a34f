"""The watcher: fires active launch plans on new artifact versions and on schedules.

It polls cheaply — the catalog's change token (for the embedded catalog, a ``stat``
of its files) — and opens the catalog only when something changed, a schedule tick
or a retry is due, or for housekeeping (orphaned runs) every few seconds. Each
firing is recorded with a unique key, and its run's execution is created in the
same transaction that claims it (``start_firing``), so every (plan version,
triggering version) and every (plan, schedule tick) starts one execution, across
restarts and with several watchers on one catalog.

Use it in the foreground (``nbripple watch``, :meth:`Watcher.run_forever`) or as a
background thread in a kernel or a server (:meth:`Watcher.start` / :meth:`stop`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .executors import Executor, RunJob
from .launchplans import spec_parameters, trigger_matches
from .model import Execution, Firing, PlanRecord
from .pids import pid_alive
from .registry import make_executor
from .service.executions import make_execution, run_error
from .service.plans import due_ticks
from .workspace import Workspace, current, new_execution_id

log = logging.getLogger("nbripple.watcher")

MAX_RECOVERIES = 3
STALE_HEARTBEAT_S = 60.0
MISFIRE_GRACE_S = 10.0  # catchup="none": a tick later than this is missed, not late


class Watcher:
    """Fire active plans: on matching new versions, on cron ticks, with retries.

    Args:
        home: the nbripple home (default: the usual resolution).
        max_parallel: runs at once from this watcher (default: the number of cores).
        poll_interval: seconds between checks of the catalog's change token.
        clock: returns the current time (aware); tests pass a fake clock.
        executor: where runs execute (default: :class:`LocalExecutor`).
        grace_period_s: on stop, how long running executions may finish before they
            are cancelled.
        housekeeping_s: how often to look for orphaned executions.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        max_parallel: int | None = None,
        poll_interval: float | None = None,
        clock: Callable[[], datetime] | None = None,
        executor: Executor | None = None,
        grace_period_s: float | None = None,
        housekeeping_s: float | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        self.ws = workspace or (Workspace(home) if home is not None else current())
        self.catalog: Catalog = self.ws.catalog
        config = self.ws.settings.watcher  # [watcher] of config.toml; arguments win
        self.max_parallel = max_parallel or config.effective_max_parallel
        self.poll_interval = config.poll_interval_s if poll_interval is None else poll_interval
        self.clock = clock or (lambda: datetime.now(UTC))
        self.executor: Executor = executor or make_executor(self.ws.settings)
        self.grace_period_s = config.grace_period_s if grace_period_s is None \
            else grace_period_s
        self.housekeeping_s = config.housekeeping_s if housekeeping_s is None \
            else housekeeping_s
        self.id = uuid.uuid4().hex[:12]
        self.host = socket.gethostname()
        self._running: dict[str, str] = {}  # execution id -> firing id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor: int | None = None
        self._signature: Hashable | None = None
        self._next_housekeeping = 0.0
        self._wake_at: datetime | None = None
        self._accepting = True
        self._shut_down = False
        self.passes = 0

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> Watcher:
        """Run in a background thread (for a kernel or a server); returns self."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._shut_down = False
        self._accepting = True
        self._thread = threading.Thread(target=self.run_forever, kwargs={"signals": False},
                                        name=f"nbripple-watcher-{self.id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking work, let running executions finish (up to the grace period),
        cancel the rest, and return when the watcher has stopped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        elif not self._shut_down:  # driven by run_once(): shut the executor down here
            self._shutdown()

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_forever(self, *, signals: bool = True) -> None:
        """Watch until stopped (SIGINT/SIGTERM when ``signals`` and in the main thread)."""
        if signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: self._stop.set())
        self.catalog.watcher_heartbeat(self.id, os.getpid(), self.host)
        start = getattr(self.executor, "start", None)  # optional in custom executors
        if start is not None:
            start(os.getpid())
        log.info("watcher %s started on %s", self.id, self.ws.home)
        try:
            while not self._stop.is_set():
                self.run_once(force=False)
                self._stop.wait(self.poll_interval)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        self._accepting = False
        deadline = time.monotonic() + self.grace_period_s
        while self._running and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        if self._running:
            stopped = self.executor.cancel_all()
            log.warning("cancelled %d running execution(s) at shutdown", len(stopped))
            self._reap(cancelled=True)
        self.executor.shutdown()
        self.catalog.watcher_heartbeat(self.id, os.getpid(), self.host, stopped=True)
        self.catalog.close()
        log.info("watcher %s stopped", self.id)

    # -- one pass ---------------------------------------------------------------
    def run_once(self, *, force: bool = True) -> bool:
        """Do one pass if anything may have changed (always when ``force``).

        Returns whether a pass ran. Tests and embedders may call it directly.
        """
        now = self.clock()
        # Take the signature before the pass: a commit made while it runs shows up
        # as a change at the next poll (the pass's own writes cost one extra pass).
        signature = self.catalog.change_token()
        changed = signature != self._signature
        ended = self.executor.ended() if self._running else []
        housekeeping = time.monotonic() >= self._next_housekeeping
        due = self._wake_at is not None and now >= self._wake_at
        if not (force or changed or ended or housekeeping or due):
            return False
        self._signature = signature
        try:
            self._pass(now, ended, housekeeping)
        finally:
            self.catalog.close()  # never hold the file between passes
        self.passes += 1
        return True

    def _pass(self, now: datetime, ended: list[str], housekeeping: bool) -> None:
        self._reap(ended)
        plans = {p.name: p for p in self.catalog.list_plans(active_only=True)}
        self._wake_at = None
        self._scan_events(plans)
        self._schedule(plans, now)
        if housekeeping:
            self._next_housekeeping = time.monotonic() + self.housekeeping_s
            self._recover_orphans(now)
            self.catalog.watcher_heartbeat(self.id, os.getpid(), self.host)
        if self._accepting and not self._stop.is_set():
            self._dispatch(plans, now)

    # -- events -> firings ------------------------------------------------------
    def _scan_events(self, plans: dict[str, PlanRecord]) -> None:
        if self._cursor is None:
            self._cursor = self.catalog.watch_cursor()
        triggered = [p for p in plans.values() if p.spec.get("trigger")]
        while True:
            events = self.catalog.events_after(self._cursor, 500)
            if not events:
                return
            for event in events:
                for plan in triggered:
                    if event.seq > (plan.activated_seq or 0):
                        self._consider(plan, event.name, event.version, event.seq)
                self._cursor = event.seq
            self.catalog.advance_watch_cursor(self._cursor)

    def _consider(self, plan: PlanRecord, name: str, version: int, seq: int) -> None:
        record = self.catalog.get_version(name, version)
        if record is None or not trigger_matches(plan.spec, name, record.partitions):
            return
        producer = self.catalog.get_execution(record.execution_id) \
            if record.execution_id else None
        depth = (producer.chain_depth if producer else 0) + 1
        key = f"v{plan.version}:event:{seq}"
        limit = int(plan.spec["max_chain_depth"])
        if depth >= limit:
            reason = (f"stopped at max_chain_depth={limit}: {name}@{version} would start a run "
                      f"at chain depth {depth}")
            created = self.catalog.add_firing(
                plan=plan.name, plan_version=plan.version, dedup_key=key, kind="artifact",
                chain_depth=depth, status="skipped", event_seq=seq, trigger_artifact=name,
                trigger_version=version, reason=reason,
            )
            if created:
                self.catalog.update_plan_state(plan.name, stopped_reason=reason)
                log.warning("plan %s: %s", plan.name, reason)
            return
        self.catalog.add_firing(
            plan=plan.name, plan_version=plan.version, dedup_key=key, kind="artifact",
            chain_depth=depth, event_seq=seq, trigger_artifact=name, trigger_version=version,
        )

    # -- schedules -> firings ---------------------------------------------------
    def _schedule(self, plans: dict[str, PlanRecord], now: datetime) -> None:
        for plan in plans.values():
            if not plan.spec.get("schedule"):
                continue
            due, wake_at = due_ticks(plan, now)
            if wake_at is not None:
                self._wake(wake_at)
            if not due:
                continue
            mode = plan.spec.get("catchup", "latest")
            grace = timedelta(seconds=max(MISFIRE_GRACE_S, 2 * self.poll_interval))
            if mode == "all":
                fire = due
            elif mode == "none":
                fire = [due[-1]] if now - due[-1] <= grace else []
            else:
                fire = due[-1:]
            for tick in fire:
                self.catalog.add_firing(
                    plan=plan.name, plan_version=plan.version, dedup_key=f"tick:{tick.isoformat()}",
                    kind="schedule", chain_depth=0, tick=tick,
                )
            self.catalog.update_plan_state(plan.name, schedule_anchor=due[-1])

    def _wake(self, at: datetime) -> None:
        if self._wake_at is None or at < self._wake_at:
            self._wake_at = at

    # -- firings -> runs ----------------------------------------------------------
    def _dispatch(self, plans: dict[str, PlanRecord], now: datetime) -> None:
        pending: list[Firing] = self.catalog.firings(status="pending")
        if not pending:
            return
        running = self.catalog.firings(status="running")
        per_plan: dict[str, int] = {}
        for firing in running:
            per_plan[firing.plan] = per_plan.get(firing.plan, 0) + 1
        specs: dict[tuple[str, int], dict[str, Any]] = {}
        for firing in pending:
            if firing.next_attempt_at is not None and firing.next_attempt_at > now:
                self._wake(firing.next_attempt_at)
                continue
            plan = plans.get(firing.plan)
            if plan is None:
                self.catalog.update_firing(firing.id, status="skipped",
                                           reason="the plan was deactivated before it ran")
                continue
            if len(self._running) >= self.max_parallel:
                return
            if per_plan.get(firing.plan, 0) >= int(plan.spec.get("concurrency", 1)):
                continue
            key = (firing.plan, firing.plan_version)
            if key not in specs:
                specs[key] = dict(self.catalog.plan_versions(firing.plan)).get(
                    firing.plan_version, plan.spec)
            if self._start(firing, specs[key]):
                per_plan[firing.plan] = per_plan.get(firing.plan, 0) + 1

    def _start(self, firing: Firing, spec: dict[str, Any]) -> bool:
        execution_id = new_execution_id()
        trigger: dict[str, Any] = {"type": firing.kind, "plan": firing.plan,
                                   "plan_version": firing.plan_version, "firing": firing.id}
        if firing.trigger_artifact is not None:
            trigger.update(artifact=firing.trigger_artifact, version=firing.trigger_version)
        if firing.tick is not None:
            trigger["tick"] = firing.tick.isoformat()
        try:
            parameters = spec_parameters(spec, firing)
        except Exception as exc:
            self.catalog.update_firing(firing.id, status="failed", reason=str(exc))
            return False
        execution = make_execution(
            "notebook", id=execution_id, status="queued", notebook=spec["notebook"],
            trigger=trigger, trigger_artifact=firing.trigger_artifact,
            trigger_version=firing.trigger_version, chain_depth=firing.chain_depth,
            label=Path(spec["notebook"]).name,
        )
        if not self.catalog.start_firing(firing.id, execution):
            return False  # another watcher took it
        self._running[execution_id] = firing.id
        self.executor.submit(RunJob(
            execution_id=execution_id, home=str(self.ws.home), notebook=spec["notebook"],
            parameters=parameters, kernel_name=spec.get("kernel_name"),
            timeout=spec.get("timeout"), watcher_pid=os.getpid(),
        ))
        log.info("plan %s fired (%s) -> execution %s", firing.plan, firing.dedup_key,
                 execution_id)
        return True

    # -- outcomes -----------------------------------------------------------------
    def _reap(self, ended: list[str] | None = None, *, cancelled: bool = False) -> None:
        if ended is None:
            ended = self.executor.ended()
        if cancelled:
            ended = [*ended, *self._running]
        for execution_id in dict.fromkeys(ended):
            firing_id = self._running.pop(execution_id, None)
            if firing_id is None:
                continue
            execution = self.catalog.get_execution(execution_id)
            if execution is not None and execution.status in ("queued", "running"):
                status = "cancelled" if cancelled else "failed"
                self.catalog.finish_execution(
                    execution_id, commit_staged=False, status=status,
                    finished_at=datetime.now(UTC),
                    error=run_error("Cancelled" if cancelled else "RunProcessDied",
                                    "the run's process ended before the run finished"),
                )
                execution = self.catalog.get_execution(execution_id)
            self._settle(firing_id, execution)

    def _settle(self, firing_id: str, execution: Execution | None) -> None:
        firing = self.catalog.get_firing(firing_id)
        if firing is None:
            return
        status = execution.status if execution else "failed"
        if status == "succeeded":
            self.catalog.update_firing(firing_id, status="succeeded", reason=None)
            return
        if status == "cancelled":
            self.catalog.update_firing(firing_id, status="cancelled",
                                       reason="cancelled when the watcher stopped")
            return
        plan = self.catalog.plan_versions(firing.plan)
        spec = dict(plan).get(firing.plan_version, {})
        retries = int(spec.get("retries", 0))
        tries = firing.attempts - firing.recoveries
        error = (execution.error or {}) if execution else {}
        reason = f"{error.get('ename', 'failed')}: {error.get('evalue', '')}".strip()
        if tries <= retries:
            delay = float(spec.get("retry_delay_s", 1.0)) * (2 ** (tries - 1))
            self.catalog.update_firing(
                firing_id, status="pending", reason=f"retrying after {reason}",
                next_attempt_at=self.clock() + timedelta(seconds=delay),
            )
        else:
            self.catalog.update_firing(firing_id, status="failed", reason=reason)

    def _recover_orphans(self, now: datetime) -> None:
        """Mark runs whose process died as failed, and owe their firings again; settle
        firings whose run ended while no watcher was looking."""
        self._reconcile_firings()
        for status in ("queued", "running"):
            for execution in self.catalog.list_executions(status=status, kind="notebook",
                                                          limit=10_000):
                if execution.id in self._running or not _is_orphan(execution, self.host):
                    continue
                self.catalog.finish_execution(
                    execution.id, commit_staged=False, status="failed",
                    finished_at=datetime.now(UTC),
                    error=run_error("Orphaned", f"its process (pid {execution.pid} on "
                                    f"{execution.host}) died before the run finished"),
                )
                log.warning("execution %s was orphaned; marked failed", execution.id)
                for firing in self.catalog.firings(status="running"):
                    if firing.execution_id != execution.id:
                        continue
                    if firing.recoveries < MAX_RECOVERIES:
                        self.catalog.update_firing(
                            firing.id, status="pending", recoveries=firing.recoveries + 1,
                            reason=f"re-run: execution {execution.id} was orphaned",
                        )
                    else:
                        self.catalog.update_firing(firing.id, status="failed",
                                                   reason="orphaned too many times")

    def _reconcile_firings(self) -> None:
        for firing in self.catalog.firings(status="running"):
            if firing.execution_id is None or firing.execution_id in self._running:
                continue
            execution = self.catalog.get_execution(firing.execution_id)
            if execution is None:
                self.catalog.update_firing(
                    firing.id, status="pending", recoveries=firing.recoveries + 1,
                    reason="re-run: its execution was never recorded",
                )
            elif execution.status not in ("queued", "running"):
                self._settle(firing.id, execution)

    # -- helpers for tests, demos and notebooks ---------------------------------------
    def wait_idle(self, timeout: float = 60.0, settle: float = 0.3) -> bool:
        """Block until no run is in flight and nothing is pending (True), or timeout."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if not self.is_running:  # nobody else drives the passes
                self.run_once(force=False)
            busy = bool(self._running) or bool(self.catalog.firings(status=["pending", "running"]))
            self.catalog.close()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return True
            time.sleep(0.05)
        return False


def _is_orphan(execution: Execution, host: str) -> bool:
    if execution.host == host and execution.pid:
        # a process that started after the execution merely reuses its pid
        return not pid_alive(execution.pid, started_before=execution.started_at)
    beat = execution.heartbeat_at or execution.started_at
    return (datetime.now(UTC) - beat).total_seconds() > STALE_HEARTBEAT_S


__all__ = ["Watcher"]
