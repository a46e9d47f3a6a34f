"""The content-addressed store on its own: addressing, dedup, verification, and the
path checks that keep every write inside the store (or cache) root."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import blake3
import pytest

from nbripple.errors import IntegrityError, NotFound, StorePathError
from nbripple.store import Store, check_digest, hash_bytes, hash_file, safe_join


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "store"))


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_blob_lives_at_its_blake3_hash_under_a_two_character_fan_out(
    store: Store, tmp_path: Path
) -> None:
    blob = store.put_bytes(b"hello")
    digest = blake3.blake3(b"hello").hexdigest()
    assert (blob.digest, blob.size) == (digest, 5)
    path = tmp_path / "store" / "blobs" / digest[:2] / digest
    assert store.blob_path(digest) == str(path)
    assert path.read_bytes() == b"hello"
    assert store.read(digest) == b"hello"
    assert files_under(tmp_path / "store") == [path]  # no temporary files left


def test_identical_bytes_are_stored_once(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "same.bin"
    src.write_bytes(b"payload" * 1000)
    blobs = {store.put_bytes(b"payload" * 1000), store.put_file(src),
             Store(store.url).put_bytes(b"payload" * 1000)}  # a fresh instance, no memo
    assert len(blobs) == 1
    assert len(files_under(tmp_path / "store")) == 1
    assert src.exists()


def test_put_file_with_move_consumes_the_source(store: Store, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"moved")
    second.write_bytes(b"moved")
    digest = store.put_file(first, move=True).digest
    assert not first.exists()
    assert store.put_file(second, move=True).digest == digest  # already stored
    assert not second.exists()
    assert store.read(digest) == b"moved"


def test_staging_file_is_removed_even_if_unused(store: Store) -> None:
    with store.staging_file(".parquet") as tmp:
        tmp.write_bytes(b"scratch")
        staged = tmp
    assert not staged.exists()


def test_read_verifies_the_hash_and_names_the_blob_and_label(store: Store) -> None:
    digest = store.put_bytes(b"original content").digest
    Path(store.blob_path(digest)).write_bytes(b"tampered content")
    for read in (store.read, store.read_buffer):
        with pytest.raises(IntegrityError, match=rf"blob {digest} of thing@7 is corrupt"):
            read(digest, label="thing@7")


def test_fetch_to_verifies_and_leaves_nothing_on_mismatch(store: Store, tmp_path: Path) -> None:
    digest = store.put_bytes(b"x" * 100).digest
    good = store.fetch_to(digest, tmp_path / "out" / "good.bin")
    assert good.read_bytes() == b"x" * 100
    Path(store.blob_path(digest)).write_bytes(b"y" * 100)
    with pytest.raises(IntegrityError):
        store.fetch_to(digest, tmp_path / "out" / "bad.bin")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.bin"]


def test_missing_blob_is_not_found(store: Store, tmp_path: Path) -> None:
    digest = blake3.blake3(b"never stored").hexdigest()
    assert not store.exists(digest)
    with pytest.raises(NotFound, match=f"{digest} of a@1 is missing"):
        store.read(digest, label="a@1")
    with pytest.raises(NotFound):
        store.read_buffer(digest)
    with pytest.raises(NotFound):
        store.fetch_to(digest, tmp_path / "x")


def test_iter_digests_and_delete(store: Store) -> None:
    digests = {store.put_bytes(str(i).encode()).digest for i in range(5)}
    assert set(store.iter_digests()) == digests
    victim = next(iter(digests))
    store.delete(victim)
    assert not store.exists(victim)
    assert set(store.iter_digests()) == digests - {victim}


def test_hash_file_and_hash_bytes_agree_with_blake3_for_small_large_and_empty(
    tmp_path: Path,
) -> None:
    for size in (0, 17, 9 * 1024 * 1024 + 17):  # the large one is hashed on every core
        data = os.urandom(size)
        path = tmp_path / f"data{size}"
        path.write_bytes(data)
        expected = blake3.blake3(data).hexdigest()
        assert hash_file(path) == (expected, size)
        assert hash_bytes(data) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "../" + "a" * 61, "A" * 64, "g" * 64, "a" * 63, "a" * 65, "a" * 63 + "/",
     "../../etc/passwd", "0" * 62 + "..", "aa/" + "a" * 61, "a" * 64 + "\n"],
)
def test_blob_path_refuses_anything_but_a_hex_digest(store: Store, bad: str) -> None:
    with pytest.raises(StorePathError, match="is not a blob digest"):
        store.blob_path(bad)
    with pytest.raises(StorePathError):
        check_digest(bad)
    with pytest.raises(StorePathError):
        store.read(bad)


def test_blob_path_refuses_non_strings(store: Store) -> None:
    with pytest.raises(StorePathError):
        store.blob_path(b"a" * 64)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "relative",
    ["../escape", "a/../../escape", "/etc/passwd", "", "a/\x00b", "..", "a/b/../../..",
     "\\server\\share"],
)
def test_safe_join_refuses_traversal(tmp_path: Path, relative: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(StorePathError, match="refusing path"):
        safe_join(root, relative)


def test_safe_join_refuses_a_symlink_that_leads_outside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(StorePathError, match="would escape"):
        safe_join(root, "link/outside.txt")


def test_safe_join_accepts_nested_relative_paths(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert safe_join(root, "a/b/c.txt") == (root / "a" / "b" / "c.txt").resolve()
    assert safe_join(root, "a/./b") == (root / "a" / "b").resolve()
    assert safe_join(root, "..hidden") == (root / "..hidden").resolve()


def test_memory_store_uses_the_same_layout_and_checks() -> None:
    store = Store(f"memory://nbripple-{uuid.uuid4().hex}")
    blob = store.put_bytes(b"in memory")
    assert not store.is_local
    assert store.blob_uri(blob.digest).startswith("memory://nbripple-")
    assert store.blob_uri(blob.digest).endswith(f"/blobs/{blob.digest[:2]}/{blob.digest}")
    assert store.read(blob.digest) == b"in memory"
    assert store.read_buffer(blob.digest) == b"in memory"
    store.fs.pipe_file(store.blob_path(blob.digest), b"changed!!")
    with pytest.raises(IntegrityError):
        store.read(blob.digest)


def test_a_blob_removed_behind_the_stores_back_is_written_again(store: Store) -> None:
    digest = store.put_bytes(b"content").digest
    os.remove(store.blob_path(digest))  # e.g. `nbripple gc` in another process
    assert store.put_bytes(b"content").digest == digest
    assert store.read(digest) == b"content"
