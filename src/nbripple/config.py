"""Where nbripple keeps its catalog and store, and the settings that shape them.

The home is resolved in this order: an explicit argument, ``NBRIPPLE_HOME``, the
nearest ``.nbripple/`` directory above the working directory, then ``~/.nbripple``.
``<home>/config.toml`` holds the settings; every setting has a default, so a home
without a config file works too.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

HOME_DIRNAME = ".nbripple"
CONFIG_FILENAME = "config.toml"
CATALOG_FILENAME = "catalog.duckdb"

DEFAULT_CONFIG_TOML = """\
# nbripple settings. Paths are relative to this directory.

[store]
# Any fsspec URL: a local path, s3://bucket/prefix, gs://..., memory://...
url = "store"

[catalog]
# Release the catalog file after this much idle time, so other processes can write.
idle_release_ms = 100
# How long to retry while another process holds the catalog file.
lock_timeout_s = 60

[cache]
# Where loaded files and directories are materialized.
dir = "cache"
"""


@dataclass(frozen=True)
class Settings:
    """Typed settings read from ``config.toml`` (all optional).

    Attributes:
        home: the nbripple home directory.
        store_url: fsspec URL of the blob store (relative paths are under home).
        store_options: keyword arguments for the fsspec filesystem.
        idle_release_ms: release the catalog connection after this idle time.
        lock_timeout_s: give up on a locked catalog after this long.
        cache_dir: local directory for materialized files and directories.
    """

    home: Path
    store_url: str = "store"
    store_options: dict[str, Any] = field(default_factory=dict)
    idle_release_ms: float = 100.0
    lock_timeout_s: float = 60.0
    cache_dir: str = "cache"

    @property
    def catalog_path(self) -> Path:
        return self.home / CATALOG_FILENAME

    @property
    def resolved_store_url(self) -> str:
        if "://" in self.store_url:
            return self.store_url
        path = Path(self.store_url).expanduser()
        return str(path if path.is_absolute() else self.home / path)

    @property
    def resolved_cache_dir(self) -> Path:
        path = Path(self.cache_dir).expanduser()
        return path if path.is_absolute() else self.home / path


def find_home(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """Resolve the nbripple home directory (see the module docstring for the order)."""
    if explicit is not None:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("NBRIPPLE_HOME")
    if env:
        return Path(env).expanduser().resolve()
    start = (cwd or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        candidate = directory / HOME_DIRNAME
        if candidate.is_dir():
            return candidate
    return Path.home() / HOME_DIRNAME


def load_settings(home: Path) -> Settings:
    """Read ``<home>/config.toml``; a missing file means all defaults."""
    path = home / CONFIG_FILENAME
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}. Fix or delete it.") from exc
    store = _table(data, "store", path)
    catalog = _table(data, "catalog", path)
    cache = _table(data, "cache", path)
    options = _table(store, "options", path, section="store.options")
    kwargs: dict[str, Any] = {"home": home}
    for key, value, expected in (
        ("store_url", store.get("url"), str),
        ("idle_release_ms", catalog.get("idle_release_ms"), float),
        ("lock_timeout_s", catalog.get("lock_timeout_s"), float),
        ("cache_dir", cache.get("dir"), str),
    ):
        if value is None:
            continue
        name = key.removeprefix("store_").removeprefix("cache_")
        if expected is str and not isinstance(value, str):
            raise ConfigError(f"{path}: {name} must be a string, got {value!r}")
        if expected is float and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            raise ConfigError(f"{path}: {name} must be a number >= 0, got {value!r}")
        kwargs[key] = value
    if options:
        kwargs["store_options"] = options
    return Settings(**kwargs)


def _table(
    data: dict[str, Any], key: str, path: Path, *, section: str | None = None
) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(
            f"{path}: [{section or key}] must be a table (a [{section or key}] section), "
            f"got {value!r}"
        )
    return value


def init_home(directory: str | os.PathLike[str] | None = None) -> Path:
    """Create ``<directory>/.nbripple/`` with a default ``config.toml``; return the home.

    Existing files are left as they are, so running it twice is harmless.
    """
    base = Path(directory) if directory is not None else Path.cwd()
    home = base / HOME_DIRNAME if base.name != HOME_DIRNAME else base
    home.mkdir(parents=True, exist_ok=True)
    config = home / CONFIG_FILENAME
    if not config.exists():
        config.write_text(DEFAULT_CONFIG_TOML, encoding="utf-8")
    return home.resolve()
