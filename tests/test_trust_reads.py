"""Reads are verified everywhere, and nothing leaks in or out of the store: cache hits
checked, symlinks never followed silently, the kind of an artifact fixed by its first
version, a warning before unpickling, clear errors for a full or read-only disk."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pyarrow as pa
import pytest

import nbripple as nr
from nbripple.errors import (
    KindError,
    PartitionError,
    StoreError,
    SymlinkError,
    TamperedCacheWarning,
    UnpicklingWarning,
)
from nbripple.service import values
from nbripple.service.writing import push

NBRIPPLE_SCRIPT = Path(sys.executable).parent / "nbripple"


def blobs(home: Path) -> list[Path]:
    return sorted(p for p in (home / "store" / "blobs").rglob("*") if p.is_file()) \
        if (home / "store" / "blobs").exists() else []


def tamper(path: Path, data: bytes) -> None:
    """Overwrite a cached file with same-sized bytes, then put its times back (so size
    and mtime alone would not tell)."""
    assert len(data) == path.stat().st_size
    before = path.stat()
    os.chmod(path, 0o644)
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


# -- cache hits are verified -----------------------------------------------------------


def test_an_edited_cached_file_never_reaches_load(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"trained weights")
    v = nr.Artifact("model").create_from(src)
    cached = v.load()
    assert cached.read_bytes() == b"trained weights"
    assert not cached.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    os.utime(cached, (1, 1))  # touched, not changed: verified again, kept, no warning
    inode = cached.stat().st_ino
    assert nr.load("model@1").stat().st_ino == inode

    tamper(cached, b"evil  weights!!")
    with pytest.warns(TamperedCacheWarning, match=r"model@1 .* changed outside nbripple"):
        again = nr.load("model@1")
    assert again.read_bytes() == b"trained weights"
    assert nr.load("model@1").read_bytes() == b"trained weights"  # repaired: no warning


def test_an_edited_cached_directory_is_replaced_with_verified_data(home: Path,
                                                                   tmp_path: Path) -> None:
    src = tmp_path / "dataset"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.txt").write_text("beta")
    v = nr.Artifact("dataset").create_from(src)
    for edit in (
        lambda tree: tamper(tree / "sub" / "b.txt", b"BETA"),
        lambda tree: (tree / "extra.txt").write_text("planted"),
        lambda tree: (tree / "a.txt").unlink(),
    ):
        tree = v.load()
        edit(tree)
        with pytest.warns(TamperedCacheWarning, match="dataset@1"):
            tree = v.load()
        assert sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*")) == \
            ["a.txt", "sub", "sub/b.txt"]
        assert (tree / "a.txt").read_text() == "alpha"
        assert (tree / "sub" / "b.txt").read_text() == "beta"


def test_downloads_copy_verified_data_even_from_a_tampered_cache(home: Path,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "report.csv").write_text("a,b\n1,2\n")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "x.txt").write_text("x content")
    f = nr.Artifact("report").create_from(tmp_path / "report.csv")
    d = nr.Artifact("tree").create_from(tmp_path / "tree")
    tamper(f.load(), b"a,b\n6,6\n")
    tamper(d.load() / "x.txt", b"X CONTENT")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.warns(TamperedCacheWarning):
        copy = f.download(out)
    with pytest.warns(TamperedCacheWarning):
        tree = d.download(out)
    assert copy.read_text() == "a,b\n1,2\n" and (tree / "x.txt").read_text() == "x content"
    copy.write_text("the user's own copy is writable")


def test_cli_load_output_never_hands_out_an_edited_cache(home: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("original")
    v = nr.Artifact("notes").create_from(tmp_path / "notes.txt")
    tamper(v.load(), b"modified")
    nr.current().catalog.close()
    env = {**os.environ, "NBRIPPLE_HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([str(NBRIPPLE_SCRIPT), "load", "notes@1", "-o",
                           str(tmp_path / "got.txt")], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "got.txt").read_text() == "original"
    assert "changed outside nbripple" in done.stderr


def test_a_cached_notebook_is_verified_like_a_file(ws: nr.Workspace) -> None:
    blob = ws.store.put_bytes(b'{"cells": []}')
    path = values.cached_notebook(ws, blob.digest, "run.ipynb")
    tamper(path, b'{"cells": 10}')
    with pytest.warns(TamperedCacheWarning, match="run.ipynb"):
        assert values.cached_notebook(ws, blob.digest, "run.ipynb").read_bytes() == \
            b'{"cells": []}'


# -- symlinks --------------------------------------------------------------------------


def test_links_out_of_a_directory_are_refused_naming_each(home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (tmp_path / "elsewhere").mkdir()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok.txt").write_text("fine")
    (tree / "passwd").symlink_to(secret)
    (tree / "outdir").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SymlinkError) as err:
        nr.Artifact("leaky").create_from(tree)
    message = str(err.value)
    assert "passwd ->" in message and "outdir ->" in message and "follow_symlinks=True" in message
    assert "\n" not in message
    assert blobs(home) == []  # nothing was stored

    v = nr.Artifact("leaky").create_from(tree, follow_symlinks=True)
    loaded = v.load()
    assert (loaded / "passwd").read_text() == "password" and not (loaded / "passwd").is_symlink()
    assert (loaded / "outdir").is_dir()


def test_links_inside_a_directory_are_stored_and_materialized_as_links(
        home: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "data").mkdir(parents=True)
    (tree / "data" / "v2.csv").write_text("a\n1\n")
    (tree / "latest.csv").symlink_to("data/v2.csv")
    (tree / "current").symlink_to(tree / "data")  # absolute, but inside the tree
    v = nr.Artifact("linked").create_from(tree)
    assert v.meta["links"] == 2
    loaded = v.load()
    assert os.readlink(loaded / "latest.csv") == "data/v2.csv"
    assert os.readlink(loaded / "current") == "data"
    assert (loaded / "current" / "v2.csv").read_text() == "a\n1\n"
    out = tmp_path / "out"
    out.mkdir()
    copy = v.download(out)
    assert os.readlink(copy / "latest.csv") == "data/v2.csv"
    assert v.download(out) == copy  # again, over the links it made
    assert (copy / "latest.csv").read_text() == "a\n1\n" and (copy / "data" / "v2.csv").is_file()

    plain = tmp_path / "plain"  # without links a tree keeps the hash it always had
    (plain / "sub" / "deep").mkdir(parents=True)
    (plain / "empty").mkdir()
    (plain / "top.txt").write_text("top")
    (plain / "sub" / "a.csv").write_text("a,b\n1,2\n")
    (plain / "sub" / "deep" / "z.bin").write_bytes(bytes(range(256)))
    (plain / "b.txt").write_text("b")
    assert nr.Artifact("plain").create_from(plain).content_hash == \
        "f63ee9341bab420f5dfdc690c66f8894852a7212caf1c55490d92a07649d6b8f"


def test_dangling_and_looping_links_are_reported_not_dropped(home: Path,
                                                             tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "real.txt").write_text("r")
    (tree / "gone").symlink_to("missing.txt")
    (tree / "ping").symlink_to("pong")
    (tree / "pong").symlink_to("ping")
    for follow in (False, True):
        with pytest.raises(SymlinkError) as err:
            nr.Artifact("broken").create_from(tree, follow_symlinks=follow)
        assert "gone -> missing.txt (a dangling" in str(err.value)
        assert "ping -> pong (a loop" in str(err.value) and "pong -> ping" in str(err.value)

    cyclic = tmp_path / "cyclic"
    (cyclic / "sub").mkdir(parents=True)
    (cyclic / "sub" / "up").symlink_to("..")
    assert nr.Artifact("cyclic").create_from(cyclic).meta["links"] == 1  # kept as a link
    with pytest.raises(SymlinkError, match=r"sub/up -> \.\. \(a loop"):
        nr.Artifact("cyclic").create_from(cyclic, follow_symlinks=True)


def test_a_file_artifact_that_is_a_link_is_refused_unless_dereferencing_is_asked(
        home: Path, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("private key")
    (tmp_path / "out.bin").symlink_to(tmp_path / "key")
    with pytest.raises(SymlinkError, match=r"out\.bin is a symbolic link .*follow_symlinks"):
        nr.Artifact("output").create_from(tmp_path / "out.bin")
    with pytest.raises(SymlinkError, match=r"out\.bin is a symbolic link"):
        nr.Artifact("pinned", kind="file").create_from(tmp_path / "out.bin")
    assert blobs(home) == []
    v = nr.Artifact("output").create_from(tmp_path / "out.bin", follow_symlinks=True)
    assert v.load().read_text() == "private key"
    (tmp_path / "nowhere").symlink_to(tmp_path / "no-such-file")
    with pytest.raises(SymlinkError, match="dangling"):
        nr.Artifact("output").create_from(tmp_path / "nowhere")


# -- kinds -----------------------------------------------------------------------------


def test_the_first_version_fixes_the_kind_of_an_undeclared_kind(home: Path) -> None:
    cfg = nr.Artifact("cfg")
    cfg.create_from({"lr": 0.1})
    with pytest.raises(KindError, match=r"cfg holds value versions.*kind='object'") as err:
        cfg.create_from({"lr": 0.1, "when": {1, 2}})
    assert "\n" not in str(err.value)
    assert [v.kind for v in cfg.versions()] == ["value"]
    pickled = nr.Artifact("cfg", kind="object").create_from({"s": {1, 2}})
    assert pickled.kind == "object"


def test_push_stores_the_kind_of_the_first_version(ws: nr.Workspace, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "notes.txt").write_text("n")
    assert push(ws, "raw", tmp_path / "notes.txt", partitions={}).version.kind == "file"
    assert push(ws, "raw", tmp_path / "a.csv", partitions={}).version.kind == "file"
    nr.Artifact("tables").create_from(pa.table({"x": [1]}))
    with pytest.raises(KindError, match="tables holds table versions"):
        nr.Artifact("tables").create_from(tmp_path / "notes.txt")
    nr.Artifact("scores").create_from([1, 2])
    with pytest.raises(KindError, match=r"scores holds value versions.*push stores tables"):
        push(ws, "scores", tmp_path / "a.csv", partitions={})


def test_loading_an_object_warns_once_per_producer_naming_it(home: Path) -> None:
    art = nr.Artifact("opaque")
    first = art.create_from({1, 2})
    second = art.create_from({3})
    assert first.execution_id is not None
    with pytest.warns(UnpicklingWarning) as caught:
        assert nr.load("opaque@1") == {1, 2}
    (warning,) = caught
    text = str(warning.message)
    assert "unpickles" in text and first.execution_id in text and "interactive" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert second.load() == {3}  # the same producer: said once


# -- small gaps ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\x7fb", "a\x85b", "a\x9b[2Jb", "a\u2028b", "a\u2029b",
                                 "a\u202eb"])
def test_partition_values_refuse_del_c1_controls_and_separators(home: Path, bad: str) -> None:
    art = nr.Artifact("parted", partition_keys=["region"])
    with pytest.raises(PartitionError, match=r"partition value for 'region'.*U\+") as err:
        art.create_from(1, region=bad)
    assert "\n" not in str(err.value) and "\u2028" not in str(err.value)
    assert nr.current().artifacts() == []  # nothing was recorded


def test_an_unknown_store_protocol_is_a_clear_error(home: Path) -> None:
    (home / "config.toml").write_text('[store]\nurl = "nosuch://bucket/x"\n', encoding="utf-8")
    nr.use(home)
    with pytest.raises(StoreError, match=r"'nosuch://bucket/x'.*known protocols: .*s3"):
        nr.Artifact("x").create_from(pa.table({"a": [1]}))


DISK_SCRIPT = """
import os, sys
from pathlib import Path
import pyarrow as pa
import nbripple as nr
from nbripple.errors import StoreWriteError

home = Path(sys.argv[1])
nr.use(nr.init_home(home.parent))
store = Path(nr.current().settings.resolved_store_url)
store.mkdir(parents=True, exist_ok=True)
os.system(f"mount -t tmpfs -o size=512k tmpfs {store}")
big = os.urandom(2 * 1024 * 1024)
(home.parent / "big.bin").write_bytes(big)

def leftovers():
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())

def attempt(label, value):
    try:
        nr.Artifact(label).create_from(value)
    except StoreWriteError as exc:
        print(label, "|", exc, "|", leftovers())
    else:
        print(label, "| stored")

attempt("file", home.parent / "big.bin")
attempt("table", pa.table({"b": [big]}))
attempt("blob", [big.hex()[:700_000]])
nr.Artifact("small").create_from(list(range(30_000)))  # fits: the disk still works
os.system(f"mount -o remount,ro {store}")
attempt("readonly", ["x" * 100_000])

cache = nr.current().settings.resolved_cache_dir
cache.mkdir(parents=True, exist_ok=True)
os.system(f"mount -t tmpfs -o size=512k tmpfs {cache}")
os.system(f"mount -o remount,rw {store}")
(home.parent / "a.txt").write_text("a")
(home.parent / "b.txt").write_text("b")
a = nr.Artifact("a").create_from(home.parent / "a.txt")
b = nr.Artifact("b").create_from(home.parent / "b.txt")
a.load()
os.system(f"mount -o remount,ro {cache}")
print("cached |", a.load().read_text(), "| -")
try:
    b.load()
except StoreWriteError as exc:
    print("cache |", exc, "| -")
"""


def test_a_full_or_read_only_store_gives_a_clear_error_and_leaves_nothing(
        tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("NBRIPPLE_HOME", None)
    script = tmp_path / "disk.py"
    script.write_text(textwrap.dedent(DISK_SCRIPT))
    done = subprocess.run(
        ["unshare", "-rm", sys.executable, str(script), str(tmp_path / "proj" / ".nbripple")],
        capture_output=True, text=True, env=env, timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" | ", 1) for line in done.stdout.splitlines())
    assert set(lines) == {"file", "table", "blob", "readonly", "cached", "cache"}, done.stdout
    for label in ("file", "table", "blob"):
        message, left = lines[label].rsplit(" | ", 1)
        assert "no space left on the device (ENOSPC)" in message, message
        assert "nothing half-written was kept" in message
        assert "blobs/" not in left and "tmp/" not in left, left  # no partial blob
    message, _ = lines["readonly"].rsplit(" | ", 1)
    assert "the file system is read-only (EROFS)" in message, message
    assert lines["cached"] == "a | -"  # a verified copy is still read from a read-only cache
    assert "cached copy of b@1" in lines["cache"] and "(EROFS)" in lines["cache"]
    assert "[cache] in config.toml" in lines["cache"]
