"""Reading a version's data: values and tables decoded (and verified against their
hash), files and directories materialized in the local cache, downloads.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import codecs
from ..errors import IntegrityError, KindError
from ..model import ArtifactVersion
from ..store import hash_bytes, safe_join

if TYPE_CHECKING:
    from .workspace import Workspace


def read_value(ws: Workspace, version: ArtifactVersion, as_: str | None) -> Any:
    label = version.ref
    if as_ is not None and version.kind != "table":
        raise KindError(f"{label} is a {version.kind}; as_= applies to tables only")
    if version.kind == "table":
        return ws.store.read_verified(  # decoded while the hash is checked
            version.content_hash,
            lambda buffer: codecs.decode_table(buffer, version.python_type, as_),
            label=label,
        )
    if version.kind == "value":
        if version.inline_value is not None:
            actual = hash_bytes(version.inline_value.encode("utf-8"))
            if actual != version.content_hash:
                raise IntegrityError(
                    f"the inline value of {label} hashes to {actual}, not "
                    f"{version.content_hash}: the catalog row was modified outside nbripple"
                )
            return codecs.decode_value(version.inline_value)
        return codecs.decode_value(ws.store.read(version.content_hash, label=label))
    if version.kind == "object":
        return codecs.decode_object(ws.store.read(version.content_hash, label=label))
    if version.kind in ("file", "directory"):
        return cached_path(ws, version)
    raise KindError(f"{label} has unknown kind {version.kind!r}")


def cached_path(ws: Workspace, version: ArtifactVersion) -> Path:
    cache = ws.settings.resolved_cache_dir
    if version.kind == "file":
        base = cache / "files" / version.content_hash
        target = safe_join(base, str(version.meta.get("filename") or "data"))
        if not target.exists():
            ws.store.fetch_to(version.content_hash, target, label=version.ref)
        return target
    # Keyed by content and name: identical trees may be stored under different names.
    base = cache / "dirs" / version.content_hash
    target = safe_join(base, str(version.meta.get("dirname") or "data"))
    if not target.exists():
        base.mkdir(parents=True, exist_ok=True)
        tmp = base / f".{uuid.uuid4().hex}.part"
        try:
            manifest = ws.store.read(version.content_hash, label=version.ref)
            codecs.materialize_directory(manifest, ws.store, tmp, version.ref)
            try:
                os.rename(tmp, target)  # atomic: the tree appears only when complete
            except OSError:  # another process finished first
                if not target.exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def download(ws: Workspace, version: ArtifactVersion, dest: str | os.PathLike[str]) -> Path:
    """Write a version's data to ``dest`` (a directory keeps the original name)."""
    destination = Path(dest)
    if version.kind in ("file", "directory"):
        source = cached_path(ws, version)
        if destination.is_dir():
            destination = destination / source.name
        if version.kind == "file":
            shutil.copyfile(source, destination)
        else:
            shutil.copytree(source, destination, dirs_exist_ok=True)
        return destination
    if destination.is_dir():
        suffix = {"table": ".parquet", "value": ".json", "object": ".pickle"}[version.kind]
        destination = destination / f"{version.name}@{version.version}{suffix}"
    if version.kind == "value" and version.inline_value is not None:
        read_value(ws, version, None)  # verifies the hash
        destination.write_text(version.inline_value, encoding="utf-8")
    else:
        ws.store.fetch_to(version.content_hash, destination, label=version.ref)
    return destination
