"""JSON with tags, so persisted user/chat data round-trips more than plain JSON types.

Plain JSON values are stored as they are. Other supported values become an
object ``{"__t": tag, "v": value}``:

- ``tuple``, ``set``, ``frozenset`` (items encoded recursively)
- ``datetime.datetime``, ``datetime.date``, ``datetime.time`` (ISO 8601, tz kept)
- ``datetime.timedelta`` (days, seconds, microseconds), ``decimal.Decimal`` (string, exact)
- a ``dict`` whose keys are not all strings, or that has a ``"__t"`` key
  (a list of ``[key, value]`` pairs)

Subclasses of ``str``/``int`` (e.g. ``StrEnum`` states) come back as the plain
base type, which compares and hashes equal. Anything else raises ``TypeError``
naming the type, so a bad value fails where it is written, not at restart.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

_TAG = "__t"


def dumps(value: Any) -> str:
    """Serialize ``value`` to tagged JSON."""
    return json.dumps(_encode(value), ensure_ascii=False, separators=(",", ":"), allow_nan=True)


def loads(text: str) -> Any:
    """Deserialize tagged JSON produced by :func:`dumps`."""
    return _decode(json.loads(text))


def _encode(value: Any) -> Any:
    # bool is an int and StrEnum is a str: both are fine as plain JSON.
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value) and _TAG not in value:
            return {key: _encode(item) for key, item in value.items()}
        return {_TAG: "map", "v": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": [_encode(item) for item in value]}
    if isinstance(value, frozenset):
        return {_TAG: "frozenset", "v": [_encode(item) for item in value]}
    if isinstance(value, set):
        return {_TAG: "set", "v": [_encode(item) for item in value]}
    # datetime is a date subclass, so it is checked first.
    if isinstance(value, dt.datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {_TAG: "time", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        # Exact components: total_seconds() as a float can lose microseconds.
        return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {_TAG: "decimal", "v": str(value)}
    raise TypeError(
        f"Cannot persist a value of type {type(value).__name__}; store plain data "
        "(str, int, float, bool, None, list, dict, tuple, set, datetime, Decimal)"
    )


_DECODERS: dict[str, Any] = {
    "map": lambda v: {_decode(k): _decode(item) for k, item in v},
    "tuple": lambda v: tuple(_decode(item) for item in v),
    "set": lambda v: {_decode(item) for item in v},
    "frozenset": lambda v: frozenset(_decode(item) for item in v),
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": Decimal,
}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag is not None:
            try:
                decoder = _DECODERS[tag]
            except KeyError:
                raise ValueError(f"Unknown tag in persisted data: {tag!r}") from None
            return decoder(value["v"])
        return {key: _decode(item) for key, item in value.items()}
    return value
