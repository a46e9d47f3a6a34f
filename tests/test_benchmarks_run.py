"""The core benchmarks still run end to end in their quick mode and print their figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_quick(script: str) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick"],
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


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
    ],
)
def test_benchmark_quick_mode_prints_ratios_and_verdicts(
    script: str, ratios: list[str], targets: list[str]
) -> None:
    out = run_quick(script)
    for label in ratios:
        assert ratio(out, label) > 0
    for label in targets:
        assert re.search(rf"^(PASS|FAIL)  {re.escape(label)}", out, flags=re.MULTILINE), out
    assert "--quick: a smoke run" in out
