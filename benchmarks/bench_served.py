"""Served mode: many writers, trigger detection and queries through `nbripple serve`.

1. Registrations/s: 8 client processes commit small ``value`` versions
   (``Artifact.create_from``, one version per call) at once, released together by a
   go-file, in two homes of the same run: *served* (one ``nbripple serve --no-watch``
   owns the home; the clients find it through server.json) and *embedded* (the same 8
   processes on the home's DuckDB file, no server; 50 versions each instead of 200, or
   it takes minutes). The rate is all versions over the time from the first start to
   the last end; every version is checked to be there. Targets: served >= 300/s in
   total and >= 10x embedded.
2. Detection in the server's watcher: a client process commits through the served
   catalog; the figure is the triggered execution's ``started_at`` (stamped by the
   server) minus the moment ``create_from`` returned in the client (same host, both
   ``datetime.now(UTC)``); from the version's ``created_at`` (the commit's start, the
   server's clock) is printed too. The
   server's executor ends each run the moment it is submitted (no kernel starts), so
   only detection and dispatch are measured. Target: p50 <= 20 ms.
3. ``nr.get(query)`` (``Workspace.get``: resolve, then record the consumption — a
   write) in a client process, through the served catalog at 100,000 versions, against
   the embedded ``nr.get`` on the same file in the same run (the phases alternate:
   embedded, served, embedded, served). The catalog is bulk-loaded as ``bench_catalog.py`` loads it.
   Target: served p50 <= 5 ms.

    python benchmarks/bench_served.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

import nbripple as nr
from _common import Check, judge, percentile, print_table
from bench_catalog import populate, sample_queries
from nbripple.catalog import EmbeddedCatalog
from nbripple.catalog.served import ServedCatalog
from nbripple.discovery import health_check, read_server_file

RATE_TARGET = 300.0  # versions/s in total, served
RATIO_TARGET = 10.0  # served rate / embedded rate
DETECT_TARGET_MS = 20.0
GET_TARGET_MS = 5.0
# --quick: 8 x 50 versions (embedded 8 x 10), 10 events, 10,000 versions and 200
# queries. Measured at that size on the shared 2-core machine at load 3-9: served
# 160-350 versions/s, detection p50 15-35 ms, served nr.get p50 5.4-7 ms. The ratio's
# denominator moved twice with issue 12: embedded writers share the file in 20 ms
# turns, and since a burst attaches the file instead of making a DuckDB database per
# open, embedded runs about twice as fast again. The smoke ratio then measured 6.1
# quiet and 7.5 with two CPU burners (served is CPU-bound on 2 cores, embedded
# lock-bound): it is held to 3.5, which one commit per transaction (served ~66/s,
# below embedded now) misses by far. The rate gets the headroom of a loaded machine
# (164/s seen at load 8, 230/s with two burners) and of the fixed costs that weigh
# more on 50 commits a process, still above that 66/s; detection twice its target (as
# bench_watcher.py); nr.get the headroom bench_catalog.py gives its own smoke p50.
SMOKE_RATIO = 3.5
SMOKE_RATE = 150.0
SMOKE_GET_MS = 15.0
SMOKE_DETECT_MS = 40.0

SRC = Path(nr.__file__).resolve().parents[1]
SERVER_DEADLINE_S = 60.0

# `nbripple serve` with one more executor kind: runs that end the moment they are
# submitted (the home's config.toml chooses it for the detection benchmark).
SERVER = r"""
import sys
from nbripple.registry import register_executor

class EndAtOnce:
    '''Ends every run as soon as it is submitted, starting no kernel.'''
    def __init__(self, settings, **options):
        self.done = []
    def start(self, owner_pid):
        pass
    def submit(self, job):
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

register_executor("bench_end_at_once", EndAtOnce)
from nbripple.cli import main
main()
"""

# One writer: ready (imports, its interactive execution, the connection) before the
# go-file appears, then `count` commits; prints its start and end (time.time()).
WRITER = r"""
import sys, time
from pathlib import Path
import nbripple as nr
from nbripple.service import current

name, count, go, mode = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
ws = current()
assert type(ws.catalog).__name__ == mode, f"{type(ws.catalog).__name__} is not {mode}"
nr.Artifact("bench_warm").create_from(name)
ws.release()
artifact = nr.Artifact("bench_counter")
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
start = time.time()
for i in range(count):
    artifact.create_from(f"{name}-{i}")
print("done", start, time.time(), flush=True)
"""


# The detection client: registers a plan that fires on bench_input, commits one
# version per event through the served catalog and waits for its execution; prints
# JSON lists of ms from the version's created_at, and from the commit's return here,
# to the execution's started_at.
DETECT_CLIENT = r"""
import json, random, sys, time
from datetime import UTC, datetime
import nbripple as nr
from nbripple.service import current

notebook, events = sys.argv[1], int(sys.argv[2])
ws = current()
assert type(ws.catalog).__name__ == "ServedCatalog", ws.catalog
source = nr.Artifact("bench_input")
nr.register(nr.LaunchPlan("bench_detect", notebook=notebook,
                          trigger=nr.OnArtifact(source, inputs={"item": source}),
                          concurrency=1000))
nr.activate("bench_detect")

def fired(version):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = [e for e in ws.catalog.list_executions(kind="notebook", limit=5)
                if e.trigger_version == version.version]
        if runs:
            return runs[0]
        time.sleep(0.005)
    raise RuntimeError(f"{version.ref} was not detected in 30 s")

fired(source.create_from(-1))  # warm: the interactive execution, the first firing
created, returned = [], []
for i in range(events):
    time.sleep(random.uniform(0.05, 0.2))
    version = source.create_from(i)
    back = datetime.now(UTC)
    run = fired(version)
    created.append((run.started_at - version.created_at).total_seconds() * 1000)
    returned.append((run.started_at - back).total_seconds() * 1000)
print(json.dumps({"created": created, "returned": returned}))
"""

# The query client: Workspace.get (what nr.get calls) and Workspace.resolve of each
# query of a JSON file, after 20 to warm up, the cyclic GC off; prints JSON lists of
# seconds.
GET_CLIENT = r"""
import gc, json, sys, time
from pathlib import Path
import nbripple as nr
from nbripple.service import current

mode, queries = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
ws = current()
assert type(ws.catalog).__name__ == mode, f"{type(ws.catalog).__name__} is not {mode}"
queries = [nr.query(name, **partitions) for name, partitions in queries]
for q in queries[:20]:
    ws.get(q)
clock = time.perf_counter
resolve, get = [], []
gc.collect()
gc.disable()
for q in queries:
    t0 = clock()
    ws.resolve(q)
    t1 = clock()
    ws.get(q)
    t2 = clock()
    resolve.append(t1 - t0)
    get.append(t2 - t1)
gc.enable()
ws.release()
print(json.dumps({"resolve": resolve, "get": get}))
"""


def child_env(home: Path) -> dict[str, str]:
    """A process of ``home`` that imports the nbripple this benchmark imports."""
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "NBRIPPLE_HOME": str(home)}


def run_client(home: Path, code: str, *args: str) -> dict[str, list[float]]:
    """Run a client script in a process of ``home``; its JSON answer."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, env=child_env(home), timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"a client failed ({done.returncode}): {done.stderr[-3000:]}")
    found: dict[str, list[float]] = json.loads(done.stdout.splitlines()[-1])
    return found


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    token: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=SERVER_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(home: Path, *extra: str) -> Server:
    """`nbripple serve --home HOME EXTRA`; returns once it answers its health check."""
    log = (home / "serve.log").open("ab")
    process = subprocess.Popen([sys.executable, "-c", SERVER, "serve", "--home", str(home),
                                *extra], stdout=subprocess.DEVNULL, stderr=log,
                               env=child_env(home))
    log.close()
    deadline = time.monotonic() + SERVER_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nbripple serve exited {process.returncode}: "
                               f"{(home / 'serve.log').read_text()[-2000:]}")
        info = read_server_file(home)
        if info is not None and info.pid == process.pid and health_check(info):
            return Server(process, info.url, info.token)
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise RuntimeError("nbripple serve did not answer in time")


def fresh_home(path: Path) -> Path:
    home = nr.init_home(path)
    EmbeddedCatalog.close_all()  # nothing of this process holds the file
    return home


# -- 1. registrations/s ------------------------------------------------------------
def measure_writers(home: Path, mode: str, processes: int, count: int) -> float:
    """Versions/s of ``processes`` writers committing ``count`` versions each."""
    root = home.parent
    go = root / f"go-{mode}"
    outs = [root / f"writer-{mode}-{p}.out" for p in range(processes)]
    procs = []
    for p, out in enumerate(outs):
        with out.open("w") as stdout:
            procs.append(subprocess.Popen(
                [sys.executable, "-c", WRITER, f"w{p}", str(count), str(go), mode],
                stdout=stdout, stderr=subprocess.PIPE, text=True, env=child_env(home)))
    try:
        deadline = time.monotonic() + 120
        while not all(out.read_text().startswith("ready") for out in outs):
            failed = [proc.communicate()[1] for proc in procs if proc.poll() is not None]
            if failed or time.monotonic() > deadline:
                raise RuntimeError(f"a {mode} writer did not start: {failed[:1]}")
            time.sleep(0.02)
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"a {mode} writer failed ({proc.returncode}): {err[-2000:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    spans = [out.read_text().split()[-2:] for out in outs]
    start = min(float(s) for s, _ in spans)
    end = max(float(e) for _, e in spans)
    return processes * count / (end - start)


def committed(catalog: nr.Workspace | ServedCatalog | EmbeddedCatalog, name: str) -> int:
    found = catalog.catalog if isinstance(catalog, nr.Workspace) else catalog
    return len(found.list_versions(name))


def writer_rates(root: Path, processes: int, count: int, embedded_count: int
                 ) -> tuple[float, float]:
    """(served, embedded) versions/s; checks that every version was committed. The
    embedded writers commit ``embedded_count`` each (fewer: at their rate the same
    count would take minutes; the figure is a rate either way)."""
    served_home = fresh_home(root / "served-writers")
    server = start_server(served_home, "--no-watch")
    try:
        served = measure_writers(served_home, "ServedCatalog", processes, count)
        total = committed(ServedCatalog(server.url, server.token), "bench_counter")
    finally:
        server.stop()
    if total != processes * count:
        raise RuntimeError(f"served: {total} versions committed, not {processes * count}")
    embedded_home = fresh_home(root / "embedded-writers")
    embedded = measure_writers(embedded_home, "EmbeddedCatalog", processes, embedded_count)
    ws = nr.Workspace(embedded_home)
    total = committed(ws, "bench_counter")
    ws.release()
    EmbeddedCatalog.close_all()
    if total != processes * embedded_count:
        raise RuntimeError(f"embedded: {total} versions committed, "
                           f"not {processes * embedded_count}")
    return served, embedded


# -- 2. detection ------------------------------------------------------------------
def trivial_notebook(path: Path) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = new_code_cell("item = 'nbripple://bench_input'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell("print(item)")]
    nbformat.write(nb, str(path))
    return path


def measure_detection(root: Path, events: int) -> tuple[list[float], list[float]]:
    """Per event, ms from the version's created_at (and from the commit's return in
    the client) to the triggered execution's started_at."""
    home = fresh_home(root / "detect")
    with (home / "config.toml").open("a") as config:
        config.write('\n[executor]\nkind = "bench_end_at_once"\n')
    notebook = trivial_notebook(root / "detect.ipynb")
    server = start_server(home)  # with its watcher
    try:
        found = run_client(home, DETECT_CLIENT, str(notebook), str(events))
    finally:
        server.stop()
    return found["created"], found["returned"]


# -- 3. nr.get(query) --------------------------------------------------------------
def measure_gets(root: Path, n_versions: int, n_queries: int) -> dict[str, list[float]]:
    """Seconds per nr.get and per resolve, embedded and served, the phases alternating
    (embedded, served, embedded, served) over halves of the queries."""
    home = fresh_home(root / "get")
    ws = nr.Workspace(home)
    started = time.perf_counter()
    populate(ws, n_versions)
    queries = sample_queries(ws, n_queries, random.Random(n_versions))
    ws.release()
    EmbeddedCatalog.close_all()  # the server must be the file's only holder
    print(f"bulk load of {n_versions:,} versions: {time.perf_counter() - started:.1f} s")
    samples: dict[str, list[float]] = {}
    half = len(queries) // 2
    for n, part in enumerate((queries[:half], queries[half:])):
        path = root / f"queries-{n}.json"
        path.write_text(json.dumps([[q.name, q.partitions] for q in part]))
        for mode in ("EmbeddedCatalog", "ServedCatalog"):
            server = start_server(home, "--no-watch") if mode == "ServedCatalog" else None
            try:
                found = run_client(home, GET_CLIENT, mode, str(path))
            finally:
                if server is not None:
                    server.stop()
            for key, values in found.items():
                samples.setdefault(f"{mode}:{key}", []).extend(values)
    return samples


# -- the report --------------------------------------------------------------------
@dataclass
class AtLeast(Check):
    """A target where higher is better (a rate, a speed-up)."""

    @property
    def ok(self) -> bool:
        return self.value >= self.target

    def line(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        full = f"; full run >= {self.limit:g}{self.unit}" if self.target != self.limit else ""
        kind = "smoke target" if self.quick else "target"
        return (f"{verdict}  {self.label:<46} {self.value:9.3f}{self.unit:<3} "
                f"({kind} >= {self.target:g}{self.unit}{full})")


def p(samples: list[float], q: float) -> float:
    return percentile(samples, q)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (smaller sizes)")
    args = parser.parse_args()
    processes, count, embedded_count = (8, 50, 10) if args.quick else (8, 200, 50)
    events = 10 if args.quick else 50
    n_versions, n_queries = (10_000, 200) if args.quick else (100_000, 1000)

    def attempt() -> list[Check]:
        """Measure the three, print the figures; the checks."""
        with tempfile.TemporaryDirectory(prefix="nbripple-bench-served-") as tmp:
            root = Path(tmp)
            served, embedded = writer_rates(root, processes, count, embedded_count)
            ratio = served / embedded
            print(f"registrations, {processes} processes at once, one create_from per version:")
            print(f"  served (one nbripple serve), {count:>3} each:  {served:8.1f} versions/s")
            print(f"  embedded (the DuckDB file), {embedded_count:>3} each:  "
                  f"{embedded:8.1f} versions/s")
            print(f"ratio served/embedded: {ratio:.2f}")

            created, returned = measure_detection(root, events)
            detect_p50 = statistics.median(returned)
            print(f"\ndetection over {len(created)} events (server's watcher, executor "
                  f"that ends runs at once):")
            print(f"  commit returned in the client -> execution started: p50 "
                  f"{detect_p50:.1f} ms, p95 {p(returned, 95):.1f} ms, max "
                  f"{max(returned):.1f} ms")
            print(f"  version created_at (the commit's start) -> execution started: p50 "
                  f"{statistics.median(created):.1f} ms, p95 {p(created, 95):.1f} ms "
                  "(information: includes the commit itself)")

            samples = measure_gets(root, n_versions, n_queries)
        rows = []
        for key, label in (("get", "nr.get(query): resolve + record"),
                           ("resolve", "Workspace.resolve(query)")):
            e, s = samples[f"EmbeddedCatalog:{key}"], samples[f"ServedCatalog:{key}"]
            rows.append([label, f"{p(e, 50) * 1000:.2f}", f"{p(e, 95) * 1000:.2f}",
                         f"{p(s, 50) * 1000:.2f}", f"{p(s, 95) * 1000:.2f}",
                         f"{p(s, 50) / p(e, 50):.2f}"])
        print_table(f"Queries at {n_versions:,} versions (ms), {n_queries} queries per mode",
                    ["figure", "embedded p50", "p95", "served p50", "p95", "ratio p50"], rows)
        get_ratio = p(samples["ServedCatalog:get"], 50) / p(samples["EmbeddedCatalog:get"], 50)
        print(f"\nratio get served/embedded: {get_ratio:.2f}")
        return [
            AtLeast(f"served registrations/s, {processes} processes", served, RATE_TARGET,
                    "/s", smoke=SMOKE_RATE),
            AtLeast("served / embedded registrations/s", ratio, RATIO_TARGET,
                    smoke=SMOKE_RATIO),
            Check("detection in the server's watcher p50", detect_p50, DETECT_TARGET_MS,
                  " ms", smoke=SMOKE_DETECT_MS),
            Check(f"served nr.get(query) p50 at {n_versions:,}",
                  p(samples["ServedCatalog:get"], 50) * 1000, GET_TARGET_MS, " ms",
                  smoke=SMOKE_GET_MS),
        ]

    return judge(attempt, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
