"""IPython magics: ``%load_ext nbripple``, then ``%nbripple SUBCOMMAND ...``.

One magic with subcommands, like a CLI: search, show, lineage, run, load, card
(line and cell), watch, plans, help. Arguments are split with :mod:`shlex` and
parsed with :mod:`argparse`; a wrong subcommand or bad arguments print the usage,
and an nbripple error prints one line — never a traceback. ``%nbripple?`` and
``%nbripple help`` show :data:`HELP`.
"""

from __future__ import annotations

import argparse
import keyword
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from IPython.core.magic import Magics, line_cell_magic, magics_class

from .errors import NbrippleError, error_info, one_line
from .parameters import cli_parameters, parse_key_values

HELP = """\
%nbripple SUBCOMMAND [ARGS]: nbripple in IPython (load it with %load_ext nbripple)

  %nbripple search [TEXT ...] [KEY=VALUE ...] [--kind KIND] [--all] [--limit N]
      Versions whose name, description or card hold every word of TEXT and whose
      partitions include every KEY=VALUE (newest version per artifact unless --all).
  %nbripple show REF
      The artifact view of a version: tabs Overview / Object / Card / Lineage.
  %nbripple lineage REF [--depth N|all] [--up | --down] [--text]
      The lineage graph around a version or an execution id, drawn (one hop, up and
      down by default; click a node to walk on); --text prints it as a tree.
  %nbripple run NOTEBOOK.ipynb [-p NAME VALUE ...] [-r NAME VALUE ...] [-y YAML]
                [-f FILE] [-b BASE64] [-k NAME] [--timeout S] [--start-timeout S]
      Run a notebook as an nbripple task, its parameters read as `nbripple run` and
      papermill read them: -p VALUE is True/False/None, an int or a float when it is
      one, else text (blessed_model@3, true, [1, 2]); -r keeps text; -y/-f/-b YAML.
  %nbripple load REF [VAR]
      Load a version's value into the variable VAR (default: the artifact's name,
      dots as underscores); it is recorded as consumed by this kernel.
  %nbripple card REF
      Show a version's card, rendered (sanitized: no script runs).
  %%nbripple card REF [--type model|data|card]
      The cell's body (Markdown) becomes the version's new card; the old one is kept
      in its history.
  %nbripple watch start|stop|status [--poll SECONDS] [--grace SECONDS]
      A watcher in a background thread of this kernel: active launch plans fire on
      new versions and schedules while you work. stop waits up to --grace seconds
      (given at start) for running notebooks.
  %nbripple plans
      The launch plans: state, what fires them, their notebook.
  %nbripple help
      This text (%nbripple? shows it too).

REF is name@N, a bare name (its newest version) or a URI such as
nbripple://blessed_model?blessed=true. Errors print one line, never a traceback.
"""

SUBCOMMANDS = ("search", "show", "lineage", "run", "load", "card", "watch", "plans", "help")


class _UsageError(Exception):
    """Bad arguments: the message and the subcommand's usage line."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _HelpShown(Exception):
    """``-h`` printed a subcommand's help; nothing else to do."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser that reports errors instead of exiting the kernel."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message, self.format_usage().strip())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message, file=sys.stderr, end="")
        raise _HelpShown


def _depth(text: str) -> int | None:
    if text.lower() in ("all", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hops or 'all'") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the depth must be 0 or more hops")
    return value


def _parsers() -> dict[str, _Parser]:
    def parser(name: str, description: str) -> _Parser:
        return _Parser(prog=f"%nbripple {name}", description=description, add_help=True)

    search = parser("search", "Search versions by words and partitions.")
    search.add_argument("terms", nargs="*", metavar="TEXT|KEY=VALUE")
    search.add_argument("--kind", choices=("table", "file", "directory", "value", "object"))
    search.add_argument("--all", action="store_true", help="every version, not the newest")
    search.add_argument("--limit", type=int, default=50)

    show = parser("show", "The artifact view of a version.")
    show.add_argument("ref", metavar="REF")

    lineage = parser("lineage", "The lineage graph around a version or an execution.")
    lineage.add_argument("ref", metavar="REF")
    lineage.add_argument("--depth", type=_depth, default=1, metavar="N|all")
    way = lineage.add_mutually_exclusive_group()
    way.add_argument("--up", action="store_true", help="what it came from")
    way.add_argument("--down", action="store_true", help="what was made from it")
    lineage.add_argument("--text", action="store_true", help="print a tree, draw nothing")

    run = parser("run", "Run a notebook as an nbripple task.")
    run.add_argument("notebook", metavar="NOTEBOOK.ipynb")
    run.add_argument("-p", "--parameters", "--parameter", dest="parameter", nargs=2,
                     action="append", default=[], metavar=("NAME", "VALUE"),
                     help="read as papermill -p reads it")
    run.add_argument("-r", "--parameters_raw", dest="raw", nargs=2, action="append",
                     default=[], metavar=("NAME", "VALUE"), help="kept as text")
    run.add_argument("-f", "--parameters_file", dest="files", action="append", default=[],
                     metavar="PATH", help="a YAML file of parameters")
    run.add_argument("-y", "--parameters_yaml", dest="yaml", action="append", default=[],
                     metavar="YAML", help="a YAML mapping of parameters")
    run.add_argument("-b", "--parameters_base64", dest="base64", action="append", default=[],
                     metavar="BASE64", help="a base64-encoded YAML mapping")
    run.add_argument("-k", "--kernel", default=None, metavar="NAME")
    run.add_argument("--timeout", "--execution-timeout", dest="timeout", type=float,
                     default=None, metavar="SECONDS")
    run.add_argument("--start-timeout", dest="start_timeout", type=float, default=None,
                     metavar="SECONDS")

    load = parser("load", "Load a version into a variable.")
    load.add_argument("ref", metavar="REF")
    load.add_argument("var", nargs="?", metavar="VAR")

    card = parser("card", "Show a card, or (as %%nbripple card) set it from the cell.")
    card.add_argument("ref", metavar="REF")
    card.add_argument("--type", choices=("model", "data", "card"), default=None)

    watch = parser("watch", "A watcher in a background thread of this kernel.")
    watch.add_argument("action", choices=("start", "stop", "status"))
    watch.add_argument("--poll", type=float, default=0.5, metavar="SECONDS")
    watch.add_argument("--grace", type=float, default=30.0, metavar="SECONDS")

    plans = parser("plans", "The launch plans.")
    help_ = parser("help", "Every subcommand.")
    return {"search": search, "show": show, "lineage": lineage, "run": run, "load": load,
            "card": card, "watch": watch, "plans": plans, "help": help_}


def variable_name(artifact: str) -> str:
    """The default variable for ``%nbripple load``: ``etl.daily-sales`` → ``etl_daily_sales``."""
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in artifact)
    if not name.isidentifier() or keyword.iskeyword(name):
        name = f"{name}_"
    return name


@magics_class
class NbrippleMagics(Magics):
    """The ``%nbripple`` magic. ``watcher`` is the kernel's watcher (None until
    ``%nbripple watch start``)."""

    def __init__(self, shell: Any = None) -> None:
        super().__init__(shell)
        self.watcher: Any = None  # nbripple.watcher.Watcher, imported when first started
        self._parsers = _parsers()
        self._handlers: dict[str, Callable[[argparse.Namespace, str | None], Any]] = {
            "search": self._search, "show": self._show, "lineage": self._lineage,
            "run": self._run, "load": self._load, "card": self._card, "watch": self._watch,
            "plans": self._plans, "help": self._help,
        }

    @line_cell_magic
    def nbripple(self, line: str, cell: str | None = None) -> Any:
        """(replaced by HELP below the class)"""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return self._usage(f"cannot split the arguments: {exc} (close the quote)")
        if not words:
            print(HELP)
            return None
        sub, rest = words[0], words[1:]
        if sub in ("-h", "--help"):
            sub = "help"
        if sub not in self._handlers:
            return self._usage(f"unknown subcommand {sub!r}; the subcommands are "
                               f"{', '.join(SUBCOMMANDS)}")
        if cell is not None and sub != "card":
            return self._usage(f"%%nbripple takes only the card subcommand, not {sub!r}; "
                               f"write %nbripple {sub} on a line of its own")
        try:
            args = self._parsers[sub].parse_args(rest)
        except _HelpShown:
            return None
        except _UsageError as exc:
            return self._usage(str(exc), exc.usage)
        try:
            return self._handlers[sub](args, cell)
        except NbrippleError as exc:
            print(f"nbripple {sub}: {error_info(exc).message}", file=sys.stderr)
            return None
        except ValueError as exc:  # a bad argument the parser could not see (a VAR name)
            print(f"nbripple {sub}: {one_line(str(exc)) or type(exc).__name__}",
                  file=sys.stderr)
            return None

    @staticmethod
    def _usage(message: str, usage: str | None = None) -> None:
        print(f"nbripple: {message}", file=sys.stderr)
        print(usage or "usage: %nbripple SUBCOMMAND [ARGS]; %nbripple help lists them",
              file=sys.stderr)

    # -- subcommands --------------------------------------------------------------------
    def _search(self, args: argparse.Namespace, cell: str | None) -> Any:
        from .api import search

        words = [t for t in args.terms if "=" not in t]
        partitions = parse_key_values(t for t in args.terms if "=" in t)
        return search(" ".join(words) or None, partitions=partitions, kind=args.kind,
                      latest_only=not args.all, limit=args.limit)

    def _show(self, args: argparse.Namespace, cell: str | None) -> Any:
        from .widgets.artifact_view import show

        return show(args.ref)

    def _lineage(self, args: argparse.Namespace, cell: str | None) -> Any:
        from .api import lineage

        direction = "up" if args.up else "down" if args.down else "both"
        graph = lineage(args.ref, depth=args.depth, direction=direction)
        if args.text:
            print(graph.to_text())
            return None
        return graph.widget()

    def _run(self, args: argparse.Namespace, cell: str | None) -> Any:
        from .runner import run

        parameters = cli_parameters(params=args.parameter, raw=args.raw, yaml_texts=args.yaml,
                                    files=args.files, base64_texts=args.base64)
        execution = run(args.notebook, parameters, kernel_name=args.kernel,
                        timeout=args.timeout, start_timeout=args.start_timeout)
        return execution

    def _load(self, args: argparse.Namespace, cell: str | None) -> Any:
        from .service import current

        if args.var is not None and (not args.var.isidentifier() or keyword.iskeyword(args.var)):
            raise ValueError(f"{args.var!r} is not a Python variable name")
        assert self.shell is not None, "the magic runs in an IPython shell"
        ws = current()
        version = ws.resolve(args.ref)
        value = ws.load(version)
        name = args.var or variable_name(version.name)
        self.shell.user_ns[name] = value
        print(f"{name} = {version.ref} ({version.kind}, {type(value).__name__})")
        return None

    def _card(self, args: argparse.Namespace, cell: str | None) -> Any:
        from .api import card
        from .cards import Card
        from .service import current

        if cell is None:
            if args.type is not None:
                raise ValueError("--type applies to %%nbripple card (setting a card) only")
            return card(args.ref)
        if not cell.strip():
            raise ValueError(f"the cell is empty: write the card's Markdown under "
                             f"%%nbripple card {args.ref}")
        ws = current()
        version = ws.resolve(args.ref)
        card_type = args.type or version.card_type or "card"
        revision = ws.set_card(version, Card(cell, card_type))
        print(f"card revision {revision.revision} saved on {version.ref}")
        return card(version.ref)

    def _watch(self, args: argparse.Namespace, cell: str | None) -> Any:
        from .launchplans import plans
        from .service import current

        running = self.watcher is not None and self.watcher.is_running
        if args.action == "start":
            if running:
                print(f"the watcher {self.watcher.id} is already running in this kernel")
                return None
            from .watcher import Watcher

            self.watcher = Watcher(workspace=current(), poll_interval=args.poll,
                                   grace_period_s=args.grace).start()
            active = [p.name for p in plans() if p.active]
            print(f"watcher {self.watcher.id} started in this kernel on "
                  f"{self.watcher.ws.home}; active plans: {', '.join(active) or 'none'} "
                  "(%nbripple watch stop stops it)")
        elif args.action == "stop":
            if not running:
                print("no watcher is running in this kernel (%nbripple watch start)")
                return None
            print(f"stopping the watcher {self.watcher.id} (running notebooks get up to "
                  f"{self.watcher.grace_period_s:g} s to finish)")
            self.watcher.stop()
            print(f"watcher {self.watcher.id} stopped")
        else:
            if not running:
                print("no watcher is running in this kernel (%nbripple watch start)")
                return None
            active = [p.name for p in plans() if p.active]
            runs = [e for e in current().executions(status="running", limit=100)
                    if e.kind == "notebook"]
            print(f"watcher {self.watcher.id} running on {self.watcher.ws.home}: "
                  f"{self.watcher.passes} passes; active plans: {', '.join(active) or 'none'}; "
                  f"running notebooks: {len(runs)}")
        return None

    def _plans(self, args: argparse.Namespace, cell: str | None) -> Any:
        from .launchplans import plans
        from .service.plans import fires_on

        records = plans()
        if not records:
            print("no launch plans yet: nr.register(nr.LaunchPlan(...)) or "
                  "`nbripple register plans.py`")
            return None
        rows = [("name", "state", "version", "fires on", "notebook")]
        for plan in records:
            spec = plan.spec
            state = "active" if plan.active else "inactive"
            if plan.stopped_reason:
                state += " (stopped)"
            rows.append((plan.name, state, str(plan.active_version), fires_on(spec),
                         Path(str(spec.get("notebook", ""))).name))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                  .rstrip())
        return None

    def _help(self, args: argparse.Namespace, cell: str | None) -> Any:
        print(HELP)
        return None


# `%nbripple?` shows the magic's docstring: make it the full help.
NbrippleMagics.nbripple.__doc__ = HELP


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%nbripple`` magic (``%load_ext nbripple``)."""
    ipython.register_magics(NbrippleMagics(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """Stop the kernel's watcher, if ``%nbripple watch start`` started one."""
    magics = ipython.magics_manager.registry.get(NbrippleMagics.__name__)
    if magics is not None and magics.watcher is not None and magics.watcher.is_running:
        magics.watcher.stop()
