"""Audit log of agent and admin actions."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.db import Database


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded action: who did what to which target, with details."""

    id: int
    at: float
    actor_id: int | None
    action: str
    target: str | None
    details: dict[str, Any] = field(default_factory=dict)


def _entry(row: Any) -> AuditEntry:
    """Return an audit entry from its row (SQLite's or PostgreSQL's)."""
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor_id=row["actor_id"],
        action=row["action"],
        target=row["target"],
        details=json.loads(row["details"]),
    )


#: The start of an insert of one entry; :func:`entry_values` gives its five values.
INSERT = "INSERT INTO audit_log (at, actor_id, action, target, details) "


def entry_values(
    actor_id: int | None,
    action: str,
    target: str | int | None,
    details: dict[str, Any] | None,
    now: float,
) -> tuple[float, int | None, str, str | None, str]:
    """Return an entry's column values in :data:`INSERT`'s order (details as JSON text)."""
    text = json.dumps(details or {}, ensure_ascii=False)
    return (now, actor_id, action, None if target is None else str(target), text)


class AuditRepository:
    """Append-only audit log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        actor_id: int | None,
        action: str,
        target: str | int | None = None,
        details: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> int:
        """Append an entry and return its id.

        Args:
            actor_id: Telegram id of the agent/admin; None for the system itself.
            action: What was done, e.g. ``"broadcast.start"``.
            target: What it was done to (ticket id, user id...); stored as text.
            details: JSON-serializable extra facts; never codes or card numbers.
            now: Time of the action; defaults to the current time.
        """
        now = time.time() if now is None else now
        rows = await self._db.write(
            INSERT + "VALUES (?, ?, ?, ?, ?) RETURNING id",
            entry_values(actor_id, action, target, details, now),
        )
        return int(rows[0][0])

    async def since(self, actions: Sequence[str], since: float) -> list[AuditEntry]:
        """Return the entries of ``actions`` recorded at or after ``since``, oldest first."""
        if not actions:
            return []
        rows = await self._db.fetchall(
            "SELECT id, at, actor_id, action, target, details FROM audit_log "
            f"WHERE at >= ? AND action IN ({', '.join('?' * len(actions))}) ORDER BY at, id",
            (since, *actions),
        )
        return [_entry(row) for row in rows]

    async def recent(self, limit: int = 20) -> list[AuditEntry]:
        """Return the latest entries, newest first."""
        rows = await self._db.fetchall(
            "SELECT id, at, actor_id, action, target, details FROM audit_log "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_entry(row) for row in rows]
