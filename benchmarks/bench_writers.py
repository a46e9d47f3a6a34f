"""Embedded write throughput under contention: N writer processes, each committing M
small versions with ``create_from`` to one catalog file (no server).

The served mode is the answer for many writers; this measures that the embedded one
wastes nothing: how long each commit holds the file, and versions per second in total.

    python benchmarks/bench_writers.py [--writers 4] [--versions 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbripple as nr

WORKER = textwrap.dedent("""
    import sys, time, pathlib
    import nbripple as nr
    worker, count, go = int(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
    art = nr.Artifact("contended", partition_keys=["worker"])
    while not go.exists():
        time.sleep(0.005)
    for i in range(count):
        art.create_from({"worker": worker, "i": i}, worker=worker)
""")


def measure(writers: int, versions: int) -> float:
    """Seconds from the start signal until every writer has committed all its versions."""
    with tempfile.TemporaryDirectory() as tmp:
        home = nr.init_home(Path(tmp) / "home")
        go = Path(tmp) / "go"
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(w), str(versions),
                                   str(go)], cwd=str(home.parent))
                 for w in range(writers)]
        env_ws = nr.use(home)
        time.sleep(2.0)  # every worker imports nbripple and waits at the start line
        start = time.perf_counter()
        go.touch()
        for proc in procs:
            if proc.wait(timeout=600) != 0:
                raise RuntimeError(f"a writer failed (exit code {proc.returncode})")
        wall = time.perf_counter() - start
        found = len(env_ws.versions("contended"))
        env_ws.catalog.close()
        if found != writers * versions:
            raise RuntimeError(f"{found} versions committed, {writers * versions} expected")
        return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--versions", type=int, default=100)
    args = parser.parse_args()
    wall = measure(args.writers, args.versions)
    total = args.writers * args.versions
    print(f"{args.writers} writers x {args.versions} versions: {wall:.1f} s, "
          f"{total / wall:.1f} commits/s in total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
