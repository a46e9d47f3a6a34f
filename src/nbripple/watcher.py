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

import contextlib
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
from .errors import CatalogLockedError, SchemaVersionError
from .executors import Executor, RunJob
from .launchplans import spec_parameters
from .model import Execution, Firing, PlanRecord
from .phases import stamp
from .registry import make_executor
from .service.executions import make_execution, run_error, sweep_dead_executions
from .service.firings import SHUTDOWN_CANCEL, reconcile_firings, settle_firing
from .service.plans import due_ticks
from .triggering import fire_on_events
from .workspace import Workspace, current, new_execution_id

log = logging.getLogger("nbripple.watcher")

MISFIRE_GRACE_S = 10.0  # catchup="none": a tick later than this is missed, not late
MAX_BACKOFF_S = 30.0  # a failing pass is retried after at most this long
HELD_SKIP_S = 2.0  # how long a watcher woken by releases waits for one (then in line)


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
        self, home: str | os.PathLike[str] | None = None, *, max_parallel: int | None = None,
        poll_interval: float | None = None, clock: Callable[[], datetime] | None = None,
        executor: Executor | None = None, grace_period_s: float | None = None,
        housekeeping_s: float | None = None, workspace: Workspace | None = None,
    ) -> None:
        self.ws = workspace or (Workspace(home) if home is not None else current())
        self.catalog: Catalog = self.ws.catalog
        config = self.ws.settings.watcher  # [watcher] of config.toml; arguments win
        self.max_parallel = max_parallel or config.effective_max_parallel
        self.poll_interval = config.poll_interval_s if poll_interval is None else poll_interval
        self.clock = clock or (lambda: datetime.now(UTC))
        self.executor: Executor = executor or make_executor(self.ws.settings)
        self.grace_period_s = config.grace_period_s if grace_period_s is None else grace_period_s
        self.housekeeping_s = config.housekeeping_s if housekeeping_s is None else housekeeping_s
        self.id = uuid.uuid4().hex[:12]
        self.host = socket.gethostname()
        self._running: dict[str, str] = {}  # execution id -> firing id
        self._stop = threading.Event()
        self._woken = threading.Event()  # set by notify(): something was committed
        self._notified = False
        self._thread: threading.Thread | None = None
        self._cursor: int | None = None
        self._signature: Hashable | None = None
        self._digest: Any = None  # the catalog's watch_state digest at the last pass
        self._plans: tuple[Any, dict[str, PlanRecord]] | None = None  # (stamp, active plans)
        self._next_housekeeping = 0.0
        self._wake_at: datetime | None = None
        self._accepting = True
        self._shut_down = False
        self.passes = 0
        self._unreaped: list[str] = []
        self._woken_by_releases = False  # see _held_elsewhere
        self._held_since: float | None = None
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None

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
        """Stop taking work, let runs finish (grace period), cancel the rest; wait."""
        self._stop.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        elif not self._shut_down:  # driven by run_once(): shut the executor down here
            self._shutdown()

    def notify(self, items: object = None) -> None:
        """Something was committed in this process (a :class:`ChangeFeed` listener): pass."""
        if threading.current_thread() is not self._thread:
            self._notified = True
            self._woken.set()

    def _released(self) -> None:  # another process let go of the file: pass now, not at
        if not self.consecutive_failures:  # the poll (a failing watcher's backoff holds)
            self._woken.set()

    def _sleep(self, seconds: float) -> None:  # or less if stopped or notified
        if self._woken.wait(seconds):
            self._woken.clear()

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_forever(self, *, signals: bool = True) -> None:
        """Watch until stopped (SIGINT/SIGTERM when ``signals`` and in the main thread).

        A pass that fails (a locked catalog, a full disk...) is logged and retried with
        backoff: the watcher keeps running, and :meth:`state` says why it is failing.
        """
        if signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: self._stop.set())
        self._beat()
        start = getattr(self.executor, "start", None)  # optional in custom executors
        if start is not None:
            start(os.getpid())
        watch = getattr(self.catalog, "watch_releases", None)  # embedded: see _released
        unwatch = watch(self._released) if watch is not None else None
        self._woken_by_releases = unwatch is not None
        log.info("watcher %s started on %s", self.id, self.ws.home)
        try:
            while not self._stop.is_set():
                try:
                    self.run_once(force=False)
                except Exception as exc:
                    delay = self._failed_pass(exc)
                    if not isinstance(exc, CatalogLockedError):  # a beat would wait too
                        self._beat()  # the heartbeat says the watcher is failing
                    self._sleep(delay)
                    continue
                if self.consecutive_failures:
                    log.info("watcher pass succeeded again after %d failure(s)",
                             self.consecutive_failures)
                    self.consecutive_failures = 0
                    self._beat()
                self._sleep(self.poll_interval)
        finally:
            if unwatch is not None:
                self._woken_by_releases = False
                unwatch()
            self._shutdown()

    def _failed_pass(self, exc: Exception) -> float:
        """Record a failed pass; returns how long to wait before the next try."""
        self.consecutive_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.last_error_at = datetime.now(UTC)
        delay = min(MAX_BACKOFF_S, max(self.poll_interval, 0.05)
                    * 2 ** min(self.consecutive_failures, 20))
        log.warning("watcher pass failed (%d in a row), retrying in %.1fs: %s",
                    self.consecutive_failures, delay, self.last_error)
        with contextlib.suppress(Exception):  # the next pass reopens it
            self.catalog.close()
        return float(delay)

    def _beat(self, *, stopped: bool = False) -> None:
        try:
            self.catalog.watcher_heartbeat(
                self.id, os.getpid(), self.host, stopped=stopped,
                consecutive_failures=self.consecutive_failures, last_error=self.last_error,
                last_error_at=self.last_error_at)
        except Exception as exc:  # the next pass beats again
            log.warning("watcher heartbeat not recorded: %s: %s", type(exc).__name__, exc)

    def state(self) -> dict[str, Any]:
        """This watcher's health: passes done, consecutive failed passes, the last error."""
        return {"id": self.id, "pid": os.getpid(), "host": self.host, "passes": self.passes,
                "running": len(self._running), "healthy": self.consecutive_failures == 0,
                "consecutive_failures": self.consecutive_failures,
                "last_error": self.last_error, "last_error_at": self.last_error_at}

    def _shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        self._accepting = False
        deadline = time.monotonic() + self.grace_period_s
        while self._running and time.monotonic() < deadline:
            self._guarded(self._reap)
            time.sleep(0.1)
        if self._running:
            stopped = self.executor.cancel_all()
            log.warning("cancelled %d running execution(s) at shutdown; their firings are "
                        "owed to the next watcher", len(stopped))
            self._guarded(lambda: self._reap(cancelled=True))
        self.executor.shutdown()
        self._beat(stopped=True)
        self._guarded(self.catalog.close)
        log.info("watcher %s stopped", self.id)

    def _guarded(self, step: Callable[[], object]) -> None:
        """Run a shutdown step; a failure is logged (the next watcher recovers)."""
        try:
            step()
        except Exception as exc:
            log.warning("watcher shutdown: %s: %s", type(exc).__name__, exc)

    # -- one pass ---------------------------------------------------------------
    def run_once(self, *, force: bool = True) -> bool:
        """One pass if anything may have changed (always when ``force``); whether it ran."""
        now = self.clock()
        signature = self.catalog.change_token()  # before the pass (see below)
        notified, self._notified = self._notified, False
        changed = signature != self._signature or notified
        # runs that ended stay owed to a pass until one reaps them
        ended = [*self._unreaped, *(self.executor.ended() if self._running else [])]
        housekeeping = time.monotonic() >= self._next_housekeeping
        due = self._wake_at is not None and now >= self._wake_at
        if not (force or changed or ended or housekeeping or due):
            return False
        if not force and self._held_elsewhere():
            self._notified, self._unreaped = self._notified or notified, ended
            return False  # the holder's release wakes this watcher: pass then
        self._signature = signature
        # A commit made during the pass shows up at the next poll. Embedded: one open for
        # the pass, never handed over halfway; the token taken at its release holds the
        # pass's own writes (nobody else wrote meanwhile): no extra pass (served: one).
        burst = getattr(self.catalog, "burst", contextlib.nullcontext)
        state = getattr(self.catalog, "watch_state", None)  # optional in a catalog
        quiet = state is not None and self._digest is not None and not (
            force or notified or ended or housekeeping or due)
        try:
            with burst() as held:
                # Only the token moved: a pass is owed if a new event, a change of the
                # plans or a pending firing says so (a run's own writes move the token
                # too); one read tells, and the file is released within a few ms.
                digest, pending = state() if state else (None, True)
                if ran := not quiet or pending or digest != self._digest:
                    self._pass(now, ended, housekeeping, digest)
                    self._digest = state()[0] if state is not None else None
            self._signature = getattr(held, "token", None) or signature
        except BaseException:  # a failed pass is done again next call, from scratch
            self._signature = self._digest = self._plans = None
            raise
        finally:
            self.catalog.close()  # never hold the file between passes
        self.passes += ran
        return ran

    def _held_elsewhere(self) -> bool:
        # Woken by releases, a watcher does not wait in line for a file another process
        # holds (its tries would slow the holder, its backoff outlast the hold): it
        # passes when the release wakes it; after HELD_SKIP_S it waits in line as without
        # wake-ups, so it is never starved. (Its own process's hold never makes it wait.)
        held = getattr(self.catalog, "held_elsewhere", None)
        if not self._woken_by_releases or held is None or not held():
            self._held_since = None
            return False
        self._held_since = self._held_since or time.monotonic()
        return time.monotonic() - self._held_since < HELD_SKIP_S

    def _pass(self, now: datetime, ended: list[str], housekeeping: bool, digest: Any) -> None:
        self._reap(ended)
        plans = self._active_plans(None if digest is None else digest[1])
        self._wake_at = None
        read = self._scan_events(plans)  # the cursor past the events read, if any
        self._schedule(plans, now)
        if housekeeping:
            self._next_housekeeping = time.monotonic() + self.housekeeping_s
            self._recover_orphans()
            self._beat()
        if self._accepting and not self._stop.is_set():
            self._dispatch(plans, now)
        if read is not None:  # stored after the firings started: a write less before
            self.catalog.advance_watch_cursor(read)

    def _active_plans(self, stamp: Any) -> dict[str, PlanRecord]:
        # The last pass's listing while the plans' stamp (watch_state) is the same: a
        # change of any plan or plan state moves it, this watcher's own ones included.
        if stamp is None or self._plans is None or self._plans[0] != stamp:
            self._plans = (stamp, {p.name: p for p in self.catalog.list_plans(active_only=True)})
        return self._plans[1]

    # -- events -> firings (nbripple.triggering) ----------------------------------
    def _scan_events(self, plans: dict[str, PlanRecord]) -> int | None:
        if self._cursor is None:
            self._cursor = self.catalog.watch_cursor()
        before, self._cursor = self._cursor, fire_on_events(
            self.catalog, plans, self._cursor, self._plan_failed)
        return self._cursor if self._cursor != before else None

    # -- schedules -> firings ---------------------------------------------------
    def _schedule(self, plans: dict[str, PlanRecord], now: datetime) -> None:
        for plan in plans.values():
            if not plan.spec.get("schedule"):
                continue
            try:
                self._schedule_plan(plan, now)
            except Exception as exc:
                self._plan_failed(plan, "scheduling", exc)

    def _schedule_plan(self, plan: PlanRecord, now: datetime) -> None:
        due, wake_at = due_ticks(plan, now)
        if wake_at is not None:
            self._wake(wake_at)
        if not due:
            return
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

    def _plan_failed(self, plan: PlanRecord, stage: str, exc: Exception) -> None:
        """Record on the plan what it raised; the other plans keep firing. A fault of
        the catalog or the machine (not the plan's) fails the pass instead: it is
        retried, and nothing owed is lost."""
        if isinstance(exc, CatalogLockedError | SchemaVersionError | OSError) \
                or type(exc).__module__.split(".")[0] == "duckdb":
            raise exc
        reason = f"{stage} failed: {type(exc).__name__}: {exc}"
        if plan.stopped_reason != reason:
            log.warning("plan %s: %s", plan.name, reason)
            self.catalog.update_plan_state(plan.name, stopped_reason=reason)

    def _wake(self, at: datetime) -> None:
        self._wake_at = at if self._wake_at is None else min(at, self._wake_at)

    # -- firings -> runs ----------------------------------------------------------
    def _dispatch(self, plans: dict[str, PlanRecord], now: datetime) -> None:
        owed: list[Firing] = self.catalog.firings(status=["pending", "running"], limit=2000)
        pending = [firing for firing in owed if firing.status == "pending"]
        if not pending:
            return
        per_plan: dict[str, int] = {}
        for firing in owed:
            if firing.status == "running":
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
            try:
                if key not in specs:  # the firing's plan version (most often the active one)
                    specs[key] = plan.spec if firing.plan_version == plan.version else dict(
                        self.catalog.plan_versions(firing.plan)).get(firing.plan_version,
                                                                     plan.spec)
                started = self._start(firing, specs[key])
            except Exception as exc:
                self._plan_failed(plan, "launching", exc)
                continue
            if started:
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
            phases={"detected": stamp(firing.created_at), "claimed": stamp()},
        )
        if not self.catalog.start_firing(firing.id, execution):
            return False  # another watcher took it
        self._running[execution_id] = firing.id
        try:
            self.executor.submit(RunJob(
                execution_id=execution_id, home=str(self.ws.home), notebook=spec["notebook"],
                parameters=parameters, kernel_name=spec.get("kernel_name"),
                timeout=spec.get("timeout"), watcher_pid=os.getpid(),
            ))
        except Exception as exc:  # the run never started: record why, settle the firing
            self._running.pop(execution_id, None)
            self.catalog.finish_execution(
                execution_id, commit_staged=False, status="failed", finished_at=datetime.now(UTC),
                error=run_error(type(exc).__name__, f"the run could not start: {exc}"))
            self._settle(firing.id, self.catalog.get_execution(execution_id))
            raise
        log.info("plan %s fired (%s) -> execution %s", firing.plan, firing.dedup_key, execution_id)
        return True

    # -- outcomes -----------------------------------------------------------------
    def _reap(self, ended: list[str] | None = None, *, cancelled: bool = False) -> None:
        if ended is None:
            ended = [*self._unreaped, *self.executor.ended()]
        if cancelled:
            ended = [*ended, *self._running]
        self._unreaped = list(dict.fromkeys(ended))  # what a failure here leaves owed
        for execution_id in list(self._unreaped):
            firing_id = self._running.get(execution_id)
            if firing_id is not None:
                self._reap_one(execution_id, firing_id, cancelled)
                self._running.pop(execution_id, None)
            self._unreaped.remove(execution_id)

    def _reap_one(self, execution_id: str, firing_id: str, cancelled: bool) -> None:
        execution = self.catalog.get_execution(execution_id)
        if execution is not None and execution.status in ("queued", "running"):
            status = "cancelled" if cancelled else "failed"
            self.catalog.finish_execution(
                execution_id, commit_staged=False, status=status,
                finished_at=datetime.now(UTC),
                error=run_error("Cancelled", SHUTDOWN_CANCEL) if cancelled else
                run_error("RunProcessDied", "the run's process ended before the run "
                          "finished"),
            )
            execution = self.catalog.get_execution(execution_id)
        self._settle(firing_id, execution, shutdown=cancelled)

    def _settle(self, firing_id: str, execution: Execution | None, *,
                shutdown: bool = False) -> None:
        settle_firing(self.catalog, firing_id, execution, now=self.clock(), shutdown=shutdown)

    def _recover_orphans(self) -> None:
        """Fail runs whose process died (their firings owed again); settle orphaned firings."""
        sweep_dead_executions(self.catalog, skip=set(self._running), host=self.host)
        reconcile_firings(self.catalog, set(self._running), now=self.clock())

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


__all__ = ["Watcher"]
