"""Garbage collection of the store: blobs no catalog row points to.

Blobs are written before the catalog rows that point to them, so a process killed
in between, a failed run's staged outputs, or a version whose data was deduplicated
away can leave blobs nothing refers to. :func:`collect_garbage` deletes those, but
only once they are older than a grace period: a blob written a moment ago may be
about to be committed by another process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import codecs
from ..errors import NbrippleError
from .workspace import Workspace

DEFAULT_GRACE_S = 24 * 3600.0


@dataclass
class GarbageReport:
    """What :func:`collect_garbage` found (and, unless a dry run, deleted)."""

    referenced: int = 0
    kept_young: int = 0
    deleted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = False


def collect_garbage(ws: Workspace, *, grace_s: float = DEFAULT_GRACE_S,
                    dry_run: bool = False) -> GarbageReport:
    """Delete store blobs that no version, staged output or execution refers to and
    that are older than ``grace_s`` seconds (``dry_run`` only reports them).

    Example::

        report = collect_garbage(nr.current(), dry_run=True)
        len(report.deleted), report.freed_bytes
    """
    if grace_s < 0:
        raise NbrippleError("the grace period cannot be negative")
    blobs, manifests = ws.catalog.referenced_blobs()
    ws.release()  # the scan of the store needs no catalog
    keep = set(blobs) | set(manifests)
    for digest in manifests:  # a directory's files are blobs of their own
        try:
            manifest = ws.store.read(digest, label=f"directory manifest {digest}")
        except NbrippleError:
            continue  # a missing or corrupt manifest: keep what we can, delete nothing
        keep.update(entry["hash"] for entry in codecs.directory_listing(manifest))
    report = GarbageReport(referenced=len(keep), dry_run=dry_run)
    for digest in list(ws.store.iter_digests()):
        if digest in keep:
            continue
        age = ws.store.age_s(digest)
        if age is None or age < grace_s:
            report.kept_young += 1
            continue
        report.freed_bytes += ws.store.size_of(digest)
        report.deleted.append(digest)
        if not dry_run:
            ws.store.delete(digest)
    return report
