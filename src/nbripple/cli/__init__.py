"""The ``nbripple`` command line.

``main`` is the click group; the command modules at the bottom of this file register
their commands on it (``artifacts`` for init/ls/versions/show/search/load/card/push).
A new module adds ``@main.command()`` functions and one import line at the bottom.

Shared conventions, implemented once here:

* every error (an :class:`~nbripple.errors.NbrippleError`, bad usage, an OS error)
  ends the command with a non-zero exit code and ONE line ``error: <message>`` on
  stderr, never a traceback (``NBRIPPLE_DEBUG=1`` shows it for bugs);
* ``--json`` (:func:`json_option`) prints machine-readable JSON to stdout instead of
  rich tables: sizes in bytes, times as ISO 8601 in UTC;
* human output uses rich; sizes are human readable, times local ISO to seconds;
* ``--home`` picks the nbripple home (otherwise the usual resolution: NBRIPPLE_HOME,
  the nearest ``.nbripple/`` above the working directory, ``~/.nbripple``).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import click
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape

from ..config import find_home
from ..errors import EXIT_ERROR, NbrippleError, error_info
from ..errors import one_line as _one_line
from ..model import Execution
from ..parameters import parse_key_values
from ..service import Workspace

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2


# -- one-line errors ---------------------------------------------------------
def one_line(message: str) -> str:
    """Collapse a message onto one line (multi-line messages are joined with ' | ')."""
    return _one_line(message) or "unknown error"


class CliError(click.ClickException):
    """An error that ends a command with ``error: <message>`` on one stderr line."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {plain(one_line(self.format_message()))}", err=True, file=file)


class CliUsageError(CliError):
    """A one-line error for bad usage (exit code 2, as click uses)."""

    exit_code = EXIT_USAGE


@functools.cache
def _error_class(exit_code: int) -> type[CliError]:
    """The CliError that ends a command with ``exit_code`` (see errors.ERROR_TABLE)."""
    if exit_code == CliError.exit_code:
        return CliError
    return type(f"CliError{exit_code}", (CliError,), {"exit_code": exit_code})


def _as_cli_error(exc: Exception) -> CliError | None:
    """Translate any error worth one line into a CliError (None: let it through)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, click.exceptions.Exit | click.Abort | click.exceptions.NoArgsIsHelpError):
        return None  # --help, --version, Ctrl-C and `nbripple` alone: click's own handling
    if isinstance(exc, click.UsageError):
        message = exc.format_message()
        if exc.ctx is not None:
            message += f" (try '{exc.ctx.command_path} --help')"
        return CliUsageError(message)
    if isinstance(exc, click.ClickException):
        return CliError(exc.format_message())
    if isinstance(exc, NbrippleError):
        info = error_info(exc)
        return _error_class(info.exit_code)(info.message)
    if isinstance(exc, OSError):
        if exc.errno == errno.EPIPE:
            return None  # click handles a closed pipe (`nbripple ls | head`)
        where = f": {exc.filename}" if exc.filename else ""
        return CliError(f"{exc.strerror or exc}{where}")
    if os.environ.get("NBRIPPLE_DEBUG"):
        return None
    return CliError(
        f"unexpected {type(exc).__name__}: {exc} (this is a bug in nbripple; "
        "rerun with NBRIPPLE_DEBUG=1 to see the traceback and report it)"
    )


class NbrippleGroup(click.Group):
    """A click group whose errors all end as one ``error: ...`` line."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except Exception as exc:
            error = _as_cli_error(exc)
            if error is None:
                raise
            raise error from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            error = _as_cli_error(exc)
            if error is None:
                raise
            raise error from exc


# -- the group and its state -------------------------------------------------
@dataclass
class CliState:
    """What the group passes to its commands: the ``--home`` choice and the workspace."""

    home: Path | None = None
    _workspace: Workspace | None = field(default=None, repr=False)


@click.group(cls=NbrippleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The nbripple home directory (default: NBRIPPLE_HOME, the nearest .nbripple/ "
    "above the working directory, then ~/.nbripple).",
)
@click.version_option(package_name="nbripple", prog_name="nbripple")
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """nbripple: artifacts, lineage and reactive workflows for Jupyter notebooks.

    \b
    Examples:
      nbripple init
      nbripple push sales data/sales.csv -p region=eu
      nbripple ls
      nbripple show "nbripple://sales?region=eu"
      nbripple load sales@1 -o sales.parquet
    """
    ctx.obj = CliState(home=home)


def state(ctx: click.Context | None = None) -> CliState:
    """The CliState of the running command."""
    ctx = ctx or click.get_current_context()
    found = ctx.find_object(CliState)
    if found is None:  # a command invoked outside `main` (e.g. in a test)
        found = ctx.ensure_object(CliState)
    return found


def get_workspace(*, create: bool = False) -> Workspace:
    """The workspace of the running command, opened once and released at its end.

    Unless ``create`` is true, a home that does not exist yet is an error that says
    how to make one, so a typo in ``--home`` never creates an empty home.
    """
    ctx = click.get_current_context()
    st = state(ctx)
    if st._workspace is None:
        home = find_home(st.home)
        if not create and not home.is_dir():
            raise CliError(
                f"no nbripple home at {home}: run `nbripple init` to create one, or point "
                "--home / NBRIPPLE_HOME at an existing home"
            )
        workspace = Workspace(home)
        st._workspace = workspace
        # release the catalog file as soon as the command ends, for other processes
        ctx.find_root().call_on_close(workspace.release)
    return st._workspace


# -- options shared by commands ----------------------------------------------
def json_option(func: F) -> F:
    """Add ``--json``: print JSON to stdout instead of tables (for scripts)."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON to stdout (for scripts)."
    )(func)


def _parse_partitions(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, str]:
    try:
        return parse_key_values(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


def partition_option(help_text: str) -> Callable[[F], F]:
    """Add a repeatable ``-p/--partition KEY=VALUE`` option, parsed into a dict."""
    return click.option(
        "-p", "--partition", "partitions", multiple=True, metavar="KEY=VALUE",
        callback=_parse_partitions, help=help_text,
    )


# -- output ------------------------------------------------------------------
def console() -> Console:
    """A rich console on the current stdout (so click's test runner captures it)."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json_text(data))


def note(message: str) -> None:
    """A human-oriented remark on stderr (stdout stays clean for scripts)."""
    click.echo(plain(message), err=True)


def human_size(size: int | None) -> str:
    """``1234567`` → ``'1.2 MB'``."""
    return "" if size is None else decimal(size)


def local_time(value: datetime | None) -> str:
    """A time in the local zone, ISO to seconds: ``2026-05-01 14:03:22``."""
    if value is None:
        return ""
    return value.astimezone().replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")


def format_partitions(partitions: Mapping[str, str]) -> str:
    """``{'blessed': 'true'}`` → ``'blessed=true'``."""
    return ", ".join(f"{key}={value}" for key, value in partitions.items())


_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(value: object) -> str:
    """Catalog text safe for a terminal (not for rich markup): control characters (C0
    but newline and tab, DEL, C1), line separators and bidi overrides shown escaped.

    Example: ``plain("a\x1b[2Jb")`` → ``'a\\x1b[2Jb'``.
    """
    return _UNSAFE.sub(_escaped, str(value))


def text(value: object) -> str:
    """Catalog text safe for a terminal and for rich markup: :func:`plain`, then the
    markup escaped. Every string from the catalog that a command prints goes through it.
    """
    return escape(plain(value))


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON whose text holds no raw control character: json escapes C0;
    DEL, C1, line separators and bidi overrides are escaped as ``\\uXXXX`` too (outside
    strings JSON is ASCII, so only string contents change)."""
    dumped = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


def producer_label(execution: Execution | None, execution_id: str | None, *,
                   detailed: bool = False) -> str:
    """The producing execution for humans: ``'3f2a9c0d1e2b4f5a (external)'``.

    ``detailed`` adds its label or notebook: ``'(external: nbripple push)'``.
    """
    if execution_id is None:
        return ""
    if execution is None:
        return execution_id
    detail = execution.notebook or execution.label
    if execution.kind == "notebook" and execution.notebook:
        return f"{execution.id} ({Path(execution.notebook).name})" if not detailed else \
            f"{execution.id} (notebook: {execution.notebook})"
    if detailed and detail:
        return f"{execution.id} ({execution.kind}: {detail})"
    return f"{execution.id} ({execution.kind})"


def fail(message: str) -> CliError:
    """An error to raise from a command: ``raise fail("...")``."""
    return CliError(message)


# Command modules register themselves on `main`; keep these imports last.
from . import artifacts, config, doctor, lineage, plans, runs, serve  # noqa: E402, F401

__all__ = ["EXIT_ERROR", "CliError", "CliState", "CliUsageError", "get_workspace", "main"]
