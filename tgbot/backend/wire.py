"""JSON form of the backend's dataclasses, as in ``docs/wallet-api.yaml``.

Decimal amounts travel as strings (``"88.00"``), datetimes as ISO 8601 with an offset
(``"2026-11-02T08:30:00+00:00"``). The same form is used by the http client, by test
servers and by the demo wallet's idempotency records.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


class WireError(ValueError):
    """A JSON value does not have the documented shape."""


def to_wire(value: Any) -> Any:
    """Return the JSON-ready form of a dataclass, dict, list, Decimal or datetime."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    return value


def format_datetime(value: datetime) -> str:
    """Return ISO 8601 in UTC, e.g. ``"2026-11-02T08:30:00+00:00"``."""
    if value.tzinfo is None:
        raise WireError("naive datetimes are ambiguous; pass a timezone-aware one")
    return value.astimezone(UTC).isoformat()


def parse_datetime(value: str) -> datetime:
    """Parse ISO 8601 with an offset (``Z`` accepted) into an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError, AttributeError) as exc:
        raise WireError(f"not an ISO 8601 datetime: {value!r}") from exc
    if parsed.tzinfo is None:
        raise WireError(f"datetime without an offset: {value!r}")
    return parsed.astimezone(UTC)


def parse_decimal(value: Any) -> Decimal:
    """Parse a decimal string (numbers are refused: they lose precision in JSON)."""
    if not isinstance(value, str):
        raise WireError(f"amounts are strings, got {value!r}")
    try:
        parsed = Decimal(value)
    except InvalidOperation as exc:
        raise WireError(f"not a decimal: {value!r}") from exc
    if not parsed.is_finite():
        raise WireError(f"not a finite decimal: {value!r}")
    return parsed


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_wire(cls: type[T], data: Any) -> T:
    """Build a dataclass ``cls`` from its JSON form; raises :class:`WireError`."""
    return typing.cast(T, _convert(cls, data))


def _convert(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _convert(inner, value)
    if origin is dict:
        if not isinstance(value, dict):
            raise WireError(f"expected an object, got {value!r}")
        key_type, inner = typing.get_args(tp)
        return {_convert(key_type, k): _convert(inner, item) for k, item in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise WireError(f"expected a list, got {value!r}")
        (inner,) = typing.get_args(tp)
        return [_convert(inner, item) for item in value]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise WireError(f"expected an object for {tp.__name__}, got {value!r}")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _convert(hints[f.name], value[f.name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise WireError(f"{tp.__name__}.{f.name} is missing")
        # Unknown fields are ignored, so the API can grow without breaking old bots.
        return tp(**kwargs)
    if tp is Decimal:
        return parse_decimal(value)
    if tp is datetime:
        return parse_datetime(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise WireError(f"expected a boolean, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WireError(f"expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise WireError(f"expected a string, got {value!r}")
        return value
    raise WireError(f"cannot convert to {tp!r}")
