"""The executed notebook of a run: which of the user's cells failed, marking a cell
that a timeout, an interrupt or a dead kernel stopped as papermill marks a failed one,
and papermill's logging as a run wants it."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat

from .service.executions import run_error

INJECTED_TAG = "injected-parameters"  # papermill's
ERROR_MARKER_TAG = "papermill-error-cell-tag"  # papermill's


def describe(exc: BaseException) -> str:
    return {"DeadKernelError": "the kernel died", "CellTimeoutError": "a cell timed out"}.get(
        type(exc).__name__, "no message")


def hidden_error(exc: Any, raw: bytes, output_path: Path) -> str:
    """The message of an error papermill saw no error output for (a ``UsageError`` of
    IPython goes to stderr): the last line the failing cell wrote to stderr."""
    for line in exc.traceback or []:
        if str(line).strip():
            return str(line).strip()
    if output_path.exists():
        nb = nbformat.read(str(output_path), as_version=4)  # type: ignore[no-untyped-call]
        for _, cell in _kept_cells(raw, nb):
            if cell.get("metadata", {}).get("papermill", {}).get("exception"):
                lines = [line.strip() for out in cell.get("outputs", [])
                         if out.get("output_type") == "stream" and out.get("name") == "stderr"
                         for line in str(out.get("text", "")).splitlines() if line.strip()]
                if lines:
                    return lines[-1]
    return "the cell failed without an error message (see the executed notebook)"


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@contextlib.contextmanager
def log_papermill_output(enabled: bool) -> Iterator[None]:
    """While a run with ``log_output`` executes: papermill's log (the cells' output)
    on stderr, as ``papermill --log-output`` shows it."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("papermill")
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class _DropParameterNoise(logging.Filter):
    # papermill re-parses the parameters cell with its own regexes and warns about
    # URIs it cannot read; nbripple has already validated every parameter with ast.
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(("Unable to parse line", "Passed unknown parameter"))


_noise_filter = _DropParameterNoise()


def quiet_papermill_parameter_warnings() -> None:
    for name in ("papermill", "papermill.translators"):
        logger = logging.getLogger(name)
        if _noise_filter not in logger.filters:
            logger.addFilter(_noise_filter)


def _original_positions(raw: bytes) -> list[int]:
    """Index in the user's notebook of each cell papermill keeps (it drops old error
    markers) — the cells of the executed notebook, less what papermill inserts."""
    nb = nbformat.reads(raw.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]
    return [i for i, cell in enumerate(nb.cells)
            if ERROR_MARKER_TAG not in cell.get("metadata", {}).get("tags", [])]


def _kept_cells(raw: bytes, nb: Any) -> list[tuple[int, Any]]:
    """(index in the user's notebook, cell) for every executed cell from the user's."""
    original = nbformat.reads(raw.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]
    had_injected = any(INJECTED_TAG in c.get("metadata", {}).get("tags", [])
                       for c in original.cells)
    positions = iter(_original_positions(raw))
    kept = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if ERROR_MARKER_TAG in tags or (INJECTED_TAG in tags and not had_injected):
            continue
        index = next(positions, None)
        if index is not None:
            kept.append((index, cell))
    return kept


def original_index(raw: bytes, output_path: Path) -> int | None:
    """Index, in the user's notebook, of the cell whose output holds the error (by
    position: papermill re-randomizes the ids of notebooks older than nbformat 4.5)."""
    if not output_path.exists():
        return None
    nb = nbformat.read(str(output_path), as_version=4)  # type: ignore[no-untyped-call]
    for index, cell in _kept_cells(raw, nb):
        if cell.get("cell_type") != "code":
            continue
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])) or (
                cell.get("metadata", {}).get("papermill", {}).get("exception")):
            return index
    return None


def mark_unfinished(raw: bytes, output_path: Path, ename: str, evalue: str
                     ) -> dict[str, Any]:
    """After a timeout, an interrupt or a dead kernel: mark the cell that was running
    in the saved notebook as papermill marks a failed cell (error output, exception
    metadata, the error banner and anchor), and return the run error naming it."""
    from papermill.exceptions import PapermillExecutionError
    from papermill.execute import raise_for_execution_errors

    if not output_path.exists():
        return run_error(ename, evalue)
    nb = nbformat.read(str(output_path), as_version=4)  # type: ignore[no-untyped-call]
    started = [(index, cell) for index, cell in _kept_cells(raw, nb)
               if cell.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return run_error(ename, evalue)
    index, cell = started[-1]
    cell.metadata.papermill["exception"] = True
    cell.metadata.papermill["status"] = "failed"
    nb.metadata.setdefault("papermill", {})["exception"] = True
    if cell.get("cell_type") == "code" and not any(
            out.get("output_type") == "error" for out in cell.get("outputs", [])):
        cell.outputs.append(nbformat.v4.new_output(  # type: ignore[no-untyped-call]
            "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))
    with contextlib.suppress(PapermillExecutionError):  # it writes the notebook, then raises
        raise_for_execution_errors(nb, str(output_path))
    return run_error(ename, evalue, cell_index=index,
                     execution_count=cell.get("execution_count"))


def fix_metadata(nb: Any, input_path: Path | None, output_path: Path | None,
                 execution_id: str | None = None, kernel_name: str | None = None) -> None:
    """papermill's metadata pointing at the user's notebook and the kept output (it
    read a snapshot and wrote into the run's directory), and the run that made it."""
    meta = nb.metadata.setdefault("papermill", {})
    meta["input_path"] = str(input_path) if input_path else None
    meta["output_path"] = str(output_path) if output_path else None
    if execution_id is not None:
        nb.metadata["nbripple"] = {"execution_id": execution_id, "kernel_name": kernel_name}


def stopped_outcome(reason: str | None, status: str, error: dict[str, Any] | None,
             run_timeout: float | None) -> tuple[str, dict[str, Any] | None]:
    """The outcome of a run the guard stopped: cancelled, or failed by the run timeout
    (keeping the cell the error was in)."""
    if reason is None:
        return status, error
    cell = error.get("cell_index") if error else None
    if reason == "timeout":
        return "failed", run_error(
            "RunTimeout", f"the run took longer than {run_timeout:g} s, its run timeout "
            "(--run-timeout, run_timeout=, or [executor] run_timeout_s in config.toml)",
            cell_index=cell)
    what = "SIGTERM" if reason == "terminated" else "Ctrl-C (SIGINT)"
    return "cancelled", run_error("Cancelled", f"the run was stopped by {what}",
                                  cell_index=cell)
