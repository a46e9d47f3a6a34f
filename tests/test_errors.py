"""The one table from each NbrippleError to an exit code, an HTTP status and a message."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import nbripple
from nbripple import errors
from nbripple.errors import ERROR_TABLE, NbrippleError, error_info


def _all_subclasses(cls: type[BaseException]) -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def _nbripple_errors() -> list[type[BaseException]]:
    for module in pkgutil.walk_packages(nbripple.__path__, "nbripple."):
        importlib.import_module(module.name)  # every error class of the package is defined
    return [cls for cls in [NbrippleError, *_all_subclasses(NbrippleError)]
            if cls.__module__.startswith("nbripple.")]


def test_every_nbripple_error_has_its_own_entry_in_the_table() -> None:
    classes = _nbripple_errors()
    missing = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes
                     if c.__name__ not in ERROR_TABLE)
    assert missing == [], "add these to nbripple.errors.ERROR_TABLE"
    names = [c.__name__ for c in classes]
    assert len(names) == len(set(names)), "the table is keyed by class name: names must differ"
    assert set(ERROR_TABLE) <= set(names), "the table names a class that does not exist"


EXPECTED_STATUS = {
    "NbrippleError": 400, "ConfigError": 500, "InvalidNameError": 400,
    "DeclarationMismatch": 409, "PartitionError": 400, "UnknownPartitionKey": 400,
    "MissingPartitionKey": 400, "KindError": 400, "InvalidReference": 400, "NotFound": 404,
    "ArtifactNotFound": 404, "VersionNotFound": 404, "ExecutionNotFound": 404,
    "IntegrityError": 500, "StorePathError": 400, "CatalogLockedError": 409,
    "SchemaVersionError": 500, "IngestError": 400, "ParametersError": 400,
    "NotebookNotFound": 404, "KernelNotFound": 404, "InputResolutionError": 400,
    "PlanError": 400, "PlanNotFound": 404,
    "CatalogError": 500, "CatalogDamaged": 500, "CatalogReadOnly": 500, "DiskFull": 500,
    "ServerUnavailable": 503,
    "SymlinkError": 400, "StoreError": 500, "StoreWriteError": 500, "ServerStateError": 409,
    "NotebookPathError": 400,
}


@pytest.mark.parametrize("cls", _nbripple_errors(), ids=lambda c: c.__name__)
def test_each_error_maps_to_its_status_exit_code_and_one_line_message(
        cls: type[BaseException]) -> None:
    exc = cls.__new__(cls)
    Exception.__init__(exc, "first line\n  second line ")
    info = error_info(exc)
    assert info.name == cls.__name__
    assert info.message == "first line | second line"
    assert info.exit_code == errors.EXIT_ERROR
    assert info.http_status == EXPECTED_STATUS[cls.__name__]


def test_an_unmapped_subclass_takes_its_nearest_mapped_base() -> None:
    class Special(errors.VersionNotFound):
        pass

    assert error_info(Special("gone")).http_status == 404
    assert error_info(errors.DeclarationMismatch("x")).http_status == 409


def test_an_error_that_is_not_nbripples_is_a_server_error_named_by_its_class() -> None:
    info = error_info(RuntimeError(""))
    assert (info.name, info.message, info.exit_code, info.http_status) == \
        ("RuntimeError", "RuntimeError", 1, 500)
