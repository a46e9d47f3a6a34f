"""nbripple's widgets in a real JupyterLab, driven by Debian chromium.

A notebook populates a home (a papermill run producing a partitioned artifact with a
card, then an interactive ``create_from`` that consumes it, so there is lineage),
displays the search widget and a lineage graph, and is run with JupyterLab's own
"run all cells" command. The test then reads the DOM (the search results, the
cytoscape canvas), clicks a graph node with the mouse, and asks the live kernel
whether the click arrived.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from playwright.sync_api import expect

if TYPE_CHECKING:
    from .conftest import Lab

PRODUCER = """\
import nbripple as nr

raw = nr.Artifact("raw_readings", partition_keys=["site", "day"],
                  description="Sensor readings from the lab")
raw.create_from({"values": [3, 1, 4, 1, 5]},
                nr.DataCard("# Raw readings\\nFive readings from the lab sensor."),
                site="lab", day="2024-05-01")
"""

POPULATE = """\
import nbripple as nr

run = nr.run("producer.ipynb")
assert run.status == "succeeded", run.error
readings = nr.load("raw_readings@1")
model = nr.Artifact("blessed_model", partition_keys=["blessed"],
                    description="The model operations trust")
version = model.create_from({"weights": sorted(readings["values"])},
                            nr.ModelCard("# Blessed model\\nTrained on the lab readings."),
                            blessed="true")
print(version.ref, run.id)
"""

BROWSE = """\
nr.browse()
"""

LINEAGE = """\
g = nr.lineage("blessed_model@1", depth=None).widget()
g
"""

ARTIFACTS = ("raw_readings", "blessed_model")
# What ipywidgets 8 draws in place of a widget it could not load or render.
ERROR_WIDGET = ".jp-Notebook .jupyter-widgets-error-widget"

# The cytoscape instance of the graph view (cytoscape registers it on its container).
_CY_STATE_JS = """
(el) => {
  const cy = el._cyreg && el._cyreg.cy;
  if (!cy) { return null; }
  const canvases = Array.from(el.querySelectorAll('canvas')).map(c => {
    const r = c.getBoundingClientRect();
    let painted = 0;
    try {
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) { painted++; } }
    } catch (e) { painted = -1; }
    return {width: c.width, height: c.height, cssWidth: r.width, cssHeight: r.height,
            painted};
  });
  const nodes = cy.nodes().map(n => ({id: n.id(), x: n.renderedPosition('x'),
                                      y: n.renderedPosition('y')}));
  return {canvases, nodes};
}
"""

# Where a node is on the page, and what the page has at that point.
_NODE_POINT_JS = """
(el, id) => {
  const cy = el._cyreg.cy;
  const node = cy.getElementById(id);
  const box = el.getBoundingClientRect();
  const pos = node.renderedPosition();
  const x = box.left + pos.x, y = box.top + pos.y;
  const hit = document.elementFromPoint(x, y);
  return {x, y, inside: el.contains(hit), hit: hit ? hit.tagName : null};
}
"""


def _cell_output(lab: Lab, index: int) -> Any:
    return lab.page.locator(".jp-Notebook .jp-CodeCell").nth(index).locator(".jp-OutputArea")


def _wait_for_still_layout(graph: Any, timeout: float = 20.0) -> dict[str, Any]:
    """The cytoscape state once the layout has stopped moving nodes."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        state = graph.evaluate(_CY_STATE_JS)
        if state and state["nodes"] and state == previous:
            return dict(state)
        previous = state
        time.sleep(0.3)
    raise AssertionError(f"the graph's layout did not settle: {previous}")


def _poll(read: Any, done: Any, timeout: float = 15.0) -> Any:
    """``read()`` until ``done(value)`` or the timeout; the last value either way."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.3)
        value = read()
    return value


def test_browse_and_lineage_widgets_in_jupyterlab(lab: Lab) -> None:
    lab.write_notebook("producer.ipynb", [PRODUCER])
    lab.write_notebook("widgets.ipynb", [POPULATE, BROWSE, LINEAGE])
    lab.open_notebook("widgets.ipynb")
    lab.run_all_cells()

    # The search widget lists every artifact in its results table (one row each).
    browser = _cell_output(lab, 1).locator(".nbripple-browser")
    expect(browser).to_be_visible()
    rows = browser.locator(".nbripple-results option")
    expect(rows).to_have_count(len(ARTIFACTS))
    for name in ARTIFACTS:
        expect(rows.filter(has_text=name)).to_have_count(1)
    expect(browser).to_contain_text("2 versions")

    # The lineage graph is drawn on a canvas of non-zero size, with painted pixels,
    # and shows the nodes the kernel's widget holds.
    graph = _cell_output(lab, 2).locator(".nbripple-lineage-widget .custom-widget")
    expect(graph).to_have_count(1)
    graph.scroll_into_view_if_needed()
    expect(graph.locator("canvas").first).to_be_attached()
    state = _wait_for_still_layout(graph)
    drawn = lab.kernel_json("g.node_ids")
    assert len(drawn) == 4, drawn  # producer run -> raw_readings@1 -> interactive -> model
    assert {n["id"] for n in state["nodes"]} == set(drawn)
    assert any(c["width"] > 0 and c["height"] > 0 and c["cssWidth"] > 0
               and c["cssHeight"] > 0 for c in state["canvases"]), state["canvases"]
    assert any(c["painted"] > 0 for c in state["canvases"]), state["canvases"]
    assert lab.kernel_json("g.centre") == "version:blessed_model@1"

    # A mouse click on a node reaches the kernel, which re-centres the graph on it;
    # the browser then draws the new graph (one hop around raw_readings@1).
    target = "version:raw_readings@1"
    point = graph.evaluate(_NODE_POINT_JS, target)
    assert point["inside"], f"node {target} is not visible on the page: {point}"
    lab.page.mouse.click(point["x"], point["y"])
    seen = _poll(lambda: lab.kernel_json("{'clicks': g.clicks, 'centre': g.centre}"),
                 lambda v: v["clicks"])
    assert seen == {"clicks": [target], "centre": target}, seen
    recentred = lab.kernel_json("g.node_ids")
    assert target in recentred and len(recentred) == 3, recentred
    redrawn = _poll(lambda: sorted(n["id"] for n in graph.evaluate(_CY_STATE_JS)["nodes"]),
                    lambda ids: ids == sorted(recentred))
    assert redrawn == sorted(recentred), "the browser did not redraw the re-centred graph"

    # No widget failed to load or render, and nothing threw in the page.
    assert not lab.log.widget_errors(), "\n".join(lab.log.widget_errors())
    assert not lab.log.uncaught(), "\n".join(lab.log.uncaught())
    expect(lab.page.locator(ERROR_WIDGET)).to_have_count(0)
    page_text = lab.page.locator(".jp-Notebook").inner_text()
    assert "Error displaying widget" not in page_text
    assert "Failed to load model class" not in page_text


BROKEN_WIDGET = """\
import ipywidgets as W
from traitlets import Unicode


class Missing(W.DOMWidget):
    _model_name = Unicode("MissingModel").tag(sync=True)
    _model_module = Unicode("nbripple-no-such-module").tag(sync=True)
    _model_module_version = Unicode("0.0.1").tag(sync=True)
    _view_name = Unicode("MissingView").tag(sync=True)
    _view_module = Unicode("nbripple-no-such-module").tag(sync=True)
    _view_module_version = Unicode("0.0.1").tag(sync=True)


Missing()
"""


def test_the_console_check_catches_a_widget_that_cannot_load(lab: Lab) -> None:
    """The check above is not vacuous: a widget whose frontend is missing trips it."""
    lab.write_notebook("broken.ipynb", [BROKEN_WIDGET])
    lab.open_notebook("broken.ipynb")
    lab.run_all_cells()
    deadline = time.monotonic() + 20
    while not lab.log.widget_errors() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lab.log.widget_errors(), lab.log.dump()
    expect(lab.page.locator(ERROR_WIDGET)).to_have_count(1)
