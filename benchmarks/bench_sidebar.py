"""Sidebar benchmark: the nbripple panel in a real JupyterLab and Debian chromium,
against a served catalog of 100,000 versions.

The catalog is bulk-loaded as ``bench_catalog.py`` loads it (100 artifacts, partitions
region x day, cards on ~10 %), plus a lineage in the same file: ``bench_chain@1``
consumed by step 1, which produces ``bench_chain@2`` and ``bench_side@1``, consumed by
step 2, and so on; the graph downstream of ``bench_chain@1`` at depth ``all`` has
``1 + 3 x hops`` nodes (502). JupyterLab serves the home itself (its nbripple extension
owns the catalog file), as for a user who opens the sidebar; it starts as the browser
tests start it (``tests/browser/conftest.py``: the checkout's build of the sidebar,
chromium through Playwright).

Every figure is timed **in the page** (``performance.now()``, a MutationObserver on the
views' ``data-state``, then the next animation frame, when the browser paints), never
by Playwright round trips:

1. search: the last keystroke (its ``input`` event) in the search box to the results
   rendered and painted, over ~20 typed queries (the box's debounce of 150 ms
   included). Target: p50 <= 300 ms.
2. opening a version: the click on a result to its Overview rendered and painted,
   over 20 versions. Target: p50 <= 300 ms.
3. the lineage graph of 502 nodes: the change of the Lineage tab's depth to ``all``
   to the graph laid out (dagre, left to right) and painted, request included; the
   view's own ``data-layout-ms`` (cytoscape and the layout) is printed too.
   Target: median <= 1.5 s.

    python benchmarks/bench_sidebar.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nbripple as nr
from _common import Check, judge, median, percentile, print_table
from bench_catalog import populate
from nbripple.catalog import EmbeddedCatalog
from nbripple.catalog.schema import MIGRATIONS

REPO = Path(__file__).resolve().parents[1]

# The targets (issue 11, "Benchmark").
SEARCH_TARGET_MS = 300.0  # last keystroke -> results rendered, p50
OPEN_TARGET_MS = 300.0  # click a result -> Overview rendered, p50
LINEAGE_TARGET_MS = 1500.0  # a 500-node lineage laid out and drawn, median
# --quick: 10,000 versions, 8 queries, 8 opens, 3 draws of the same 502-node graph, on
# the shared 2-core machine. Measured there at load 2-3 and at load 6 (three busy
# processes beside it): search p50 169-186 ms (150 ms of it is the box's debounce),
# opening 31-43 ms, the graph 475-640 ms at load 2-3 and 910 ms at load 6. The smoke
# targets keep the targets for search and opening (a search that stops
# debouncing the keystrokes or renders every row misses them); the graph gets twice its
# target for a loaded machine, which a layout gone quadratic still misses.
SMOKE_LINEAGE_MS = 3000.0

HOPS = 167  # 1 + 3 x 167 = 502 nodes downstream of bench_chain@1
QUERIES = [
    "model", "sales", "features", "churn", "report", "predictions", "daily", "etl",
    "ml.model", "ops.report", "holdout", "accuracy", "drift", "churn models",
    "bi.features", "research", "pipeline 4", "baseline", "etl.daily_sales_000",
    "scored customers",
]
TYPING_DELAY_MS = 40  # between keystrokes: a fast typist, under the 150 ms debounce


def browser_fixtures() -> ModuleType:
    """tests/browser/conftest.py (JupyterLab and chromium as the browser tests start
    them), loaded under its own name."""
    path = REPO / "tests" / "browser" / "conftest.py"
    spec = importlib.util.spec_from_file_location("nbripple_browser_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# -- the catalog -------------------------------------------------------------------
def populate_lineage(ws: nr.Workspace, hops: int) -> None:
    """Bulk-load the chain with its side outputs, after what ``populate`` loaded, in
    the layout ``commit`` writes (executions, consumed, versions, artifacts, events,
    heads)."""
    catalog = ws.catalog
    assert isinstance(catalog, EmbeddedCatalog)
    with catalog.transaction() as con:
        [(base,)] = con.execute("SELECT max(seq) FROM versions").fetchall()
        params = {"hops": hops, "base": base}
        con.execute(
            """
            INSERT INTO executions (id, kind, status, notebook, parameters, started_at,
                                    finished_at, pid, host, chain_depth, label)
            SELECT id, 'external', 'succeeded', NULL, '{}',
                   TIMESTAMP '2024-01-01' + to_seconds($base + n),
                   TIMESTAMP '2024-01-01' + to_seconds($base + n) + INTERVAL 1 SECOND,
                   1, 'bench', 0, label
            FROM (SELECT 'bench_source' AS id, 0 AS n, 'source.py' AS label
                  UNION ALL
                  SELECT 'bench_step' || i, 3 * i, 'step ' || i || '.py'
                  FROM range(1, $hops + 1) t(i))
            """, params)
        con.execute(
            """
            INSERT INTO consumed
            SELECT 'bench_step' || i, 'bench_chain', i, 'previous',
                   TIMESTAMP '2024-01-01' + to_seconds($base + 3 * i)
            FROM range(1, $hops + 1) t(i)
            """, params)
        # chain@1 from the source (seq base+1); step i makes chain@(i+1) and side@i
        con.execute(
            """
            INSERT INTO versions
            SELECT artifact, number, seq, '{}', NULL, 'value', 'int', sha256(value),
                   strlen(value), NULL, value, NULL, NULL, '{}', execution_id, NULL, NULL,
                   TIMESTAMP '2024-01-01' + to_seconds(seq), 0
            FROM (SELECT 'bench_chain' AS artifact, 1 AS number, $base + 1 AS seq,
                         '1' AS value, 'bench_source' AS execution_id
                  UNION ALL
                  SELECT 'bench_chain', i + 1, $base + 3 * i + 1, CAST(i + 1 AS VARCHAR),
                         'bench_step' || i
                  FROM range(1, $hops + 1) t(i)
                  UNION ALL
                  SELECT 'bench_side', i, $base + 3 * i + 2, CAST(i AS VARCHAR),
                         'bench_step' || i
                  FROM range(1, $hops + 1) t(i))
            """, params)
        con.execute(
            "INSERT INTO artifacts SELECT artifact, '[]', false, 'day', 'value', "
            "'the lineage of the sidebar benchmark', min(created_at) "
            "FROM versions WHERE artifact IN ('bench_chain', 'bench_side') GROUP BY artifact")
        con.execute(
            "INSERT INTO events SELECT seq, 'version', artifact, version, execution_id, "
            "created_at FROM versions WHERE artifact IN ('bench_chain', 'bench_side')")
        con.execute("DELETE FROM heads")  # each artifact's newest, as commit keeps them
        con.execute(MIGRATIONS[2][1])


def make_home(base: Path, n_versions: int, hops: int) -> float:
    """A home of ``n_versions`` versions and the lineage, closed; seconds it took."""
    started = time.perf_counter()
    ws = nr.Workspace(nr.init_home(base))
    populate(ws, n_versions)
    populate_lineage(ws, hops)
    ws.release()
    EmbeddedCatalog.close_all()  # JupyterLab's extension must be the file's only holder
    return time.perf_counter() - started


def api(server: Any, path: str) -> Any:
    request = urllib.request.Request(f"{server.base_url}nbripple/api/{path}",
                                     headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


# -- the page ----------------------------------------------------------------------
# Installed once in the page: stamps of the user's action (an input in the search box,
# a click on a result, a change of the lineage depth) and of the view it updates being
# ready (its data-state, seen by a MutationObserver), then painted (the next animation
# frame after that).
INSTRUMENT_JS = """
() => {
  const panel = document.querySelector('#nbripple-sidebar');
  const bench = window.__bench = {wantNodes: 0};
  bench.watch = (key, el, ready) => {
    bench[key] = {start: 0, ready: 0, painted: 0};
    new MutationObserver(() => {
      const stamp = bench[key];
      if (stamp.start && !stamp.ready && ready()) {
        stamp.ready = performance.now();
        requestAnimationFrame(() => { stamp.painted = performance.now(); });
      }
    }).observe(el, {attributes: true, attributeFilter: ['data-state'], subtree: true});
  };
  bench.start = (key) => () => { bench[key] = {start: performance.now(), ready: 0, painted: 0}; };
  const search = panel.querySelector('.jp-nbripple-search');
  bench.watch('search', search, () => search.dataset.state === 'ready');
  search.querySelector('.jp-nbripple-search-text')
    .addEventListener('input', bench.start('search'), true);
  const artifact = panel.querySelector('.jp-nbripple-artifact');
  bench.watch('open', artifact, () => artifact.dataset.state === 'ready'
              && !!artifact.querySelector('.jp-nbripple-overview'));
  search.querySelector('.jp-nbripple-results')
    .addEventListener('click', bench.start('open'), true);
  return true;
}
"""
# The lineage view's node is in the page once its tab was shown (then it stays the same).
INSTRUMENT_LINEAGE_JS = """
() => {
  const bench = window.__bench;
  const lineage = document.querySelector('#nbripple-sidebar .jp-nbripple-lineage');
  bench.watch('lineage', lineage, () => {
    const canvas = lineage.querySelector('.jp-nbripple-graph');
    const cy = canvas && canvas._cyreg && canvas._cyreg.cy;
    return lineage.dataset.state === 'ready' && !!cy && cy.nodes().length >= bench.wantNodes;
  });
  lineage.querySelector('select[aria-label="Depth"]')
    .addEventListener('change', bench.start('lineage'), true);
  return true;
}
"""

PAINTED_JS = "(key) => { const s = window.__bench[key]; return s.painted > 0; }"
STAMP_JS = "(key) => window.__bench[key]"


def open_panel(page: Any, lab: Any) -> Any:
    page.goto(lab.url("lab"))
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.restored)",
                           timeout=90_000)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="nbripple-sidebar"]')
    tab.wait_for(timeout=60_000)
    panel = page.locator("#nbripple-sidebar")
    # activate, not click: a click toggles a panel the restorer may have opened meanwhile
    page.evaluate("() => window.jupyterapp.shell.activateById('nbripple-sidebar')")
    panel.wait_for(state="visible")
    page.wait_for_function(
        "() => document.querySelector('#nbripple-sidebar .jp-nbripple-search')"
        ".dataset.state === 'ready'", timeout=60_000)
    page.evaluate(INSTRUMENT_JS)
    return panel


def took(page: Any, key: str, timeout_ms: float = 30_000) -> tuple[float, float]:
    """(ms to ready, ms to painted) of the last ``key`` action, once painted."""
    page.wait_for_function(PAINTED_JS, arg=key, timeout=timeout_ms)
    stamp = page.evaluate(STAMP_JS, key)
    return stamp["ready"] - stamp["start"], stamp["painted"] - stamp["start"]


def search_ready(page: Any) -> None:
    page.wait_for_function(
        "() => document.querySelector('#nbripple-sidebar .jp-nbripple-search')"
        ".dataset.state === 'ready'")


def measure_search(page: Any, panel: Any, queries: list[str]) -> dict[str, list[float]]:
    box = panel.locator(".jp-nbripple-search-text")
    found: dict[str, list[float]] = {"ready": [], "painted": [], "results": []}
    for n, text in enumerate(["warm up", "model", *queries]):
        box.fill("")
        search_ready(page)
        box.press_sequentially(text, delay=TYPING_DELAY_MS)
        ready, painted = took(page, "search")
        rows = panel.locator(".jp-nbripple-result").count()
        if n >= 2:  # the first two warm the server up
            found["ready"].append(ready)
            found["painted"].append(painted)
            found["results"].append(rows)
    return found


def measure_opens(page: Any, panel: Any, count: int) -> dict[str, list[float]]:
    box = panel.locator(".jp-nbripple-search-text")
    box.fill("")
    search_ready(page)
    found: dict[str, list[float]] = {"ready": [], "painted": []}
    for i in range(count + 2):
        results = panel.locator(".jp-nbripple-result")
        results.nth(i % results.count()).click()
        ready, painted = took(page, "open")
        if i >= 2:
            found["ready"].append(ready)
            found["painted"].append(painted)
        panel.locator(".jp-nbripple-back").click()
        search_ready(page)
    return found


def measure_lineage(page: Any, panel: Any, draws: int, nodes: int
                    ) -> dict[str, list[float]]:
    page.evaluate("() => window.jupyterapp.commands.execute('nbripple:open-artifact', "
                  "{ref: 'bench_chain@1'})")
    artifact = panel.locator(".jp-nbripple-artifact")
    page.wait_for_function(
        "() => document.querySelector('#nbripple-sidebar .jp-nbripple-artifact')"
        ".dataset.ref === 'bench_chain@1'")
    artifact.locator('.jp-nbripple-tab[data-tab="Lineage"]').click()
    lineage = panel.locator(".jp-nbripple-lineage")
    page.wait_for_function(
        "() => document.querySelector('#nbripple-sidebar .jp-nbripple-lineage')"
        ".dataset.state === 'ready'")
    page.evaluate(INSTRUMENT_LINEAGE_JS)
    lineage.locator('select[aria-label="Direction"]').evaluate("s => { s.value = 'down'; }")
    depth = lineage.locator('select[aria-label="Depth"]')
    found: dict[str, list[float]] = {"ready": [], "painted": [], "layout": [], "nodes": []}
    for i in range(draws + 1):
        page.evaluate("() => { window.__bench.wantNodes = 0; }")
        depth.select_option("1")
        took(page, "lineage")
        page.evaluate("(n) => { window.__bench.wantNodes = n; }", nodes)
        depth.select_option("all")
        ready, painted = took(page, "lineage", timeout_ms=60_000)
        drawn = page.evaluate(
            "() => { const l = document.querySelector('#nbripple-sidebar .jp-nbripple-lineage');"
            " return {ms: Number(l.dataset.layoutMs),"
            " nodes: l.querySelector('.jp-nbripple-graph')._cyreg.cy.nodes().length}; }")
        if i >= 1:  # the first draw warms up
            found["ready"].append(ready)
            found["painted"].append(painted)
            found["layout"].append(drawn["ms"])
            found["nodes"].append(drawn["nodes"])
    return found


def summary(label: str, samples: list[float]) -> list[str]:
    return [label, f"{percentile(samples, 50):.1f}", f"{percentile(samples, 95):.1f}",
            f"{min(samples):.1f}", f"{max(samples):.1f}", str(len(samples))]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run (10,000 versions, fewer samples)")
    args = parser.parse_args()
    n_versions = 10_000 if args.quick else 100_000
    queries = QUERIES[:8] if args.quick else QUERIES
    opens, draws = (8, 3) if args.quick else (20, 7)
    fixtures = browser_fixtures()
    chromium = fixtures.CHROMIUM
    if not chromium.exists():
        print(f"{chromium} is missing: run .ci/install-browser (apt-get install chromium)")
        return 1
    from playwright.sync_api import sync_playwright

    def attempt() -> list[Check]:
        """Build the catalog, start JupyterLab, measure in the page; the checks."""
        with tempfile.TemporaryDirectory(prefix="nbripple-bench-sidebar-") as tmp:
            root = Path(tmp)
            load_s = make_home(root / "home", n_versions, HOPS)
            (root / "lab").mkdir()
            with fixtures.running_lab(root / "lab", root / "home") as lab:
                served = api(lab, "search?text=bench_chain&limit=1")
                graph = api(lab, "lineage?ref=bench_chain@1&depth=all&direction=down")
                nodes = len(graph["elements"]["nodes"])
                assert served and nodes == 1 + 3 * HOPS, (served, nodes)
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=str(chromium),
                                                args=fixtures.CHROMIUM_ARGS, headless=True)
                    try:
                        page = browser.new_context(viewport=fixtures.VIEWPORT).new_page()
                        errors: list[str] = []
                        page.on("pageerror", lambda e: errors.append(str(e)))
                        page.set_default_timeout(30_000)
                        panel = open_panel(page, lab)
                        search = measure_search(page, panel, queries)
                        opened = measure_opens(page, panel, opens)
                        lineage = measure_lineage(page, panel, draws, nodes)
                    finally:
                        browser.close()
                if errors:
                    raise RuntimeError(f"page errors: {errors[:3]}")
        load = os.getloadavg()
        print(f"sidebar benchmark: {n_versions:,} versions bulk-loaded (+{1 + 2 * HOPS} of "
              f"the lineage) in {load_s:.1f} s, served by JupyterLab's nbripple extension; "
              f"chromium {fixtures.VIEWPORT['width']}x{fixtures.VIEWPORT['height']}")
        print(f"search: {len(queries)} queries typed ({TYPING_DELAY_MS} ms between keys), "
              f"results per query: {min(search['results'])}-{max(search['results'])}")
        print(f"opening: {len(opened['painted'])} versions from the latest results")
        print(f"lineage: bench_chain@1 downstream, depth all: {nodes} nodes, "
              f"{len(graph['elements']['edges'])} edges, {len(lineage['painted'])} draws")
        rows = [
            summary("search: last keystroke -> results rendered", search["ready"]),
            summary("  ... and painted", search["painted"]),
            summary("open: click -> Overview rendered", opened["ready"]),
            summary("  ... and painted", opened["painted"]),
            summary("lineage: depth change -> graph ready", lineage["ready"]),
            summary("  ... and painted", lineage["painted"]),
            summary("  the view's data-layout-ms (cytoscape + dagre)", lineage["layout"]),
        ]
        print_table("In the page (ms)", ["figure", "p50", "p95", "min", "max", "n"], rows)
        print(f"\nload average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        return [
            Check("search: keystroke to results painted, p50", percentile(search["painted"], 50),
                  SEARCH_TARGET_MS, " ms"),
            Check("open a version: click to Overview, p50",
                  percentile(opened["painted"], 50), OPEN_TARGET_MS, " ms"),
            Check(f"lineage of {nodes} nodes drawn, median",
                  median(lineage["painted"]), LINEAGE_TARGET_MS, " ms",
                  smoke=SMOKE_LINEAGE_MS),
        ]

    return judge(attempt, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
