"""The nbripple demo: the blessed-model meta-workflow, end to end, on the embedded default.

    make demo            (or: python notebooks/demo.py [--home DIR])

1. a fresh home (DuckDB catalog + local store) in ./demo-home/.nbripple;
2. the launch plans of the examples are registered and activated, and a watcher
   starts in this process;
3. product_development.ipynb runs twice: an un-blessed model (nothing fires), then a
   blessed one — the watcher runs ops.ipynb by itself, with that model as its input;
4. find_next_prime.ipynb starts a self-triggering chain that stops at its
   max_chain_depth;
5. the artifacts, the plans and the lineage of the prediction are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

import nbripple as nr
from nbripple.cli import main as cli
from nbripple.launchplans import load_plans_file

HERE = Path(__file__).resolve().parent
os.environ.setdefault("COLUMNS", "120")  # readable tables when the output is not a terminal
console = Console()


def step(title: str) -> None:
    console.print(Rule(f"[bold]{title}"))


def nbripple(*args: str) -> None:
    """Run an `nbripple` CLI command in this process and show it."""
    console.print(f"[dim]$ nbripple {' '.join(args)}[/]")
    cli.main(list(args), standalone_mode=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default="demo-home",
                        help="where to create the demo's .nbripple/ (reset on every run)")
    parser.add_argument("--primes", type=int, default=10, help="max_chain_depth of the loop")
    args = parser.parse_args()
    started = time.monotonic()

    base = Path(args.home).resolve()
    if (base / ".nbripple").exists():
        shutil.rmtree(base / ".nbripple")
    home = nr.init_home(base)
    ws = nr.use(home)
    step(f"1. a fresh home at {home}")

    step("2. launch plans, and a watcher in this process")
    for plans_file in (HERE / "blessed_model" / "plans.py", HERE / "find_next_prime" / "plans.py"):
        for plan in load_plans_file(plans_file):
            if plan.name == "next_prime":
                plan.max_chain_depth = args.primes
            nr.register(plan)
            nr.activate(plan.name)
    watcher = nr.Watcher(poll_interval=0.05).start()
    nbripple("--home", str(home), "plans")

    step("3. product development: an un-blessed model, then a blessed one")
    producer = HERE / "blessed_model" / "product_development.ipynb"
    first = nr.run(producer, parameters={"blessed": "false", "seed": 0})
    console.print(f"run {first.id}: {first.status} -> {[v.ref for v in first.outputs]}")
    second = nr.run(producer, parameters={"blessed": "true", "seed": 1})
    console.print(f"run {second.id}: {second.status} -> {[v.ref for v in second.outputs]}")
    console.print("[dim]the watcher sees blessed_model@2 (blessed=true) and runs ops.ipynb...[/]")

    step("4. find_next_prime: a self-triggering chain")
    kickoff = nr.run(HERE / "find_next_prime" / "find_next_prime.ipynb")
    console.print(f"run {kickoff.id}: {kickoff.status} -> {[v.ref for v in kickoff.outputs]}")
    if not watcher.wait_idle(timeout=300, settle=1.5):
        console.print("[red]the watcher did not finish in 5 minutes[/]")
        watcher.stop()
        return 1
    watcher.stop()
    primes = sorted(nr.versions("largest_baillie_wagstaff"), key=lambda v: v.version)
    console.print(f"primes: {[v.load() for v in primes]}")

    step("5. what nbripple knows now")
    nbripple("--home", str(home), "ls")
    nbripple("--home", str(home), "executions", "--limit", "6")
    nbripple("--home", str(home), "plans")
    ops_runs = [e for e in ws.executions(kind="notebook")
                if (e.trigger or {}).get("plan") == "trigger_ops"]
    console.print(f"ops.ipynb ran {len(ops_runs)} time(s), triggered by "
                  f"{[f'{e.trigger_artifact}@{e.trigger_version}' for e in ops_runs]}")
    nbripple("--home", str(home), "lineage", "prediction@1", "--depth", "all", "--up")
    ok = (len(ops_runs) == 1 and ops_runs[0].status == "succeeded"
          and len(primes) == args.primes)

    step(f"done in {time.monotonic() - started:.0f} s")
    console.print(
        "Take the guided tour (it makes its own home next to it):\n"
        "  .venv/bin/jupyter lab notebooks/tour.ipynb\n"
        "Browse this demo's artifacts in a notebook (nr.browse(), nr.lineage(...).widget()):\n"
        f"  NBRIPPLE_HOME={home} .venv/bin/jupyter lab\n"
        "or from the shell:\n"
        f"  .venv/bin/nbripple --home {home} search model\n"
        f"  .venv/bin/nbripple --home {home} show 'nbripple://blessed_model?blessed=true'"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
