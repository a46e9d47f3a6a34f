"""The served-mode benchmark runs end to end in its quick mode, reports its figures and
meets its smoke targets (a smoke run that misses one exits non-zero)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_served.py"


def test_bench_served_quick_runs_and_meets_its_smoke_targets() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in ("served (one nbripple serve),  50 each:", "embedded (the DuckDB file),  10 each:",
                 "ratio served/embedded: ", "detection over 10 events",
                 "Queries at 10,000 versions (ms), 200 queries per mode",
                 "ratio get served/embedded: "):
        assert line in out, line
    last = out.rsplit("\nTargets\n", 1)[-1]  # a smoke run that missed measures again
    found = re.findall(r"^(PASS|FAIL)  (.+?)\s{2,}", last, flags=re.MULTILINE)
    verdicts = {label: verdict for verdict, label in found}
    assert list(verdicts) == [
        "served registrations/s, 8 processes", "served / embedded registrations/s",
        "detection in the server's watcher p50", "served nr.get(query) p50 at 10,000"]
    assert set(verdicts.values()) == {"PASS"}, out
    assert "\nALL PASS\n" in last
    rate = re.search(r"served \(one nbripple serve\),\s+50 each:\s+([\d.]+) versions/s",
                     out.rsplit("registrations, ", 1)[-1])
    assert rate is not None and float(rate.group(1)) > 0
