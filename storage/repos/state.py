"""What PTB persistence keeps: conversation states, user/chat data, bot/callback documents.

Values arrive already encoded (tagged JSON text, :mod:`storage.codec`); this repository only
stores and finds them. :class:`storage.persistence.DatabasePersistence` is its one user.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

from storage.db import Database

#: user_data rows by user id, chat_data rows by chat id.
Kind = Literal["user", "chat"]
_TABLES: dict[str, tuple[str, str]] = {
    "user": ("ptb_user_data", "user_id"),
    "chat": ("ptb_chat_data", "chat_id"),
}


class Write(NamedTuple):
    """One persisted value to store. ``kind`` is ``"user"`` or ``"chat"`` (``key``: the id)
    or ``"conversation"`` (``key``: ``(handler name, key as JSON)``); ``data`` None deletes."""

    kind: Literal["user", "chat", "conversation"]
    key: int | tuple[str, str]
    data: str | None


def plan(writes: Sequence[Write], now: float) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """Group ``writes`` by ``("upsert" | "delete", kind)`` into statement parameters
    (upsert rows end with ``now``). The last write of a key wins, so the groups may run in
    any order."""
    last = {(w.kind, w.key): w for w in writes}
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for w in last.values():
        key = w.key if isinstance(w.key, tuple) else (w.key,)
        if w.data is None:
            groups.setdefault(("delete", w.kind), []).append(key)
        else:
            groups.setdefault(("upsert", w.kind), []).append((*key, w.data, now))
    return groups


def _statements(placeholder: Callable[[int], str]) -> dict[tuple[str, str], str]:
    """Return the SQL of each ``plan`` group, with ``placeholder(n)`` for parameter n."""
    p = placeholder
    sql = {
        ("upsert", "conversation"): (
            "INSERT INTO ptb_conversations (name, key, state, updated_at) "
            f"VALUES ({p(1)}, {p(2)}, {p(3)}, {p(4)}) ON CONFLICT (name, key) DO UPDATE SET "
            "state = excluded.state, updated_at = excluded.updated_at"
        ),
        ("delete", "conversation"): (
            f"DELETE FROM ptb_conversations WHERE name = {p(1)} AND key = {p(2)}"
        ),
    }
    for kind, (table, column) in _TABLES.items():
        sql["upsert", kind] = (
            f"INSERT INTO {table} ({column}, data, updated_at) VALUES ({p(1)}, {p(2)}, {p(3)}) "
            f"ON CONFLICT ({column}) DO UPDATE SET "
            "data = excluded.data, updated_at = excluded.updated_at"
        )
        sql["delete", kind] = f"DELETE FROM {table} WHERE {column} = {p(1)}"
    return sql


#: SQLite's statements for :func:`plan`'s groups (PostgreSQL's: ``$n`` placeholders).
STATEMENTS = _statements(lambda n: "?")
POSTGRES_STATEMENTS = _statements(lambda n: f"${n}")


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

    async def store_many(self, writes: Sequence[Write]) -> None:
        """Store user/chat data and conversation states (``data`` None: delete) in one
        transaction, one statement per kind of write: a persistence run of many users is a
        few jobs on the connection's thread, not one per user."""
        groups = plan(writes, time.time())
        if len(groups) == 1 and len(rows := next(iter(groups.values()))) == 1:
            await self._db.write(STATEMENTS[next(iter(groups))], rows[0])
            return
        async with self._db.transaction() as conn:
            for group, rows in groups.items():
                await conn.executemany(STATEMENTS[group], rows)

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
