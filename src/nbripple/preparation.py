"""Preparing a notebook run: everything a run does before its kernel starts.

Read the notebook, check the parameters given for its ``parameters`` cell (a name
it does not declare is an error), choose its kernel, and resolve each artifact
input — the caller's override or the notebook's smart default — to one pinned
version *of the artifact the notebook declares for it*. :func:`nbripple.runner.run`
does these steps before it starts a kernel (and records the inputs as consumed);
:func:`check` does them alone and records nothing, so a caller — the REST launch,
the launch form — learns what a run would use, or why it would not start, before
anything is created.

Example::

    checked = check(ws, "ops.ipynb", {"model": "blessed_model@3"})
    checked.inputs["model"].ref          # "blessed_model@3"
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from .errors import NbrippleError, NotFound
from .kernels import resolve_kernel
from .model import ArtifactVersion, Execution
from .parameters import Parameter, ParametersError, find_parameters_cell, parse_parameters
from .refs import Pinned, Query, parse
from .service import Workspace


class NotebookNotFound(NotFound):
    """The notebook to run does not exist."""


class InputResolutionError(NbrippleError):
    """An artifact input resolved to nothing (or to a version of another artifact);
    the run failed before its kernel started."""

    def __init__(self, message: str, execution_id: str | None) -> None:
        super().__init__(message)
        self.execution_id = execution_id


@dataclass(frozen=True)
class Prepared:
    """A notebook ready to run: its bytes, snapshot hash, declared parameters, kernel
    and working directory."""

    raw: bytes
    path: Path | None
    snapshot_hash: str
    params: dict[str, Parameter]
    kernel_name: str
    cwd: Path
    label: str


@dataclass(frozen=True)
class Checked:
    """What a run would use now: the prepared notebook, the values it would inject and
    the version each artifact input would pin (None: an optional input that matches
    nothing)."""

    prepared: Prepared
    injected: dict[str, Any]
    inputs: dict[str, ArtifactVersion | None]


def read_notebook(notebook: str | os.PathLike[str],
                  cwd: str | os.PathLike[str] | None) -> tuple[bytes, Path]:
    """The bytes and absolute path of ``notebook`` (relative to ``cwd`` if given)."""
    path = Path(notebook).expanduser()
    if not path.is_absolute():
        path = (Path(cwd) if cwd is not None else Path.cwd()) / path
    path = path.resolve()
    if path.is_dir():
        raise NotebookNotFound(
            f"{notebook} is a directory, not a notebook; give the path of an .ipynb file"
        )
    if not path.is_file():
        raise NotebookNotFound(f"notebook {notebook} not found (looked at {path})")
    try:
        return path.read_bytes(), path
    except OSError as exc:
        raise NotebookNotFound(f"notebook {notebook} cannot be read: "
                               f"{exc.strerror or exc}") from exc


def prepare_notebook(
    ws: Workspace,
    raw: bytes,
    path: Path | None,
    parameters: dict[str, Any] | None,
    kernel_name: str | None,
    cwd: str | os.PathLike[str] | None,
    *,
    snapshot: bool = True,
) -> Prepared:
    """Parse the notebook, check ``parameters`` against its parameters cell, choose its
    kernel; with ``snapshot`` store its bytes (the run's notebook snapshot)."""
    label = path.name if path else "the notebook"
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise ParametersError(f"{label} is not a readable notebook: {exc}") from exc
    index = find_parameters_cell(nb)
    params = parse_parameters(nb.cells[index].source, notebook=label) if index is not None else {}
    given = parameters or {}
    if given and index is None:
        raise ParametersError(
            f"{label} has no cell tagged 'parameters', so it cannot take parameters "
            f"({', '.join(sorted(given))}); tag the cell that holds the defaults with "
            "'parameters' (View → Cell Toolbar → Tags in Jupyter)"
        )
    unknown = sorted(set(given) - set(params))
    if unknown:
        known = ", ".join(params) or "none"
        raise ParametersError(
            f"{label} has no parameter {unknown[0]!r} (its parameters: {known})"
        )
    kernel = resolve_kernel(nb, kernel_name, label)
    workdir = Path(cwd) if cwd is not None else (path.parent if path else Path.cwd())
    if not workdir.is_dir():
        raise NbrippleError(f"working directory {workdir} does not exist")
    digest = ws.store.put_bytes(raw).digest if snapshot else ""
    return Prepared(raw, path, digest, params, kernel, workdir.resolve(), label)


def requested_value(value: Any) -> Any:
    """A parameter value as the execution records it (a version or query as its ref)."""
    if isinstance(value, ArtifactVersion):
        return value.ref
    if isinstance(value, Query | Pinned):
        return value.uri
    return value


def declared_artifact(param: Parameter) -> str | None:
    """The artifact an input parameter takes versions of (from its default)."""
    if param.input_ref is None:
        return None
    try:
        target = parse(param.input_ref)
    except NbrippleError:
        return None
    return target.name if isinstance(target, Query | Pinned) else None


def resolve_input(ws: Workspace, name: str, param: Parameter, given: dict[str, Any],
                  execution_id: str | None = None) -> ArtifactVersion | None:
    """The version input ``name`` pins: the caller's value in ``given`` (a ref, a query
    URI, a Query or a version) or else the notebook's smart default. None for an
    optional input that matches nothing; InputResolutionError when a required one
    matches nothing, the value is not a reference, or it names a version of another
    artifact than the notebook's default does."""
    wanted = given.get(name, param.input_ref)
    if wanted is None:
        if param.optional:
            return None
        raise InputResolutionError(
            f"input {name!r} is required: pass a ref such as 'name@3' or a query",
            execution_id,
        )
    artifact = declared_artifact(param)
    if not isinstance(wanted, str | Query | Pinned | ArtifactVersion):
        raise InputResolutionError(
            f"input {name!r} takes a ref such as '{artifact or 'name'}@3' or a query URI, "
            f"not {type(wanted).__name__} {wanted!r:.40}", execution_id)
    target: Any = wanted
    if isinstance(wanted, str):
        try:
            target = parse(wanted)
        except NbrippleError as exc:
            raise InputResolutionError(f"input {name!r}: {exc}", execution_id) from exc
    try:
        version = ws.resolve(target)
    except NotFound as exc:
        if param.optional and name not in given:
            return None
        raise InputResolutionError(
            f"input {name!r} ({requested_value(wanted)}) resolved to nothing: {exc}",
            execution_id,
        ) from exc
    if artifact is not None and version.name != artifact:
        raise InputResolutionError(
            f"input {name!r} takes a version of {artifact}, and {version.ref} is a version "
            f"of {version.name}; pass {artifact}@N or a query of {artifact}", execution_id)
    return version


def resolve_inputs(ws: Workspace, prepared: Prepared, given: dict[str, Any],
                   execution_id: str | None
                   ) -> tuple[dict[str, Any], dict[str, ArtifactVersion | None]]:
    """Pin every artifact input (recorded as consumed by ``execution_id`` if given);
    returns the values to inject and the version of each input."""
    injected: dict[str, Any] = {}
    pinned: dict[str, ArtifactVersion | None] = {}
    for name, param in prepared.params.items():
        if not param.is_input:
            continue
        version = resolve_input(ws, name, param, given, execution_id)
        pinned[name] = version
        if version is not None and execution_id is not None:
            ws.catalog.record_consumption(execution_id, version.name, version.version, name)
        injected[name] = version.ref if version is not None else None
    for name, value in given.items():
        if name not in injected:
            injected[name] = requested_value(value)
    return injected, pinned


def check(ws: Workspace, notebook: str | os.PathLike[str],
          parameters: dict[str, Any] | None = None, *, kernel_name: str | None = None,
          cwd: str | os.PathLike[str] | None = None) -> Checked:
    """Do what a run of ``notebook`` with ``parameters`` does before its kernel starts,
    recording nothing: the same errors, raised before anything is created."""
    raw, path = read_notebook(notebook, cwd)
    return _checked(ws, raw, path, parameters, kernel_name, cwd)


def _checked(ws: Workspace, raw: bytes, path: Path | None, parameters: dict[str, Any] | None,
             kernel_name: str | None, cwd: str | os.PathLike[str] | None) -> Checked:
    prepared = prepare_notebook(ws, raw, path, parameters, kernel_name, cwd, snapshot=False)
    injected, pinned = resolve_inputs(ws, prepared, parameters or {}, None)
    return Checked(prepared, injected, pinned)


def rerun_source(ws: Workspace, original: Execution) -> tuple[bytes, Path | None]:
    """The notebook snapshot a rerun of ``original`` runs, and its recorded path."""
    if original.kind != "notebook" or original.notebook_hash is None:
        raise NbrippleError(f"execution {original.id} is {original.kind}, not a notebook run")
    raw = ws.store.read(original.notebook_hash, label=f"notebook of execution {original.id}")
    return raw, Path(original.notebook) if original.notebook else None


def check_rerun(ws: Workspace, original: Execution) -> Checked:
    """:func:`check` for a rerun of ``original``: its snapshot, its parameters."""
    raw, path = rerun_source(ws, original)
    return _checked(ws, raw, path, dict(original.parameters), None, original.cwd)


def relaunch_parameters(original: Execution, overrides: dict[str, Any] | None = None
                        ) -> dict[str, Any]:
    """What a relaunch of ``original`` gives its notebook: the parameters the original
    run was given explicitly (inputs that came from defaults are resolved anew), with
    ``overrides`` on top."""
    if original.kind != "notebook" or not original.notebook:
        raise NbrippleError(f"execution {original.id} is {original.kind}, not a notebook run")
    return {**(original.requested or {}), **(overrides or {})}


__all__ = [
    "Checked",
    "InputResolutionError",
    "NotebookNotFound",
    "Prepared",
    "check",
    "check_rerun",
    "declared_artifact",
    "prepare_notebook",
    "read_notebook",
    "relaunch_parameters",
    "requested_value",
    "rerun_source",
]
