"""One codec for typed records and results (the chain record, worker requests and replies): a dataclass to
JSON-ready data and back.

Decoding is checked against the dataclass's type hints (str, int, float, bool, Path, lists, dicts with
string keys, nested dataclasses, and `X | None`): a value of the wrong type is an error naming where it
is (`chain.results.mini.mix.rows`), never a silent default. Unknown keys are ignored (a newer writer may
add some), a missing field takes its default, and one without a default is an error.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from vocabd.errors import VocabdError

T = TypeVar("T")
SCALARS = {int: "a whole number", str: "a string", bool: "true or false"}


class DecodeError(VocabdError):
    """Data that is not of the shape its dataclass declares."""


def encode(value: Any) -> Any:
    """JSON-ready data: dataclasses as objects (fields only), paths as strings, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(cls: type[T], data: Any, where: str = "") -> T:
    """`data` (as `encode` wrote it, or read from JSON) as a `cls`."""
    return _decode(cls, data, where or cls.__name__)


def _decode(hint: Any, data: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if data is None and len(options) < len(get_args(hint)):
            return None
        errors = []
        for option in options:
            try:
                return _decode(option, data, where)
            except DecodeError as e:
                errors.append(str(e))
        raise DecodeError(errors[0] if len(errors) == 1 else f"{where}: {data!r} fits none of {hint}")
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        return [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(_expect(data, list, where))]
    if origin is dict:
        _, value = get_args(hint) or (str, Any)
        return {str(k): _decode(value, v, f"{where}.{k}") for k, v in _expect(data, dict, where).items()}
    if dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, data, where)
    return _decode_scalar(hint, data, where)


def _decode_dataclass(cls: type, data: Any, where: str) -> Any:
    data = _expect(data, dict, where)
    hints = get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in data:
            values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DecodeError(f"{where}.{f.name} is missing")
    return cls(**values)


def _decode_scalar(hint: Any, data: Any, where: str) -> Any:
    if hint is Any:
        return data
    if hint in (dict, list):  # free-form JSON, kept as it is
        return _expect(data, hint, where)
    if hint is Path:
        return Path(_expect(data, str, where))
    if hint is float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        raise DecodeError(f"{where} is {data!r}, not a number")
    if hint in SCALARS:
        if isinstance(data, hint) and (hint is bool or not isinstance(data, bool)):
            return data
        raise DecodeError(f"{where} is {data!r}, not {SCALARS[hint]}")
    raise DecodeError(f"{where}: no decoding for {hint!r}")


def _expect(data: Any, kind: type, where: str) -> Any:
    if not isinstance(data, kind):
        raise DecodeError(f"{where} is {type(data).__name__}, not {'an object' if kind is dict else kind.__name__}")
    return data
