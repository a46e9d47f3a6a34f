"""Reading a version's data: values and tables decoded (and verified against their
hash), files and directories materialized in the local cache, downloads.

Cached files are read-only, and a cache hit is trusted only while every entry looks
exactly as it did when it was verified (device, inode, size, modification and change
times, mode: recorded in ``<cache>/verified/``); otherwise its content is hashed
again, and a copy that was changed outside nbripple is replaced with verified data
from the store (with a :class:`~nbripple.errors.TamperedCacheWarning`). Downloads are
copies that are hashed before they appear.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import codecs
from ..errors import (
    IntegrityError,
    KindError,
    TamperedCacheWarning,
    UnpicklingWarning,
)
from ..model import ArtifactVersion
from ..store import hash_bytes, hash_file, safe_join, write_errors

if TYPE_CHECKING:
    from .workspace import Workspace

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


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
        data = ws.store.read(version.content_hash, label=label)
        warn_unpickling(ws, version)
        return codecs.decode_object(data)
    if version.kind in ("file", "directory"):
        return cached_path(ws, version)
    raise KindError(f"{label} has unknown kind {version.kind!r}")


# -- objects ---------------------------------------------------------------------------
_warned: set[tuple[str, str | None]] = set()
_warned_lock = threading.Lock()


def warn_unpickling(ws: Workspace, version: ArtifactVersion) -> None:
    """Say once per process and producing execution that loading ``version`` unpickles
    code chosen by that execution."""
    key = (str(ws.home), version.execution_id)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(
        f"{version.ref} is an object: loading it unpickles it, which runs code chosen by "
        f"its producer, {_producer(ws, version.execution_id)}; load objects only from "
        "producers you trust (declare kind='value' or 'table' for data that needs no code)",
        UnpicklingWarning,
        stacklevel=4,
    )


def _producer(ws: Workspace, execution_id: str | None) -> str:
    if execution_id is None:
        return "a run that has not finished (a staged output)"
    try:
        execution = ws.find_execution(execution_id)
    except Exception:  # the warning must not fail the load it accompanies
        execution = None
    if execution is None:
        return f"execution {execution_id}"
    what = execution.notebook or execution.label
    return f"{execution.kind} execution {execution_id}" + (f" ({what})" if what else "")


# -- the local cache of files and directories ------------------------------------------
def cached_path(ws: Workspace, version: ArtifactVersion) -> Path:
    """The verified, read-only copy of a file or directory version in the local cache."""
    if version.kind == "file":
        name, section = str(version.meta.get("filename") or "data"), "files"
    else:
        # Keyed by content and name: identical trees may be stored under different names.
        name, section = str(version.meta.get("dirname") or "data"), "dirs"
    return _cached(ws, _Entry(version.kind, version.content_hash, version.ref), section, name)


def cached_notebook(ws: Workspace, digest: str, name: str) -> Path:
    """A stored notebook (snapshot or executed) as a verified, read-only cached file."""
    return _cached(ws, _Entry("file", digest, name), "notebooks", name)


@dataclass(frozen=True)
class _Entry:
    """What a cached copy holds: a ``file`` or a ``directory`` (manifest) blob."""

    kind: str
    digest: str
    label: str


def _cached(ws: Workspace, entry: _Entry, section: str, name: str) -> Path:
    cache = ws.settings.resolved_cache_dir
    base = cache / section / entry.digest
    target = safe_join(base, name)
    with write_errors(f"the cached copy of {entry.label}", target,
                      "free space there, or set dir under [cache] in config.toml to a "
                      "writable place"):
        for _ in range(3):  # a concurrent repair may replace the copy under us
            if os.path.lexists(target) and _verified(ws, entry, cache, target):
                return target
            _materialize(ws, entry, base, target)
            _record(cache, target)
            if _verified(ws, entry, cache, target):
                return target
    raise IntegrityError(f"the cached copy of {entry.label} at {target} keeps changing while "
                         "nbripple verifies it; stop what writes there and retry")


def _verified(ws: Workspace, entry: _Entry, cache: Path, target: Path) -> bool:
    """True when the cached copy is intact; a changed copy is moved out of the way."""
    if _stamp(target) == _recorded(cache, target):
        return True
    if _matches(ws, entry, target):  # unchanged content (e.g. a cache of an older release)
        _make_read_only(target)
        _record(cache, target)
        return True
    warnings.warn(
        f"the cached copy of {entry.label} at {target} was changed outside nbripple; it is "
        "replaced with verified data from the store (loaded files are read-only: copy one, "
        "or use download(), before editing it)",
        TamperedCacheWarning,
        stacklevel=5,
    )
    _discard(target)
    return False


def _materialize(ws: Workspace, entry: _Entry, base: Path, target: Path) -> None:
    base.mkdir(parents=True, exist_ok=True)
    if entry.kind == "file":
        ws.store.fetch_to(entry.digest, target, label=entry.label)
        _make_read_only(target)
        return
    tmp = base / f".{uuid.uuid4().hex}.part"
    try:
        manifest = ws.store.read(entry.digest, label=entry.label)
        codecs.materialize_directory(manifest, ws.store, tmp, entry.label)
        _make_read_only(tmp)
        try:
            os.rename(tmp, target)  # atomic: the tree appears only when complete
        except OSError:  # another process finished first
            if not target.exists():
                raise
    finally:
        if tmp.exists():
            _discard(tmp)


def _matches(ws: Workspace, entry: _Entry, target: Path) -> bool:
    """Whether the cached copy holds exactly the blob's content (hashed again)."""
    if entry.kind == "file":
        return target.is_file() and not target.is_symlink() and \
            hash_file(target)[0] == entry.digest
    if target.is_symlink() or not target.is_dir():
        return False
    spec = json.loads(ws.store.read(entry.digest, label=entry.label))
    want_files = {item["path"]: item for item in spec["files"]}
    want_links = {item["path"]: item["target"] for item in spec.get("links", [])}
    want_dirs = set(spec.get("dirs", []))
    files, dirs, links = _tree(target)
    if set(files) != set(want_files) or dirs != want_dirs or links != want_links:
        return False
    for rel, item in want_files.items():
        path = target / rel
        if path.stat().st_size != item["size"] or hash_file(path)[0] != item["hash"]:
            return False
    return True


def _tree(root: Path) -> tuple[list[str], set[str], dict[str, str]]:
    """The files, directories and links (with their targets) under ``root``."""
    files: list[str] = []
    dirs: set[str] = set()
    links: dict[str, str] = {}
    for current, subdirs, names in os.walk(root):
        rel_dir = Path(current).relative_to(root)
        for name in [*subdirs, *names]:
            full = Path(current) / name
            rel = (rel_dir / name).as_posix()
            if full.is_symlink():
                links[rel] = os.readlink(full)
            elif full.is_dir():
                dirs.add(rel)
            else:
                files.append(rel)
    return files, dirs, links


def _stamp(target: Path) -> dict[str, list[int]]:
    """How every entry of a cached copy looks now (any change shows in one of these)."""
    stamps: dict[str, list[int]] = {}
    entries = [target]
    if target.is_dir() and not target.is_symlink():
        for current, subdirs, names in os.walk(target):
            entries.extend(Path(current) / name for name in [*subdirs, *names])
    for path in entries:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        stamps[path.relative_to(target).as_posix()] = [
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode]
    return stamps


def _sidecar(cache: Path, target: Path) -> Path:
    return cache / "verified" / f"{hash_bytes(os.fsencode(target))}.json"


def _recorded(cache: Path, target: Path) -> dict[str, list[int]] | None:
    try:
        recorded: dict[str, list[int]] = json.loads(_sidecar(cache, target).read_text())
    except (OSError, ValueError):
        return None
    return recorded


def _record(cache: Path, target: Path) -> None:
    """Remember how a verified copy looks (best effort: on a read-only cache the copy is
    simply hashed again on its next use)."""
    sidecar = _sidecar(cache, target)
    tmp = sidecar.with_name(f".{uuid.uuid4().hex}.tmp")
    try:
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(_stamp(target)))
        os.replace(tmp, sidecar)
    except OSError:
        pass
    finally:
        if tmp.exists():
            tmp.unlink()


def _make_read_only(target: Path) -> None:
    """Files lose their write bits; directories keep theirs (so the cache can be
    removed with ``rm -r``), and an added file shows in the directory's times."""
    paths = [target]
    if target.is_dir() and not target.is_symlink():
        for current, _subdirs, names in os.walk(target):
            paths.extend(Path(current) / name for name in names)
    for path in paths:
        if path.is_file() and not path.is_symlink():
            mode = path.stat().st_mode
            if mode & _WRITE_BITS:
                with contextlib.suppress(OSError):  # a read-only cache cannot be edited
                    os.chmod(path, stat.S_IMODE(mode) & ~_WRITE_BITS)


def _discard(target: Path) -> None:
    """Move a cached copy aside (atomically) and remove it."""
    if not os.path.lexists(target):
        return
    aside = target.parent / f".{uuid.uuid4().hex}.stale"
    try:
        os.rename(target, aside)
    except FileNotFoundError:  # another process moved it first
        return
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink()


# -- downloads -------------------------------------------------------------------------
def download(ws: Workspace, version: ArtifactVersion, dest: str | os.PathLike[str]) -> Path:
    """Write a version's data to ``dest`` (a directory keeps the original name).

    Every file written is hashed before it appears, and the copies are writable."""
    destination = Path(dest)
    if version.kind in ("file", "directory"):
        source = cached_path(ws, version)
        if destination.is_dir():
            destination = destination / source.name
        todo = "choose a destination with room that you can write to"
        with write_errors(f"{version.ref}", destination, todo):
            if version.kind == "file":
                _copy_verified(ws, source, version.content_hash, destination, version.ref)
            else:
                _copy_tree(ws, version, source, destination)
        return destination
    if destination.is_dir():
        suffix = {"table": ".parquet", "value": ".json", "object": ".pickle"}[version.kind]
        destination = destination / f"{version.name}@{version.version}{suffix}"
    if version.kind == "value" and version.inline_value is not None:
        read_value(ws, version, None)  # verifies the hash
        with write_errors(f"{version.ref}", destination, "choose a writable destination"):
            destination.write_text(version.inline_value, encoding="utf-8")
    else:
        ws.store.fetch_to(version.content_hash, destination, label=version.ref)
    return destination


def _copy_verified(ws: Workspace, source: Path, digest: str, dest: Path, label: str) -> None:
    """Copy ``source`` to ``dest`` if the copy hashes to ``digest``, else fetch the blob
    from the store; ``dest`` appears only when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.part"
    try:
        try:
            shutil.copyfile(source, tmp)
            good = hash_file(tmp)[0] == digest
        except FileNotFoundError:
            good = False
        if not good:
            ws.store.fetch_to(digest, tmp, label=label)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def _copy_tree(ws: Workspace, version: ArtifactVersion, source: Path, dest: Path) -> None:
    manifest = ws.store.read(version.content_hash, label=version.ref)
    spec = json.loads(manifest)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in spec.get("dirs", []):
        safe_join(dest, rel).mkdir(parents=True, exist_ok=True)
    for entry in spec["files"]:
        _copy_verified(ws, source / entry["path"], entry["hash"],
                       safe_join(dest, entry["path"]), f"{version.ref}:{entry['path']}")
    codecs.make_links(spec.get("links", []), dest, version.ref)

