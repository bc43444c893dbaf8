"""Audit log of agent and admin actions (PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from storage.postgres.db import PostgresDatabase
from storage.repos.audit import AuditEntry, _entry


class AuditRepository:
    """Append-only audit log."""

    def __init__(self, db: PostgresDatabase) -> None:
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
        return int(
            await self._db.fetchval(
                "INSERT INTO audit_log (at, actor_id, action, target, details) "
                "VALUES ($1, $2, $3, $4, $5::json) RETURNING id",
                (
                    now,
                    actor_id,
                    action,
                    None if target is None else str(target),
                    json.dumps(details or {}, ensure_ascii=False),
                ),
            )
        )

    async def since(self, actions: Sequence[str], since: float) -> list[AuditEntry]:
        """Return the entries of ``actions`` recorded at or after ``since``, oldest first."""
        if not actions:
            return []
        rows = await self._db.fetchall(
            "SELECT id, at, actor_id, action, target, details FROM audit_log "
            "WHERE at >= $1 AND action = ANY($2::text[]) ORDER BY at, id",
            (since, list(actions)),
        )
        return [_entry(row) for row in rows]

    async def recent(self, limit: int = 20) -> list[AuditEntry]:
        """Return the latest entries, newest first."""
        rows = await self._db.fetchall(
            "SELECT id, at, actor_id, action, target, details FROM audit_log "
            "ORDER BY id DESC LIMIT $1",
            (limit,),
        )
        return [_entry(row) for row in rows]
