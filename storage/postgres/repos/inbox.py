"""Durable inbox of Telegram updates (PostgreSQL): stored before handling, marked done after.

Storing is insert-or-ignore on ``update_id``: however many processes receive an update (a
webhook retry reaching another worker, a replay after a crash), exactly one store reports
it as new, and a done update is never handled again.
"""

from __future__ import annotations

import json
import time
from typing import Any

from storage.postgres.db import PostgresDatabase

# Whose an update is: the first of these paths present in the payload (the same order as
# the columns SQLite computes in storage/migrations/0009_privacy.sql).
_USER_PATHS = (
    ("message", "from", "id"),
    ("edited_message", "from", "id"),
    ("callback_query", "from", "id"),
    ("my_chat_member", "from", "id"),
    ("chat_member", "from", "id"),
    ("chat_join_request", "from", "id"),
    ("message_reaction", "user", "id"),
    ("inline_query", "from", "id"),
    ("chosen_inline_result", "from", "id"),
    ("shipping_query", "from", "id"),
    ("pre_checkout_query", "from", "id"),
    ("poll_answer", "user", "id"),
    ("business_message", "from", "id"),
    ("edited_business_message", "from", "id"),
)
_CHAT_PATHS = (
    ("message", "chat", "id"),
    ("edited_message", "chat", "id"),
    ("callback_query", "message", "chat", "id"),
    ("my_chat_member", "chat", "id"),
    ("chat_member", "chat", "id"),
    ("chat_join_request", "chat", "id"),
    ("message_reaction", "chat", "id"),
    ("channel_post", "chat", "id"),
    ("edited_channel_post", "chat", "id"),
    ("business_message", "chat", "id"),
    ("edited_business_message", "chat", "id"),
)
_THREAD_PATHS = (
    ("message", "message_thread_id"),
    ("edited_message", "message_thread_id"),
    ("callback_query", "message", "message_thread_id"),
)


def whose_update(payload: str) -> tuple[int | None, int | None, int | None]:
    """Return ``(user_id, chat_id, thread_id)`` of a stored update (None where absent; all
    None for a payload that is not a JSON object)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    return _first(data, _USER_PATHS), _first(data, _CHAT_PATHS), _first(data, _THREAD_PATHS)


def _first(data: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> int | None:
    for path in paths:
        value: Any = data
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if value is not None:
            # An id that is not an integer is nobody's (Telegram's ids always are).
            return value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


class InboxRepository:
    """Updates keyed by ``update_id``; a done update is never handled again."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def store(self, update_id: int, payload: str, now: float | None = None) -> bool:
        """Store an update; return False if this update_id was already stored."""
        now = time.time() if now is None else now
        rows = await self._db.write(
            "INSERT INTO inbox (update_id, payload, received_at, user_id, chat_id, thread_id) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (update_id) DO NOTHING "
            "RETURNING update_id",
            (update_id, payload, now, *whose_update(payload)),
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
        owners = [whose_update(payload) for _, payload in items]
        rows = await self._db.write(
            "INSERT INTO inbox (update_id, payload, received_at, user_id, chat_id, thread_id) "
            "SELECT u, p, $3, o, c, t FROM unnest($1::bigint[], $2::text[], $4::bigint[], "
            "$5::bigint[], $6::bigint[]) AS x (u, p, o, c, t) "
            "ON CONFLICT (update_id) DO NOTHING RETURNING update_id",
            (
                [update_id for update_id, _ in items],
                [payload for _, payload in items],
                now,
                [o[0] for o in owners],
                [o[1] for o in owners],
                [o[2] for o in owners],
            ),
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
        if not update_ids:
            return
        now = time.time() if now is None else now
        await self._db.execute(
            "UPDATE inbox SET done_at = $1 WHERE update_id = ANY($2::bigint[]) AND done_at IS NULL",
            (now, [int(update_id) for update_id in update_ids]),
        )

    async def pending(self) -> list[tuple[int, str]]:
        """Return stored but unfinished updates as ``(update_id, payload)``, oldest first."""
        rows = await self._db.fetchall(
            "SELECT update_id, payload FROM inbox WHERE done_at IS NULL ORDER BY update_id"
        )
        return [(row[0], row[1]) for row in rows]

    async def pending_in_chat(self, chat_id: int, before: int) -> list[tuple[int, str, float]]:
        """Return the chat's unfinished updates older than ``before`` (an update_id) as
        ``(update_id, payload, received_at)``, oldest first: the ones a worker must see
        handled before the chat's update ``before`` (several workers keep a chat's order)."""
        rows = await self._db.fetchall(
            "SELECT update_id, payload, received_at FROM inbox WHERE done_at IS NULL "
            "AND chat_id = $1 AND update_id < $2 ORDER BY update_id",
            (chat_id, before),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    async def stale_pending(
        self, received_before: float, limit: int = 100
    ) -> list[tuple[int, str]]:
        """Return up to ``limit`` unfinished updates received before ``received_before`` as
        ``(update_id, payload)``, oldest first: with several workers, the updates of a worker
        that died after storing them (or that is far behind)."""
        rows = await self._db.fetchall(
            "SELECT update_id, payload FROM inbox WHERE done_at IS NULL AND received_at < $1 "
            "ORDER BY update_id LIMIT $2",
            (received_before, limit),
        )
        return [(row[0], row[1]) for row in rows]

    async def is_done(self, update_id: int) -> bool:
        """Whether this update was stored and handled."""
        row = await self._db.fetchone(
            "SELECT 1 FROM inbox WHERE update_id = $1 AND done_at IS NOT NULL", (update_id,)
        )
        return row is not None

    async def count_pending(self) -> int:
        """Count unfinished updates."""
        return int(await self._db.fetchval("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL"))

    async def max_update_id(self) -> int | None:
        """Return the highest update_id ever stored (kept by :meth:`prune`), or None."""
        value = await self._db.fetchval("SELECT MAX(update_id) FROM inbox")
        return None if value is None else int(value)

    async def prune(self, older_than: float) -> int:
        """Delete handled updates finished before ``older_than``; return how many.

        The row with the highest update_id is kept, so the last seen id survives
        for dedupe. Choose ``older_than`` beyond Telegram's 24-hour redelivery
        window: a pruned update_id stored again counts as new.
        """
        return await self._db.execute(
            "DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < $1 "
            "AND update_id < (SELECT MAX(update_id) FROM inbox)",
            (older_than,),
        )
