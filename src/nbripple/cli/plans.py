"""CLI commands for launch plans: register, plans, activate, deactivate, launch, watch."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.table import Table

from .. import launchplans as lp
from ..service import Workspace
from ..service.plans import RECENT, fires_on, live_watchers, next_run, overview, recent_firings
from ..service.wire import launched_dict, plan_summary, registration_dict
from ..watcher import Watcher
from . import console, get_workspace, json_option, local_time, main, note, print_json, text

RESULT_MARKS = {
    "succeeded": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "running": "[yellow]▶[/]",
    "pending": "[cyan]…[/]",
    "cancelled": "[magenta]⊘[/]",
    "skipped": "[dim]–[/]",
}


# -- what `nbripple plans` shows ---------------------------------------------------
def _short_time(value: str | None) -> str:
    """A local time for a narrow column: ``14:03:22`` today, ``05-01 14:03`` this
    year, else ``2025-05-01``."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value).astimezone()
    today = datetime.now().astimezone().date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%m-%d %H:%M" if moment.year == today.year else "%Y-%m-%d")


def _hint_no_watcher(ws: Workspace) -> None:
    watchers = live_watchers(ws)
    if not watchers:
        note("no watcher is running on this home: start one with `nbripple watch`")
    _warn_failing(watchers)


def _warn_failing(watchers: list[dict[str, Any]]) -> None:
    for watcher in watchers:
        if watcher.get("consecutive_failures"):
            note(f"the watcher on {watcher['host']} (pid {watcher['pid']}) is failing: "
                 f"{watcher['consecutive_failures']} pass(es) in a row, last: "
                 f"{text(watcher.get('last_error') or 'unknown error')}; it keeps retrying")


# -- commands ----------------------------------------------------------------------
@main.command(short_help="Register the launch plans of a plans.py.")
@click.argument("plans_file", metavar="PLANS.py",
                type=click.Path(dir_okay=False, path_type=Path))
@json_option
def register(plans_file: Path, as_json: bool) -> None:
    """Register every LaunchPlan defined in PLANS.py (a changed plan gets a new version).

    Nothing is registered if any plan in the file is invalid. An active plan moves to
    its new version; a new plan starts inactive (see `nbripple activate`).

    \b
    Example:
      nbripple register notebooks/blessed_model/plans.py
    """
    found = lp.load_plans_file(plans_file)
    ws = get_workspace()
    done = lp.register_all(found, workspace=ws)
    states = {p.name: p.active for p in lp.plans(workspace=ws)}
    if as_json:
        print_json([registration_dict(r, states.get(r.name, False)) for r in done])
        return
    out = console()
    for r in done:
        change = f"new version {r.version}" if r.created else f"unchanged (version {r.version})"
        state = "active" if states.get(r.name) else "inactive"
        out.print(f"[bold]{text(r.name)}[/]: {change}, {state}")
    inactive = [r.name for r in done if not states.get(r.name)]
    if inactive:
        note(f"activate with `nbripple activate {inactive[0]}`"
             + (f" (and {len(inactive) - 1} more)" if len(inactive) > 1 else ""))


@main.command(short_help="List launch plans: state, firings, next run.")
@json_option
def plans(as_json: bool) -> None:
    """Launch plans: state, version, trigger, schedule, last fired, next run, results.

    Recent results are the statuses of the newest firings, newest first:
    ✓ succeeded, ✗ failed, ▶ running, … pending, ⊘ cancelled, – skipped.
    """
    ws = get_workspace()
    found = overview(ws)
    rows = [plan_summary(plan, recent) for plan, recent in found]
    if as_json:
        print_json(rows)
        return
    if not rows:
        note("no launch plans yet: `nbripple register plans.py`")
        return
    scheduled = any(row["schedule"] for row in rows)
    table = Table(title="launch plans", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("state")
    table.add_column("version", justify="right")
    table.add_column("fires on", overflow="fold")
    table.add_column("last fired")
    if scheduled:
        table.add_column("next run")
    table.add_column("recent", no_wrap=True)
    for (plan, _), row in zip(found, rows, strict=True):
        state = "[green]active[/]" if row["active"] else "[dim]inactive[/]"
        if row["stopped_reason"]:
            state += " [yellow](stopped)[/]"
        version = str(row["version"])
        if row["latest_version"] != row["version"]:
            version += f" (latest {row['latest_version']})"
        cells = [text(row["name"]), state, version, text(fires_on(plan.spec)),
                 _short_time(row["last_fired"])]
        if scheduled:
            cells.append(_short_time(row["next_run"]))
        cells.append(" ".join(RESULT_MARKS.get(s, text(s)) for s in row["recent_results"]))
        table.add_row(*cells)
    out = console()
    out.print(table)
    for row in rows:
        if row["stopped_reason"]:
            out.print(f"[yellow]{text(row['name'])}[/]: {text(row['stopped_reason'])}")
    _warn_failing(live_watchers(ws))


@main.command(short_help="Activate a launch plan (from now on).")
@click.argument("name")
@json_option
def activate(name: str, as_json: bool) -> None:
    """Activate plan NAME: versions committed and schedule ticks from now on fire it."""
    ws = get_workspace()
    was_active = lp.get_plan(name, workspace=ws).active
    record = lp.activate(name, workspace=ws)
    if as_json:
        print_json(plan_summary(record, recent_firings(ws, name)))
        return
    if was_active:
        console().print(f"{text(name)} is already active (version {record.active_version})")
    else:
        console().print(f"activated [bold]{text(name)}[/] (version {record.active_version})")
        if record.spec.get("trigger") or record.spec.get("schedule"):
            upcoming = next_run(record)
            note(f"from now on it fires on {fires_on(record.spec)}"
                 + (f"; next run {local_time(upcoming)}" if upcoming else ""))
        else:
            note(f"it has no trigger or schedule: run it with `nbripple launch {name}`")
    _hint_no_watcher(ws)


@main.command(short_help="Deactivate a launch plan.")
@click.argument("name")
@json_option
def deactivate(name: str, as_json: bool) -> None:
    """Deactivate plan NAME: nothing fires it until it is activated again."""
    ws = get_workspace()
    was_active = lp.get_plan(name, workspace=ws).active
    record = lp.deactivate(name, workspace=ws)
    if as_json:
        print_json(plan_summary(record, recent_firings(ws, name)))
    elif was_active:
        console().print(f"deactivated [bold]{text(name)}[/]")
    else:
        console().print(f"{text(name)} is already inactive")


@main.command(short_help="Ask the watcher to run a launch plan now.")
@click.argument("name")
@json_option
def launch(name: str, as_json: bool) -> None:
    """Ask the watcher to run plan NAME now, with its parameters (a manual firing)."""
    ws = get_workspace()
    firing_id = lp.launch(name, workspace=ws)
    if as_json:
        print_json(launched_dict(name, firing_id))
    else:
        console().print(f"launched [bold]{text(name)}[/]: firing {firing_id} is pending "
                        "until a watcher starts it")
    _hint_no_watcher(ws)


@main.command(short_help="Fire active launch plans (foreground).")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None,
              help="Runs at once (default: the number of cores).")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=0.05,
              show_default=True, help="Seconds between checks of the catalog files.")
@click.option("--grace-period", type=click.FloatRange(min=0), default=30.0,
              show_default=True,
              help="On SIGINT/SIGTERM, seconds running executions may finish before they "
                   "are cancelled.")
def watch(max_parallel: int | None, poll_interval: float, grace_period: float) -> None:
    """Fire active launch plans in the foreground until SIGINT/SIGTERM.

    New artifact versions that match a plan's trigger, due schedule ticks and
    `nbripple launch` requests start notebook runs; firings are logged to stderr.
    """
    ws = get_workspace()
    _log_to_stderr()
    watcher = Watcher(workspace=ws, max_parallel=max_parallel, poll_interval=poll_interval,
                      grace_period_s=grace_period)
    watcher.run_forever()


def _log_to_stderr() -> None:
    """Log the watcher at INFO to this process's stderr, one short line per event."""
    logger = logging.getLogger("nbripple.watcher")
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        if getattr(handler, "_nbripple_cli", False):
            logger.removeHandler(handler)  # a previous `watch` in this process
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           datefmt="%H:%M:%S"))
    handler._nbripple_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False


__all__ = [
    "RECENT",
    "activate",
    "deactivate",
    "launch",
    "plans",
    "register",
    "watch",
]
