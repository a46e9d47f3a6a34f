"""Where nbripple keeps its catalog and store, and every setting that shapes them.

The home is resolved in this order: an explicit argument, ``NBRIPPLE_HOME``, the
nearest ``.nbripple/`` directory above the working directory, then ``~/.nbripple``.
``<home>/config.toml`` holds the settings; every setting has a default, so a home
without a config file works too. Each setting is read from, in order of precedence:
an explicit argument, its environment variable (``NBRIPPLE_URL``, ``NBRIPPLE_TOKEN``),
``config.toml``, then its default; :class:`Settings` remembers which one gave each
value (``nbripple config`` shows them all).

The settings (``[section] key``, see :data:`OPTIONS` for the full list):

* ``[catalog]`` ``kind`` (``"embedded"``: the home's DuckDB file), ``url`` and ``token``
  of a served catalog (``NBRIPPLE_URL``/``NBRIPPLE_TOKEN``; a URL implies
  ``kind = "served"``), ``idle_release_ms``, ``lock_timeout_s``;
* ``[store]`` ``url`` (any fsspec URL) and ``[store.options]``; ``[cache]`` ``dir``;
* ``[executor]`` ``kind`` (``"local"``: one process per run) and ``[executor.options]``
  (for ``local``: ``warm``, ``kernel_name``, ``fork_server``), ``run_timeout_s`` (a whole run) and
  ``start_timeout_s`` (a kernel's start-up) for every notebook run;
* ``[watcher]`` ``poll_interval_s``, ``grace_period_s``, ``housekeeping_s``,
  ``max_parallel``.

Example::

    settings = load_settings(find_home())
    settings.catalog.kind, settings.source("catalog.kind")   # ('embedded', default)
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

HOME_DIRNAME = ".nbripple"
CONFIG_FILENAME = "config.toml"
CATALOG_FILENAME = "catalog.duckdb"

DEFAULT_CONFIG_TOML = """\
# nbripple settings. Paths are relative to this directory.
# `nbripple config` shows every effective value and where it came from.

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

SourceKind = Literal["default", "file", "env", "argument", "found", "derived"]


@dataclass(frozen=True)
class Source:
    """Where an effective value came from.

    ``kind`` is ``default``, ``file`` (``detail``: the config.toml path), ``env``
    (``detail``: the variable), ``argument`` (given in code or on the command line),
    ``found`` (the home: the nearest ``.nbripple/`` above ``detail``) or ``derived``
    (computed from another setting, named in ``detail``).
    """

    kind: SourceKind
    detail: str | None = None

    def __str__(self) -> str:
        if self.kind == "file":
            return str(self.detail)
        if self.kind == "env":
            return f"${self.detail}"
        if self.kind == "found":
            return f"nearest {HOME_DIRNAME}/ above {self.detail}"
        if self.kind == "derived":
            return f"from {self.detail}"
        return self.kind


DEFAULT = Source("default")
ARGUMENT = Source("argument")


@dataclass(frozen=True)
class CatalogSettings:
    """``[catalog]``: which catalog records artifacts, and how it is shared.

    Attributes:
        kind: a registered catalog kind (``nbripple.registry.catalogs``); ``embedded``
            is the home's DuckDB file. A ``url`` implies ``served``.
        url: the URL of a served catalog (``NBRIPPLE_URL``).
        token: the token for the served catalog (``NBRIPPLE_TOKEN``; never printed).
        idle_release_ms: release the catalog file after this idle time (embedded).
        lock_timeout_s: give up on a catalog file locked this long (embedded).
    """

    kind: str = "embedded"
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    idle_release_ms: float = 100.0
    lock_timeout_s: float = 60.0


@dataclass(frozen=True)
class StoreSettings:
    """``[store]`` and ``[cache]``: where blobs live and where loads materialize.

    Attributes:
        url: fsspec URL of the blob store (a relative path is under the home).
        options: keyword arguments for the fsspec filesystem (``[store.options]``).
        cache_dir: local directory for materialized files (``[cache] dir``).
    """

    url: str = "store"
    options: dict[str, Any] = field(default_factory=dict)
    cache_dir: str = "cache"


@dataclass(frozen=True)
class ExecutorSettings:
    """``[executor]``: where the watcher's runs execute.

    Attributes:
        kind: a registered executor kind (``nbripple.registry.executors``); ``local``
            runs each job in its own process on this machine.
        options: keyword arguments for the executor (``[executor.options]``); for
            ``local``: ``warm`` (processes waiting with a started kernel, default 2),
            ``kernel_name`` (their kernel, default ``python3``) and ``fork_server``
            (fork run processes from one that has imported what a run needs; Linux,
            default true).
        run_timeout_s: a notebook run taking longer fails (None: no limit); it
            applies to ``nbripple run``, ``nr.run`` and the watcher's runs.
        start_timeout_s: a kernel that does not answer within this fails its run
            (papermill's ``--start-timeout``, default 60).
    """

    kind: str = "local"
    options: dict[str, Any] = field(default_factory=dict)
    run_timeout_s: float | None = None
    start_timeout_s: float = 60.0


@dataclass(frozen=True)
class WatcherSettings:
    """``[watcher]``: how the watcher polls, runs and stops.

    Attributes:
        poll_interval_s: seconds between cheap checks for catalog changes.
        grace_period_s: on stop, how long running executions may finish.
        housekeeping_s: how often to look for orphaned executions.
        max_parallel: runs at once from one watcher (None: the number of cores).
    """

    # A poll is a stat of two files (microseconds); the file is opened only when they
    # changed, so polling often costs nothing and detection waits 5 ms on average.
    poll_interval_s: float = 0.01
    grace_period_s: float = 30.0
    housekeeping_s: float = 5.0
    max_parallel: int | None = None

    @property
    def effective_max_parallel(self) -> int:
        return self.max_parallel or os.cpu_count() or 1


@dataclass(frozen=True)
class Option:
    """One setting: its ``section.key`` in config.toml, type, limits and help."""

    key: str
    type: Literal["str", "number", "int", "table"]
    help: str
    env: str | None = None
    minimum: float = 0
    exclusive: bool = False  # the minimum itself is not allowed
    secret: bool = False

    @property
    def section(self) -> str:
        return self.key.rsplit(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[1]

    @property
    def target(self) -> tuple[str, str]:
        """The (Settings attribute, field) that holds the value."""
        if self.key == "cache.dir":
            return "store", "cache_dir"
        return self.section, self.name


OPTIONS: tuple[Option, ...] = (
    Option("catalog.kind", "str", "the catalog implementation (embedded: the home's file)"),
    Option("catalog.url", "str", "URL of a served catalog (implies kind 'served')",
           env="NBRIPPLE_URL"),
    Option("catalog.token", "str", "token for the served catalog", env="NBRIPPLE_TOKEN",
           secret=True),
    Option("catalog.idle_release_ms", "number", "release the catalog file after this idle time"),
    Option("catalog.lock_timeout_s", "number", "give up on a catalog file locked this long"),
    Option("store.url", "str", "fsspec URL of the blob store (relative: under the home)"),
    Option("store.options", "table", "keyword arguments for the fsspec filesystem"),
    Option("cache.dir", "str", "where loaded files and directories are materialized"),
    Option("executor.kind", "str", "where the watcher's runs execute (local: processes here)"),
    Option("executor.options", "table", "keyword arguments for the executor"),
    Option("executor.run_timeout_s", "number", "a notebook run taking longer fails",
           exclusive=True),
    Option("executor.start_timeout_s", "number", "a kernel not answering this soon fails "
           "its run", exclusive=True),
    Option("watcher.poll_interval_s", "number", "seconds between checks for catalog changes",
           exclusive=True),
    Option("watcher.grace_period_s", "number", "on stop, how long running runs may finish"),
    Option("watcher.housekeeping_s", "number", "how often to look for orphaned runs",
           exclusive=True),
    Option("watcher.max_parallel", "int", "runs at once from one watcher (default: cores)",
           minimum=1),
)
_BY_KEY = {option.key: option for option in OPTIONS}
_SECTIONS: dict[str, list[str]] = {}
for _option in OPTIONS:
    _SECTIONS.setdefault(_option.section, []).append(_option.name)


@dataclass(frozen=True)
class Entry:
    """One effective setting, as ``nbripple config`` shows it."""

    key: str
    value: Any
    source: Source
    help: str


@dataclass(frozen=True)
class Settings:
    """The effective settings of one home, each with where it came from.

    Read them with :func:`load_settings` (or :func:`resolve_settings`). The sections
    are typed (:class:`CatalogSettings`, :class:`StoreSettings`,
    :class:`ExecutorSettings`, :class:`WatcherSettings`); the flat names of earlier
    releases (``store_url``, ``idle_release_ms``, ...) still work.

    Attributes:
        home: the nbripple home directory.
        sources: ``section.key`` -> :class:`Source` for every value not a default.
    """

    home: Path
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    watcher: WatcherSettings = field(default_factory=WatcherSettings)
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False, repr=False)

    def source(self, key: str) -> Source:
        """Where the value of ``key`` (``"catalog.kind"``, ``"home"``...) came from."""
        return self.sources.get(key, DEFAULT)

    def value(self, key: str) -> Any:
        """The effective value of ``key`` (``"watcher.max_parallel"``, ``"home"``...)."""
        if key == "home":
            return self.home
        section, name = _BY_KEY[key].target
        return getattr(getattr(self, section), name)

    def entries(self) -> Iterator[Entry]:
        """Every effective value with its source, home first (paths resolved)."""
        yield Entry("home", str(self.home), self.source("home"), "the nbripple home")
        yield Entry("config", str(self.config_path), Source("derived", "home"),
                    "the settings file" + ("" if self.config_path.exists() else " (none yet)"))
        for option in OPTIONS:
            value = self.value(option.key)
            if option.key == "store.url":
                value = self.resolved_store_url
            elif option.key == "cache.dir":
                value = str(self.resolved_cache_dir)
            elif option.key == "watcher.max_parallel" and value is None:
                value = self.watcher.effective_max_parallel
            elif option.secret and value is not None:
                value = "********"
            yield Entry(option.key, value, self.source(option.key), option.help)
            if option.key == "catalog.lock_timeout_s" and self.catalog.kind == "embedded":
                yield Entry("catalog.path", str(self.catalog_path), Source("derived", "home"),
                            "the embedded catalog's DuckDB file")

    # -- the flat names of earlier releases ------------------------------------
    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILENAME

    @property
    def catalog_path(self) -> Path:
        return self.home / CATALOG_FILENAME

    @property
    def store_url(self) -> str:
        return self.store.url

    @property
    def store_options(self) -> dict[str, Any]:
        return self.store.options

    @property
    def idle_release_ms(self) -> float:
        return self.catalog.idle_release_ms

    @property
    def lock_timeout_s(self) -> float:
        return self.catalog.lock_timeout_s

    @property
    def cache_dir(self) -> str:
        return self.store.cache_dir

    @property
    def resolved_store_url(self) -> str:
        if "://" in self.store.url:
            return self.store.url
        path = Path(self.store.url).expanduser()
        return str(path if path.is_absolute() else self.home / path)

    @property
    def resolved_cache_dir(self) -> Path:
        path = Path(self.store.cache_dir).expanduser()
        return path if path.is_absolute() else self.home / path


def find_home(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """Resolve the nbripple home directory (see the module docstring for the order)."""
    return find_home_source(explicit, cwd)[0]


def find_home_source(explicit: str | os.PathLike[str] | None = None,
                     cwd: Path | None = None) -> tuple[Path, Source]:
    """Like :func:`find_home`, and which rule found it."""
    if explicit is not None:
        return Path(explicit).expanduser().resolve(), ARGUMENT
    env = os.environ.get("NBRIPPLE_HOME")
    if env:
        return Path(env).expanduser().resolve(), Source("env", "NBRIPPLE_HOME")
    start = (cwd or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        candidate = directory / HOME_DIRNAME
        if candidate.is_dir():
            return candidate, Source("found", str(start))
    return Path.home() / HOME_DIRNAME, DEFAULT


def resolve_settings(explicit: str | os.PathLike[str] | None = None, *,
                     cwd: Path | None = None,
                     overrides: Mapping[str, Any] | None = None) -> Settings:
    """Find the home (:func:`find_home`) and load its settings, recording both sources."""
    home, source = find_home_source(explicit, cwd)
    return load_settings(home, overrides=overrides, home_source=source)


def load_settings(home: Path, *, overrides: Mapping[str, Any] | None = None,
                  home_source: Source = ARGUMENT) -> Settings:
    """Read ``<home>/config.toml`` (missing: all defaults), the environment and
    ``overrides`` (``{"watcher.max_parallel": 4}``: explicit arguments, which win).

    Raises ConfigError with a one-line message naming the file and the setting.
    """
    path = home / CONFIG_FILENAME
    data = _read_toml(path)
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {"home": home_source}
    file_source = Source("file", str(path))
    for section, table in data.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{path}: unknown section [{section}] (known: "
                              f"{', '.join(f'[{s}]' for s in _SECTIONS)}); fix or remove it")
        table = _as_table(table, f"[{section}]", path)
        for name, value in table.items():
            key = f"{section}.{name}"
            if key not in _BY_KEY:
                raise ConfigError(f"{path}: unknown setting {name!r} in [{section}] (known: "
                                  f"{', '.join(_SECTIONS[section])}); fix or remove it")
            values[key] = _check(_BY_KEY[key], value, path)
            sources[key] = file_source
    for option in OPTIONS:
        if option.env and os.environ.get(option.env):
            values[option.key] = _check(option, os.environ[option.env], f"${option.env}")
            sources[option.key] = Source("env", option.env)
    for key, value in (overrides or {}).items():
        if key not in _BY_KEY:
            raise ConfigError(f"unknown setting {key!r} (known: {', '.join(_BY_KEY)})")
        values[key] = _check(_BY_KEY[key], value, "argument")
        sources[key] = ARGUMENT
    _imply_catalog_kind(values, sources)
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, name = _BY_KEY[key].target
        sections.setdefault(section, {})[name] = value
    defaults = Settings(home=home)
    return Settings(
        home=home,
        catalog=replace(defaults.catalog, **sections.get("catalog", {})),
        store=replace(defaults.store, **sections.get("store", {})),
        executor=replace(defaults.executor, **sections.get("executor", {})),
        watcher=replace(defaults.watcher, **sections.get("watcher", {})),
        sources=sources,
    )


def _imply_catalog_kind(values: dict[str, Any], sources: dict[str, Source]) -> None:
    """A catalog URL means the served catalog, unless a kind was chosen explicitly."""
    if not values.get("catalog.url"):
        return
    kind = values.get("catalog.kind")
    if kind is None:
        values["catalog.kind"] = "served"
        sources["catalog.kind"] = Source("derived", f"catalog.url ({sources['catalog.url']})")
    elif kind == "embedded":
        raise ConfigError(
            f"catalog.url is set ({sources['catalog.url']}) but catalog.kind is 'embedded' "
            f"({sources['catalog.kind']}): remove one of them"
        )


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix or delete it.") from exc
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}") from exc


def _as_table(value: Any, what: str, where: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {what} must be a table (a {what} section), got "
                          f"{value!r}; fix it or remove it")
    return value


def _check(option: Option, value: Any, where: object) -> Any:
    """``value`` if it fits ``option``, else a ConfigError saying what to write."""
    label = f"[{option.section}] {option.name}"
    if option.type == "table":
        return dict(_as_table(value, f"[{option.key}]", where))
    if option.type == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {label} must be a string, got {value!r}; fix it "
                              "(in quotes) or remove it to use the default")
        return value
    wanted = int if option.type == "int" else int | float
    if isinstance(value, bool) or not isinstance(value, wanted) or (
            value <= option.minimum if option.exclusive else value < option.minimum):
        noun = "an integer" if option.type == "int" else "a number"
        bound = ">" if option.exclusive else ">="
        raise ConfigError(f"{where}: {label} must be {noun} {bound} {option.minimum:g}, "
                          f"got {value!r}; fix it or remove it to use the default")
    return value


def init_home_at(home: str | os.PathLike[str]) -> tuple[Path, bool]:
    """Make ``home`` itself an nbripple home (``--home PATH``, ``NBRIPPLE_HOME``): create
    it and a default ``config.toml`` if missing. Returns the resolved home and whether
    the config file was created now."""
    path = Path(home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    config = path / CONFIG_FILENAME
    created = not config.exists()
    if created:
        config.write_text(DEFAULT_CONFIG_TOML, encoding="utf-8")
    return path.resolve(), created


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
