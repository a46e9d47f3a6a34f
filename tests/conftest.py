"""Shared fixtures: every test gets its own nbripple home."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh, initialized nbripple home, made current for the test (and subprocesses)."""
    path = nr.init_home(tmp_path)
    monkeypatch.setenv("NBRIPPLE_HOME", str(path))
    nr.use(path)
    yield path
    _close_catalogs()


@pytest.fixture
def ws(home: Path) -> nr.Workspace:
    """The current workspace of the ``home`` fixture."""
    return nr.current()


def _close_catalogs() -> None:
    for catalog in list(EmbeddedCatalog._instances.values()):
        catalog.close()
    EmbeddedCatalog._instances.clear()


@pytest.fixture(autouse=True)
def _no_ambient_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                     ) -> None:
    # Never let a test touch the developer's ~/.nbripple.
    if "NBRIPPLE_HOME" not in os.environ:
        monkeypatch.setenv("NBRIPPLE_HOME", str(tmp_path_factory.mktemp("ambient") / ".nbripple"))
