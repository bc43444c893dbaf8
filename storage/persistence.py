"""PTB persistence in the application's SQLite database."""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import aiosqlite
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from storage import codec
from storage.db import Database
from storage.errors import StorageError

DatabaseSource = Database | Callable[[], Database | Awaitable[Database]]


class SQLitePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Store conversation states and user/chat/bot/callback data in SQLite.

    Every ``update_*`` call writes through at once, so nothing is buffered and
    :meth:`flush` has nothing to do; the Application calls them every
    ``update_interval`` seconds (0.5 s by default: a conversation state is on
    disk within a second, as the design asks) and once more at shutdown.

    Values are stored as tagged JSON (:mod:`storage.codec`): plain JSON types
    plus tuple, set, datetime, date, time, timedelta and Decimal round-trip;
    anything else raises ``TypeError`` when written (reported through the
    Application's error handlers). Empty ``user_data``/``chat_data`` are not
    stored at all, so users who are not inside a flow cost no row and nothing
    is loaded for them at start.

    Args:
        db: The open :class:`~storage.db.Database`, or a callable (sync or
            async) returning it, called at first use and again whenever the
            database it returned has been closed (an app that closes and
            reopens its database on shutdown/initialize keeps working). First use is
            ``Application.initialize()``, which ``run_polling``/``run_webhook``
            run *before* ``post_init``: a database opened in ``post_init`` is
            too late, an async opener here is not.
        update_interval: Seconds between the Application's persistence runs;
            must be > 0 (0 makes PTB busy-loop, PTB issue #4472).
        store_data: Which kinds of data to persist; all by default.
    """

    def __init__(
        self,
        db: DatabaseSource,
        *,
        update_interval: float = 0.5,
        store_data: PersistenceInput | None = None,
    ) -> None:
        if not (isinstance(update_interval, int | float) and math.isfinite(update_interval)):
            raise ValueError("update_interval must be a finite number of seconds")
        if update_interval <= 0:
            raise ValueError(
                "update_interval must be > 0: 0 makes PTB's persistence loop busy-wait"
            )
        super().__init__(store_data=store_data, update_interval=update_interval)
        self._db_source = db
        self._db: Database | None = None
        self._db_lock = asyncio.Lock()
        # The last document written, to skip rewriting bot_data/callback_data that
        # PTB hands over unchanged on every run.
        self._written: dict[str, str] = {}
        # What each stored row holds now (this process is the only writer): PTB hands over
        # every user it saw an update from, changed or not, and most updates change nothing.
        self._rows: dict[str, dict[int, str]] = {"ptb_user_data": {}, "ptb_chat_data": {}}
        self._states: dict[tuple[str, str], str] = {}

    async def database(self) -> Database:
        """Return the database, calling the constructor's opener if none is open."""
        if self._db is not None and not self._db.closed:
            return self._db
        if isinstance(self._db_source, Database):
            return self._db_source
        async with self._db_lock:
            if self._db is None or self._db.closed:
                result = self._db_source()
                if inspect.isawaitable(result):
                    result = await result
                if not isinstance(result, Database):
                    raise StorageError(
                        "SQLitePersistence needs an open Database before "
                        f"Application.initialize(), got {result!r}"
                    )
                self._db = result
        return self._db

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        db = await self.database()
        async with db.transaction() as conn:
            yield conn

    async def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[aiosqlite.Row]:
        return await (await self.database()).fetchall(sql, params)

    async def _fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> aiosqlite.Row | None:
        return await (await self.database()).fetchone(sql, params)

    # -- loading (Application.initialize) ------------------------------------------

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        """Return every stored user_data, keyed by user id."""
        return await self._load_rows("ptb_user_data", "user_id")

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        """Return every stored chat_data, keyed by chat id."""
        return await self._load_rows("ptb_chat_data", "chat_id")

    async def _load_rows(self, table: str, column: str) -> dict[int, dict[Any, Any]]:
        rows = await self._fetchall(f"SELECT {column}, data FROM {table}")
        self._rows[table] = {row[0]: row[1] for row in rows}
        return {row[0]: codec.loads(row[1]) for row in rows}

    async def get_bot_data(self) -> dict[Any, Any]:
        """Return the stored bot_data, or an empty dict."""
        data = await self._load_document("bot_data")
        return {} if data is None else cast(dict[Any, Any], data)

    async def get_callback_data(self) -> CDCData | None:
        """Return the stored callback data cache contents, or None if never stored."""
        data = await self._load_document("callback_data")
        if data is None:
            return None
        entries, mapping = data
        return [(uuid, float(at), payload) for uuid, at, payload in entries], mapping

    async def _load_document(self, name: str) -> Any:
        row = await self._fetchone("SELECT data FROM ptb_documents WHERE name = ?", (name,))
        if row is None:
            return None
        self._written[name] = row[0]
        return codec.loads(row[0])

    async def get_conversations(self, name: str) -> ConversationDict:
        """Return the running conversations of the ConversationHandler ``name``."""
        rows = await self._fetchall(
            "SELECT key, state FROM ptb_conversations WHERE name = ?", (name,)
        )
        for row in rows:
            self._states[(name, row[0])] = row[1]
        return {tuple(json.loads(row[0])): codec.loads(row[1]) for row in rows}

    # -- writing (every update_interval and at shutdown) --------------------------

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        """Store a conversation's new state; None (ended) deletes its row. Unchanged states
        (PTB hands over every conversation an update touched) are not written again."""
        key_json = json.dumps(list(key), separators=(",", ":"))
        db = await self.database()
        if new_state is None:
            if self._states.pop((name, key_json), None) is not None:
                await db.write(
                    "DELETE FROM ptb_conversations WHERE name = ? AND key = ?", (name, key_json)
                )
            return
        text = codec.dumps(new_state)
        if self._states.get((name, key_json)) == text:
            return
        await db.write(
            "INSERT INTO ptb_conversations (name, key, state, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET "
            "state = excluded.state, updated_at = excluded.updated_at",
            (name, key_json, text, time.time()),
        )
        self._states[(name, key_json)] = text

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        """Store one user's user_data (an empty dict removes the row)."""
        await self._store_row("ptb_user_data", "user_id", user_id, data)

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        """Store one chat's chat_data (an empty dict removes the row)."""
        await self._store_row("ptb_chat_data", "chat_id", chat_id, data)

    async def _store_row(self, table: str, column: str, id: int, data: dict[Any, Any]) -> None:
        # Encode before writing, so a bad value fails without holding the lock.
        text = codec.dumps(data) if data else None
        stored = self._rows[table]
        if stored.get(id) == text:
            return  # unchanged (None == None: no row, and none needed)
        db = await self.database()
        if text is None:
            await db.write(f"DELETE FROM {table} WHERE {column} = ?", (id,))
            stored.pop(id, None)
        else:
            await db.write(
                f"INSERT INTO {table} ({column}, data, updated_at) VALUES (?, ?, ?) "
                f"ON CONFLICT ({column}) DO UPDATE SET "
                "data = excluded.data, updated_at = excluded.updated_at",
                (id, text, time.time()),
            )
            stored[id] = text

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        """Store bot_data if it changed since it was last loaded or written."""
        await self._store_document("bot_data", data)

    async def update_callback_data(self, data: CDCData) -> None:
        """Store the callback data cache contents if they changed."""
        await self._store_document("callback_data", data)

    async def _store_document(self, name: str, data: Any) -> None:
        text = codec.dumps(data)
        if self._written.get(name) == text:
            return
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO ptb_documents (name, data, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET "
                "data = excluded.data, updated_at = excluded.updated_at",
                (name, text, time.time()),
            )
        self._written[name] = text

    async def drop_user_data(self, user_id: int) -> None:
        """Delete one user's user_data."""
        await (await self.database()).write(
            "DELETE FROM ptb_user_data WHERE user_id = ?", (user_id,)
        )
        self._rows["ptb_user_data"].pop(user_id, None)

    async def drop_chat_data(self, chat_id: int) -> None:
        """Delete one chat's chat_data."""
        await (await self.database()).write(
            "DELETE FROM ptb_chat_data WHERE chat_id = ?", (chat_id,)
        )
        self._rows["ptb_chat_data"].pop(chat_id, None)

    # -- refresh: nothing to do ---------------------------------------------------
    # One instance owns the database (InstanceLock) and nobody else writes these
    # tables, so the Application's in-memory copy is always the newest; reloading
    # it before every callback would only cost a query per update.

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        """Do nothing: this process is the only writer, its in-memory data is current."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        """Do nothing: this process is the only writer, its in-memory data is current."""

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        """Do nothing: this process is the only writer, its in-memory data is current."""

    async def flush(self) -> None:
        """Do nothing: every update was written when it was handed over.

        The database is owned and closed by the application lifecycle, not here,
        because repositories keep using it after PTB's shutdown.
        """
