"""The catalog and executor registries: built-ins, kinds chosen by config.toml,
third-party kinds registered in code or by entry point, and clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbripple as nr
from nbripple import registry
from nbripple.catalog import EmbeddedCatalog
from nbripple.config import Settings, load_settings
from nbripple.errors import ConfigError
from nbripple.executors import LocalExecutor, RunJob
from nbripple.registry import (
    Registry,
    make_catalog,
    make_executor,
    register_catalog,
    register_executor,
)
from nbripple.watcher import Watcher


class RemoteExecutor:
    """A third-party executor: takes the settings and its own options."""

    def __init__(self, settings: Settings, *, address: str, workers: int = 2) -> None:
        self.settings = settings
        self.address = address
        self.workers = workers
        self.jobs: list[RunJob] = []

    def start(self, owner_pid: int) -> None:
        return None

    def submit(self, job: RunJob) -> None:
        self.jobs.append(job)

    def ended(self) -> list[str]:
        return []

    def active(self) -> int:
        return 0

    def cancel_all(self, grace_s: float = 10.0) -> list[str]:
        return []

    def shutdown(self) -> None:
        return None


def write_config(home: Path, text: str) -> Settings:
    (home / "config.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_settings(home)


@pytest.fixture
def remote() -> Iterator[None]:
    register_executor("remote", RemoteExecutor)
    yield
    registry.executors.unregister("remote")


def test_the_built_ins_are_known() -> None:
    assert "embedded" in registry.catalogs.names()
    assert "local" in registry.executors.names()


def test_importing_the_registry_imports_no_implementation() -> None:
    code = ("import sys, nbripple.registry\n"
            "heavy = [m for m in ('duckdb', 'papermill', 'nbripple.executors', "
            "'nbripple.catalog', 'importlib.metadata') if m in sys.modules]\n"
            "print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_the_default_catalog_is_the_homes_embedded_file(home: Path) -> None:
    settings = write_config(home, "[catalog]\nidle_release_ms = 40\nlock_timeout_s = 3\n")
    catalog = make_catalog(settings)
    assert isinstance(catalog, EmbeddedCatalog)
    assert catalog.path == home / "catalog.duckdb"
    assert (catalog.idle_release_s, catalog.lock_timeout_s) == (pytest.approx(0.04), 3)
    assert catalog.list_artifacts() == []  # the file exists from now on
    assert make_catalog(settings) is catalog  # one instance per file in a process


def test_the_default_executor_is_local_with_its_options(tmp_path: Path) -> None:
    executor = make_executor(load_settings(tmp_path))
    assert isinstance(executor, LocalExecutor)
    assert (executor.warm, executor.kernel_name) == (2, "python3")
    settings = write_config(tmp_path, '[executor.options]\nwarm = 0\nkernel_name = "py"\n')
    executor = make_executor(settings)
    assert isinstance(executor, LocalExecutor)
    assert (executor.warm, executor.kernel_name) == (0, "py")
    executor = make_executor(settings, warm=3)  # an argument wins over config.toml
    assert isinstance(executor, LocalExecutor)
    assert executor.warm == 3


def test_a_third_party_executor_registered_in_code(tmp_path: Path, remote: None) -> None:
    settings = write_config(tmp_path, """
        [executor]
        kind = "remote"
        [executor.options]
        address = "tcp://scheduler:8786"
    """)
    executor = make_executor(settings)
    assert isinstance(executor, RemoteExecutor)
    assert (executor.address, executor.workers) == ("tcp://scheduler:8786", 2)
    assert executor.settings is settings
    assert "remote" in registry.executors.names()


def test_a_third_party_executor_installed_by_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "acme_exec-1.0.dist-info").mkdir(parents=True)
    (site / "acme_exec-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-exec\nVersion: 1.0\n")
    (site / "acme_exec-1.0.dist-info" / "entry_points.txt").write_text(
        "[nbripple.executors]\nacme = acme_exec:AcmeExecutor\n")
    (site / "acme_exec.py").write_text(textwrap.dedent("""
        class AcmeExecutor:
            def __init__(self, settings, *, queue="default"):
                self.queue = queue
    """))
    home = tmp_path / "home"
    home.mkdir()
    write_config(home, '[executor]\nkind = "acme"\n[executor.options]\nqueue = "gpu"\n')
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from pathlib import Path\n"
            "from nbripple.config import load_settings\n"
            "from nbripple.registry import executors, make_executor\n"
            "executor = make_executor(load_settings(Path(sys.argv[2])))\n"
            "print(type(executor).__name__, executor.queue, 'acme' in executors.names())")
    done = subprocess.run([sys.executable, "-c", code, str(site), str(home)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["AcmeExecutor", "gpu", "True"]


def test_a_later_registration_replaces_an_entry_point_and_a_built_in() -> None:
    fresh: Registry[Any] = Registry("executor", "nbripple.executors")
    fresh._builtin("local", "nbripple.registry:local_executor")
    assert fresh.factory("local") is registry.local_executor
    fresh.register("local", RemoteExecutor)
    assert fresh.factory("local") is RemoteExecutor
    fresh.unregister("local")
    assert fresh.factory("local") is registry.local_executor


def test_an_unknown_kind_lists_the_known_ones_and_names_its_source(tmp_path: Path) -> None:
    settings = write_config(tmp_path, '[executor]\nkind = "dask"\n')
    with pytest.raises(ConfigError) as err:
        make_executor(settings)
    message = str(err.value)
    assert "unknown executor kind 'dask'" in message
    assert "known kinds are " in message and "local" in message
    assert str(tmp_path / "config.toml") in message
    assert "\n" not in message


def test_an_option_the_executor_does_not_take_is_a_config_error(tmp_path: Path) -> None:
    settings = write_config(tmp_path, "[executor.options]\nworkers = 4\n")
    with pytest.raises(ConfigError, match=r"does not take these options.*"
                                          r"its options: warm, kernel_name, fork_server"):
        make_executor(settings)
    settings = write_config(tmp_path, '[executor.options]\nwarm = "many"\n')
    with pytest.raises(ConfigError, match="warm must be an integer >= 0"):
        make_executor(settings)
    settings = write_config(tmp_path, '[executor.options]\nfork_server = "yes"\n')
    with pytest.raises(ConfigError, match="fork_server must be true or false, got 'yes'"):
        make_executor(settings)
    settings = write_config(tmp_path, "[executor.options]\nfork_server = false\n")
    assert make_executor(settings).fork_server is False  # type: ignore[attr-defined]


def test_a_missing_option_of_a_third_party_executor_is_a_config_error(
        tmp_path: Path, remote: None) -> None:
    settings = write_config(tmp_path, '[executor]\nkind = "remote"\n')
    with pytest.raises(ConfigError, match=r"remote.*address"):
        make_executor(settings)


def test_a_kind_that_cannot_be_imported_is_a_config_error() -> None:
    fresh: Registry[Any] = Registry("catalog", "nbripple.no-such-group")
    fresh.register("broken", "nbripple_no_such_module:Catalog")
    with pytest.raises(ConfigError, match="'broken' could not be loaded from "
                                          "'nbripple_no_such_module:Catalog'"):
        fresh.factory("broken")


def test_a_catalog_url_asks_for_the_served_catalog(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBRIPPLE_URL", "http://catalog.example:8890/nbripple/api/")
    monkeypatch.setenv("NBRIPPLE_TOKEN", "secret")
    settings = load_settings(tmp_path)
    assert settings.catalog.kind == "served"
    catalog = make_catalog(settings)  # nothing is asked of the server until it is used
    assert type(catalog).__name__ == "ServedCatalog"
    assert catalog.url == "http://catalog.example:8890/nbripple/api/"  # type: ignore[attr-defined]
    assert catalog.transport.token == "secret"  # type: ignore[attr-defined]


def test_a_catalog_url_that_is_not_http_is_a_config_error(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBRIPPLE_URL", "ftp://catalog.example/")
    with pytest.raises(ConfigError, match="not an http"):
        make_catalog(load_settings(tmp_path))


# -- what the configuration chooses for the workspace and the watcher ------------------


def test_the_workspace_builds_its_catalog_through_the_registry(home: Path) -> None:
    made: list[Settings] = []

    def counting(settings: Settings) -> Any:
        made.append(settings)
        return registry.embedded_catalog(settings)

    register_catalog("counting", counting)
    try:
        write_config(home, '[catalog]\nkind = "counting"\n')
        ws = nr.Workspace(home)
        assert [s.home for s in made] == [home]
        assert ws.settings.source("catalog.kind").kind == "file"
        write_config(home, '[catalog]\nkind = "nope"\n')
        with pytest.raises(ConfigError, match="unknown catalog kind 'nope'"):
            nr.Workspace(home)
    finally:
        registry.catalogs.unregister("counting")


def test_the_watcher_takes_its_executor_and_defaults_from_the_settings(
        home: Path, remote: None) -> None:
    write_config(home, """
        [executor]
        kind = "remote"
        [executor.options]
        address = "tcp://scheduler:8786"
        [watcher]
        poll_interval_s = 0.2
        grace_period_s = 3
        housekeeping_s = 7
        max_parallel = 5
    """)
    ws = nr.Workspace(home)
    watcher = Watcher(workspace=ws)
    assert isinstance(watcher.executor, RemoteExecutor)
    assert watcher.executor.address == "tcp://scheduler:8786"
    assert (watcher.poll_interval, watcher.grace_period_s, watcher.housekeeping_s,
            watcher.max_parallel) == (0.2, 3, 7, 5)
    explicit = Watcher(workspace=ws, poll_interval=0.05, grace_period_s=1, max_parallel=1)
    assert (explicit.poll_interval, explicit.grace_period_s, explicit.max_parallel) == \
        (0.05, 1, 1)
