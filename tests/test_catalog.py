"""The DuckDB catalog: schema versions and migrations, cards with history, search,
events, and interactive executions recorded as producers and consumers."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.catalog.embedded import migrations as migrations_module
from nbripple.catalog.schema import SCHEMA_VERSION, SCHEMA_VERSION_KEY
from nbripple.errors import SchemaVersionError

TABLES = {"meta", "artifacts", "versions", "cards", "executions", "consumed", "events"}


def table_names(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()


def meta_schema_version(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", [SCHEMA_VERSION_KEY]).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


# -- schema ----------------------------------------------------------------------


def test_a_new_catalog_records_the_current_schema_version(home: Path) -> None:
    nr.Artifact("a").create_from(1)
    nr.current().catalog.close()
    path = home / "catalog.duckdb"
    assert meta_schema_version(path) == SCHEMA_VERSION
    assert table_names(path) >= TABLES
    assert nr.current().catalog.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]


def test_an_empty_v0_file_is_migrated_forward_on_open(tmp_path: Path) -> None:
    path = tmp_path / "catalog.duckdb"
    duckdb.connect(str(path)).close()  # a database with no tables: schema version 0
    assert table_names(path) == set()
    catalog = EmbeddedCatalog(path, idle_release_ms=0)
    assert catalog.last_event_seq() == 0
    assert catalog.schema_version() == SCHEMA_VERSION
    assert table_names(path) >= TABLES


def test_an_existing_catalog_is_migrated_to_a_newer_schema_keeping_its_data(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nr.Artifact("kept").create_from({"x": 1})
    nr.current().catalog.close()
    step = ["CREATE TABLE added_later (id INTEGER)", "INSERT INTO added_later VALUES (42)"]
    monkeypatch.setattr(migrations_module, "MIGRATIONS", [*migrations_module.MIGRATIONS, step])
    monkeypatch.setattr(migrations_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)

    catalog = EmbeddedCatalog(home / "catalog.duckdb", idle_release_ms=0)
    assert catalog.schema_version() == SCHEMA_VERSION + 1
    with catalog.connection() as con:
        assert con.execute("SELECT id FROM added_later").fetchall() == [(42,)]
    assert catalog.get_version("kept", 1) is not None
    # applied once: reopening does not run the step again
    reopened = EmbeddedCatalog(home / "catalog.duckdb", idle_release_ms=0)
    with reopened.connection() as con:
        assert con.execute("SELECT count(*) FROM added_later").fetchall() == [(1,)]


def test_a_failing_migration_is_rolled_back_entirely(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nr.Artifact("kept").create_from(1)
    nr.current().catalog.close()
    step = ["CREATE TABLE half_done (id INTEGER)", "THIS IS NOT SQL"]
    monkeypatch.setattr(migrations_module, "MIGRATIONS", [*migrations_module.MIGRATIONS, step])
    monkeypatch.setattr(migrations_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(duckdb.Error):
        EmbeddedCatalog(home / "catalog.duckdb", idle_release_ms=0).last_event_seq()
    path = home / "catalog.duckdb"
    assert meta_schema_version(path) == SCHEMA_VERSION
    assert "half_done" not in table_names(path)


def test_a_catalog_from_a_newer_nbripple_is_refused(home: Path) -> None:
    nr.Artifact("a").create_from(1)
    nr.current().catalog.close()
    path = home / "catalog.duckdb"
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = ? WHERE key = ?",
                [str(SCHEMA_VERSION + 1), SCHEMA_VERSION_KEY])
    con.close()

    # The workspace's catalog was opened (and migrated) before; it checks again on reopen.
    fresh = nr.current()
    with pytest.raises(SchemaVersionError,
                       match=rf"schema version {SCHEMA_VERSION + 1}.*upgrade nbripple"):
        fresh.get("a@1")
    with pytest.raises(SchemaVersionError):
        EmbeddedCatalog(path).get_version("a", 1)
    # refused without touching it, and without keeping the file open
    assert meta_schema_version(path) == SCHEMA_VERSION + 1
    assert not fresh.catalog.is_open  # type: ignore[attr-defined]


# -- cards -----------------------------------------------------------------------


def test_set_card_adds_revisions_and_keeps_the_old_ones(home: Path) -> None:
    v = nr.Artifact("model").create_from(1, nr.ModelCard("# v1 card"))
    rev2 = nr.set_card("model@1", nr.DataCard("# second take"))
    rev3 = nr.set_card(v, "# third, plain")
    assert (rev2.revision, rev3.revision) == (2, 3)

    history = nr.get("model@1").card_history()
    assert [(r.revision, r.card_type, r.markdown) for r in history] == [
        (1, "model", "# v1 card"), (2, "data", "# second take"), (3, "card", "# third, plain"),
    ]
    assert history[0].created_at <= history[1].created_at <= history[2].created_at
    current = nr.get("model@1")
    assert (current.card, current.card_type) == ("# third, plain", "card")
    assert "<h1>third, plain</h1>" in nr.card_html("model@1")


def test_first_card_set_later_is_revision_one(home: Path) -> None:
    nr.Artifact("bare").create_from(1)
    assert nr.get("bare@1").card is None
    assert nr.card_html("bare@1") == ""
    assert nr.set_card("bare@1", "# late card").revision == 1
    assert [r.markdown for r in nr.get("bare@1").card_history()] == ["# late card"]


def test_cards_of_different_versions_are_independent(home: Path) -> None:
    art = nr.Artifact("m")
    art.create_from(1, "# one")
    art.create_from(2, "# two")
    nr.set_card("m@1", "# one, revised")
    assert nr.get("m@2").card == "# two"
    assert len(nr.get("m@2").card_history()) == 1


# -- search ----------------------------------------------------------------------


@pytest.fixture
def populated(home: Path) -> None:
    model = nr.Artifact("blessed_model", partition_keys=["blessed"],
                        description="Gradient boosted churn model")
    model.create_from({"v": 1}, nr.ModelCard("# Model\nTrained on **Q1** data"), blessed="false")
    model.create_from({"v": 2}, nr.ModelCard("# Model\nTrained on Q2 data"), blessed="true")
    model.create_from({"v": 3}, nr.ModelCard("# Model\nExperimental"), blessed="false")
    sales = nr.Artifact("etl.daily_sales", description="Daily sales per store")
    sales.create_from(pa.table({"store": [1, 2], "eur": [10.0, 20.0]}),
                      nr.DataCard("# Sales figures"))
    nr.Artifact("prediction", partition_keys=["blessed"]).create_from([0.1, 0.9],
                                                                      blessed="true")


def refs(found: list[nr.ArtifactVersion]) -> list[str]:
    return [v.ref for v in found]


def test_search_without_text_returns_the_latest_of_each_artifact_newest_first(
    populated: None,
) -> None:
    assert refs(nr.search()) == ["prediction@1", "etl.daily_sales@1", "blessed_model@3"]


def test_search_is_case_insensitive_over_name_description_and_card(populated: None) -> None:
    assert refs(nr.search("BLESSED_model")) == ["blessed_model@3"]
    assert refs(nr.search("churn")) == ["blessed_model@3"]  # description
    assert refs(nr.search("sales PER store")) == ["etl.daily_sales@1"]  # every word
    # latest_only: the text is matched against each artifact's newest version's card
    assert refs(nr.search("q2")) == []
    assert refs(nr.search("q2", latest_only=False)) == ["blessed_model@2"]
    assert refs(nr.search("q2", partitions={"blessed": "true"})) == ["blessed_model@2"]
    assert refs(nr.search("experimental")) == ["blessed_model@3"]
    assert refs(nr.search("model trained", latest_only=False)) == [
        "blessed_model@2", "blessed_model@1"]
    assert nr.search("nothing matches this") == []


def test_search_filters_by_partitions_and_kind(populated: None) -> None:
    assert refs(nr.search(partitions={"blessed": "true"})) == ["prediction@1", "blessed_model@2"]
    assert refs(nr.search("model", partitions={"blessed": "true"})) == ["blessed_model@2"]
    # two structural filters take the general path, with the same meaning
    assert refs(nr.search("model", partitions={"blessed": "true"}, kind="value")) == [
        "blessed_model@2"]
    assert refs(nr.search("q1", partitions={"blessed": "false"}, kind="value")) == []
    assert refs(nr.search("q1", partitions={"blessed": "false"}, kind="value",
                          latest_only=False)) == ["blessed_model@1"]
    assert nr.search(partitions={"blessed": True}) == []  # str(True) is "True", not "true"
    assert refs(nr.search(kind="table")) == ["etl.daily_sales@1"]
    assert refs(nr.search(kind="value", latest_only=False)) == [
        "prediction@1", "blessed_model@3", "blessed_model@2", "blessed_model@1"]
    assert nr.search(kind="object") == []


def test_search_latest_only_and_limit(populated: None) -> None:
    every = refs(nr.search(latest_only=False))
    assert every == ["prediction@1", "etl.daily_sales@1", "blessed_model@3",
                     "blessed_model@2", "blessed_model@1"]
    assert refs(nr.search(latest_only=False, limit=2)) == every[:2]
    assert refs(nr.search(limit=1)) == ["prediction@1"]


def test_search_sees_the_current_card_only(populated: None) -> None:
    nr.set_card("etl.daily_sales@1", "# Revenue\nrenamed")
    assert refs(nr.search("revenue")) == ["etl.daily_sales@1"]
    assert refs(nr.search("sales", partitions=None)) == ["etl.daily_sales@1"]  # name still
    assert nr.search("figures") == []


# -- events and executions --------------------------------------------------------


def test_every_committed_version_appends_one_event(home: Path) -> None:
    catalog = nr.current().catalog
    art = nr.Artifact("e")
    made = [art.create_from(i) for i in range(3)]
    events = catalog.events_after(0)
    assert [(e.kind, e.ref) for e in events] == [("version", v.ref) for v in made]
    assert [e.seq for e in events] == [v.seq for v in made] == [1, 2, 3]
    assert catalog.last_event_seq() == 3
    assert [e.ref for e in catalog.events_after(2)] == ["e@3"]
    assert all(e.execution_id == made[0].execution_id for e in events)


def test_interactive_execution_is_the_producer_and_records_consumption(home: Path) -> None:
    art = nr.Artifact("lineage_src")
    v1 = art.create_from({"a": 1})
    v2 = art.create_from({"a": 2})
    assert v1.execution_id == v2.execution_id is not None
    ex = nr.execution(v1.execution_id)
    assert (ex.kind, ex.status, ex.pid) == ("interactive", "running", __import__("os").getpid())
    assert [o.ref for o in ex.outputs] == ["lineage_src@1", "lineage_src@2"]
    assert ex.inputs == []

    nr.current().resolve("lineage_src@1")  # resolving alone is not consumption
    assert nr.execution(ex.id).inputs == []
    nr.get("lineage_src@1")
    nr.load("nbripple://lineage_src")  # latest = @2
    nr.load("lineage_src@1")  # again: recorded once
    art.get()
    assert sorted(i.ref for i in nr.execution(ex.id).inputs) == ["lineage_src@1",
                                                                   "lineage_src@2"]


def test_another_process_gets_its_own_interactive_execution_finished_at_exit(
    home: Path,
) -> None:
    nr.Artifact("shared").create_from("from the test process")
    mine = nr.get("shared@1").execution_id
    nr.current().catalog.close()
    child = textwrap.dedent("""
        import nbripple as nr
        assert nr.load("shared@1") == "from the test process"
        nr.Artifact("shared").create_from("from the child")
    """)
    subprocess.run([sys.executable, "-c", child], check=True, timeout=60)
    v2 = nr.get("shared@2")
    assert v2.execution_id != mine
    ex = nr.execution(v2.execution_id or "")
    assert (ex.kind, ex.status) == ("interactive", "succeeded")
    assert ex.finished_at is not None and ex.pid != __import__("os").getpid()
    assert [i.ref for i in ex.inputs] == ["shared@1"]
    assert [o.ref for o in ex.outputs] == ["shared@2"]
    assert {e.id for e in nr.executions(status="succeeded")} == {ex.id}


def test_execution_lookup_by_unique_prefix_and_unknown_id(home: Path) -> None:
    ex_id = nr.Artifact("p").create_from(1).execution_id or ""
    assert nr.execution(ex_id[:6]).id == ex_id
    with pytest.raises(nr.NbrippleError, match="no execution with id 'nope'"):
        nr.execution("nope")


def test_a_commit_failing_midway_is_rolled_back_and_leaves_no_gap(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    art = nr.Artifact("atomic")
    art.create_from("one")
    real_transaction = EmbeddedCatalog.transaction

    class FailsAtTheEvent:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self._con = con

        def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
            if sql.lstrip().startswith("INSERT INTO events"):
                raise RuntimeError("disk full (simulated)")
            return self._con.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self._con, name)

    @contextlib.contextmanager
    def failing_transaction(self: EmbeddedCatalog) -> Iterator[object]:
        with real_transaction(self) as con:
            yield FailsAtTheEvent(con)

    monkeypatch.setattr(EmbeddedCatalog, "transaction", failing_transaction)
    with pytest.raises(RuntimeError, match="simulated"):
        art.create_from("two", nr.ModelCard("# lost"))
    monkeypatch.undo()

    assert [v.version for v in art.versions()] == [1]
    with nr.current().catalog.connection() as con:  # type: ignore[attr-defined]
        assert con.execute("SELECT count(*) FROM events").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM cards").fetchone() == (0,)
    assert art.create_from("two again").ref == "atomic@2"
    assert [e.seq for e in nr.current().catalog.events_after(0)] == [1, 2]


def test_heads_migration_rebuilds_latest_search_from_existing_versions(populated: None) -> None:
    ws = nr.current()
    catalog = ws.catalog
    before = {
        "all": refs(nr.search()),
        "blessed": refs(nr.search(partitions={"blessed": "true"})),
        "value": refs(nr.search(kind="value")),
        "text": refs(nr.search("model")),
    }
    catalog.watcher_heartbeat("w-old", 1, "host-a")
    with catalog.connection() as con:  # type: ignore[attr-defined]
        # back to schema version 2: no heads table (V3), no watcher health (V4), no
        # remembered requests (V5), no execution phases (V6), the two counters that
        # every commit updated before heads replaced them (V7)
        con.execute("ALTER TABLE artifacts ADD COLUMN latest_version INTEGER DEFAULT 0")
        con.execute("UPDATE artifacts SET latest_version = m.n FROM (SELECT artifact, "
                    "max(version) AS n FROM versions GROUP BY artifact) m "
                    "WHERE artifacts.name = m.artifact")
        con.execute("INSERT INTO meta SELECT 'seq', CAST(max(seq) AS VARCHAR) FROM versions")
        con.execute("DROP TABLE heads")
        con.execute("ALTER TABLE executions DROP COLUMN phases")
        con.execute("DROP TABLE requests")
        for column in ("consecutive_failures", "last_error", "last_error_at"):
            con.execute(f"ALTER TABLE watchers DROP COLUMN {column}")
        con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    catalog.close()
    EmbeddedCatalog.close_all()
    nr.use(ws.home)
    (old,) = [w for w in nr.current().catalog.live_watchers() if w["id"] == "w-old"]
    assert (old["consecutive_failures"], old["last_error"]) == (0, None)  # V4 defaults
    after = {
        "all": refs(nr.search()),
        "blessed": refs(nr.search(partitions={"blessed": "true"})),
        "value": refs(nr.search(kind="value")),
        "text": refs(nr.search("model")),
    }
    assert after == before
    assert nr.current().catalog.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
    # Numbers and seqs go on from where the counters were.
    decls = {d.name: d for d in nr.current().catalog.list_artifacts()}
    top_seq = nr.current().catalog.last_event_seq()
    decl = max(decls.values(), key=lambda d: d.latest_version)
    assert decl.latest_version > 1
    version = nr.Artifact(decl.name, partition_keys=list(decl.partition_keys)).create_from(
        {"after": "migration"}, **{k: "x" for k in decl.partition_keys})
    assert version.version == decl.latest_version + 1
    assert version.seq == top_seq + 1
