"""Refund requests made through the bot, and small persisted settings (PostgreSQL)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from storage.postgres.db import PostgresDatabase
from storage.repos.audit import INSERT as AUDIT_INSERT
from storage.repos.audit import entry_values
from storage.repos.refunds import _ORDER, RefundRecord, _record

#: A status's place in the wallet's order (one we do not know, a wallet's own initial one,
#: comes first).
_RANK = (
    "CASE {} "
    + " ".join(f"WHEN '{status}' THEN {i}" for i, status in enumerate(_ORDER))
    + " ELSE -1 END"
)


class RefundRepository:
    """Refunds seen by the bot, by wallet reference."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def record(
        self,
        refund_id: str,
        user_id: int,
        account_id: str,
        transaction_id: str,
        amount: Decimal,
        currency: str,
        reason: str,
        status: str,
        now: float | None = None,
        *,
        audit: dict[str, Any] | None = None,
    ) -> bool:
        """Remember a refund the user asked for; False if it was already known. With
        ``audit``, its ``refund.create`` entry is written too, in the same statement, only
        if the refund is new."""
        now = time.time() if now is None else now
        insert = (
            "INSERT INTO refunds (id, user_id, account_id, transaction_id, amount, currency, "
            "reason, status, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (id) DO NOTHING "
            "RETURNING id"
        )
        values = [
            refund_id,
            user_id,
            account_id,
            transaction_id,
            Decimal(str(amount)),
            currency,
            reason,
            status,
            now,
        ]
        if audit is not None:
            # One statement: the audit row is inserted from the refund's RETURNING rows,
            # so none when the refund was known already.
            insert = (
                f"WITH new AS ({insert}), logged AS ({AUDIT_INSERT}"
                "SELECT $9, $2, 'refund.create', id, $10::json FROM new) SELECT id FROM new"
            )
            values.append(entry_values(user_id, "refund.create", refund_id, audit, now)[4])
        return bool(await self._db.write(insert, values))

    async def get(self, refund_id: str) -> RefundRecord | None:
        """Return a known refund."""
        row = await self._db.fetchone("SELECT * FROM refunds WHERE id = $1", (refund_id,))
        return _record(row) if row else None

    async def for_user(self, user_id: int, limit: int = 20) -> list[RefundRecord]:
        """Return a user's refunds, newest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM refunds WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
            (user_id, limit),
        )
        return [_record(row) for row in rows]

    async def advance(self, refund_id: str, status: str, now: float | None = None) -> bool:
        """Record a later status; False if the refund is unknown or already had this status or
        a later one (a slow poll must not move it back, nor tell the user twice)."""
        now = time.time() if now is None else now
        return (
            await self._db.execute(
                f"UPDATE refunds SET status = $1, updated_at = $2 WHERE id = $3 "
                f"AND {_RANK.format('$1::text')} > {_RANK.format('status')}",
                (status, now, refund_id),
            )
            > 0
        )


class SettingsRepository:
    """Small named values that must survive restarts (e.g. a poller's position)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        """Return a setting, or None."""
        return await self._db.fetchval("SELECT value FROM settings WHERE key = $1", (key,))

    async def set(self, key: str, value: str) -> None:
        """Store a setting."""
        await self._db.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value",
            (key, value),
        )

    async def delete(self, key: str) -> None:
        """Forget a setting."""
        await self._db.execute("DELETE FROM settings WHERE key = $1", (key,))
