"""The catalog's records as JSON, both ways, for the catalog over HTTP.

JSON has no datetimes, tuples, sets or records, so those are tagged: ``{"$dt": iso}``,
``{"$tuple": [...]}``, ``{"$set": [...]}``, ``{"$map": [[key, value], ...]}`` (a dict
whose keys are not all plain strings) and ``{"$type": "Execution", "fields": {...}}``
for the record classes of :data:`RECORDS` — and only those: decoding never imports
or calls anything else, so a request body cannot become code. Private fields (a
record's workspace handle) are not sent.

Example::

    text = dumps({"args": [execution], "kwargs": {}})
    loads(text)["args"][0] == execution
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from ...model import (
    ArtifactDecl,
    ArtifactVersion,
    CardRevision,
    Event,
    Execution,
    Firing,
    InputRecord,
    NewVersion,
    PlanRecord,
)
from ...refs import Pinned, Query

RECORDS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (ArtifactDecl, ArtifactVersion, CardRevision, Event, Execution, Firing,
                InputRecord, NewVersion, PlanRecord, Pinned, Query)
}
_TAGS = ("$dt", "$tuple", "$set", "$map", "$type")


class CodecError(ValueError):
    """A payload that is not an encoding of catalog values."""


def encode(value: Any) -> Any:
    """``value`` as plain JSON data (see the module docstring for the tags)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, set | frozenset):
        return {"$set": [encode(v) for v in sorted(value, key=repr)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"$map": [[encode(k), encode(v)] for k, v in value.items()]}
    cls = type(value)
    if dataclasses.is_dataclass(value) and RECORDS.get(cls.__name__) is cls:
        fields = {f.name: encode(getattr(value, f.name))
                  for f in dataclasses.fields(value) if not f.name.startswith("_")}
        return {"$type": cls.__name__, "fields": fields}
    raise CodecError(f"cannot send a {cls.__name__} to or from a served catalog")


def decode(data: Any) -> Any:
    """The value :func:`encode` encoded; CodecError for anything else."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        raise CodecError(f"unexpected {type(data).__name__} in a catalog payload")
    tag = next((t for t in _TAGS if t in data), None)
    if tag is None:
        return {k: decode(v) for k, v in data.items()}
    body = data[tag]
    try:
        if tag == "$dt":
            return datetime.fromisoformat(body)
        if tag == "$tuple":
            return tuple(decode(v) for v in body)
        if tag == "$set":
            return {decode(v) for v in body}
        if tag == "$map":
            return {_hashable(decode(k)): decode(v) for k, v in body}
        cls = RECORDS.get(body) if isinstance(body, str) else None
        if cls is None:
            raise CodecError(f"unknown record type {body!r} in a catalog payload")
        fields = data.get("fields")
        if not isinstance(fields, dict):
            raise CodecError(f"record {body} without its fields")
        return cls(**{k: decode(v) for k, v in fields.items()})
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"malformed {tag} in a catalog payload: {exc}") from exc


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key


def dumps(value: Any) -> str:
    """``value`` encoded, as compact JSON text."""
    return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    """The value of :func:`dumps`' text; CodecError for text that is not one."""
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CodecError(f"not JSON: {exc}") from exc
    return decode(data)


__all__ = ["RECORDS", "CodecError", "decode", "dumps", "encode", "loads"]
