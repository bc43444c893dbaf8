"""What PTB persistence keeps: conversation states, user/chat data, bot/callback documents.

Values arrive already encoded (tagged JSON text, :mod:`storage.codec`); this repository only
stores and finds them. :class:`storage.persistence.DatabasePersistence` is its one user.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Literal

from storage.db import Database

#: user_data rows by user id, chat_data rows by chat id.
Kind = Literal["user", "chat"]
_TABLES: dict[str, tuple[str, str]] = {
    "user": ("ptb_user_data", "user_id"),
    "chat": ("ptb_chat_data", "chat_id"),
}


class StateRepository:
    """PTB persistence's rows (encoded values in, encoded values out)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def load_all(self, kind: Kind) -> dict[int, str]:
        """Return every stored user_data (``"user"``) or chat_data (``"chat"``) by id."""
        table, column = _TABLES[kind]
        rows = await self._db.fetchall(f"SELECT {column}, data FROM {table}")
        return {row[0]: row[1] for row in rows}

    async def load_one(self, kind: Kind, id: int) -> str | None:
        """Return one user's (or chat's) stored data, or None."""
        table, column = _TABLES[kind]
        row = await self._db.fetchone(f"SELECT data FROM {table} WHERE {column} = ?", (id,))
        return None if row is None else row[0]

    async def store(self, kind: Kind, id: int, data: str | None) -> None:
        """Store one user's (or chat's) data; None removes the row."""
        table, column = _TABLES[kind]
        if data is None:
            await self._db.write(f"DELETE FROM {table} WHERE {column} = ?", (id,))
            return
        await self._db.write(
            f"INSERT INTO {table} ({column}, data, updated_at) VALUES (?, ?, ?) "
            f"ON CONFLICT ({column}) DO UPDATE SET "
            "data = excluded.data, updated_at = excluded.updated_at",
            (id, data, time.time()),
        )

    async def load_document(self, name: str) -> str | None:
        """Return the stored ``bot_data`` or ``callback_data`` document, or None."""
        row = await self._db.fetchone("SELECT data FROM ptb_documents WHERE name = ?", (name,))
        return None if row is None else row[0]

    async def store_document(self, name: str, data: str) -> None:
        """Store the ``bot_data`` or ``callback_data`` document."""
        await self._db.write(
            "INSERT INTO ptb_documents (name, data, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET "
            "data = excluded.data, updated_at = excluded.updated_at",
            (name, data, time.time()),
        )

    async def conversations(self, name: str) -> dict[str, str]:
        """Return the running conversations of one handler: key (JSON array) -> state."""
        rows = await self._db.fetchall(
            "SELECT key, state FROM ptb_conversations WHERE name = ?", (name,)
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
            "SELECT c.name, c.key, c.state FROM json_each(?) AS j JOIN ptb_conversations c "
            "ON c.name = json_extract(j.value, '$[0]') AND c.key = json_extract(j.value, '$[1]')",
            (json.dumps([list(pair) for pair in keys]),),
        )
        return {(row[0], row[1]): row[2] for row in rows}

    async def store_conversation(self, name: str, key: str, state: str | None) -> None:
        """Store a conversation's state; None (ended) deletes its row."""
        if state is None:
            await self._db.write(
                "DELETE FROM ptb_conversations WHERE name = ? AND key = ?", (name, key)
            )
            return
        await self._db.write(
            "INSERT INTO ptb_conversations (name, key, state, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET "
            "state = excluded.state, updated_at = excluded.updated_at",
            (name, key, state, time.time()),
        )
