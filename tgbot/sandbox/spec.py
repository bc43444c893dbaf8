"""Bot API method signatures, loaded from the machine-readable spec (Bot API 10.0)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PACKAGED_SPEC = Path(__file__).with_name("botapi.json")
SHARED_SPEC = Path(__file__).resolve().parents[2].parent / "shared/botapi/api.json"

# Telegram's own wording for a few missing required parameters; others say "<name> is empty".
_MISSING_TEXTS = {
    "text": "message text is empty",
    "photo": "there is no photo in the request",
    "document": "there is no document in the request",
    "voice": "there is no voice in the request",
    "video": "there is no video in the request",
    "sticker": "there is no sticker in the request",
    "callback_query_id": "query_id is empty",
}


class ParameterError(Exception):
    """A parameter Telegram would reject with 400 Bad Request."""


@dataclass(frozen=True)
class Field:
    """One declared parameter of a Bot API method."""

    name: str
    types: tuple[str, ...]
    required: bool


@dataclass
class Method:
    """One Bot API method: its parameters by name and its return types."""

    name: str
    fields: dict[str, Field]
    returns: tuple[str, ...] = ()


@dataclass
class DecodedCall:
    """Parameters decoded to Python values, plus what strict mode should report."""

    params: dict[str, Any] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    mistyped: list[str] = field(default_factory=list)


def missing_parameter_text(name: str) -> str:
    """Return Telegram's description for a missing required parameter ``name``."""
    return "Bad Request: " + _MISSING_TEXTS.get(name, f"{name} is empty")


class ApiSpec:
    """The set of Bot API methods and how their string-form parameters decode."""

    def __init__(self, raw: dict[str, Any]) -> None:
        """Build the spec from the parsed ``api.json`` document."""
        self.version: str = raw.get("version", "")
        self.methods: dict[str, Method] = {}
        for name, body in raw["methods"].items():
            fields = {
                f["name"]: Field(f["name"], tuple(f["types"]), bool(f["required"]))
                for f in body.get("fields", [])
            }
            self.methods[name] = Method(name, fields, tuple(body.get("returns", [])))
        # Telegram method names are case-insensitive.
        self._by_lower = {name.lower(): name for name in self.methods}
        self.types: dict[str, list[dict[str, Any]]] = {
            name: body.get("fields", []) for name, body in raw.get("types", {}).items()
        }

    def canonical(self, method: str) -> str | None:
        """Return the canonical spelling of ``method`` or None if Telegram has no such method."""
        return self._by_lower.get(method.lower())

    def decode(self, method: str, raw: dict[str, str]) -> DecodedCall:
        """Decode string-form parameters of ``method`` by their declared types.

        Args:
            method: canonical method name.
            raw: parameter name to wire value (strings, JSON for objects and arrays).

        Raises:
            ParameterError: a required parameter is missing.
        """
        spec = self.methods[method]
        out = DecodedCall()
        for name, value in raw.items():
            declared = spec.fields.get(name)
            if declared is None:
                out.unknown.append(name)
                continue
            try:
                out.params[name] = decode_value(declared.types, value)
            except (ValueError, TypeError):
                # Telegram cannot read the value: it acts as if the parameter were absent.
                out.mistyped.append(name)
        for declared in spec.fields.values():
            if declared.required and declared.name not in out.params:
                raise ParameterError(missing_parameter_text(declared.name))
        return out


def decode_value(types: tuple[str, ...], value: Any) -> Any:
    """Decode one wire value according to its declared ``types``."""
    if not isinstance(value, str):
        return value
    if "InputFile" in types:
        return value
    if "Integer" in types:
        try:
            return int(value)
        except ValueError:
            if "String" in types:
                return value
            number = float(value)
            if not number.is_integer():
                raise
            return int(number)
    if types == ("Boolean",):
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0", ""):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    if "Float" in types or "Float number" in types:
        return float(value)
    if "String" in types:
        return value
    return json.loads(value)


@cache
def load_spec() -> ApiSpec:
    """Load the packaged spec copy, falling back to the shared one."""
    path = PACKAGED_SPEC if PACKAGED_SPEC.exists() else SHARED_SPEC
    return ApiSpec(json.loads(path.read_text(encoding="utf-8")))
