"""Reading a notebook's ``parameters`` cell without executing it.

A parameter is an **artifact input** when its default is

* an artifact URI string: ``model = "nbripple://blessed_model?blessed=true"``;
* an ``nr.query(...)`` (or ``nbripple.query(...)``) call with literal arguments:
  ``model = nr.query("blessed_model", blessed="true")``;
* ``None`` followed by a comment holding a URI — an **optional** input, which
  resolves to ``None`` when nothing matches (the first run of a self-feeding loop):
  ``previous = None  # nbripple://largest_baillie_wagstaff``.

The cell is parsed with :mod:`ast`; nothing in it is evaluated.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NbrippleError
from .refs import SCHEME, parse

PARAMETERS_TAG = "parameters"
_URI_IN_COMMENT = re.compile(r"(nbripple://\S+)")
_QUERY_MODULES = {"nr", "nbripple"}


_JSON_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string",
                               list: "array", tuple: "array", dict: "object"}
_JSON_CHECKS: dict[str, Any] = {
    "boolean": lambda v: isinstance(v, bool), "integer": lambda v: isinstance(v, int),
    "number": lambda v: isinstance(v, int | float), "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list), "object": lambda v: isinstance(v, dict),
}


def json_text(value: Any) -> str:
    """``value`` as JSON text, for messages (its repr when it is not JSON data)."""
    import json

    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


class ParametersError(NbrippleError):
    """The parameters cell or the parameters given for it are not usable."""


@dataclass(frozen=True)
class Parameter:
    """One assignment of the parameters cell."""

    name: str
    default_source: str
    input_ref: str | None = None  # the artifact query/ref of an artifact input
    optional: bool = False

    @property
    def is_input(self) -> bool:
        return self.input_ref is not None

    @property
    def type(self) -> str | None:
        """``artifact`` for an artifact input, else the JSON type of a literal default
        (``integer``, ``number``, ``string``, ``boolean``, ``array``, ``object``); None
        when the default is None or an expression (never evaluated)."""
        if self.is_input:
            return "artifact"
        return _JSON_TYPES.get(type(self.default_value))

    @property
    def default_value(self) -> Any:
        """The default as JSON data when it is a literal (a tuple as a list), else None."""
        try:
            value = ast.literal_eval(self.default_source)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        return list(value) if isinstance(value, tuple) else value

    def type_problem(self, value: Any) -> str | None:
        """Why JSON ``value`` cannot stand for this parameter's literal default (an
        ``integer`` default takes an integer, a ``number`` one any number...), or None.
        Artifact inputs are checked when they are resolved."""
        wanted = self.type
        if wanted is None or wanted == "artifact":
            return None
        fits = _JSON_CHECKS[wanted](value) and not (
            isinstance(value, bool) and wanted in ("integer", "number"))
        if fits:
            return None
        shown = "null" if value is None else \
            f"{_JSON_TYPES.get(type(value), type(value).__name__)} {json_text(value):.40}"
        return (f"parameter {self.name!r} takes {'an' if wanted[0] in 'aeiou' else 'a'} "
                f"{wanted} (its default is {self.default_source:.40}), not {shown}")


def parse_cli_value(raw: str) -> Any:
    """A parameter value typed on a command line (``nbripple run -p`` and
    ``%nbripple run -p``), read exactly as ``papermill -p`` reads it: ``True``,
    ``False`` and ``None`` (only these spellings), else an ``int``, else a ``float``
    (``0.5``, ``nan``, ``inf``), else the text itself (``true``, ``[1, 2]``,
    ``blessed_model@3``). Use ``-r`` for a value that must stay text, ``-y`` for YAML.

    Example::

        parse_cli_value("0.5"), parse_cli_value("True"), parse_cli_value("sales@1")
    """
    if raw == "True":
        return True
    if raw == "False":
        return False
    if raw == "None":
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def cli_parameters(
    *,
    params: Iterable[tuple[str, str]] = (),
    raw: Iterable[tuple[str, str]] = (),
    yaml_texts: Iterable[str] = (),
    files: Iterable[str] = (),
    base64_texts: Iterable[str] = (),
) -> dict[str, Any]:
    """The parameters of a command line, merged in papermill's order: ``-b`` (base64
    YAML), ``-f`` (YAML files), ``-y`` (YAML), ``-p`` then ``-r`` — a later one wins.
    YAML is read as papermill reads it (safe, dates kept as text). ParametersError on
    unreadable YAML, a file that cannot be read, or YAML that is not a mapping.

    Example::

        cli_parameters(params=[("n", "3")], yaml_texts=["region: eu"])
    """
    import base64

    merged: dict[str, Any] = {}
    for text in base64_texts:
        try:
            decoded = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise ParametersError(f"-b {text!r} is not base64: {exc}") from exc
        merged.update(_yaml_mapping(decoded, "-b"))
    for name in files:
        try:
            content = Path(name).read_bytes()
        except OSError as exc:
            raise ParametersError(
                f"cannot read the parameters file {name}: {exc.strerror or exc}"
            ) from exc
        merged.update(_yaml_mapping(content, f"-f {name}"))
    for text in yaml_texts:
        merged.update(_yaml_mapping(text, "-y"))
    for name, value in params:
        merged[name] = parse_cli_value(value)
    for name, value in raw:
        merged[name] = value
    return merged


def _yaml_mapping(content: str | bytes, where: str) -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped]
    from papermill.iorw import NoDatesSafeLoader  # papermill's reading: dates stay text

    try:
        loaded = yaml.load(content, Loader=NoDatesSafeLoader)
    except yaml.YAMLError as exc:
        raise ParametersError(f"{where}: not valid YAML ({exc}); fix it") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParametersError(
            f"{where}: YAML parameters must be a mapping (name: value), "
            f"not {type(loaded).__name__}"
        )
    return {str(key): value for key, value in loaded.items()}


def parse_key_values(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` words typed on a command line as a dict (``nbripple search -p``,
    ``nbripple push -p``, ``%nbripple search KEY=VALUE``); ValueError on a word without
    ``=`` or a key given twice.

    Example::

        parse_key_values(["region=eu", "blessed=true"])
    """
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        if key in parsed:
            raise ValueError(f"partition key {key!r} given twice")
        parsed[key] = value
    return parsed


def find_parameters_cell(nb: Any) -> int | None:
    """Index of the first cell tagged ``parameters``, or None."""
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get(
            "tags", []
        ):
            return index
    return None


def parse_parameters(source: str, *, notebook: str = "the notebook") -> dict[str, Parameter]:
    """Every parameter assigned in a parameters cell, in order."""
    cleaned = "\n".join(
        "pass" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )
    try:
        tree = ast.parse(cleaned)
    except SyntaxError as exc:
        raise ParametersError(
            f"the parameters cell of {notebook} is not valid Python (line {exc.lineno}: "
            f"{exc.msg}); fix it so its defaults can be read"
        ) from exc
    comments = _comments_by_line(cleaned)
    found: dict[str, Parameter] = {}
    for node in tree.body:
        targets: list[ast.expr]
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            name = target.id
            source_text = ast.get_source_segment(cleaned, value) or ""
            ref, optional = _input_of(name, value, comments.get(node.end_lineno or 0, ""),
                                      notebook)
            found[name] = Parameter(name, source_text, ref, optional)
    return found


def _comments_by_line(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                out[token.start[0]] = token.string
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def _input_of(name: str, value: ast.expr, comment: str, notebook: str
              ) -> tuple[str | None, bool]:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        if value.value.startswith(SCHEME):
            _check_ref(name, value.value, notebook)
            return value.value, False
        return None, False
    if isinstance(value, ast.Constant) and value.value is None:
        match = _URI_IN_COMMENT.search(comment)
        if match:
            _check_ref(name, match.group(1), notebook)
            return match.group(1), True
        return None, False
    if isinstance(value, ast.Call) and _is_query_call(value.func):
        return _query_call_uri(name, value, notebook), False
    return None, False


def _is_query_call(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute) and func.attr == "query":
        return isinstance(func.value, ast.Name) and func.value.id in _QUERY_MODULES
    return isinstance(func, ast.Name) and func.id == "query"


def _query_call_uri(name: str, call: ast.Call, notebook: str) -> str:
    from .refs import make_query

    def literal(node: ast.expr) -> Any:
        try:
            return ast.literal_eval(node)
        except ValueError as exc:
            raise ParametersError(
                f"parameter {name!r} in {notebook}: nr.query(...) arguments must be literals "
                "(strings, numbers) so the runner can read them without running code"
            ) from exc

    if len(call.args) != 1:
        raise ParametersError(
            f"parameter {name!r} in {notebook}: write nr.query(\"artifact_name\", key=\"value\")"
        )
    artifact = literal(call.args[0])
    kwargs: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise ParametersError(f"parameter {name!r} in {notebook}: **kwargs are not supported")
        kwargs[keyword.arg] = literal(keyword.value)
    strict = bool(kwargs.pop("strict", False))
    time_partition = kwargs.pop("time_partition", None)
    try:
        query = make_query(artifact, kwargs, strict=strict, time_partition=time_partition)
    except NbrippleError as exc:
        raise ParametersError(f"parameter {name!r} in {notebook}: {exc}") from exc
    return query.uri


def _check_ref(name: str, ref: str, notebook: str) -> None:
    try:
        parse(ref)
    except NbrippleError as exc:
        raise ParametersError(f"parameter {name!r} in {notebook}: {exc}") from exc
