"""The package's structure: layers, no import cycles, small modules, thin interfaces.

The layers themselves are import-linter contracts (``.importlinter``, also run by
``make test`` as ``lint-imports``); this file checks what import-linter does not.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "nbripple"
MAX_MODULE_LINES = 500
# Interfaces format and parse; they never reach the catalog object.
INTERFACES = ("cli", "magics", "widgets", "display", "server")


def _own_package_edge(importer: str, imported: str) -> bool:
    """An import between a package ``__init__`` and one of its own submodules."""
    return imported.startswith(importer + ".") or importer.startswith(imported + ".")


def _import_graph() -> nx.DiGraph:
    # Imports for type checkers only never run, so they cannot form a cycle.
    graph = grimp.build_graph("nbripple", exclude_type_checking_imports=True)
    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if not _own_package_edge(module, imported):
                edges.add_edge(module, imported)
    return edges


def test_no_import_cycles_beyond_a_package_and_its_submodules() -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(_import_graph()) if len(c) > 1]
    assert cycles == [], f"import cycles: {cycles}"


def test_a_new_cycle_would_be_found() -> None:
    # The check above relies on grimp seeing function-level imports too.
    graph = grimp.build_graph("nbripple")
    assert graph.modules, "grimp found no modules"
    assert any(graph.find_modules_directly_imported_by(m) for m in graph.modules)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_at_most_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


def _interface_files() -> list[Path]:
    found: list[Path] = []
    for name in INTERFACES:
        if (PACKAGE / name).is_dir():
            found.extend(sorted((PACKAGE / name).rglob("*.py")))
        elif (PACKAGE / f"{name}.py").exists():
            found.append(PACKAGE / f"{name}.py")
    return found


@pytest.mark.parametrize("path", _interface_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_interfaces_never_touch_the_catalog_object(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    touches = [node.lineno for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr == "catalog"]
    assert touches == [], f"{path.relative_to(ROOT)} reaches .catalog at lines {touches}"


def test_import_linter_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is not installed (pip install -e '.[test]')"
    done = subprocess.run([lint, "--config", str(ROOT / ".importlinter"), "--no-cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
