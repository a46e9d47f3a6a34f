"""CLI commands for notebook runs: run, rerun, relaunch, executions, execution."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click
import nbformat
from rich.table import Table

from ..errors import NbrippleError
from ..model import Execution
from ..parameters import cli_parameters
from ..phases import timeline
from ..runner import RunCancelled
from ..runner import prepare as prepare_notebook
from ..runner import relaunch as relaunch_execution
from ..runner import rerun as rerun_execution
from ..runner import run as run_notebook
from ..service.wire import execution_row, full_execution_dict, iso_utc
from . import (
    console,
    get_workspace,
    json_option,
    json_text,
    local_time,
    main,
    note,
    print_json,
    text,
)

STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow",
                "cancelled": "magenta", "queued": "cyan"}


def _status(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def _report(execution: Execution, as_json: bool) -> None:
    if as_json:
        print_json(full_execution_dict(execution))
    else:
        _show(execution)
    if execution.status != "succeeded":
        sys.exit(1)


def _show(execution: Execution) -> None:
    out = console()
    out.print(f"[bold]execution {execution.id}[/] · {_status(execution.status)}")
    rows: list[tuple[str, str]] = [
        ("kind", execution.kind),
        ("kernel", _kernel(execution)),
        ("notebook", execution.notebook or ""),
        ("started", local_time(execution.started_at)),
        ("finished", local_time(execution.finished_at)),
        ("duration", f"{execution.duration_s:.2f} s" if execution.duration_s is not None else ""),
        ("trigger", ", ".join(f"{k}={v}" for k, v in (execution.trigger or {}).items())),
        ("parent", execution.parent_id or ""),
        ("parameters", ", ".join(f"{k}={v!r}" for k, v in execution.parameters.items())),
        ("inputs", ", ".join(
            f"{i.ref}" + (f" ({i.parameter})" if i.parameter else "") for i in execution.inputs
        )),
        ("outputs", ", ".join(v.ref for v in execution.outputs)),
    ]
    if execution.error:
        error = execution.error
        where = f" in cell {error['cell_index']}" if error.get("cell_index") is not None else ""
        rows.append(("error", f"{error.get('ename')}: {error.get('evalue')}{where}"))
    if execution.output_notebook_hash:
        rows.append(("notebook out", f"nbripple execution {execution.id} --notebook"))
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        if value:
            table.add_row(key, text(value))
    out.print(table)


def _timings(execution: Execution) -> None:
    """The phases of a run, from the triggering version's commit when there is one."""
    reference = None
    if execution.trigger_artifact and execution.trigger_version:
        with contextlib.suppress(NbrippleError):
            reference = get_workspace().resolve(
                f"{execution.trigger_artifact}@{execution.trigger_version}").created_at
    steps = timeline(execution.phases, reference)
    if not steps:
        note(f"execution {execution.id} recorded no phases (it ran before nbripple "
             "recorded them)")
        return
    table = Table(title=f"phases of execution {text(execution.id)}")
    for column, justify in (("phase", "left"), ("at", "right"), ("step", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for step in steps:
        table.add_row(text(step.phase.replace("_", " ")), f"{step.at_s * 1000:.0f} ms",
                      f"+{step.step_s * 1000:.0f} ms" if step.at_s else "")
    console().print(table)


def _kernel(execution: Execution) -> str:
    """The kernel that ran (recorded in the executed notebook's metadata)."""
    if execution.kind != "notebook" or not execution.output_notebook_hash:
        return ""
    try:
        nb = json.loads(execution.output_notebook.read_bytes()) if execution.output_notebook \
            else {}
    except (OSError, ValueError, NbrippleError):
        return ""
    meta = nb.get("metadata", {})
    name = meta.get("nbripple", {}).get("kernel_name") or meta.get("kernelspec", {}).get("name")
    return str(name or "")


@main.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("-p", "--parameters", "--parameter", "params", nargs=2, multiple=True,
              metavar="NAME VALUE",
              help="A parameter, read as papermill -p reads it: True/False/None, an int, a "
                   "float, else text. Artifact inputs take refs or nbripple:// URIs.")
@click.option("-r", "--parameters_raw", "--raw", "raw_params", nargs=2, multiple=True,
              metavar="NAME VALUE", help="A parameter whose VALUE is kept as text.")
@click.option("-f", "--parameters_file", "param_files", multiple=True, metavar="PATH",
              help="A YAML file of parameters.")
@click.option("-y", "--parameters_yaml", "param_yaml", multiple=True, metavar="YAML",
              help="Parameters as a YAML mapping.")
@click.option("-b", "--parameters_base64", "param_base64", multiple=True, metavar="BASE64",
              help="Parameters as a base64-encoded YAML mapping.")
@click.option("-k", "--kernel", "kernel_name", default=None, help="Kernel name (default: the "
              "notebook's kernelspec).")
@click.option("--cwd", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="Working directory (default: the notebook's directory).")
@click.option("--timeout", "--execution-timeout", "timeout", type=float, default=None,
              help="Per-cell timeout in seconds.")
@click.option("--start-timeout", "--start_timeout", "start_timeout", type=float, default=None,
              help="Seconds to wait for the kernel to start (default: [executor] "
                   "start_timeout_s, 60).")
@click.option("--run-timeout", "run_timeout", type=float, default=None,
              help="Fail the run if it takes longer, in seconds (default: [executor] "
                   "run_timeout_s, none).")
@click.option("--report-mode/--no-report-mode", default=False, help="Hide the cells' input.")
@click.option("--log-output/--no-log-output", default=False,
              help="Write the cells' output to stderr as they run.")
@click.option("--prepare-only/--prepare-execute", default=False,
              help="Print the notebook with its parameters injected; run nothing.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show papermill's progress bar on stderr.")
@json_option
def run(notebook: Path, params: tuple[tuple[str, str], ...],
        raw_params: tuple[tuple[str, str], ...], param_files: tuple[str, ...],
        param_yaml: tuple[str, ...], param_base64: tuple[str, ...], kernel_name: str | None,
        cwd: Path | None, timeout: float | None, start_timeout: float | None,
        run_timeout: float | None, report_mode: bool, log_output: bool, prepare_only: bool,
        progress: bool, as_json: bool) -> None:
    """Run NOTEBOOK as an nbripple task (exit code 1 if the notebook fails).

    Parameters are merged as papermill merges them: -b, -f, -y, then -p and -r.
    Ctrl-C or SIGTERM stops the run: the kernel is shut down, the run recorded as
    cancelled, its executed notebook kept.

    \b
    Examples:
      nbripple run ops.ipynb
      nbripple run ops.ipynb -p model blessed_model@3 -p threshold 0.5
      nbripple run ops.ipynb -y "regions: [eu, us]" --prepare-only
    """
    parameters = cli_parameters(params=params, raw=raw_params, yaml_texts=param_yaml,
                                files=param_files, base64_texts=param_base64)
    ws = get_workspace()
    if prepare_only:
        prepared = prepare_notebook(notebook, parameters, kernel_name=kernel_name, cwd=cwd,
                                    report_mode=report_mode, workspace=ws)
        click.echo(nbformat.writes(prepared))  # type: ignore[no-untyped-call]
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        execution = run_notebook(notebook, parameters, kernel_name=kernel_name, cwd=cwd,
                                 timeout=timeout, start_timeout=start_timeout,
                                 run_timeout=run_timeout,
                                 report_mode=report_mode, log_output=log_output,
                                 progress=progress and not as_json and not log_output,
                                 workspace=ws)
    except RunCancelled as stop:
        note(f"error: run {stop.execution_id} cancelled by {stop.signal_name}; its notebook is "
             f"kept (nbripple execution {stop.execution_id} --notebook)")
        sys.exit(143 if stop.signal_name == "SIGTERM" else 130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _report(execution, as_json)


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM before or after the kernel runs (the runner handles it while it runs).
    raise KeyboardInterrupt


@main.command()
@click.argument("execution_id")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
def rerun(execution_id: str, progress: bool, as_json: bool) -> None:
    """Run an execution's notebook snapshot again with the same pinned inputs."""
    ws = get_workspace()
    _report(rerun_execution(execution_id, workspace=ws, progress=progress and not as_json),
            as_json)


@main.command()
@click.argument("execution_id")
@click.option("--progress/--no-progress", default=True, show_default=True)
@json_option
def relaunch(execution_id: str, progress: bool, as_json: bool) -> None:
    """Run an execution's notebook as it is now, resolving smart defaults again."""
    ws = get_workspace()
    _report(relaunch_execution(execution_id, workspace=ws, progress=progress and not as_json),
            as_json)


@main.command()
@click.option("--notebook", default=None, help="Only runs of this notebook (a path).")
@click.option("--status", type=click.Choice(list(STATUS_STYLE)), default=None)
@click.option("--kind", type=click.Choice(["notebook", "interactive", "external"]),
              default=None)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
def executions(notebook: str | None, status: str | None, kind: str | None, limit: int,
               as_json: bool) -> None:
    """Recent executions, newest first."""
    ws = get_workspace()
    if notebook is not None and Path(notebook).exists():
        notebook = str(Path(notebook).resolve())
    found = ws.executions(notebook=notebook, status=status, kind=kind, limit=limit, sweep=True)
    if as_json:
        print_json([execution_row(e) for e in found])
        return
    if not found:
        note("no executions yet")
        return
    table = Table(title="executions")
    for column in ("id", "status", "kind", "notebook / label", "started", "duration", "trigger"):
        table.add_column(column)
    for e in found:
        what = Path(e.notebook).name if e.notebook else (e.label or "")
        duration = f"{e.duration_s:.1f} s" if e.duration_s is not None else ""
        trigger = (e.trigger or {}).get("type", "")
        table.add_row(e.id, _status(e.status), e.kind, text(what), local_time(e.started_at),
                      duration, text(trigger))
    console().print(table)


@main.command()
@click.argument("execution_id")
@click.option("--notebook", "notebook_out", is_flag=False, flag_value="-", default=None,
              metavar="[PATH]",
              help="Print the executed notebook (or save it to PATH).")
@click.option("--snapshot", "snapshot_out", is_flag=False, flag_value="-", default=None,
              metavar="[PATH]", help="Print the notebook as it was run (or save it to PATH).")
@click.option("--timings", is_flag=True, default=False,
              help="Print when the run reached each phase (detected, claimed, process "
                   "ready, kernel ready, cells done, committed).")
@json_option
def execution(execution_id: str, notebook_out: str | None, snapshot_out: str | None,
              timings: bool, as_json: bool) -> None:
    """One execution: status, timings, parameters, inputs, outputs, error, trigger."""
    ws = get_workspace()
    found = ws.execution(execution_id)
    if timings:
        _timings(found)
        return
    for wanted, source, what in ((notebook_out, found.output_notebook, "executed notebook"),
                                 (snapshot_out, found.notebook_snapshot, "notebook snapshot")):
        if wanted is None:
            continue
        if source is None:
            raise click.ClickException(f"execution {found.id} has no {what}")
        if wanted == "-":
            click.echo(json_text(json.loads(source.read_text(encoding="utf-8")), indent=1))
        else:
            Path(wanted).write_bytes(source.read_bytes())
            note(f"saved the {what} of {found.id} to {wanted}")
        return
    if as_json:
        print_json(full_execution_dict(found))
    else:
        _show(found)


__all__ = ["execution", "executions", "iso_utc", "relaunch", "rerun", "run"]
