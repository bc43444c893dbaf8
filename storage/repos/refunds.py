"""Refund requests made through the bot, and small persisted settings."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from storage.db import Database
from storage.repos.audit import INSERT, entry_values


@dataclass(frozen=True, slots=True)
class RefundRecord:
    """A refund the bot created for a user, with the last status they were told."""

    id: str
    user_id: int
    account_id: str
    transaction_id: str
    amount: Decimal
    currency: str
    reason: str
    status: str
    created_at: float
    updated_at: float


class RefundRepository:
    """Refunds seen by the bot, by wallet reference."""

    def __init__(self, db: Database) -> None:
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
        """Remember a refund the user asked for; False if it was already known.

        With ``audit`` (its details), the user's ``refund.create`` audit entry is written in
        the same transaction, and only if the refund is new (a replayed update or a second
        "check again" logs nothing twice).
        """
        now = time.time() if now is None else now
        values = (refund_id, user_id, account_id, transaction_id, str(amount), currency)
        insert = (
            "INSERT OR IGNORE INTO refunds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (*values, reason, status, now, now),
        )
        if audit is None:
            return bool(await self._db.write(*insert))
        rows, _ = await self._db.write_all(
            [
                insert,
                (  # changes(): the rows the insert above added (0 when it was known)
                    INSERT + "SELECT ?, ?, ?, ?, ? WHERE changes() = 1",
                    entry_values(user_id, "refund.create", refund_id, audit, now),
                ),
            ]
        )
        return bool(rows)

    async def get(self, refund_id: str) -> RefundRecord | None:
        """Return a known refund."""
        row = await self._db.fetchone("SELECT * FROM refunds WHERE id = ?", (refund_id,))
        return _record(row) if row else None

    async def for_user(self, user_id: int, limit: int = 20) -> list[RefundRecord]:
        """Return a user's refunds, newest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM refunds WHERE user_id = ? ORDER BY created_at DESC LIMIT ?",
            (user_id, limit),
        )
        return [_record(row) for row in rows]

    async def advance(self, refund_id: str, status: str, now: float | None = None) -> bool:
        """Record a later status; False if the refund is unknown or already had this status or
        a later one (a slow poll must not move it back, nor tell the user twice)."""
        now = time.time() if now is None else now
        rank = "CASE {} " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(_ORDER))
        rank += " ELSE -1 END"  # a status we do not know (a wallet's own initial one) is first
        rows = await self._db.write(
            f"UPDATE refunds SET status = ?, updated_at = ? WHERE id = ? "
            f"AND {rank.format('?')} > {rank.format('status')} RETURNING id",
            (status, now, refund_id, status),
        )
        return bool(rows)


#: A refund's statuses in the order the wallet moves through them (rejected and refunded end).
_ORDER = ("submitted", "reviewing", "approved", "rejected", "refunded")


def _record(row) -> RefundRecord:
    data = dict(row)
    data["amount"] = Decimal(data["amount"])
    return RefundRecord(**data)


class SettingsRepository:
    """Small named values that must survive restarts (e.g. a poller's position)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        """Return a setting, or None."""
        row = await self._db.fetchone("SELECT value FROM settings WHERE key = ?", (key,))
        return row["value"] if row else None

    async def set(self, key: str, value: str) -> None:
        """Store a setting."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO settings VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value",
                (key, value),
            )

    async def delete(self, key: str) -> None:
        """Forget a setting."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM settings WHERE key = ?", (key,))
