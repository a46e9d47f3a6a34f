"""The nbripple sidebar in a real JupyterLab, driven by Debian chromium.

The catalog is prepared by real runs of the blessed-model example (``notebooks/demo.py``:
product_development.ipynb twice, ops.ipynb fired by the watcher, a short prime chain)
before JupyterLab starts; the server extension then owns it, and other processes reach
it through the home's server.json. The tests run in order on one page per test, with
the panel opened as a user opens it (its tab in the left area).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

if TYPE_CHECKING:
    from .conftest import Lab, LabServer

REPO = Path(__file__).resolve().parents[2]
SIDEBAR = "#nbripple-sidebar"
HOSTILE_CARD = """\
# Hostile card

<script>window.__pwned=1</script>

<img src="data:image/gif;base64,AAAA" onerror="window.__pwned=1">
<span onerror="window.__pwned=1" onmouseover="window.__pwned=1">hover me</span>

[click me](javascript:window.__pwned=1)
<a href="javascript:window.__pwned=1">raw link</a>
"""


@pytest.fixture(scope="module")
def lab_home_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home the blessed-model example filled, prepared before JupyterLab starts (its
    extension then holds the catalog file)."""
    base = tmp_path_factory.mktemp("sidebar") / "home"
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("NBRIPPLE_HOME", None)
    done = subprocess.run([sys.executable, str(REPO / "notebooks" / "demo.py"),
                           "--home", str(base), "--primes", "2"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, f"the demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return base


def api(server: LabServer, path: str, method: str = "GET", body: Any = None) -> Any:
    """A request to the nbripple REST API of the server (token auth, as a script does)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.base_url}nbripple/api/{path}", data=data,
                                     method=method,
                                     headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def open_panel(lab: Lab) -> Any:
    """Load JupyterLab and open the nbripple panel by its tab; return the panel."""
    page = lab.page
    page.goto(lab.server.url("lab"))
    tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="nbripple-sidebar"]')
    expect(tab).to_be_visible(timeout=60_000)
    # The layout restorer may reopen the panel (it was open when the last test ended).
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.restored)",
                           timeout=60_000)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    panel = page.locator(SIDEBAR)
    # Activate, not click: a click toggles, so it would close a panel the restorer
    # opened between a visibility check and the click.
    page.evaluate("() => window.jupyterapp.shell.activateById('nbripple-sidebar')")
    expect(panel).to_be_visible()
    return panel


def search(panel: Any, text: str, filters: str = "") -> None:
    panel.locator(".jp-nbripple-search-text").fill(text)
    panel.locator(".jp-nbripple-search-filters").fill(filters)


def open_blessed_model(lab: Lab) -> tuple[Any, str]:
    """Search ``model`` with ``blessed=true`` and open the result; return the panel and ref."""
    panel = open_panel(lab)
    search(panel, "model", "blessed=true")
    results = panel.locator(".jp-nbripple-result")
    expect(results.first).to_be_visible()
    expect(panel.locator(".jp-nbripple-search")).to_have_attribute("data-state", "ready")
    refs = results.evaluate_all("rows => rows.map(r => r.dataset.ref)")
    partitions = results.locator(".jp-nbripple-partitions").all_inner_texts()
    assert len(partitions) == len(refs) and all("blessed=true" in p for p in partitions), \
        (refs, partitions)
    ref = next(r for r in refs if r.startswith("blessed_model@"))
    results.and_(panel.locator(f'[data-ref="{ref}"]')).click()
    artifact = panel.locator(".jp-nbripple-artifact")
    expect(artifact).to_have_attribute("data-state", "ready")
    expect(artifact).to_have_attribute("data-ref", ref)
    return panel, ref


def no_errors(lab: Lab) -> None:
    """No page errors and no console errors."""
    errors = [line for line in lab.log.console if line.startswith("error:")]
    assert not errors and not lab.log.page_errors, lab.log.dump()


def test_search_opens_the_blessed_model_with_its_producer_and_a_copyable_snippet(
        lab: Lab) -> None:
    lab.page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                       origin=lab.server.base_url.rstrip("/"))
    panel, ref = open_blessed_model(lab)
    expected = api(lab.server, f"versions/{ref.replace('@', '/')}")
    overview = panel.locator(".jp-nbripple-overview")
    expect(overview.locator(".jp-nbripple-producer")).to_contain_text(
        "product_development.ipynb")
    expect(overview.locator(".jp-nbripple-producer")).to_contain_text(
        expected["producer"]["id"][:8])
    expect(overview.locator(".jp-nbripple-snippet")).to_have_text(expected["snippet"])
    copy = overview.locator(".jp-nbripple-copy")
    copy.click()
    expect(copy).to_have_attribute("data-copied", "true")
    assert lab.page.evaluate("() => navigator.clipboard.readText()") == expected["snippet"]

    shots = lab.server.tmp / "screenshots"
    shots.mkdir(exist_ok=True)
    lab.page.screenshot(path=str(shots / "sidebar-light.png"))
    panel.screenshot(path=str(shots / "panel-light.png"))
    lab.page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                      "{theme: 'JupyterLab Dark'})")
    lab.page.wait_for_function(
        "() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    lab.page.wait_for_timeout(500)  # the theme's stylesheet applies
    lab.page.screenshot(path=str(shots / "sidebar-dark.png"))
    panel.screenshot(path=str(shots / "panel-dark.png"))
    lab.page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                      "{theme: 'JupyterLab Light'})")
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
    print(f"\nsidebar screenshots in {shots}")
    no_errors(lab)


def test_a_hostile_card_renders_with_nothing_active(lab: Lab) -> None:
    panel, ref = open_blessed_model(lab)
    panel.locator('.jp-nbripple-tab[data-tab="Card"]').click()
    card = panel.locator(".jp-nbripple-card")
    before = len(api(lab.server, f"versions/{ref.replace('@', '/')}/card")["history"])
    card.locator(".jp-nbripple-card-edit").click()
    lab.page.locator(".jp-nbripple-card-editor").fill(HOSTILE_CARD)
    lab.page.locator(".jp-Dialog .jp-mod-accept").click()
    html = card.locator(".jp-nbripple-card-html")
    expect(html.locator("h1")).to_have_text("Hostile card")
    expect(card.locator(".jp-nbripple-history li")).to_have_count(before + 1)
    html.locator("text=hover me").hover()
    state = lab.page.evaluate("""() => ({
      pwned: window.__pwned,
      scripts: document.querySelectorAll('.jp-nbripple-card-html script').length,
      onAttrs: Array.from(document.querySelectorAll('.jp-nbripple-card-html *'))
        .flatMap(e => Array.from(e.attributes).map(a => a.name))
        .filter(n => n.toLowerCase().startsWith('on')),
      jsLinks: Array.from(document.querySelectorAll('[href]'))
        .map(e => e.getAttribute('href')).filter(h => /^\\s*javascript:/i.test(h)),
    })""")
    assert state == {"pwned": None, "scripts": 0, "onAttrs": [], "jsLinks": []}, state
    saved = api(lab.server, f"versions/{ref.replace('@', '/')}/card")
    assert saved["markdown"] == HOSTILE_CARD
    no_errors(lab)


_CY_JS = """
() => {
  const el = document.querySelector('#nbripple-sidebar .jp-nbripple-graph');
  const cy = el && el._cyreg && el._cyreg.cy;
  if (!cy) { return null; }
  const box = el.getBoundingClientRect();
  return {
    root: cy.nodes('.root').map(n => n.data('ref') || n.id()),
    nodes: cy.nodes().map(n => ({id: n.data('ref') || n.id(), type: n.data('type'),
      x: box.left + n.renderedPosition('x'), y: box.top + n.renderedPosition('y')})),
    edges: cy.edges().length,
  };
}
"""


def test_the_lineage_draws_and_a_node_click_recentres_it(lab: Lab) -> None:
    panel, ref = open_blessed_model(lab)
    panel.locator('.jp-nbripple-tab[data-tab="Lineage"]').click()
    lineage = panel.locator(".jp-nbripple-lineage")
    expect(lineage).to_have_attribute("data-state", "ready")
    expect(lineage).to_have_attribute("data-centre", ref)
    lineage.locator('select[aria-label="Depth"]').select_option("2")
    lab.page.wait_for_function(
        "() => { const s = (" + _CY_JS + ")(); return s && s.nodes.length > 3; }")
    graph = lab.page.evaluate(_CY_JS)
    assert graph["root"] == [ref] and graph["edges"] >= 2, graph
    # Left to right: the producing execution sits left of the version it made.
    xs = {n["id"]: n["x"] for n in graph["nodes"]}
    others = [n for n in graph["nodes"] if n["type"] == "version" and n["id"] != ref]
    assert others, graph
    target = next((n for n in others if n["id"].startswith("prediction@")), others[0])
    assert any(xs[n["id"]] < xs[ref] for n in graph["nodes"] if n["type"] == "execution"), graph
    lab.page.mouse.click(target["x"], target["y"])
    new_ref = target["id"]
    expect(lineage).to_have_attribute("data-centre", new_ref)
    lab.page.wait_for_function(
        "(id) => { const s = (" + _CY_JS + ")(); return s && s.root[0] === id; }",
        arg=target["id"])
    no_errors(lab)


def test_a_plan_toggles_off_and_on_in_the_catalog(lab: Lab) -> None:
    panel = open_panel(lab)
    panel.locator('.jp-nbripple-nav-item[data-section="Plans"]').click()
    plan = panel.locator('.jp-nbripple-plan[data-plan="trigger_ops"]')
    expect(plan).to_have_attribute("data-state", "active")
    plan.locator(".jp-nbripple-plan-toggle").click()
    expect(plan).to_have_attribute("data-state", "inactive")
    states = {p["name"]: p["active"] for p in api(lab.server, "plans")}
    assert states["trigger_ops"] is False, states
    plan.locator(".jp-nbripple-plan-toggle").click()
    expect(plan).to_have_attribute("data-state", "active")
    states = {p["name"]: p["active"] for p in api(lab.server, "plans")}
    assert states["trigger_ops"] is True, states
    no_errors(lab)


def test_a_version_made_by_another_process_appears_without_a_reload(lab: Lab) -> None:
    panel = open_panel(lab)
    search(panel, "fresh_from_elsewhere")
    expect(panel.locator(".jp-nbripple-search .jp-nbripple-status")).to_have_text(
        "nothing matches")
    env = {**os.environ, "NBRIPPLE_HOME": str(lab.server.home)}
    code = ("import nbripple as nr; "
            "nr.Artifact('fresh_from_elsewhere').create_from({'made': 'elsewhere'})")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    expect(panel.locator('.jp-nbripple-result[data-ref="fresh_from_elsewhere@1"]')
           ).to_be_visible(timeout=5_000)
    no_errors(lab)


# -- launching: Launch…, Relaunch…, Open notebook, Run with nbripple, Show in nbripple ----
RUN_TIMEOUT_MS = 120_000


def execution_ids(server: LabServer) -> set[str]:
    return {e["id"] for e in api(server, "executions?limit=500")}


def started_execution(lab: Lab, panel: Any, before: set[str]) -> str:
    """The execution a form just started: the card the panel opened for it, of an
    execution that was not there before."""
    card = panel.locator(".jp-nbripple-execution-card")
    expect(card).to_be_visible()
    lab.page.wait_for_function(
        "(before) => { const c = document.querySelector("
        "'#nbripple-sidebar .jp-nbripple-execution-card');"
        " return c && !before.includes(c.dataset.id); }", arg=sorted(before))
    execution_id = card.get_attribute("data-id")
    assert execution_id and execution_id not in before
    return execution_id


def finishes(panel: Any, execution_id: str) -> None:
    """The execution's row in the Executions list turns succeeded (live, no reload)."""
    row = panel.locator(f'.jp-nbripple-execution[data-id="{execution_id}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)


def demo_ops_run(server: LabServer) -> dict[str, Any]:
    """The run of ops.ipynb that the demo's watcher started for blessed_model@2 (all
    of it: parameters, inputs...)."""
    row = next(e for e in api(server, "executions?limit=500")
               if (e["trigger"] or {}).get("plan") == "trigger_ops"
               and e["trigger"].get("type") not in ("manual", "relaunch", "rerun")
               and e["status"] == "succeeded")
    found: dict[str, Any] = api(server, f"executions/{row['id']}")
    return found


def open_execution(panel: Any, execution_id: str) -> Any:
    panel.locator('.jp-nbripple-nav-item[data-section="Executions"]').click()
    panel.locator(f'.jp-nbripple-execution[data-id="{execution_id}"]').click()
    card = panel.locator(f'.jp-nbripple-execution-card[data-id="{execution_id}"]')
    expect(card).to_be_visible()
    return card


def test_a_plan_launched_from_the_form_with_an_override_finishes_in_the_executions(
        lab: Lab) -> None:
    panel = open_panel(lab)
    expected = api(lab.server, "plans/trigger_ops/form")
    picked = expected["inputs"][0]["value"]
    assert picked and picked.startswith("blessed_model@"), expected
    before = execution_ids(lab.server)
    panel.locator('.jp-nbripple-nav-item[data-section="Plans"]').click()
    panel.locator('.jp-nbripple-plan[data-plan="trigger_ops"] .jp-nbripple-launch').click()
    form = panel.locator(".jp-nbripple-form")
    expect(form).to_have_attribute("data-state", "ready")
    batch = form.locator('[data-name="batch"] input')
    expect(batch).to_have_value("5")
    expect(batch).to_be_focused()
    model = form.locator('[data-name="model"] select')
    expect(model).to_have_value(picked)
    expect(form.locator('[data-name="model"] .jp-nbripple-form-hint')).to_contain_text(
        f"picked {picked}")
    assert model.locator("option").count() >= 3  # the versions to pick from, and Other
    shots = lab.server.tmp / "screenshots"
    shots.mkdir(exist_ok=True)
    panel.screenshot(path=str(shots / "launch-form-light.png"))
    lab.page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                      "{theme: 'JupyterLab Dark'})")
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    lab.page.wait_for_timeout(500)  # the theme's stylesheet applies
    panel.screenshot(path=str(shots / "launch-form-dark.png"))
    lab.page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                      "{theme: 'JupyterLab Light'})")
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
    batch.fill("7")
    batch.press("Enter")  # the keyboard submits
    expect(form).to_have_count(0)  # the form closes, the run opens under Executions
    assert panel.get_attribute("data-section") == "Executions"
    execution_id = started_execution(lab, panel, before)
    finishes(panel, execution_id)
    ran = api(lab.server, f"executions/{execution_id}")
    assert ran["parameters"] == {"batch": 7, "model": picked}, ran
    assert ran["requested"]["batch"] == 7 and ran["trigger"]["plan"] == "trigger_ops", ran
    expect(panel.locator(f'.jp-nbripple-execution[data-id="{execution_id}"]')).to_contain_text(
        "manual · plan trigger_ops")
    no_errors(lab)


def test_an_execution_relaunched_from_the_form_with_an_override(lab: Lab) -> None:
    original = demo_ops_run(lab.server)
    panel = open_panel(lab)
    before = execution_ids(lab.server)
    card = open_execution(panel, original["id"])
    card.locator(".jp-nbripple-relaunch").click()
    form = panel.locator(".jp-nbripple-form")
    expect(form).to_have_attribute("data-state", "ready")
    expect(form.locator(".jp-nbripple-subtitle")).to_have_text(f"Relaunch {original['id'][:8]}")
    expect(form.locator('[data-name="batch"] input')).to_have_value("5")
    pinned = original["parameters"]["model"]
    expect(form.locator('[data-name="model"] select')).to_have_value(pinned)
    expect(form.locator('[data-name="model"] .jp-nbripple-form-hint')).to_contain_text(
        "given to the original run")
    form.locator('[data-name="batch"] input').fill("3")
    form.locator(".jp-nbripple-form-submit").click()
    expect(form).to_have_count(0)
    execution_id = started_execution(lab, panel, before)
    finishes(panel, execution_id)
    ran = api(lab.server, f"executions/{execution_id}")
    assert ran["parameters"] == {"batch": 3, "model": pinned}, ran
    assert ran["trigger"] == {"type": "relaunch", "of": original["id"]}, ran
    no_errors(lab)


_NOTEBOOK_TAB_JS = """
(path) => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.context || w.context.path !== path || !w.context.isReady) { return null; }
  const cells = w.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    out.push({type: cell.type, source: cell.sharedModel.getSource(),
              outputs: cell.type === 'code' ? cell.outputs.toJSON() : []});
  }
  return out;
}
"""


def test_the_executed_notebook_opens_in_a_tab_with_its_cells_and_outputs(lab: Lab) -> None:
    original = demo_ops_run(lab.server)
    panel = open_panel(lab)
    card = open_execution(panel, original["id"])
    card.locator(".jp-nbripple-open-notebook").click()
    path = f"nbripple-runs/{original['id']}.ipynb"
    lab.page.wait_for_function(f"(p) => !!({_NOTEBOOK_TAB_JS})(p)", arg=path, timeout=60_000)
    cells = lab.page.evaluate(_NOTEBOOK_TAB_JS, path)
    sources = [c["source"] for c in cells]
    assert any(s.startswith("# Parameters") and "model = " in s for s in sources), sources
    results = [o for c in cells for o in c["outputs"] if o["output_type"] == "execute_result"]
    assert results, cells  # table.to_pylist() of the run
    tab = lab.page.locator(".jp-NotebookPanel:visible")
    expect(tab.locator(".jp-OutputArea-output").first).to_be_visible()
    expect(lab.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")).to_contain_text(
        f"{original['id']}.ipynb")
    assert (lab.server.root / path).is_file()
    # again: the open tab is revealed, nothing is written twice
    mtime = (lab.server.root / path).stat().st_mtime_ns
    card.locator(".jp-nbripple-open-notebook").click()
    lab.page.wait_for_function(f"(p) => !!({_NOTEBOOK_TAB_JS})(p)", arg=path)
    assert (lab.server.root / path).stat().st_mtime_ns == mtime
    no_errors(lab)


def write_parameterized(root: Path, name: str, cells: list[str]) -> Path:
    """A notebook in the Jupyter root whose first cell is its parameters cell."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, root / name)
    return root / name


def test_run_with_nbripple_on_a_notebook_file_runs_it_with_its_parameters(lab: Lab) -> None:
    notebook = write_parameterized(lab.server.root, "greeter.ipynb",
                                   ["greeting = 'hi'\ntimes = 2", "print(greeting * times)"])
    page = lab.page
    page.goto(lab.server.url("lab"))
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.restored)",
                           timeout=60_000)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    page.evaluate("() => window.jupyterapp.shell.activateById('filebrowser')")  # see open_panel
    item = page.locator('.jp-DirListing-item[data-file-type="notebook"]',
                        has_text="greeter.ipynb")
    expect(item).to_be_visible()
    before = execution_ids(lab.server)
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text="Run with nbripple…").click()
    panel = page.locator(SIDEBAR)
    expect(panel).to_be_visible()
    form = panel.locator(".jp-nbripple-form")
    expect(form).to_have_attribute("data-state", "ready")
    expect(form.locator(".jp-nbripple-subtitle")).to_have_text("Run greeter.ipynb")
    expect(form.locator('[data-name="greeting"] input')).to_have_value("hi")
    times = form.locator('[data-name="times"] input')
    expect(times).to_have_value("2")
    times.fill("two")  # not an integer: refused in the form, nothing sent
    form.locator(".jp-nbripple-form-submit").click()
    expect(form.locator('[data-name="times"] .jp-nbripple-form-error')).to_have_text(
        "times takes an integer, e.g. 3")
    assert execution_ids(lab.server) == before
    times.fill("3")
    form.locator(".jp-nbripple-form-submit").click()
    expect(form).to_have_count(0)
    execution_id = started_execution(lab, panel, before)
    finishes(panel, execution_id)
    ran = api(lab.server, f"executions/{execution_id}")
    assert ran["parameters"] == {"times": 3}, ran
    assert ran["notebook"] == str(notebook.resolve()), ran
    assert ran["trigger"] == {"type": "manual", "by": "api"}, ran
    executed = api(lab.server, f"executions/{execution_id}/notebook")
    printed = [o.get("text") for c in executed["cells"] for o in c.get("outputs", [])
               if o["output_type"] == "stream"]
    assert printed in (["hihihi\n"], [["hihihi\n"]]), printed
    no_errors(lab)


def test_show_in_nbripple_opens_the_version_a_reference_in_a_cell_names(lab: Lab) -> None:
    lab.write_notebook("refs.ipynb", ['ref = "blessed_model@1"'])
    lab.open_notebook("refs.ipynb")
    page = lab.page
    page.evaluate("""() => {
      const editor = window.jupyterapp.shell.currentWidget.content.activeCell.editor;
      editor.setCursorPosition({line: 0, column: 12});
    }""")
    page.locator(".jp-Cell .cm-content", has_text="blessed_model@1").first.click(
        button="right", position={"x": 90, "y": 8})
    page.locator(".lm-Menu-item", has_text="Show in nbripple").click()
    artifact = page.locator(f"{SIDEBAR} .jp-nbripple-artifact")
    expect(artifact).to_have_attribute("data-ref", "blessed_model@1")
    expect(artifact).to_have_attribute("data-state", "ready")
    # from the palette's command, with a query URI selected
    page.evaluate("""() => {
      const cell = window.jupyterapp.shell.currentWidget.content.activeCell;
      cell.model.sharedModel.setSource('m = "nbripple://blessed_model?blessed=true"');
      cell.editor.setSelection({start: {line: 0, column: 4}, end: {line: 0, column: 43}});
      return window.jupyterapp.commands.execute('nbripple:show-artifact');
    }""")
    newest_blessed = api(lab.server, "resolve?ref=" + urllib.parse.quote(
        "nbripple://blessed_model?blessed=true"))["ref"]
    expect(artifact).to_have_attribute("data-ref", newest_blessed)
    no_errors(lab)


# -- the Object tab's preview ---------------------------------------------------------
def open_version(lab: Lab, ref: str) -> Any:
    """Open ``ref`` from a search for its name; return the panel."""
    panel = open_panel(lab)
    search(panel, ref.split("@")[0])
    result = panel.locator(f'.jp-nbripple-result[data-ref="{ref}"]')
    expect(result).to_be_visible()
    result.click()
    artifact = panel.locator(".jp-nbripple-artifact")
    expect(artifact).to_have_attribute("data-state", "ready")
    expect(artifact).to_have_attribute("data-ref", ref)
    return panel


def test_the_object_tab_shows_a_tables_first_rows(lab: Lab) -> None:
    [found] = api(lab.server, "search?text=prediction&kind=table&limit=1")
    ref = found["ref"]
    expected = api(lab.server, f"versions/{ref.replace('@', '/')}/preview?rows=20")
    assert expected["preview"] == "table" and expected["rows"], expected
    panel = open_version(lab, ref)
    panel.locator('.jp-nbripple-tab[data-tab="Object"]').click()
    holder = panel.locator(".jp-nbripple-preview")
    expect(holder).to_have_attribute("data-state", "ready")
    table = holder.locator("table.jp-nbripple-preview-table")
    expect(table.locator("thead .jp-nbripple-column-name")).to_have_text(
        [c["name"] for c in expected["columns"]])
    expect(table.locator("tbody tr")).to_have_count(len(expected["rows"]))
    cells = table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
    assert cells == [[str(v) if not isinstance(v, float) or not v.is_integer() else
                      str(int(v)) for v in row] for row in expected["rows"]], cells
    expect(holder.locator(".jp-nbripple-preview-summary")).to_contain_text(
        f"{expected['num_rows']} row")
    # the theme's colours, not hard-coded ones: the header follows the dark theme
    light = table.locator("th").first.evaluate("e => getComputedStyle(e).backgroundColor")
    lab.page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                      "{theme: 'JupyterLab Dark'})")
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    lab.page.wait_for_function(
        "(light) => getComputedStyle(document.querySelector("
        "'.jp-nbripple-preview-table th')).backgroundColor !== light", arg=light)
    shots = lab.server.tmp / "screenshots"
    shots.mkdir(exist_ok=True)
    panel.screenshot(path=str(shots / "object-dark.png"))
    lab.page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', "
                      "{theme: 'JupyterLab Light'})")
    lab.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
    no_errors(lab)


def test_the_object_tab_of_a_version_whose_blob_is_gone_says_so_in_one_line(
        lab: Lab) -> None:
    env = {**os.environ, "NBRIPPLE_HOME": str(lab.server.home)}
    code = ("import nbripple as nr, pyarrow as pa, os; "
            "v = nr.Artifact('vanishing').create_from(pa.table({'a': [1, 2]})); "
            "os.unlink(nr.current().store.blob_path(v.content_hash)); print(v.ref)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    ref = done.stdout.split()[-1]
    panel = open_version(lab, ref)
    panel.locator('.jp-nbripple-tab[data-tab="Object"]').click()
    holder = panel.locator(".jp-nbripple-preview")
    expect(holder).to_have_attribute("data-state", "error")
    message = holder.locator(".jp-nbripple-error")
    expect(message).to_contain_text("is missing from the store")
    assert "\n" not in message.inner_text()
    expect(panel.locator(".jp-nbripple-object dd").first).to_have_text(f"nbripple://{ref}")
    # the failed request shows in the console as a resource error, nothing else
    errors = [line for line in lab.log.console if line.startswith("error:")
              and "404" not in line]
    assert not errors and not lab.log.page_errors, lab.log.dump()


# -- the screenshots of the run ---------------------------------------------------------
SCREENSHOTS = REPO / "build" / "screenshots"
"""Where the run leaves its screenshots (git ignores build/): docs/sidebar.png and
docs/sidebar-dark.png are panel-light.png and panel-dark.png of a run."""


def test_the_run_saved_light_and_dark_screenshots(lab_server: LabServer,
                                                 request: pytest.FixtureRequest) -> None:
    import shutil

    taker = test_search_opens_the_blessed_model_with_its_producer_and_a_copyable_snippet
    if not any(getattr(item, "function", None) is taker for item in request.session.items):
        pytest.skip("the test that takes the screenshots is not in this run")
    shots = lab_server.tmp / "screenshots"
    wanted = ["sidebar-light.png", "sidebar-dark.png", "panel-light.png", "panel-dark.png"]
    missing = [name for name in wanted if not (shots / name).is_file()]
    assert not missing, f"not saved by the run: {missing} (in {shots})"
    for theme in ("sidebar", "panel"):  # the dark shot was taken after the theme changed
        light, dark = ((shots / f"{theme}-{t}.png").read_bytes() for t in ("light", "dark"))
        assert light.startswith(b"\x89PNG") and dark.startswith(b"\x89PNG") and light != dark
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        shutil.copy2(shots / name, SCREENSHOTS / name)
    print(f"\nscreenshots of this run in {SCREENSHOTS}")
