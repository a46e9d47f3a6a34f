"""CLI commands: `nbripple doctor` (the catalog checked against the store) and
`nbripple backup DEST` (a consistent copy of the catalog)."""

from __future__ import annotations

from pathlib import Path

import click

from ..service import wire
from ..service.backup import backup as backup_catalog
from ..service.doctor import diagnose
from ..service.gc import DEFAULT_GRACE_S
from . import console, get_workspace, human_size, json_option, main, print_json, text


@main.command()
@click.option("--fix", is_flag=True,
              help="Mend what is safe to mend: mark executions whose owner is gone failed.")
@click.option("--grace", "grace_h", type=click.FloatRange(min=0),
              default=DEFAULT_GRACE_S / 3600, show_default=True,
              help="Unreferenced blobs younger than this (hours) are not reported: another "
              "process may be about to commit them.")
@json_option
def doctor(fix: bool, grace_h: float, as_json: bool) -> None:
    """Check the catalog against the store; print each fault and the command that mends it.

    Exit code 0 when healthy, 1 when something was found (and not mended by --fix).

    \b
    Checks: versions whose blob is missing or corrupt (every blob is re-hashed), blobs
    nothing refers to, executions stuck 'running' whose process is gone, plans that
    cannot fire, and whether the catalog file opens at all.
    """
    report = diagnose(get_workspace(), fix=fix, grace_s=grace_h * 3600)
    if as_json:
        print_json(wire.doctor_report_dict(report))
    else:
        out = console()
        checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
        out.print(f"checked {text(report.home)}" + (f": {text(checked)}" if checked else ""))
        for finding in report.findings:
            mark = "[green]fixed[/]" if finding.fixed else "[red]✗[/]"
            out.print(f"{mark} {text(finding.problem)}")
            if not finding.fixed:
                out.print(f"    mend: {text(finding.fix)}")
        if report.healthy:
            out.print("[green]healthy[/]: nothing to mend")
    if not report.healthy:
        raise click.exceptions.Exit(1)


@main.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace an existing backup file.")
@json_option
def backup(dest: Path, overwrite: bool, as_json: bool) -> None:
    """Copy the catalog to DEST (a directory: DEST/catalog.duckdb; or a FILE.duckdb).

    The copy is consistent while other processes commit. To restore: stop the processes
    using the home, then copy it over <home>/catalog.duckdb (removing any
    catalog.duckdb.wal). The store's blobs are never rewritten: copy them with any tool
    (rsync -a <home>/store/ DEST/store/).
    """
    result = backup_catalog(get_workspace(), dest, overwrite=overwrite)
    if as_json:
        print_json(wire.backup_dict(result))
        return
    click.echo(str(result.path))
    click.echo(f"backed up {result.versions} version(s), {human_size(result.size)}; restore "
               f"by copying it over {get_workspace().home / 'catalog.duckdb'}", err=True)
