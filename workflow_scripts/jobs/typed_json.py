"""Typed results to JSON and back, strictly: a missing, unexpected or mistyped key is named.

A result file is written by one job and read by another (a run's summary.json by ``collect``,
results/summary.json by ``report``), jobs that may run from different versions of the code.
Reading it back into the very dataclasses that wrote it (``training.run_contract.RunSummary``,
``reporting.results.StudyResult``) turns a renamed or removed field into one error naming its
path (``variants.baseline.runs[0].seed``) instead of a ``KeyError`` three modules later, or a
silently absent number.

The supported field types are the ones the results use: ``int``, ``float`` (an ``int`` is
accepted, JSON writes ``1.0`` as ``1.0`` but a hand-written file may not), ``str``, ``bool``,
``None``, ``Any`` (taken as it is), unions of these (``X | None``), ``list[X]``,
``tuple[X, ...]``, ``dict[str, X]``, ``dict[int, X]`` (JSON keys are strings; they are
converted back) and nested dataclasses. A dataclass may name *derived* keys it writes beside
its fields (``JSON_DERIVED = {"ci_half_width": "half_width"}``: key -> property); reading
accepts and ignores them, since they follow from the fields. A field declared with
``field(default=None, metadata=OMIT_WHEN_NONE)`` is left out of the JSON while it is
``None`` and read as ``None`` when absent (a key that only some rows carry).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

__all__ = ["OMIT_WHEN_NONE", "ResultFormatError", "decode", "encode"]

_OMIT_NONE = "omit_when_none"
#: field metadata: leave the key out of the JSON while the value is ``None``
OMIT_WHEN_NONE = {_OMIT_NONE: True}


class ResultFormatError(ValueError):
    """A results file whose content does not match the typed result; the message names the key."""


def encode(value: Any) -> Any:
    """A dataclass tree as JSON-able dicts, lists and scalars (field order kept; integer
    dict keys stay integers, so ``json.dumps(sort_keys=True)`` orders steps as numbers)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {
            f.name: encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get(_OMIT_NONE) and getattr(value, f.name) is None)
        }
        for key, attribute in getattr(type(value), "JSON_DERIVED", {}).items():
            out[key] = encode(getattr(value, attribute))
        return out
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(kind: Any, data: Any, where: str = "") -> Any:
    """``data`` (parsed JSON) as an instance of ``kind``; :class:`ResultFormatError` naming
    the key path ``where`` when it does not fit."""
    origin = typing.get_origin(kind)
    if kind is Any:
        return data
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _decode_dataclass(kind, data, where)
    if origin in (Union, types.UnionType):
        return _decode_union(typing.get_args(kind), data, where)
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise _wrong(where, "a list", data)
        item = typing.get_args(kind)[0]
        items = [decode(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
        return items if origin is list else tuple(items)
    if origin is dict:
        return _decode_dict(typing.get_args(kind), data, where)
    return _decode_scalar(kind, data, where)


def _decode_dataclass(kind: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _wrong(where, f"an object ({kind.__name__})", data)
    hints = typing.get_type_hints(kind)
    fields = [f for f in dataclasses.fields(kind) if f.init]
    names = {f.name for f in fields}
    derived = set(getattr(kind, "JSON_DERIVED", {}))
    unexpected = sorted(set(data) - names - derived)
    if unexpected:
        raise ResultFormatError(
            f"key '{_join(where, unexpected[0])}' is not a field of {kind.__name__} "
            f"(expected {', '.join(sorted(names))}); the file was written by another version: rerun collect."
        )
    values = {}
    for f in fields:
        path = _join(where, f.name)
        if f.name not in data:
            if f.metadata.get(_OMIT_NONE):
                continue
            raise ResultFormatError(f"key '{path}' is missing; rerun collect.")
        values[f.name] = decode(hints[f.name], data[f.name], path)
    return kind(**values)


def _decode_union(options: tuple[Any, ...], data: Any, where: str) -> Any:
    if data is None and type(None) in options:
        return None
    kinds = [option for option in options if option is not type(None)]
    if len(kinds) == 1:  # ``X | None`` with a value: X's own error names the inner key
        return decode(kinds[0], data, where)
    for option in options:
        if option is type(None):
            continue
        try:
            return decode(option, data, where)
        except ResultFormatError:
            continue
    allowed = " or ".join(_name(o) for o in options)
    raise _wrong(where, allowed, data)


def _decode_dict(args: tuple[Any, ...], data: Any, where: str) -> dict[Any, Any]:
    if not isinstance(data, dict):
        raise _wrong(where, "an object", data)
    key_kind, value_kind = args
    out = {}
    for key, value in data.items():
        path = _join(where, str(key))
        if key_kind is int:
            try:
                typed_key: Any = int(key)
            except ValueError as exc:
                raise ResultFormatError(f"key '{path}' must be an integer key.") from exc
        else:
            typed_key = key
        out[typed_key] = decode(value_kind, value, path)
    return out


#: Each scalar field type: what a JSON value of it must be, and how the error names it
#: (``bool`` is an ``int`` to Python, never to a result file).
_SCALARS: dict[Any, tuple[Any, str]] = {
    type(None): (lambda v: v is None, "null"),
    bool: (lambda v: isinstance(v, bool), "true or false"),
    float: (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _decode_scalar(kind: Any, data: Any, where: str) -> Any:
    if kind not in _SCALARS:
        raise TypeError(f"{where}: the codec cannot read fields of type {kind!r}")
    accepts, expected = _SCALARS[kind]
    if accepts(data):
        return data
    raise _wrong(where, expected, data)


def _wrong(where: str, expected: str, data: Any) -> ResultFormatError:
    shown = repr(data) if not isinstance(data, dict | list) else type(data).__name__
    return ResultFormatError(f"key '{where or '(top level)'}' must be {expected}, got {shown[:80]}.")


def _name(kind: Any) -> str:
    return "null" if kind is type(None) else getattr(kind, "__name__", str(kind))


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
