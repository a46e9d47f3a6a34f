"""The same round trips on object stores: fsspec's ``memory://`` and S3, served by a
real moto server on loopback and reached through s3fs, configured in config.toml."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from moto.server import ThreadedMotoServer
from polars.testing import assert_frame_equal as assert_polars_equal

import nbripple as nr
from nbripple.errors import IntegrityError, UnpicklingWarning

BUCKET = "nbripple-test"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    fs = fsspec.filesystem("s3", key="testing", secret="testing", endpoint_url=endpoint,
                           skip_instance_cache=True)
    fs.mkdir(BUCKET)
    yield endpoint
    server.stop()


@dataclass
class Backend:
    """A home whose store is on an object store, plus direct access to that store."""

    home: Path
    url: str
    fs: Any
    root: str

    def blob_keys(self) -> list[str]:
        base = f"{self.root}/blobs"
        return sorted(self.fs.find(base)) if self.fs.exists(base) else []

    def overwrite(self, digest: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.root}/blobs/{digest[:2]}/{digest}", data)
        self.fs.invalidate_cache()


def configure(home: Path, store_toml: str) -> None:
    (home / "config.toml").write_text(store_toml, encoding="utf-8")
    nr.use(home)


@pytest.fixture(params=["memory", "s3"])
def backend(request: pytest.FixtureRequest, home: Path) -> Backend:
    prefix = f"run-{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        url = f"memory://nbripple-{prefix}"
        configure(home, f'[store]\nurl = "{url}"\n')
        fs = fsspec.filesystem("memory")
        root = f"/nbripple-{prefix}"
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        url = f"s3://{BUCKET}/{prefix}"
        configure(home, f"""
[store]
url = "{url}"

[store.options]
key = "testing"
secret = "testing"
endpoint_url = "{endpoint}"
""")
        fs = fsspec.filesystem("s3", key="testing", secret="testing", endpoint_url=endpoint)
        root = f"{BUCKET}/{prefix}"
    store = nr.current().store
    assert not store.is_local and store.url == url
    return Backend(home, url, fs, root)


def test_every_kind_round_trips_on_the_object_store(backend: Backend, tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]},
                      index=pd.Index([10, 20, 30], name="id"))
    table = pa.table({"n": [1, 2], "s": ["p", "q"]})
    batch = pa.record_batch({"k": [True, False]})
    polars_df = pl.DataFrame({"u": [1.5, 2.5]})
    src = tmp_path / "tree"
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "top.txt").write_text("top")
    (src / "nested" / "deeper" / "leaf.bin").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "single.csv").write_text("a,b\n1,2\n")
    small, large = {"lr": 0.01}, list(range(40_000))

    tables = nr.Artifact("every_table")  # one artifact per kind: the first version fixes it
    made = {
        "pandas": tables.create_from(df),
        "arrow": tables.create_from(table),
        "batch": tables.create_from(batch),
        "polars": tables.create_from(polars_df),
        "file": nr.Artifact("every_file").create_from(tmp_path / "single.csv"),
        "directory": nr.Artifact("every_directory").create_from(src),
        "small": nr.Artifact("every_value").create_from(small),
        "large": nr.Artifact("every_value").create_from(large),
        "object": nr.Artifact("every_object").create_from({1, 2, 3}),
    }
    for v in made.values():
        if v.uri is not None:
            scheme = backend.url.split("://")[0]
            assert v.uri.startswith(f"{scheme}://")
            assert v.uri.endswith(f"/blobs/{v.content_hash[:2]}/{v.content_hash}")
    assert made["small"].uri is None and made["large"].uri is not None
    assert made["pandas"].num_rows == 3

    pd.testing.assert_frame_equal(nr.load(made["pandas"].ref), df)
    assert nr.load(made["arrow"].ref).equals(table)
    assert nr.load(made["batch"].ref).equals(batch)
    assert_polars_equal(nr.load(made["polars"].ref), polars_df)
    assert isinstance(made["pandas"].load(as_="polars"), pl.DataFrame)
    assert made["file"].load().read_text() == "a,b\n1,2\n"
    tree = made["directory"].load()
    assert backend.home / "cache" in tree.parents
    assert (tree / "top.txt").read_text() == "top"
    assert (tree / "nested" / "deeper" / "leaf.bin").read_bytes() == bytes(range(256)) * 10
    assert (tree / "empty").is_dir() and not any((tree / "empty").iterdir())
    assert made["small"].load() == small
    assert made["large"].load() == large
    with pytest.warns(UnpicklingWarning, match="every_object@1 is an object"):
        assert made["object"].load() == {1, 2, 3}
    assert not (backend.home / "store").exists()  # nothing went to the local default


def test_identical_content_is_stored_once_on_the_object_store(
    backend: Backend, tmp_path: Path
) -> None:
    (tmp_path / "f.bin").write_bytes(b"z" * 100_000)
    arts = [nr.Artifact(f"once_{n}_{kind}") for n in "ab" for kind in ("file", "table")]
    for files, tables in (arts[:2], arts[2:]):
        files.create_from(tmp_path / "f.bin")
        tables.create_from(pa.table({"x": list(range(500))}))
    assert len(backend.blob_keys()) == 2
    assert len({v.content_hash for art in arts for v in art.versions()}) == 2


def test_corrupted_object_store_blob_is_refused(backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("true content")
    table_v = nr.Artifact("rot_table").create_from(pa.table({"x": [1, 2, 3]}))
    file_v = nr.Artifact("rot_file").create_from(tmp_path / "f.txt")
    object_v = nr.Artifact("rot_object").create_from(("tuple", "of", "things"))
    for v in (table_v, file_v, object_v):
        backend.overwrite(v.content_hash, b"wrong bytes")
        with pytest.raises(IntegrityError, match=f"{v.content_hash} of {v.ref}"):
            v.load()
    assert not [p for p in (backend.home / "cache").rglob("*") if p.is_file()]


def test_queries_and_search_work_the_same_with_an_object_store(backend: Backend) -> None:
    art = nr.Artifact("blessed_model", partition_keys=["blessed"], description="churn")
    for blessed in ("false", "true", "false"):
        art.create_from(pd.DataFrame({"blessed": [blessed]}), blessed=blessed)
    assert nr.get("nbripple://blessed_model?blessed=true").ref == "blessed_model@2"
    assert nr.load(art.query(blessed="true"))["blessed"].tolist() == ["true"]
    assert [v.ref for v in nr.search("CHURN")] == ["blessed_model@3"]


def test_s3_store_options_come_from_config_toml(home: Path, moto_endpoint: str) -> None:
    configure(home, f"""
[store]
url = "s3://{BUCKET}/from-config"

[store.options]
key = "testing"
secret = "testing"
endpoint_url = "{moto_endpoint}"
""")
    ws = nr.current()
    assert ws.settings.store_options == {"key": "testing", "secret": "testing",
                                         "endpoint_url": moto_endpoint}
    v = nr.Artifact("configured").create_from(list(range(20_000)))
    fs = fsspec.filesystem("s3", key="testing", secret="testing", endpoint_url=moto_endpoint)
    assert fs.cat_file(f"{BUCKET}/from-config/blobs/{v.content_hash[:2]}/{v.content_hash}")
