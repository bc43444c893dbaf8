"""Per-chat locks across processes: one chat's updates are handled one at a time by
whichever worker holds its lock, different chats in parallel.

Each worker keeps one dedicated connection (not from the pool) and takes PostgreSQL
*session* advisory locks on it, one per chat it is handling. A worker that dies loses its
connection and PostgreSQL drops its locks at once, so a crash never leaves a chat locked.
Within one process an asyncio lock per chat comes first (session advisory locks are
re-entrant for their session, so two tasks of one worker would otherwise both "hold" it).
Neither kind of lock accumulates: each is dropped when nobody holds or waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from storage.errors import StorageError
from storage.postgres.db import PostgresDatabase


class ChatLockLost(StorageError):
    """The connection holding the chat locks broke while a chat was held: another worker
    may have taken the chat meanwhile."""


class ChatLocks:
    """Per-chat (and forum topic) locks shared by every worker on one database and schema.

    Args:
        db: the bot's database (its URL and schema scope the locks).
        max_wait_step: longest pause between two tries while another worker holds a chat
            (tries start at 2 ms and double up to it: a contended chat waits at most this
            long after it is released).
    """

    def __init__(self, db: PostgresDatabase, *, max_wait_step: float = 0.05) -> None:
        self._db = db
        self._max_step = max_wait_step
        self._conn: asyncpg.Connection | None = None
        self._conn_lock = asyncio.Lock()  # asyncpg runs one statement at a time
        self._local: dict[int, tuple[asyncio.Lock, int]] = {}
        self._held: set[int] = set()
        self._generation = 0  # bumped when the connection is replaced

    @property
    def held(self) -> int:
        """How many chats this worker holds right now."""
        return len(self._held)

    @property
    def tracked(self) -> int:
        """How many chats have an in-process lock (held or waited for)."""
        return len(self._local)

    def key(self, chat_id: int, thread_id: int | None = None) -> int:
        """Return the advisory lock key of a chat (or one forum topic of it)."""
        return self._db.key("chat", chat_id, thread_id)

    @asynccontextmanager
    async def hold(self, chat_id: int, thread_id: int | None = None) -> AsyncIterator[None]:
        """Hold the chat's lock (waiting for other tasks and workers) for the block.

        Raises:
            ChatLockLost: on leaving the block, if the lock's connection broke meanwhile.
        """
        key = self.key(chat_id, thread_id)
        lock, users = self._local.get(key, (asyncio.Lock(), 0))
        self._local[key] = (lock, users + 1)
        try:
            async with lock:
                generation = await self._take(key)
                self._held.add(key)
                try:
                    yield
                finally:
                    self._held.discard(key)
                    await self._give_back(key, generation)
        finally:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)

    async def _take(self, key: int) -> int:
        step = 0.002
        while True:
            async with self._conn_lock:
                conn = await self._connection()
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    return self._generation
            # Another worker handles this chat: wait for it (polling, without holding a
            # connection of the pool or blocking this worker's other chats).
            await asyncio.sleep(step)
            step = min(step * 2, self._max_step)

    async def _give_back(self, key: int, generation: int) -> None:
        async with self._conn_lock:
            conn = self._conn
            if generation != self._generation or conn is None or conn.is_closed():
                raise ChatLockLost("the chat lock's connection broke while the chat was held")
            try:
                await conn.fetchval("SELECT pg_advisory_unlock($1)", key)
            except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
                self._conn = None
                raise ChatLockLost(f"the chat lock's connection broke: {exc}") from exc

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._db.connect()
            self._generation += 1
        return self._conn

    async def close(self) -> None:
        """Close the connection (every lock it holds is released)."""
        async with self._conn_lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()
