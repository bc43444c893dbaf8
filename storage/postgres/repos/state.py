"""What PTB persistence keeps, in PostgreSQL (see storage.repos.state)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from storage.postgres.db import PostgresDatabase
from storage.repos.state import _TABLES, POSTGRES_STATEMENTS, Kind, Write, plan


class StateRepository:
    """PTB persistence's rows (encoded values in, encoded values out)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def load_all(self, kind: Kind) -> dict[int, str]:
        """Return every stored user_data (``"user"``) or chat_data (``"chat"``) by id."""
        table, column = _TABLES[kind]
        rows = await self._db.fetchall(f"SELECT {column}, data FROM {table}")
        return {row[0]: row[1] for row in rows}

    async def load_one(self, kind: Kind, id: int) -> str | None:
        """Return one user's (or chat's) stored data, or None."""
        table, column = _TABLES[kind]
        return await self._db.fetchval(f"SELECT data FROM {table} WHERE {column} = $1", (id,))

    async def store_many(self, writes: Sequence[Write]) -> None:
        """Store user/chat data and conversation states in one transaction (see
        storage.repos.state)."""
        groups = plan(writes, time.time())
        if len(groups) == 1 and len(rows := next(iter(groups.values()))) == 1:
            await self._db.execute(POSTGRES_STATEMENTS[next(iter(groups))], rows[0])
            return
        async with self._db.transaction() as conn:
            for group, rows in groups.items():
                await conn.executemany(POSTGRES_STATEMENTS[group], rows)

    async def load_document(self, name: str) -> str | None:
        """Return the stored ``bot_data`` or ``callback_data`` document, or None."""
        return await self._db.fetchval("SELECT data FROM ptb_documents WHERE name = $1", (name,))

    async def store_document(self, name: str, data: str) -> None:
        """Store the ``bot_data`` or ``callback_data`` document."""
        await self._db.execute(
            "INSERT INTO ptb_documents (name, data, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET "
            "data = excluded.data, updated_at = excluded.updated_at",
            (name, data, time.time()),
        )

    async def conversations(self, name: str) -> dict[str, str]:
        """Return the running conversations of one handler: key (JSON array) -> state."""
        rows = await self._db.fetchall(
            "SELECT key, state FROM ptb_conversations WHERE name = $1", (name,)
        )
        return {row[0]: row[1] for row in rows}

    async def conversation_states(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """Return the stored states of these ``(handler name, key)`` pairs (absent: none
        running), in one query: what a worker reads before it handles an update."""
        if not keys:
            return {}
        rows = await self._db.fetchall(
            "SELECT c.name, c.key, c.state FROM unnest($1::text[], $2::text[]) AS x (n, k) "
            "JOIN ptb_conversations c ON c.name = x.n AND c.key = x.k",
            ([name for name, _ in keys], [key for _, key in keys]),
        )
        return {(row[0], row[1]): row[2] for row in rows}
