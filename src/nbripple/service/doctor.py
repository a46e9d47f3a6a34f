"""``nbripple doctor``: the catalog checked against the store, and what mends each fault.

:func:`diagnose` looks for

* versions whose blob is missing from the store or corrupt (every blob is re-hashed,
  a directory's files too) — and inline values whose row does not match its hash;
* blobs nothing refers to, older than gc's grace period (``nbripple gc`` deletes them);
* executions still ``running`` whose owner is gone: on this host its process is dead
  (or the pid was reused); on another host its heartbeat stopped long ago;
* plans that cannot fire: a notebook that is gone, a timezone or a cron expression
  that is invalid or never fires;
* a catalog file that cannot be opened at all (damaged, read-only, full disk).

Each :class:`Finding` says what is wrong and the command that mends it. ``fix=True``
mends what is safe to mend here: executions whose owner is gone are marked failed.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import codecs
from ..errors import CatalogError, IntegrityError, NbrippleError, NotFound
from ..model import ArtifactVersion, PlanRecord
from ..store import hash_bytes
from .executions import owner_gone, sweep_dead_executions
from .gc import DEFAULT_GRACE_S, collect_garbage
from .plans import schedule_problem

if TYPE_CHECKING:
    from .workspace import Workspace

CHECKS = ("catalog", "missing_blob", "corrupt_blob", "corrupt_row", "unreferenced_blobs",
          "stuck_execution", "plan_cannot_fire")


@dataclass(frozen=True)
class Finding:
    """One fault: which ``check`` found it, about what (``subject``: a version ref, a
    digest, an execution id, a plan name), what is wrong and the command that mends it.
    ``fixed``: ``doctor --fix`` mended it already."""

    check: str
    subject: str
    problem: str
    fix: str
    fixed: bool = False


@dataclass
class DoctorReport:
    """What :func:`diagnose` checked (counts by kind) and found."""

    home: Path
    checked: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Nothing left to mend (faults ``--fix`` mended do not count)."""
        return all(f.fixed for f in self.findings)


def diagnose(ws: Workspace, *, fix: bool = False, grace_s: float = DEFAULT_GRACE_S,
             now: datetime | None = None) -> DoctorReport:
    """Check the catalog of ``ws`` against its store (see the module docstring).

    Example::

        report = diagnose(nr.current())
        for finding in report.findings:
            print(finding.problem, "->", finding.fix)
    """
    report = DoctorReport(ws.home)
    try:
        ws.catalog.last_event_seq()  # opens the file: is it usable at all?
    except CatalogError as exc:
        report.findings.append(Finding("catalog", str(ws.home), str(exc), _catalog_fix(ws)))
        return report
    moment = now or datetime.now(UTC)
    _check_versions(ws, report)
    _check_unreferenced(ws, report, grace_s)
    _check_executions(ws, report, moment, fix)
    _check_plans(ws, report, moment)
    ws.release()
    return report


def _catalog_fix(ws: Workspace) -> str:
    return (f"move {ws.home / 'catalog.duckdb'} aside and copy your last backup in its place "
            "(`nbripple backup DEST` makes one), then run `nbripple doctor` again")


# -- versions and their blobs -----------------------------------------------------------
def _all_versions(ws: Workspace) -> list[ArtifactVersion]:
    return [v for decl in ws.catalog.list_artifacts()
            for v in ws.catalog.list_versions(decl.name)]


def _version_fix(ws: Workspace, version: ArtifactVersion) -> str:
    execution = ws.catalog.get_execution(version.execution_id) if version.execution_id \
        else None
    if execution is not None and execution.kind == "notebook":
        return (f"restore the blob from a backup of the store, or re-create the version: "
                f"`nbripple rerun {execution.id}`")
    if version.kind in ("table", "file", "directory"):
        return (f"restore the blob from a backup of the store, or push the data again: "
                f"`nbripple push {version.name} PATH`")
    return (f"restore the blob from a backup of the store, or create the version again: "
            f"nr.Artifact({version.name!r}).create_from(VALUE)")


def _check_blob(ws: Workspace, report: DoctorReport, version: ArtifactVersion, digest: str,
                what: str) -> bytes | None:
    """Re-hash one blob; a finding if it is missing or corrupt. Returns its bytes when
    ``what`` is a directory manifest (read whole), else None."""
    report.checked["blobs"] = report.checked.get("blobs", 0) + 1
    label = f"{version.ref} ({what})"
    try:
        if what == "manifest":
            return ws.store.read(digest, label=label)
        ws.store.read_buffer(digest, label=label)
    except NotFound:
        report.findings.append(Finding(
            "missing_blob", version.ref,
            f"{version.ref}: its {what} blob {digest} is missing from the store",
            _version_fix(ws, version)))
    except IntegrityError:
        report.findings.append(Finding(
            "corrupt_blob", version.ref,
            f"{version.ref}: its {what} blob {digest} is corrupt (its content no longer "
            "matches its hash)", _version_fix(ws, version)))
    return None


def _check_versions(ws: Workspace, report: DoctorReport) -> None:
    versions = _all_versions(ws)
    report.checked["versions"] = len(versions)
    ws.release()  # re-hashing the store needs no catalog: let other processes in
    for version in versions:
        if version.uri is None:
            inline = version.inline_value
            if inline is not None and hash_bytes(inline.encode("utf-8")) != \
                    version.content_hash:
                report.findings.append(Finding(
                    "corrupt_row", version.ref,
                    f"{version.ref}: its inline value does not match its hash "
                    f"{version.content_hash} (the catalog row was modified outside nbripple)",
                    _version_fix(ws, version)))
            continue
        if version.kind != "directory":
            _check_blob(ws, report, version, version.content_hash, "data")
            continue
        manifest = _check_blob(ws, report, version, version.content_hash, "manifest")
        if manifest is None:
            continue
        for entry in codecs.directory_listing(manifest):
            _check_blob(ws, report, version, entry["hash"], f"file {entry.get('path', '')}")


def _check_unreferenced(ws: Workspace, report: DoctorReport, grace_s: float) -> None:
    garbage = collect_garbage(ws, grace_s=grace_s, dry_run=True)
    if garbage.deleted:
        count = len(garbage.deleted)
        report.findings.append(Finding(
            "unreferenced_blobs", f"{count} blob(s)",
            f"{count} blob(s) ({garbage.freed_bytes:,} bytes) in the store are referred to "
            f"by nothing and older than {grace_s / 3600:g} h",
            f"`nbripple gc --grace {grace_s / 3600:g}` deletes them "
            "(`--dry-run` lists them first)"))


# -- executions -------------------------------------------------------------------------
def _check_executions(ws: Workspace, report: DoctorReport, now: datetime, fix: bool) -> None:
    running = ws.catalog.list_executions(status="running", limit=100_000)
    report.checked["running executions"] = len(running)
    host = socket.gethostname()
    stuck = [e for e in running if owner_gone(e, host, now)]
    fixed_ids = {e.id for e in sweep_dead_executions(ws.catalog, host=host)} if fix else set()
    for execution in stuck:
        why = ("its process ended" if execution.host in (None, host)
               else "its heartbeat stopped") + f" (pid {execution.pid} on {execution.host})"
        fixed = execution.id in fixed_ids
        what = execution.notebook or execution.label or execution.kind
        report.findings.append(Finding(
            "stuck_execution", execution.id,
            f"execution {execution.id} ({execution.kind}: {what}) is still 'running' but {why}",
            "`nbripple doctor --fix` marks it failed", fixed))


# -- plans ------------------------------------------------------------------------------
def plan_problem(plan: PlanRecord) -> str | None:
    """Why ``plan`` cannot fire (None: it can)."""
    spec: dict[str, Any] = plan.spec
    notebook = spec.get("notebook")
    if notebook and not Path(notebook).is_file():
        return f"its notebook {notebook} is gone"
    zone = spec.get("timezone") or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"its timezone {zone!r} is unknown"
    return schedule_problem(plan)


def _check_plans(ws: Workspace, report: DoctorReport, now: datetime) -> None:
    try:
        plans = ws.catalog.list_plans()
    except NbrippleError as exc:
        report.findings.append(Finding("plan_cannot_fire", "plans",
                                       f"the plans cannot be listed: {exc}", _catalog_fix(ws)))
        return
    report.checked["plans"] = len(plans)
    for plan in plans:
        problem = plan_problem(plan)
        if problem is None:
            continue
        state = "active" if plan.active else "inactive"
        report.findings.append(Finding(
            "plan_cannot_fire", plan.name,
            f"plan {plan.name} ({state}) cannot fire: {problem}",
            f"fix the plan in its plans file and `nbripple register FILE`, or "
            f"`nbripple deactivate {plan.name}`"))
