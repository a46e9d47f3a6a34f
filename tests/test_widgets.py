"""The notebook widgets, driven from Python through the callbacks the browser calls.

Browser filters and selection change the same widget values a user changes; a node
click on the lineage graph is delivered as the custom comm message the front end
sends, so ipycytoscape's own dispatch runs before the widget re-centres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import nbripple as nr
from nbripple.errors import NotFound
from nbripple.widgets import ArtifactView, Browser, LineageGraphWidget
from nbripple.widgets import graph as graph_module
from nbripple.widgets.cytoscape import PALETTE_ROLES


def V(ref: str) -> str:
    return f"version:{ref}"


def X(execution_id: str) -> str:
    return f"execution:{execution_id}"


@dataclass
class World:
    """raw@1 → train → blessed_model@1..3; blessed_model@2 → ops → prediction@1;
    blessed_model@2 → report (failed); a directory artifact on the side."""

    producer: str
    train: str
    ops: str
    report: str


@pytest.fixture
def world(ws: nr.Workspace, tmp_path: Path) -> World:
    raw = nr.Artifact("raw", description="sensor readings")
    model = nr.Artifact("blessed_model", partition_keys=["blessed"], description="the model")
    prediction = nr.Artifact("prediction")
    with ws.external_execution("producer.py") as producer:
        frame = pd.DataFrame({"reading": range(30), "site": ["<lab>"] * 30})
        ws.create_from(raw, frame, execution_id=producer)
    with ws.external_execution("train.ipynb") as train:
        ws.catalog.record_consumption(train, "raw", 1)
        for blessed in ("false", "true", "false"):
            ws.create_from(model, {"weights": [1, 2], "blessed": blessed},
                           nr.ModelCard(f"# Model ({blessed})"),
                           partitions={"blessed": blessed}, execution_id=train)
    with ws.external_execution("ops.ipynb") as ops:
        ws.catalog.record_consumption(ops, "blessed_model", 2, "model")
        ws.create_from(prediction, 0.93, execution_id=ops)
    with pytest.raises(RuntimeError), ws.external_execution("report.ipynb") as report:
        ws.catalog.record_consumption(report, "blessed_model", 2, "model")
        raise RuntimeError("the report crashed")
    tree = tmp_path / "plots"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.png").write_bytes(b"png")
    (tree / "sub" / "b.txt").write_text("hello")
    nr.Artifact("plots").create_from(tree)
    return World(producer, train, ops, report)


# -- the browser -------------------------------------------------------------------
def refs(browser: Browser) -> list[str]:
    return [v.ref for v in browser.rows]


def test_browser_lists_the_newest_version_of_every_artifact(world: World) -> None:
    browser = nr.browse()
    assert isinstance(browser, Browser)
    assert sorted(refs(browser)) == ["blessed_model@3", "plots@1", "prediction@1", "raw@1"]
    # The table shows one row per result, valued by its ref, in the same order.
    assert [value for _label, value in browser.results.options] == refs(browser)
    label = dict((v, k) for k, v in browser.results.options)["blessed_model@3"]
    assert "blessed_model" in label and "@3" in label and "blessed=true" not in label
    assert "blessed=false" in label and "train.ipynb" in label
    assert "4 versions" in browser.status.value


def test_typing_in_the_search_box_updates_the_table(world: World) -> None:
    browser = nr.browse()
    browser.set_query("model")
    assert refs(browser) == ["blessed_model@3"]
    browser.query.value = "sensor"  # what a keystroke in the browser does
    assert refs(browser) == ["raw@1"]
    browser.query.value = "no such words"
    assert refs(browser) == [] and browser.results.options == ()
    assert "nothing matches" in browser.status.value
    browser.query.value = ""
    assert len(refs(browser)) == 4


def test_partition_and_kind_filters_narrow_the_results(world: World) -> None:
    browser = nr.browse()
    browser.all_versions.value = True
    assert len(refs(browser)) == 6
    browser.set_partitions("blessed=true")
    assert refs(browser) == ["blessed_model@2"]
    browser.set_partitions("blessed=false")
    assert refs(browser) == ["blessed_model@3", "blessed_model@1"]
    browser.set_partitions("")
    browser.set_kind("table")
    assert refs(browser) == ["raw@1"]
    browser.kind.value = "directory"
    assert refs(browser) == ["plots@1"]
    browser.set_kind(None)
    browser.set_query("model")
    browser.set_partitions("blessed=true, blessed=true")
    assert refs(browser) == ["blessed_model@2"]


def test_a_half_typed_partition_filter_says_why_and_keeps_the_table(world: World) -> None:
    browser = nr.browse("model")
    before = refs(browser)
    browser.set_partitions("bless")
    assert refs(browser) == before
    assert "key=value" in browser.status.value
    browser.set_partitions("blessed=true")
    assert refs(browser) == ["blessed_model@2"]


def test_selecting_a_row_opens_the_artifact_view_below_it(world: World) -> None:
    browser = nr.browse("model", partitions="blessed=true")
    assert browser.view is None and browser.view_box.children == ()
    view = browser.select("blessed_model@2")
    assert isinstance(view, ArtifactView)
    assert browser.view_box.children == (view,)
    assert view.tab_titles == ("Overview", "Object", "Card", "Lineage")
    assert view.snippet.value == 'nr.load("blessed_model@2")'
    # A click on another row (a change of the Select's value) replaces the view and
    # closes the old one.
    browser.set_partitions("")
    assert browser.results.value is None  # the open version is not listed now
    browser.all_versions.value = True
    assert browser.results.value == "blessed_model@2"  # listed again: selected again
    assert browser.view is view
    browser.results.value = "blessed_model@1"
    assert browser.view is not None and browser.view.version.ref == "blessed_model@1"
    assert browser.view_box.children == (browser.view,)
    assert view.comm is None and view.tabs.comm is None
    with pytest.raises(ValueError, match="not among the results"):
        browser.select("raw@1@")


# -- the artifact view ---------------------------------------------------------------
def test_overview_names_the_producer_the_consumers_and_a_snippet(world: World) -> None:
    view = nr.show("blessed_model@2")
    overview = view.overview.value
    assert "blessed_model@2" in overview and "nbripple://blessed_model@2" in overview
    assert "blessed=true" in overview
    assert "train.ipynb" in overview and world.train[:8] in overview
    assert "ops.ipynb" in overview and world.ops[:8] in overview
    assert "report.ipynb" in overview and "✗" in overview  # the failed consumer is marked
    assert "blessed_model@3" in overview  # a newer version exists
    # The snippet is for copying: an edit is undone.
    view.snippet.value = "something else"
    assert view.snippet.value == 'nr.load("blessed_model@2")'
    # Showing records no consumption: the consumers are still the two runs.
    consumers = {e.target for e in nr.lineage("blessed_model@2", direction="down").edges}
    assert consumers == {X(world.ops), X(world.report)}


def test_object_tab_shows_schema_and_first_rows_of_a_table(world: World) -> None:
    view = nr.show("raw@1")
    html = view.object.value
    assert "sha256:" + nr.current().resolve("raw@1").content_hash in html
    assert "reading" in html and "int64" in html  # the schema
    assert "&lt;lab&gt;" in html and "<lab>" not in html  # cells are escaped
    assert "first 10 of 30 rows" in html


def test_object_tab_lists_the_files_of_a_directory(world: World) -> None:
    html = nr.show("plots@1").object.value
    assert "a.png" in html and "sub/b.txt" in html and "2 files" in html


def test_version_widget_is_the_artifact_view(world: World) -> None:
    view = nr.current().resolve("prediction@1").widget()
    assert isinstance(view, ArtifactView) and view.version.ref == "prediction@1"
    assert "0.93" in view.object.value
    assert "no card yet" in view.card.value



def test_widgets_read_the_workspace_they_are_given(world: World, ws: nr.Workspace,
                                                   tmp_path: Path) -> None:
    version = ws.resolve("blessed_model@2")
    other = nr.use(nr.init_home(tmp_path / "elsewhere"))  # now current: knows nothing
    try:
        view = ArtifactView(version)  # the version's own workspace, not the current one
        assert view.workspace is ws and "blessed_model@3" in view.overview.value
        assert view.lineage_widget.recenter(X(world.ops)).root == X(world.ops)
        assert refs(Browser(workspace=ws, text="model")) == ["blessed_model@3"]
        assert refs(Browser(text="model")) == []  # the current workspace's
    finally:
        other.catalog.close()
        nr.use(ws.home)

def test_lineage_tab_draws_one_hop_when_opened(world: World) -> None:
    view = nr.show("blessed_model@2")
    assert view._graph_widget is None  # not drawn while hidden
    view.open_tab("Lineage")
    graph = view.lineage_widget
    assert isinstance(graph, LineageGraphWidget)
    assert view._lineage_box.children == (graph,)
    assert graph.centre == V("blessed_model@2")
    assert set(graph.node_ids) == {V("blessed_model@2"), X(world.train), X(world.ops),
                                   X(world.report)}
    with pytest.raises(ValueError, match="no tab"):
        view.open_tab("Graph")


# -- the lineage graph -------------------------------------------------------------------
def test_graph_draws_versions_and_executions_differently_with_arrows(world: World) -> None:
    g = nr.lineage("blessed_model@2").widget(theme="light")
    canvas = g.canvas
    assert "version" in canvas.node_classes(V("blessed_model@2"))
    assert "root" in canvas.node_classes(V("blessed_model@2"))
    assert "execution" in canvas.node_classes(X(world.ops))
    assert {"execution", "failed"} <= canvas.node_classes(X(world.report))
    assert canvas.node_data(X(world.report))["display"].startswith("✗ report.ipynb")
    assert canvas.node_data(V("blessed_model@2"))["display"] == "blessed_model@2\nblessed=true"
    style = {rule["selector"]: rule["style"] for rule in canvas.style}
    assert style["node"]["label"] == "data(display)"
    assert style["node.version"]["shape"] != style["node.execution"]["shape"]
    assert style["node.version"]["background-color"] != style["node.execution"]["background-color"]
    assert style["node.failed"]["background-color"] == graph_module.palette("light")["failed"]
    assert style["edge.directed"]["target-arrow-shape"] == "triangle"
    assert all("directed" in edge.classes for edge in canvas.widget.graph.edges)
    assert canvas.layout["name"] == "dagre" and canvas.layout["rankDir"] == "LR"


def test_clicking_a_node_recentres_the_graph_on_it(world: World) -> None:
    g = nr.lineage("prediction@1").widget()
    assert g.centre == V("prediction@1")
    assert set(g.node_ids) == {V("prediction@1"), X(world.ops)}
    g.canvas.click(X(world.ops))  # the comm message a click in the browser sends
    assert g.clicks == [X(world.ops)]
    assert g.centre == X(world.ops)
    assert set(g.node_ids) == {X(world.ops), V("blessed_model@2"), V("prediction@1")}
    assert "root" in g.canvas.node_classes(X(world.ops))
    g.canvas.click(V("blessed_model@2"))
    assert g.centre == V("blessed_model@2")
    assert set(g.node_ids) == {V("blessed_model@2"), X(world.train), X(world.ops),
                               X(world.report)}
    g.canvas.click(X(world.train))
    assert set(g.node_ids) == {X(world.train), V("raw@1"), V("blessed_model@1"),
                               V("blessed_model@2"), V("blessed_model@3")}
    assert g.clicks == [X(world.ops), V("blessed_model@2"), X(world.train)]
    assert not g.back_button.disabled
    g.back()
    assert g.centre == V("blessed_model@2")
    g.canvas.click(V("blessed_model@2"))  # a click on the centre changes nothing
    assert g.centre == V("blessed_model@2") and len(g.clicks) == 4
    with pytest.raises(KeyError):
        g.canvas.click(V("prediction@1"))  # not drawn around blessed_model@2


def test_recentering_on_an_unknown_node_is_a_clear_error(world: World) -> None:
    g = nr.lineage("prediction@1").widget()
    with pytest.raises(NotFound):
        g.recenter("version:nothing@1")
    assert g.centre == V("prediction@1")


def test_refresh_shows_runs_made_since_the_graph_was_drawn(world: World,
                                                          ws: nr.Workspace) -> None:
    g = nr.lineage("prediction@1").widget()
    with ws.external_execution("dashboard.ipynb") as dashboard:
        ws.catalog.record_consumption(dashboard, "prediction", 1)
    assert X(dashboard) not in g.node_ids
    g.refresh_button.click()
    assert X(dashboard) in g.node_ids


def test_graph_colours_come_from_the_theme_variables(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    light, dark = graph_module.palette("light"), graph_module.palette("dark")
    assert set(light) == set(PALETTE_ROLES) == set(dark)
    assert light["text"] != dark["text"]
    # "auto" follows JupyterLab's theme setting.
    settings = tmp_path / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "themes.jupyterlab-settings").write_text(
        '{\n  // chosen in the menu\n  "theme": "JupyterLab Dark"\n}')
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path))
    assert graph_module.current_theme() == "dark"
    assert graph_module.palette("auto") == dark
    # Values are read from the installed theme CSS, var() references resolved.
    css = ("--md-blue-700:#102030;--jp-brand-color1:var(--md-blue-700,#1976d2);"
           "--jp-error-color1:var(--md-red-700,#d32f2f);--jp-ui-font-color1:rgba(0,0,0,.87)")
    monkeypatch.setattr(graph_module, "_theme_css", lambda theme: css)
    graph_module.theme_variables.cache_clear()
    try:
        themed = graph_module.palette("light")
    finally:
        graph_module.theme_variables.cache_clear()
    assert themed["version"] == "#102030"  # the variable's own value
    assert themed["failed"] == "#d32f2f"  # the var() fallback
    assert themed["text"] == "rgba(0,0,0,0.87)"  # normalized for cytoscape.js
    with pytest.raises(ValueError, match="theme must be"):
        graph_module.palette("sepia")
