"""Artifacts end to end on a local home: every kind round-trips, versions are numbered,
partitions and time partitions are normalized and queryable, identical content is
stored once, and a corrupted blob is refused instead of returning wrong data."""

from __future__ import annotations

import json
import os
import pickle
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal as assert_polars_equal

import nbripple as nr
from duckdb_raw import raw_duckdb
from nbripple.codecs import INLINE_LIMIT
from nbripple.errors import (
    DeclarationMismatch,
    IntegrityError,
    KindError,
    UnpicklingWarning,
    VersionNotFound,
)

# -- helpers -------------------------------------------------------------------


def blob_files(home: Path) -> list[Path]:
    """Every blob file in the home's local store."""
    root = home / "store" / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def catalog_rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run a query on the real catalog file."""
    with raw_duckdb(nr.current().home) as con:
        return con.execute(sql, params or []).fetchall()


def corrupt(path: Path) -> None:
    """Flip bytes in the middle of a blob, keeping its size (a silent bit-rot)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 8, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def blob_of(home: Path, digest: str) -> Path:
    return home / "store" / "blobs" / digest[:2] / digest


class Point:
    """A plain class: not JSON-able, so it is stored as an object (pickle)."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))


# -- tables --------------------------------------------------------------------


def test_pandas_round_trip_preserves_index_dtypes_and_records_schema(home: Path) -> None:
    df = pd.DataFrame(
        {"price": [1.5, 2.25, 3.0], "qty": [1, 2, 3], "sku": ["a", "b", "c"],
         "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])},
        index=pd.Index(["x", "y", "z"], name="row_id"),
    )
    v = nr.Artifact("sales").create_from(df)
    assert (v.kind, v.python_type, v.num_rows) == ("table", "pandas", 3)
    types = {c["name"]: c["type"] for c in v.schema or []}
    assert list(types) == ["price", "qty", "sku", "when", "row_id"]
    assert (types["price"], types["qty"]) == ("double", "int64")
    assert types["when"].startswith("timestamp[")
    assert types["sku"] in ("string", "large_string")

    loaded = nr.load("sales@1")
    pd.testing.assert_frame_equal(loaded, df)
    assert loaded.index.name == "row_id"


def test_pandas_range_index_and_multi_index_survive(home: Path) -> None:
    ranged = pd.DataFrame({"a": [1, 2, 3]}, index=pd.RangeIndex(10, 13))
    multi = pd.DataFrame(
        {"v": [1.0, 2.0]},
        index=pd.MultiIndex.from_tuples([("eu", 1), ("us", 2)], names=["region", "n"]),
    )
    art = nr.Artifact("indexed")
    pd.testing.assert_frame_equal(art.create_from(ranged).load(), ranged)
    pd.testing.assert_frame_equal(art.create_from(multi).load(), multi)


def test_arrow_table_and_record_batch_load_back_as_written(home: Path) -> None:
    table = pa.table({"id": pa.array([1, 2, 3], pa.int32()), "name": ["a", None, "c"]})
    batch = pa.record_batch({"id": pa.array([7, 8], pa.int64()), "ok": [True, False]})
    art = nr.Artifact("arrowish")
    vt = art.create_from(table)
    vb = art.create_from(batch)
    assert (vt.python_type, vb.python_type) == ("arrow", "arrow.recordbatch")
    assert vt.schema == [{"name": "id", "type": "int32"}, {"name": "name", "type": "string"}]
    loaded_t = vt.load()
    loaded_b = vb.load()
    assert isinstance(loaded_t, pa.Table) and loaded_t.equals(table)
    assert isinstance(loaded_b, pa.RecordBatch) and loaded_b.equals(batch)


def test_empty_record_batch_round_trips_with_its_schema(home: Path) -> None:
    batch = pa.RecordBatch.from_pylist([], schema=pa.schema([("a", pa.int64())]))
    v = nr.Artifact("empty_batch").create_from(batch)
    assert v.num_rows == 0
    loaded = v.load()
    assert isinstance(loaded, pa.RecordBatch) and loaded.schema == batch.schema


def test_polars_round_trip(home: Path) -> None:
    df = pl.DataFrame({"k": ["a", "b", None], "v": [1.5, None, 3.5], "n": [1, 2, 3]})
    v = nr.Artifact("pl_table").create_from(df)
    assert (v.python_type, v.num_rows) == ("polars", 3)
    loaded = v.load()
    assert isinstance(loaded, pl.DataFrame)
    assert_polars_equal(loaded, df)


def test_as_converts_a_table_to_each_library(home: Path) -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    v = nr.Artifact("convertible").create_from(df)

    as_arrow = nr.load(v.ref, as_="arrow")
    assert isinstance(as_arrow, pa.Table)
    assert as_arrow.column("a").to_pylist() == [1, 2, 3]

    as_polars = v.load(as_="polars")
    assert isinstance(as_polars, pl.DataFrame)
    assert as_polars["b"].to_list() == ["x", "y", "z"]

    from_polars = nr.Artifact("from_polars").create_from(pl.from_pandas(df))
    pd.testing.assert_frame_equal(from_polars.load(as_="pandas"), df)


def test_as_is_refused_for_non_tables_and_unknown_targets(home: Path) -> None:
    nr.Artifact("cfg").create_from({"lr": 0.1})
    nr.Artifact("tbl").create_from(pa.table({"a": [1]}))
    with pytest.raises(KindError, match="as_= applies to tables only"):
        nr.load("cfg@1", as_="pandas")
    with pytest.raises(KindError, match="'arrow', 'pandas' or 'polars'"):
        nr.load("tbl@1", as_="numpy")


@pytest.mark.slow
def test_million_row_table_round_trips(home: Path) -> None:
    n = 1_000_000
    table = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "value": pa.array([i * 0.5 for i in range(n)], pa.float64()),
        "group": pa.array([f"g{i % 97}" for i in range(n)]),
    })
    v = nr.Artifact("big").create_from(table)
    assert v.num_rows == n
    assert [c["name"] for c in v.schema or []] == ["id", "value", "group"]
    assert v.size == blob_of(home, v.content_hash).stat().st_size
    loaded = nr.load("big@1")
    assert loaded.num_rows == n
    assert loaded.equals(table)


# -- files and directories -----------------------------------------------------


def test_file_round_trip_loads_to_a_cached_local_path(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "report.csv"
    src.write_bytes(b"a,b\n1,2\n" * 1000)
    v = nr.Artifact("report").create_from(src)
    assert (v.kind, v.size, v.meta["filename"]) == ("file", src.stat().st_size, "report.csv")

    path = nr.load("report@1")
    assert isinstance(path, Path) and path.name == "report.csv"
    assert path.read_bytes() == src.read_bytes()
    assert home / "cache" in path.parents


def test_directory_round_trip_keeps_nested_layout_and_empty_dirs(
    home: Path, tmp_path: Path
) -> None:
    src = tmp_path / "model_dir"
    (src / "weights" / "layer1").mkdir(parents=True)
    (src / "empty" / "deeper_empty").mkdir(parents=True)
    (src / "config.json").write_text('{"layers": 2}')
    (src / "weights" / "layer1" / "w.bin").write_bytes(os.urandom(5000))
    (src / "weights" / "bias.bin").write_bytes(b"\x00\x01\x02")
    (src / ".hidden").write_text("dotfile kept")

    v = nr.Artifact("model_dir").create_from(src)
    assert v.kind == "directory"
    assert v.meta["files"] == 4
    assert v.size == 5000 + 3 + len('{"layers": 2}') + len("dotfile kept")

    out = v.load()
    assert out.name == "model_dir"
    assert _tree(out) == _tree(src)
    assert (out / "empty" / "deeper_empty").is_dir()


def _tree(root: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in root.rglob("*")
    }


def test_directory_is_downloaded_once_into_the_cache(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "d"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("A")
    (src / "b.txt").write_text("B")
    v = nr.Artifact("dir_cached").create_from(src)

    store = nr.current().store
    fetches: list[str] = []
    real_fetch = store.fetch_to

    def counting_fetch(digest: str, dest: Any, *, label: str = "") -> Path:
        fetches.append(digest)
        return real_fetch(digest, dest, label=label)

    monkeypatch.setattr(store, "fetch_to", counting_fetch)
    first = v.load()
    assert len(fetches) == 2
    second = nr.load(v.ref)
    assert second == first and len(fetches) == 2

    # The cache is shared by every workspace of this home (e.g. another process),
    # and serves the data even if the store became unreachable.
    for blob in blob_files(home):
        blob.unlink()
    other = nr.Workspace(home)
    assert _tree(other.load(v.ref)) == _tree(src)


def test_same_directory_content_under_two_names_loads_under_each_name(
    home: Path, tmp_path: Path
) -> None:
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "same.txt").write_text("identical")
    art = nr.Artifact("twins")
    v1 = art.create_from(tmp_path / "first")
    v2 = art.create_from(tmp_path / "second")
    assert v1.content_hash == v2.content_hash
    p1, p2 = v1.load(), v2.load()
    assert (p1.name, p2.name) == ("first", "second")
    assert (p1 / "same.txt").read_text() == (p2 / "same.txt").read_text() == "identical"


def test_same_file_content_under_two_names_loads_under_each_name(
    home: Path, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("same")
    (tmp_path / "b.txt").write_text("same")
    art = nr.Artifact("twin_files")
    pa_, pb = art.create_from(tmp_path / "a.txt").load(), art.create_from(tmp_path / "b.txt").load()
    assert (pa_.name, pb.name) == ("a.txt", "b.txt")
    assert pa_.read_text() == pb.read_text() == "same"


def test_download_writes_each_kind_to_a_destination(home: Path, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.txt").write_text("hello")
    dest = tmp_path / "out"
    dest.mkdir()
    d = nr.Artifact("dl_dir").create_from(tmp_path / "src").download(dest)
    f = nr.Artifact("dl_file").create_from(tmp_path / "src" / "f.txt").download(dest / "copy.txt")
    t = nr.Artifact("dl").create_from(pa.table({"a": [1, 2]})).download(dest)
    j = nr.Artifact("dl_json").create_from({"k": [1, 2]}).download(dest)
    assert (d / "f.txt").read_text() == "hello"
    assert f.read_text() == "hello"
    assert t.name == "dl@1.parquet" and pa.parquet.read_table(t).num_rows == 2  # type: ignore[attr-defined]
    assert json.loads(j.read_text()) == {"k": [1, 2]}


# -- values and objects --------------------------------------------------------


def test_small_value_is_inline_and_large_value_is_a_blob(home: Path) -> None:
    art = nr.Artifact("settings")
    exactly_limit = "a" * (INLINE_LIMIT - 2)  # JSON adds two quote characters
    just_over = "a" * (INLINE_LIMIT - 1)

    inline = art.create_from(exactly_limit)
    assert inline.inline_value is not None and inline.uri is None
    assert inline.size == INLINE_LIMIT
    assert blob_files(home) == []

    blob = art.create_from(just_over)
    assert blob.inline_value is None and blob.uri is not None
    assert blob_files(home) == [blob_of(home, blob.content_hash)]

    assert nr.load("settings@1") == exactly_limit
    assert nr.load("settings@2") == just_over


def test_json_values_of_every_shape_round_trip(home: Path) -> None:
    art = nr.Artifact("values")
    for value in ({"a": [1, 2.5, None, True], "b": {"c": "ü"}}, [1, "two"], "text", 42,
                  3.25, True, None):
        v = art.create_from(value)
        assert v.kind == "value"
        assert v.load() == value
        assert type(v.load()) is type(value)


@pytest.mark.parametrize(
    "value",
    [{(1, 2): "tuple key"}, {1, 2, 3}, (1, 2), {1: "int key"}, float("nan"), b"bytes",
     Point(1, 2), date(2024, 1, 1)],
    ids=["tuple-keys", "set", "tuple", "int-keys", "nan", "bytes", "class", "date"],
)
def test_values_that_do_not_json_round_trip_are_stored_as_objects(
    home: Path, value: Any
) -> None:
    v = nr.Artifact("odd").create_from(value)
    assert v.kind == "object"
    with pytest.warns(UnpicklingWarning, match="odd@1 is an object"):
        loaded = v.load()
    if isinstance(value, float):
        assert loaded != loaded  # nan
    else:
        assert loaded == value and type(loaded) is type(value)


def test_object_is_a_pickle_blob(home: Path) -> None:
    v = nr.Artifact("point").create_from(Point(3, 4))
    assert v.python_type.endswith("test_artifacts.Point")
    assert pickle.loads(blob_of(home, v.content_hash).read_bytes()) == Point(3, 4)
    with pytest.warns(UnpicklingWarning, match="point@1 is an object"):
        assert nr.load("nbripple://point@1") == Point(3, 4)


# -- kinds pinned ----------------------------------------------------------------


def test_pinned_kind_is_used_and_a_mismatch_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    as_object = nr.Artifact("pickled_cfg", kind="object")
    v = as_object.create_from({"lr": 0.1})
    with pytest.warns(UnpicklingWarning):
        assert v.kind == "object" and v.load() == {"lr": 0.1}

    tables = nr.Artifact("only_tables", kind="table")
    with pytest.raises(KindError, match=r"only_tables is declared kind='table'.*got dict"):
        tables.create_from({"not": "a table"})
    values = nr.Artifact("only_values", kind="value")
    with pytest.raises(KindError, match=r"only_values is declared kind='value'.*kind='object'"):
        values.create_from({1, 2})
    files = nr.Artifact("only_files", kind="file")
    with pytest.raises(KindError, match=r"only_files is declared kind='file'.*not a file"):
        files.create_from(tmp_path)
    dirs = nr.Artifact("only_dirs", kind="directory")
    with pytest.raises(KindError, match="needs a path, got DataFrame"):
        dirs.create_from(pd.DataFrame({"a": [1]}))
    with pytest.raises(KindError, match="unknown kind 'blob'"):
        nr.Artifact("x", kind="blob")
    assert catalog_rows("SELECT count(*) FROM versions") == [(1,)]
    assert [p for p in blob_files(home) if p.name != v.content_hash] == []


def test_kind_pinned_later_conflicting_with_the_recorded_kind_is_refused(home: Path) -> None:
    nr.Artifact("pinned", kind="value").create_from(1)
    with pytest.raises(DeclarationMismatch, match=r"kind='value'.*kind='object'"):
        nr.Artifact("pinned", kind="object").create_from(2)


def test_a_path_that_does_not_exist_is_refused(home: Path, tmp_path: Path) -> None:
    with pytest.raises(KindError, match="does not exist"):
        nr.Artifact("ghost").create_from(tmp_path / "missing.txt")


# -- dedup -----------------------------------------------------------------------


def test_identical_content_is_stored_once(home: Path, tmp_path: Path) -> None:
    df = pd.DataFrame({"a": range(1000)})
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.bin").write_bytes(b"x" * 10_000)
    (tmp_path / "d" / "y.bin").write_bytes(b"x" * 10_000)  # same bytes as x.bin
    big_value = ["v"] * 30_000  # > 64 KiB of JSON

    versions = []
    for prefix in ("dedup_a", "dedup_b"):
        table = nr.Artifact(f"{prefix}_table")
        versions += [table.create_from(df), table.create_from(df.copy()),
                     nr.Artifact(f"{prefix}_dir").create_from(tmp_path / "d"),
                     nr.Artifact(f"{prefix}_file").create_from(tmp_path / "d" / "x.bin"),
                     nr.Artifact(f"{prefix}_value").create_from(big_value),
                     nr.Artifact(f"{prefix}_object").create_from(Point(1, 1))]
    assert [v.version for v in versions] == [1, 2, 1, 1, 1, 1] * 2
    # table, directory manifest, the file bytes (x = y = the file), the value, the pickle
    assert len(blob_files(home)) == 5
    assert len({v.content_hash for v in versions}) == 5
    assert not list((home / "store" / "tmp").glob("*"))  # no staging leftovers


# -- integrity -------------------------------------------------------------------


def test_corrupted_table_blob_raises_integrity_error_naming_version_and_blob(home: Path) -> None:
    v = nr.Artifact("t").create_from(pa.table({"a": list(range(10_000))}))
    corrupt(blob_of(home, v.content_hash))
    with pytest.raises(IntegrityError) as err:
        nr.load("t@1")
    assert "t@1" in str(err.value) and v.content_hash in str(err.value)


def test_corrupted_blob_of_every_kind_is_refused(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "inner.txt").write_text("inner content " * 100)
    (tmp_path / "f.txt").write_text("file content " * 100)
    made = {
        "file": nr.Artifact("k_file").create_from(tmp_path / "f.txt"),
        "directory": nr.Artifact("k_directory").create_from(src),
        "value": nr.Artifact("k_value").create_from(list(range(20_000))),
        "object": nr.Artifact("k_object").create_from(Point(5, 6)),
        "table": nr.Artifact("k_table").create_from(pd.DataFrame({"x": range(100)})),
    }
    assert made["value"].inline_value is None
    for v in made.values():
        corrupt(blob_of(home, v.content_hash))
    for kind, v in made.items():
        with pytest.raises(IntegrityError, match=f"{v.content_hash} of {v.ref}"):
            v.load()
        with pytest.raises(IntegrityError):
            v.download(tmp_path / f"dl_{kind}")
        assert not (tmp_path / f"dl_{kind}").exists()
    # nothing half-materialized is left in the cache for the next load to trust
    assert not [p for p in (home / "cache").rglob("*") if p.is_file()]


def test_corrupted_file_inside_a_directory_names_the_file(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "d"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "bad.bin").write_bytes(b"good bytes " * 50)
    (src / "ok.txt").write_text("fine")
    v = nr.Artifact("dir_rot").create_from(src)
    from nbripple.store import hash_bytes

    inner = hash_bytes(b"good bytes " * 50)
    corrupt(blob_of(home, inner))
    with pytest.raises(IntegrityError, match=rf"{inner} of dir_rot@1:sub/bad\.bin"):
        v.load()


def test_tampered_inline_value_in_the_catalog_is_refused(home: Path) -> None:
    nr.Artifact("inline").create_from({"threshold": 0.5})
    with raw_duckdb(home) as con:
        con.execute("UPDATE versions SET inline_value = '{\"threshold\": 0.9}' "
                    "WHERE artifact = 'inline'")
    with pytest.raises(IntegrityError, match="inline value of inline@1"):
        nr.load("inline@1")


# -- versions, partitions, queries --------------------------------------------


def test_versions_are_numbered_per_artifact_in_commit_order(home: Path) -> None:
    a, b = nr.Artifact("alpha"), nr.Artifact("beta")
    refs = [a.create_from(1).ref, b.create_from(1).ref, a.create_from(2).ref,
            a.create_from(3).ref, b.create_from(2).ref]
    assert refs == ["alpha@1", "beta@1", "alpha@2", "alpha@3", "beta@2"]
    assert [v.version for v in a.versions()] == [3, 2, 1]
    assert nr.load("alpha") == 3 and nr.load("nbripple://beta") == 2
    events = catalog_rows("SELECT artifact, version FROM events ORDER BY seq")
    assert events == [("alpha", 1), ("beta", 1), ("alpha", 2), ("alpha", 3), ("beta", 2)]


def test_partition_values_are_strings_and_datetimes_iso_dates(home: Path) -> None:
    art = nr.Artifact("daily", partition_keys=["day", "n", "flag"])
    v = art.create_from("x", day=datetime(2024, 5, 17, 13, 45), n=3, flag=True)
    assert v.partitions == {"day": "2024-05-17", "n": "3", "flag": "True"}
    w = art.create_from("y", day=date(2024, 5, 18), n="3", flag="True")
    assert w.partitions["day"] == "2024-05-18"
    assert art.query(n=3, flag=True).get().ref == "daily@2"
    assert nr.query("daily", day=datetime(2024, 5, 17, 23, 59)).get().ref == "daily@1"


def test_subset_query_matches_newest_and_strict_requires_equality(home: Path) -> None:
    art = nr.Artifact("blessed_model", partition_keys=["blessed", "team"])
    art.create_from("m1", blessed="false", team="a")
    art.create_from("m2", blessed="true", team="a")
    art.create_from("m3", blessed="false", team="b")
    art.create_from("m4", blessed="true", team="b")

    assert art.query(blessed="true").get().ref == "blessed_model@4"
    assert nr.get("nbripple://blessed_model?blessed=true&team=a").ref == "blessed_model@2"
    assert nr.get("nbripple://blessed_model").ref == "blessed_model@4"
    assert nr.load(art.query()) == "m4"
    assert art.load(team="a") == "m2"
    assert art.query(blessed="true", team="a", strict=True).get().ref == "blessed_model@2"
    with pytest.raises(VersionNotFound, match="exactly"):
        nr.get(art.query(blessed="true", strict=True))
    assert nr.get("nbripple://blessed_model?blessed=true&team=b&strict=true").ref == \
        "blessed_model@4"
    assert nr.get("nbripple://blessed_model?team=a&strict=false").ref == "blessed_model@2"
    with pytest.raises(VersionNotFound, match="team=a exactly"):
        nr.get("nbripple://blessed_model?team=a&strict=true")


def test_query_uri_round_trips_through_parse(home: Path) -> None:
    art = nr.Artifact("q_uri", partition_keys=["region"], time_partitioned=True)
    v = art.create_from(1, region="eu west & co", time_partition=datetime(2024, 2, 3, 4, 5))
    q = art.query(region="eu west & co", time_partition=datetime(2024, 2, 3, 9, 0))
    assert "region=eu%20west%20%26%20co" in q.uri
    assert nr.get(q.uri).ref == v.ref == nr.get(q).ref


def test_no_match_error_lists_existing_values(home: Path) -> None:
    art = nr.Artifact("blessed", partition_keys=["blessed", "team"])
    art.create_from(1, blessed="false", team="a")
    art.create_from(2, blessed="maybe", team="b")
    with pytest.raises(VersionNotFound) as err:
        nr.get(art.query(blessed="true"))
    message = str(err.value)
    assert "blessed=true" in message and "blessed: false, maybe" in message
    assert "team" not in message.split("existing values")[1]


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [
        ("minute", datetime(2024, 5, 17, 13, 45, tzinfo=UTC)),
        ("hour", datetime(2024, 5, 17, 13, 0, tzinfo=UTC)),
        ("day", datetime(2024, 5, 17, tzinfo=UTC)),
        ("month", datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_time_partition_is_truncated_to_granularity_and_queryable(
    home: Path, granularity: str, expected: datetime
) -> None:
    art = nr.Artifact(f"ts_{granularity}", time_partitioned=True, time_granularity=granularity)
    v = art.create_from("a", time_partition=datetime(2024, 5, 17, 13, 45, 31, 999))
    assert v.time_partition == expected
    other = art.create_from("b", time_partition=datetime(2023, 1, 1))
    assert art.query(time_partition=datetime(2024, 5, 17, 13, 45, 59)).get().ref == v.ref
    assert art.query(time_partition=expected).load() == "a"
    assert nr.query(art.name, time_partition="2023-01-01").get().ref == other.ref
    with pytest.raises(VersionNotFound, match="time_partition=2022"):
        art.query(time_partition=datetime(2022, 1, 1)).get()


def test_time_partition_accepts_dates_strings_and_aware_datetimes(home: Path) -> None:
    art = nr.Artifact("tp_forms", time_partitioned=True, time_granularity="hour")
    plus_two = timezone(timedelta(hours=2))
    assert art.create_from(1, time_partition=date(2024, 3, 1)).time_partition == \
        datetime(2024, 3, 1, tzinfo=UTC)
    assert art.create_from(2, time_partition="2024-03-01T10:30").time_partition == \
        datetime(2024, 3, 1, 10, tzinfo=UTC)
    aware = art.create_from(3, time_partition=datetime(2024, 3, 1, 1, 30, tzinfo=plus_two))
    assert aware.time_partition == datetime(2024, 2, 29, 23, tzinfo=UTC)
    now = art.create_from(4)
    assert now.time_partition is not None
    assert datetime.now(UTC) - now.time_partition < timedelta(hours=1, minutes=1)


def test_card_is_stored_with_the_version(home: Path) -> None:
    v = nr.Artifact("carded").create_from(1, nr.ModelCard("# Model\nAccuracy 0.9"))
    assert (v.card, v.card_type) == ("# Model\nAccuracy 0.9", "model")
    assert nr.get("carded@1").card == "# Model\nAccuracy 0.9"
    w = nr.Artifact("carded").create_from(2, "plain *markdown*")
    assert (w.card_type, w.card) == ("card", "plain *markdown*")
