"""Hostile catalog text never reaches the terminal raw.

Descriptions, cards, column names, table cells, values and execution labels holding
terminal escape sequences (OSC title change, clear screen, the C1 CSI, bidi
overrides) are printed escaped by every command that shows them, in tables, in
rendered Markdown, in the lineage tree and in ``--json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

import nbripple as nr
from nbripple.cli import json_text, main, plain, text
from nbripple.service.executions import load_external

OSC_TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
C1_CSI = "\x9b31m"
BIDI = "\u202e"
HOSTILE = f"evil{OSC_TITLE}{CLEAR}{C1_CSI}{BIDI}end"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def cli(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "300"}).invoke(main, list(args))


def clean_output(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    for raw in RAW:
        assert raw not in result.stdout, (args, result.stdout)
        assert raw not in result.stderr, (args, result.stderr)
    return result.stdout


@pytest.fixture
def hostile(ws: nr.Workspace) -> dict[str, Any]:
    notes = nr.Artifact("notes", description=HOSTILE)
    value = notes.create_from({"text": HOSTILE}, nr.ModelCard(f"# Card\n\n{HOSTILE}"))
    table = nr.Artifact("tbl", description=HOSTILE).create_from(
        pa.table({f"col{OSC_TITLE}": [HOSTILE, "ok"], "n": [1, 2]}))
    load_external(ws, value, label=f"script {HOSTILE}")  # a consumer with a hostile label
    ws.release()
    return {"value": value, "table": table}


def test_text_escapes_controls_and_markup_but_keeps_newlines_and_tabs() -> None:
    assert plain("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert plain("\x9b\x7f\x00\r") == "\\x9b\\x7f\\x00\\x0d"
    assert plain("\u202e\u2066\u2028") == "\\u202e\\u2066\\u2028"
    assert plain("line\n\tindented é ü 日本") == "line\n\tindented é ü 日本"
    assert text("[bold]x[/]\x1b") == "\\[bold]x\\[/]\\x1b"
    dumped = json_text({"k": HOSTILE, "é": "ü"})
    assert not any(raw in dumped for raw in RAW)
    assert json.loads(dumped) == {"k": HOSTILE, "é": "ü"}  # the JSON keeps the real value


@pytest.mark.parametrize("args", [
    ("ls",), ("show", "notes@1"), ("show", "tbl@1"), ("card", "notes@1"),
    ("card", "notes@1", "--html"), ("card", "notes@1", "--history"),
    ("load", "notes@1"), ("load", "tbl@1"), ("search", "evil"), ("search", "Card"),
    ("versions", "notes"), ("versions", "tbl"), ("lineage", "notes@1", "--down"),
])
def test_human_output_escapes_hostile_text(hostile: dict[str, Any], args: tuple[str, ...]
                                           ) -> None:
    out = clean_output(*args)
    assert any(word in out for word in ("evil", "col", "Card", "notes", "tbl"))


def test_hostile_text_is_shown_escaped_not_dropped(hostile: dict[str, Any]) -> None:
    assert "\\x1b]0;pwned\\x07" in clean_output("show", "notes@1")
    assert "\\x1b[2J" in clean_output("load", "tbl@1")
    assert "col\\x1b]0;pwned\\x07" in clean_output("load", "tbl@1")
    assert "script evil\\x1b]0;pwned" in clean_output("lineage", "notes@1", "--down")


@pytest.mark.parametrize("args", [
    ("ls",), ("show", "notes@1"), ("card", "notes@1"), ("card", "notes@1", "--history"),
    ("load", "notes@1"), ("load", "tbl@1"), ("search", "evil"), ("versions", "notes"),
    ("lineage", "notes@1", "--down"),
])
def test_json_output_escapes_hostile_text_and_keeps_the_value(
        hostile: dict[str, Any], args: tuple[str, ...]) -> None:
    out = clean_output(*args, "--json")
    assert any(HOSTILE in found for found in strings(json.loads(out)))


def strings(data: Any) -> list[str]:
    """Every string (keys too) in parsed JSON."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in (*strings(k), *strings(v))]
    if isinstance(data, list):
        return [s for item in data for s in strings(item)]
    return []


def test_an_error_naming_hostile_text_is_escaped(hostile: dict[str, Any]) -> None:
    result = cli("show", f"nbripple://notes?x={CLEAR}")
    assert result.exit_code != 0
    assert not any(raw in result.stderr for raw in RAW), result.stderr


def test_a_hostile_file_name_is_printed_escaped(ws: nr.Workspace, tmp_path: Path) -> None:
    hostile_file = tmp_path / f"data{CLEAR}.txt"
    hostile_file.write_text("x", encoding="utf-8")
    nr.Artifact("doc", kind="file").create_from(hostile_file)
    ws.release()
    assert "data\\x1b[2J.txt" in clean_output("load", "doc@1")
    assert "data\\x1b[2J.txt" in clean_output("show", "doc@1")
