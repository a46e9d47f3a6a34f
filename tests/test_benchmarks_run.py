"""The core benchmarks run end to end in their quick mode, print their figures and meet
their smoke targets (a smoke run that misses one exits non-zero)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_quick(script: str) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick"],
                          capture_output=True, text=True, timeout=480, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def final_verdicts(out: str) -> dict[str, str]:
    """label -> PASS/FAIL of the last report (a smoke run may measure again)."""
    last = out.rsplit("\nTargets\n", 1)[-1]
    found = re.findall(r"^(PASS|FAIL)  (.+?)\s{2,}", last, flags=re.MULTILINE)
    return {label: verdict for verdict, label in found}


def ratio(out: str, label: str) -> float:
    found = re.search(rf"^ratio {label}[^:]*: ([\d.]+)$", out, flags=re.MULTILINE)
    assert found is not None, f"no 'ratio {label}' line in:\n{out}"
    return float(found.group(1))


@pytest.mark.parametrize(
    ("script", "ratios", "targets"),
    [
        ("bench_catalog.py", ["get", "resolve", "search"],
         ["nr.get(query) p50", "search p50", "search ratio"]),
        ("bench_table.py", ["write", "read"],
         ["create_from / write_table", "load / read_table"]),
        ("bench_watcher.py", ["hop/papermill"],
         ["detection latency p50", "reactive hop / papermill"]),
    ],
)
def test_benchmark_quick_mode_meets_its_smoke_targets(
    script: str, ratios: list[str], targets: list[str]
) -> None:
    out = run_quick(script)
    for label in ratios:
        assert ratio(out, label) > 0
    verdicts = final_verdicts(out)
    for label in targets:
        assert [v for name, v in verdicts.items() if name.startswith(label)], out
    assert set(verdicts.values()) == {"PASS"}, out
    assert "\nALL PASS\n" in out
    assert "smoke target <= " in out
    assert "--quick: a smoke run" in out
