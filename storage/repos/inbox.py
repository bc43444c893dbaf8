"""Durable inbox of Telegram updates: stored before handling, marked done after."""

from __future__ import annotations

import json
import time

from storage.db import Database


class InboxRepository:
    """Updates keyed by ``update_id``; a done update is never handled again."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def store(self, update_id: int, payload: str, now: float | None = None) -> bool:
        """Store an update; return False if this update_id was already stored."""
        now = time.time() if now is None else now
        rows = await self._db.write(
            "INSERT OR IGNORE INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?) "
            "RETURNING update_id",
            (update_id, payload, now),
        )
        return bool(rows)

    async def store_many(self, items: list[tuple[int, str]], now: float | None = None) -> list[int]:
        """Store a batch of ``(update_id, payload)`` in one statement; return the new ids.

        One atomic write for a whole getUpdates batch: either every update of it is stored or
        none is (and then none may be confirmed to Telegram).
        """
        if not items:
            return []
        now = time.time() if now is None else now
        rows = await self._db.write(
            "INSERT OR IGNORE INTO inbox (update_id, payload, received_at) "
            "SELECT value ->> 0, value ->> 1, ? FROM json_each(?) RETURNING update_id",
            (now, json.dumps(items)),
        )
        new = {row[0] for row in rows}
        stored: list[int] = []
        for update_id, _ in items:
            if update_id in new:
                new.discard(update_id)  # a repeated id in one batch counts once
                stored.append(update_id)
        return stored

    async def mark_done(self, update_id: int, now: float | None = None) -> None:
        """Mark an update as handled (the first time only)."""
        await self.mark_done_many([update_id], now)

    async def mark_done_many(self, update_ids: list[int], now: float | None = None) -> None:
        """Mark updates as handled (the first time only), in one statement."""
        now = time.time() if now is None else now
        if len(update_ids) == 1:
            await self._db.write(
                "UPDATE inbox SET done_at = ? WHERE update_id = ? AND done_at IS NULL",
                (now, update_ids[0]),
            )
            return
        await self._db.write(
            "UPDATE inbox SET done_at = ? WHERE update_id IN (SELECT value FROM json_each(?)) "
            "AND done_at IS NULL",
            (now, json.dumps(update_ids)),
        )

    async def pending(self) -> list[tuple[int, str]]:
        """Return stored but unfinished updates as ``(update_id, payload)``, oldest first."""
        rows = await self._db.fetchall(
            "SELECT update_id, payload FROM inbox WHERE done_at IS NULL ORDER BY update_id"
        )
        return [(row[0], row[1]) for row in rows]

    async def pending_in_chat(self, chat_id: int, before: int) -> list[tuple[int, str, float]]:
        """Return the chat's unfinished updates older than ``before`` (an update_id) as
        ``(update_id, payload, received_at)``, oldest first (see the PostgreSQL one: SQLite
        runs one process, where it is always empty once that process handles in order)."""
        rows = await self._db.fetchall(
            "SELECT update_id, payload, received_at FROM inbox WHERE done_at IS NULL "
            "AND chat_id = ? AND update_id < ? ORDER BY update_id",
            (chat_id, before),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    async def stale_pending(
        self, received_before: float, limit: int = 100
    ) -> list[tuple[int, str]]:
        """Return up to ``limit`` unfinished updates received before ``received_before`` as
        ``(update_id, payload)``, oldest first."""
        rows = await self._db.fetchall(
            "SELECT update_id, payload FROM inbox WHERE done_at IS NULL AND received_at < ? "
            "ORDER BY update_id LIMIT ?",
            (received_before, limit),
        )
        return [(row[0], row[1]) for row in rows]

    async def is_done(self, update_id: int) -> bool:
        """Whether this update was stored and handled."""
        row = await self._db.fetchone(
            "SELECT 1 FROM inbox WHERE update_id = ? AND done_at IS NOT NULL", (update_id,)
        )
        return row is not None

    async def count_pending(self) -> int:
        """Count unfinished updates."""
        row = await self._db.fetchone("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL")
        return int(row[0]) if row else 0

    async def max_update_id(self) -> int | None:
        """Return the highest update_id ever stored (kept by :meth:`prune`), or None."""
        row = await self._db.fetchone("SELECT MAX(update_id) FROM inbox")
        return None if row is None or row[0] is None else int(row[0])

    async def prune(self, older_than: float) -> int:
        """Delete handled updates finished before ``older_than``; return how many.

        The row with the highest update_id is kept, so the last seen id survives
        for dedupe. Choose ``older_than`` beyond Telegram's 24-hour redelivery
        window: a pruned update_id stored again counts as new.
        """
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < ? "
                "AND update_id < (SELECT MAX(update_id) FROM inbox)",
                (older_than,),
            )
            return cursor.rowcount
