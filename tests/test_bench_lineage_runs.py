"""The lineage benchmark runs end to end in its quick mode and reports its figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_lineage.py"


def test_bench_lineage_quick_runs_and_reports() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # The walk was checked for its exact size before anything was timed.
    assert "a 1,000-hop chain (2,002 nodes, 2,001 edges up from chain@1000)" in out
    for label in ("nr.lineage(chain@1000, depth=None, up)", "catalog.lineage_walk",
                  "catalog.lineage_nodes", "cold: open the file", "graph.to_networkx()"):
        assert label in out
    verdicts = re.findall(r"^(PASS|FAIL)  upstream walk", out, flags=re.MULTILINE)
    assert verdicts, out
    median = re.search(r"upstream walk, 1,000 hops, warm median\s+([\d.]+) ms", out)
    assert median is not None and float(median.group(1)) > 0
