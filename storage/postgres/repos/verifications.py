"""Verification state per Telegram user (PostgreSQL): tries, expiry, cooldown, lockout."""

from __future__ import annotations

import time

from storage.postgres.db import PostgresDatabase
from storage.repos.verifications import Verification


class VerificationRepository:
    """Verification counters and times, one row per user."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def get(self, user_id: int) -> Verification:
        """Return the user's verification state (a blank one if none)."""
        row = await self._db.fetchone("SELECT * FROM verifications WHERE user_id = $1", (user_id,))
        if row is None:
            return Verification(user_id, None, None, None, None, 5, 0, None, None)
        return Verification(**dict(row))

    async def code_sent(
        self,
        user_id: int,
        account_id: str,
        expires_at: float,
        resend_after: float,
        tries: int = 5,
        now: float | None = None,
    ) -> None:
        """Record that a code was sent for ``account_id`` (resets the tries)."""
        now = time.time() if now is None else now
        await self._db.execute(
            "INSERT INTO verifications (user_id, account_id, code_sent_at, "
            "code_expires_at, resend_after, tries_left) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (user_id) DO UPDATE SET account_id = excluded.account_id, "
            "code_sent_at = excluded.code_sent_at, "
            "code_expires_at = excluded.code_expires_at, "
            "resend_after = excluded.resend_after, tries_left = excluded.tries_left",
            (user_id, account_id, now, expires_at, resend_after, tries),
        )

    async def wrong_code(
        self, user_id: int, lockout: float, rounds_before_lock: int = 1, now: float | None = None
    ) -> Verification:
        """Count a wrong code; with no tries left the code is spent and, after
        ``rounds_before_lock`` spent codes, the user is locked out for ``lockout`` seconds."""
        now = time.time() if now is None else now
        # One statement (the row locked by it): two wrong codes at once count twice.
        await self._db.execute(
            "UPDATE verifications SET tries_left = GREATEST(tries_left - 1, 0), "
            "failed_rounds = failed_rounds + CASE WHEN tries_left <= 1 THEN 1 ELSE 0 END, "
            "code_expires_at = CASE WHEN tries_left <= 1 THEN $1 ELSE code_expires_at END, "
            "locked_until = CASE WHEN tries_left <= 1 AND failed_rounds + 1 >= $2 THEN $3 "
            "ELSE locked_until END WHERE user_id = $4",
            (now, rounds_before_lock, now + lockout, user_id),
        )
        return await self.get(user_id)

    async def verified(self, user_id: int, account_id: str, now: float | None = None) -> None:
        """Record a successful verification (the code is spent; counters reset)."""
        now = time.time() if now is None else now
        await self._db.execute(
            "INSERT INTO verifications (user_id, account_id, verified_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (user_id) DO UPDATE SET account_id = excluded.account_id, "
            "verified_at = excluded.verified_at, code_expires_at = NULL, tries_left = 5, "
            "failed_rounds = 0, locked_until = NULL",
            (user_id, account_id, now),
        )
