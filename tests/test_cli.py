"""The `nbripple` command line: every artifact command, --json output, one-line errors.

Most tests drive the click group in-process with CliRunner against a real home
(DuckDB catalog, local store); the last ones run the installed console script in a
real subprocess to prove exit codes and one-line errors end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

import nbripple as nr
from nbripple.cli import main

NBRIPPLE_SCRIPT = Path(sys.executable).parent / "nbripple"


# -- helpers -------------------------------------------------------------------
def cli(*args: str, input: str | None = None) -> Result:
    """Run the CLI in-process; the home comes from NBRIPPLE_HOME (the `home` fixture)."""
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, list(args), input=input)


def ok(*args: str, input: str | None = None) -> Result:
    result = cli(*args, input=input)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr,
                                   result.exception)
    return result


def ok_json(*args: str, input: str | None = None) -> Any:
    return json.loads(ok(*args, "--json", input=input).stdout)


def assert_one_line_error(result: Result, *, contains: str = "", exit_code: int | None = None
                          ) -> str:
    """The command failed with exactly one `error: ...` line on stderr and no traceback."""
    assert result.exit_code != 0, result.stdout
    if exit_code is not None:
        assert result.exit_code == exit_code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert contains in lines[0]
    return lines[0]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root by relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def write_csv(path: Path, rows: int = 3) -> Path:
    lines = ["region,amount,note"] + [f"r{i},{i * 10},n{i}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def all_inputs(ws: nr.Workspace) -> list[str]:
    return [i.ref for e in ws.executions(limit=1000) for i in e.inputs]


@pytest.fixture
def sample(ws: nr.Workspace) -> dict[str, nr.ArtifactVersion]:
    """A few artifacts of different kinds, created from Python (an interactive execution)."""
    model = nr.Artifact("blessed_model", partition_keys=["blessed"],
                        description="Gradient boosting model")
    made = {}
    for i, blessed in enumerate(("false", "true", "false"), start=1):
        made[f"model{i}"] = model.create_from({"weights": [i, i + 1]},
                                              nr.ModelCard(f"# Model {i}\n\nboosted trees"),
                                              blessed=blessed)
    sales = nr.Artifact("etl.daily_sales", partition_keys=["region"],
                        description="Daily sales per region")
    made["sales"] = sales.create_from(
        pa.table({"day": ["2026-01-01", "2026-01-02"], "amount": [10.5, 20.25]}), region="eu")
    made["obj"] = nr.Artifact("opaque").create_from({1, 2, 3})
    return made


# -- init ----------------------------------------------------------------------
def test_init_creates_home_with_config_and_prints_where(tmp_path: Path) -> None:
    result = ok("init", str(tmp_path / "project"))
    home = (tmp_path / "project" / ".nbripple").resolve()
    assert (home / "config.toml").is_file()
    assert f"Initialized nbripple home at {home}" in result.stdout
    again = ok_json("init", str(tmp_path / "project"))
    assert again == {"home": str(home), "config": str(home / "config.toml"), "created": False}


def test_init_with_home_option_makes_that_directory_the_home(tmp_path: Path) -> None:
    target = tmp_path / "team-home"
    data = ok_json("--home", str(target), "init")
    assert data["home"] == str(target.resolve()) and data["created"] is True
    assert (target / "config.toml").is_file()
    assert ok_json("--home", str(target), "ls") == []


# -- ls / versions / search ------------------------------------------------------
def test_ls_lists_artifacts_with_keys_kind_and_latest_version(sample: dict[str, Any]) -> None:
    listing = {a["name"]: a for a in ok_json("ls")}
    assert sorted(listing) == ["blessed_model", "etl.daily_sales", "opaque"]
    model = listing["blessed_model"]
    assert model["partition_keys"] == ["blessed"]
    assert model["kind"] == "value" and model["latest_version"] == 3
    assert model["latest_ref"] == "blessed_model@3"
    assert model["description"] == "Gradient boosting model"
    assert listing["etl.daily_sales"]["kind"] == "table"
    assert listing["opaque"]["kind"] == "object"
    out = ok("ls").stdout
    for name in listing:
        assert name in out


def test_ls_on_an_empty_home_says_so(home: Path) -> None:
    assert ok_json("ls") == []
    result = ok("ls")
    assert result.stdout == "" and "no artifacts yet" in result.stderr


def test_versions_lists_newest_first_with_producer(ws: nr.Workspace,
                                                   sample: dict[str, Any]) -> None:
    data = ok_json("versions", "blessed_model")
    assert [v["ref"] for v in data] == ["blessed_model@3", "blessed_model@2", "blessed_model@1"]
    assert [v["partitions"] for v in data] == [{"blessed": b} for b in ("false", "true", "false")]
    producer = sample["model1"].execution_id
    assert {v["execution_id"] for v in data} == {producer}
    assert data[0]["producer"]["kind"] == "interactive"
    assert data[0]["size"] == sample["model3"].size
    assert [v["ref"] for v in ok_json("versions", "blessed_model", "--limit", "2")] == \
        ["blessed_model@3", "blessed_model@2"]
    out = ok("versions", "blessed_model").stdout
    assert out.index("blessed_model@3") < out.index("blessed_model@2") < \
        out.index("blessed_model@1")
    assert "blessed=true" in out and producer in out.replace("\n", "")


def test_search_filters_by_text_partition_kind_and_versions(sample: dict[str, Any]) -> None:
    assert [v["ref"] for v in ok_json("search", "sales")] == ["etl.daily_sales@1"]
    assert [v["ref"] for v in ok_json("search", "BOOSTED", "trees")] == ["blessed_model@3"]
    assert [v["ref"] for v in ok_json("search", "-p", "blessed=true")] == ["blessed_model@2"]
    assert [v["ref"] for v in ok_json("search", "--kind", "table")] == ["etl.daily_sales@1"]
    every = [v["ref"] for v in ok_json("search", "model", "--all-versions")]
    assert every == ["blessed_model@3", "blessed_model@2", "blessed_model@1"]
    assert len(ok_json("search", "--all-versions", "--limit", "2")) == 2
    assert ok_json("search", "no-such-word") == []
    assert "etl.daily_sales@1" in ok("search", "daily").stdout


# -- show ------------------------------------------------------------------------
def test_show_resolves_pins_and_query_uris_without_recording_consumption(
    ws: nr.Workspace, sample: dict[str, Any]
) -> None:
    executions_before = len(ws.executions(limit=1000))
    pinned = ok_json("show", "blessed_model@2")
    assert pinned["ref"] == "blessed_model@2" and pinned["partitions"] == {"blessed": "true"}
    assert pinned["card"] == "# Model 2\n\nboosted trees"
    assert pinned["card_type"] == "model"
    assert pinned["hash"] == sample["model2"].content_hash
    assert pinned["producer"]["id"] == sample["model2"].execution_id
    by_query = ok_json("show", "nbripple://blessed_model?blessed=true")
    assert by_query["ref"] == "blessed_model@2"
    assert ok_json("show", "nbripple://blessed_model")["ref"] == "blessed_model@3"
    assert len(ws.executions(limit=1000)) == executions_before
    assert all_inputs(ws) == []


def test_show_table_prints_schema_rows_and_producer(sample: dict[str, Any]) -> None:
    out = ok("show", "etl.daily_sales@1").stdout
    assert "region=eu" in out and "table" in out
    assert "day: string" in out and "amount: double" in out
    assert sample["sales"].execution_id in out
    data = ok_json("show", "etl.daily_sales@1")
    assert data["num_rows"] == 2
    assert data["schema"] == [{"name": "day", "type": "string"},
                              {"name": "amount", "type": "double"}]
    assert "Model 2" in ok("show", "blessed_model@2").stdout


# -- load ------------------------------------------------------------------------
def test_load_value_prints_json_and_records_consumption_under_external_execution(
    ws: nr.Workspace, sample: dict[str, Any]
) -> None:
    result = ok("load", "nbripple://blessed_model?blessed=true")
    assert json.loads(result.stdout) == {"weights": [2, 3]}
    (external,) = ws.executions(kind="external")
    assert external.label == "nbripple load" and external.status == "succeeded"
    assert [i.ref for i in external.inputs] == ["blessed_model@2"]


def test_load_table_previews_rows_and_writes_parquet_with_output(
    tmp_path: Path, ws: nr.Workspace
) -> None:
    table = pa.table({"n": list(range(25)), "sq": [i * i for i in range(25)]})
    nr.Artifact("squares").create_from(table)
    preview = ok_json("load", "squares@1", "--rows", "5")
    assert preview["num_rows"] == 25 and preview["columns"] == ["n", "sq"]
    assert preview["rows"] == [{"n": i, "sq": i * i} for i in range(5)]
    result = ok("load", "squares@1", "--rows", "3")
    assert "25 rows × 2 columns" in result.stdout and "showing 3 of 25 rows" in result.stderr
    written = ok_json("load", "squares@1", "-o", str(tmp_path))
    assert written["path"] == str(tmp_path / "squares@1.parquet")
    assert pq.read_table(written["path"]).equals(table)
    assert sorted(all_inputs(ws)) == ["squares@1"] * 3


def test_load_object_without_output_refuses_to_unpickle(tmp_path: Path,
                                                        sample: dict[str, Any]) -> None:
    assert_one_line_error(cli("load", "opaque@1"), contains="-o FILE.pickle")
    path = Path(ok("load", "opaque@1", "-o", str(tmp_path / "o.pickle")).stdout.strip())
    assert path.read_bytes()  # the pickle is written, not loaded


# -- card ------------------------------------------------------------------------
def test_card_set_from_file_and_stdin_keeps_history(tmp_path: Path,
                                                    sample: dict[str, Any]) -> None:
    card_file = tmp_path / "card.md"
    card_file.write_text("# Sales data\n\nCollected **daily**.\n", encoding="utf-8")
    saved = ok_json("card", "etl.daily_sales@1", "--set", str(card_file), "--type", "data")
    assert saved["revision"] == 1 and saved["card_type"] == "data"
    ok("card", "etl.daily_sales@1", "--set", "-", input="# Sales data v2\n\nNow hourly.\n")
    current = ok_json("card", "etl.daily_sales@1")
    assert current["markdown"] == "# Sales data v2\n\nNow hourly.\n"
    assert current["card_type"] == "data"  # kept from the previous revision
    history = ok_json("card", "etl.daily_sales@1", "--history")
    assert [(r["revision"], r["markdown"].splitlines()[0]) for r in history] == \
        [(1, "# Sales data"), (2, "# Sales data v2")]
    rendered = ok("card", "etl.daily_sales@1").stdout
    assert "Sales data v2" in rendered and "# Sales" not in rendered
    assert nr.get("etl.daily_sales@1").card_markdown == current["markdown"]


def test_card_html_is_sanitized(sample: dict[str, Any]) -> None:
    ok("card", "blessed_model@1", "--set", "-",
       input="# Hi\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
             "[click](javascript:alert(3)) and [safe](https://example.com)\n")
    html = ok("card", "blessed_model@1", "--html").stdout
    assert "<h1>Hi</h1>" in html and 'href="https://example.com"' in html
    assert "<script" not in html and "onerror" not in html
    assert "javascript:" not in html.replace("[click](javascript:alert(3))", "")  # text only


def test_card_of_a_version_without_one_says_how_to_add_it(sample: dict[str, Any]) -> None:
    result = ok("card", "etl.daily_sales@1")
    assert result.stdout == "" and "--set" in result.stderr
    assert ok_json("card", "etl.daily_sales@1")["markdown"] is None


# -- push ------------------------------------------------------------------------
def test_push_csv_registers_a_table_loadable_as_a_table(tmp_path: Path, ws: nr.Workspace) -> None:
    csv_path = write_csv(tmp_path / "sales.csv", rows=4)
    result = ok("push", "sales", str(csv_path), "-p", "region=eu", "--description", "Sales")
    assert result.stdout == "sales@1\n"
    assert ws.executions(kind="interactive") == []  # the CLI never works "interactively"
    version = nr.get("sales@1")
    assert version.kind == "table" and version.num_rows == 4
    assert version.partitions == {"region": "eu"}
    loaded = nr.load("sales@1")
    assert isinstance(loaded, pa.Table)
    assert loaded.equals(pa_csv.read_csv(csv_path))
    assert ws.declaration("sales").partition_keys == ("region",)
    assert ws.declaration("sales").description == "Sales"
    (external,) = ws.executions(kind="external")
    assert external.label == "nbripple push" and external.status == "succeeded"
    assert [v.ref for v in external.outputs] == ["sales@1"]


def test_push_parquet_keeps_the_table_and_csv_as_file_keeps_bytes(tmp_path: Path,
                                                                   home: Path) -> None:
    table = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    pq.write_table(table, tmp_path / "t.parquet")
    ok("push", "frames", str(tmp_path / "t.parquet"))
    assert nr.load("frames@1").equals(table)
    csv_path = write_csv(tmp_path / "raw.csv")
    data = ok_json("push", "raw_csv", str(csv_path), "--kind", "file")
    assert data["kind"] == "file" and data["ref"] == "raw_csv@1"
    assert Path(nr.load("raw_csv@1")).read_bytes() == csv_path.read_bytes()
    printed = Path(ok("load", "raw_csv@1").stdout.strip())
    assert printed.read_bytes() == csv_path.read_bytes()


def test_push_directory_round_trips_through_load_output(tmp_path: Path, home: Path) -> None:
    src = tmp_path / "model_dir"
    (src / "weights" / "layer1").mkdir(parents=True)
    (src / "config.json").write_text('{"depth": 3}', encoding="utf-8")
    (src / "weights" / "layer1" / "w.bin").write_bytes(bytes(range(256)) * 10)
    (src / "weights" / "README").write_text("weights\n", encoding="utf-8")
    ref = ok("push", "model_files", str(src), "--card", "-", "--card-type", "model",
             input="# Files of the model\n").stdout.strip()
    assert ref == "model_files@1"
    shown = ok_json("show", ref)
    assert shown["kind"] == "directory" and shown["card_type"] == "model"
    assert shown["meta"]["files"] == 3
    out = tmp_path / "restored"
    out.mkdir()
    written = Path(ok_json("load", ref, "-o", str(out))["path"])
    assert written == out / "model_dir"
    assert tree(written) == tree(src)


def test_push_to_a_declared_artifact_uses_its_recorded_partition_keys(
    tmp_path: Path, ws: nr.Workspace
) -> None:
    nr.Artifact("scores", partition_keys=["split", "team"]).create_from(
        pa.table({"x": [1, 2]}), split="train", team="a")
    csv_path = write_csv(tmp_path / "scores.csv")
    missing = cli("push", "scores", str(csv_path), "-p", "split=test")
    assert_one_line_error(missing, contains="team")
    unknown = cli("push", "scores", str(csv_path), "-p", "split=test", "-p", "teem=a")
    assert_one_line_error(unknown, contains="'teem' is not a partition key of scores")
    assert ws.executions(kind="external") == []  # nothing recorded for a typo
    ok("push", "scores", str(csv_path), "-p", "team=b", "-p", "split=test")
    assert nr.get("scores@2").partitions == {"split": "test", "team": "b"}


def test_push_time_partition_on_a_time_partitioned_artifact(tmp_path: Path,
                                                             home: Path) -> None:
    nr.Artifact("daily", time_partitioned=True).create_from(pa.table({"x": [1]}),
                                                            time_partition="2026-01-01")
    csv_path = write_csv(tmp_path / "d.csv")
    data = ok_json("push", "daily", str(csv_path), "--time-partition", "2026-03-04T15:30")
    assert data["time_partition"].startswith("2026-03-04T00:00:00")
    assert nr.get("nbripple://daily?time_partition=2026-03-04").version == 2


def test_home_option_selects_another_home(tmp_path: Path, home: Path) -> None:
    other = tmp_path / "other"
    ok("--home", str(other), "init")
    csv_path = write_csv(tmp_path / "x.csv")
    ok("--home", str(other), "push", "only_there", str(csv_path))
    assert [a["name"] for a in ok_json("--home", str(other), "ls")] == ["only_there"]
    assert ok_json("ls") == []


# -- help and errors ---------------------------------------------------------------
@pytest.mark.parametrize("args", [["--help"], ["ls", "--help"], ["push", "-h"], ["--version"]])
def test_help_and_version_exit_zero_on_stdout(home: Path, args: list[str]) -> None:
    result = ok(*args)
    assert result.stderr == ""
    assert ("Usage: " in result.stdout) or ("version" in result.stdout)


# -- errors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected", "exit_code"),
    [
        (["show", "nosuch@1"], "no artifact named 'nosuch'", 1),
        (["show", "blessed_model@9"], "blessed_model has versions 1..3", 1),
        (["show", "http://example.com/x"], "artifact URIs start with nbripple://", 1),
        (["show", "blessed_model@zero"], "must be a positive integer", 1),
        (["show", "nbripple://blessed_model?blessed"], "malformed query", 1),
        (["show", "nbripple://blessed_model?blesed=true"], "'blesed' is not a partition key", 1),
        (["load", "nbripple://blessed_model?blessed=maybe"], "existing values", 1),
        (["versions", "blessed_modl"], "did you mean blessed_model", 1),
        (["card", "nosuch@1"], "no artifact named", 1),
        (["search", "-p", "blessed"], "expected KEY=VALUE", 2),
        (["search", "-p", "bad key=x"], "invalid partition key", 1),
        (["search", "--kind", "banana"], "banana", 2),
        (["push", "things", "/no/such/file.csv"], "does not exist", 2),
        (["push", "bad name!", "."], "invalid artifact name", 1),
        (["card", "blessed_model@1", "--set", "-", "--html"], "cannot be combined", 2),
        (["load", "blessed_model@1", "-o", "/no/such/dir/out.json"], "does not exist", 1),
        (["no-such-command"], "No such command", 2),
        (["ls", "--no-such-option"], "No such option", 2),
    ],
)
def test_errors_exit_nonzero_with_one_line(sample: dict[str, Any], args: list[str],
                                           expected: str, exit_code: int) -> None:
    assert_one_line_error(cli(*args), contains=expected, exit_code=exit_code)


def test_missing_home_is_an_error_not_a_new_home(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    assert_one_line_error(cli("--home", str(missing), "ls"), contains="nbripple init")
    assert not missing.exists()


def test_push_of_a_broken_parquet_file_is_one_line(tmp_path: Path, home: Path) -> None:
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"this is not parquet")
    assert_one_line_error(cli("push", "broken", str(bad)), contains="--kind file")


# -- the installed console script, in real processes ------------------------------
def run_script(*args: str, home: Path, stdin: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NBRIPPLE_HOME": str(home), "COLUMNS": "200"}
    env.pop("NBRIPPLE_DEBUG", None)
    return subprocess.run([str(NBRIPPLE_SCRIPT), *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=120, check=False)


def test_console_script_pushes_lists_and_loads(tmp_path: Path, home: Path) -> None:
    nr.current().catalog.close()
    csv_path = write_csv(tmp_path / "sales.csv", rows=2)
    pushed = run_script("push", "sales", str(csv_path), "-p", "region=us", home=home)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout == "sales@1\n"
    listing = run_script("ls", "--json", home=home)
    assert listing.returncode == 0, listing.stderr
    assert [(a["name"], a["kind"], a["latest_version"]) for a in json.loads(listing.stdout)] \
        == [("sales", "table", 1)]
    loaded = run_script("load", "nbripple://sales?region=us", "--json", home=home)
    assert json.loads(loaded.stdout)["rows"] == [
        {"region": "r0", "amount": 0, "note": "n0"}, {"region": "r1", "amount": 10, "note": "n1"}
    ]
    table_text = run_script("versions", "sales", home=home).stdout
    assert "sales@1" in table_text and "region=us" in table_text


@pytest.mark.parametrize(
    ("args", "exit_code", "expected"),
    [
        (["show", "sales@7"], 1, "error: no artifact named 'sales'"),
        (["show", "nbripple:/sales"], 1, "error: malformed reference"),
        (["push", "sales", "/no/such.csv"], 2, "error: Invalid value for 'PATH'"),
        (["versions"], 2, "error: Missing argument 'NAME'"),
    ],
)
def test_console_script_errors_are_one_line_with_exit_codes(
    home: Path, args: list[str], exit_code: int, expected: str
) -> None:
    done = run_script(*args, home=home)
    assert done.returncode == exit_code, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(expected), done.stderr
    assert "Traceback" not in done.stderr


# -- small gaps ------------------------------------------------------------------
@pytest.mark.parametrize("ref", ["a@²", "a@١", "a@１", "a@1٢"])
def test_version_numbers_must_be_ascii_digits(sample: dict[str, Any], ref: str) -> None:
    nr.Artifact("a").create_from(1)
    assert_one_line_error(cli("show", ref), contains="positive integer")


def test_a_card_file_that_is_not_utf8_is_a_clear_error(sample: dict[str, Any],
                                                       tmp_path: Path) -> None:
    bad = tmp_path / "card.md"
    bad.write_bytes(b"# Caf\xe9 latin-1\n")
    before = ok_json("card", "blessed_model@1", "--history")
    line = assert_one_line_error(cli("card", "blessed_model@1", "--set", str(bad)),
                                 contains="not UTF-8")
    assert "bug" not in line and str(bad) in line
    assert ok_json("card", "blessed_model@1", "--history") == before
    data = tmp_path / "data.txt"
    data.write_text("x", encoding="utf-8")
    assert_one_line_error(cli("push", "notes", str(data), "--card", str(bad)),
                          contains="not UTF-8")
    assert "notes" not in {a["name"] for a in ok_json("ls")}


def test_init_without_a_directory_creates_the_home_nbripple_home_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "team" / "home"
    monkeypatch.setenv("NBRIPPLE_HOME", str(target))
    monkeypatch.chdir(tmp_path)
    data = ok_json("init")
    assert data["home"] == str(target.resolve()) and data["created"] is True
    assert (target / "config.toml").is_file()
    assert not (tmp_path / ".nbripple").exists()
    assert ok_json("ls") == []
