"""Rich display: the reprs and HTML summaries Jupyter shows, escaped and inert."""

from __future__ import annotations

import os
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import nbripple as nr
from nbripple import display
from nbripple.display import CardDisplay, SearchResults

HOSTILE_CARD = """# Model <em>card</em>

<script>document.title = "pwned"</script>

<img src=x onerror=alert(1)>

[click me](javascript:alert(2)) and <a href="javascript:alert(3)">this</a>

<div onclick="alert(4)" style="color:red">styled</div>
"""


class ActiveParts(HTMLParser):
    """Everything in an HTML fragment that a browser would run: script elements,
    ``on*`` handlers, ``javascript:`` URLs, iframes/objects/embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if name in ("href", "src", "action", "formaction", "xlink:href") and value and \
                    value.strip().lower().replace("\x00", "").startswith("javascript:"):
                self.found.append(f"{tag} {name}={value}")


def active_parts(html: str) -> list[str]:
    parser = ActiveParts()
    parser.feed(html)
    parser.close()
    return parser.found


def test_the_checker_sees_active_html() -> None:
    assert active_parts(HOSTILE_CARD) == ["<script>", "img onerror=", "a href=javascript:alert(3)",
                                          "div onclick="]
    assert active_parts("&lt;script&gt; <a href='https://x'>ok</a>") == []


@pytest.fixture
def run_world(ws: nr.Workspace) -> dict[str, str]:
    """An external run that consumed a model and emitted a table, and one that failed."""
    model = nr.Artifact("blessed_model", partition_keys=["blessed"],
                        description="<b>the</b> model")
    version = model.create_from({"weights": [1, 2, 3]}, nr.ModelCard("# Model\nTrained well."),
                                blessed="<img src=x onerror=alert(1)>")
    with ws.external_execution("score.py") as scorer:
        ws.catalog.record_consumption(scorer, "blessed_model", version.version, "model")
        frame = pd.DataFrame({"id": range(12), "note": [f"<td>row {i}</td>" for i in range(12)]})
        ws.create_from(nr.Artifact("scores"), frame, execution_id=scorer)
    with pytest.raises(ValueError), ws.external_execution("broken.py") as broken:
        raise ValueError("bad <input> & worse")
    return {"scorer": scorer, "broken": broken, "model": version.ref}


# -- versions ------------------------------------------------------------------------
def test_version_repr_is_one_line_with_its_summary(run_world: dict[str, str]) -> None:
    v = nr.current().resolve("blessed_model@1")
    text = repr(v)
    assert "\n" not in text
    assert text.startswith("<ArtifactVersion blessed_model@1 · value · blessed=<img")
    assert f"by execution {v.execution_id[:8]}" in text
    assert "card: '# Model Trained well.'" in text
    assert str(v) == "blessed_model@1"


def test_version_html_summarises_and_escapes(run_world: dict[str, str]) -> None:
    v = nr.current().resolve("blessed_model@1")
    html = v._repr_html_()
    assert active_parts(html) == []
    assert "blessed=&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;the&lt;/b&gt; model" in html  # the description, escaped
    assert "# Model Trained well." in html  # the card's first words
    assert "nr.load(&quot;blessed_model@1&quot;)" in html
    assert "value (dict)" in html
    assert "&quot;weights&quot;" in html  # a small value is shown
    producer = nr.current().execution(v.execution_id)
    assert f"interactive {producer.id[:8]}" in html


def test_table_html_previews_the_first_rows_escaped(run_world: dict[str, str]) -> None:
    v = nr.current().resolve("scores@1")
    html = v._repr_html_()
    assert active_parts(html) == []
    assert "&lt;td&gt;row 4&lt;/td&gt;" in html and "row 5" not in html
    assert f"first {display.PREVIEW_ROWS} of 12 rows" in html
    assert "note<br><small>large_string</small>" in html or "note<br><small>string</small>" in html
    preview = display.table_preview(v, 3)
    assert preview.columns == ["id", "note"] and preview.total_rows == 12
    assert preview.rows == [["0", "<td>row 0</td>"], ["1", "<td>row 1</td>"],
                            ["2", "<td>row 2</td>"]]


def test_previews_record_no_consumption(run_world: dict[str, str]) -> None:
    v = nr.current().resolve("scores@1")
    v._repr_html_()
    display.table_preview(v)
    assert nr.lineage("scores@1", direction="down").edges == []


def test_a_big_table_is_not_read_for_a_preview(run_world: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display, "PREVIEW_MAX_BYTES", 100)
    html = nr.current().resolve("scores@1")._repr_html_()
    assert "no preview: the table is" in html and "row 0" not in html


def test_a_missing_blob_is_reported_in_the_preview(run_world: dict[str, str]) -> None:
    ws = nr.current()
    v = ws.resolve("scores@1")
    Path(ws.store.blob_path(v.content_hash)).unlink()
    html = v._repr_html_()
    assert "no preview:" in html and "scores@1" in html


# -- executions ----------------------------------------------------------------------
def test_execution_repr_and_html(run_world: dict[str, str]) -> None:
    ex = nr.execution(run_world["scorer"])
    assert repr(ex).startswith(f"<Execution {ex.id[:8]} external · score.py · succeeded · ")
    html = ex._repr_html_()
    assert active_parts(html) == []
    assert "succeeded" in html and "score.py" in html
    assert "blessed_model@1</code> as model" in html  # inputs, with their parameter
    assert "scores@1" in html  # outputs
    assert "duration" in html and "finished" in html


def test_failed_execution_shows_its_error_escaped(run_world: dict[str, str]) -> None:
    ex = nr.execution(run_world["broken"])
    assert "failed" in repr(ex) and "error: ValueError" in repr(ex)
    html = ex._repr_html_()
    assert "ValueError: bad &lt;input&gt; &amp; worse" in html
    assert "<input>" not in html
    assert "var(--jp-error-color1" in html


# -- lineage and search ----------------------------------------------------------------
def test_lineage_html_lists_edges_and_the_tree(run_world: dict[str, str]) -> None:
    g = nr.lineage("scores@1", depth=None, direction="up")
    html = g._repr_html_()
    assert active_parts(html) == []
    assert "lineage of scores@1" in html
    assert "consumed →" in html and "produced →" in html
    assert "score.py" in html and "blessed_model@1" in html
    assert "<details><summary>as a tree</summary>" in html
    assert repr(g).startswith("<LineageGraph root=version:scores@1")


def test_search_returns_a_list_that_displays_as_a_table(run_world: dict[str, str]) -> None:
    found = nr.search("model")
    assert isinstance(found, SearchResults) and isinstance(found, list)
    assert found == nr.current().search("model") and [v.ref for v in found] == ["blessed_model@1"]
    assert found.describe() == "'model'"
    html = found._repr_html_()
    assert active_parts(html) == []
    assert "<b>blessed_model</b>" in html and "1 version" in html
    assert "blessed=&lt;img" in html
    text = repr(found)
    assert text.startswith("<SearchResults for 'model': 1 version\n  blessed_model@1 · value")
    everything = nr.search(kind="table")
    assert [v.ref for v in everything] == ["scores@1"] and everything.describe() == "kind=table"
    nothing = nr.search("zzz", partitions={"blessed": "no"})
    assert nothing == [] and "nothing matches" in nothing._repr_html_()
    assert repr(nothing) == "<SearchResults for 'zzz' blessed=no: 0 versions>"


# -- cards -----------------------------------------------------------------------------
def test_a_hostile_card_renders_with_nothing_active(ws: nr.Workspace) -> None:
    """<script>, <img onerror> and javascript: links stay inert in the version's HTML
    summary, in nr.card and in the Card tab of the artifact view."""
    model = nr.Artifact("hostile")
    version = model.create_from(1, nr.ModelCard(HOSTILE_CARD))
    assert len(active_parts(HOSTILE_CARD)) == 4  # the card itself is hostile

    summary = version._repr_html_()
    assert active_parts(summary) == []

    shown = nr.card("hostile@1")
    assert isinstance(shown, CardDisplay) and shown.card_type == "model"
    for html in (shown._repr_html_(), shown.html):
        assert active_parts(html) == []
        assert "<h1>Model <em>card</em></h1>" in html  # the Markdown is rendered
        assert "styled" in html and "click me" in html
        assert "pwned" not in html
    assert repr(shown).startswith("<model card of hostile@1>\n# Model")

    tab = nr.show("hostile@1").card.value
    assert active_parts(tab) == []
    assert "<h1>Model <em>card</em></h1>" in tab


def test_card_of_a_version_without_one_says_how_to_add_it(ws: nr.Workspace) -> None:
    nr.Artifact("bare").create_from(1)
    shown = nr.card("bare")
    assert shown.html == "" and repr(shown) == "<no card on bare@1>"
    assert "no card yet" in shown._repr_html_()
    assert "%%nbripple card bare@1" in shown._repr_html_()


def test_a_kernel_command_line_reads_as_jupyter_kernel(ws: nr.Workspace) -> None:
    label = "ipykernel_launcher.py -f /very/long/runtime/dir/kernel-5a1631d2-1fcb.json"
    with ws.external_execution(label) as kernel:
        ws.create_from(nr.Artifact("made_in_a_kernel"), 1, execution_id=kernel)
    assert display.execution_title(nr.execution(kernel)) == "Jupyter kernel"
    html = nr.search("made_in_a_kernel")._repr_html_()
    assert "Jupyter kernel (external" in html and "runtime/dir" not in html
    with ws.external_execution("x" * 100) as long_label:
        pass
    assert display.execution_title(nr.execution(long_label)) == "x" * 39 + "…"


def test_a_staged_output_has_no_load_snippet_yet(ws: nr.Workspace) -> None:
    committed = nr.Artifact("pending").create_from({"a": 1})
    staged = replace(committed, version=0, meta={"staged": 1})
    assert repr(staged).startswith("<ArtifactVersion pending@staged-1 · value")
    html = staged._repr_html_()
    assert "pending@staged-1" in html and "gets its number when the run succeeds" in html
    assert "nr.load(" not in html


# -- records without a workspace, and without a presenter ------------------------------
def test_a_record_without_a_workspace_says_so_instead_of_guessing(ws: nr.Workspace) -> None:
    v = replace(nr.Artifact("loose").create_from([1, 2]), _workspace=None)
    with ws.external_execution("derive.py") as derive:
        ws.catalog.record_consumption(derive, "loose", 1)
        ws.create_from(nr.Artifact("derived"), 3, execution_id=derive)
    ex = replace(ws.execution(derive), _workspace=None)
    graph = nr.lineage("derived@1", depth=None, direction="up")
    assert [u.ref for u in graph.upstream_versions()] == ["loose@1"]
    graph._workspace = None
    for action in (v.load, v.card_history, lambda: v.download("out"), lambda: ex.inputs,
                   lambda: ex.outputs, nr.Query("loose").get, nr.Query("loose").load,
                   graph.upstream_versions):
        with pytest.raises(nr.NbrippleError, match="is not attached to a workspace"):
            action()
    assert repr(v).startswith("<ArtifactVersion loose@1 · value")  # a repr needs no handle
    html = v._repr_html_()
    # It shows what the record holds: the producer's id, not its details.
    assert "loose@1" in html and f"execution {(v.execution_id or '')[:8]}</td>" in html


def test_queries_and_artifacts_need_no_home_until_used(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys, nbripple as nr\n"
            "q = nr.query('blessed_model', blessed='true')\n"
            "a = nr.Artifact('blessed_model', partition_keys=['blessed'])\n"
            "assert a.query(blessed='true') == q and q.uri.endswith('?blessed=true')\n"
            "print(sorted(m for m in ('nbripple.display', 'nbripple.widgets', 'duckdb')\n"
            "             if m in sys.modules))\n")
    env = {**os.environ, "NBRIPPLE_HOME": str(tmp_path / "nowhere" / ".nbripple")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True)
    assert done.stdout.strip() == "[]"
    assert not (tmp_path / "nowhere").exists()


def test_records_fall_back_to_plain_text_without_a_presenter(ws: nr.Workspace) -> None:
    from nbripple import model

    v = nr.Artifact("plain").create_from(1)
    installed = model.presenter()
    model.set_presenter(None)
    try:
        assert repr(v) == "<ArtifactVersion plain@1>"
        assert v._repr_html_() == "<code>&lt;ArtifactVersion plain@1&gt;</code>"
        with pytest.raises(nr.NbrippleError, match="no widget"):
            v.widget()
    finally:
        model.set_presenter(installed)
    assert repr(v).startswith("<ArtifactVersion plain@1 · value")


def test_every_public_name_is_listed_and_importable() -> None:
    from nbripple import _EXPORTS

    assert sorted(nr.__all__) == sorted([*_EXPORTS, "__version__"])
    for name in nr.__all__:
        assert getattr(nr, name) is not None
    assert nr.SearchResults is SearchResults and nr.card is nr.api.card
