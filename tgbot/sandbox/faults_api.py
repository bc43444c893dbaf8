"""Fault injection as JSON: what ``/demo/api/faults`` reads and writes.

The same settings tests change on ``emu.faults`` / ``emu.caps`` directly: added latency,
fractions of calls answered 429 / 5xx / timed out (some delivered anyway), Telegram's caps,
and users who blocked the bot (403 ``bot was blocked by the user``).
"""

from __future__ import annotations

import math
from typing import Any

from tgbot.sandbox.emulator import TelegramEmulator

#: Faults fields: name -> (minimum, maximum, type).
_FAULT_FIELDS: dict[str, tuple[float, float, type]] = {
    "latency": (0.0, 60.0, float),
    "rate_429": (0.0, 1.0, float),
    "rate_5xx": (0.0, 1.0, float),
    "rate_timeout": (0.0, 1.0, float),
    "timeout_after_delivery": (0.0, 1.0, float),
    "timeout_hold": (0.0, 600.0, float),
    "retry_after": (1, 3600, int),
}
#: Caps fields (Telegram's real values are the defaults of ``Caps``).
_CAP_FIELDS: dict[str, tuple[float, float, type]] = {
    "overall_per_second": (1, 100_000, int),
    "per_group_per_minute": (1, 100_000, int),
    "per_private_chat_per_second": (0.01, 100_000.0, float),
    "private_chat_burst": (1, 100_000, int),
}


class FaultsError(ValueError):
    """A faults setting is malformed; the message names it."""


def faults_state(emu: TelegramEmulator, user_ids: list[int] | None = None) -> dict[str, Any]:
    """Return the emulator's fault settings, caps and blocked users as JSON-ready data.

    Args:
        emu: the emulated Telegram.
        user_ids: the users whose blocked flag is listed (all known users by default).
    """
    faults = emu.faults
    caps = emu.caps
    ids = user_ids if user_ids is not None else list(emu.users)
    return {
        **{name: getattr(faults, name) for name in _FAULT_FIELDS},
        "methods": sorted(faults.methods),
        "caps": {"enabled": caps.enabled, **{name: getattr(caps, name) for name in _CAP_FIELDS}},
        "blocked": sorted(uid for uid in ids if uid in emu.users and emu.users[uid].blocked_bot),
    }


def _number(name: str, value: Any, low: float, high: float, kind: type) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FaultsError(f"{name}: expected a number")
    try:
        number = float(value)
    except ValueError:
        raise FaultsError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise FaultsError(f"{name}: must be between {low:g} and {high:g}")
    if kind is int:
        if number != int(number):
            raise FaultsError(f"{name}: expected a whole number")
        return int(number)
    return number


def apply_faults(emu: TelegramEmulator, payload: dict[str, Any]) -> None:
    """Change the settings named in ``payload`` (others stay); validate everything first.

    Raises:
        FaultsError: naming the first bad setting; nothing is changed then.
    """
    if not isinstance(payload, dict):
        raise FaultsError("expected a JSON object")
    known = {*_FAULT_FIELDS, "methods", "caps", "blocked"}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise FaultsError(f"unknown setting {unknown[0]!r}")
    fault_changes = {
        name: _number(name, payload[name], *_FAULT_FIELDS[name])
        for name in _FAULT_FIELDS
        if name in payload
    }
    methods = None
    if "methods" in payload:
        raw = payload["methods"]
        if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
            raise FaultsError("methods: expected a list of Bot API method names")
        canonical = [emu.spec.canonical(m) for m in raw]
        if None in canonical:
            raise FaultsError(f"methods: unknown method {raw[canonical.index(None)]!r}")
        methods = frozenset(m for m in canonical if m)
    cap_changes: dict[str, Any] = {}
    if "caps" in payload:
        caps = payload["caps"]
        if not isinstance(caps, dict):
            raise FaultsError("caps: expected an object")
        extra = sorted(set(caps) - {*_CAP_FIELDS, "enabled"})
        if extra:
            raise FaultsError(f"caps: unknown setting {extra[0]!r}")
        if "enabled" in caps:
            if not isinstance(caps["enabled"], bool):
                raise FaultsError("caps.enabled: expected true or false")
            cap_changes["enabled"] = caps["enabled"]
        for name, (low, high, kind) in _CAP_FIELDS.items():
            if name in caps:
                cap_changes[name] = _number(f"caps.{name}", caps[name], low, high, kind)
    blocked = None
    if "blocked" in payload:
        raw = payload["blocked"]
        if not isinstance(raw, list) or not all(
            isinstance(u, int) and not isinstance(u, bool) for u in raw
        ):
            raise FaultsError("blocked: expected a list of user ids")
        missing = [u for u in raw if u not in emu.users or emu.users[u].is_bot]
        if missing:
            raise FaultsError(f"blocked: no user {missing[0]}")
        blocked = set(raw)

    for name, value in fault_changes.items():
        setattr(emu.faults, name, value)
    if methods is not None:
        emu.faults.methods = methods
    for name, value in cap_changes.items():
        setattr(emu.caps, name, value)
    if blocked is not None:
        for user_id, user in list(emu.users.items()):
            if user.is_bot:
                continue
            if user_id in blocked and not user.blocked_bot:
                emu.block_bot(user_id)
            elif user_id not in blocked and user.blocked_bot:
                emu.unblock_bot(user_id)
