"""Broadcasts (security notices) and their per-recipient delivery state (PostgreSQL)."""

from __future__ import annotations

import time

from storage.postgres.db import PostgresDatabase
from storage.repos.broadcasts import Broadcast


def _language(default: str) -> str:
    """A user's language: their choice, else ``zh*`` from Telegram, else ``default``
    (a placeholder such as ``$2``)."""
    return (
        "COALESCE(language, CASE WHEN lower(telegram_language) LIKE 'zh%' THEN 'zh_Hans' "
        f"WHEN lower(telegram_language) LIKE 'en%' THEN 'en' ELSE {default}::text END)"
    )


class BroadcastRepository:
    """Broadcasts, recipients streamed in batches (memory flat in the audience size)."""

    def __init__(self, db: PostgresDatabase) -> None:
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
        return int(
            await self._db.fetchval(
                "INSERT INTO broadcasts (created_by, audience, text_zh, text_en, link_url, "
                "status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                (created_by, audience, text_zh, text_en, link_url, status, now),
            )
        )

    async def get(self, broadcast_id: int) -> Broadcast | None:
        """Return a broadcast (inside a transaction: locked until it ends, so a status
        checked there still holds when the transaction acts on it)."""
        lock = " FOR UPDATE" if self._db.in_transaction else ""
        row = await self._db.fetchone(
            f"SELECT * FROM broadcasts WHERE id = $1{lock}", (broadcast_id,)
        )
        return Broadcast(**dict(row)) if row else None

    async def recent(self, limit: int = 5) -> list[Broadcast]:
        """Return the newest broadcasts."""
        rows = await self._db.fetchall(
            "SELECT * FROM broadcasts ORDER BY id DESC LIMIT $1", (limit,)
        )
        return [Broadcast(**dict(row)) for row in rows]

    async def sent_notices(self, limit: int = 5) -> list[Broadcast]:
        """Return recent broadcasts that went out (for users' /notices)."""
        rows = await self._db.fetchall(
            "SELECT * FROM broadcasts WHERE status IN ('running', 'done') AND recalled_at IS NULL "
            "ORDER BY id DESC LIMIT $1",
            (limit,),
        )
        return [Broadcast(**dict(row)) for row in rows]

    async def with_status(self, status: str) -> list[Broadcast]:
        """Return broadcasts in a status (e.g. running ones to resume after a restart)."""
        rows = await self._db.fetchall(
            "SELECT * FROM broadcasts WHERE status = $1 ORDER BY id", (status,)
        )
        return [Broadcast(**dict(row)) for row in rows]

    async def set_status(
        self, broadcast_id: int, status: str, *, expect: tuple[str, ...] = (), **fields: object
    ) -> bool:
        """Move a broadcast to ``status`` (only from one of ``expect``, if given)."""
        # Field names come from code (keyword arguments), never from input.
        names = ["status", *fields]
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, 1))
        params: list[object] = [status, *fields.values(), broadcast_id]
        sql = f"UPDATE broadcasts SET {sets} WHERE id = ${len(params)}"
        if expect:
            params.append(list(expect))
            sql += f" AND status = ANY(${len(params)}::text[])"
        return await self._db.execute(sql, params) > 0

    async def mark_recalled(self, broadcast_id: int, now: float | None = None) -> None:
        """Record that a broadcast is being deleted from users' chats."""
        await self._db.execute(
            "UPDATE broadcasts SET recalled_at = $1 WHERE id = $2",
            (time.time() if now is None else now, broadcast_id),
        )

    async def set_progress_message(self, broadcast_id: int, chat_id: int, message_id: int):
        """Remember the admin's progress message (edited as the broadcast goes)."""
        await self._db.execute(
            "UPDATE broadcasts SET progress_chat_id = $1, progress_message_id = $2 WHERE id = $3",
            (chat_id, message_id, broadcast_id),
        )

    async def add_recipients(
        self, broadcast_id: int, audience: str, default_language: str, *, chunk: int = 2000
    ) -> int:
        """Snapshot the audience into recipients (no user list in memory); return how many
        were added. A user's language is their choice, else ``zh*`` from Telegram, else the
        default.

        The audience is written ``chunk`` users at a time, by user id, each chunk its own
        short statement (no transaction holding 100,000 new rows and their locks). Adding
        again adds only who is missing, so a snapshot cut short by a crash is completed by
        running it again. Inside a caller's transaction it is all one transaction.
        """
        where = "NOT blocked"
        audience_params: list[object] = []
        if audience != "all":
            audience_params = [default_language, audience]
            where += f" AND {_language('$1')} = $2"
        n = len(audience_params)
        added = 0
        after = -(2**63)
        while True:
            # The chunk's last user id (None: the rest of the audience fits in this chunk).
            upto = await self._db.fetchval(
                f"SELECT id FROM users WHERE {where} AND id > ${n + 1} "
                f"ORDER BY id LIMIT 1 OFFSET ${n + 2}",
                [*audience_params, after, chunk - 1],
            )
            rows = await self._db.write(
                f"INSERT INTO broadcast_recipients (broadcast_id, user_id, language) "
                f"SELECT ${n + 1}, id, {_language(f'${n + 2}')} FROM users WHERE {where} "
                f"AND id > ${n + 3} AND id <= ${n + 4} ON CONFLICT DO NOTHING RETURNING user_id",
                [
                    *audience_params,
                    broadcast_id,
                    default_language,
                    after,
                    2**63 - 1 if upto is None else upto,
                ],
            )
            added += len(rows)
            if upto is None:
                break
            after = upto
        await self._db.execute(
            "UPDATE broadcasts SET total = (SELECT COUNT(*) FROM broadcast_recipients "
            "WHERE broadcast_id = $1) WHERE id = $1",
            (broadcast_id,),
        )
        return added

    async def drop_unstarted_recipients(self, broadcast_id: int) -> int:
        """Forget the recipients of a broadcast that never started (e.g. rejected while its
        audience was being snapshot); return how many."""
        return await self._db.execute(
            "DELETE FROM broadcast_recipients WHERE broadcast_id = $1 AND EXISTS (SELECT 1 FROM "
            "broadcasts WHERE id = $1 AND status IN ('draft', 'awaiting_approval', 'rejected'))",
            (broadcast_id,),
        )

    async def audience_counts(self, audience: str, default_language: str) -> dict[str, int]:
        """Return how many users a broadcast to ``audience`` would reach, by language."""
        rows = await self._db.fetchall(
            f"SELECT {_language('$1')} AS lang, COUNT(*) AS n FROM users WHERE NOT blocked "
            "GROUP BY lang",
            (default_language,),
        )
        counts = {row["lang"]: row["n"] for row in rows}
        return counts if audience == "all" else {audience: counts.get(audience, 0)}

    async def next_pending(self, broadcast_id: int, limit: int) -> list[tuple[int, str]]:
        """Return the next pending recipients (user id, language), by user id."""
        rows = await self._db.fetchall(
            "SELECT user_id, language FROM broadcast_recipients WHERE broadcast_id = $1 "
            "AND status = 'pending' ORDER BY user_id LIMIT $2",
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
        sql = (
            "UPDATE broadcast_recipients SET status = $1 WHERE broadcast_id = $2 "
            "AND user_id = ANY($3::bigint[])"
        )
        params: list[object] = [status, broadcast_id, list(user_ids)]
        if only_from:
            sql += " AND status = ANY($4::text[])"
            params.append(list(only_from))
        return await self._db.execute(sql, params)

    async def reset_queued(self, broadcast_id: int, to: str = "pending") -> int:
        """Move queued recipients back (pause) or out (cancel)."""
        return await self._db.execute(
            "UPDATE broadcast_recipients SET status = $1 WHERE broadcast_id = $2 "
            "AND status = 'queued'",
            (to, broadcast_id),
        )

    async def cancel_pending(self, broadcast_id: int) -> int:
        """Drop recipients not reached yet (cancel)."""
        return await self._db.execute(
            "UPDATE broadcast_recipients SET status = 'cancelled' WHERE broadcast_id = $1 "
            "AND status IN ('pending', 'queued')",
            (broadcast_id,),
        )

    async def delivered(self, broadcast_id: int, user_id: int, message_id: int | None) -> None:
        """Record a delivered notice (its message id, for a recall)."""
        await self._db.execute(
            "UPDATE broadcast_recipients SET status = 'sent', message_id = $1 "
            "WHERE broadcast_id = $2 AND user_id = $3",
            (message_id, broadcast_id, user_id),
        )

    async def count_queued(self, broadcast_id: int) -> int:
        """Count recipients whose notice is queued (a window: cheap, unlike :meth:`counts`)."""
        return int(
            await self._db.fetchval(
                "SELECT COUNT(*) FROM broadcast_recipients "
                "WHERE broadcast_id = $1 AND status = 'queued'",
                (broadcast_id,),
            )
        )

    async def has_unsent(self, broadcast_id: int) -> bool:
        """Whether any recipient is still pending or queued (one index lookup)."""
        row = await self._db.fetchone(
            "SELECT 1 FROM broadcast_recipients WHERE broadcast_id = $1 "
            "AND status IN ('pending', 'queued') LIMIT 1",
            (broadcast_id,),
        )
        return row is not None

    async def counts(self, broadcast_id: int) -> dict[str, int]:
        """Return recipients by status (reads every recipient)."""
        rows = await self._db.fetchall(
            "SELECT status, COUNT(*) AS n FROM broadcast_recipients WHERE broadcast_id = $1 "
            "GROUP BY status",
            (broadcast_id,),
        )
        return {row["status"]: row["n"] for row in rows}

    async def sent_messages(self, broadcast_id: int, after_user: int, limit: int):
        """Return (user id, message id) of delivered notices, by user id (for a recall)."""
        rows = await self._db.fetchall(
            "SELECT user_id, message_id FROM broadcast_recipients WHERE broadcast_id = $1 "
            "AND status = 'sent' AND message_id IS NOT NULL AND user_id > $2 "
            "ORDER BY user_id LIMIT $3",
            (broadcast_id, after_user, limit),
        )
        return [(row["user_id"], row["message_id"]) for row in rows]
