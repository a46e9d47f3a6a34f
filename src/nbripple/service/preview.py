"""A look at what a version holds, for the sidebar's Object tab: a table's schema and
first rows, a directory's file list, a value's short repr — as JSON that any browser
parses (no NaN, no integers beyond 2**53, dates as ISO 8601 text).

Nothing is recorded as consumed and nothing is unpickled. A table is read through
pyarrow's Parquet reader, which fetches the footer and the first pages only; blobs up
to :data:`VERIFY_UP_TO` bytes are read whole and verified against their hash first
(that costs a few milliseconds), larger ones are read in part and the answer says
``"verified": false`` (``load()`` verifies them).

Example::

    version_preview(ws, ws.resolve("prediction@1"), rows=5)["rows"]
    # [[0.0, 0.5], [1.0, 2.5], ...]
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import reprlib
from typing import TYPE_CHECKING, Any

from .. import codecs
from ..errors import IntegrityError, InvalidReference
from ..model import ArtifactVersion
from ..store import hash_bytes

if TYPE_CHECKING:
    from .workspace import Workspace

JSON = dict[str, Any]

DEFAULT_ROWS = 20
MAX_ROWS = 200
"""How many rows (or directory entries) a preview shows by default and at most."""
MAX_COLUMNS = 50
"""A wider table shows its first columns (the answer says how many there are)."""
MAX_TEXT = 200
"""Strings (and nested values written as JSON) longer than this are cut, with '…'."""
VERIFY_UP_TO = 8 * 1024 * 1024
"""Blobs up to this size are read whole and verified before they are shown."""
READ_BUFFER = 64 * 1024
"""The Parquet reader's read size: with it, a column chunk is read page by page."""
MAX_REPR = 2000
"""A value's repr is cut here (after reprlib has shortened each part)."""
SAFE_INTEGER = 2**53 - 1
"""The largest integer a JavaScript number holds exactly; larger ones become text."""



def _short_repr() -> reprlib.Repr:
    """reprlib's short repr, with room for a line of text (Python 3.11 has no keywords)."""
    made = reprlib.Repr()
    made.maxlevel, made.maxlong = 3, 60
    made.maxdict = made.maxlist = made.maxtuple = made.maxset = 12
    made.maxstring = made.maxother = MAX_TEXT
    return made


_REPR = _short_repr()


def check_rows(rows: int) -> int:
    """``rows`` if it is a preview size (0 to :data:`MAX_ROWS`), else InvalidReference."""
    if not 0 <= rows <= MAX_ROWS:
        raise InvalidReference(f"rows must be from 0 to {MAX_ROWS}, not {rows}")
    return rows


def version_preview(ws: Workspace, version: ArtifactVersion, rows: int = DEFAULT_ROWS
                    ) -> JSON:
    """What the Object tab shows of ``version``: ``preview`` is ``table``, ``files``,
    ``value`` or ``none`` (with a ``message`` saying why)."""
    rows = check_rows(rows)
    base: JSON = {"ref": version.ref, "kind": version.kind, "size": version.size}
    if version.kind == "table":
        return {**base, **_table(ws, version, rows)}
    if version.kind == "directory":
        return {**base, **_directory(ws, version, rows)}
    if version.kind == "file":
        return {**base, **_file(ws, version)}
    if version.kind == "value":
        return {**base, **_value(ws, version)}
    why = (": it is a pickle, and nbripple never unpickles a version to show it; load it "
           "in a notebook if you trust its producer" if version.kind == "object" else "")
    return {**base, "preview": "none", "message": f"no preview for kind {version.kind}{why}"}


# -- tables ------------------------------------------------------------------------
def _table(ws: Workspace, version: ArtifactVersion, rows: int) -> JSON:
    import pyarrow as pa

    store, label = ws.store, version.ref
    if version.size <= VERIFY_UP_TO:
        buffer = store.read_buffer(version.content_hash, label=label)  # verified
        return _first_rows(pa.BufferReader(buffer), version, rows, verified=True)
    with store.open_blob(version.content_hash, label=label) as source:
        return _first_rows(source, version, rows, verified=False)


def _first_rows(source: Any, version: ArtifactVersion, rows: int, *, verified: bool) -> JSON:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=READ_BUFFER)
        schema = parquet.schema_arrow
        fields = list(schema)[:MAX_COLUMNS]
        names = [f.name for f in fields]
        batch = None
        if rows > 0 and names:
            batch = next(parquet.iter_batches(batch_size=rows, columns=names), None)
        total = parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise IntegrityError(
            f"the stored Parquet file of {version.ref} cannot be read ({_short(str(exc))}); "
            "restore the blob from a backup or re-create the version") from exc
    cells: list[list[Any]] = []
    if batch is not None:
        shown = batch.slice(0, rows)
        columns = [_column_values(shown.column(i)) for i in range(shown.num_columns)]
        cells = [list(row) for row in zip(*columns, strict=True)]
    return {
        "preview": "table",
        "verified": verified,
        "columns": [{"name": f.name, "type": str(f.type)} for f in fields],
        "columns_total": len(schema),
        "rows": cells,
        "num_rows": total,
        "more": max(total - len(cells), 0),
    }


def _column_values(column: Any) -> list[Any]:
    """A column's values as JSON-safe cells (as text when Python cannot hold them, e.g.
    a timestamp beyond the year 9999)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return [cell(v) for v in column.to_pylist()]
    except (pa.ArrowException, ValueError, OverflowError, TypeError):
        pass
    try:
        return [cell(v) for v in pc.cast(column, pa.string()).to_pylist()]
    except (pa.ArrowException, ValueError, TypeError):
        return [f"<{column.type}>"] * len(column)


def cell(value: Any) -> Any:
    """One value as JSON that a browser reads as meant.

    >>> cell(float("nan")), cell(2**60), cell(b"\\x89PNG"), cell(dt.date(2024, 5, 1))
    ('NaN', '1152921504606846976', '<4 bytes: 89504e47>', '2024-05-01')
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value).replace("nan", "NaN")
    if isinstance(value, str):
        return _short(value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        head = data[:8].hex() + ("…" if len(data) > 8 else "")
        return f"<{len(data)} bytes: {head}>" if data else "<0 bytes>"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta | decimal.Decimal):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return _short(json.dumps(_nested(value), ensure_ascii=False))
    return _short(str(value))


def _nested(value: Any) -> Any:
    """A list, struct or map value with JSON-safe leaves (for writing it as JSON)."""
    if isinstance(value, dict):
        return {str(k): _nested(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nested(v) for v in value]
    leaf = cell(value)
    return leaf


def _short(text: str) -> str:
    return _cut(text, MAX_TEXT)


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


# -- files and directories ---------------------------------------------------------
def _directory(ws: Workspace, version: ArtifactVersion, rows: int) -> JSON:
    manifest = ws.store.read(version.content_hash, label=version.ref)  # verified
    entries: list[JSON] = [{"path": f["path"], "size": f["size"]}
                           for f in codecs.directory_listing(manifest)]
    entries += [{"path": link["path"], "target": link["target"]}
                for link in codecs.directory_links(manifest)]
    return {"preview": "files", "verified": True, "files": entries[:rows],
            "total": len(entries), "more": max(len(entries) - rows, 0)}


def _file(ws: Workspace, version: ArtifactVersion) -> JSON:
    if not ws.store.exists(version.content_hash):
        raise ws.store.missing(version.content_hash, label=version.ref)
    name = str(version.meta.get("filename") or version.name)
    return {"preview": "files", "verified": False,
            "files": [{"path": name, "size": version.size}], "total": 1, "more": 0}


# -- values ------------------------------------------------------------------------
def _value(ws: Workspace, version: ArtifactVersion) -> JSON:
    if version.inline_value is not None:
        text = version.inline_value
        actual = hash_bytes(text.encode("utf-8"))
        if actual != version.content_hash:
            raise IntegrityError(
                f"the inline value of {version.ref} hashes to {actual}, not "
                f"{version.content_hash}: the catalog row was modified outside nbripple")
    elif version.size <= VERIFY_UP_TO:
        text = ws.store.read(version.content_hash, label=version.ref).decode("utf-8")
    else:
        return {"preview": "none",
                "message": f"no preview of a value this large ({version.size:,} bytes); "
                           "load it in a notebook"}
    return {"preview": "value", "verified": True, "python_type": version.python_type,
            "repr": _cut(_REPR.repr(json.loads(text)), MAX_REPR)}


__all__ = ["DEFAULT_ROWS", "MAX_COLUMNS", "MAX_ROWS", "cell", "check_rows",
           "version_preview"]
