"""Reactive latency: how fast a committed version starts the runs that depend on it.

1. Detection latency: version committed -> triggered execution created, over 50
   events, with the watcher in its own process (goal: p50 <= 50 ms; Dagster's
   default sensor interval is 30 s). The watcher's executor records the run and
   ends it at once, so only detection and dispatch are measured.
2. One reactive hop end to end: commit -> the downstream trivial notebook's output
   committed, with the real local executor, vs running that notebook with plain
   papermill on a fresh kernel in this process (goal: ratio <= 0.5), interleaved,
   medians; the breakdown per phase of the hop (see nbripple.phases) is printed.

    python benchmarks/bench_watcher.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
from nbformat.v4 import new_code_cell, new_notebook

import nbripple as nr
from _common import Check, judge
from nbripple.phases import PHASES, TRIGGER, timeline

DETECT_TARGET_MS = 50.0  # issue 12: embedded detection p50
HOP_TARGET = 0.5  # issue 12: hop <= 0.5x plain papermill on a fresh kernel (goal 0.35)
# --quick (8 events, 2 hops) on the shared 2-core machine, figures of this commit:
# detection p50 40-131 ms at load 1.7-7.7 (another suite running), so 250 ms is the
# headroom such load needs; a regression like issue 12's (2-3 s at load 8 before the
# burst pass) misses it every time. Hop ratio 0.23-0.28 at load 1.7-7.7 (hop 447-1305
# ms, papermill 1.2-4.6 s; 0.45-0.63 before the file was attached rather than opened);
# with warm processes forked from the fork server, 0.20-0.25 quiet and with two CPU
# burners (hop 336-553 ms, process_ready +4-8 ms). 0.8 keeps the headroom for a warm
# process refilled late under a suite's load; a hop that waits for a whole process and
# kernel start (as before the warm pool) is at 0.9-1.2 and misses it.
SMOKE_DETECT_MS = 250.0
SMOKE_HOP = 0.8

WATCHER = """
import sys
from datetime import UTC, datetime
import nbripple as nr
from nbripple.phases import PHASES, TRIGGER, timeline
from nbripple.watcher import Watcher

class FinishAtOnce:
    '''Ends every run as soon as it is submitted: measures detection and dispatch only.'''
    def __init__(self):
        self.ws = nr.current()
        self.done = []
    def submit(self, job):
        self.ws.catalog.finish_execution(job.execution_id, commit_staged=False,
                                         status="succeeded", finished_at=datetime.now(UTC))
        self.done.append(job.execution_id)
    def ended(self):
        done, self.done = self.done, []
        return done
    def active(self):
        return 0
    def cancel_all(self, grace_s=10.0):
        return []
    def shutdown(self):
        pass

nr.use(sys.argv[1])  # FinishAtOnce writes to the watcher's own catalog
mode = sys.argv[2]
executor = FinishAtOnce() if mode == "detect" else None
Watcher(sys.argv[1], executor=executor).run_forever()  # the default poll interval
"""


def trivial_notebook(path: Path) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = new_code_cell("item = 'nbripple://bench_input'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        new_code_cell("import nbripple as nr"),
        params,
        new_code_cell("nr.Artifact('bench_output').create_from(nr.load(item))"),
    ]
    nbformat.write(nb, str(path))
    return path


def plain_notebook(path: Path) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = new_code_cell("item = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell("result = item + 1")]
    nbformat.write(nb, str(path))
    return path


def start_watcher(ws: nr.Workspace, mode: str) -> subprocess.Popen[bytes]:
    """Start the watcher process; return once its first pass is done (its heartbeat)."""
    proc = subprocess.Popen([sys.executable, "-c", WATCHER, str(ws.home), mode],
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not until(ws, lambda: ws.catalog.live_watchers()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the watcher did not start (exit code {proc.poll()})")
        time.sleep(0.02)
    return proc


def until(ws: nr.Workspace, probe: Callable[[], Any]) -> Any:
    """One look at the catalog, which is then left to the watcher."""
    try:
        return probe()
    finally:
        ws.catalog.close()


def commit(ws: nr.Workspace, source: nr.Artifact, value: int) -> tuple[Any, Any]:
    """Commit a version as a writer that then goes idle (the file released at once);
    returns it and the change token as it left the file (its own commit included)."""
    with ws.catalog.burst() as held:
        version = source.create_from(value)
    return version, held.token


def wait_for(ws: nr.Workspace, probe: Callable[[], Any], timeout: float, what: str,
             since: Any = None) -> Any:
    """Poll as a well-behaved client does: a stat of the catalog's files every 5 ms,
    and ``probe()`` (which opens the file) only when they changed since ``since`` (the
    token the client's own commit left; None: probe at once). A client opening the
    file every few ms, or right after its own commit, would measure its own
    contention with the watcher, which wants the file at that very moment."""
    deadline = time.monotonic() + timeout
    seen = since
    while time.monotonic() < deadline:
        token = ws.catalog.change_token()
        if token != seen:
            seen = token
            found = until(ws, probe)
            if found:
                return found
        time.sleep(0.005)
    raise RuntimeError(f"{what} did not happen in {timeout:g} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def measure_detection(root: Path, events: int) -> list[float]:
    home = nr.init_home(root / "detect")
    ws = nr.use(home)
    notebook = trivial_notebook(root / "detect_nb.ipynb")
    source = nr.Artifact("bench_input")
    nr.register(nr.LaunchPlan("bench_detect", notebook=notebook,
                              trigger=nr.OnArtifact(source, inputs={"item": source}),
                              concurrency=1000))
    nr.activate("bench_detect")
    ws.catalog.close()
    proc = start_watcher(ws, "detect")
    latencies: list[float] = []
    try:
        for i in range(events):
            version, token = commit(ws, source, i)
            runs = wait_for(ws, lambda v=version.version: [
                e for e in ws.executions(kind="notebook", limit=5) if e.trigger_version == v],
                30, f"detecting event {i}", since=token)
            delta = (runs[0].started_at - version.created_at).total_seconds()
            latencies.append(delta * 1000)
            time.sleep(random.uniform(0.1, 0.4))
    finally:
        stop(proc)
    return latencies


def hop_phases(ws: nr.Workspace, version: int) -> dict[str, float]:
    """phase -> seconds since the triggering commit, for the run that version fired."""
    run = until(ws, lambda: next(e for e in ws.executions(kind="notebook", limit=5)
                             if e.trigger_version == version))
    trigger = until(ws, lambda: ws.resolve(f"bench_input@{version}"))
    return {step.phase: step.at_s for step in timeline(run.phases, trigger.created_at)
            if step.phase != TRIGGER}


def print_phases(samples: list[dict[str, float]]) -> None:
    """The median time of each phase since the commit, and of each step."""
    print("hop phases (median ms since the triggering commit, and of the step before):")
    previous = 0.0
    for phase in PHASES:
        at = [sample[phase] for sample in samples if phase in sample]
        if not at:
            continue
        median = statistics.median(at) * 1000
        print(f"  {phase:<14} {median:7.0f} ms   +{median - previous:5.0f} ms")
        previous = median


def measure_hop(root: Path, rounds: int
                ) -> tuple[list[float], list[float], list[dict[str, float]]]:
    home = nr.init_home(root / "hop")
    ws = nr.use(home)
    notebook = trivial_notebook(root / "hop_nb.ipynb")
    plain = plain_notebook(root / "plain_nb.ipynb")
    source = nr.Artifact("bench_input")
    nr.register(nr.LaunchPlan("bench_hop", notebook=notebook,
                              trigger=nr.OnArtifact(source, inputs={"item": source})))
    nr.activate("bench_hop")
    ws.catalog.close()
    proc = start_watcher(ws, "hop")
    hops: list[float] = []
    papermill_runs: list[float] = []
    phases: list[dict[str, float]] = []
    try:
        pm.execute_notebook(str(plain), str(root / "out.ipynb"), progress_bar=False)  # warm
        for i in range(rounds + 1):
            version, token = commit(ws, source, i)
            # the output and the run's end are committed in one transaction
            (run,) = wait_for(ws, lambda v=version.version: [
                e for e in ws.executions(kind="notebook", limit=5)
                if e.trigger_version == v and e.status not in ("queued", "running")],
                120, f"hop {i}", since=token)
            if run.status != "succeeded":
                raise RuntimeError(f"hop {i} failed: {run.error}")
            output = until(ws, lambda r=run: r.outputs[0])
            if i > 0:  # the first hop is a warm-up, as the first plain papermill run is
                hops.append((output.created_at - version.created_at).total_seconds())
            if i > 0:
                phases.append(hop_phases(ws, version.version))
                start = time.perf_counter()
                pm.execute_notebook(str(plain), str(root / "out.ipynb"),
                                    parameters={"item": i}, progress_bar=False)
                papermill_runs.append(time.perf_counter() - start)
    finally:
        stop(proc)
    return hops, papermill_runs, phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run (fewer events)")
    args = parser.parse_args()
    events = 8 if args.quick else 50
    rounds = 2 if args.quick else 7

    def attempt() -> list[Check]:
        """Measure detection, then hops; print the figures; the checks."""
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            latencies = sorted(measure_detection(root, events))
            p50 = statistics.median(latencies)
            p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
            print(f"detection latency over {len(latencies)} events: p50 {p50:.0f} ms, "
                  f"p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms")
            hops, plain, phases = measure_hop(root, rounds)
            hop_p50, plain_p50 = statistics.median(hops), statistics.median(plain)
            ratio = hop_p50 / plain_p50
            print(f"reactive hop (commit -> downstream output committed): median "
                  f"{hop_p50 * 1000:.0f} ms over {len(hops)} hops")
            print(f"plain papermill of the same trivial notebook:            median "
                  f"{plain_p50 * 1000:.0f} ms")
            print(f"ratio hop/papermill (fresh kernel): {ratio:.3f}")
            print_phases(phases)
        return [
            Check("detection latency p50", p50, DETECT_TARGET_MS, " ms", smoke=SMOKE_DETECT_MS),
            Check("reactive hop / papermill, median", ratio, HOP_TARGET, smoke=SMOKE_HOP),
        ]

    return judge(attempt, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
