"""Shared fixtures: every test gets its own nbripple home; a recording executor."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.executors import RunJob
from serving import start_server


@pytest.fixture
def home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[Path]:
    """A fresh, initialized nbripple home, made current for the test (and subprocesses).

    Parametrized with ``"served"`` (see :data:`serving.both_catalogs`), a real ``nbripple serve
    --no-watch`` owns the home while the test runs: the test process, its watchers and
    the runs they start all find it through server.json and use the served catalog."""
    path = nr.init_home(tmp_path)
    monkeypatch.setenv("NBRIPPLE_HOME", str(path))
    server = None
    if getattr(request, "param", "embedded") == "served":
        server = start_server(path, "--no-watch")
    ws = nr.use(path)
    if server is not None:
        assert type(ws.catalog).__name__ == "ServedCatalog"
    yield path
    _close_catalogs()
    if server is not None:
        assert server.stop() == 0, "the server did not stop cleanly"


@pytest.fixture
def ws(home: Path) -> nr.Workspace:
    """The current workspace of the ``home`` fixture."""
    return nr.current()


def _close_catalogs() -> None:
    EmbeddedCatalog.close_all()


@pytest.fixture(autouse=True)
def _no_ambient_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                     ) -> None:
    # Never let a test touch the developer's ~/.nbripple.
    if "NBRIPPLE_HOME" not in os.environ:
        monkeypatch.setenv("NBRIPPLE_HOME", str(tmp_path_factory.mktemp("ambient") / ".nbripple"))


class RecordingExecutor:
    """An :class:`~nbripple.executors.Executor` that records the jobs it is given and
    never runs them, so no kernel starts. With ``end=True`` each job 'ends' at once
    without running, as a run whose process died would (its firing then fails)."""

    def __init__(self, *, end: bool = False) -> None:
        self.jobs: list[RunJob] = []
        self._end = end
        self._ended: list[str] = []

    def start(self, owner_pid: int) -> None:
        return None

    def submit(self, job: RunJob) -> None:
        self.jobs.append(job)
        if self._end:
            self._ended.append(job.execution_id)

    def ended(self) -> list[str]:
        done, self._ended = self._ended, []
        return done

    def active(self) -> int:
        return 0

    def cancel_all(self, grace_s: float = 10.0) -> list[str]:
        return []

    def shutdown(self) -> None:
        return None


@pytest.fixture
def recording_executor() -> Callable[..., RecordingExecutor]:
    """Make :class:`RecordingExecutor` s: ``recording_executor()`` records jobs,
    ``recording_executor(end=True)`` also ends each one at once."""
    return RecordingExecutor
