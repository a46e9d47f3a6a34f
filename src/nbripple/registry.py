"""The plug-in seams chosen by configuration: which catalog, which executor.

Two registries map a *kind* (``[catalog] kind``, ``[executor] kind`` in config.toml)
to a factory, as papermill does for its engines. A factory is called with the
:class:`~nbripple.config.Settings` and keyword options and returns the object::

    def dask_executor(settings: Settings, *, address: str) -> Executor: ...

The built-ins are registered at the bottom of this module (``embedded``, ``local``);
then installed packages add theirs through entry points (groups ``nbripple.catalogs``
and ``nbripple.executors``; nbripple declares its built-ins there too)::

    [project.entry-points."nbripple.executors"]
    dask = "nbripple_dask:DaskExecutor"

or in code with :func:`register_executor` / :func:`register_catalog`. A later
registration of a name wins: code over entry points over the built-ins.
Implementations are imported only when chosen, so importing this module is cheap
(no DuckDB, no papermill).
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .config import Settings, Source
from .errors import ConfigError

if TYPE_CHECKING:
    from .catalog import Catalog
    from .executors import Executor

T = TypeVar("T")
Factory = Callable[..., T]  # (settings, **options) -> T


def load_object(target: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Named factories of one kind of plug-in, filled from code and entry points.

    Args:
        what: what the factories make, for messages (``"catalog"``).
        group: the entry-point group (``"nbripple.catalogs"``).
    """

    def __init__(self, what: str, group: str) -> None:
        self.what = what
        self.group = group
        self._builtins: dict[str, Factory[T] | str] = {}
        self._entry_points: dict[str, str] | None = None  # read on first use
        self._registered: dict[str, Factory[T] | str] = {}

    def register(self, name: str, factory: Factory[T] | str) -> None:
        """Add (or replace) ``name``: a factory, or its ``"module:attribute"``."""
        self._registered[name] = factory

    def unregister(self, name: str) -> None:
        """Forget a name added with :meth:`register` (entry points and built-ins stay)."""
        self._registered.pop(name, None)

    def _builtin(self, name: str, factory: Factory[T] | str) -> None:
        self._builtins[name] = factory

    def _installed(self) -> dict[str, str]:
        if self._entry_points is None:
            from importlib.metadata import entry_points  # slow to import: only when needed

            self._entry_points = {ep.name: ep.value for ep in entry_points(group=self.group)}
        return self._entry_points

    def names(self) -> list[str]:
        """Every known kind, sorted."""
        return sorted({*self._builtins, *self._installed(), *self._registered})

    def factory(self, name: str, source: Source | None = None) -> Factory[T]:
        """The factory of kind ``name``; a ConfigError listing the known kinds if none."""
        target = self._registered.get(name) or self._installed().get(name) \
            or self._builtins.get(name)
        where = f" ({source})" if source is not None and source.kind != "default" else ""
        if target is None:
            raise ConfigError(
                f"unknown {self.what} kind {name!r}{where}: known kinds are "
                f"{', '.join(self.names())}; fix [{self.what}] kind or install the package "
                f"that provides {name!r}"
            )
        if isinstance(target, str):
            try:
                loaded: Factory[T] = load_object(target)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(
                    f"the {self.what} kind {name!r}{where} could not be loaded from "
                    f"{target!r}: {exc}; reinstall the package that provides it"
                ) from exc
            return loaded
        return target

    def make(self, name: str, settings: Settings, source: Source | None = None,
             **options: Any) -> T:
        """Build kind ``name``; options it does not take are a ConfigError."""
        import inspect

        factory = self.factory(name, source)
        try:
            inspect.signature(factory).bind(settings, **options)
        except TypeError as exc:
            accepted = _option_names(factory)
            raise ConfigError(
                f"the {self.what} kind {name!r} does not take these options: {exc} "
                f"(its options: {', '.join(accepted) or 'none'}); fix [{self.what}.options]"
            ) from exc
        except ValueError:  # no signature (a builtin): let the call tell
            pass
        return factory(settings, **options)


def _option_names(factory: Callable[..., Any]) -> list[str]:
    import inspect

    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters[1:]
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


catalogs: Registry[Catalog] = Registry("catalog", "nbripple.catalogs")
executors: Registry[Executor] = Registry("executor", "nbripple.executors")


def register_catalog(name: str, factory: Factory[Catalog] | str) -> None:
    """Make ``[catalog] kind = name`` build catalogs with ``factory(settings)``."""
    catalogs.register(name, factory)


def register_executor(name: str, factory: Factory[Executor] | str) -> None:
    """Make ``[executor] kind = name`` build executors with
    ``factory(settings, **options)`` (the options come from ``[executor.options]``)."""
    executors.register(name, factory)


def make_catalog(settings: Settings) -> Catalog:
    """The catalog the settings choose (``[catalog] kind``, default ``embedded``).

    For the default, a live server that owns the home (its ``server.json``, see
    :mod:`nbripple.discovery`) wins: the process uses the served catalog, so
    the server stays the file's only writer. A URL (``NBRIPPLE_URL``, ``[catalog]
    url``) makes the kind ``served`` (see :mod:`nbripple.config`).
    """
    kind, source = settings.catalog.kind, settings.source("catalog.kind")
    if kind == "embedded" and source.kind == "default" and owning_server(settings) is not None:
        return catalogs.make("served", settings)
    return catalogs.make(kind, settings, source)


def owning_server(settings: Settings) -> tuple[str, str] | None:
    """``(url, token)`` of the live server that owns the home (not this process), from
    its ``server.json``; None when there is none or its owner is gone."""
    from .discovery import live_server  # only when a catalog is made

    info = live_server(settings.home)
    if info is None or (info.pid == os.getpid() and info.host == socket.gethostname()):
        return None
    return str(info.url), str(info.token)


def make_executor(settings: Settings, **options: Any) -> Executor:
    """The executor the settings choose (``[executor] kind``, default ``local``), with
    ``[executor.options]`` updated by ``options``."""
    return executors.make(settings.executor.kind, settings, settings.source("executor.kind"),
                          **{**settings.executor.options, **options})


# -- the built-ins ----------------------------------------------------------------
def embedded_catalog(settings: Settings) -> Catalog:
    """``embedded``: the home's DuckDB file (:class:`nbripple.catalog.EmbeddedCatalog`),
    shared by every workspace of this process on the same file."""
    embedded = load_object("nbripple.catalog.embedded:EmbeddedCatalog")
    catalog: Catalog = embedded.for_path(
        settings.catalog_path, idle_release_ms=settings.catalog.idle_release_ms,
        lock_timeout_s=settings.catalog.lock_timeout_s,
    )
    return catalog


def served_catalog(settings: Settings) -> Catalog:
    """``served``: the catalog of a server over HTTP
    (:class:`nbripple.catalog.served.ServedCatalog`): ``[catalog] url`` and ``token``
    (``NBRIPPLE_URL``/``NBRIPPLE_TOKEN``) when set, else the server that owns the home.
    After a failed request it looks for the home's server again (it may have been
    restarted on another port)."""
    served = load_object("nbripple.catalog.served:ServedCatalog")
    if settings.catalog.url:
        catalog: Catalog = served(settings.catalog.url, settings.catalog.token)
        return catalog
    found = owning_server(settings)
    if found is None:
        raise ConfigError(
            f"the catalog kind is 'served' but no URL is set and no live server owns "
            f"{settings.home}: set NBRIPPLE_URL (and NBRIPPLE_TOKEN) or [catalog] url, or "
            f"start one with: nbripple serve --home {settings.home}")
    catalog = served(found[0], found[1], discover=lambda: owning_server(settings))
    return catalog


def local_executor(settings: Settings, *, warm: int = 2, kernel_name: str = "python3",
                   fork_server: bool = True) -> Executor:
    """``local``: each run in its own process here (:class:`nbripple.executors.LocalExecutor`),
    with ``warm`` processes waiting on a started ``kernel_name`` kernel, forked from one
    that has imported what a run needs unless ``fork_server`` is false."""
    if isinstance(warm, bool) or not isinstance(warm, int) or warm < 0:
        raise ConfigError(f"[executor.options] warm must be an integer >= 0, got {warm!r}")
    if not isinstance(kernel_name, str) or not kernel_name:
        raise ConfigError(f"[executor.options] kernel_name must be a kernel name, "
                          f"got {kernel_name!r}")
    if not isinstance(fork_server, bool):
        raise ConfigError(f"[executor.options] fork_server must be true or false, "
                          f"got {fork_server!r}")
    executor: Executor = load_object("nbripple.executors:LocalExecutor")(
        warm=warm, kernel_name=kernel_name, fork_server=fork_server)
    return executor


catalogs._builtin("embedded", embedded_catalog)
catalogs._builtin("served", served_catalog)
executors._builtin("local", local_executor)

__all__ = [
    "Registry",
    "catalogs",
    "embedded_catalog",
    "executors",
    "load_object",
    "local_executor",
    "make_catalog",
    "make_executor",
    "owning_server",
    "register_catalog",
    "register_executor",
    "served_catalog",
]
