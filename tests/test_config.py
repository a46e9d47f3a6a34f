"""Home resolution (argument, NBRIPPLE_HOME, nearest .nbripple/, ~/.nbripple), init,
and the typed settings read from config.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbripple as nr
from nbripple.config import DEFAULT_CONFIG_TOML, Settings, find_home, init_home, load_settings
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
