"""Bad input gives a clear error and writes nothing; hostile partition values are data.

Every error case checks the catalog and the store afterwards: no artifact, version
or event rows, no blobs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import nbripple as nr
from duckdb_raw import raw_duckdb
from nbripple import codecs
from nbripple.errors import (
    ArtifactNotFound,
    DeclarationMismatch,
    InvalidNameError,
    InvalidReference,
    MissingPartitionKey,
    NbrippleError,
    PartitionError,
    StorePathError,
    UnknownPartitionKey,
    UnpicklingWarning,
    VersionNotFound,
)
from nbripple.store import Store


def counts() -> dict[str, int]:
    with raw_duckdb(nr.current().home) as con:
        return {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("artifacts", "versions", "events", "cards")
        }


def blobs(home: Path) -> list[str]:
    root = home / "store" / "blobs"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


@contextmanager
def nothing_written(home: Path) -> Iterator[None]:
    """Assert that the block writes no catalog rows and no blobs."""
    before = (counts(), blobs(home))
    yield
    assert (counts(), blobs(home)) == before


BAD_NAMES = ["", "x" * 129, "1abc", "../x", "a;drop table", "a b", "a/b", "a..b", "trailing.",
             "-lead", ".hidden", "nbripple://x", "x@1", "名前", "a\nb", "a\x00b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_artifact_names_are_refused_everywhere(home: Path, name: str) -> None:
    with nothing_written(home):
        with pytest.raises(InvalidNameError, match="artifact name"):
            nr.Artifact(name)
        with pytest.raises(InvalidNameError):
            nr.query(name)
        if "@" not in name and "://" not in name:  # those two are reference syntax
            with pytest.raises(InvalidReference, match=r"malformed reference|empty reference"):
                nr.get(name)


def test_name_rules_accept_namespaces_and_the_maximum_length(home: Path) -> None:
    longest = "n" * 128
    for name in ("etl.daily_sales", "_private", "a-b.c_d9", longest):
        assert nr.Artifact(name).create_from(1).ref == f"{name}@1"
    with pytest.raises(InvalidNameError, match="129 characters long; the limit is 128"):
        nr.Artifact(longest + "n")
    with pytest.raises(InvalidNameError, match="must be a string"):
        nr.Artifact(42)  # type: ignore[arg-type]


def test_more_than_ten_partition_keys_is_refused(home: Path) -> None:
    keys = [f"k{i}" for i in range(11)]
    with nothing_written(home), pytest.raises(InvalidNameError,
                                              match="11 partition keys; the limit is 10"):
        nr.Artifact("wide", partition_keys=keys)
    assert nr.Artifact("ten", partition_keys=keys[:10]).create_from(
        1, **{k: "v" for k in keys[:10]}
    ).version == 1


@pytest.mark.parametrize("key", ["time_partition", "version", "name", "partitions"])
def test_reserved_partition_keys_are_refused(home: Path, key: str) -> None:
    with nothing_written(home), pytest.raises(InvalidNameError, match=rf"'{key}' is reserved"):
        nr.Artifact("r", partition_keys=[key])
    if key != "time_partition":  # in a URI, that one is the time filter itself
        with nothing_written(home), pytest.raises(InvalidReference, match="is reserved"):
            nr.get(f"nbripple://r?{key}=x")


@pytest.mark.parametrize("key", ["", "a-b", "1a", "a.b", "a b", "a'b", 'a"b', "$.x", "k" * 65])
def test_malformed_partition_keys_are_refused(home: Path, key: str) -> None:
    with nothing_written(home), pytest.raises(InvalidNameError, match="invalid partition key"):
        nr.Artifact("m", partition_keys=[key])


def test_partition_keys_given_as_a_string_or_twice_are_refused(home: Path) -> None:
    with nothing_written(home), pytest.raises(
        InvalidNameError, match=r"write partition_keys=\['blessed'\]"
    ):
        nr.Artifact("s", partition_keys="blessed")  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError, match="twice"):
        nr.Artifact("s", partition_keys=["a", "a"])
    with pytest.raises(InvalidNameError, match="unknown time_granularity 'week'"):
        nr.Artifact("s", time_partitioned=True, time_granularity="week")


def test_undeclared_partition_key_lists_the_declared_keys(home: Path) -> None:
    art = nr.Artifact("blessed_model", partition_keys=["blessed", "team"])
    with nothing_written(home):
        with pytest.raises(UnknownPartitionKey,
                           match=r"'blesed' is not a partition key of blessed_model "
                                 r"\(keys: blessed, team\)"):
            art.create_from({"m": 1}, blesed="true", team="a")
        with pytest.raises(UnknownPartitionKey, match=r"keys: blessed, team"):
            art.query(blesed="true")
        with pytest.raises(UnknownPartitionKey, match="keys: none declared"):
            nr.Artifact("plain").create_from(1, day="monday")


def test_missing_partition_key_is_named(home: Path) -> None:
    art = nr.Artifact("blessed_model", partition_keys=["blessed", "team"])
    with nothing_written(home), pytest.raises(
        MissingPartitionKey, match="needs a value for partition key team"
    ):
        art.create_from({"m": 1}, blessed="true")


def test_unknown_key_in_a_query_on_a_committed_artifact_lists_keys(home: Path) -> None:
    nr.Artifact("scores", partition_keys=["split"]).create_from(1, split="test")
    with nothing_written(home):
        with pytest.raises(UnknownPartitionKey, match=r"\(keys: split\)"):
            nr.get("nbripple://scores?fold=3")
        with pytest.raises(UnknownPartitionKey, match=r"\(keys: split\)"):
            nr.load(nr.query("scores", fold=3))


def test_redeclaration_with_different_keys_names_both_key_sets(home: Path) -> None:
    nr.Artifact("model", partition_keys=["blessed"]).create_from(1, blessed="true")
    with nothing_written(home):
        with pytest.raises(DeclarationMismatch,
                           match=r"first declared with partition keys \(blessed\) but is now "
                                 r"declared with \(blessed, team\)"):
            nr.Artifact("model", partition_keys=["blessed", "team"]).create_from(
                2, blessed="true", team="a"
            )
        with pytest.raises(DeclarationMismatch, match=r"\(blessed\).*\(none\)"):
            nr.Artifact("model").create_from(2)
        with pytest.raises(DeclarationMismatch, match=r"\(blessed\).*\(other\)"):
            nr.Artifact("model", partition_keys=["other"], kind="value").create_from(
                2, other="x"
            )
        with pytest.raises(DeclarationMismatch, match="time_partitioned=False, now with True"):
            nr.Artifact("model", partition_keys=["blessed"], time_partitioned=True).create_from(
                3, blessed="true"
            )
    # the same keys in another order are the same declaration
    assert nr.Artifact("model", partition_keys=["blessed"]).create_from(
        4, blessed="no"
    ).version == 2


def test_time_partition_misuse_is_refused(home: Path) -> None:
    with nothing_written(home):
        with pytest.raises(PartitionError, match="not time-partitioned"):
            nr.Artifact("flat").create_from(1, time_partition=datetime(2024, 1, 1))
        with pytest.raises(PartitionError, match="not an ISO date/time"):
            nr.Artifact("timed", time_partitioned=True).create_from(1, time_partition="soon")
        with pytest.raises(PartitionError, match="must be a datetime"):
            nr.Artifact("timed", time_partitioned=True).create_from(1, time_partition=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["line\nbreak", "nul\x00byte", "x" * 1025, "tab\there"])
def test_partition_values_with_control_characters_or_too_long_are_refused(
    home: Path, value: str
) -> None:
    art = nr.Artifact("p", partition_keys=["k"])
    with nothing_written(home), pytest.raises(PartitionError, match="at most 1024 characters"):
        art.create_from(1, k=value)


def test_unknown_references_say_what_exists(home: Path) -> None:
    nr.Artifact("blessed_model").create_from(1)
    nr.Artifact("blessed_model").create_from(2)
    with nothing_written(home):
        with pytest.raises(ArtifactNotFound, match="did you mean blessed_model"):
            nr.get("blessed_modle@1")
        with pytest.raises(ArtifactNotFound, match="no artifact named 'nothing_like_it'"):
            nr.load("nbripple://nothing_like_it")
        with pytest.raises(VersionNotFound, match=r"blessed_model@3 does not exist.*1\.\.2"):
            nr.get("blessed_model@3")
        with pytest.raises(ArtifactNotFound):
            nr.Artifact("never_made").versions()


def test_reference_to_an_empty_home_says_nothing_is_committed(home: Path) -> None:
    with nothing_written(home), pytest.raises(ArtifactNotFound,
                                              match="nothing has been committed"):
        nr.get("anything@1")
    assert nr.executions() == []  # a failed lookup records no consumer either


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "empty reference"),
        ("   ", "empty reference"),
        ("nbripple://", "malformed reference"),
        ("s3://bucket/model", "artifact URIs start with nbripple://"),
        ("file:///etc/passwd", "artifact URIs start with nbripple://"),
        ("model@0", "positive integer"),
        ("model@-1", "positive integer"),
        ("model@abc", "positive integer"),
        ("model@", "positive integer"),
        ("model@1@2", "positive integer"),
        ("model@1?blessed=true", "cannot have a query"),
        ("nbripple://model?blessed", "key=value pairs"),
        ("nbripple://model?=true", "malformed query"),
        ("nbripple://model?1bad=true", "invalid partition key"),
        ("nbripple://model?a=1&a=2", "given twice"),
        ("nbripple://model?time_partition=yesterday", "malformed time_partition"),
        ("nbripple://model?strict=maybe", "use strict=true or strict=false"),
        ("nbripple://../../etc/passwd", "malformed reference"),
        ("nbripple://model;DROP TABLE versions", "malformed reference"),
        ("nbripple:/model", "malformed reference"),
        ("nbripple://model#frag", "malformed reference"),
    ],
)
def test_malformed_references_are_clear_errors(home: Path, ref: str, message: str) -> None:
    nr.Artifact("model", partition_keys=["blessed"]).create_from(1, blessed="true")
    with nothing_written(home), pytest.raises(InvalidReference, match=message):
        nr.get(ref)


def test_non_string_references_are_refused(home: Path) -> None:
    with pytest.raises(InvalidReference, match="cannot resolve 3"):
        nr.get(3)  # type: ignore[arg-type]


HOSTILE_VALUES = [
    "'; DROP TABLE versions; --",
    "\" OR 1=1 --",
    "x') OR ('1'='1",
    "%",
    "_",
    "\\",
    "$.blessed",
    "../../../../etc/passwd",
    "/tmp/nbripple-evil",
    "..\\..\\windows",
    "{\"json\": true}",
    "ünïcode ✓",
]


def test_hostile_partition_values_are_stored_as_data(home: Path, tmp_path: Path) -> None:
    before_outside = _files_outside(tmp_path, home)
    art = nr.Artifact("hostile", partition_keys=["v"])
    bystander = nr.Artifact("bystander", partition_keys=["v"])
    bystander.create_from("keep me", v="%")
    for value in HOSTILE_VALUES:
        created = art.create_from({"value": value}, v=value)
        assert created.partitions == {"v": value}
    # each value matches exactly itself: no wildcard, no injection
    for index, value in enumerate(HOSTILE_VALUES, start=1):
        assert art.query(v=value).get().version == index
        assert art.query(v=value, strict=True).load() == {"value": value}
        assert nr.get(art.query(v=value).uri).version == index
        assert [r.ref for r in nr.search(partitions={"v": value}, latest_only=False)] == (
            [f"hostile@{index}", "bystander@1"] if value == "%" else [f"hostile@{index}"]
        )
    # the catalog is intact
    assert counts() == {"artifacts": 2, "versions": len(HOSTILE_VALUES) + 1,
                        "events": len(HOSTILE_VALUES) + 1, "cards": 0}
    assert bystander.load(v="%") == "keep me"
    with pytest.raises(VersionNotFound):
        art.query(v="' OR '1'='1").get()
    # no file appeared outside the home, nor outside the store and cache within it
    assert _files_outside(tmp_path, home) == before_outside
    assert not Path("/tmp/nbripple-evil").exists()
    for path in home.rglob("*"):
        assert path.relative_to(home).parts[0] in {
            "store", "cache", "catalog.duckdb", "catalog.duckdb.wal", "catalog.duckdb.lock",
            "config.toml"}


def test_hostile_values_in_text_search_are_literal(home: Path) -> None:
    nr.Artifact("report", description="100% done_ok").create_from(1)
    nr.Artifact("other", description="nothing").create_from(1)
    assert [v.name for v in nr.search("100%")] == ["report"]
    assert [v.name for v in nr.search("%")] == ["report"]
    assert [v.name for v in nr.search("e_o")] == ["report"]  # '_' is not a wildcard
    assert nr.search("'; DROP TABLE versions; --") == []
    assert counts()["versions"] == 2


def _files_outside(root: Path, home: Path) -> set[Path]:
    return {p for p in root.rglob("*") if home not in p.parents and p != home}


def test_a_tampered_file_name_in_the_catalog_cannot_escape_the_cache(
    home: Path, tmp_path: Path
) -> None:
    (tmp_path / "f.txt").write_text("data")
    nr.Artifact("f").create_from(tmp_path / "f.txt")
    with raw_duckdb(home) as con:
        con.execute("UPDATE versions SET meta = ? WHERE artifact = 'f'",
                    [json.dumps({"filename": "../../../escaped.txt"})])
    # a reader that did not write it (this process remembers the row it committed)
    nr.use(home)
    with pytest.raises(StorePathError, match="refusing path"):
        nr.load("f@1")
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_directory_manifest_with_traversal_is_refused(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    digest = store.put_bytes(b"payload").digest
    manifest = json.dumps({"files": [{"path": "../outside.txt", "hash": digest, "size": 7}],
                           "dirs": []}).encode()
    with pytest.raises(StorePathError):
        codecs.materialize_directory(manifest, store, tmp_path / "dest", "d@1")
    manifest = json.dumps({"files": [], "dirs": ["/abs"]}).encode()
    with pytest.raises(StorePathError):
        codecs.materialize_directory(manifest, store, tmp_path / "dest", "d@1")
    assert not (tmp_path / "outside.txt").exists()


def test_search_rejects_bad_arguments(home: Path) -> None:
    with pytest.raises(NbrippleError, match="unknown kind 'tabel'"):
        nr.search(kind="tabel")
    with pytest.raises(ValueError, match="limit must be at least 1"):
        nr.search(limit=0)
    with pytest.raises(InvalidNameError, match="invalid partition key"):
        nr.search(partitions={"a') OR 1=1 --": "x"})


def test_unpicklable_value_is_a_clear_error_and_writes_nothing(home: Path) -> None:
    with nothing_written(home), pytest.raises(NbrippleError, match="cannot pickle"):
        nr.Artifact("fn").create_from(lambda: 1)


def test_card_of_the_wrong_type_is_refused_before_writing(home: Path) -> None:
    frame: Any = pd.DataFrame({"a": [1]})
    with nothing_written(home), pytest.raises(TypeError, match="card must be"):
        nr.Artifact("c").create_from(frame, card=123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "Duplicate column names"),
        (pd.DataFrame({"mixed": [1, "x", 2.5]}), "Conversion failed for column mixed"),
    ],
    ids=["duplicate-columns", "mixed-object-column"],
)
def test_a_table_parquet_cannot_hold_is_a_clear_error_and_writes_nothing(
    home: Path, frame: pd.DataFrame, problem: str
) -> None:
    with nothing_written(home), pytest.raises(
        NbrippleError, match=rf"cannot store this pandas table as Parquet: .*{problem}.*"
                             r"kind='object'"
    ):
        nr.Artifact("unparquetable").create_from(frame)
    staging = home / "store" / "tmp"
    assert not staging.exists() or not list(staging.iterdir())
    # pinning kind='object' is the way out that the message names
    v = nr.Artifact("pickled_frame", kind="object").create_from(frame)
    with pytest.warns(UnpicklingWarning, match="pickled_frame@1 is an object"):
        pd.testing.assert_frame_equal(v.load(), frame)


@pytest.mark.parametrize("ref", ["cfg@²", "cfg@١", "nbripple://cfg@１", "cfg@٣"])
def test_version_numbers_with_non_ascii_digits_are_refused(home: Path, ref: str) -> None:
    nr.Artifact("cfg").create_from({"a": 1})
    with pytest.raises(InvalidReference, match="positive integer"):
        nr.current().resolve(ref)
