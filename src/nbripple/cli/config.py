"""CLI command: `nbripple config` — every effective setting and where it came from."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from ..config import Entry, resolve_settings
from . import console, json_option, main, note, print_json, state, text


def entry_dict(entry: Entry) -> dict[str, Any]:
    """One setting as JSON: its value, the kind of source and the file or variable."""
    return {"value": entry.value, "source": entry.source.kind, "origin": entry.source.detail}


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str) if value else "{}"
    return str(value)


@main.command(name="config", short_help="Show the effective settings and their sources.")
@json_option
def config_command(as_json: bool) -> None:
    """Show every effective setting of the home and where it came from.

    A value comes from (highest first) an argument (--home), an environment variable
    (NBRIPPLE_HOME, NBRIPPLE_URL, NBRIPPLE_TOKEN), the home's config.toml, or the
    default. Tokens are never printed. Nothing is created or opened.

    \b
    Examples:
      nbripple config
      nbripple --home /data/team/.nbripple config --json
    """
    settings = resolve_settings(state().home)
    entries = list(settings.entries())
    if as_json:
        print_json({entry.key: entry_dict(entry) for entry in entries})
    else:
        table = Table(title=f"settings of {text(settings.home)}", title_justify="left")
        for column in ("setting", "value", "source"):
            table.add_column(column, overflow="fold", no_wrap=column == "setting")
        for entry in entries:
            table.add_row(entry.key, text(_shown(entry.value)), text(entry.source))
        console().print(table)
    if not settings.home.is_dir():
        note(f"no nbripple home at {settings.home} yet: these are the defaults "
             "(`nbripple init` creates one)")


__all__ = ["config_command", "entry_dict"]
