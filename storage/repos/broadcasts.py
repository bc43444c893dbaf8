"""Broadcasts (security notices) and their per-recipient delivery state."""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.db import Database


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A broadcast and where it stands."""

    id: int
    created_by: int
    audience: str
    text_zh: str | None
    text_en: str | None
    link_url: str | None
    status: str
    approved_by: int | None
    round: int
    total: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    recalled_at: float | None
    progress_chat_id: int | None
    progress_message_id: int | None


class BroadcastRepository:
    """Broadcasts, recipients streamed in batches (memory flat in the audience size)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        created_by: int,
        audience: str,
        text_zh: str | None,
        text_en: str | None,
        link_url: str | None,
        status: str = "draft",
        now: float | None = None,
    ) -> int:
        """Store a new broadcast and return its id."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO broadcasts (created_by, audience, text_zh, text_en, link_url, "
                "status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (created_by, audience, text_zh, text_en, link_url, status, now),
            )
            return cursor.lastrowid

    async def get(self, broadcast_id: int) -> Broadcast | None:
        """Return a broadcast."""
        row = await self._db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,))
        return Broadcast(**dict(row)) if row else None

    async def recent(self, limit: int = 5) -> list[Broadcast]:
        """Return the newest broadcasts."""
        rows = await self._db.fetchall(
            "SELECT * FROM broadcasts ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [Broadcast(**dict(row)) for row in rows]

    async def sent_notices(self, limit: int = 5) -> list[Broadcast]:
        """Return recent broadcasts that went out (for users' /notices)."""
        rows = await self._db.fetchall(
            "SELECT * FROM broadcasts WHERE status IN ('running', 'done') AND recalled_at IS NULL "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [Broadcast(**dict(row)) for row in rows]

    async def with_status(self, status: str) -> list[Broadcast]:
        """Return broadcasts in a status (e.g. running ones to resume after a restart)."""
        rows = await self._db.fetchall(
            "SELECT * FROM broadcasts WHERE status = ? ORDER BY id", (status,)
        )
        return [Broadcast(**dict(row)) for row in rows]

    async def set_status(
        self, broadcast_id: int, status: str, *, expect: tuple[str, ...] = (), **fields: object
    ) -> bool:
        """Move a broadcast to ``status`` (only from one of ``expect``, if given)."""
        sets = ", ".join(["status = ?", *(f"{name} = ?" for name in fields)])
        sql = f"UPDATE broadcasts SET {sets} WHERE id = ?"
        params: list[object] = [status, *fields.values(), broadcast_id]
        if expect:
            sql += f" AND status IN ({', '.join('?' for _ in expect)})"
            params.extend(expect)
        async with self._db.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount > 0

    async def mark_recalled(self, broadcast_id: int, now: float | None = None) -> None:
        """Record that a broadcast is being deleted from users' chats."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE broadcasts SET recalled_at = ? WHERE id = ?",
                (time.time() if now is None else now, broadcast_id),
            )

    async def set_progress_message(self, broadcast_id: int, chat_id: int, message_id: int):
        """Remember the admin's progress message (edited as the broadcast goes)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE broadcasts SET progress_chat_id = ?, progress_message_id = ? WHERE id = ?",
                (chat_id, message_id, broadcast_id),
            )

    async def add_recipients(
        self, broadcast_id: int, audience: str, default_language: str, *, chunk: int = 2000
    ) -> int:
        """Snapshot the audience into recipients (no user list in memory); return how many
        were added. A user's language is their choice, else ``zh*`` from Telegram, else the
        default.

        The audience is written ``chunk`` users at a time, by user id, each chunk its own
        short write: one write of 100,000 rows held the write lock (and so every reply's inbox
        write) for about half a second. Adding again adds only who is missing, so a snapshot
        cut short by a crash is completed by running it again. Inside a caller's transaction
        it is all one write.
        """
        language = (
            "COALESCE(language, CASE WHEN lower(telegram_language) LIKE 'zh%' THEN 'zh_Hans' "
            "WHEN lower(telegram_language) LIKE 'en%' THEN 'en' ELSE ? END)"
        )
        where = "blocked = 0"
        audience_params: list[object] = []
        if audience != "all":
            where += f" AND {language} = ?"
            audience_params = [default_language, audience]
        added = 0
        after = -(2**63)
        while True:
            # The chunk's last user id (None: the rest of the audience fits in this chunk).
            edge = await self._db.fetchone(
                f"SELECT id FROM users WHERE {where} AND id > ? ORDER BY id LIMIT 1 OFFSET ?",
                [*audience_params, after, chunk - 1],
            )
            upto = edge[0] if edge is not None else 2**63 - 1
            rows = await self._db.write(
                f"INSERT OR IGNORE INTO broadcast_recipients (broadcast_id, user_id, language) "
                f"SELECT ?, id, {language} FROM users WHERE {where} AND id > ? AND id <= ? "
                f"RETURNING user_id",
                [broadcast_id, default_language, *audience_params, after, upto],
            )
            added += len(rows)
            if edge is None:
                break
            after = upto
        await self._db.write(
            "UPDATE broadcasts SET total = (SELECT COUNT(*) FROM broadcast_recipients "
            "WHERE broadcast_id = ?) WHERE id = ?",
            (broadcast_id, broadcast_id),
        )
        return added

    async def drop_unstarted_recipients(self, broadcast_id: int) -> int:
        """Forget the recipients of a broadcast that never started (e.g. rejected while its
        audience was being snapshot); return how many."""
        rows = await self._db.write(
            "DELETE FROM broadcast_recipients WHERE broadcast_id = ? AND EXISTS (SELECT 1 FROM "
            "broadcasts WHERE id = ? AND status IN ('draft', 'awaiting_approval', 'rejected')) "
            "RETURNING user_id",
            (broadcast_id, broadcast_id),
        )
        return len(rows)

    async def audience_counts(self, audience: str, default_language: str) -> dict[str, int]:
        """Return how many users a broadcast to ``audience`` would reach, by language."""
        language = (
            "COALESCE(language, CASE WHEN lower(telegram_language) LIKE 'zh%' THEN 'zh_Hans' "
            "WHEN lower(telegram_language) LIKE 'en%' THEN 'en' ELSE ? END)"
        )
        rows = await self._db.fetchall(
            f"SELECT {language} AS lang, COUNT(*) AS n FROM users WHERE blocked = 0 GROUP BY lang",
            (default_language,),
        )
        counts = {row["lang"]: row["n"] for row in rows}
        return counts if audience == "all" else {audience: counts.get(audience, 0)}

    async def next_pending(self, broadcast_id: int, limit: int) -> list[tuple[int, str]]:
        """Return the next pending recipients (user id, language), by user id."""
        rows = await self._db.fetchall(
            "SELECT user_id, language FROM broadcast_recipients WHERE broadcast_id = ? "
            "AND status = 'pending' ORDER BY user_id LIMIT ?",
            (broadcast_id, limit),
        )
        return [(row["user_id"], row["language"]) for row in rows]

    async def mark(
        self,
        broadcast_id: int,
        user_ids: list[int],
        status: str,
        *,
        only_from: tuple[str, ...] = (),
    ) -> int:
        """Set recipients' status (optionally only those in one of ``only_from``)."""
        sql = "UPDATE broadcast_recipients SET status = ? WHERE broadcast_id = ? AND user_id = ?"
        if only_from:
            sql += f" AND status IN ({', '.join(repr(s) for s in only_from)})"
        async with self._db.transaction() as conn:
            cursor = await conn.executemany(
                sql, [(status, broadcast_id, user_id) for user_id in user_ids]
            )
            return cursor.rowcount

    async def reset_queued(self, broadcast_id: int, to: str = "pending") -> int:
        """Move queued recipients back (pause) or out (cancel)."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE broadcast_recipients SET status = ? WHERE broadcast_id = ? "
                "AND status = 'queued'",
                (to, broadcast_id),
            )
            return cursor.rowcount

    async def cancel_pending(self, broadcast_id: int) -> int:
        """Drop recipients not reached yet (cancel)."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE broadcast_recipients SET status = 'cancelled' WHERE broadcast_id = ? "
                "AND status IN ('pending', 'queued')",
                (broadcast_id,),
            )
            return cursor.rowcount

    async def delivered(self, broadcast_id: int, user_id: int, message_id: int | None) -> None:
        """Record a delivered notice (its message id, for a recall)."""
        await self._db.write(
            "UPDATE broadcast_recipients SET status = 'sent', message_id = ? "
            "WHERE broadcast_id = ? AND user_id = ?",
            (message_id, broadcast_id, user_id),
        )

    async def count_queued(self, broadcast_id: int) -> int:
        """Count recipients whose notice is queued (a window: cheap, unlike :meth:`counts`)."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) FROM broadcast_recipients "
            "WHERE broadcast_id = ? AND status = 'queued'",
            (broadcast_id,),
        )
        return int(row[0]) if row else 0

    async def has_unsent(self, broadcast_id: int) -> bool:
        """Whether any recipient is still pending or queued (one index lookup)."""
        row = await self._db.fetchone(
            "SELECT 1 FROM broadcast_recipients WHERE broadcast_id = ? "
            "AND status IN ('pending', 'queued') LIMIT 1",
            (broadcast_id,),
        )
        return row is not None

    async def counts(self, broadcast_id: int) -> dict[str, int]:
        """Return recipients by status (reads every recipient: ~12 ms for 100,000)."""
        rows = await self._db.fetchall(
            "SELECT status, COUNT(*) AS n FROM broadcast_recipients WHERE broadcast_id = ? "
            "GROUP BY status",
            (broadcast_id,),
        )
        return {row["status"]: row["n"] for row in rows}

    async def sent_messages(self, broadcast_id: int, after_user: int, limit: int):
        """Return (user id, message id) of delivered notices, by user id (for a recall)."""
        rows = await self._db.fetchall(
            "SELECT user_id, message_id FROM broadcast_recipients WHERE broadcast_id = ? "
            "AND status = 'sent' AND message_id IS NOT NULL AND user_id > ? "
            "ORDER BY user_id LIMIT ?",
            (broadcast_id, after_user, limit),
        )
        return [(row["user_id"], row["message_id"]) for row in rows]
