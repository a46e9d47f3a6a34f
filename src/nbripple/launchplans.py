"""Launch plans: named, versioned ways to run a notebook, fired by artifacts or a clock.

Example::

    plan = nr.LaunchPlan(
        "trigger_ops", notebook="ops.ipynb",
        trigger=nr.OnArtifact(blessed_model.query(blessed="true"),
                              inputs={"model": blessed_model}),   # the triggering version
    )
    nr.register(plan)
    nr.activate("trigger_ops")

A plan fires only while active, and only for versions committed after it was
activated. Registering a changed plan creates a new version; an active plan moves to
it. ``nbripple watch`` (or :class:`nbripple.Watcher`) does the firing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import sys
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nbformat

from .artifact import Artifact
from .errors import NbrippleError, NotFound
from .model import ArtifactVersion, Firing, PlanRecord
from .parameters import ParametersError, find_parameters_cell, parse_parameters
from .refs import Pinned, Query, parse, validate_name
from .service import Workspace, current
from .service.plans import schedule_problem

CATCHUP_MODES = ("latest", "all", "none")


class PlanError(NbrippleError, ValueError):
    """A launch plan is invalid; the message says what to change."""


class PlanNotFound(NotFound):
    """No plan of that name is registered."""


@dataclass(frozen=True)
class OnArtifact:
    """Fire when a new version of an artifact (or one matching a query) is committed.

    ``inputs`` maps notebook parameters to the trigger's :class:`Artifact` (meaning
    the version that fired), a :class:`Query` (resolved when it fires) or a literal.
    """

    trigger_on: Artifact | Query
    inputs: dict[str, Any] | None = None

    @property
    def query(self) -> Query:
        if isinstance(self.trigger_on, Artifact):
            return Query(self.trigger_on.name)
        if isinstance(self.trigger_on, Query):
            return self.trigger_on
        raise PlanError(
            f"OnArtifact needs an Artifact or a Query, got {type(self.trigger_on).__name__}"
        )


@dataclass
class LaunchPlan:
    """A named, versioned way to run a notebook (see the module docstring)."""

    name: str
    notebook: str | os.PathLike[str]
    parameters: dict[str, Any] | None = None
    trigger: OnArtifact | None = None
    schedule: str | None = None
    timezone: str = "UTC"
    catchup: str = "latest"
    max_chain_depth: int = 100
    concurrency: int = 1
    retries: int = 0
    retry_delay_s: float = 1.0
    kernel_name: str | None = None
    timeout: float | None = None
    description: str = ""
    base_dir: Path | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.base_dir is None:
            # relative notebook paths are relative to the file that declares the plan
            caller = sys._getframe(2).f_globals.get("__file__")
            self.base_dir = Path(caller).resolve().parent if caller else Path.cwd()

    def notebook_path(self) -> Path:
        """The notebook's absolute path: a relative one is looked up next to the file
        that declared the plan, then in the working directory."""
        path = Path(self.notebook).expanduser()
        if path.is_absolute():
            return path
        assert self.base_dir is not None
        candidate = self.base_dir / path
        return (candidate if candidate.exists() else Path.cwd() / path).resolve()

    def to_spec(self) -> dict[str, Any]:
        """Validate the plan and return its JSON spec (what the catalog stores)."""
        if not isinstance(self.name, str):
            raise PlanError(f"a launch plan's name must be a string, got "
                            f"{type(self.name).__name__} {self.name!r:.40}")
        validate_name(self.name)
        if not isinstance(self.notebook, str | os.PathLike) or not str(self.notebook):
            raise PlanError(f"plan {self.name}: notebook must be a path to a .ipynb file, "
                            f"got {type(self.notebook).__name__} {self.notebook!r:.40}")
        if self.parameters is not None and not isinstance(self.parameters, dict):
            raise PlanError(f"plan {self.name}: parameters must be a dict of parameter "
                            f"names to values, got {type(self.parameters).__name__}")
        if self.schedule is not None and not isinstance(self.schedule, str):
            raise PlanError(f"plan {self.name}: schedule must be a cron string such as "
                            f"'0 2 * * *', got {type(self.schedule).__name__}")
        path = self.notebook_path()
        if not path.is_file():
            looked = str(path) if Path(self.notebook).expanduser().is_absolute() else \
                f"{self.base_dir}/ (next to the plan's file) and {Path.cwd()}/"
            raise PlanError(f"plan {self.name}: notebook {self.notebook} not found "
                            f"(looked in {looked}); fix the notebook= path")
        declared = _notebook_parameters(path)
        trigger_spec: dict[str, Any] | None = None
        trigger_name: str | None = None
        if self.trigger is not None:
            if not isinstance(self.trigger, OnArtifact):
                raise PlanError(f"plan {self.name}: trigger must be nr.OnArtifact(...), "
                                f"got {type(self.trigger).__name__}")
            query = self.trigger.query
            if query.time_partition is not None:
                raise PlanError(
                    f"plan {self.name}: a trigger fires on new versions and cannot pin a "
                    "time partition; trigger on the artifact (or a partition query) and "
                    "read the version's time_partition in the notebook"
                )
            trigger_name = query.name
            trigger_spec = {"artifact": query.name, "partitions": dict(query.partitions),
                            "strict": query.strict, "time_partition": None}
        spec_inputs: dict[str, dict[str, Any]] = {}
        for key, value in (self.parameters or {}).items():
            spec_inputs[key] = _encode_input(self.name, key, value, trigger_name)
        for key, value in ((self.trigger.inputs if self.trigger else None) or {}).items():
            if key in spec_inputs:
                raise PlanError(f"plan {self.name}: parameter {key!r} is given both in "
                                "parameters and in the trigger's inputs; keep one")
            spec_inputs[key] = _encode_input(self.name, key, value, trigger_name)
        unknown = sorted(set(spec_inputs) - set(declared))
        if unknown:
            raise PlanError(
                f"plan {self.name}: {path.name} has no parameter {unknown[0]!r} "
                f"(its parameters: {', '.join(declared) or 'none'})"
            )
        if self.schedule is not None:
            _check_cron(self.name, self.schedule)
        try:
            if not isinstance(self.timezone, str) or not self.timezone:
                raise ValueError(self.timezone)
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PlanError(
                f"plan {self.name}: unknown timezone {self.timezone!r} "
                "(use an IANA name such as 'UTC' or 'Europe/Paris')"
            ) from exc
        if self.catchup not in CATCHUP_MODES:
            raise PlanError(f"plan {self.name}: catchup must be one of {CATCHUP_MODES}")
        for attr, low in (("max_chain_depth", 1), ("concurrency", 1), ("retries", 0)):
            value = getattr(self, attr)
            if not _is_int(value) or value < low:
                raise PlanError(f"plan {self.name}: {attr} must be an integer >= {low}, "
                                f"got {value!r:.40}")
        if not _is_number(self.retry_delay_s) or self.retry_delay_s < 0:
            raise PlanError(f"plan {self.name}: retry_delay_s must be a number of seconds "
                            f">= 0, got {self.retry_delay_s!r:.40}")
        if self.timeout is not None and (not _is_number(self.timeout) or self.timeout <= 0):
            raise PlanError(f"plan {self.name}: timeout must be a number of seconds > 0 "
                            f"(or None for no timeout), got {self.timeout!r:.40}")
        for attr in ("kernel_name", "description"):
            value = getattr(self, attr)
            if not isinstance(value, str) and not (attr == "kernel_name" and value is None):
                raise PlanError(f"plan {self.name}: {attr} must be a string"
                                f"{' or None' if attr == 'kernel_name' else ''}, "
                                f"got {type(value).__name__} {value!r:.40}")
        if self.kernel_name == "":
            raise PlanError(f"plan {self.name}: kernel_name is empty; name a Jupyter kernel "
                            "(e.g. 'python3') or leave it None")
        return {
            "name": self.name,
            "notebook": str(path),
            "inputs": spec_inputs,
            "trigger": trigger_spec,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "catchup": self.catchup,
            "max_chain_depth": self.max_chain_depth,
            "concurrency": self.concurrency,
            "retries": self.retries,
            "retry_delay_s": self.retry_delay_s,
            "kernel_name": self.kernel_name,
            "timeout": self.timeout,
            "description": self.description,
        }


def _notebook_parameters(path: Path) -> list[str]:
    try:
        nb = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise PlanError(f"{path} is not a readable notebook: {exc}") from exc
    index = find_parameters_cell(nb)
    if index is None:
        return []
    try:
        return list(parse_parameters(nb.cells[index].source, notebook=path.name))
    except ParametersError as exc:
        raise PlanError(str(exc)) from exc


def _encode_input(plan: str, key: str, value: Any, trigger_artifact: str | None
                  ) -> dict[str, Any]:
    if isinstance(value, Artifact):
        if trigger_artifact is None:
            raise PlanError(
                f"plan {plan}: parameter {key!r} names artifact {value.name} as the "
                "triggering version, but the plan has no artifact trigger; pass "
                f"{value.name}.query(...) to use its newest version"
            )
        if value.name != trigger_artifact:
            raise PlanError(
                f"plan {plan}: input {key!r} names artifact {value.name} as the triggering "
                f"version, but the plan triggers on {trigger_artifact}; use "
                f"{value.name}.query(...) to resolve the newest {value.name} instead"
            )
        return {"trigger": True}
    if isinstance(value, Query):
        return {"query": value.uri}
    if isinstance(value, ArtifactVersion | Pinned):
        return {"query": f"nbripple://{value.name}@{value.version}"}
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PlanError(
            f"plan {plan}: parameter {key!r} must be JSON data (str, number, bool, None, "
            f"lists and dicts of them), an Artifact or a Query; got {type(value).__name__} "
            f"{value!r:.60}"
        ) from exc
    return {"value": value}


def _check_cron(plan: str, expression: str) -> None:
    from croniter import croniter

    # croniter reads a sixth field as seconds; a plan's schedule has minute resolution
    fields = expression.split() if isinstance(expression, str) else []
    if not (len(fields) == 5 or (len(fields) == 1 and fields[0].startswith("@"))) \
            or not croniter.is_valid(expression):
        raise PlanError(
            f"plan {plan}: {expression!r} is not a valid cron schedule "
            "(five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *', "
            "or an alias such as '@daily')"
        )
    try:
        croniter(expression, datetime.now(UTC)).get_next(datetime)
    except Exception as exc:  # CroniterBadDateError: no date matches (e.g. 30 February)
        raise PlanError(
            f"plan {plan}: schedule {expression!r} never fires (no date matches it); "
            "fix the day-of-month / month fields"
        ) from exc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def spec_hash(spec: dict[str, Any]) -> str:
    """The hash that tells two versions of a plan apart."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def spec_parameters(spec: dict[str, Any], firing: Firing | None) -> dict[str, Any]:
    """The run parameters of a plan for one firing (queries stay queries: the runner
    resolves and records them).

    An input meaning "the triggering version" gets that version, pinned; when the run
    was not started by a version (a manual launch, a schedule tick) it gets the
    trigger's query instead, so the run uses the newest matching version.
    """
    out: dict[str, Any] = {}
    for key, item in spec["inputs"].items():
        if "value" in item:
            out[key] = item["value"]
        elif "query" in item:
            out[key] = parse(item["query"])
        elif item.get("trigger"):
            if firing is not None and firing.trigger_artifact is not None \
                    and firing.trigger_version is not None:
                out[key] = Pinned(firing.trigger_artifact, firing.trigger_version)
            elif spec.get("trigger"):
                out[key] = trigger_query(spec)
            else:
                raise PlanError(
                    f"plan {spec['name']}: parameter {key!r} is the triggering version, "
                    "which only an artifact trigger provides"
                )
    return out


def trigger_query(spec: dict[str, Any]) -> Query:
    """The query of a plan's artifact trigger (its spec must have one)."""
    trigger = spec["trigger"]
    return Query(trigger["artifact"], dict(trigger.get("partitions") or {}),
                 strict=bool(trigger.get("strict")))


def trigger_matches(spec: dict[str, Any], name: str, partitions: dict[str, str]) -> bool:
    """Does a committed version (name, partitions) match the plan's trigger?"""
    trigger = spec.get("trigger")
    if not trigger or trigger["artifact"] != name:
        return False
    wanted: dict[str, str] = trigger.get("partitions") or {}
    if trigger.get("strict"):
        return wanted == partitions
    return all(partitions.get(key) == value for key, value in wanted.items())


# -- the public verbs --------------------------------------------------------
@dataclass(frozen=True)
class Registration:
    """The outcome of registering one plan: its version, and whether it is new."""

    name: str
    version: int
    created: bool


def register(plan: LaunchPlan, *, workspace: Workspace | None = None) -> int:
    """Register (or update) a plan; returns its version. Unchanged plans keep theirs."""
    return register_all([plan], workspace=workspace)[0].version


def register_all(plans: Sequence[LaunchPlan], *, workspace: Workspace | None = None
                 ) -> list[Registration]:
    """Validate every plan, then register each (what ``nbripple register`` does).

    Nothing is registered when any plan is invalid or two share a name. A changed
    plan gets a new version (an active plan moves to it); an unchanged one keeps its
    version (``created`` is False).
    """
    ws = workspace or current()
    specs: dict[str, dict[str, Any]] = {}
    for plan in plans:
        if plan.name in specs:
            raise PlanError(f"two launch plans are named {plan.name!r}; plan names are unique")
        specs[plan.name] = plan.to_spec()
    done: list[Registration] = []
    for name, spec in specs.items():
        version, created = ws.catalog.register_plan(
            name, spec, spec_hash(spec))
        done.append(Registration(name, int(version), bool(created)))
    return done


def activate(name: str, *, workspace: Workspace | None = None) -> PlanRecord:
    """Activate a plan: from now on, new matching versions and schedule ticks fire it."""
    return _set_active(name, True, workspace)


def deactivate(name: str, *, workspace: Workspace | None = None) -> PlanRecord:
    """Deactivate a plan: nothing fires it until it is activated again."""
    return _set_active(name, False, workspace)


def _set_active(name: str, active: bool, workspace: Workspace | None) -> PlanRecord:
    ws = workspace or current()
    plan = ws.catalog.get_plan(name) if active else None
    problem = schedule_problem(plan) if plan is not None else None
    if problem is not None:  # registered before schedules were checked
        raise PlanError(f"plan {name} cannot be activated: {problem} "
                        "(fix the schedule in its plans file and register it again)")
    try:
        ws.catalog.set_plan_active(name, active)
    except KeyError as exc:
        raise PlanNotFound(_unknown(ws, name)) from exc
    return get_plan(name, workspace=ws)


def plans(*, workspace: Workspace | None = None) -> list[PlanRecord]:
    """Every registered plan with its state."""
    ws = workspace or current()
    found: list[PlanRecord] = ws.catalog.list_plans()
    return found


def get_plan(name: str, *, workspace: Workspace | None = None) -> PlanRecord:
    ws = workspace or current()
    found: PlanRecord | None = ws.catalog.get_plan(name)
    if found is None:
        raise PlanNotFound(_unknown(ws, name))
    return found


def firings(name: str, *, limit: int = 20, workspace: Workspace | None = None) -> list[Firing]:
    """The recent firings of a plan, newest first."""
    ws = workspace or current()
    result: list[Firing] = ws.catalog.firings(plan=name, limit=limit)
    return result


def launch(name: str, parameters: dict[str, Any] | None = None, *,
           workspace: Workspace | None = None) -> str:
    """Ask the watcher to run a plan now (a manual firing); returns the firing id."""
    ws = workspace or current()
    plan = get_plan(name, workspace=ws)
    if parameters:
        raise PlanError("launch takes the plan's parameters; register a new plan version "
                        "to change them")
    if not plan.active:
        # the watcher runs only active plans: a firing for an inactive one would be skipped
        raise PlanError(f"plan {name} is inactive; activate it first "
                        f"(`nbripple activate {name}`), then launch it")
    firing_id: str | None = ws.catalog.add_firing(
        plan=plan.name, plan_version=plan.version, dedup_key=f"manual:{uuid.uuid4().hex}",
        kind="manual", chain_depth=0,
    )
    assert firing_id is not None
    return firing_id


def _unknown(ws: Workspace, name: str) -> str:
    names = [p.name for p in plans(workspace=ws)]
    listing = ", ".join(names) if names else "none registered; `nbripple register plans.py`"
    return f"no launch plan named {name!r} (plans: {listing})"


def load_plans_file(path: str | os.PathLike[str]) -> list[LaunchPlan]:
    """Import a Python file and return every LaunchPlan defined at its top level.

    The file's directory is on ``sys.path`` while it runs (so it can import its
    ``contracts.py``), and relative notebook paths resolve next to the file.
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise PlanError(f"plans file {path} not found")
    module_name = f"nbripple_plans_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise PlanError(f"{path} is not an importable Python file (name it *.py)")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        raise PlanError(f"{path} called sys.exit({exc.code!r}) while it was imported"
                        f"{_where(exc, file)}; a plans file only defines plans, remove "
                        "the call") from exc
    except Exception as exc:
        raise PlanError(f"{path} failed to import{_where(exc, file)}: "
                        f"{type(exc).__name__}: {exc}") from exc
    finally:
        if str(file.parent) in sys.path:
            sys.path.remove(str(file.parent))
    found: list[LaunchPlan] = []
    for value in vars(module).values():
        if isinstance(value, LaunchPlan) and not any(value is seen for seen in found):
            found.append(value)
    if not found:
        raise PlanError(f"{path} defines no nr.LaunchPlan at its top level")
    return found


def _where(exc: BaseException, file: Path) -> str:
    """`` (line N)`` of the deepest frame of ``file`` in the traceback, if any."""
    if isinstance(exc, SyntaxError):
        return ""  # its message names the file and line already
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if frame.filename == str(file)]
    return f" (line {lines[-1]})" if lines else ""


def now_utc() -> datetime:
    return datetime.now(UTC)
