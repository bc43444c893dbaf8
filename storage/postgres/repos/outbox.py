"""Durable outbox of Bot API calls (PostgreSQL), sent by workers in priority lanes.

Claiming is ``FOR UPDATE SKIP LOCKED``: several workers (tasks or processes) claim due rows
at once, each row goes to exactly one of them, and none waits for another's claim.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable
from typing import Any

from storage.postgres.db import PostgresDatabase
from storage.repos.outbox import _COLUMNS, ALL_LANES, STATUSES, OutboxItem, Status, _item, _row

#: The calls due now (params: now, lowest lane, highest lane, chat ids to skip, limit), in
#: sending order.
_DUE = (
    "FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 "
    "AND lane BETWEEN $2 AND $3 AND chat_id <> ALL($4::bigint[]) ORDER BY lane, id LIMIT $5"
)
#: Due calls of chats with nothing of these lanes in flight (see claim_due).
_DUE_WHOLE_CHATS = (
    "FROM outbox o WHERE status = 'pending' AND next_attempt_at <= $1 "
    "AND lane BETWEEN $2 AND $3 AND chat_id <> ALL($4::bigint[]) "
    "AND NOT EXISTS (SELECT 1 FROM outbox s WHERE s.status = 'sending' "
    "AND s.chat_id = o.chat_id AND s.lane BETWEEN $2 AND $3) ORDER BY lane, id LIMIT $5"
)
_INSERT = (
    "INSERT INTO outbox (lane, chat_id, thread_id, method, params, kind, ref, dedupe_key, "
    "next_attempt_at, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5::json, $6, $7, $8, $9, $10, $11) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)


def _ids(ids: Iterable[int]) -> list[int]:
    return [int(i) for i in ids]


class OutboxRepository:
    """Sends that must not be lost: relays, notifications, broadcasts.

    Lifecycle: ``pending`` -> ``sending`` (:meth:`claim_due`, :meth:`mark_sending`) ->
    ``sent`` | ``pending`` again (:meth:`reschedule`) | ``failed``; ``pending`` ->
    ``cancelled``. ``sending`` rows left by a crash go back to ``pending`` via
    :meth:`reset_in_flight`, so a message in flight may be sent twice, never lost.
    """

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def enqueue(
        self,
        lane: int,
        chat_id: int,
        method: str,
        params: dict[str, Any],
        *,
        thread_id: int | None = None,
        kind: str | None = None,
        ref: str | None = None,
        dedupe_key: str | None = None,
        not_before: float | None = None,
        now: float | None = None,
    ) -> int:
        """Queue a Bot API call and return its id.

        Args:
            lane: Priority, 0 highest (replies, then relays, notifications, broadcasts).
            chat_id: Target chat; the worker keeps one chat's sends in order.
            method: Bot API method, e.g. ``"sendMessage"``.
            params: JSON-serializable method parameters.
            thread_id: Forum topic, for agents' groups.
            kind: What this send is for, e.g. ``"broadcast"``.
            ref: The business record it belongs to, e.g. a broadcast id.
            dedupe_key: Enqueuing the same key again returns the existing id
                instead of adding a second row (until the row is pruned).
            not_before: Earliest send time; defaults to now.
            now: Current time; defaults to ``time.time()``.
        """
        now = time.time() if now is None else now
        row = _row(
            {"lane": lane, "chat_id": chat_id, "method": method, "params": params,
             "thread_id": thread_id, "kind": kind, "ref": ref, "dedupe_key": dedupe_key,
             "not_before": not_before},
            now,
        )  # fmt: skip
        async with self._db.transaction():
            new = await self._db.fetchval(_INSERT, row)
            if new is not None:
                return int(new)
            # The insert only yields nothing on a dedupe_key conflict.
            found = await self._db.fetchval(
                "SELECT id FROM outbox WHERE dedupe_key = $1", (dedupe_key,)
            )
        assert found is not None
        return int(found)

    async def enqueue_many(self, items: list[dict[str, Any]], now: float | None = None) -> int:
        """Queue many calls in one statement; return how many rows were added.

        Each item holds :meth:`enqueue`'s arguments by name (``lane``, ``chat_id``,
        ``method``, ``params`` required). Items whose ``dedupe_key`` exists are skipped.
        """
        if not items:
            return 0
        now = time.time() if now is None else now
        columns = list(zip(*(_row(item, now) for item in items), strict=True))
        rows = await self._db.write(
            "INSERT INTO outbox (lane, chat_id, thread_id, method, params, kind, ref, "
            "dedupe_key, next_attempt_at, created_at, updated_at) "
            "SELECT l, c, t, m, p::json, k, r, d, n, $10, $10 FROM unnest($1::integer[], "
            "$2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], "
            "$8::text[], $9::float8[]) AS x (l, c, t, m, p, k, r, d, n) "
            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            (*(list(column) for column in columns[:9]), now),
        )
        return len(rows)

    async def due(
        self,
        now: float | None = None,
        limit: int = 100,
        exclude_chats: Collection[int] = frozenset(),
        lanes: tuple[int, int] = ALL_LANES,
    ) -> list[OutboxItem]:
        """Return pending calls whose time has come, by lane (0 first) then id.

        Args:
            now: Current time; defaults to ``time.time()``.
            limit: At most this many items.
            exclude_chats: Chats to skip, e.g. those paused by a RetryAfter.
            lanes: The lowest and highest lane to look at (both included).
        """
        now = time.time() if now is None else now
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} {_DUE}", (now, *lanes, _ids(exclude_chats), limit)
        )
        return [_item(row) for row in rows]

    async def claim_due(
        self,
        now: float | None = None,
        limit: int = 100,
        exclude_chats: Collection[int] = frozenset(),
        lanes: tuple[int, int] = ALL_LANES,
        whole_chats: bool = False,
    ) -> list[OutboxItem]:
        """Mark the calls :meth:`due` would return as in flight and return them as claimed.

        Rows another worker is claiming (or changing) right now are skipped, not waited for,
        and a row is claimed by one worker only (``FOR UPDATE SKIP LOCKED``). With
        ``whole_chats`` (several workers), a chat with a call of these lanes in flight is
        skipped, and claims of one lane range take turns (a transaction advisory lock), so
        two workers never send one chat's messages at once, out of order.
        """
        now = time.time() if now is None else now
        if not whole_chats:
            rows = await self._db.write(
                f"UPDATE outbox SET status = 'sending', updated_at = $1 "
                f"WHERE id IN (SELECT id {_DUE} FOR UPDATE SKIP LOCKED) RETURNING {_COLUMNS}",
                (now, *lanes, _ids(exclude_chats), limit),
            )
            return sorted((_item(row) for row in rows), key=lambda item: (item.lane, item.id))
        async with self._db.transaction():
            await self._db.execute(
                "SELECT pg_advisory_xact_lock($1)", (self._db.key("outbox-claim", *lanes),)
            )
            rows = await self._db.write(
                f"UPDATE outbox SET status = 'sending', updated_at = $1 "
                f"WHERE id IN (SELECT id {_DUE_WHOLE_CHATS} FOR UPDATE SKIP LOCKED) "
                f"RETURNING {_COLUMNS}",
                (now, *lanes, _ids(exclude_chats), limit),
            )
        items = [_item(row) for row in rows]
        items.sort(key=lambda item: (item.lane, item.id))
        return items

    async def next_due_at(
        self, exclude_chats: Collection[int] = frozenset(), lanes: tuple[int, int] = ALL_LANES
    ) -> float | None:
        """Return the earliest ``next_attempt_at`` of pending calls (in ``lanes``), or None."""
        value = await self._db.fetchval(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' "
            "AND lane BETWEEN $1 AND $2 AND chat_id <> ALL($3::bigint[])",
            (*lanes, _ids(exclude_chats)),
        )
        return None if value is None else float(value)

    async def mark_sending(self, ids: Iterable[int], now: float | None = None) -> int:
        """Mark pending calls as in flight; return how many were pending."""
        return await self._transition(ids, "sending", ("pending",), now)

    async def reset_ids(self, ids: Iterable[int], now: float | None = None) -> int:
        """Put in-flight calls that were never attempted back to pending; return how many.

        For items claimed with :meth:`mark_sending` that the worker then held
        back (e.g. behind a rescheduled message of the same chat); no attempt
        is counted.
        """
        return await self._transition(ids, "pending", ("sending",), now)

    async def cancel(self, ids: Iterable[int], now: float | None = None) -> int:
        """Cancel calls that are still pending; return how many were cancelled."""
        return await self._transition(ids, "cancelled", ("pending",), now)

    async def cancel_pending(
        self, kind: str, ref: str | None = None, now: float | None = None
    ) -> int:
        """Cancel every pending call of ``kind`` (and ``ref``), e.g. the rest of a broadcast."""
        now = time.time() if now is None else now
        return await self._db.execute(
            "UPDATE outbox SET status = 'cancelled', updated_at = $1 "
            "WHERE status = 'pending' AND kind = $2 AND ($3::text IS NULL OR ref = $3)",
            (now, kind, ref),
        )

    async def _transition(
        self, ids: Iterable[int], to: Status, from_: tuple[Status, ...], now: float | None
    ) -> int:
        now = time.time() if now is None else now
        return await self._db.execute(
            "UPDATE outbox SET status = $1, updated_at = $2 "
            "WHERE id = ANY($3::bigint[]) AND status = ANY($4::text[])",
            (to, now, _ids(ids), list(from_)),
        )

    async def mark_sent(
        self, id: int, result: dict[str, Any] | None = None, now: float | None = None
    ) -> None:
        """Record a successful call and what Telegram returned (e.g. the message id)."""
        await self._finish(
            id, "status = 'sent', result = $1::json",
            (None if result is None else json.dumps(result, ensure_ascii=False),), now,
        )  # fmt: skip

    async def reschedule(
        self, id: int, next_attempt_at: float, error: str, now: float | None = None
    ) -> None:
        """Put a call back to pending for another attempt at ``next_attempt_at``."""
        await self._finish(
            id, "status = 'pending', attempts = attempts + 1, next_attempt_at = $1, "
            "last_error = $2", (next_attempt_at, error), now,
        )  # fmt: skip

    async def defer(self, id: int, next_attempt_at: float, now: float | None = None) -> None:
        """Put a claimed call back to pending until ``next_attempt_at`` without counting an
        attempt (its chat's send budget is spent for now; nothing was sent)."""
        await self._finish(id, "status = 'pending', next_attempt_at = $1", (next_attempt_at,), now)

    async def mark_failed(self, id: int, error: str, now: float | None = None) -> None:
        """Give up on a call (e.g. the user blocked the bot), keeping the error."""
        await self._finish(
            id, "status = 'failed', attempts = attempts + 1, last_error = $1", (error,), now
        )

    async def _finish(
        self, id: int, assignments: str, params: tuple[Any, ...], now: float | None
    ) -> None:
        now = time.time() if now is None else now
        n = len(params)
        await self._db.execute(
            f"UPDATE outbox SET {assignments}, updated_at = ${n + 1} WHERE id = ${n + 2}",
            (*params, now, id),
        )

    async def reset_in_flight(
        self,
        now: float | None = None,
        *,
        lanes: tuple[int, int] = ALL_LANES,
        claimed_before: float | None = None,
    ) -> int:
        """Return calls left ``sending`` by a crash to ``pending``; return how many.

        One process calls it once at start-up. Several workers: only for ``lanes`` no live
        worker sends, or for calls claimed before ``claimed_before`` (a worker that died
        mid-send; a live one finishes a claim within seconds).
        """
        now = time.time() if now is None else now
        return await self._db.execute(
            "UPDATE outbox SET status = 'pending', updated_at = $1 WHERE status = 'sending' "
            "AND lane BETWEEN $2 AND $3 AND updated_at < $4",
            (now, *lanes, now + 1 if claimed_before is None else claimed_before),
        )

    async def append_text(self, id: int, text: str, ref: str, now: float | None = None) -> bool:
        """Append a line to a still-pending ``sendMessage`` (coalescing relays); False if it
        is already being sent. ``ref`` is appended to the item's ref, comma-separated."""
        now = time.time() if now is None else now
        return (
            await self._db.execute(
                "UPDATE outbox SET params = jsonb_set(params::jsonb, '{text}', "
                "to_jsonb((params ->> 'text') || chr(10) || $1))::json, "
                "ref = COALESCE(ref || ',', '') || $2, updated_at = $3 "
                "WHERE id = $4 AND status = 'pending' AND method = 'sendMessage' "
                "AND length(params ->> 'text') + length($1) < 4000",
                (text, ref, now, id),
            )
            > 0
        )

    async def get(self, id: int) -> OutboxItem | None:
        """Return one call by id, or None."""
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM outbox WHERE id = $1", (id,))
        return _item(row) if row else None

    async def counts(self, *, kind: str | None = None, ref: str | None = None) -> dict[str, int]:
        """Count calls by status (every status present, zeros included).

        Args:
            kind: Only calls of this kind, e.g. ``"broadcast"``.
            ref: Only calls for this record, e.g. one broadcast's progress.
        """
        rows = await self._db.fetchall(
            "SELECT status, COUNT(*) FROM outbox "
            "WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR ref = $2) "
            "GROUP BY status",
            (kind, ref),
        )
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({row[0]: row[1] for row in rows})
        return counts

    async def prune_sent(self, older_than: float) -> int:
        """Delete sent and cancelled calls finished before ``older_than``; return how many.

        Their dedupe keys are freed with them.
        """
        return await self._db.execute(
            "DELETE FROM outbox WHERE status IN ('sent', 'cancelled') AND updated_at < $1",
            (older_than,),
        )
