"""How each kind of value is written to the store and read back.

=========  ==========================================  ==============================
kind       values                                      stored as
=========  ==========================================  ==============================
table      pandas / polars DataFrame, pyarrow Table    one Parquet blob (pyarrow)
           or RecordBatch
file       a path to a file (``pathlib.Path``)         the file's bytes
directory  a path to a directory                       one blob per file + a manifest
                                                       (links inside it kept as links)
value      JSON-able Python values                     inline JSON (<= 64 KiB) or a blob
object     anything else                               a pickle — loading one runs code
                                                       chosen by its producer: load
                                                       objects only from producers you
                                                       trust (loading warns once per
                                                       producing execution)
=========  ==========================================  ==============================
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import IntegrityError, KindError, SymlinkError
from .store import Store, hash_bytes, safe_join

INLINE_LIMIT = 64 * 1024
TABLE_TYPES = ("pandas", "arrow", "arrow.recordbatch", "polars")


@dataclass
class Encoded:
    """The result of storing a value: what the catalog row needs."""

    kind: str
    python_type: str
    content_hash: str
    size: int
    uri: str | None
    inline_value: str | None = None
    schema: list[dict[str, str]] | None = None
    num_rows: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


# -- inference ---------------------------------------------------------------
def table_type(value: Any) -> str | None:
    """Which table library ``value`` belongs to, without importing any of them."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        if isinstance(value, pa.Table):
            return "arrow"
        if isinstance(value, pa.RecordBatch):
            return "arrow.recordbatch"
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.DataFrame):
        return "pandas"
    pl = sys.modules.get("polars")
    if pl is not None and isinstance(value, pl.DataFrame):
        return "polars"
    return None


def _json_roundtrips(value: Any) -> str | None:
    """The JSON text of ``value`` if it loads back equal, else None."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    try:
        same = json.loads(text) == value
    except Exception:
        return None
    return text if same is True else None


def infer_kind(value: Any) -> str:
    """The kind a value is stored as when the artifact does not pin one."""
    if table_type(value) is not None:
        return "table"
    if isinstance(value, os.PathLike):
        path = Path(value)
        if path.is_dir():
            return "directory"
        if path.is_file():
            return "file"
        if path.is_symlink():
            raise SymlinkError(f"{path} -> {os.readlink(path)} is "
                               f"{_broken_link(path) or 'not a file or a directory'}: "
                               "fix or remove it")
        raise KindError(f"{path} does not exist: a path value must name a file or a directory")
    if _json_roundtrips(value) is not None:
        return "value"
    return "object"


# -- encoding ----------------------------------------------------------------
def encode(value: Any, store: Store, kind: str | None = None, *,
           follow_symlinks: bool = False) -> Encoded:
    """Write ``value`` to ``store`` as ``kind`` (inferred when None).

    Symbolic links are never followed silently: a file or directory that is a link, and
    links in a directory that point out of it, dangle or loop, raise SymlinkError
    unless ``follow_symlinks`` stores what they point to. Links to places inside the
    directory are stored as links.
    """
    kind = kind or infer_kind(value)
    if kind == "table":
        return _encode_table(value, store)
    if kind == "file":
        return _encode_file(_as_path(value, kind, follow_symlinks), store)
    if kind == "directory":
        return _encode_directory(_as_path(value, kind, follow_symlinks), store, follow_symlinks)
    if kind == "value":
        return _encode_value(value, store)
    if kind == "object":
        return _encode_object(value, store)
    raise KindError(f"unknown kind {kind!r}; kinds are table, file, directory, value, object")


def _as_path(value: Any, kind: str, follow_symlinks: bool) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise KindError(
            f"a {kind} artifact needs a path, got {type(value).__name__}; "
            "pass a pathlib.Path or a string path"
        )
    path = Path(value)
    if path.is_symlink():
        broken = _broken_link(path)
        if broken is not None:
            raise SymlinkError(f"{path} -> {os.readlink(path)} is {broken}: fix or remove it")
        if not follow_symlinks:
            raise SymlinkError(
                f"{path} is a symbolic link (to {os.readlink(path)}): nbripple stores what a "
                "link points to only when asked; pass follow_symlinks=True, or the target's "
                "own path"
            )
    if kind == "file" and not path.is_file():
        raise KindError(f"{path} is not a file: a file artifact needs an existing file")
    if kind == "directory" and not path.is_dir():
        raise KindError(f"{path} is not a directory: a directory artifact needs one")
    return path


def _encode_table(value: Any, store: Store) -> Encoded:
    import pyarrow as pa
    import pyarrow.parquet as pq

    python_type = table_type(value)
    if python_type is None:
        raise KindError(
            f"a table artifact needs a pandas or polars DataFrame or a pyarrow Table, "
            f"got {type(value).__name__}"
        )
    try:
        if python_type == "pandas":
            table = pa.Table.from_pandas(value)
        elif python_type == "polars":
            table = value.to_arrow()
        elif python_type == "arrow.recordbatch":
            table = pa.Table.from_batches([value])
        else:
            table = value
        # Written natively by pyarrow (as fast as a plain write_table), then hashed
        # from the page cache on every core and moved into place.
        with store.staging_file(".parquet") as tmp:
            pq.write_table(table, tmp)
            blob = store.put_file(tmp, move=True)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        # e.g. duplicate column names, or an object column mixing ints and strings
        raise KindError(
            f"cannot store this {python_type} table as Parquet: {exc}. Fix the column "
            "names or types, or declare the artifact with kind='object' to pickle it."
        ) from exc
    schema = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    return Encoded(
        "table",
        python_type,
        blob.digest,
        blob.size,
        store.blob_uri(blob.digest),
        schema=schema,
        num_rows=table.num_rows,
    )


def _encode_file(path: Path, store: Store) -> Encoded:
    blob = store.put_file(path)
    return Encoded(
        "file",
        "path",
        blob.digest,
        blob.size,
        store.blob_uri(blob.digest),
        meta={"filename": path.name},
    )


def _broken_link(link: Path) -> str | None:
    """Why ``link`` cannot be followed (dangling, a loop), or None when it can."""
    try:
        os.stat(link)
    except FileNotFoundError:
        return "a dangling symbolic link (its target does not exist)"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links"
        return f"a symbolic link that cannot be followed ({exc.strerror})"
    return None


@dataclass
class _Tree:
    """What a directory artifact stores, gathered before anything is written."""

    root: Path
    follow: bool
    files: list[tuple[str, Path]] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def walk(self, current: Path, rel: str, ancestors: tuple[str, ...]) -> None:
        # The order of os.walk (top-down, names sorted), so a tree without links keeps
        # the manifest (and the content hash) it always had.
        with os.scandir(current) as it:
            entries = sorted(it, key=lambda entry: entry.name)
        subdirs: list[tuple[str, Path]] = []
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                self._link(Path(entry.path), child, subdirs, ancestors)
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append((child, Path(entry.path)))
            elif entry.is_file(follow_symlinks=False):
                self.files.append((child, Path(entry.path)))
            else:
                self.problems.append(f"{child} (not a regular file, directory or link)")
        self.dirs.extend(child for child, _ in subdirs)
        for child, full in subdirs:
            real = os.path.realpath(full)
            self.walk(full, child, (*ancestors, real))

    def _link(self, link: Path, child: str, subdirs: list[tuple[str, Path]],
              ancestors: tuple[str, ...]) -> None:
        broken = _broken_link(link)
        if broken is not None:
            self.problems.append(f"{child} -> {os.readlink(link)} ({broken})")
            return
        real = os.path.realpath(link)
        root = os.path.realpath(self.root)
        inside = real == root or real.startswith(root + os.sep)
        if not self.follow:
            if inside:
                target = os.path.relpath(real, os.path.realpath(link.parent))
                self.links.append({"path": child, "target": Path(target).as_posix()})
            else:
                self.problems.append(f"{child} -> {os.readlink(link)} (outside the directory)")
            return
        if os.path.isdir(real):
            if real in ancestors:
                self.problems.append(f"{child} -> {os.readlink(link)} (a loop: it leads back "
                                     "to a directory that holds it)")
            else:
                subdirs.append((child, Path(real)))
        elif os.path.isfile(real):
            self.files.append((child, Path(real)))
        else:
            self.problems.append(f"{child} -> {os.readlink(link)} (not a regular file or "
                                 "directory)")


def _encode_directory(path: Path, store: Store, follow_symlinks: bool = False) -> Encoded:
    tree = _Tree(path, follow_symlinks)
    tree.walk(path, "", (os.path.realpath(path),))
    if tree.problems:
        hint = ("fix or remove them" if follow_symlinks else
                "links inside the directory are kept as links; pass follow_symlinks=True "
                "to store what the others point to, or remove them")
        raise SymlinkError(
            f"{path} holds {len(tree.problems)} entr{'y' if len(tree.problems) == 1 else 'ies'}"
            f" nbripple will not store: {'; '.join(tree.problems)}; {hint}"
        )
    files: list[dict[str, Any]] = []
    total = 0
    for rel, full in tree.files:
        blob = store.put_file(full)
        files.append({"path": rel, "hash": blob.digest, "size": blob.size})
        total += blob.size
    spec: dict[str, Any] = {"files": files, "dirs": tree.dirs}
    if tree.links:  # absent otherwise: trees without links keep their old hashes
        spec["links"] = tree.links
    manifest = json.dumps(spec, sort_keys=True).encode()
    blob = store.put_bytes(manifest)
    meta: dict[str, Any] = {"dirname": path.name, "files": len(files)}
    if tree.links:
        meta["links"] = len(tree.links)
    return Encoded(
        "directory",
        "path",
        blob.digest,
        total,
        store.blob_uri(blob.digest),
        meta=meta,
    )


def _encode_value(value: Any, store: Store) -> Encoded:
    text = _json_roundtrips(value)
    if text is None:
        raise KindError(
            f"a value artifact needs JSON data that loads back unchanged (dicts with string "
            f"keys, lists, str, numbers, bools, None); got {type(value).__name__}. "
            "Declare kind='object' to pickle it instead."
        )
    data = text.encode("utf-8")
    python_type = type(value).__name__
    if len(data) <= INLINE_LIMIT:
        return Encoded("value", python_type, hash_bytes(data), len(data), None, inline_value=text)
    blob = store.put_bytes(data)
    return Encoded("value", python_type, blob.digest, blob.size, store.blob_uri(blob.digest))


def _encode_object(value: Any, store: Store) -> Encoded:
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise KindError(f"cannot pickle {type(value).__name__}: {exc}") from exc
    blob = store.put_bytes(data)
    python_type = f"{type(value).__module__}.{type(value).__qualname__}"
    return Encoded("object", python_type, blob.digest, blob.size, store.blob_uri(blob.digest))


# -- decoding ----------------------------------------------------------------
def decode_table(buffer: Any, python_type: str, as_: str | None) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(buffer))
    target = as_ or python_type
    if target == "arrow":
        return table
    if target == "arrow.recordbatch":
        return table.combine_chunks().to_batches()[0] if table.num_rows else \
            pa.RecordBatch.from_pylist([], schema=table.schema)
    if target == "pandas":
        return table.to_pandas()
    if target == "polars":
        try:
            import polars as pl
        except ImportError as exc:
            raise KindError("loading as polars needs polars: pip install polars") from exc
        return pl.from_arrow(table)
    raise KindError(f"cannot load a table as {as_!r}; use 'arrow', 'pandas' or 'polars'")


def decode_value(data: bytes | str) -> Any:
    return json.loads(data)


def decode_object(data: Any) -> Any:
    return pickle.loads(data)


def materialize_directory(manifest: bytes, store: Store, dest: Path, label: str) -> Path:
    """Lay out every file, directory and link of a directory manifest under ``dest``
    (links last, so nothing is written through one)."""
    spec = json.loads(manifest)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in spec.get("dirs", []):
        safe_join(dest, rel).mkdir(parents=True, exist_ok=True)
    for entry in spec["files"]:
        target = safe_join(dest, entry["path"])
        store.fetch_to(entry["hash"], target, label=f"{label}:{entry['path']}")
    make_links(spec.get("links", []), dest, label)
    return dest


def make_links(links: list[dict[str, str]], dest: Path, label: str) -> None:
    """Create a manifest's links under ``dest``; each must lead to a place inside it."""
    for entry in links:
        parent, name = os.path.split(entry["path"])
        if name in ("", ".", ".."):
            raise IntegrityError(f"the manifest of {label} has a link with no name "
                                 f"({entry['path']!r}); refusing it")
        # the parent is resolved, not the link itself: an old link there is replaced
        where = (safe_join(dest, parent) if parent else dest.resolve()) / name
        target = entry["target"]
        lexical = os.path.normpath(os.path.join(os.path.dirname(entry["path"]), target))
        if os.path.isabs(target) or lexical == ".." or lexical.startswith("../"):
            raise IntegrityError(f"the manifest of {label} has a link {entry['path']} -> "
                                 f"{target} that leads out of the directory; refusing it")
        if where.is_symlink() or where.is_file():
            where.unlink()
        os.symlink(target, where)
    root = os.path.realpath(dest)
    for entry in links:
        real = os.path.realpath(dest / entry["path"])
        if real != root and not real.startswith(root + os.sep):
            raise IntegrityError(f"the manifest of {label} has a link {entry['path']} -> "
                                 f"{entry['target']} that leads out of the directory; "
                                 "refusing it")


def directory_links(manifest: bytes) -> list[dict[str, str]]:
    """The ``links`` entries (path, target) of a directory manifest."""
    links: list[dict[str, str]] = json.loads(manifest).get("links", [])
    return links


def directory_listing(manifest: bytes) -> list[dict[str, Any]]:
    """The ``files`` entries (path, hash, size) of a directory manifest."""
    files: list[dict[str, Any]] = json.loads(manifest)["files"]
    return files
