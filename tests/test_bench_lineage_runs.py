"""The lineage benchmark runs end to end in its quick mode, reports its figures and meets
its smoke target."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_lineage.py"


def test_bench_lineage_quick_runs_and_meets_its_smoke_target() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True,
                          text=True, timeout=540, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # The walk was checked for its exact size before anything was timed.
    assert "a 1,000-hop chain (2,002 nodes, 2,001 edges up from chain@1000)" in out
    for label in ("nr.lineage(chain@1000, depth=None, up)", "catalog.lineage_walk",
                  "catalog.lineage_nodes", "cold: open the file", "graph.to_networkx()"):
        assert label in out
    last = out.rsplit("\nTargets\n", 1)[-1]  # a smoke run that missed measures again
    verdicts = re.findall(r"^(PASS|FAIL)  upstream walk", last, flags=re.MULTILINE)
    assert verdicts == ["PASS"], out
    assert "\nALL PASS\n" in last
    median = re.search(r"upstream walk, 1,000 hops, warm median\s+([\d.]+) ms", last)
    assert median is not None and float(median.group(1)) > 0
