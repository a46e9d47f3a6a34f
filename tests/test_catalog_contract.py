"""The catalog contract: what every implementation of :class:`nbripple.catalog.Catalog`
guarantees, tested through the protocol's methods only (no DuckDB, no files).

Each test runs once per implementation. To add one (e.g. the served catalog), teach
:func:`make_catalogs` to build it and add its name to ``IMPLEMENTATIONS``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nbripple.catalog import Catalog, EmbeddedCatalog
from nbripple.catalog.served import ServedCatalog
from nbripple.model import ArtifactDecl, ArtifactVersion, Execution, NewVersion
from nbripple.refs import Query
from serving import start_server

IMPLEMENTATIONS = ["embedded", "served"]


@dataclass
class Catalogs:
    """The catalog under test, a way to open another, independent client of the same
    catalog, and Python code that opens one (as ``catalog``) in another process."""

    catalog: Catalog
    open_other: Callable[[], Catalog]
    client_code: str
    opened: list[Catalog] = field(default_factory=list)
    stop: Callable[[], object] | None = None

    def other(self) -> Catalog:
        other = self.open_other()
        self.opened.append(other)
        return other

    def close(self) -> None:
        for each in [self.catalog, *self.opened]:
            each.close()
        if self.stop is not None:
            self.stop()


def make_catalogs(implementation: str, tmp_path: Path) -> Catalogs:
    """Build the catalog ``implementation`` on an empty catalog in ``tmp_path``."""
    if implementation == "embedded":
        path = tmp_path / "catalog.duckdb"

        def open_embedded() -> Catalog:
            return EmbeddedCatalog(path, idle_release_ms=50, lock_timeout_s=30)

        code = ("from nbripple.catalog import EmbeddedCatalog\n"
                f"catalog = EmbeddedCatalog({str(path)!r}, lock_timeout_s=30)\n")
        return Catalogs(open_embedded(), open_embedded, code)
    if implementation == "served":  # a real `nbripple serve` owning a fresh home
        home = tmp_path / "home"
        home.mkdir()
        server = start_server(home, "--no-watch")

        def open_served() -> Catalog:
            return ServedCatalog(server.url, server.token)

        code = ("from nbripple.catalog.served import ServedCatalog\n"
                f"catalog = ServedCatalog({server.url!r}, {server.token!r})\n")
        return Catalogs(open_served(), open_served, code, stop=server.stop)
    raise ValueError(f"unknown catalog implementation {implementation!r}")


@pytest.fixture(params=IMPLEMENTATIONS)
def catalogs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalogs]:
    built = make_catalogs(request.param, tmp_path)
    yield built
    built.close()


@pytest.fixture
def catalog(catalogs: Catalogs) -> Catalog:
    return catalogs.catalog


# -- builders ---------------------------------------------------------------------


def new(name: str, value: str = "1", *, partitions: dict[str, str] | None = None,
        kind: str = "value", card: str | None = None, description: str = "",
        keys: tuple[str, ...] = (), time_partition: datetime | None = None,
        uri: str | None = None, digest: str | None = None) -> NewVersion:
    return NewVersion(
        artifact=ArtifactDecl(name=name, partition_keys=keys or tuple(partitions or {}),
                              description=description, kind=None),
        partitions=dict(partitions or {}), time_partition=time_partition, kind=kind,
        python_type="builtins.str", content_hash=digest or uuid.uuid4().hex, size=len(value),
        uri=uri, inline_value=None if uri else value, meta={"note": value},
        card_type="model" if card else None, card=card,
    )


def execution(execution_id: str | None = None, *, kind: str = "notebook",
              status: str = "running", notebook: str | None = "nb.ipynb",
              started_at: datetime | None = None, trigger: tuple[str, int] | None = None
              ) -> Execution:
    return Execution(
        id=execution_id or uuid.uuid4().hex[:16], kind=kind, status=status, notebook=notebook,
        notebook_hash=None, parameters={"alpha": 1}, requested=None, cwd="/tmp",
        started_at=started_at or datetime.now(UTC), finished_at=None, error=None,
        output_notebook_hash=None, pid=1234, host="host", trigger=None,
        trigger_artifact=trigger[0] if trigger else None,
        trigger_version=trigger[1] if trigger else None, parent_id=None, chain_depth=0,
        label="nb",
    )


def refs(found: Sequence[ArtifactVersion]) -> list[str]:
    return [f"{v.name}@{v.version}" for v in found]


# -- versions and events ------------------------------------------------------------


def test_commit_numbers_versions_per_artifact_and_appends_one_event_each(
    catalog: Catalog,
) -> None:
    first = catalog.commit(None, [new("a"), new("a"), new("b")])
    assert refs(first) == ["a@1", "a@2", "b@1"]
    assert [v.seq for v in first] == [1, 2, 3]
    again = catalog.commit("ex1", [new("a")])
    assert refs(again) == ["a@3"] and again[0].seq == 4 and again[0].execution_id == "ex1"

    events = catalog.events_after(0)
    assert [(e.kind, e.ref, e.seq) for e in events] == [
        ("version", "a@1", 1), ("version", "a@2", 2), ("version", "b@1", 3),
        ("version", "a@3", 4)]
    assert events[3].execution_id == "ex1"
    assert all(e.created_at.tzinfo is not None for e in events)
    assert [e.seq for e in catalog.events_after(2)] == [3, 4]
    assert [e.seq for e in catalog.events_after(0, limit=2)] == [1, 2]
    assert catalog.last_event_seq() == 4
    assert catalog.commit(None, []) == []
    assert catalog.last_event_seq() == 4


def test_an_empty_catalog_has_no_events_artifacts_or_versions(catalog: Catalog) -> None:
    assert catalog.last_event_seq() == 0
    assert catalog.events_after(0) == []
    assert catalog.list_artifacts() == []
    assert catalog.get_artifact("nothing") is None
    assert catalog.get_version("nothing", 1) is None
    assert catalog.find_version(Query("nothing")) is None
    assert catalog.list_versions("nothing") == []


def test_committed_versions_read_back_with_their_fields(catalog: Catalog) -> None:
    tp = datetime(2024, 5, 1, tzinfo=UTC)
    [made] = catalog.commit("ex", [new("m", "x", partitions={"k": "v"}, time_partition=tp,
                                       card="# hi", description="the m")])
    got = catalog.get_version("m", 1)
    assert got is not None
    assert (got.partitions, got.time_partition, got.kind, got.meta) == (
        {"k": "v"}, tp, "value", {"note": "x"})
    assert (got.card_markdown, got.card_type, got.description) == ("# hi", "model", "the m")
    assert (got.content_hash, got.inline_value, got.execution_id) == (
        made.content_hash, "x", "ex")
    assert got.created_at.tzinfo is not None
    decl = catalog.get_artifact("m")
    assert decl is not None
    assert (decl.partition_keys, decl.latest_version, decl.description) == (("k",), 1, "the m")
    assert [d.name for d in catalog.list_artifacts()] == ["m"]


def test_find_list_and_get_versions(catalog: Catalog) -> None:
    catalog.commit(None, [new("p", "1", partitions={"a": "1", "b": "x"}),
                          new("p", "2", partitions={"a": "2", "b": "x"}),
                          new("p", "3", partitions={"a": "1"}),
                          new("q", "1")])
    found = catalog.find_version(Query("p", {"b": "x"}))
    assert found is not None and found.version == 2
    found = catalog.find_version(Query("p", {"a": "1"}))
    assert found is not None and found.version == 3
    found = catalog.find_version(Query("p", {"a": "1"}, strict=True))
    assert found is not None and found.version == 3
    found = catalog.find_version(Query("p", {"a": "1", "b": "x"}, strict=True))
    assert found is not None and found.version == 1
    assert catalog.find_version(Query("p", {"a": "9"})) is None
    latest = catalog.find_version(Query("p"))
    assert latest is not None and latest.version == 3

    assert refs(catalog.list_versions("p")) == ["p@3", "p@2", "p@1"]
    assert refs(catalog.list_versions("p", limit=1)) == ["p@3"]
    assert refs(catalog.get_versions([("q", 1), ("p", 2), ("p", 9), ("zz", 1)])) == [
        "p@2", "q@1"]
    assert catalog.get_versions([]) == []
    assert catalog.partition_values("p", ["a", "b", "c"]) == {
        "a": ["1", "2"], "b": ["x"], "c": []}


def test_find_version_by_time_partition(catalog: Catalog) -> None:
    day1, day2 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    catalog.commit(None, [new("t", "1", time_partition=day1), new("t", "2", time_partition=day2),
                          new("t", "3", time_partition=day1)])
    found = catalog.find_version(Query("t", time_partition=day2))
    assert found is not None and found.version == 2
    found = catalog.find_version(Query("t", time_partition=day1))
    assert found is not None and found.version == 3


def test_versions_produced_by_an_execution_in_commit_order(catalog: Catalog) -> None:
    catalog.commit("one", [new("x"), new("y")])
    catalog.commit("two", [new("x")])
    catalog.commit("one", [new("z")])
    assert refs(catalog.versions_produced_by("one")) == ["x@1", "y@1", "z@1"]
    assert refs(catalog.versions_produced_by("two")) == ["x@2"]
    assert catalog.versions_produced_by("none") == []


# -- search ----------------------------------------------------------------------


@pytest.fixture
def searchable(catalog: Catalog) -> Catalog:
    catalog.commit(None, [
        new("blessed_model", "1", partitions={"blessed": "false"}, description="Churn model",
            card="# Model\nTrained on Q1"),
        new("blessed_model", "2", partitions={"blessed": "true"}, description="Churn model",
            card="# Model\nTrained on Q2"),
        new("blessed_model", "3", partitions={"blessed": "false"}, description="Churn model",
            card="# Model\nExperimental"),
        new("sales", "1", kind="table", description="Daily sales", card="# Sales figures"),
        new("prediction", "1", partitions={"blessed": "true"}),
    ])
    return catalog


def search(catalog: Catalog, *terms: str, partitions: dict[str, str] | None = None,
           kind: str | None = None, latest_only: bool = True, limit: int = 50) -> list[str]:
    return refs(catalog.search(list(terms), partitions=partitions or {}, kind=kind,
                               latest_only=latest_only, limit=limit))


def test_search_latest_of_each_artifact_newest_first(searchable: Catalog) -> None:
    assert search(searchable) == ["prediction@1", "sales@1", "blessed_model@3"]
    assert search(searchable, latest_only=False) == [
        "prediction@1", "sales@1", "blessed_model@3", "blessed_model@2", "blessed_model@1"]
    assert search(searchable, limit=1) == ["prediction@1"]
    assert search(searchable, latest_only=False, limit=2) == ["prediction@1", "sales@1"]


def test_search_terms_match_name_description_and_card_case_insensitively(
    searchable: Catalog,
) -> None:
    assert search(searchable, "BLESSED_model") == ["blessed_model@3"]
    assert search(searchable, "churn") == ["blessed_model@3"]
    assert search(searchable, "daily", "SALES") == ["sales@1"]  # every term
    assert search(searchable, "q2") == []  # the newest version's card does not say it
    assert search(searchable, "q2", latest_only=False) == ["blessed_model@2"]
    assert search(searchable, "nothing like this") == []


def test_search_filters_by_partitions_and_kind(searchable: Catalog) -> None:
    assert search(searchable, partitions={"blessed": "true"}) == [
        "prediction@1", "blessed_model@2"]
    assert search(searchable, "model", partitions={"blessed": "true"}) == ["blessed_model@2"]
    assert search(searchable, "model", partitions={"blessed": "true"}, kind="value") == [
        "blessed_model@2"]
    assert search(searchable, "q1", partitions={"blessed": "false"}, kind="value") == []
    assert search(searchable, "q1", partitions={"blessed": "false"}, kind="value",
                  latest_only=False) == ["blessed_model@1"]
    assert search(searchable, kind="table") == ["sales@1"]
    assert search(searchable, kind="object") == []


# -- cards -----------------------------------------------------------------------


def test_cards_are_revised_with_history_and_the_current_one_is_read_and_searched(
    catalog: Catalog,
) -> None:
    catalog.commit(None, [new("m", card="# first"), new("m")])
    assert [(r.revision, r.markdown) for r in catalog.card_history("m", 1)] == [(1, "# first")]
    rev = catalog.add_card("m", 1, "data", "# Revenue report")
    assert (rev.name, rev.version, rev.revision, rev.card_type) == ("m", 1, 2, "data")
    assert rev.created_at.tzinfo is not None
    history = catalog.card_history("m", 1)
    assert [(r.revision, r.card_type, r.markdown) for r in history] == [
        (1, "model", "# first"), (2, "data", "# Revenue report")]
    current = catalog.get_version("m", 1)
    assert current is not None
    assert (current.card_markdown, current.card_type) == ("# Revenue report", "data")
    assert search(catalog, "revenue", latest_only=False) == ["m@1"]
    assert search(catalog, "first", latest_only=False) == []
    # a version without a card gets revision 1 first
    assert catalog.add_card("m", 2, "card", "# late").revision == 1
    assert catalog.card_history("m", 3) == []


# -- executions ------------------------------------------------------------------


def test_executions_are_created_read_updated_and_listed(catalog: Catalog) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    old = execution("aaaa1111", started_at=start, status="succeeded")
    new_one = execution("bbbb2222", started_at=start + timedelta(hours=1), kind="interactive",
                        notebook=None)
    catalog.create_execution(old)
    catalog.create_execution(new_one)
    got = catalog.get_execution("aaaa1111")
    assert got is not None
    assert (got.kind, got.status, got.parameters, got.started_at, got.pid) == (
        "notebook", "succeeded", {"alpha": 1}, start, 1234)
    prefixed = catalog.get_execution("bbbb")
    assert prefixed is not None and prefixed.id == "bbbb2222"
    assert catalog.get_execution("nope") is None

    finished = start + timedelta(hours=2)
    catalog.update_execution("bbbb2222", status="failed", finished_at=finished,
                             error={"ename": "E", "evalue": "v", "cell_index": 3})
    got = catalog.get_execution("bbbb2222")
    assert got is not None
    assert (got.status, got.finished_at, got.error) == (
        "failed", finished, {"ename": "E", "evalue": "v", "cell_index": 3})
    with pytest.raises(ValueError, match="unknown execution fields"):
        catalog.update_execution("bbbb2222", colour="blue")

    assert [e.id for e in catalog.list_executions()] == ["bbbb2222", "aaaa1111"]
    assert [e.id for e in catalog.list_executions(status="succeeded")] == ["aaaa1111"]
    assert [e.id for e in catalog.list_executions(kind="interactive")] == ["bbbb2222"]
    assert [e.id for e in catalog.list_executions(notebook="nb.ipynb")] == ["aaaa1111"]
    assert [e.id for e in catalog.list_executions(limit=1)] == ["bbbb2222"]


def test_consumption_is_recorded_once_per_version_and_parameter(catalog: Catalog) -> None:
    catalog.commit(None, [new("a"), new("a")])
    catalog.create_execution(execution("reader"))
    catalog.record_consumption("reader", "a", 1)
    catalog.record_consumption("reader", "a", 1)  # again: nothing new
    catalog.record_consumption("reader", "a", 2, parameter="source")
    catalog.record_consumption("reader", "a", 2, parameter="source")
    inputs = catalog.execution_inputs("reader")
    assert [(i.name, i.version, i.parameter) for i in inputs] == [
        ("a", 1, None), ("a", 2, "source")]
    assert all(i.consumed_at.tzinfo is not None for i in inputs)
    assert catalog.execution_inputs("other") == []


def test_find_and_consume_finds_the_newest_match_and_records_it_once(catalog: Catalog) -> None:
    catalog.commit(None, [new("m", partitions={"blessed": "true"}),
                          new("m", partitions={"blessed": "false"})])
    catalog.create_execution(execution("reader"))
    found = catalog.find_and_consume(Query("m", {"blessed": "true"}), "reader")
    assert found is not None and found.version == 1
    assert catalog.find_and_consume(Query("m"), "reader", "model") == \
        catalog.find_version(Query("m"))
    assert catalog.find_and_consume(Query("m", {"blessed": "maybe"}), "reader") is None
    catalog.find_and_consume(Query("m", {"blessed": "true"}), "reader")  # again: nothing new
    assert [(i.name, i.version, i.parameter) for i in catalog.execution_inputs("reader")] \
        == [("m", 1, None), ("m", 2, "model")]


def test_staged_outputs_are_committed_when_the_execution_succeeds(catalog: Catalog) -> None:
    catalog.create_execution(execution("run"))
    staged = [new("out", "1", partitions={"k": "v"}, card="# c"), new("other", "2")]
    assert [catalog.stage("run", item) for item in staged] == [1, 2]
    assert catalog.staged("run") == staged
    assert catalog.events_after(0) == []  # staged outputs are not versions
    done = datetime.now(UTC)
    committed = catalog.finish_execution("run", commit_staged=True, status="succeeded",
                                         finished_at=done)
    assert refs(committed) == ["out@1", "other@1"]
    assert all(v.execution_id == "run" for v in committed)
    assert refs(catalog.versions_produced_by("run")) == ["out@1", "other@1"]
    assert [e.ref for e in catalog.events_after(0)] == ["out@1", "other@1"]
    assert catalog.staged("run") == []
    ended = catalog.get_execution("run")
    assert ended is not None and (ended.status, ended.finished_at) == ("succeeded", done)


def test_staged_outputs_are_discarded_when_the_execution_fails(catalog: Catalog) -> None:
    catalog.create_execution(execution("run"))
    catalog.stage("run", new("out"))
    assert catalog.finish_execution("run", commit_staged=False, status="failed") == []
    assert catalog.staged("run") == []
    assert catalog.get_version("out", 1) is None and catalog.last_event_seq() == 0
    ended = catalog.get_execution("run")
    assert ended is not None and ended.status == "failed"


def test_referenced_blobs_cover_versions_and_staged_outputs(catalog: Catalog) -> None:
    catalog.commit(None, [new("f", uri="blobs/aa", digest="aa"),
                          new("d", kind="directory", uri="blobs/dd", digest="dd"),
                          new("inline", digest="ii")])
    catalog.create_execution(execution("run"))
    catalog.stage("run", new("s", uri="blobs/ss", digest="ss"))
    blobs, manifests = catalog.referenced_blobs()
    assert {"aa", "ss"} <= blobs and "ii" not in blobs
    assert manifests == {"dd"}


# -- plans, firings, watchers --------------------------------------------------------


def test_plans_are_registered_versioned_and_activated(catalog: Catalog) -> None:
    assert catalog.register_plan("p", {"notebook": "a.ipynb"}, "h1") == (1, True)
    assert catalog.register_plan("p", {"notebook": "a.ipynb"}, "h1") == (1, False)
    plan = catalog.get_plan("p")
    assert plan is not None and (plan.version, plan.active) == (1, False)
    catalog.commit(None, [new("x")])

    assert catalog.set_plan_active("p", True) is True
    assert catalog.set_plan_active("p", True) is False
    plan = catalog.get_plan("p")
    assert plan is not None
    assert (plan.active, plan.activated_seq) == (True, 1)
    assert plan.activated_at is not None and plan.activated_at.tzinfo is not None

    assert catalog.register_plan("p", {"notebook": "b.ipynb"}, "h2") == (2, True)
    plan = catalog.get_plan("p")
    assert plan is not None
    assert (plan.version, plan.latest_version, plan.spec) == (2, 2, {"notebook": "b.ipynb"})
    assert catalog.plan_versions("p") == [(1, {"notebook": "a.ipynb"}),
                                          (2, {"notebook": "b.ipynb"})]
    catalog.register_plan("q", {"notebook": "q.ipynb"}, "hq")
    assert [p.name for p in catalog.list_plans()] == ["p", "q"]
    assert [p.name for p in catalog.list_plans(active_only=True)] == ["p"]

    anchor = datetime(2024, 3, 1, tzinfo=UTC)
    catalog.update_plan_state("p", schedule_anchor=anchor, stopped_reason="loop")
    plan = catalog.get_plan("p")
    assert plan is not None and (plan.schedule_anchor, plan.stopped_reason) == (anchor, "loop")
    with pytest.raises(ValueError):
        catalog.update_plan_state("p", active=False)
    assert catalog.set_plan_active("p", False) is True
    assert catalog.list_plans(active_only=True) == []
    assert catalog.get_plan("missing") is None
    with pytest.raises(KeyError):
        catalog.set_plan_active("missing", True)


def add_firing(catalog: Catalog, key: str, **extra: object) -> str | None:
    return catalog.add_firing(plan="p", plan_version=1, dedup_key=key, kind="manual",
                              chain_depth=0, **extra)  # type: ignore[arg-type]


def test_a_firing_is_recorded_once_per_dedup_key(catalog: Catalog) -> None:
    catalog.register_plan("p", {"notebook": "a.ipynb"}, "h")
    first = add_firing(catalog, "tick:1", trigger_artifact="a", trigger_version=1, event_seq=7)
    assert first is not None
    assert add_firing(catalog, "tick:1") is None
    assert add_firing(catalog, "tick:1", reason="a second watcher saw the same tick") is None
    firing = catalog.get_firing(first)
    assert firing is not None
    assert (firing.plan, firing.status, firing.attempts, firing.event_seq,
            firing.trigger_artifact, firing.trigger_version) == ("p", "pending", 0, 7, "a", 1)
    assert catalog.get_firing("missing") is None


def test_a_pending_firing_is_claimed_once(catalog: Catalog) -> None:
    firing_id = add_firing(catalog, "k")
    assert firing_id is not None
    assert catalog.claim_firing(firing_id, "ex1") is True
    assert catalog.claim_firing(firing_id, "ex2") is False
    firing = catalog.get_firing(firing_id)
    assert firing is not None
    assert (firing.status, firing.execution_id, firing.attempts) == ("running", "ex1", 1)


def test_start_firing_claims_and_records_the_execution_exactly_once(
    catalogs: Catalogs,
) -> None:
    catalog, other = catalogs.catalog, catalogs.other()
    firing_id = add_firing(catalog, "k")
    assert firing_id is not None
    winner, loser = execution("winner"), execution("loser")
    assert catalog.start_firing(firing_id, winner) is True
    assert other.start_firing(firing_id, loser) is False
    firing = other.get_firing(firing_id)
    assert firing is not None and (firing.status, firing.execution_id) == ("running", "winner")
    recorded = other.get_execution("winner")
    assert recorded is not None and recorded.status == "running"
    assert catalog.get_execution("loser") is None  # nothing written for the loser


RACER = """
import sys, time, pathlib, uuid
from datetime import UTC, datetime
from nbripple.model import Execution
firing_id, execution_id, go = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
ex = Execution(id=execution_id, kind="notebook", status="queued", notebook="nb.ipynb",
               notebook_hash=None, parameters={}, requested=None, cwd=None,
               started_at=datetime.now(UTC), finished_at=None, error=None,
               output_notebook_hash=None, pid=None, host=None, trigger=None,
               trigger_artifact=None, trigger_version=None, parent_id=None, chain_depth=0,
               label=None)
catalog.last_event_seq()  # connected before the start line
catalog.close()
while not go.exists():
    time.sleep(0.002)
print("won" if catalog.start_firing(firing_id, ex) else "lost", flush=True)
catalog.close()
"""


def test_start_firing_from_racing_processes_starts_one_execution(
    catalogs: Catalogs, tmp_path: Path
) -> None:
    catalog = catalogs.catalog
    firing_id = add_firing(catalog, "race")
    assert firing_id is not None
    catalog.close()
    go = tmp_path / "go"
    racers = {
        f"racer{i}": subprocess.Popen(
            [sys.executable, "-c", catalogs.client_code + RACER, firing_id, f"racer{i}", str(go)],
            stdout=subprocess.PIPE, text=True)
        for i in range(3)
    }
    go.touch()
    results = {}
    for execution_id, proc in racers.items():
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        results[execution_id] = out.strip()
    winners = [execution_id for execution_id, result in results.items() if result == "won"]
    assert len(winners) == 1, results
    firing = catalog.get_firing(firing_id)
    assert firing is not None and (firing.status, firing.execution_id) == ("running", winners[0])
    assert {e.id for e in catalog.list_executions()} == set(winners)


def test_start_firing_refuses_a_firing_that_is_not_pending(catalog: Catalog) -> None:
    skipped = add_firing(catalog, "skipped", status="skipped", reason="loop guard")
    assert skipped is not None
    assert catalog.start_firing(skipped, execution("never")) is False
    assert catalog.get_execution("never") is None


def test_firings_are_updated_and_filtered(catalog: Catalog) -> None:
    now = datetime.now(UTC)
    first = add_firing(catalog, "a", event_seq=2)
    second = add_firing(catalog, "b", event_seq=1)
    third = add_firing(catalog, "c", event_seq=3)
    assert first and second and third
    catalog.update_firing(first, status="failed", reason="boom")
    catalog.update_firing(third, next_attempt_at=now + timedelta(hours=1), attempts=2)
    with pytest.raises(ValueError):
        catalog.update_firing(first, plan="other")
    assert [f.id for f in catalog.firings(status="pending")] == [second, third]  # event order
    assert [f.id for f in catalog.firings(status=["pending", "failed"])] == [
        second, first, third]
    assert [f.id for f in catalog.firings(status="pending", due_before=now)] == [second]
    assert {f.id for f in catalog.firings(plan="p")} == {first, second, third}
    assert catalog.firings(plan="other") == []
    updated = catalog.get_firing(third)
    assert updated is not None
    assert (updated.attempts, updated.next_attempt_at) == (2, now + timedelta(hours=1))
    failed = catalog.get_firing(first)
    assert failed is not None and (failed.status, failed.reason) == ("failed", "boom")


def test_the_watch_cursor_only_moves_forward(catalogs: Catalogs) -> None:
    catalog = catalogs.catalog
    assert catalog.watch_cursor() == 0
    catalog.advance_watch_cursor(5)
    catalog.advance_watch_cursor(3)
    assert catalog.watch_cursor() == 5
    assert catalogs.other().watch_cursor() == 5


def test_watcher_heartbeats_list_live_watchers_until_they_stop(catalog: Catalog) -> None:
    catalog.watcher_heartbeat("w1", 111, "host-a")
    catalog.watcher_heartbeat("w2", 222, "host-b")
    catalog.watcher_heartbeat("w1", 111, "host-a")  # beats again: still one entry
    live = catalog.live_watchers()
    assert [(w["id"], w["pid"], w["host"]) for w in live] == [
        ("w1", 111, "host-a"), ("w2", 222, "host-b")]
    assert all(w["heartbeat_at"].tzinfo is not None for w in live)
    assert [w["consecutive_failures"] for w in live] == [0, 0]
    failed_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    catalog.watcher_heartbeat("w2", 222, "host-b", consecutive_failures=3,
                              last_error="OSError: disk full", last_error_at=failed_at)
    w2 = next(w for w in catalog.live_watchers() if w["id"] == "w2")
    assert (w2["consecutive_failures"], w2["last_error"], w2["last_error_at"]) == (
        3, "OSError: disk full", failed_at)
    catalog.watcher_heartbeat("w1", 111, "host-a", stopped=True)
    assert [w["id"] for w in catalog.live_watchers()] == ["w2"]


# -- lineage ---------------------------------------------------------------------


@pytest.fixture
def chain(catalog: Catalog) -> Catalog:
    """a@1 -> ex1 -> b@1 -> (consumed by and triggers) ex2 -> c@1."""
    catalog.commit(None, [new("a")])
    catalog.create_execution(execution("ex1"))
    catalog.record_consumption("ex1", "a", 1)
    catalog.commit("ex1", [new("b")])
    catalog.create_execution(execution("ex2", trigger=("b", 1)))
    catalog.record_consumption("ex2", "b", 1)
    catalog.commit("ex2", [new("c")])
    return catalog


def test_lineage_walks_up_down_and_both_ways(chain: Catalog) -> None:
    nodes, edges = chain.lineage_walk("version:b@1", direction="up", depth=1)
    assert set(nodes) == {"version:b@1", "execution:ex1"}
    assert set(edges) == {("execution:ex1", "version:b@1", "produced")}

    nodes, edges = chain.lineage_walk("version:b@1", direction="down", depth=None)
    assert set(nodes) == {"version:b@1", "execution:ex2", "version:c@1"}
    assert set(edges) == {("version:b@1", "execution:ex2", "consumed"),
                          ("version:b@1", "execution:ex2", "triggered"),
                          ("execution:ex2", "version:c@1", "produced")}

    nodes, edges = chain.lineage_walk("version:b@1", direction="both", depth=None)
    assert set(nodes) == {"version:a@1", "execution:ex1", "version:b@1", "execution:ex2",
                          "version:c@1"}
    assert len(set(edges)) == 5
    # a deep bounded walk gives the same graph as the unbounded one
    deep_nodes, deep_edges = chain.lineage_walk("version:b@1", direction="both", depth=10)
    assert (set(deep_nodes), set(deep_edges)) == (set(nodes), set(edges))

    nodes, edges = chain.lineage_walk("execution:ex2", direction="up", depth=2)
    assert set(nodes) == {"execution:ex2", "version:b@1", "execution:ex1"}
    assert chain.lineage_walk("version:zz@1", direction="both", depth=3) == (
        ["version:zz@1"], [])
    with pytest.raises(ValueError):
        chain.lineage_walk("version:b@1", direction="sideways", depth=1)
    with pytest.raises(ValueError):
        chain.lineage_walk("b@1", direction="up", depth=1)


def test_lineage_nodes_details_in_batch(chain: Catalog) -> None:
    found = chain.lineage_nodes(["version:b@1", "execution:ex2", "version:nope@1",
                                 "execution:nope"])
    assert set(found) == {"version:b@1", "execution:ex2"}
    version = found["version:b@1"]
    assert (version["name"], version["version"], version["kind"], version["partitions"],
            version["execution_id"]) == ("b", 1, "value", {}, "ex1")
    ex = found["execution:ex2"]
    assert (ex["execution_id"], ex["kind"], ex["status"], ex["trigger_artifact"],
            ex["trigger_version"]) == ("ex2", "notebook", "running", "b", 1)
    assert ex["started_at"].tzinfo is not None


# -- change token, time, close ---------------------------------------------------------


def test_change_token_changes_after_another_client_commits(catalogs: Catalogs) -> None:
    catalog, other = catalogs.catalog, catalogs.other()
    catalog.commit(None, [new("seen")])
    catalog.close()
    before = catalog.change_token()
    assert isinstance(before, Hashable)
    other.commit(None, [new("from_elsewhere")])
    other.close()
    after = catalog.change_token()
    assert after != before
    other.add_card("from_elsewhere", 1, "card", "# changed")
    other.close()
    assert catalog.change_token() != after
    assert [e.ref for e in catalog.events_after(1)] == ["from_elsewhere@1"]


COMMIT_ONE = """
from nbripple.model import ArtifactDecl, NewVersion
catalog.commit(None, [NewVersion(artifact=ArtifactDecl(name="from_a_process"), partitions={},
                                 time_partition=None, kind="value", python_type="builtins.int",
                                 content_hash="h", size=1, uri=None, inline_value="1")])
catalog.close()
"""


def test_change_token_changes_after_another_process_commits(catalogs: Catalogs) -> None:
    catalog = catalogs.catalog
    catalog.commit(None, [new("seen")])
    catalog.close()
    before = catalog.change_token()
    subprocess.run([sys.executable, "-c", catalogs.client_code + COMMIT_ONE], check=True,
                   timeout=120)
    assert catalog.change_token() != before
    assert [e.ref for e in catalog.events_after(1)] == ["from_a_process@1"]


def test_another_client_sees_every_commit(catalogs: Catalogs) -> None:
    catalogs.catalog.commit(None, [new("shared")])
    other = catalogs.other()
    assert refs(other.list_versions("shared")) == ["shared@1"]
    other.commit(None, [new("shared")])
    assert refs(catalogs.catalog.list_versions("shared")) == ["shared@2", "shared@1"]


def test_now_is_aware_utc_and_close_leaves_the_catalog_usable(catalog: Catalog) -> None:
    before = datetime.now(UTC)
    now = catalog.now()
    assert now.tzinfo is not None and abs(now - before) < timedelta(minutes=1)
    catalog.commit(None, [new("x")])
    catalog.close()
    catalog.close()
    assert refs(catalog.commit(None, [new("x")])) == ["x@2"]


def test_records_keep_their_fields_through_a_round_trip(catalog: Catalog) -> None:
    item = new("r", "v", partitions={"p": "1"}, card="# card")
    [made] = catalog.commit(None, [item])
    again = catalog.get_version("r", 1)
    assert again is not None and replace(again, created_at=made.created_at) == made
