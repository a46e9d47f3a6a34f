"""CLI command: `nbripple lineage REF` — the lineage around a version or an execution."""

from __future__ import annotations

import click

from ..service.wire import lineage_dict
from . import get_workspace, json_option, main, plain, print_json


def _depth(value: str) -> int | None:
    if value.lower() in ("all", "none", "inf"):
        return None
    try:
        depth = int(value)
    except ValueError as exc:
        raise click.BadParameter(f"expected a number of hops or 'all', got {value!r}") from exc
    if depth < 1:
        raise click.BadParameter("depth must be at least 1 (or 'all')")
    return depth


@main.command()
@click.argument("ref")
@click.option("--depth", "depth_text", default="1", show_default=True, metavar="N|all",
              help="How many hops to walk; 'all' walks the whole graph.")
@click.option("--up", "direction", flag_value="up", help="Only what REF came from.")
@click.option("--down", "direction", flag_value="down", help="Only what was made from REF.")
@json_option
def lineage(ref: str, depth_text: str, direction: str | None, as_json: bool) -> None:
    """Show the lineage of REF (a version ref/URI or an execution id) as a tree.

    \b
    Examples:
      nbripple lineage prediction@1 --depth all --up
      nbripple lineage "nbripple://blessed_model?blessed=true" --down
      nbripple lineage 3f2a9c0d --json
    """
    graph = get_workspace().lineage(ref, depth=_depth(depth_text),
                                    direction=direction or "both")
    if as_json:
        print_json(lineage_dict(graph))
    else:
        click.echo(plain(graph.to_text()))
