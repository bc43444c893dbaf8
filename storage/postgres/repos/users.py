"""Users who wrote to the bot (PostgreSQL): profile, language, linked account, blocked flag."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from storage.postgres.db import PostgresDatabase
from storage.repos.users import _COLUMNS, User, _user


class UserRepository:
    """Users, keyed by Telegram user id."""

    def __init__(self, db: PostgresDatabase) -> None:
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
        row = await self._db.fetchone(
            f"""
            INSERT INTO users (id, first_name, telegram_language, created_at, last_seen_at)
            VALUES ($1, $2, $3, $4, $4)
            ON CONFLICT (id) DO UPDATE SET
                first_name = excluded.first_name,
                telegram_language = COALESCE(excluded.telegram_language,
                                             users.telegram_language),
                last_seen_at = excluded.last_seen_at,
                blocked = false
            RETURNING {_COLUMNS}
            """,
            (user_id, first_name, telegram_language, now),
        )
        assert row is not None  # RETURNING always yields the one upserted row
        return _user(row)

    async def get(self, user_id: int) -> User | None:
        """Return the user, or None if they never wrote to us."""
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM users WHERE id = $1", (user_id,))
        return _user(row) if row else None

    async def set_language(self, user_id: int, language: str | None) -> bool:
        """Store the language the user chose (None: follow Telegram's); False if unknown."""
        return await self._update(user_id, "language", language)

    async def set_blocked(self, user_id: int, blocked: bool) -> bool:
        """Mark that the user blocked (or unblocked) the bot; False if unknown."""
        return await self._update(user_id, "blocked", bool(blocked))

    async def set_wallet_account(self, user_id: int, account_id: str | None) -> bool:
        """Link the user to a wallet account id, or unlink with None; False if unknown."""
        return await self._update(user_id, "wallet_account_id", account_id)

    async def linked_to(self, account_id: str) -> list[int]:
        """Return the users linked to a wallet account (usually one), oldest link first."""
        rows = await self._db.fetchall(
            "SELECT id FROM users WHERE wallet_account_id = $1 AND NOT blocked ORDER BY id",
            (account_id,),
        )
        return [row[0] for row in rows]

    async def _update(self, user_id: int, column: str, value: object) -> bool:
        # column comes from the methods above, never from input.
        sql = f"UPDATE users SET {column} = $1 WHERE id = $2"
        return await self._db.execute(sql, (value, user_id)) > 0

    async def count(self, language: str | None = None, include_blocked: bool = False) -> int:
        """Count users, optionally only those who chose ``language``."""
        where, params = _filter(language, include_blocked)
        return int(await self._db.fetchval(f"SELECT COUNT(*) FROM users {where}", params))

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
        n = len(params)
        where = f"{where} AND id > ${n + 1}" if where else f"WHERE id > ${n + 1}"
        last = -(2**63)
        while True:
            rows = await self._db.fetchall(
                f"SELECT id FROM users {where} ORDER BY id LIMIT ${n + 2}", [*params, last, batch]
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
        clauses.append("language = $1")
        params.append(language)
    if not include_blocked:
        clauses.append("NOT blocked")
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
