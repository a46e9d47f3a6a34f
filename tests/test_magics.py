"""The %nbripple magics, run through a real IPython InteractiveShell."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbripple as nr
from nbripple.display import CardDisplay, SearchResults
from nbripple.magics import HELP, SUBCOMMANDS, NbrippleMagics
from nbripple.widgets import ArtifactView, LineageGraphWidget

FIXTURES = Path(__file__).parent / "notebooks"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def shell(home: Path) -> Iterator[InteractiveShell]:
    """IPython with ``%load_ext nbripple`` done; its watcher is stopped afterwards."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbripple")
    yield ip
    magics = ip.magics_manager.registry["NbrippleMagics"]
    if magics.watcher is not None:
        magics.watcher.stop(timeout=60)
        magics.watcher = None


@pytest.fixture
def models(ws: nr.Workspace) -> None:
    model = nr.Artifact("blessed_model", partition_keys=["blessed"], description="a model")
    for blessed in ("false", "true", "false"):
        model.create_from({"weights": [1, 2], "blessed": blessed},
                          nr.ModelCard(f"# Model {blessed}"), blessed=blessed)
    nr.Artifact("etl.daily-sales").create_from([1, 2, 3])


def magic(shell: InteractiveShell, line: str, cell: str | None = None) -> object:
    if cell is None:
        return shell.run_line_magic("nbripple", line)
    return shell.run_cell_magic("nbripple", line, cell)


def out_err(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return ANSI.sub("", captured.out), ANSI.sub("", captured.err)


# -- help ---------------------------------------------------------------------------
def test_help_and_question_mark_document_every_subcommand(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    magic(shell, "help")
    shown, _ = out_err(capsys)
    shell.run_cell("%nbripple?")
    asked, _ = out_err(capsys)
    magic(shell, "")
    bare, _ = out_err(capsys)
    for text in (shown, asked, bare):
        for sub in SUBCOMMANDS:
            assert f"%nbripple {sub}" in text or f"%%nbripple {sub}" in text, sub
    assert "%%nbripple card REF" in asked
    assert shown.strip() == HELP.strip()


def test_sub_help_prints_the_subcommand_options(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    assert magic(shell, "lineage -h") is None
    out, _ = out_err(capsys)
    assert "usage: %nbripple lineage" in out and "--depth" in out and "--up" in out


# -- bad input: usage, never a traceback ----------------------------------------------------
@pytest.mark.parametrize(("line", "expected"), [
    ("frobnicate", "unknown subcommand 'frobnicate'"),
    ("show", "the following arguments are required: REF"),
    ("lineage blessed_model@1 --up --down", "not allowed with argument"),
    ("lineage blessed_model@1 --depth many", "'many' is not a number of hops"),
    ("search --limit ten", "invalid int value"),
    ("watch begin", "invalid choice: 'begin'"),
    ("run", "the following arguments are required: NOTEBOOK.ipynb"),
    ("run x.ipynb -p only_name", "expected 2 arguments"),
    ('search "unclosed', "close the quote"),
    ("load blessed_model@1 1x", "'1x' is not a Python variable name"),
    ("show nothing@1", "no artifact named 'nothing'"),
    ("show blessed_model@9", "blessed_model@9 does not exist"),
    ("lineage blessed_model@1 --depth -1", "the depth must be 0 or more"),
    ("search --limit 0", "limit must be at least 1"),
    ("run missing.ipynb", "notebook missing.ipynb not found"),
    ("card blessed_model@1 --type model", "--type applies to %%nbripple card"),
])
def test_bad_arguments_print_one_message_not_a_traceback(
        shell: InteractiveShell, models: None, capsys: pytest.CaptureFixture[str],
        line: str, expected: str) -> None:
    result = shell.run_cell(f"%nbripple {line}")
    out, err = out_err(capsys)
    assert result.success, result.error_in_exec
    assert result.result is None
    assert expected in err, err
    assert "Traceback" not in out + err
    assert err.startswith("nbripple")


def test_a_cell_magic_other_than_card_is_refused(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    result = shell.run_cell("%%nbripple search\nmodel\n")
    _, err = out_err(capsys)
    assert result.success and "takes only the card subcommand" in err


# -- subcommands --------------------------------------------------------------------------
def test_search_with_words_partitions_and_kind(shell: InteractiveShell, models: None) -> None:
    found = magic(shell, "search model blessed=true")
    assert isinstance(found, SearchResults)
    assert [v.ref for v in found] == ["blessed_model@2"]
    everything = magic(shell, "search --all blessed=false")
    assert [v.ref for v in everything] == ["blessed_model@3", "blessed_model@1"]
    values = magic(shell, "search --kind value")
    assert sorted(v.ref for v in values) == ["blessed_model@3", "etl.daily-sales@1"]
    assert magic(shell, "search --kind table") == []


def test_show_returns_the_artifact_view(shell: InteractiveShell, models: None) -> None:
    view = magic(shell, "show nbripple://blessed_model?blessed=true")
    assert isinstance(view, ArtifactView) and view.version.ref == "blessed_model@2"
    assert view.snippet.value == 'nr.load("blessed_model@2")'


def test_lineage_draws_or_prints_the_graph(shell: InteractiveShell, ws: nr.Workspace,
                                           models: None,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with ws.external_execution("ops.ipynb") as ops:
        ws.catalog.record_consumption(ops, "blessed_model", 2, "model")
        ws.create_from(nr.Artifact("prediction"), 0.9, execution_id=ops)
    g = magic(shell, "lineage prediction@1 --up --depth all")
    assert isinstance(g, LineageGraphWidget)
    assert g.graph.direction == "up" and g.graph.depth is None
    assert f"execution:{ops}" in g.node_ids and "version:blessed_model@2" in g.node_ids
    down = magic(shell, "lineage blessed_model@2 --down")
    assert isinstance(down, LineageGraphWidget)
    assert set(down.node_ids) == {"version:blessed_model@2", f"execution:{ops}"}
    assert magic(shell, f"lineage {ops} --text") is None
    out, _ = out_err(capsys)
    assert out.startswith("ops.ipynb · succeeded") and "consumed  blessed_model@2" in out


def test_run_executes_a_notebook_with_literal_and_text_parameters(
        shell: InteractiveShell, home: Path, tmp_path: Path) -> None:
    notebook = tmp_path / "echo.ipynb"
    shutil.copy(FIXTURES / "echo.ipynb", notebook)
    ex = magic(shell, f"run {notebook} -p text 42")
    assert isinstance(ex, nr.Execution)
    assert ex.status == "succeeded", ex.error
    assert ex.parameters["text"] == 42
    assert nr.load("echo@1") == {"text": 42}
    ex = magic(shell, f'run {notebook} -p text "two words"')
    assert nr.load("echo@2") == {"text": "two words"}


def test_load_binds_the_value_into_the_namespace(shell: InteractiveShell, models: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert magic(shell, "load blessed_model@2 m") is None
    assert shell.user_ns["m"] == {"weights": [1, 2], "blessed": "true"}
    magic(shell, "load etl.daily-sales")
    assert shell.user_ns["etl_daily_sales"] == [1, 2, 3]
    out, _ = out_err(capsys)
    assert "m = blessed_model@2 (value, dict)" in out
    assert "etl_daily_sales = etl.daily-sales@1" in out
    # The load is recorded as consumed by this process, like nr.load.
    consumers = nr.lineage("blessed_model@2", direction="down").edges
    assert [e.kind for e in consumers] == ["consumed"]
    shell.run_cell("answer = m['blessed']")
    assert shell.user_ns["answer"] == "true"


def test_card_cell_magic_sets_the_card_and_the_line_magic_shows_it(
        shell: InteractiveShell, models: None, capsys: pytest.CaptureFixture[str]) -> None:
    body = "# Blessed\nApproved on <b>Monday</b>.\n<script>alert(1)</script>\n"
    shown = magic(shell, "card blessed_model@2 --type data", body)
    assert isinstance(shown, CardDisplay)
    out, _ = out_err(capsys)
    assert "card revision 2 saved on blessed_model@2" in out
    version = nr.current().resolve("blessed_model@2")
    assert version.card_markdown == body and version.card_type == "data"
    assert len(version.card_history()) == 2
    again = magic(shell, "card blessed_model@2")
    assert isinstance(again, CardDisplay) and again.markdown == body
    assert "<b>Monday</b>" in again.html and "<script" not in again.html
    # Through run_cell, as a notebook cell runs it.
    result = shell.run_cell("%%nbripple card blessed_model@1\n# First\n")
    assert result.success
    assert nr.current().resolve("blessed_model@1").card_markdown == "# First\n"
    result = shell.run_cell("%%nbripple card blessed_model@1\n   \n")
    _, err = out_err(capsys)
    assert result.success and "the cell is empty" in err


def test_plans_lists_the_launch_plans(shell: InteractiveShell, home: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    magic(shell, "plans")
    out, _ = out_err(capsys)
    assert "no launch plans yet" in out
    work = nr.Artifact("work_item")
    nr.register(nr.LaunchPlan("on_work", notebook=str(FIXTURES / "triggered_work.ipynb"),
                              trigger=nr.OnArtifact(work, inputs={"item": work})))
    nr.register(nr.LaunchPlan("nightly", notebook=str(FIXTURES / "trivial.ipynb"),
                              schedule="0 2 * * *"))
    nr.activate("on_work")
    magic(shell, "plans")
    out, _ = out_err(capsys)
    lines = out.splitlines()
    assert lines[0].split() == ["name", "state", "version", "fires", "on", "notebook"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["on_work"].split()[1:] == ["active", "1", "work_item", "triggered_work.ipynb"]
    assert rows["nightly"].split()[1:] == ["inactive", "1", "cron", "0", "2", "*", "*", "*",
                                           "UTC", "trivial.ipynb"]


def test_watch_runs_a_watcher_thread_that_fires_plans(
        shell: InteractiveShell, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = nr.Artifact("work_item")
    nr.register(nr.LaunchPlan("on_work", notebook=str(FIXTURES / "triggered_work.ipynb"),
                              trigger=nr.OnArtifact(work, inputs={"item": work})))
    nr.activate("on_work")
    magic(shell, "watch status")
    out, _ = out_err(capsys)
    assert "no watcher is running" in out

    magic(shell, "watch start --poll 0.05 --grace 20")
    magics: NbrippleMagics = shell.magics_manager.registry["NbrippleMagics"]
    watcher = magics.watcher
    assert watcher is not None and watcher.is_running
    out, _ = out_err(capsys)
    assert f"watcher {watcher.id} started" in out and "active plans: on_work" in out
    magic(shell, "watch start")
    out, _ = out_err(capsys)
    assert "already running" in out and magics.watcher is watcher

    work.create_from("the job")  # the kernel's own watcher fires the plan
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if nr.current().catalog.get_artifact("done") is not None:
            break
        time.sleep(0.2)
    assert nr.load("done@1") == "the job"

    magic(shell, "watch status")
    out, _ = out_err(capsys)
    assert f"watcher {watcher.id} running" in out and "active plans: on_work" in out
    magic(shell, "watch stop")
    out, _ = out_err(capsys)
    assert f"watcher {watcher.id} stopped" in out
    assert not watcher.is_running
    magic(shell, "watch stop")
    out, _ = out_err(capsys)
    assert "no watcher is running" in out


def test_unloading_the_extension_stops_the_watcher(shell: InteractiveShell, home: Path) -> None:
    magic(shell, "watch start --poll 0.05")
    magics: NbrippleMagics = shell.magics_manager.registry["NbrippleMagics"]
    assert magics.watcher is not None and magics.watcher.is_running
    shell.run_line_magic("unload_ext", "nbripple")
    try:
        assert not magics.watcher.is_running
    finally:
        shell.run_line_magic("load_ext", "nbripple")
