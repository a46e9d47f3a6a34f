"""The JSON shapes of nbripple's records, in one place: every ``--json`` of the CLI
uses them, and so will the REST API. Sizes are bytes, times ISO 8601 in UTC.

Example::

    json.dumps(version_dict(ws.resolve("sales@1")))
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cards import render_html
from ..errors import error_info
from ..model import ArtifactDecl, ArtifactVersion, CardRevision, Execution, Firing, PlanRecord
from .plans import RECENT, next_run, schedule_problem, trigger_text

if TYPE_CHECKING:
    from ..graph import LineageGraph
    from ..launchplans import Registration
    from .backup import BackupResult
    from .doctor import DoctorReport
    from .gc import GarbageReport
    from .launching import FormField, PlanForm, RunForm

JSON = dict[str, Any]


def iso_utc(value: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC, for JSON."""
    return None if value is None else value.isoformat()


def card_excerpt(markdown: str | None, limit: int = 200) -> str:
    """The first lines of a card, at most ``limit`` characters."""
    if not markdown:
        return ""
    flat = " ".join(line.strip() for line in markdown.strip().splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def home_dict(home: Path, config: Path, created: bool) -> JSON:
    """An nbripple home ``nbripple init`` made (or found)."""
    return {"home": str(home), "config": str(config), "created": created}


# -- artifacts and versions ------------------------------------------------------------
def version_dict(version: ArtifactVersion, *, card: bool = False) -> JSON:
    """A version (``card=True`` includes the full Markdown, else an excerpt)."""
    data: JSON = {
        "ref": version.ref,
        "uri": version.artifact_uri,
        "name": version.name,
        "version": version.version,
        "partitions": dict(version.partitions),
        "time_partition": iso_utc(version.time_partition),
        "kind": version.kind,
        "python_type": version.python_type,
        "hash": version.content_hash,
        "size": version.size,
        "blob_uri": version.uri,
        "schema": version.schema,
        "num_rows": version.num_rows,
        "meta": version.meta,
        "execution_id": version.execution_id,
        "created_at": iso_utc(version.created_at),
        "description": version.description,
        "card_type": version.card_type,
    }
    if card:
        data["card"] = version.card_markdown
    else:
        data["card_excerpt"] = card_excerpt(version.card_markdown)
    return data


def version_with_producer(version: ArtifactVersion, producer: Execution | None, *,
                          card: bool = False) -> JSON:
    """A version and the summary of the execution that produced it (None if unknown)."""
    return {**version_dict(version, card=card),
            "producer": execution_dict(producer) if producer else None}


def decl_dict(decl: ArtifactDecl, latest: ArtifactVersion | None) -> JSON:
    """An artifact declaration (and its latest version's kind and time)."""
    return {
        "name": decl.name,
        "partition_keys": list(decl.partition_keys),
        "time_partitioned": decl.time_partitioned,
        "time_granularity": decl.time_granularity if decl.time_partitioned else None,
        "kind": decl.kind or (latest.kind if latest else None),
        "pinned_kind": decl.kind,
        "latest_version": decl.latest_version,
        "latest_ref": latest.ref if latest else None,
        "updated_at": iso_utc(latest.created_at) if latest else None,
        "created_at": iso_utc(decl.created_at),
        "description": decl.description,
    }


def table_preview_dict(version: ArtifactVersion, table: Any, rows: int) -> JSON:
    """The first ``rows`` rows of a table version (``table``: a pyarrow Table)."""
    return {"ref": version.ref, "kind": "table", "num_rows": table.num_rows,
            "columns": table.column_names, "rows": table.slice(0, rows).to_pylist()}


def path_dict(version: ArtifactVersion, path: Path) -> JSON:
    """Where a version's data was written (or is cached)."""
    return {"ref": version.ref, "kind": version.kind, "path": str(path)}


# -- cards -----------------------------------------------------------------------------
def card_dict(version: ArtifactVersion) -> JSON:
    """A version's current card: Markdown and sanitized HTML (None without a card)."""
    current = version.card_markdown
    return {"ref": version.ref, "card_type": version.card_type, "markdown": current,
            "html": render_html(current) if current is not None else None}


def card_revision_dict(version: ArtifactVersion, revision: CardRevision, *,
                       markdown: bool = True) -> JSON:
    """One card revision (``markdown=False``: without its text, as a save reports it)."""
    data: JSON = {"ref": version.ref, "revision": revision.revision,
                  "card_type": revision.card_type,
                  "created_at": revision.created_at.isoformat()}
    if markdown:
        data["markdown"] = revision.markdown
    return data


def card_history_list(version: ArtifactVersion, revisions: list[CardRevision]) -> list[JSON]:
    """Every revision of a version's card, oldest first."""
    return [card_revision_dict(version, r) for r in revisions]


# -- executions ------------------------------------------------------------------------
def execution_dict(execution: Execution) -> JSON:
    """The summary of an execution (listings, producers, ``show``)."""
    return {
        "id": execution.id,
        "kind": execution.kind,
        "status": execution.status,
        "label": execution.label,
        "notebook": execution.notebook,
        "started_at": iso_utc(execution.started_at),
        "finished_at": iso_utc(execution.finished_at),
    }


def execution_row(execution: Execution) -> JSON:
    """An execution in a listing: the summary, duration, error and trigger."""
    return {**execution_dict(execution), "duration_s": execution.duration_s,
            "error": execution.error, "trigger": execution.trigger,
            "parent_id": execution.parent_id}


def full_execution_dict(execution: Execution) -> JSON:
    """Everything about an execution, with its inputs and outputs."""
    data = execution_dict(execution)
    data.update(
        {
            "duration_s": execution.duration_s,
            "parameters": execution.parameters,
            "requested": execution.requested,
            "notebook_hash": execution.notebook_hash,
            "output_notebook_hash": execution.output_notebook_hash,
            "inputs": [{"ref": i.ref, "parameter": i.parameter} for i in execution.inputs],
            "outputs": [v.ref for v in execution.outputs],
            "error": execution.error,
            "trigger": execution.trigger,
            "parent_id": execution.parent_id,
            "chain_depth": execution.chain_depth,
            "cwd": execution.cwd,
            "pid": execution.pid,
            "host": execution.host,
            "phases": execution.phases,
        }
    )
    return data


# -- plans and firings -----------------------------------------------------------------
def plan_summary(plan: PlanRecord, recent: list[Firing]) -> JSON:
    """One plan: state, versions, trigger, schedule, firings (``recent``: newest first)."""
    spec = plan.spec
    return {
        "name": plan.name,
        "state": "active" if plan.active else "inactive",
        "active": plan.active,
        "version": plan.active_version,
        "latest_version": plan.latest_version,
        "notebook": spec.get("notebook"),
        "trigger": trigger_text(spec),
        "schedule": spec.get("schedule"),
        "timezone": spec.get("timezone") or "UTC",
        "last_fired": iso_utc(recent[0].created_at) if recent else None,
        "next_run": iso_utc(next_run(plan)),
        "recent_results": [f.status for f in recent[:RECENT]],
        "stopped_reason": plan.stopped_reason or schedule_problem(plan),
        "max_chain_depth": spec.get("max_chain_depth"),
        "description": spec.get("description") or "",
    }


def registration_dict(registration: Registration, active: bool) -> JSON:
    """The outcome of registering a plan."""
    return {"name": registration.name, "version": registration.version,
            "created": registration.created, "active": active}


def launched_dict(plan: str, firing_id: str) -> JSON:
    """A manual firing just requested."""
    return {"plan": plan, "firing": firing_id}


def firing_dict(firing: Firing) -> JSON:
    """One firing of a plan."""
    return {
        "id": firing.id,
        "plan": firing.plan,
        "plan_version": firing.plan_version,
        "kind": firing.kind,
        "status": firing.status,
        "dedup_key": firing.dedup_key,
        "trigger_artifact": firing.trigger_artifact,
        "trigger_version": firing.trigger_version,
        "tick": iso_utc(firing.tick),
        "chain_depth": firing.chain_depth,
        "attempts": firing.attempts,
        "recoveries": firing.recoveries,
        "next_attempt_at": iso_utc(firing.next_attempt_at),
        "execution_id": firing.execution_id,
        "reason": firing.reason,
        "created_at": iso_utc(firing.created_at),
        "updated_at": iso_utc(firing.updated_at),
    }


# -- lineage, gc, errors ---------------------------------------------------------------
def lineage_dict(graph: LineageGraph) -> JSON:
    """A lineage graph: its root, direction, depth and cytoscape.js elements."""
    return {"root": graph.root, "direction": graph.direction, "depth": graph.depth,
            "elements": graph.to_dict()}


def garbage_report_dict(report: GarbageReport) -> JSON:
    """What a garbage collection found and deleted."""
    return {"referenced": report.referenced, "kept_young": report.kept_young,
            "deleted": report.deleted, "freed_bytes": report.freed_bytes,
            "dry_run": report.dry_run}


def doctor_report_dict(report: DoctorReport) -> JSON:
    """``nbripple doctor --json``: healthy, what was checked, each finding and its fix."""
    return {
        "home": str(report.home),
        "healthy": report.healthy,
        "checked": dict(report.checked),
        "findings": [{"check": f.check, "subject": f.subject, "problem": f.problem,
                      "fix": f.fix, "fixed": f.fixed} for f in report.findings],
    }


def backup_dict(result: BackupResult) -> JSON:
    """``nbripple backup --json``: the copy's path, size in bytes and version count."""
    return {"path": str(result.path), "size": result.size, "versions": result.versions}


def error_dict(exc: BaseException) -> JSON:
    """An error: ``{"error": "ArtifactNotFound", "message": "no artifact named ..."}``."""
    info = error_info(exc)
    return {"error": info.name, "message": info.message}


# -- the REST API ----------------------------------------------------------------------
def version_detail_dict(version: ArtifactVersion, producer: Execution | None,
                        consumers: list[Execution], snippet: str) -> JSON:
    """``GET versions/{name}/{n}``: a version (full card), the execution that produced
    it, the executions that consumed it and the line that loads it."""
    return {**version_with_producer(version, producer, card=True),
            "consumers": [execution_dict(e) for e in consumers], "snippet": snippet}


def card_view_dict(version: ArtifactVersion, revisions: list[CardRevision]) -> JSON:
    """``GET versions/{name}/{n}/card``: Markdown, sanitized HTML and every revision."""
    return {**card_dict(version), "history": card_history_list(version, revisions)}


def _plain(value: Any) -> Any:
    """Times in a watcher's state as ISO 8601 (everything else is JSON already)."""
    return iso_utc(value) if isinstance(value, datetime) else value


def watcher_state_dict(local: dict[str, Any] | None, live: list[dict[str, Any]]) -> JSON:
    """``GET watcher``: this server's own watcher (None when it runs none) and every
    watcher of the home whose heartbeat is recent."""
    return {"local": None if local is None else {k: _plain(v) for k, v in local.items()},
            "live": [{k: _plain(v) for k, v in w.items()} for w in live]}


def launched_execution_dict(execution: Execution) -> JSON:
    """``POST plans/{name}/launch``, ``executions/{id}/rerun|relaunch`` (202): the
    execution just queued, with the parameters it was asked for."""
    return {**execution_row(execution), "requested": execution.requested}


def form_field_dict(field: FormField) -> JSON:
    """One parameter of a launch form (see :class:`~.launching.FormField`)."""
    data: JSON = {"name": field.name, "type": field.type, "input": field.is_input,
                  "declared": field.declared, "source": field.source,
                  "plan_value": field.plan_value}
    if field.is_input:
        data.update(query=field.query, optional=field.optional,
                    value=field.resolved.ref if field.resolved else None,
                    resolved=version_dict(field.resolved) if field.resolved else None,
                    problem=field.problem, artifact=field.artifact,
                    choices=[choice_dict(v) for v in field.choices])
    else:
        data["value"] = field.value
    return data


def choice_dict(version: ArtifactVersion) -> JSON:
    """A version a form offers for an input: enough to tell it from the others."""
    return {"ref": version.ref, "version": version.version,
            "partitions": dict(version.partitions),
            "time_partition": iso_utc(version.time_partition),
            "created_at": iso_utc(version.created_at)}


def plan_form_dict(form: PlanForm) -> JSON:
    """``GET plans/{name}/form``: the plan, its notebook and kernel, and each parameter
    as a launch would set it now (``inputs``: the artifact inputs among them)."""
    fields = [form_field_dict(f) for f in form.fields]
    return {"plan": form.plan.name, "version": form.plan.version, "active": form.plan.active,
            "notebook": form.notebook, "kernel_name": form.kernel_name,
            "parameters": [f for f in fields if not f["input"]],
            "inputs": [f for f in fields if f["input"]]}


def live_dict(cursor: str, items: list[dict[str, Any]], reset: bool) -> JSON:
    """``GET live``: the cursor to send next, whether to reload everything (``reset``)
    and what was committed after the cursor sent."""
    return {"cursor": cursor, "reset": reset, "items": items}


def health_dict(home: Path, store_url: str | None = None) -> JSON:
    """``GET health``: the server answers, for this home, whose blobs are at
    ``store_url`` (clients of another machine write there; no credentials)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed: str | None = version("nbripple")
    except PackageNotFoundError:  # run from a source tree
        installed = None
    return {"status": "ok", "home": str(home), "version": installed, "store_url": store_url}


# -- the relaunch form and runs of a notebook file ----------------------------------------
def run_form_dict(form: RunForm, path: str | None = None) -> JSON:
    """``GET executions/{id}/form`` and ``GET notebooks/form``: the notebook and kernel,
    and each parameter as the run would set it now (as :func:`plan_form_dict`). A
    relaunch form names the execution, and gives each field the value the original
    ran with (``previous``); a notebook's form, the ``path`` it was asked for."""
    fields = [form_field_dict(f) for f in form.fields]
    data: JSON = {"notebook": form.notebook, "kernel_name": form.kernel_name}
    if path is not None:
        data["path"] = path
    if form.execution is not None:
        ran = form.execution.parameters
        for item in fields:
            item["previous"] = ran.get(item["name"])
        data["execution"] = execution_dict(form.execution)
    data.update(parameters=[f for f in fields if not f["input"]],
                inputs=[f for f in fields if f["input"]])
    return data
