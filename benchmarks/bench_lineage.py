"""Lineage benchmark: the upstream walk of the last version of a 1,000-hop chain.

The chain ``chain@0 -> step 1 -> chain@1 -> step 2 -> ... -> chain@N`` (each
execution consumes the previous version and produces the next; ``chain@0`` comes
from a source execution) is bulk-loaded with DuckDB in the layout the catalog
writes (``versions``, ``executions``, ``consumed``, ``events``). A second home adds
an unrelated background DAG (each background execution consumes an earlier
background version and produces one), to show the walk does not pay for the rest
of the catalog much. Every figure is ``nr.lineage(f"chain@{N}", depth=None,
direction="up")`` through the public API, with the connection held open (warm) or
closed before each call (cold: opening the file included).

Run: ``python benchmarks/bench_lineage.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nbripple as nr
from _common import Check, gc_paused, judge, median, ms, percentile, print_table
from nbripple.catalog import EmbeddedCatalog
from nbripple.catalog.schema import MIGRATIONS

TARGET_MS = 100.0
# --quick: the same walk with fewer samples, on a machine the test suite shares: 37 ms
# when quiet, 160-250 ms at load 5-8 on 2 cores. It still catches a walk gone
# per-hop (a query per hop is >= 600 ms).
SMOKE_MS = 300.0


def populate(ws: nr.Workspace, hops: int, background: int) -> None:
    """Bulk-load the chain (and ``background`` unrelated versions) as ``commit`` would."""
    catalog = ws.catalog
    assert isinstance(catalog, EmbeddedCatalog)
    with catalog.transaction() as con:
        # Executions: 'source' makes chain@0, 'step<i>' makes chain@i from chain@(i-1);
        # 'bg<j>' makes background@j from an earlier background version.
        con.execute(
            """
            INSERT INTO executions (id, kind, status, notebook, parameters, started_at,
                                    finished_at, pid, host, chain_depth, label)
            SELECT id, 'external', 'succeeded', NULL, '{}',
                   TIMESTAMP '2024-01-01' + to_seconds(n),
                   TIMESTAMP '2024-01-01' + to_seconds(n) + INTERVAL 1 SECOND,
                   1, 'bench', 0, label
            FROM (SELECT 'source' AS id, 0 AS n, 'source.py' AS label
                  UNION ALL
                  SELECT 'step' || i, i, 'step ' || i || '.py' FROM range(1, $hops + 1) t(i)
                  UNION ALL
                  SELECT 'bg' || j, $hops + 1 + j, 'background.py'
                  FROM range(1, $background + 1) t(j))
            """,
            {"hops": hops, "background": background},
        )
        con.execute(
            """
            INSERT INTO consumed
            SELECT 'step' || i, 'chain', i - 1, 'previous',
                   TIMESTAMP '2024-01-01' + to_seconds(i)
            FROM range(1, $hops + 1) t(i)
            UNION ALL
            SELECT 'bg' || j, 'background', CAST(hash(j) % j AS INTEGER) + 1, NULL,
                   TIMESTAMP '2024-01-01' + to_seconds($hops + 1 + j)
            FROM range(2, $background + 1) t(j)
            """,
            {"hops": hops, "background": background},
        )
        # Versions, in the column order EmbeddedCatalog.commit writes; small JSON values
        # stored inline, hashed like the codec does (sha256 of the inline text).
        con.execute(
            """
            INSERT INTO versions
            SELECT artifact, number, seq, '{}', NULL, 'value', 'int', sha256(value),
                   strlen(value), NULL, value, NULL, NULL, '{}', execution_id, NULL, NULL,
                   TIMESTAMP '2024-01-01' + to_seconds(seq), 0
            FROM (SELECT 'chain' AS artifact, i AS number, i + 1 AS seq,
                         CAST(i AS VARCHAR) AS value,
                         CASE WHEN i = 0 THEN 'source' ELSE 'step' || i END AS execution_id
                  FROM range(0, $hops + 1) t(i)
                  UNION ALL
                  SELECT 'background', j, $hops + 1 + j, CAST(j AS VARCHAR), 'bg' || j
                  FROM range(1, $background + 1) t(j))
            """,
            {"hops": hops, "background": background},
        )
        con.execute(
            "INSERT INTO artifacts SELECT artifact, '[]', false, 'day', 'value', '', "
            "min(created_at) FROM versions GROUP BY artifact"
        )
        con.execute(
            "INSERT INTO events SELECT seq, 'version', artifact, version, execution_id, "
            "created_at FROM versions"
        )
        con.execute(MIGRATIONS[2][1])  # heads: each artifact's newest, as commit keeps them


def timed(fn: Callable[[], Any], repeat: int, *, before: Callable[[], None] | None = None
          ) -> list[float]:
    samples = []
    with gc_paused():
        for _ in range(repeat):
            if before is not None:
                before()
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    return samples


def measure(home: Path, hops: int, background: int, repeat: int, cold_repeat: int
            ) -> dict[str, Any]:
    ws = nr.use(home)
    catalog = ws.catalog
    assert isinstance(catalog, EmbeddedCatalog)
    t0 = time.perf_counter()
    populate(ws, hops, background)
    populate_s = time.perf_counter() - t0
    last = f"chain@{hops}"

    graph = nr.lineage(last, depth=None, direction="up")  # warm-up, and a correctness check
    expected_nodes = 2 * (hops + 1)  # chain@0..N and source, step1..N
    if len(graph.nodes) != expected_nodes or len(graph.edges) != 2 * hops + 1:
        raise SystemExit(f"wrong graph: {graph!r}, expected {expected_nodes} nodes and "
                         f"{2 * hops + 1} edges")
    assert graph.upstream_versions()[-1].ref == "chain@0"
    assert all(not node_id.startswith("version:background") for node_id in graph.node_ids)

    up_all = timed(lambda: nr.lineage(last, depth=None, direction="up"), repeat)
    walk = timed(lambda: catalog.lineage_walk(f"version:{last}", direction="up", depth=None),
                 repeat)
    node_ids = [n.id for n in graph.nodes]
    details = timed(lambda: catalog.lineage_nodes(node_ids), repeat)
    one_hop = timed(lambda: nr.lineage(last, depth=1, direction="both"), repeat)
    ten_hops = timed(lambda: nr.lineage(last, depth=10, direction="up"), repeat)
    middle = f"chain@{hops // 2}"
    both_all = timed(lambda: nr.lineage(middle, depth=None, direction="both"), repeat)
    cold = timed(lambda: nr.lineage(last, depth=None, direction="up"), cold_repeat,
                 before=catalog.close)
    to_nx = timed(graph.to_networkx, repeat)
    to_dict = timed(graph.to_dict, repeat)
    to_text = timed(graph.to_text, repeat)
    catalog.close()
    return {
        "background": background, "populate_s": populate_s, "up_all": up_all, "walk": walk,
        "details": details, "one_hop": one_hop, "ten_hops": ten_hops, "both_all": both_all,
        "cold": cold, "to_networkx": to_nx, "to_dict": to_dict, "to_text": to_text,
        "nodes": len(graph.nodes), "edges": len(graph.edges),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run (5 samples, a 5,000-version background)")
    parser.add_argument("--hops", type=int, default=1_000, help="chain length (default 1000)")
    args = parser.parse_args(argv)
    hops = args.hops
    backgrounds = (0, 5_000) if args.quick else (0, 100_000)
    repeat, cold_repeat = (5, 5) if args.quick else (21, 7)

    def attempt() -> list[Check]:
        """Build both homes, measure, print the figures; the checks."""
        results = []
        with tempfile.TemporaryDirectory(prefix="nbripple-bench-lineage-") as tmp:
            for background in backgrounds:
                home = nr.init_home(Path(tmp) / f"bg{background}")
                results.append(measure(home, hops, background, repeat, cold_repeat))

        print(f"lineage benchmark: a {hops:,}-hop chain ({results[0]['nodes']:,} nodes, "
              f"{results[0]['edges']:,} edges up from chain@{hops}); {repeat} warm samples "
              f"(connection held open), {cold_repeat} cold (file closed before each call)")
        for r in results:
            print(f"populate with {r['background']:,} background versions: "
                  f"{r['populate_s']:.2f} s")
        header = ["figure (ms)"]
        for r in results:
            header += [f"bg {r['background']:,} p50", "min", "p95"]
        rows = []
        labels = [
            ("up_all", f"nr.lineage(chain@{hops}, depth=None, up)"),
            ("walk", "  catalog.lineage_walk (recursive SQL)"),
            ("details", "  catalog.lineage_nodes (batch details)"),
            ("cold", "  cold: open the file + the same call"),
            ("one_hop", f"nr.lineage(chain@{hops}, depth=1, both)"),
            ("ten_hops", f"nr.lineage(chain@{hops}, depth=10, up)"),
            ("both_all", f"nr.lineage(chain@{hops // 2}, depth=None, both)"),
            ("to_networkx", "graph.to_networkx()"),
            ("to_dict", "graph.to_dict() (cytoscape)"),
            ("to_text", "graph.to_text()"),
        ]
        for key, label in labels:
            row = [label]
            for r in results:
                row += [ms(percentile(r[key], 50)), ms(min(r[key])), ms(percentile(r[key], 95))]
            rows.append(row)
        print_table("Latency", header, rows)

        plain, loaded = results
        checks = [
            Check(f"upstream walk, {hops:,} hops, warm median", median(plain["up_all"]) * 1000,
                  TARGET_MS, " ms", smoke=SMOKE_MS),
        ]
        # Reported, no target: the recursive walk builds one hash table over every edge
        # of the catalog, so these grow with the catalog, not only with the walk.
        print(f"\nwith {loaded['background']:,} background versions, warm median: "
              f"{ms(median(loaded['up_all']))} ms; depth=1: {ms(median(loaded['one_hop']))} ms")
        print(f"cold median (open + walk): {ms(median(plain['cold']))} ms, with background "
              f"{ms(median(loaded['cold']))} ms")
        return checks

    return judge(attempt, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
