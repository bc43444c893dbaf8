"""Users who wrote to the bot: profile, chosen language, linked account, blocked flag."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiosqlite

from storage.db import Database


@dataclass(frozen=True, slots=True)
class User:
    """A Telegram user as the bot knows them."""

    id: int
    first_name: str
    telegram_language: str | None
    language: str | None
    wallet_account_id: str | None
    blocked: bool
    created_at: float
    last_seen_at: float


_COLUMNS = (
    "id, first_name, telegram_language, language, wallet_account_id, blocked, "
    "created_at, last_seen_at"
)


def _user(row: aiosqlite.Row) -> User:
    return User(
        id=row["id"],
        first_name=row["first_name"],
        telegram_language=row["telegram_language"],
        language=row["language"],
        wallet_account_id=row["wallet_account_id"],
        blocked=bool(row["blocked"]),
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
    )


class UserRepository:
    """Users, keyed by Telegram user id."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def touch(
        self,
        user_id: int,
        first_name: str,
        telegram_language: str | None,
        now: float | None = None,
    ) -> User:
        """Record that the user wrote to us: create them or refresh their profile.

        Also clears ``blocked``: a user who writes to us is no longer blocking
        us. A missing ``telegram_language`` (Telegram omits it at times) keeps
        the one already known.
        """
        now = time.time() if now is None else now
        rows = await self._db.write(
            f"""
                INSERT INTO users (id, first_name, telegram_language, created_at, last_seen_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    first_name = excluded.first_name,
                    telegram_language = COALESCE(excluded.telegram_language,
                                                 users.telegram_language),
                    last_seen_at = excluded.last_seen_at,
                    blocked = 0
                RETURNING {_COLUMNS}
                """,
            (user_id, first_name, telegram_language, now, now),
        )
        # RETURNING always yields the one upserted row.
        return _user(rows[0])

    async def get(self, user_id: int) -> User | None:
        """Return the user, or None if they never wrote to us."""
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def set_language(self, user_id: int, language: str | None) -> bool:
        """Store the language the user chose (None: follow Telegram's); False if unknown."""
        return await self._update(user_id, "language", language)

    async def set_blocked(self, user_id: int, blocked: bool) -> bool:
        """Mark that the user blocked (or unblocked) the bot; False if unknown."""
        return await self._update(user_id, "blocked", int(blocked))

    async def set_wallet_account(self, user_id: int, account_id: str | None) -> bool:
        """Link the user to a wallet account id, or unlink with None; False if unknown."""
        return await self._update(user_id, "wallet_account_id", account_id)

    async def linked_to(self, account_id: str) -> list[int]:
        """Return the users linked to a wallet account (usually one), oldest link first."""
        rows = await self._db.fetchall(
            "SELECT id FROM users WHERE wallet_account_id = ? AND blocked = 0 ORDER BY id",
            (account_id,),
        )
        return [row[0] for row in rows]

    async def _update(self, user_id: int, column: str, value: object) -> bool:
        # column comes from the methods above, never from input.
        rows = await self._db.write(
            f"UPDATE users SET {column} = ? WHERE id = ? RETURNING id", (value, user_id)
        )
        return bool(rows)

    async def count(self, language: str | None = None, include_blocked: bool = False) -> int:
        """Count users, optionally only those who chose ``language``."""
        where, params = _filter(language, include_blocked)
        row = await self._db.fetchone(f"SELECT COUNT(*) FROM users {where}", params)
        return int(row[0]) if row else 0

    async def iter_ids(
        self, language: str | None = None, batch: int = 500, *, include_blocked: bool = False
    ) -> AsyncIterator[int]:
        """Yield user ids in ascending order, ``batch`` rows per query.

        Keyset pagination (``id > last``) keeps memory flat and stays correct
        while users are added or change during a long broadcast. Blocked users
        are skipped unless ``include_blocked``, as in :meth:`count`.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        where, params = _filter(language, include_blocked)
        where = f"{where} AND id > ?" if where else "WHERE id > ?"
        last = -(2**63)
        while True:
            rows = await self._db.fetchall(
                f"SELECT id FROM users {where} ORDER BY id LIMIT ?", [*params, last, batch]
            )
            for row in rows:
                yield row[0]
            if len(rows) < batch:
                return
            last = rows[-1][0]


def _filter(language: str | None, include_blocked: bool) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if language is not None:
        clauses.append("language = ?")
        params.append(language)
    if not include_blocked:
        clauses.append("blocked = 0")
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
