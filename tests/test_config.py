"""Home resolution (argument, NBRIPPLE_HOME, nearest .nbripple/, ~/.nbripple), init,
the typed settings read from config.toml and the environment with their sources, and
`nbripple config`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import nbripple as nr
from nbripple import config as config_module
from nbripple.cli import config as _config_command  # noqa: F401 - registers `nbripple config`
from nbripple.cli import main as cli_main
from nbripple.config import (
    DEFAULT_CONFIG_TOML,
    OPTIONS,
    CatalogSettings,
    ExecutorSettings,
    Settings,
    Source,
    WatcherSettings,
    find_home,
    init_home,
    load_settings,
    resolve_settings,
)
from nbripple.errors import ConfigError


def test_explicit_home_wins_over_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.setenv("NBRIPPLE_HOME", str(tmp_path / "from_env"))
    (tmp_path / "project" / ".nbripple").mkdir(parents=True)
    assert find_home(tmp_path / "explicit", cwd=tmp_path / "project") == \
        (tmp_path / "explicit").resolve()


def test_env_var_wins_over_the_directory_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    (tmp_path / "project" / ".nbripple").mkdir(parents=True)
    monkeypatch.setenv("NBRIPPLE_HOME", str(tmp_path / "from_env"))
    assert find_home(cwd=tmp_path / "project") == (tmp_path / "from_env").resolve()


def test_nearest_dot_nbripple_above_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBRIPPLE_HOME")
    outer = tmp_path / "team" / ".nbripple"
    inner = tmp_path / "team" / "project" / ".nbripple"
    deep = tmp_path / "team" / "project" / "notebooks" / "2024"
    outer.mkdir(parents=True)
    deep.mkdir(parents=True)
    assert find_home(cwd=deep) == outer.resolve()
    inner.mkdir()
    assert find_home(cwd=deep) == inner.resolve()
    assert find_home(cwd=inner) == inner.resolve()  # inside the home itself


def test_falls_back_to_the_user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBRIPPLE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    (tmp_path / "elsewhere").mkdir()
    assert find_home(cwd=tmp_path / "elsewhere") == tmp_path / "user" / ".nbripple"


def test_a_file_named_dot_nbripple_is_not_a_home(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBRIPPLE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / ".nbripple").write_text("not a directory")
    assert find_home(cwd=tmp_path / "proj") == tmp_path / "user" / ".nbripple"


def test_the_api_uses_the_home_found_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBRIPPLE_HOME")
    home = init_home(tmp_path / "proj")
    (tmp_path / "proj" / "nb").mkdir()
    monkeypatch.chdir(tmp_path / "proj" / "nb")
    ws = nr.use()
    try:
        assert ws.home == home
        nr.Artifact("found").create_from(1)
        assert (home / "catalog.duckdb").exists()
        assert nr.Workspace(home).get("found@1", record=False).ref == "found@1"
    finally:
        ws.catalog.close()


def test_init_home_creates_config_and_is_idempotent(tmp_path: Path) -> None:
    home = init_home(tmp_path)
    assert home == (tmp_path / ".nbripple").resolve()
    config = home / "config.toml"
    assert config.read_text() == DEFAULT_CONFIG_TOML
    config.write_text('[store]\nurl = "memory://custom"\n')
    assert init_home(tmp_path) == home
    assert config.read_text() == '[store]\nurl = "memory://custom"\n'  # left as it was
    assert init_home(home) == home  # given the .nbripple directory itself


def test_default_config_file_matches_the_defaults(tmp_path: Path) -> None:
    home = init_home(tmp_path)
    assert load_settings(home) == Settings(home=home)


def test_missing_config_means_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert (settings.store_url, settings.store_options, settings.idle_release_ms,
            settings.lock_timeout_s, settings.cache_dir) == ("store", {}, 100.0, 60.0, "cache")
    assert settings.catalog_path == tmp_path / "catalog.duckdb"
    assert settings.resolved_store_url == str(tmp_path / "store")
    assert settings.resolved_cache_dir == tmp_path / "cache"


def test_settings_are_read_from_config_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("""
[store]
url = "s3://bucket/prefix"

[store.options]
endpoint_url = "http://127.0.0.1:9000"
client_kwargs = { region_name = "eu-west-1" }

[catalog]
idle_release_ms = 250
lock_timeout_s = 1.5

[cache]
dir = "/var/tmp/nbripple-cache"
""")
    settings = load_settings(tmp_path)
    assert settings.resolved_store_url == "s3://bucket/prefix"
    assert settings.store_options == {"endpoint_url": "http://127.0.0.1:9000",
                                      "client_kwargs": {"region_name": "eu-west-1"}}
    assert (settings.idle_release_ms, settings.lock_timeout_s) == (250, 1.5)
    assert settings.resolved_cache_dir == Path("/var/tmp/nbripple-cache")


def test_relative_and_user_paths_in_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    (tmp_path / "config.toml").write_text('[store]\nurl = "../shared/store"\n'
                                          '[cache]\ndir = "~/cache"\n')
    settings = load_settings(tmp_path)
    assert settings.resolved_store_url == str(tmp_path / "../shared/store")
    assert settings.resolved_cache_dir == tmp_path / "user" / "cache"


def test_workspace_settings_shape_the_catalog(home: Path) -> None:
    (home / "config.toml").write_text("[catalog]\nidle_release_ms = 40\nlock_timeout_s = 3\n")
    ws = nr.use(home)
    assert ws.catalog.idle_release_s == pytest.approx(0.04)  # type: ignore[attr-defined]
    assert ws.catalog.lock_timeout_s == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[store\nurl = 1", "is not valid TOML"),
        ("[catalog]\nidle_release_ms = \"fast\"", "idle_release_ms must be a number"),
        ("[catalog]\nlock_timeout_s = true", "lock_timeout_s must be a number"),
        ("[catalog]\nlock_timeout_s = -1", "lock_timeout_s must be a number >= 0"),
        ('store = "s3://bucket"', r"\[store\] must be a table"),
        ("[store]\nurl = 5", "url must be a string"),
        ('[store]\noptions = "anon=true"', r"\[store.options\] must be a table"),
        ("[cache]\ndir = []", "dir must be a string"),
    ],
)
def test_invalid_config_is_a_clear_error_naming_the_file(
    tmp_path: Path, toml: str, message: str
) -> None:
    (tmp_path / "config.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(tmp_path)
    assert str(tmp_path / "config.toml") in str(err.value)


# -- the typed sections and where each value came from -----------------------------
def test_every_setting_has_a_default_and_says_so(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.catalog == CatalogSettings()
    assert (settings.catalog.kind, settings.executor.kind) == ("embedded", "local")
    assert settings.watcher == WatcherSettings(poll_interval_s=0.01, grace_period_s=30.0,
                                               housekeeping_s=5.0, max_parallel=None)
    assert settings.watcher.effective_max_parallel >= 1
    assert settings.source("catalog.kind") == Source("default")
    assert str(settings.source("watcher.max_parallel")) == "default"
    assert settings.source("home") == Source("argument")


def test_the_new_sections_are_read_from_config_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("""
[executor]
kind = "local"
[executor.options]
warm = 2

[watcher]
poll_interval_s = 0.5
grace_period_s = 5
housekeeping_s = 2
max_parallel = 3
""")
    settings = load_settings(tmp_path)
    assert settings.executor == ExecutorSettings(kind="local", options={"warm": 2})
    assert settings.watcher == WatcherSettings(0.5, 5, 2, 3)
    from_file = Source("file", str(tmp_path / "config.toml"))
    assert settings.source("watcher.max_parallel") == from_file
    assert str(from_file) == str(tmp_path / "config.toml")
    assert settings.source("watcher.poll_interval_s") == from_file
    assert settings.source("catalog.lock_timeout_s") == Source("default")


def test_environment_beats_the_file_and_arguments_beat_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text('[catalog]\nkind = "served"\n'
                                          'url = "http://file:1"\ntoken = "from-file"\n')
    monkeypatch.setenv("NBRIPPLE_URL", "http://env:2")
    settings = load_settings(tmp_path, overrides={"catalog.token": "from-arg"})
    assert (settings.catalog.url, settings.catalog.token) == ("http://env:2", "from-arg")
    assert settings.source("catalog.url") == Source("env", "NBRIPPLE_URL")
    assert str(settings.source("catalog.url")) == "$NBRIPPLE_URL"
    assert settings.source("catalog.token") == Source("argument")
    assert settings.source("catalog.kind").kind == "file"
    assert "from-arg" not in repr(settings)  # a token never shows in a repr


def test_a_catalog_url_implies_the_served_kind(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBRIPPLE_URL", "http://catalog:8890")
    monkeypatch.setenv("NBRIPPLE_TOKEN", "secret")
    settings = load_settings(tmp_path)
    assert (settings.catalog.kind, settings.catalog.token) == ("served", "secret")
    assert str(settings.source("catalog.kind")) == "from catalog.url ($NBRIPPLE_URL)"
    (tmp_path / "config.toml").write_text('[catalog]\nkind = "embedded"\n')
    with pytest.raises(ConfigError, match=r"catalog.url is set \(\$NBRIPPLE_URL\) but "
                                          r"catalog.kind is 'embedded' .*remove one"):
        load_settings(tmp_path)


def test_the_home_knows_how_it_was_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    home = init_home(tmp_path / "proj")
    monkeypatch.setenv("NBRIPPLE_HOME", str(home))
    assert resolve_settings().source("home") == Source("env", "NBRIPPLE_HOME")
    assert resolve_settings(home).source("home") == Source("argument")
    monkeypatch.delenv("NBRIPPLE_HOME")
    found = resolve_settings(cwd=tmp_path / "proj")
    assert (found.home, found.source("home").kind) == (home, "found")


def test_the_old_flat_names_still_work(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[store]\nurl = "memory://x"\n[cache]\ndir = "c"\n')
    settings = load_settings(tmp_path)
    assert (settings.store_url, settings.cache_dir) == ("memory://x", "c")
    assert settings.store.cache_dir == "c"
    assert settings.source("cache.dir").kind == "file"
    assert Settings(home=tmp_path).idle_release_ms == 100.0


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[catalog]\nidle_release = 5", "unknown setting 'idle_release' in [catalog] (known: "
                                        "kind, url, token, idle_release_ms, lock_timeout_s)"),
        ("[exector]\nkind = 'local'", "unknown section [exector] (known: [catalog], [store], "
                                      "[cache], [executor], [watcher])"),
        ("[watcher]\nmax_parallel = 0", "[watcher] max_parallel must be an integer >= 1"),
        ("[watcher]\nmax_parallel = 2.5", "[watcher] max_parallel must be an integer >= 1"),
        ("[watcher]\npoll_interval_s = 0", "[watcher] poll_interval_s must be a number > 0"),
        ("[executor]\nkind = 3", "[executor] kind must be a string"),
        ('[executor]\noptions = "warm=2"', r"[executor.options] must be a table"),
    ],
)
def test_bad_values_say_what_to_do(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert "fix" in str(err.value) or "remove" in str(err.value)


def test_a_bad_override_names_the_known_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError,
                       match=r"unknown setting 'watcher\.poll'.*watcher\.poll_interval_s"):
        load_settings(tmp_path, overrides={"watcher.poll": 1})


def test_the_module_docstring_names_every_setting() -> None:
    doc = config_module.__doc__ or ""
    for option in OPTIONS:
        assert option.name in doc, option.key
        assert option.help


# -- nbripple config -----------------------------------------------------------------
def invoke(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli_main, list(args))


def test_nbripple_config_json_shows_every_value_and_its_source(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "config.toml").write_text("[watcher]\nmax_parallel = 2\n")
    monkeypatch.setenv("NBRIPPLE_TOKEN", "hush")
    result = invoke("config", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown) == {"home", "config", "catalog.path", *(o.key for o in OPTIONS)}
    assert shown["home"] == {"value": str(home), "source": "env", "origin": "NBRIPPLE_HOME"}
    assert shown["watcher.max_parallel"] == {"value": 2, "source": "file",
                                             "origin": str(home / "config.toml")}
    assert shown["catalog.kind"] == {"value": "embedded", "source": "default", "origin": None}
    assert shown["store.url"]["value"] == str(home / "store")
    assert shown["catalog.token"] == {"value": "********", "source": "env",
                                      "origin": "NBRIPPLE_TOKEN"}
    assert "hush" not in result.output


def test_nbripple_config_table(home: Path) -> None:
    result = invoke("--home", str(home), "config")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any("home" in line and str(home) in line and "argument" in line for line in lines)
    assert any("executor.kind" in line and "local" in line and "default" in line
               for line in lines)
    assert any("catalog.idle_release_ms" in line and str(home / "config.toml") in line
               for line in lines)
    assert result.stderr == ""


def test_nbripple_config_of_a_missing_home_shows_the_defaults(tmp_path: Path) -> None:
    result = invoke("--home", str(tmp_path / "nowhere"), "config", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["catalog.kind"]["value"] == "embedded"
    assert "nbripple init" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_nbripple_config_with_a_bad_file_is_one_line(home: Path) -> None:
    (home / "config.toml").write_text("[watcher]\ngrace_period_s = -1\n")
    result = invoke("config")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {home / 'config.toml'}: [watcher] grace_period_s must be a number >= 0, "
        "got -1; fix it or remove it to use the default"]
