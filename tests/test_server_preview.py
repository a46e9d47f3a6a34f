"""``GET versions/{name}/{n}/preview`` on a real `nbripple serve`: a table's schema and
first rows as JSON a browser reads as meant, a directory's file list, a value's short
repr, no preview for a pickle, and one-line errors for a missing or corrupt blob.

The home is made before the server starts (the server then holds the catalog file);
the blobs broken for the error tests are broken on disk, as an accident would.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.service import preview
from nbripple.store import Store
from serving import Server, start_server

BIG_ROWS = 1_200_000  # random doubles: ~10 MB of Parquet, over preview.VERIFY_UP_TO


def scores_frame() -> pd.DataFrame:
    """1,000 rows of every awkward kind of cell."""
    n = 1000
    return pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "score": [math.nan if i % 7 == 0 else i / 4 for i in range(n)],
        "day": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 365) for i in range(n)],
        "at": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        "note": ["x" * 500 if i == 1 else f"<b>row {i}</b>" for i in range(n)],
        "blob": [bytes([i % 256]) * 20 for i in range(n)],
        "huge": [2**60 + i for i in range(n)],
    })


def make_home(root: Path) -> Path:
    home = nr.init_home(root / "home")
    ws = nr.use(home)
    nr.Artifact("scores").create_from(scores_frame())
    rng = np.random.default_rng(7)
    nr.Artifact("big").create_from(pa.table({"x": rng.random(BIG_ROWS),
                                             "y": np.arange(BIG_ROWS)}))
    nr.Artifact("wide").create_from(pa.table({f"c{i:03d}": [i] for i in range(80)}))
    tree = root / "tree"
    for i in range(30):
        (tree / f"part{i // 10}").mkdir(parents=True, exist_ok=True)
        (tree / f"part{i // 10}" / f"file{i:02d}.csv").write_text("a,b\n" * (i + 1))
    (tree / "README").write_text("thirty files\n")
    os.symlink("README", tree / "LATEST")
    nr.Artifact("tree").create_from(tree)
    (root / "notes.txt").write_text("some notes\n")
    nr.Artifact("notes").create_from(root / "notes.txt")
    nr.Artifact("settings").create_from({"alpha": 0.5, "layers": list(range(40)),
                                         "name": "y" * 1000})
    nr.Artifact("model", kind="object").create_from({1, 2, 3})
    gone = nr.Artifact("gone").create_from(pa.table({"a": [1, 2]}))
    corrupt = nr.Artifact("corrupt").create_from(pa.table({"a": [1, 2, 3]}))
    gone_tree = nr.Artifact("gone_tree").create_from(tree / "part0")
    for version in (gone, gone_tree):
        os.unlink(ws.store.blob_path(version.content_hash))
    path = Path(ws.store.blob_path(corrupt.content_hash))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    EmbeddedCatalog.close_all()
    return home


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    served = start_server(make_home(tmp_path_factory.mktemp("preview")), "--no-watch")
    try:
        yield served
    finally:
        assert served.stop() == 0


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as made:
        yield made


def get(client: httpx.Client, path: str, status: int = 200, **params: Any) -> Any:
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    # strict JSON: a NaN or Infinity in the body would fail here (as in a browser)
    return json.loads(answer.text, parse_constant=lambda c: pytest.fail(f"{c} in {path}"))


# -- tables ------------------------------------------------------------------------
def test_a_table_shows_its_schema_and_first_rows_as_plain_json(client: httpx.Client) -> None:
    found = get(client, "versions/scores/1/preview", rows=8)
    assert (found["ref"], found["kind"], found["preview"]) == ("scores@1", "table", "table")
    assert found["verified"] is True
    assert [c["name"] for c in found["columns"]] == ["id", "score", "day", "at", "note",
                                                      "blob", "huge"]
    types = {c["name"]: c["type"] for c in found["columns"]}
    assert types["id"] == "int64" and types["day"] == "date32[day]"
    assert types["at"].startswith("timestamp[") and "UTC" in types["at"]
    assert (found["num_rows"], found["more"], found["columns_total"]) == (1000, 992, 7)
    rows = found["rows"]
    assert len(rows) == 8 and [r[0] for r in rows] == list(range(8))
    assert rows[0][1] is None and rows[1][1] == 0.25  # pandas' NaN: a missing value
    assert rows[0][2] == "2024-01-01" and rows[3][3] == "2024-01-01T03:00:00+00:00"
    assert rows[2][4] == "<b>row 2</b>"  # text as given: the page sets it as text
    assert len(rows[1][4]) == preview.MAX_TEXT and rows[1][4].endswith("…")
    assert rows[1][5] == "<20 bytes: 0101010101010101…>"
    assert rows[0][6] == str(2**60)  # beyond 2**53: text, or JavaScript rounds it


def test_rows_defaults_to_twenty_and_zero_gives_the_schema_alone(client: httpx.Client) -> None:
    assert len(get(client, "versions/scores/1/preview")["rows"]) == preview.DEFAULT_ROWS
    empty = get(client, "versions/scores/1/preview", rows=0)
    assert empty["rows"] == [] and len(empty["columns"]) == 7 and empty["num_rows"] == 1000
    assert len(get(client, "versions/scores/1/preview", rows=200)["rows"]) == 200


def test_a_large_table_shows_its_first_rows_unverified(client: httpx.Client,
                                                      server: Server) -> None:
    found = get(client, "versions/big/1/preview", rows=5)
    assert found["size"] > preview.VERIFY_UP_TO and found["verified"] is False
    assert found["num_rows"] == BIG_ROWS and found["more"] == BIG_ROWS - 5
    rng = np.random.default_rng(7)
    assert found["rows"] == [[x, i] for i, x in enumerate(rng.random(5).tolist())]


def test_a_wide_table_shows_its_first_columns(client: httpx.Client) -> None:
    found = get(client, "versions/wide/1/preview")
    assert len(found["columns"]) == preview.MAX_COLUMNS and found["columns_total"] == 80
    assert found["rows"] == [list(range(preview.MAX_COLUMNS))]


# -- files, directories, values, objects --------------------------------------------
def test_a_directory_lists_its_files_with_sizes_and_how_many_more(client: httpx.Client
                                                                   ) -> None:
    found = get(client, "versions/tree/1/preview", rows=4)
    assert (found["preview"], found["total"], found["more"]) == ("files", 32, 28)
    assert found["files"] == [
        {"path": "README", "size": 13},
        {"path": "part0/file00.csv", "size": 4},
        {"path": "part0/file01.csv", "size": 8},
        {"path": "part0/file02.csv", "size": 12},
    ]
    every = get(client, "versions/tree/1/preview", rows=200)
    assert every["more"] == 0 and every["files"][-1] == {"path": "LATEST", "target": "README"}


def test_a_file_shows_its_name_and_size(client: httpx.Client) -> None:
    found = get(client, "versions/notes/1/preview")
    assert found["preview"] == "files"
    assert found["files"] == [{"path": "notes.txt", "size": 11}] and found["more"] == 0


def test_a_value_shows_a_short_repr(client: httpx.Client) -> None:
    found = get(client, "versions/settings/1/preview")
    assert found["preview"] == "value" and found["python_type"] == "dict"
    text = found["repr"]
    assert text.startswith("{'alpha': 0.5, 'layers': [0, 1, 2,") and "..." in text
    assert len(text) < 600


def test_an_object_has_no_preview_and_is_never_unpickled(client: httpx.Client) -> None:
    found = get(client, "versions/model/1/preview")
    assert found["preview"] == "none"
    assert found["message"].startswith("no preview for kind object")


# -- errors ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gone", "gone_tree"])
def test_a_missing_blob_is_a_one_line_404(client: httpx.Client, name: str) -> None:
    found = get(client, f"versions/{name}/1/preview", status=404)
    assert found["error"] == "NotFound"
    assert "is missing from the store" in found["message"] and f"{name}@1" in found["message"]
    assert "\n" not in found["message"]


def test_a_corrupt_blob_is_refused_not_shown(client: httpx.Client) -> None:
    found = get(client, "versions/corrupt/1/preview", status=500)
    assert found["error"] == "IntegrityError" and "is corrupt" in found["message"]


@pytest.mark.parametrize(("path", "params", "status", "error"), [
    ("versions/scores/1/preview", {"rows": "201"}, 400, "InvalidReference"),
    ("versions/scores/1/preview", {"rows": "-1"}, 400, "InvalidReference"),
    ("versions/scores/1/preview", {"rows": "many"}, 400, "BadRequest"),
    ("versions/scores/1/preview", {"limit": "3"}, 400, "BadRequest"),
    ("versions/scores/9/preview", {}, 404, "VersionNotFound"),
    ("versions/nothing/1/preview", {}, 404, "ArtifactNotFound"),
    ("versions/scores/one/preview", {}, 400, "BadRequest"),
    ("versions/..%2F..%2Fetc/1/preview", {}, 400, "InvalidNameError"),
])
def test_bad_requests_get_one_line_errors(client: httpx.Client, path: str,
                                          params: dict[str, str], status: int,
                                          error: str) -> None:
    found = get(client, path, status=status, **params)
    assert found["error"] == error, found
    assert "\n" not in found["message"]


def test_cells_are_json_a_browser_reads_as_meant() -> None:
    assert [preview.cell(v) for v in (math.nan, math.inf, -math.inf, 1.5, True, None)] == \
        ["NaN", "inf", "-inf", 1.5, True, None]
    assert preview.cell(2**53 - 1) == 2**53 - 1 and preview.cell(-(2**53)) == str(-(2**53))
    assert preview.cell(dt.time(12, 30)) == "12:30:00"
    assert preview.cell(dt.timedelta(seconds=90)) == "0:01:30"
    assert preview.cell({"a": [math.nan, b"\x00"]}) == '{"a": ["NaN", "<1 bytes: 00>"]}'
    assert preview.cell(b"") == "<0 bytes>"


# -- in process: how much of a large blob is read -------------------------------------
def test_a_large_table_preview_reads_a_small_part_of_its_blob(
        ws: nr.Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 2_000_000
    table = pa.table({"x": np.random.default_rng(1).random(n), "s": [f"s{i % 999}"
                                                                     for i in range(n)]})
    version = nr.Artifact("large").create_from(table)
    assert version.size > preview.VERIFY_UP_TO
    read: list[int] = []
    opened = Store.open_blob

    class Counting:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

        def read(self, size: int = -1) -> bytes:
            data: bytes = self.handle.read(size)
            read.append(len(data))
            return data

    @contextmanager
    def counting(store: Store, digest: str, *, label: str = "") -> Iterator[Any]:
        with opened(store, digest, label=label) as handle:
            yield Counting(handle)

    monkeypatch.setattr(Store, "open_blob", counting)
    found = preview.version_preview(ws, version, 10)
    assert found["rows"] == [[x, s] for x, s in zip(table["x"][:10].to_pylist(),
                                                     table["s"][:10].to_pylist(),
                                                     strict=True)]
    assert found["num_rows"] == n
    assert 0 < sum(read) < version.size / 4, (sum(read), version.size)
    assert pq.ParquetFile(ws.store.blob_path(version.content_hash)).metadata.num_rows == n
