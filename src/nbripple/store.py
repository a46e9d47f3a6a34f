"""A content-addressed blob store on any fsspec filesystem.

Blobs live at ``<root>/blobs/<hash[:2]>/<hash>`` where ``hash`` is the BLAKE3 hash
(256 bits, hex) of the content, so identical content is stored once. BLAKE3 is a
cryptographic hash that uses every core: verifying a blob on each read and hashing a
new one costs a fraction of writing or decoding it. A blob is written completely
before any catalog row points to it, and every read is verified against its hash:
a mismatch raises :class:`~nbripple.errors.IntegrityError`, never wrong data.

No path in the store is built from user input: keys are hex digests only.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import blake3
import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.registry import known_implementations

from .errors import IntegrityError, NotFound, StoreError, StorePathError, StoreWriteError

HASH_NAME = "blake3"
_PARALLEL_FROM = 1 << 20  # bytes: below this one thread hashes faster
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_CHUNK = 4 * 1024 * 1024
_T = TypeVar("_T")
# errno -> what it means for a write
_WRITE_FAULTS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.EFBIG: "the file is too large for the file system or the process's limit",
}
_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)


def write_fault(exc: BaseException) -> int | None:
    """The errno of a full, read-only or unwritable disk behind ``exc`` (also when a
    library such as pyarrow only names it in its message), else None."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno in _WRITE_FAULTS:
        return exc.errno
    for found in _ERRNO_IN_TEXT.findall(str(exc)):
        if int(found) in _WRITE_FAULTS:
            return int(found)
    return None


@contextmanager
def write_errors(what: str, where: str | os.PathLike[str], todo: str) -> Iterator[None]:
    """Turn a full, read-only or unwritable disk met while writing ``what`` at ``where``
    into a StoreWriteError that says so and what to do (the writers leave no partial
    file behind)."""
    try:
        yield
    except StoreWriteError:
        raise
    except OSError as exc:
        code = write_fault(exc)
        if code is None:
            raise
        error = StoreWriteError(
            f"cannot write {what} at {where}: {_WRITE_FAULTS[code]} "
            f"({errno.errorcode.get(code, code)}); {todo}, then retry — nothing "
            "half-written was kept"
        )
        error.errno = code
        raise error from exc


@dataclass(frozen=True)
class Blob:
    """A stored blob: its hex digest and size in bytes."""

    digest: str
    size: int


def _hasher(size: int) -> Any:
    threads = blake3.blake3.AUTO if size >= _PARALLEL_FROM else 1
    return blake3.blake3(max_threads=threads)


def hash_bytes(data: bytes | bytearray | memoryview | Any, *, parallel: bool = True) -> str:
    """The content hash (BLAKE3, hex) of bytes or any buffer (on every core when
    ``parallel`` and the data is large)."""
    view = memoryview(data)
    hasher = _hasher(view.nbytes if parallel else 0)
    hasher.update(view)
    digest: str = hasher.hexdigest()
    return digest


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """The content hash (BLAKE3, hex) and size of a local file (memory-mapped)."""
    size = os.path.getsize(path)
    hasher = _hasher(size)
    if size:
        hasher.update_mmap(os.fspath(path))
    digest: str = hasher.hexdigest()
    return digest, size


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise StorePathError(f"{digest!r} is not a blob digest (64 lowercase hex characters)")
    return digest


def safe_join(root: Path, relative: str) -> Path:
    """Join ``relative`` under ``root``, refusing anything that would escape it."""
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
        raise StorePathError(f"refusing path {relative!r}: it must be relative to {root}")
    parts = Path(relative).parts
    if any(part in ("..", "") for part in parts) or Path(relative).is_absolute():
        raise StorePathError(f"refusing path {relative!r}: it would escape {root}")
    target = (root / relative).resolve()
    root_resolved = root.resolve()
    if target != root_resolved and root_resolved not in target.parents:
        raise StorePathError(f"refusing path {relative!r}: it would escape {root}")
    return target


class Store:
    """Content-addressed blobs under an fsspec URL.

    Example::

        store = Store("memory://nbripple")
        blob = store.put_bytes(b"hello")
        store.read(blob.digest) == b"hello"
    """

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        self.url = url
        fs, root = _open_filesystem(url, options or {})
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = str(root).rstrip("/")
        self.is_local = isinstance(fs, LocalFileSystem)

    # -- paths ---------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self.root}/blobs/{digest[:2]}/{digest}"

    def blob_uri(self, digest: str) -> str:
        path = self.blob_path(digest)
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return path if self.is_local else f"{protocol}://{path.lstrip('/')}"

    def exists(self, digest: str) -> bool:
        # Always asked of the store, never remembered: another process (gc) may have
        # removed the blob since, and a skipped write would leave a dangling version.
        return bool(self.fs.exists(self.blob_path(digest)))

    # -- writing -------------------------------------------------------------
    def put_bytes(self, data: bytes | bytearray | memoryview) -> Blob:
        """Store ``data`` unless identical content is already there."""
        digest = hash_bytes(data)
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        if not self.exists(digest):
            path = self.blob_path(digest)
            with self._writing(path):
                if self.is_local:
                    self._write_local_atomic(path, lambda fh: fh.write(data))
                else:
                    self.fs.pipe_file(path, bytes(data))
        return Blob(digest, size)

    def _writing(self, where: str | os.PathLike[str]) -> Any:
        return write_errors("a blob of the store", where,
                            "free space on that disk or make it writable, or set url under "
                            "[store] in config.toml to another place")

    def put_file(self, local_path: str | os.PathLike[str], *, move: bool = False) -> Blob:
        """Store a local file; with ``move=True`` the file may be moved into the store."""
        digest, size = hash_file(local_path)
        return self._place(local_path, Blob(digest, size), move=move)

    def _place(self, local_path: str | os.PathLike[str], blob: Blob, *, move: bool) -> Blob:
        """Store a local file whose digest is known."""
        digest, size = blob.digest, blob.size
        if self.exists(digest):
            if move:
                os.unlink(local_path)
            return Blob(digest, size)
        path = self.blob_path(digest)
        with self._writing(path):
            if self.is_local:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                if move and _same_device(local_path, Path(path).parent):
                    os.replace(local_path, path)
                else:
                    self._write_local_atomic(path, lambda fh: _copy_into(local_path, fh))
                    if move:
                        os.unlink(local_path)
            else:
                self.fs.put_file(str(local_path), path)
                if move:
                    os.unlink(local_path)
        return Blob(digest, size)

    @contextmanager
    def staging_file(self, suffix: str = "") -> Iterator[Path]:
        """A local temporary path on the store's device (for a cheap move into place)."""
        if self.is_local:
            tmp_dir = Path(self.root) / "tmp"
            with self._writing(tmp_dir):
                tmp_dir.mkdir(parents=True, exist_ok=True)
        else:
            tmp_dir = Path(tempfile.gettempdir())
        path = tmp_dir / f"{uuid.uuid4().hex}{suffix}"
        try:
            with self._writing(path):  # e.g. pyarrow writing a table there
                yield path
        finally:
            if path.exists():
                path.unlink()

    def _write_local_atomic(self, path: str, write: Any) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as fh:
                write(fh)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()

    # -- reading -------------------------------------------------------------
    def read(self, digest: str, *, label: str = "") -> bytes:
        """The blob's bytes, verified against its digest."""
        path = self.blob_path(digest)
        try:
            data: bytes = self.fs.cat_file(path)
        except FileNotFoundError as exc:
            raise NotFound(self._missing_message(digest, label)) from exc
        self._verify(digest, hash_bytes(data), label)
        return data

    def read_buffer(self, digest: str, *, label: str = "") -> Any:
        """Like :meth:`read` but zero-copy for local stores (a pyarrow memory map)."""
        if not self.is_local:
            return self.read(digest, label=label)
        import pyarrow as pa

        path = self.blob_path(digest)
        if not os.path.exists(path):
            raise NotFound(self._missing_message(digest, label))
        with pa.memory_map(path, "r") as source:
            buffer = source.read_buffer()
        self._verify(digest, hash_bytes(buffer), label)
        return buffer

    def read_verified(self, digest: str, decode: Callable[[Any], _T], *, label: str = "") -> _T:
        """``decode(buffer)`` of a blob, returned only once the blob's hash is verified.

        For a local store the blob is memory-mapped and hashed in a second thread while
        ``decode`` runs, so the check costs little extra time; on a mismatch the
        decoded value is dropped and IntegrityError raised (also when ``decode`` itself
        failed on the corrupt bytes).
        """
        if not self.is_local:
            return decode(self.read(digest, label=label))
        import pyarrow as pa

        path = self.blob_path(digest)
        if not os.path.exists(path):
            raise NotFound(self._missing_message(digest, label))
        with pa.memory_map(path, "r") as source:
            buffer = source.read_buffer()
        digests: list[str] = []
        hasher = threading.Thread(  # blake3 releases the GIL on large buffers
            # one thread: decode keeps the other cores busy meanwhile
            target=lambda: digests.append(hash_bytes(buffer, parallel=False)),
            name="nbripple-verify", daemon=True,
        )
        hasher.start()
        try:
            value = decode(buffer)
        finally:
            hasher.join()
            self._verify(digest, digests[0] if digests else "", label)
        return value

    @contextmanager
    def open_blob(self, digest: str, *, label: str = "") -> Iterator[Any]:
        """The blob as a seekable binary file, **not verified**: for reading a part of a
        large blob (a table's first rows). NotFound when the blob is missing."""
        path = self.blob_path(digest)
        try:
            handle = self.fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise self.missing(digest, label=label) from exc
        with handle:
            yield handle

    def missing(self, digest: str, *, label: str = "") -> NotFound:
        """The error saying that blob ``digest`` (of ``label``) is gone from the store."""
        return NotFound(self._missing_message(digest, label))

    def fetch_to(self, digest: str, dest: str | os.PathLike[str], *, label: str = "") -> Path:
        """Copy a blob to a local file, verifying it; the file appears only when complete."""
        target = Path(dest)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.part"
        what = f"{label or 'blob ' + digest}"
        with write_errors(what, target, "free space there or choose a writable place"):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                source = self.blob_path(digest)
                try:
                    if self.is_local:
                        shutil.copyfile(source, tmp)
                    else:
                        self.fs.get_file(source, str(tmp))
                except FileNotFoundError as exc:
                    raise NotFound(self._missing_message(digest, label)) from exc
                actual, _ = hash_file(tmp)
                self._verify(digest, actual, label)
                os.replace(tmp, target)
            finally:
                if tmp.exists():
                    tmp.unlink()
        return target

    def _verify(self, expected: str, actual: str, label: str) -> None:
        if actual != expected:
            what = f" of {label}" if label else ""
            raise IntegrityError(
                f"blob {expected}{what} is corrupt: its content hashes to {actual}. "
                f"The store at {self.url} was modified outside nbripple; restore the blob "
                "from a backup or re-create the version."
            )

    def _missing_message(self, digest: str, label: str) -> str:
        what = f" of {label}" if label else ""
        return f"blob {digest}{what} is missing from the store at {self.url}"

    # -- maintenance ---------------------------------------------------------
    def iter_digests(self) -> Iterator[str]:
        """Every blob digest in the store."""
        base = f"{self.root}/blobs"
        if not self.fs.exists(base):
            return
        for path in self.fs.find(base):
            name = str(path).rsplit("/", 1)[-1]
            if _DIGEST_RE.fullmatch(name):
                yield name

    def delete(self, digest: str) -> None:
        self.fs.rm_file(self.blob_path(digest))

    def age_s(self, digest: str) -> float | None:
        """Seconds since the blob was written, or None when the store cannot tell."""
        try:
            info = self.fs.info(self.blob_path(digest))
        except FileNotFoundError:
            return None
        stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
        if stamp is None:
            return None
        if hasattr(stamp, "timestamp"):
            stamp = stamp.timestamp()
        return max(0.0, time.time() - float(stamp))

    def size_of(self, digest: str) -> int:
        return int(self.fs.size(self.blob_path(digest)) or 0)


def _open_filesystem(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    """fsspec's filesystem and root for ``url``; an unknown protocol or a missing
    package is a StoreError naming the URL and what to do."""
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        protocol = url.split("://", 1)[0]
        spec = known_implementations.get(protocol, {})
        package = str(spec.get("class", "")).split(".", 1)[0] or "the package it names"
        raise StoreError(
            f"the store {url!r} needs {package}, which is not installed ({exc}); "
            f"pip install {package}, or fix url under [store] in config.toml"
        ) from exc
    except ValueError as exc:
        if "protocol" not in str(exc).lower():
            raise
        protocol = url.split("://", 1)[0]
        known = ", ".join(sorted(fsspec.available_protocols()))
        raise StoreError(
            f"the store {url!r} uses the protocol {protocol!r}, which fsspec does not know; "
            f"fix url under [store] in config.toml (known protocols: {known})"
        ) from exc
    return fs, str(root)


def _same_device(path: str | os.PathLike[str], directory: Path) -> bool:
    try:
        return os.stat(path).st_dev == os.stat(directory).st_dev
    except OSError:
        return False


def _copy_into(source: str | os.PathLike[str], fh: Any) -> None:
    with open(source, "rb") as src:
        shutil.copyfileobj(src, fh, _CHUNK)
