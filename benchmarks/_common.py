"""Helpers shared by the benchmarks: timing, statistics and the result table."""

from __future__ import annotations

import gc
import os
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
    """One target: a measured figure against a limit (lower is better).

    ``smoke`` is the target of the ``--quick`` smoke run, at its smaller size and
    fewer samples, on the shared machine the test suite runs on (None: the same as
    ``limit``). It is set from figures measured at the smoke size, so a smoke run
    that misses it is a real regression, and the smoke run exits non-zero.
    """

    label: str
    value: float
    limit: float
    unit: str = ""
    smoke: float | None = None
    quick: bool = False

    @property
    def target(self) -> float:
        return self.smoke if self.quick and self.smoke is not None else self.limit

    @property
    def ok(self) -> bool:
        return self.value <= self.target

    def line(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        full = f"; full run <= {self.limit:g}{self.unit}" if self.target != self.limit else ""
        kind = "smoke target" if self.quick else "target"
        return (f"{verdict}  {self.label:<46} {self.value:9.3f}{self.unit:<3} "
                f"({kind} <= {self.target:g}{self.unit}{full})")


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """A plain fixed-width table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def report(checks: list[Check], *, quick: bool = False) -> int:
    """Print every check; the exit code is 0 when all pass, 1 otherwise.

    With ``quick`` the checks are held to their smoke targets (see :class:`Check`).
    """
    print("\nTargets")
    for check in checks:
        check.quick = quick
        print(check.line())
    failed = [c for c in checks if not c.ok]
    print(f"\n{'ALL PASS' if not failed else f'{len(failed)} FAILED'}")
    if quick:
        print("(--quick: a smoke run at a smaller size, held to its smoke targets; "
              "the full targets apply to the full run)")
    return 1 if failed else 0


def judge(attempt: Callable[[], list[Check]], *, quick: bool, attempts: int = 3) -> int:
    """Measure (``attempt`` returns its checks), report, and return the exit code.

    The full run measures once. A smoke run that misses a target measures again, up
    to ``attempts`` times: the shared machine's load comes in bursts of a few seconds
    that can triple a latency, while a real regression misses every time.
    """
    tries = attempts if quick else 1
    code = 1
    for n in range(1, tries + 1):
        code = report(attempt(), quick=quick)
        if code == 0:
            break
        if n < tries:
            print(f"\n(smoke attempt {n} of {tries} missed a target at load "
                  f"{os.getloadavg()[0]:.1f}; measuring again)\n")
    return code


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"
