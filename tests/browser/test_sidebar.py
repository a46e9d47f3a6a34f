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
    if not panel.is_visible():
        tab.click()
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
