"""Artifact commands: init, ls, versions, show, search, load, card, push."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import click
from rich.markdown import Markdown
from rich.table import Table

from ..cards import Card, DataCard, ModelCard, render_html
from ..config import CONFIG_FILENAME, HOME_DIRNAME, init_home, init_home_at
from ..model import KINDS, ArtifactVersion, Execution
from ..service import Workspace, wire
from ..service.executions import load_external
from ..service.gc import collect_garbage
from ..service.wire import card_excerpt, decl_dict
from ..service.writing import PUSH_KINDS
from ..service.writing import push as push_path
from . import (
    console,
    fail,
    format_partitions,
    get_workspace,
    human_size,
    json_option,
    json_text,
    local_time,
    main,
    note,
    partition_option,
    plain,
    print_json,
    producer_label,
    state,
    text,
)

_NO_WRAP = frozenset({"name", "ref", "kind", "size", "created", "updated", "latest"})


# -- init --------------------------------------------------------------------
@main.command()
@click.argument("directory", required=False,
                type=click.Path(file_okay=False, path_type=Path))
@json_option
def init(directory: Path | None, as_json: bool) -> None:
    """Create DIRECTORY/.nbripple/ (default: the working directory) with a config.toml.

    With `nbripple --home PATH init` (or NBRIPPLE_HOME=PATH and no DIRECTORY), PATH
    itself becomes the home.
    """
    explicit = state().home
    if directory is None and explicit is None and os.environ.get("NBRIPPLE_HOME"):
        explicit = Path(os.environ["NBRIPPLE_HOME"])  # the home every other command uses
    if directory is None and explicit is not None:
        home, created = init_home_at(explicit)
        existed = not created
    else:
        base = directory or Path.cwd()
        target = base if base.name == HOME_DIRNAME else base / HOME_DIRNAME
        existed = (target / CONFIG_FILENAME).exists()
        home = init_home(base)
    if as_json:
        print_json(wire.home_dict(home, home / CONFIG_FILENAME, not existed))
        return
    if existed:
        click.echo(f"nbripple home already initialized at {home} (left unchanged)")
    else:
        click.echo(f"Initialized nbripple home at {home}")
    if home.name == HOME_DIRNAME:
        click.echo(f"nbripple uses it from any directory under {home.parent}; elsewhere set "
                   f"NBRIPPLE_HOME={home}")
    else:
        click.echo(f"Use it with --home {home} or NBRIPPLE_HOME={home}")


# -- listings ----------------------------------------------------------------
@main.command("ls")
@json_option
def ls(as_json: bool) -> None:
    """List the artifacts: partition keys, kind, latest version, description."""
    ws = get_workspace()
    found = ws.artifacts_with_latest()
    if as_json:
        print_json([decl_dict(decl, latest) for decl, latest in found])
        return
    if not found:
        note(f"no artifacts yet in {ws.home}; `nbripple push NAME PATH` or "
             "Artifact(...).create_from(...) adds one")
        return
    table = Table(title=f"artifacts in {text(ws.home)}", title_justify="left")
    for column in ("name", "partition keys", "kind", "latest", "updated", "description"):
        table.add_column(column, overflow="fold", no_wrap=column in _NO_WRAP)
    for decl, latest in found:
        info = decl_dict(decl, latest)
        keys = ", ".join(decl.partition_keys)
        if decl.time_partitioned:
            keys = ", ".join(filter(None, [keys, f"time ({decl.time_granularity})"]))
        table.add_row(
            text(decl.name), text(keys), info["kind"] or "",
            str(decl.latest_version or ""),
            local_time(latest.created_at) if latest else "",
            text(decl.description),
        )
    console().print(table)


class _Producers:
    """Executions looked up once per id, for the producer column."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._seen: dict[str, Execution | None] = {}

    def get(self, execution_id: str | None) -> Execution | None:
        if execution_id is None:
            return None
        if execution_id not in self._seen:
            self._seen[execution_id] = self._ws.find_execution(execution_id)
        return self._seen[execution_id]

    def label(self, version: ArtifactVersion) -> str:
        return producer_label(self.get(version.execution_id), version.execution_id)

    def as_json(self, version: ArtifactVersion) -> dict[str, Any]:
        return wire.version_with_producer(version, self.get(version.execution_id))


def _versions_table(title: str, versions: list[ArtifactVersion], producers: _Producers,
                    *, with_description: bool = False) -> Table:
    table = Table(title=title, title_justify="left")
    # search results describe themselves; version listings say who produced them
    columns = ["ref", "partitions", "kind", "size", "created"]
    columns.append("about" if with_description else "producer")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in _NO_WRAP,
                         justify="right" if column == "size" else "left")
    for v in versions:
        partitions = format_partitions(v.partitions)
        if v.time_partition is not None:
            when = f"time={local_time(v.time_partition)}"
            partitions = f"{partitions}, {when}" if partitions else when
        last = card_excerpt(v.card_markdown, 80) or v.description if with_description \
            else producers.label(v)
        table.add_row(text(v.ref), text(partitions), v.kind, human_size(v.size),
                      local_time(v.created_at), text(last))
    return table


@main.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Show at most N versions (newest first).")
@json_option
def versions(name: str, limit: int | None, as_json: bool) -> None:
    """List the versions of artifact NAME, newest first."""
    ws = get_workspace()
    found = ws.versions(name, limit)
    producers = _Producers(ws)
    if as_json:
        print_json([producers.as_json(v) for v in found])
        return
    if not found:
        note(f"{name} has no committed versions yet")
        return
    console().print(_versions_table(f"versions of {text(name)}", found, producers))


@main.command()
@click.argument("words", nargs=-1, metavar="[TEXT]...")
@partition_option("Only versions with this partition value (repeatable).")
@click.option("--kind", type=click.Choice(KINDS), default=None, help="Only this kind.")
@click.option("--all-versions", is_flag=True,
              help="Every matching version, not just the newest per artifact.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
def search(words: tuple[str, ...], partitions: dict[str, str], kind: str | None,
           all_versions: bool, limit: int, as_json: bool) -> None:
    """Search names, descriptions and cards (every word must match), newest first."""
    ws = get_workspace()
    found = ws.search(" ".join(words) or None, partitions=partitions, kind=kind,
                      latest_only=not all_versions, limit=limit)
    producers = _Producers(ws)
    if as_json:
        print_json([producers.as_json(v) for v in found])
        return
    if not found:
        note("no matching versions")
        return
    title = f"{len(found)} match{'es' if len(found) != 1 else ''}"
    console().print(_versions_table(title, found, producers, with_description=True))


# -- show --------------------------------------------------------------------
@main.command()
@click.argument("ref")
@json_option
def show(ref: str, as_json: bool) -> None:
    """Show one version in detail. REF: name@N, nbripple://name@N or a query URI.

    Showing does not record the version as consumed.
    """
    ws = get_workspace()
    version = ws.resolve(ref)
    producer = _Producers(ws).get(version.execution_id)
    if as_json:
        print_json(wire.version_with_producer(version, producer, card=True))
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    def row(label: str, value: str) -> None:
        if value:
            grid.add_row(label, value)

    row("ref", text(version.ref))
    row("uri", text(version.artifact_uri))
    row("description", text(version.description))
    row("partitions", text(format_partitions(version.partitions)) or "(none)")
    row("time partition", local_time(version.time_partition))
    row("kind", text(version.kind))
    row("python type", text(version.python_type))
    row("hash", version.content_hash)
    exact = f" ({version.size:,} bytes)" if version.size >= 1000 else ""
    row("size", human_size(version.size) + exact)
    row("stored at", text(version.uri or "inline in the catalog"))
    if version.kind == "table":
        row("rows", f"{version.num_rows:,}" if version.num_rows is not None else "")
        columns = ", ".join(f"{c['name']}: {c['type']}" for c in version.schema or [])
        row("schema", text(columns))
    elif version.kind == "file":
        row("file name", text(version.meta.get("filename", "")))
    elif version.kind == "directory":
        row("directory", text(version.meta.get("dirname", "")))
        row("files", str(version.meta.get("files", "")))
    elif version.kind == "value" and version.inline_value is not None:
        row("value", text(card_excerpt(version.inline_value, 200)))
    row("created", local_time(version.created_at))
    row("producer", text(producer_label(producer, version.execution_id, detailed=True)))
    if version.card_markdown:
        row(f"card ({version.card_type or 'card'})", text(card_excerpt(version.card_markdown)))
    console().print(grid)


# -- load --------------------------------------------------------------------
def _table_preview(version: ArtifactVersion, value: Any, rows: int, as_json: bool) -> None:
    import pyarrow as pa

    assert isinstance(value, pa.Table)
    if as_json:
        print_json(wire.table_preview_dict(version, value, rows))
        return
    head = value.slice(0, rows)
    table = Table()
    for name in value.column_names:
        table.add_column(text(name), overflow="fold")
    for record in head.to_pylist():
        table.add_row(*(text("" if cell is None else cell) for cell in record.values()))
    out = console()
    out.print(f"{text(version.ref)}: {value.num_rows:,} rows × {value.num_columns} columns")
    out.print(table)
    if value.num_rows > rows:
        note(f"showing {rows} of {value.num_rows:,} rows; `nbripple load {version.ref} "
             "-o FILE.parquet` writes all of them")


@main.command()
@click.argument("ref")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write the data here (a table as Parquet, a value as JSON, a file or "
              "directory as itself); an existing directory receives it under its own name.")
@click.option("--rows", type=click.IntRange(min=0), default=10, show_default=True,
              help="Rows of a table to preview when there is no --output.")
@json_option
def load(ref: str, output: Path | None, rows: int, as_json: bool) -> None:
    """Load a version: print a value or a table preview, or write it to --output.

    Files and directories print their local (cached) path. The version is recorded as
    consumed by an `external` execution labelled "nbripple load".
    """
    ws = get_workspace()
    version = ws.resolve(ref)
    if output is None and version.kind == "object":
        raise fail(f"{version.ref} is a pickled Python object; unpickling runs code chosen by "
                   f"its producer, so the CLI does not print it: write it with "
                   f"`nbripple load {version.ref} -o FILE.pickle`")
    if output is not None and not output.is_dir() and not output.parent.is_dir():
        raise fail(f"cannot write to {output}: the directory {output.parent} does not exist")
    value = load_external(ws, version, output=output,
                          as_="arrow" if version.kind == "table" and output is None else None)
    if output is not None or version.kind in ("file", "directory"):
        path = Path(value)
        if as_json:
            print_json(wire.path_dict(version, path))
        else:
            click.echo(plain(path))
        return
    if version.kind == "table":
        _table_preview(version, value, rows, as_json)
        return
    click.echo(json_text(value))


# -- card --------------------------------------------------------------------
def _make_card(markdown: str, card_type: str | None) -> Card:
    if card_type == "model":
        return ModelCard(markdown)
    if card_type == "data":
        return DataCard(markdown)
    return Card(markdown, card_type or "card")


def _read_card(source: IO[str]) -> str:
    """The Markdown of a card file; a clear error when it is not UTF-8 text."""
    try:
        return source.read()
    except UnicodeDecodeError as exc:
        name = getattr(source, "name", "the card file")
        where = "stdin" if name in ("-", "<stdin>") else name
        raise fail(f"the card {where} is not UTF-8 text ({exc.reason} at byte {exc.start}): "
                   "save it as UTF-8 and retry; nothing was written") from exc


@main.command()
@click.argument("ref")
@click.option("--set", "source", type=click.File("r", encoding="utf-8"), default=None,
              metavar="FILE", help="Add a new card revision from a Markdown FILE ('-': stdin).")
@click.option("--type", "card_type", type=click.Choice(["model", "data"]), default=None,
              help="With --set: a model or a data card (default: keep the current type).")
@click.option("--history", is_flag=True, help="List every revision of the card.")
@click.option("--html", is_flag=True, help="Print the card as sanitized HTML.")
@json_option
def card(ref: str, source: IO[str] | None, card_type: str | None, history: bool, html: bool,
         as_json: bool) -> None:
    """Print the card of a version (Markdown rendered), or set a new revision with --set.

    Earlier revisions are kept; --history lists them.
    """
    if source is not None and (history or html):
        raise click.UsageError("--set cannot be combined with --history or --html")
    if card_type is not None and source is None:
        raise click.UsageError("--type applies to --set only")
    if history and html:
        raise click.UsageError("--history and --html cannot be combined")
    ws = get_workspace()
    version = ws.resolve(ref)
    if source is not None:
        markdown = _read_card(source)
        revision = ws.set_card(version, _make_card(markdown, card_type or version.card_type))
        if as_json:
            print_json(wire.card_revision_dict(version, revision, markdown=False))
        else:
            click.echo(f"{version.ref}: card revision {revision.revision} "
                       f"({revision.card_type}) saved")
        return
    if history:
        revisions = ws.card_history(version)
        if as_json:
            print_json(wire.card_history_list(version, revisions))
            return
        if not revisions:
            note(f"{version.ref} has no card yet")
            return
        table = Table(title=f"card history of {text(version.ref)}", title_justify="left")
        for column in ("revision", "type", "created", "excerpt"):
            table.add_column(column, overflow="fold")
        for r in revisions:
            table.add_row(str(r.revision), text(r.card_type), local_time(r.created_at),
                          text(card_excerpt(r.markdown, 80)))
        console().print(table)
        return
    current = version.card_markdown
    if as_json:
        print_json(wire.card_dict(version))
        return
    if current is None:
        note(f"{version.ref} has no card; add one with `nbripple card {version.ref} "
             "--set CARD.md`")
        return
    if html:
        click.echo(plain(render_html(current)))
    else:
        console().print(Markdown(plain(current)))


# -- push --------------------------------------------------------------------
@main.command()
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@partition_option("Partition value of the new version (repeatable). A new artifact is "
                  "declared with these keys; a declared one needs exactly its keys.")
@click.option("--card", "card_file", type=click.File("r", encoding="utf-8"), default=None,
              metavar="FILE", help="Markdown card for the version ('-': stdin).")
@click.option("--card-type", type=click.Choice(["model", "data"]), default=None,
              help="The card is a model card or a data card.")
@click.option("--kind", type=click.Choice(PUSH_KINDS), default=None,
              help="Store as this kind (default: .parquet/.csv → table, other files → file, "
              "directories → directory).")
@click.option("--description", default=None,
              help="Description of a new artifact (kept from its first declaration).")
@click.option("--time-partition", default=None, metavar="ISO",
              help="Time partition (ISO date/time); a new artifact becomes time-partitioned "
              "by day.")
@click.option("--follow-symlinks", is_flag=True, default=False,
              help="Store what symbolic links point to (by default a link out of the tree, "
              "dangling or looping is refused; links inside a directory are kept as links).")
@json_option
def push(name: str, path: Path, partitions: dict[str, str], card_file: IO[str] | None,
         card_type: str | None, kind: str | None, description: str | None,
         time_partition: str | None, follow_symlinks: bool, as_json: bool) -> None:
    """Register PATH (a file, a directory, or a .parquet/.csv table) as a new version of NAME.

    The version is produced by an `external` execution labelled "nbripple push".
    Prints the new reference (name@N).
    """
    card_obj = _make_card(_read_card(card_file), card_type) if card_file is not None else None
    ws = get_workspace(create=True)
    pushed = push_path(ws, name, path, partitions=partitions, card=card_obj, kind=kind,
                       description=description, time_partition=time_partition, notify=note,
                       follow_symlinks=follow_symlinks)
    version, execution_id = pushed.version, pushed.execution_id
    if as_json:
        print_json(wire.version_dict(version))
        return
    click.echo(version.ref)
    rows = f"{version.num_rows:,} rows, " if version.num_rows is not None else ""
    note(f"pushed {path} as {version.kind} ({rows}{human_size(version.size)}) "
         f"under external execution {execution_id}")


# `nbripple pull REF -o PATH` reads as the counterpart of `push`.
main.add_command(load, name="pull")


@main.command()
@click.option("--grace", "grace_h", type=click.FloatRange(min=0), default=24.0,
              show_default=True, help="Keep unreferenced blobs younger than this (hours): "
              "another process may be about to commit them.")
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@json_option
def gc(grace_h: float, dry_run: bool, as_json: bool) -> None:
    """Delete store blobs that no version or execution refers to."""
    report = collect_garbage(get_workspace(), grace_s=grace_h * 3600, dry_run=dry_run)
    if as_json:
        print_json(wire.garbage_report_dict(report))
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(report.deleted)} blob(s), {human_size(report.freed_bytes)}; "
               f"{report.referenced} referenced, {report.kept_young} unreferenced but younger "
               f"than {grace_h:g} h")
