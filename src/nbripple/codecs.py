"""How each kind of value is written to the store and read back.

=========  ==========================================  ==============================
kind       values                                      stored as
=========  ==========================================  ==============================
table      pandas / polars DataFrame, pyarrow Table    one Parquet blob (pyarrow)
           or RecordBatch
file       a path to a file (``pathlib.Path``)         the file's bytes
directory  a path to a directory                       one blob per file + a manifest
value      JSON-able Python values                     inline JSON (<= 64 KiB) or a blob
object     anything else                               a pickle — loading one runs code
                                                       chosen by its producer: load
                                                       objects only from producers you
                                                       trust
=========  ==========================================  ==============================
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KindError
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
        raise KindError(f"{path} does not exist: a path value must name a file or a directory")
    if _json_roundtrips(value) is not None:
        return "value"
    return "object"


# -- encoding ----------------------------------------------------------------
def encode(value: Any, store: Store, kind: str | None = None) -> Encoded:
    """Write ``value`` to ``store`` as ``kind`` (inferred when None)."""
    kind = kind or infer_kind(value)
    if kind == "table":
        return _encode_table(value, store)
    if kind == "file":
        return _encode_file(_as_path(value, kind), store)
    if kind == "directory":
        return _encode_directory(_as_path(value, kind), store)
    if kind == "value":
        return _encode_value(value, store)
    if kind == "object":
        return _encode_object(value, store)
    raise KindError(f"unknown kind {kind!r}; kinds are table, file, directory, value, object")


def _as_path(value: Any, kind: str) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise KindError(
            f"a {kind} artifact needs a path, got {type(value).__name__}; "
            "pass a pathlib.Path or a string path"
        )
    path = Path(value)
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


def _encode_directory(path: Path, store: Store) -> Encoded:
    files: list[dict[str, Any]] = []
    dirs: list[str] = []
    total = 0
    for current, subdirs, names in os.walk(path):
        subdirs.sort()
        rel_dir = Path(current).relative_to(path)
        for sub in subdirs:
            dirs.append((rel_dir / sub).as_posix())
        for name in sorted(names):
            full = Path(current) / name
            if not full.is_file():
                continue
            blob = store.put_file(full)
            files.append({"path": (rel_dir / name).as_posix(), "hash": blob.digest,
                          "size": blob.size})
            total += blob.size
    manifest = json.dumps({"files": files, "dirs": dirs}, sort_keys=True).encode()
    blob = store.put_bytes(manifest)
    return Encoded(
        "directory",
        "path",
        blob.digest,
        total,
        store.blob_uri(blob.digest),
        meta={"dirname": path.name, "files": len(files)},
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
    """Lay out every file of a directory manifest under ``dest``."""
    spec = json.loads(manifest)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in spec.get("dirs", []):
        safe_join(dest, rel).mkdir(parents=True, exist_ok=True)
    for entry in spec["files"]:
        target = safe_join(dest, entry["path"])
        store.fetch_to(entry["hash"], target, label=f"{label}:{entry['path']}")
    return dest


def directory_listing(manifest: bytes) -> list[dict[str, Any]]:
    """The ``files`` entries (path, hash, size) of a directory manifest."""
    files: list[dict[str, Any]] = json.loads(manifest)["files"]
    return files
