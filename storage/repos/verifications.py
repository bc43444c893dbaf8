"""Verification state per Telegram user: code tries, expiry, resend cooldown, lockout."""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.db import Database


@dataclass(frozen=True, slots=True)
class Verification:
    """Where a user's identity check stands (no code is stored here)."""

    user_id: int
    account_id: str | None
    code_sent_at: float | None
    code_expires_at: float | None
    resend_after: float | None
    tries_left: int
    failed_rounds: int
    locked_until: float | None
    verified_at: float | None

    def locked(self, now: float | None = None) -> bool:
        """Return True while the user is locked out of verification."""
        return self.locked_until is not None and (now or time.time()) < self.locked_until

    def fresh(self, max_age: float, now: float | None = None) -> bool:
        """Return True if the user verified within ``max_age`` seconds."""
        return self.verified_at is not None and (now or time.time()) - self.verified_at <= max_age

    def code_expired(self, now: float | None = None) -> bool:
        """Return True if no code is pending or its time is over (a typed code is refused)."""
        now = time.time() if now is None else now
        return self.code_expires_at is None or now > self.code_expires_at


class VerificationRepository:
    """Verification counters and times, one row per user."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: int) -> Verification:
        """Return the user's verification state (a blank one if none)."""
        row = await self._db.fetchone("SELECT * FROM verifications WHERE user_id = ?", (user_id,))
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
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO verifications (user_id, account_id, code_sent_at, "
                "code_expires_at, resend_after, tries_left) VALUES (?, ?, ?, ?, ?, ?) "
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
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE verifications SET tries_left = MAX(tries_left - 1, 0) WHERE user_id = ?",
                (user_id,),
            )
            await conn.execute(
                "UPDATE verifications SET failed_rounds = failed_rounds + 1, "
                "code_expires_at = ?, locked_until = CASE WHEN failed_rounds + 1 >= ? "
                "THEN ? ELSE locked_until END WHERE user_id = ? AND tries_left = 0",
                (now, rounds_before_lock, now + lockout, user_id),
            )
        return await self.get(user_id)

    async def verified(self, user_id: int, account_id: str, now: float | None = None) -> None:
        """Record a successful verification (the code is spent; counters reset)."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO verifications (user_id, account_id, verified_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET account_id = excluded.account_id, "
                "verified_at = excluded.verified_at, code_expires_at = NULL, tries_left = 5, "
                "failed_rounds = 0, locked_until = NULL",
                (user_id, account_id, now),
            )
