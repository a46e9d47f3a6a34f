"""Helpers shared by the benchmarks: timing, statistics and the result table."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100) of ``samples``, by linear interpolation."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``fn()`` and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic collector from firing inside a timed region."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class Check:
    """One target: a measured figure against a limit (lower is better)."""

    label: str
    value: float
    limit: float
    unit: str = ""

    @property
    def ok(self) -> bool:
        return self.value <= self.limit

    def line(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        return (f"{verdict}  {self.label:<46} {self.value:9.3f}{self.unit:<3} "
                f"(target <= {self.limit:g}{self.unit})")


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """A plain fixed-width table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def report(checks: list[Check]) -> int:
    """Print every check; the exit code is 0 when all pass."""
    print("\nTargets")
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.ok]
    print(f"\n{'ALL PASS' if not failed else f'{len(failed)} FAILED'}")
    return 1 if failed else 0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"
