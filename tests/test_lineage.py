"""Lineage graphs walked from real catalogs: exact nodes and edges per depth and direction."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace

import networkx as nx
import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.errors import ArtifactNotFound, ExecutionNotFound, NotFound, VersionNotFound
from nbripple.graph import LineageGraph
from nbripple.service.lineage import build_lineage


@pytest.fixture(autouse=True, params=["hop-by-hop", "recursive"])
def walk_strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with bounded walks done hop by hop, then by the recursive query."""
    limit = 10**6 if request.param == "hop-by-hop" else -1
    monkeypatch.setattr(EmbeddedCatalog, "lineage_level_walk_max_depth", limit)
    return str(request.param)


def V(ref: str) -> str:
    return f"version:{ref}"


def X(execution_id: str) -> str:
    return f"execution:{execution_id}"


def edge_set(graph: LineageGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.kind) for e in graph.edges}


@dataclass
class World:
    """Executions of the blessed-model story, plus an unrelated branch."""

    producer: str  # raw@1
    train: str  # raw@1 -> blessed_model@1..3
    ops: str  # blessed_model@2 -> prediction@1
    report: str  # blessed_model@2 -> (failed, nothing)
    noise: str  # unrelated: noise@1 -> noise_summary@1


@pytest.fixture
def world(ws: nr.Workspace) -> World:
    raw = nr.Artifact("raw")
    model = nr.Artifact("blessed_model", partition_keys=["blessed"])
    prediction = nr.Artifact("prediction")
    noise, summary = nr.Artifact("noise"), nr.Artifact("noise_summary")

    with ws.external_execution("producer.py") as producer:
        ws.create_from(raw, [1, 2, 3], execution_id=producer)
    with ws.external_execution("train.ipynb") as train:
        ws.catalog.record_consumption(train, "raw", 1)
        for blessed in ("false", "true", "false"):
            ws.create_from(model, {"blessed": blessed}, partitions={"blessed": blessed},
                           execution_id=train)
    with ws.external_execution("ops.ipynb") as ops:
        ws.catalog.record_consumption(ops, "blessed_model", 2, "model")
        ws.create_from(prediction, 0.93, execution_id=ops)
    with pytest.raises(RuntimeError), ws.external_execution("report.ipynb") as report:
        ws.catalog.record_consumption(report, "blessed_model", 2, "model")
        raise RuntimeError("the report crashed before emitting anything")
    with ws.external_execution("noise.py") as noise_ex:
        ws.create_from(noise, 1, execution_id=noise_ex)
        ws.catalog.record_consumption(noise_ex, "noise", 1)
        ws.create_from(summary, 2, execution_id=noise_ex)
    return World(producer, train, ops, report, noise_ex)


# -- walks ------------------------------------------------------------------------
def test_depth_one_both_directions_from_a_version(world: World) -> None:
    g = nr.lineage("blessed_model@2")
    assert g.root == V("blessed_model@2")
    assert g.node_ids == {V("blessed_model@2"), X(world.train), X(world.ops), X(world.report)}
    assert edge_set(g) == {
        (X(world.train), V("blessed_model@2"), "produced"),
        (V("blessed_model@2"), X(world.ops), "consumed"),
        (V("blessed_model@2"), X(world.report), "consumed"),
    }
    assert g.nodes[0].id == g.root and g.nodes[0].depth == 0
    assert {n.depth for n in g.nodes[1:]} == {1}


def test_depth_two_up_stops_after_two_hops(world: World) -> None:
    g = nr.lineage("prediction@1", depth=2, direction="up")
    assert g.node_ids == {V("prediction@1"), X(world.ops), V("blessed_model@2")}
    assert edge_set(g) == {
        (X(world.ops), V("prediction@1"), "produced"),
        (V("blessed_model@2"), X(world.ops), "consumed"),
    }
    assert g.node("blessed_model@2").depth == 2


def test_whole_graph_up_reaches_the_sources_and_nothing_unrelated(world: World) -> None:
    g = nr.lineage("prediction@1", depth=None, direction="up")
    assert g.node_ids == {
        V("prediction@1"), X(world.ops), V("blessed_model@2"), X(world.train), V("raw@1"),
        X(world.producer),
    }
    assert edge_set(g) == {
        (X(world.ops), V("prediction@1"), "produced"),
        (V("blessed_model@2"), X(world.ops), "consumed"),
        (X(world.train), V("blessed_model@2"), "produced"),
        (V("raw@1"), X(world.train), "consumed"),
        (X(world.producer), V("raw@1"), "produced"),
    }
    # Up is not undirected: siblings made by the same run, and other consumers, stay out.
    assert V("blessed_model@1") not in g.node_ids
    assert X(world.report) not in g.node_ids
    assert [v.ref for v in g.upstream_versions()] == ["blessed_model@2", "raw@1"]
    assert g.downstream_versions() == []
    assert {n.id: n.depth for n in g.nodes}[X(world.producer)] == 5


def test_whole_graph_down_from_a_source(world: World) -> None:
    g = nr.lineage("raw@1", depth=None, direction="down")
    assert g.node_ids == {
        V("raw@1"), X(world.train), V("blessed_model@1"), V("blessed_model@2"),
        V("blessed_model@3"), X(world.ops), X(world.report), V("prediction@1"),
    }
    assert edge_set(g) == {
        (V("raw@1"), X(world.train), "consumed"),
        (X(world.train), V("blessed_model@1"), "produced"),
        (X(world.train), V("blessed_model@2"), "produced"),
        (X(world.train), V("blessed_model@3"), "produced"),
        (V("blessed_model@2"), X(world.ops), "consumed"),
        (V("blessed_model@2"), X(world.report), "consumed"),
        (X(world.ops), V("prediction@1"), "produced"),
    }
    assert X(world.producer) not in g.node_ids
    assert [v.ref for v in g.downstream_versions()] == [
        "blessed_model@1", "blessed_model@2", "blessed_model@3", "prediction@1",
    ]


def test_both_is_the_union_of_the_up_and_down_walks(world: World) -> None:
    both = nr.lineage("blessed_model@2", depth=None, direction="both")
    up = nr.lineage("blessed_model@2", depth=None, direction="up")
    down = nr.lineage("blessed_model@2", depth=None, direction="down")
    assert both.node_ids == up.node_ids | down.node_ids
    assert edge_set(both) == edge_set(up) | edge_set(down)
    # Not an undirected walk: the siblings of blessed_model@2 are not reached.
    assert V("blessed_model@1") not in both.node_ids
    assert V("blessed_model@3") not in both.node_ids
    assert not both.node_ids & {V("noise@1"), V("noise_summary@1"), X(world.noise)}


def test_depth_zero_is_the_root_alone(world: World) -> None:
    g = nr.lineage("blessed_model@2", depth=0)
    assert g.node_ids == {V("blessed_model@2")}
    assert g.edges == []


def test_start_at_an_execution_by_id_prefix_object_or_node_id(ws: nr.Workspace,
                                                               world: World) -> None:
    expected = {X(world.train), V("raw@1"), V("blessed_model@1"), V("blessed_model@2"),
                V("blessed_model@3")}
    for start in (world.train, world.train[:6], f"execution:{world.train}",
                  ws.execution(world.train)):
        g = nr.lineage(start)
        assert g.root == X(world.train)
        assert g.node_ids == expected
    g = nr.lineage(world.train, depth=None, direction="up")
    assert g.node_ids == {X(world.train), V("raw@1"), X(world.producer)}


def test_start_at_any_version_reference(ws: nr.Workspace, world: World) -> None:
    starts = [
        "nbripple://blessed_model?blessed=true",
        nr.query("blessed_model", blessed="true"),
        "nbripple://blessed_model@2",
        "version:blessed_model@2",
        ws.resolve("blessed_model@2"),
    ]
    for start in starts:
        assert nr.lineage(start, depth=0).root == V("blessed_model@2")
    assert nr.lineage("blessed_model", depth=0).root == V("blessed_model@3")  # latest


def test_a_failed_execution_is_flagged(world: World) -> None:
    g = nr.lineage("blessed_model@2", direction="down")
    report = g.node(X(world.report))
    assert report.failed and report.data["status"] == "failed"
    assert report.label == "report.ipynb · failed"
    assert "RuntimeError" in report.data["error"]
    assert not g.node(X(world.ops)).failed


def test_node_labels_and_data(world: World) -> None:
    g = nr.lineage("prediction@1", direction="up")
    version = g.node("prediction@1")
    assert version.type == "version" and version.label == "prediction@1"
    assert version.data["kind"] == "value" and version.data["execution_id"] == world.ops
    execution = g.node(X(world.ops))
    assert execution.type == "execution"
    assert execution.label == "ops.ipynb · succeeded"
    assert execution.data["kind"] == "external" and execution.data["started_at"]
    model = nr.lineage("blessed_model@2", depth=0).node("blessed_model@2")
    assert model.data["partitions"] == {"blessed": "true"}


def test_lineage_records_no_consumption(ws: nr.Workspace, world: World) -> None:
    before = {e.id for e in ws.executions(limit=1000)}
    nr.lineage("prediction@1", depth=None)
    nr.lineage(nr.query("blessed_model", blessed="true"))
    assert {e.id for e in ws.executions(limit=1000)} == before
    for execution_id in before:
        assert all(i.ref != "prediction@1" for i in ws.execution(execution_id).inputs)


# -- cycles and triggers --------------------------------------------------------------
def test_interactive_execution_consuming_its_own_output_terminates(ws: nr.Workspace) -> None:
    x = nr.Artifact("x")
    x.create_from(1)  # interactive execution of this process
    assert nr.load("x@1") == 1  # the same execution consumes it: a two-node cycle
    interactive = ws.interactive_execution_id()
    cycle = {V("x@1"), X(interactive)}
    produced = (X(interactive), V("x@1"), "produced")
    consumed = (V("x@1"), X(interactive), "consumed")
    for direction in ("up", "down", "both"):
        for depth in (None, 2, 7):
            g = nr.lineage("x@1", depth=depth, direction=direction)
            assert g.node_ids == cycle, (direction, depth)
            assert edge_set(g) == {produced, consumed}, (direction, depth)
    # One hop crosses only the edge leading away from the root in that direction.
    assert edge_set(nr.lineage("x@1", depth=1, direction="up")) == {produced}
    assert edge_set(nr.lineage("x@1", depth=1, direction="down")) == {consumed}
    assert edge_set(nr.lineage("x@1", depth=1, direction="both")) == {produced, consumed}
    assert "(see above)" in nr.lineage("x@1", depth=None).to_text()
    assert [v.ref for v in nr.lineage("x@1", depth=None, direction="up").upstream_versions()
            ] == []  # the root itself is not its own upstream


def test_longer_cycle_through_two_executions(ws: nr.Workspace) -> None:
    y, z, tail = nr.Artifact("y"), nr.Artifact("z"), nr.Artifact("tail")
    with ws.external_execution("a.py") as a:
        ws.create_from(y, 1, execution_id=a)
    with ws.external_execution("b.py") as b:
        ws.catalog.record_consumption(b, "y", 1)
        ws.create_from(z, 2, execution_id=b)
    ws.catalog.record_consumption(a, "z", 1)  # closes a -> y@1 -> b -> z@1 -> a
    with ws.external_execution("c.py") as c:
        ws.catalog.record_consumption(c, "z", 1)
        ws.create_from(tail, 3, execution_id=c)
    ring = {X(a), V("y@1"), X(b), V("z@1")}
    up = nr.lineage("tail@1", depth=None, direction="up")
    assert up.node_ids == ring | {X(c), V("tail@1")}
    assert len(up.edges) == 6
    down = nr.lineage("y@1", depth=None, direction="down")
    assert down.node_ids == ring | {X(c), V("tail@1")}
    limited = nr.lineage("y@1", depth=3, direction="down")
    assert limited.node_ids == ring | {X(c)}
    assert edge_set(limited) == {
        (V("y@1"), X(b), "consumed"), (X(b), V("z@1"), "produced"),
        (V("z@1"), X(a), "consumed"), (V("z@1"), X(c), "consumed"),
    }


def test_triggered_edge_appears(ws: nr.Workspace, world: World) -> None:
    ws.catalog.update_execution(world.ops, trigger_artifact="blessed_model", trigger_version=2)
    g = nr.lineage("blessed_model@2", direction="down")
    assert edge_set(g) == {
        (V("blessed_model@2"), X(world.ops), "consumed"),
        (V("blessed_model@2"), X(world.ops), "triggered"),
        (V("blessed_model@2"), X(world.report), "consumed"),
    }
    assert g.node(X(world.ops)).data["trigger"] == "blessed_model@2"
    up = nr.lineage(world.ops, direction="up")
    assert {e.kind for e in up.edges} == {"consumed", "triggered"}
    assert "consumed + triggered by  blessed_model@2" in up.to_text()
    graph = up.to_networkx()
    assert graph.edges[V("blessed_model@2"), X(world.ops)]["kinds"] == ["consumed", "triggered"]


def test_edge_to_a_row_the_catalog_lacks_is_a_missing_node(ws: nr.Workspace,
                                                           world: World) -> None:
    ws.catalog.record_consumption(world.ops, "ghost", 7)
    g = nr.lineage(world.ops, direction="up")
    ghost = g.node("ghost@7")
    assert ghost.missing
    assert ghost.data == {"name": "ghost", "version": 7, "ref": "ghost@7", "missing": True}
    assert "missing" in g.to_dict()["nodes"][[n.id for n in g.nodes].index(ghost.id)]["classes"]


# -- errors -----------------------------------------------------------------------------
def test_unknown_starts_are_clear_errors(ws: nr.Workspace, world: World) -> None:
    with pytest.raises(ArtifactNotFound, match="no artifact named 'nope'"):
        nr.lineage("nope@1")
    with pytest.raises(VersionNotFound, match=r"prediction has versions 1\.\.1"):
        nr.lineage("prediction@9")
    with pytest.raises(NotFound, match=r"'predictoin' is neither an artifact nor an "
                       r"execution id .* \(did you mean prediction\?\)"):
        nr.lineage("predictoin")
    with pytest.raises(ExecutionNotFound, match="no execution with id 'ffff0000'"):
        nr.lineage("execution:ffff0000")
    with pytest.raises(ValueError, match="direction must be 'up'"):
        nr.lineage("prediction@1", direction="sideways")
    with pytest.raises(ValueError, match="depth must be a number of hops"):
        nr.lineage("prediction@1", depth=-1)
    with pytest.raises(nr.NbrippleError, match="cannot start a lineage walk at a int"):
        nr.lineage(42)  # type: ignore[arg-type]


def test_a_word_naming_an_artifact_and_an_execution_is_ambiguous(ws: nr.Workspace,
                                                                 world: World) -> None:
    twin = replace(ws.execution(world.producer), id="abcdef0123456789", _workspace=None)
    ws.catalog.create_execution(twin)
    nr.Artifact("abcdef").create_from(1)
    with pytest.raises(nr.NbrippleError, match="names both an artifact and an execution"):
        nr.lineage("abcdef")
    assert nr.lineage("abcdef@1", depth=0).root == V("abcdef@1")
    assert nr.lineage("execution:abcdef", depth=0).root == X("abcdef0123456789")


# -- exports --------------------------------------------------------------------------
def test_to_networkx_carries_attributes(world: World) -> None:
    g = nr.lineage("prediction@1", depth=None, direction="up")
    graph = g.to_networkx()
    assert isinstance(graph, nx.DiGraph)
    assert set(graph.nodes) == g.node_ids
    assert {(s, t, d["kind"]) for s, t, d in graph.edges(data=True)} == edge_set(g)
    assert graph.nodes[V("blessed_model@2")]["type"] == "version"
    assert graph.nodes[V("blessed_model@2")]["partitions"] == {"blessed": "true"}
    assert graph.nodes[X(world.ops)]["status"] == "succeeded"
    assert graph.graph["root"] == V("prediction@1")
    assert nx.is_directed_acyclic_graph(graph)
    assert set(nx.ancestors(graph, V("prediction@1"))) == g.node_ids - {V("prediction@1")}


def test_to_dict_is_cytoscape_elements_json(world: World) -> None:
    g = nr.lineage("blessed_model@2", direction="both")
    elements = json.loads(json.dumps(g.to_dict()))
    assert set(elements) == {"nodes", "edges"}
    by_id = {n["data"]["id"]: n for n in elements["nodes"]}
    assert set(by_id) == g.node_ids
    assert by_id[V("blessed_model@2")]["classes"] == "version root"
    assert by_id[X(world.report)]["classes"] == "execution failed"
    assert by_id[X(world.ops)]["data"]["label"] == "ops.ipynb · succeeded"
    assert {(e["data"]["source"], e["data"]["target"], e["data"]["kind"])
            for e in elements["edges"]} == edge_set(g)
    assert all(e["classes"] == e["data"]["kind"] for e in elements["edges"])
    assert len({e["data"]["id"] for e in elements["edges"]}) == len(elements["edges"])


def test_to_text_and_repr(world: World) -> None:
    g = nr.lineage("blessed_model@2", depth=None, direction="both")
    text = g.to_text()
    lines = text.splitlines()
    assert lines[0] == "blessed_model@2  [value · blessed=true]"
    assert "upstream (what it came from):" in lines
    assert "downstream (what was made from it):" in lines
    assert f"└── produced by  train.ipynb · succeeded  [external {world.train[:8]}]" in lines
    assert any(line.endswith("produced  prediction@1  [value]") for line in lines)
    assert repr(g) == (f"<LineageGraph root=version:blessed_model@2 direction=both depth=all: "
                       f"{len(g.nodes)} nodes, {len(g.edges)} edges>")
    # A node's only neighbour continues under it, without a glyph; forks branch.
    up_lines = nr.lineage("prediction@1", depth=None, direction="up").to_text().splitlines()
    assert up_lines[2].startswith("└── produced by  ops.ipynb · succeeded")
    assert up_lines[3] == "    consumed  blessed_model@2  [value · blessed=true]"
    assert up_lines[4].startswith("    produced by  train.ipynb · succeeded")
    down_lines = nr.lineage("raw@1", depth=None, direction="down").to_text().splitlines()
    assert down_lines[2].startswith("└── consumed by  train.ipynb · succeeded")
    assert down_lines[3:6] == [
        "    ├── produced  blessed_model@1  [value · blessed=false]",
        "    ├── produced  blessed_model@2  [value · blessed=true]",
        "    │   ├── consumed by  ops.ipynb · succeeded  [external " + world.ops[:8] + "]",
    ]
    only_up = nr.lineage("raw@1", direction="up", depth=None).to_text()
    assert "downstream" not in only_up and "producer.py" in only_up


def test_nr_lineage_is_the_function_whatever_was_imported(world: World) -> None:
    import nbripple.graph
    import nbripple.service.lineage

    with pytest.raises(ModuleNotFoundError):
        import nbripple.lineage  # no module may shadow the function nr.lineage
    assert callable(nr.lineage) and nr.lineage is nbripple.api.lineage
    assert nbripple.graph.LineageGraph is nr.LineageGraph
    assert nr.lineage("prediction@1", depth=0).root == V("prediction@1")


def test_build_lineage_on_an_explicit_workspace(ws: nr.Workspace, world: World) -> None:
    g = build_lineage(ws, "prediction@1", depth=1, direction="up")
    assert g.node_ids == {V("prediction@1"), X(world.ops)}
    assert g.upstream_versions() == []
    (model,) = build_lineage(ws, "prediction@1", depth=2, direction="up").upstream_versions()
    assert model.ref == "blessed_model@2" and model._workspace is ws
    assert model.load() == {"blessed": "true"}


def test_hop_by_hop_and_recursive_walks_agree_on_a_random_graph(
        ws: nr.Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    artifacts = [nr.Artifact(f"a{i}") for i in range(4)]
    refs: list[tuple[str, int]] = []
    executions: list[str] = []
    for step in range(30):
        with ws.external_execution(f"step{step}.py") as execution_id:
            for name, number in rng.sample(refs, min(len(refs), rng.randint(0, 3))):
                ws.catalog.record_consumption(execution_id, name, number)
            for _ in range(rng.randint(0, 2)):
                v = ws.create_from(rng.choice(artifacts), step, execution_id=execution_id)
                refs.append((v.name, v.version))
        executions.append(execution_id)
    for execution_id in rng.sample(executions, 8):  # later inputs: cycles, and triggers
        name, number = rng.choice(refs)
        ws.catalog.record_consumption(execution_id, name, number)
        name, number = rng.choice(refs)
        ws.catalog.update_execution(execution_id, trigger_artifact=name, trigger_version=number)

    def walk(start: str, depth: int, direction: str, limit: int) -> tuple[set[str], set[object]]:
        monkeypatch.setattr(EmbeddedCatalog, "lineage_level_walk_max_depth", limit)
        g = nr.lineage(start, depth=depth, direction=direction)
        return g.node_ids, set(edge_set(g))

    starts = [f"{n}@{v}" for n, v in rng.sample(refs, 6)] + rng.sample(executions, 4)
    for start in starts:
        for direction in ("up", "down", "both"):
            for depth in range(5):
                hop_by_hop = walk(start, depth, direction, 10**6)
                assert hop_by_hop == walk(start, depth, direction, -1), (start, direction, depth)
        whole = nr.lineage(start, depth=None)
        assert whole.node_ids >= nr.lineage(start, depth=4).node_ids
