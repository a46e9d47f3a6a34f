"""Regenerate the fixture notebooks: python tests/notebooks/make_fixtures.py"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent


def notebook(*cells: tuple[str, str] | str) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for cell in cells:
        if isinstance(cell, tuple) and cell[0] == "parameters":
            code = new_code_cell(cell[1])
            code.metadata["tags"] = ["parameters"]
            nb.cells.append(code)
        elif isinstance(cell, tuple) and cell[0] == "md":
            nb.cells.append(new_markdown_cell(cell[1]))
        else:
            nb.cells.append(new_code_cell(cell))
    for index, made in enumerate(nb.cells):  # stable ids: regenerating changes nothing
        made["id"] = f"cell-{index}"
    return nb


FIXTURES = {
    "trivial.ipynb": notebook(("parameters", "x = 1"), "y = x + 1"),
    "producer_three.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "note = 'three emissions'"),
        "blessed_model = nr.Artifact('blessed_model', partition_keys=['blessed'])",
        "for flag in ('false', 'true', 'false'):\n"
        "    blessed_model.create_from({'weights': [1, 2, 3], 'blessed': flag},\n"
        "                              nr.ModelCard(f'# Model ({flag})'), blessed=flag)",
    ),
    "consumer.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "model = 'nbripple://blessed_model?blessed=true'\nscale = 2"),
        "weights = nr.load(model)['weights']\n"
        "nr.Artifact('prediction').create_from([w * scale for w in weights])",
    ),
    "consumer_query_call.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "model = nr.query('blessed_model', blessed='true')"),
        "nr.Artifact('prediction').create_from(nr.load(model)['weights'])",
    ),
    "fails_in_cell_3.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "x = 1"),
        "nr.Artifact('doomed').create_from({'x': x})",
        "raise ValueError('boom in cell 3')",
        "print('never reached')",
    ),
    "no_parameters_cell.ipynb": notebook("x = 1", "print(x)"),
    "echo.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "text = 'default'"),
        "nr.Artifact('echo').create_from({'text': text})",
    ),
    "optional_input.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "previous = None  # nbripple://counter"),
        "value = 0 if previous is None else nr.load(previous) + 1\n"
        "nr.Artifact('counter').create_from(value)",
    ),
    "emits_twice.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "first = 'a'\nsecond = 'b'"),
        "stream = nr.Artifact('stream')\nstream.create_from(first)\nstream.create_from(second)",
    ),
    "loads_other.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "extra = 'blessed_model@1'"),
        "nr.load(extra)\nnr.Artifact('loaded_other').create_from(1)",
    ),
    "sleeps.ipynb": notebook(
        "import nbripple as nr, time",
        ("parameters", "seconds = 30"),
        "nr.Artifact('sleepy').create_from('before the sleep')",
        "time.sleep(seconds)",
    ),
    "runs_another.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "child = 'echo.ipynb'\ntext = 'from the parent'"),
        "ex = nr.run(child, parameters={'text': text})\n"
        "nr.Artifact('parent_out').create_from({'child': ex.id, 'status': ex.status})",
    ),
    "triggered_work.ipynb": notebook(
        "import time\nimport nbripple as nr",
        ("parameters", "item = 'nbripple://work_item'\nseconds = 0"),
        "time.sleep(seconds)",
        "nr.Artifact('done').create_from(nr.load(item))",
    ),
    "fails_after_big_output.ipynb": notebook(
        "import nbripple as nr",
        ("parameters", "size = 70000"),
        "nr.Artifact('doomed_big').create_from({'blob': 'y' * size})",
        "raise RuntimeError('fails after a large output')",
    ),
    "kills_kernel.ipynb": notebook(
        "import os, signal",
        ("parameters", "x = 1"),
        "print('before the kill')",
        "os.kill(os.getpid(), signal.SIGKILL)",
        "print('never reached')",
    ),
    "unknown_magic.ipynb": notebook("x = 1", "%no_such_magic_here"),
    "counts.ipynb": notebook(
        ("md", "# counts"),
        ("parameters", "n = 2"),
        "a = n * 2",
        "print(a)",
        ("md", "between"),
        "a + 1",
    ),
}


def old_format(minor: int) -> dict[str, object]:
    """A notebook written in nbformat 4.<minor> (no cell ids) failing in cell 3."""
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": f"# nbformat 4.{minor}"},
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 1",
         "outputs": [], "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": "y = x + 1", "outputs": [],
         "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": "raise ValueError('old format')",
         "outputs": [], "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": "print('never reached')",
         "outputs": [], "execution_count": None},
    ]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": minor,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"},
                         "language_info": {"name": "python"}}}


def main() -> None:
    for name, nb in FIXTURES.items():
        nbformat.write(nb, HERE / name)
    for minor in (1, 2, 3, 4):
        (HERE / f"nbformat_4_{minor}.ipynb").write_text(
            json.dumps(old_format(minor), indent=1) + "\n", encoding="utf-8")
    no_spec = notebook(("parameters", "x = 1"), "print(x)")
    del no_spec.metadata["kernelspec"]
    nbformat.write(no_spec, HERE / "no_kernelspec.ipynb")
    alias = notebook(("parameters", "x = 1"), "import sys\nprint(sys.executable)")
    alias.metadata["kernelspec"] = {"name": "python", "display_name": "Python",
                                    "language": "python"}
    nbformat.write(alias, HERE / "kernel_python.ipynb")


if __name__ == "__main__":
    main()
