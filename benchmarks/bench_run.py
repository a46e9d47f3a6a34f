"""`nbripple run` vs plain papermill on the same trivial notebook.

Both run in this process, interleaved, each on a fresh kernel; the figure is the
ratio of medians (target <= 1.15).

    python benchmarks/bench_run.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm
from nbformat.v4 import new_code_cell, new_notebook

import nbripple as nr
from _common import Check, judge

TARGET = 1.15
SMOKE = 1.5  # --quick: 2 rounds, so one slow kernel start weighs on the median


def trivial_notebook(path: Path) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell("y = x + 1"), new_code_cell("print(y)")]
    nbformat.write(nb, str(path))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds (a smoke run)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rounds = 2 if args.quick else max(args.rounds, 5)

    def attempt() -> list[Check]:
        """Run both, interleaved, print the medians; the check."""
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            ws = nr.use(nr.init_home(root))
            notebook = trivial_notebook(root / "trivial.ipynb")
            output = root / "out.ipynb"
            # warm both paths once (imports, kernelspec lookup)
            pm.execute_notebook(str(notebook), str(output), progress_bar=False)
            nr.run(notebook, workspace=ws)
            plain: list[float] = []
            ours: list[float] = []
            for i in range(rounds):
                order = (0, 1) if i % 2 == 0 else (1, 0)
                for which in order:
                    start = time.perf_counter()
                    if which == 0:
                        pm.execute_notebook(str(notebook), str(output), parameters={"x": i},
                                            progress_bar=False)
                        plain.append(time.perf_counter() - start)
                    else:
                        ex = nr.run(notebook, parameters={"x": i}, workspace=ws)
                        assert ex.status == "succeeded", ex.error
                        ours.append(time.perf_counter() - start)
            p50_plain, p50_ours = statistics.median(plain), statistics.median(ours)
            ratio = p50_ours / p50_plain
            print(f"rounds: {rounds} (interleaved, fresh kernel each run)")
            print(f"papermill.execute_notebook  median {p50_plain * 1000:8.1f} ms")
            print(f"nbripple run                median {p50_ours * 1000:8.1f} ms")
            print(f"ratio nbripple/papermill    {ratio:8.3f}")
            return [Check("nbripple run / papermill, median", ratio, TARGET, smoke=SMOKE)]

    return judge(attempt, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
