"""Table offload benchmark: ``create_from`` + ``load`` against raw Parquet.

A 1,000,000-row, 10-column table (integers, floats, strings, a timestamp) is stored
with ``Artifact.create_from`` and read back with ``nr.load`` — the public path:
Parquet encoding, hashing, the move into the content-addressed store, the catalog
commit; then resolving, the verified (hashed) read and decoding. The baseline is
``pyarrow.parquet.write_table`` / ``read_table`` of the same table to a local file on
the same disk. Both run interleaved in the same process, alternating which goes
first; every round stores a slightly different table, so nothing is deduplicated.
The verdicts use the median of the per-round ratios. A pandas DataFrame as input is
reported too, for information.

Run: ``python benchmarks/bench_table.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nbripple as nr
from _common import Check, gc_paused, judge, median, ms, print_table

TARGET_RATIO = 1.25
# --quick (100,000 rows): nbripple's fixed costs (declaration check, catalog commit,
# recording the consumption) weigh more against a 20-40 ms raw write/read.
SMOKE_RATIO = 3.0


def make_table(rows: int, seed: int = 0) -> pa.Table:
    """10 columns: 3 integer, 3 float, 3 string (low to high cardinality), 1 timestamp."""
    rng = np.random.default_rng(seed)
    regions = np.array(["eu-west", "eu-north", "us-east", "us-west", "ap-south",
                        "ap-east", "sa-east", "af-south", "me-central", "ca-central"])
    products = np.array([f"product-{i:04d}" for i in range(1000)])
    words = np.array(["fast", "late", "bulk", "gift", "promo", "refund", "online", "store",
                      "retry", "vip", "new", "repeat"])
    notes = np.char.add(np.char.add(words[rng.integers(0, len(words), rows)], "-"),
                        rng.integers(0, 1_000_000, rows).astype(str))
    start = np.datetime64("2024-01-01T00:00:00", "s")
    return pa.table({
        "order_id": pa.array(np.arange(rows, dtype=np.int64)),
        "store": pa.array(rng.integers(0, 500, rows, dtype=np.int32)),
        "quantity": pa.array(rng.integers(1, 50, rows, dtype=np.int64)),
        "price": pa.array(rng.uniform(0.5, 500.0, rows)),
        "discount": pa.array(np.round(rng.uniform(0.0, 0.3, rows), 2)),
        "score": pa.array(rng.standard_normal(rows)),
        "region": pa.array(regions[rng.integers(0, len(regions), rows)]),
        "product": pa.array(products[rng.integers(0, len(products), rows)]),
        "note": pa.array(notes),
        "ordered_at": pa.array(start + rng.integers(0, 365 * 86400, rows).astype("timedelta64[s]")),
    })


def variant(table: pa.Table, round_no: int) -> pa.Table:
    """The table with distinct ids, so that every round stores new content."""
    ids = pa.array(np.arange(table.num_rows, dtype=np.int64) + round_no * table.num_rows)
    return table.set_column(0, "order_id", ids)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    with gc_paused():
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result


def run_round(
    round_no: int, table: pa.Table, as_pandas: bool, artifact: nr.Artifact, raw_dir: Path,
    samples: dict[str, list[float]],
) -> None:
    value: Any = table.to_pandas() if as_pandas else table
    prefix = "pandas " if as_pandas else ""
    raw_path = raw_dir / f"raw-{round_no}{'-pd' if as_pandas else ''}.parquet"

    def raw_write() -> None:
        data = pa.Table.from_pandas(value) if as_pandas else value
        pq.write_table(data, raw_path)

    def raw_read() -> Any:
        data = pq.read_table(raw_path)
        return data.to_pandas() if as_pandas else data

    ref: list[str] = []

    def nr_write() -> None:
        ref.append(artifact.create_from(value).ref)

    def nr_read() -> Any:
        return nr.load(ref[0])

    # Alternate which side goes first, so neither always meets a warmer cache.
    pairs = [("raw", raw_write, raw_read), ("nbripple", nr_write, nr_read)]
    if round_no % 2:
        pairs.reverse()
    for label, write, _ in pairs:
        samples.setdefault(f"{prefix}{label} write", []).append(timed(write)[0])
    results = {}
    for label, _, read in pairs:
        elapsed, results[label] = timed(read)
        samples.setdefault(f"{prefix}{label} read", []).append(elapsed)
    loaded, raw = results["nbripple"], results["raw"]
    same = loaded.equals(raw)
    assert same, "the loaded table differs from the raw read"
    raw_path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a small smoke run (100,000 rows, 7 rounds)")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    rows = 100_000 if args.quick else 1_000_000
    rounds = args.rounds or (7 if args.quick else 9)

    def attempt() -> list[Check]:
        """Measure every round, print the figures; the checks."""
        base = make_table(rows)
        samples: dict[str, list[float]] = {}
        with tempfile.TemporaryDirectory(prefix="nbripple-bench-") as tmp:
            home = nr.init_home(Path(tmp))
            nr.use(home)
            raw_dir = Path(tmp) / "raw"
            raw_dir.mkdir()
            arrow_artifact = nr.Artifact("bench.orders")
            pandas_artifact = nr.Artifact("bench.orders_pd")
            # Warm up imports, the catalog file and the interactive execution.
            run_round(-1, variant(base.slice(0, 1000), 99), False, arrow_artifact, raw_dir, {})
            run_round(-2, variant(base.slice(0, 1000), 98), True, pandas_artifact, raw_dir, {})
            for i in range(rounds):
                run_round(i, variant(base, i), False, arrow_artifact, raw_dir, samples)
            for i in range(rounds):
                run_round(i, variant(base, rounds + i), True, pandas_artifact, raw_dir, samples)
            size = nr.versions("bench.orders")[0].size
            nr.current().catalog.close()

        def med(key: str) -> float:
            return median(samples[key])

        def paired(prefix: str, way: str) -> float:
            """Median of the per-round ratios: each round's pair ran back to back, under
            the same load, which the ratio of two medians would not guarantee."""
            ours, raw = samples[f"{prefix}nbripple {way}"], samples[f"{prefix}raw {way}"]
            return median([a / b for a, b in zip(ours, raw, strict=True)])

        rows_out = []
        for prefix in ("", "pandas "):
            for way in ("write", "read"):
                raw, ours = med(f"{prefix}raw {way}"), med(f"{prefix}nbripple {way}")
                label = f"{prefix or 'arrow '}{way}"
                rows_out.append([label, ms(raw), ms(ours), f"{ours / raw:.3f}",
                                 f"{paired(prefix, way):.3f}"])
        print(f"table benchmark: {rows:,} rows x {base.num_columns} columns "
              f"({', '.join(str(t) for t in sorted({str(f.type) for f in base.schema}))}); "
              f"Parquet blob {size / 1e6:.1f} MB; {rounds} interleaved rounds")
        print_table("Time (ms, medians)", ["figure", "raw pyarrow", "nbripple",
                                           "ratio of medians", "median ratio"], rows_out)
        write_ratio = paired("", "write")
        read_ratio = paired("", "read")
        print(f"\nratio write (create_from / pq.write_table, median of rounds): {write_ratio:.3f}")
        print(f"ratio read (nr.load / pq.read_table, median of rounds): {read_ratio:.3f}")
        checks = [
            Check("create_from / write_table (arrow)", write_ratio, TARGET_RATIO,
                  smoke=SMOKE_RATIO),
            Check("load / read_table (arrow)", read_ratio, TARGET_RATIO, smoke=SMOKE_RATIO),
        ]
        print("(pandas rows are information: the conversion from/to pandas is on both sides)")
        return checks

    return judge(attempt, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
