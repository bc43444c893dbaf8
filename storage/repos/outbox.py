"""Durable outbox of Bot API calls, sent by a worker in priority lanes."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import aiosqlite

from storage.db import Database

Status = Literal["pending", "sending", "sent", "failed", "cancelled"]
STATUSES: tuple[Status, ...] = ("pending", "sending", "sent", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One Bot API call waiting to be made, in flight, or finished.

    ``attempts`` counts failed attempts (rescheduled or failed), not successes.
    """

    id: int
    lane: int
    chat_id: int
    thread_id: int | None
    method: str
    params: dict[str, Any]
    kind: str | None
    ref: str | None
    status: Status
    attempts: int
    next_attempt_at: float
    created_at: float
    last_error: str | None
    result: dict[str, Any] | None


_COLUMNS = (
    "id, lane, chat_id, thread_id, method, params, kind, ref, status, attempts, "
    "next_attempt_at, created_at, last_error, result"
)
#: The calls due now (params: now, lowest lane, highest lane, chat ids to skip as JSON,
#: limit), in sending order.
_DUE = (
    "FROM outbox INDEXED BY outbox_due WHERE status = 'pending' AND next_attempt_at <= ? "
    "AND lane BETWEEN ? AND ? "
    "AND chat_id NOT IN (SELECT value FROM json_each(?)) ORDER BY lane, id LIMIT ?"
)
#: Every lane (``lanes`` arguments default to it).
ALL_LANES = (0, 1_000)
_ENQUEUE_KEYS = frozenset(
    {"lane", "chat_id", "method", "params", "thread_id", "kind", "ref", "dedupe_key", "not_before"}
)
_INSERT = (
    "INSERT INTO outbox (lane, chat_id, thread_id, method, params, kind, ref, dedupe_key, "
    "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (dedupe_key) DO NOTHING"
)


def _item(row: aiosqlite.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        lane=row["lane"],
        chat_id=row["chat_id"],
        thread_id=row["thread_id"],
        method=row["method"],
        params=json.loads(row["params"]),
        kind=row["kind"],
        ref=row["ref"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        last_error=row["last_error"],
        result=None if row["result"] is None else json.loads(row["result"]),
    )


def _row(item: dict[str, Any], now: float) -> tuple[Any, ...]:
    unknown = item.keys() - _ENQUEUE_KEYS
    if unknown:
        raise TypeError(f"Unknown outbox item keys: {sorted(unknown)}")
    not_before = item.get("not_before")
    return (
        item["lane"],
        item["chat_id"],
        item.get("thread_id"),
        item["method"],
        json.dumps(item["params"], ensure_ascii=False),
        item.get("kind"),
        item.get("ref"),
        item.get("dedupe_key"),
        now if not_before is None else not_before,
        now,  # created_at
        now,  # updated_at
    )


def _ids_json(ids: Iterable[int]) -> str:
    # Id lists go in as one JSON parameter (json_each), so no SQLite variable limit applies.
    return json.dumps([int(i) for i in ids])


class OutboxRepository:
    """Sends that must not be lost: relays, notifications, broadcasts.

    Lifecycle: ``pending`` -> ``sending`` (:meth:`mark_sending`) -> ``sent`` |
    ``pending`` again (:meth:`reschedule`) | ``failed``; ``pending`` ->
    ``cancelled``. ``sending`` rows left by a crash go back to ``pending`` via
    :meth:`reset_in_flight`, so a message in flight may be sent twice, never lost.
    """

    def __init__(self, db: Database) -> None:
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
        rows = await self._db.write(_INSERT + " RETURNING id", row)
        if rows:
            return int(rows[0][0])
        # The insert only yields on a dedupe_key conflict; that row stays (until pruned).
        found = await self._db.fetchone("SELECT id FROM outbox WHERE dedupe_key = ?", (dedupe_key,))
        assert found is not None
        return int(found[0])

    async def enqueue_many(self, items: list[dict[str, Any]], now: float | None = None) -> int:
        """Queue many calls in one transaction; return how many rows were added.

        Each item holds :meth:`enqueue`'s arguments by name (``lane``, ``chat_id``,
        ``method``, ``params`` required). Items whose ``dedupe_key`` exists are skipped.
        """
        now = time.time() if now is None else now
        rows = [_row(item, now) for item in items]
        async with self._db.transaction() as conn:
            cursor = await conn.executemany(_INSERT, rows)
            return max(cursor.rowcount, 0)

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
            f"SELECT {_COLUMNS} {_DUE}", (now, *lanes, _ids_json(exclude_chats), limit)
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

        One transaction: a coalesced line appended (:meth:`append_text`) or a cancel made
        after a separate read but before the claim would otherwise be sent stale or at all.
        With ``whole_chats``, chats with a call of these lanes in flight are skipped (as on
        PostgreSQL, where several workers claim).
        """
        now = time.time() if now is None else now
        due = _DUE
        if whole_chats:
            due = due.replace(
                " ORDER BY",
                " AND chat_id NOT IN (SELECT chat_id FROM outbox WHERE status = 'sending' "
                "AND lane BETWEEN ?3 AND ?4) ORDER BY",
            )
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE outbox SET status = 'sending', updated_at = ? "
                f"WHERE id IN (SELECT id {due}) RETURNING {_COLUMNS}",
                (now, now, *lanes, _ids_json(exclude_chats), limit),
            )
            rows = await cursor.fetchall()
        items = [_item(row) for row in rows]
        items.sort(key=lambda item: (item.lane, item.id))
        return items

    async def next_due_at(
        self, exclude_chats: Collection[int] = frozenset(), lanes: tuple[int, int] = ALL_LANES
    ) -> float | None:
        """Return the earliest ``next_attempt_at`` of pending calls (in ``lanes``), or None."""
        if exclude_chats:
            row = await self._db.fetchone(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' "
                "AND lane BETWEEN ? AND ? AND chat_id NOT IN (SELECT value FROM json_each(?))",
                (*lanes, _ids_json(exclude_chats)),
            )
        else:
            row = await self._db.fetchone(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' "
                "AND lane BETWEEN ? AND ?",
                lanes,
            )
        return None if row is None or row[0] is None else float(row[0])

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
        rows = await self._db.write(
            "UPDATE outbox SET status = 'cancelled', updated_at = ? "
            "WHERE status = 'pending' AND kind = ? AND (? IS NULL OR ref = ?) RETURNING id",
            (now, kind, ref, ref),
        )
        return len(rows)

    async def _transition(
        self, ids: Iterable[int], to: Status, from_: tuple[Status, ...], now: float | None
    ) -> int:
        now = time.time() if now is None else now
        rows = await self._db.write(
            f"UPDATE outbox SET status = ?, updated_at = ? "
            f"WHERE id IN (SELECT value FROM json_each(?)) "
            f"AND status IN ({', '.join('?' * len(from_))}) RETURNING id",
            (to, now, _ids_json(ids), *from_),
        )
        return len(rows)

    async def mark_sent(
        self, id: int, result: dict[str, Any] | None = None, now: float | None = None
    ) -> None:
        """Record a successful call and what Telegram returned (e.g. the message id)."""
        await self._finish(
            id, "status = 'sent', result = ?",
            (None if result is None else json.dumps(result, ensure_ascii=False),), now,
        )  # fmt: skip

    async def reschedule(
        self, id: int, next_attempt_at: float, error: str, now: float | None = None
    ) -> None:
        """Put a call back to pending for another attempt at ``next_attempt_at``."""
        await self._finish(
            id, "status = 'pending', attempts = attempts + 1, next_attempt_at = ?, "
            "last_error = ?", (next_attempt_at, error), now,
        )  # fmt: skip

    async def defer(self, id: int, next_attempt_at: float, now: float | None = None) -> None:
        """Put a claimed call back to pending until ``next_attempt_at`` without counting an
        attempt (its chat's send budget is spent for now; nothing was sent)."""
        await self._finish(id, "status = 'pending', next_attempt_at = ?", (next_attempt_at,), now)

    async def mark_failed(self, id: int, error: str, now: float | None = None) -> None:
        """Give up on a call (e.g. the user blocked the bot), keeping the error."""
        await self._finish(
            id, "status = 'failed', attempts = attempts + 1, last_error = ?", (error,), now
        )

    async def _finish(
        self, id: int, assignments: str, params: tuple[Any, ...], now: float | None
    ) -> None:
        now = time.time() if now is None else now
        await self._db.write(
            f"UPDATE outbox SET {assignments}, updated_at = ? WHERE id = ?", (*params, now, id)
        )

    async def reset_in_flight(
        self,
        now: float | None = None,
        *,
        lanes: tuple[int, int] = ALL_LANES,
        claimed_before: float | None = None,
    ) -> int:
        """Return calls left ``sending`` by a crash to ``pending``; return how many.

        Called once at start-up (one process per SQLite file); ``lanes`` and
        ``claimed_before`` narrow it as on PostgreSQL, where several workers send.
        """
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE outbox SET status = 'pending', updated_at = ? WHERE status = 'sending' "
                "AND lane BETWEEN ? AND ? AND updated_at < ?",
                (now, *lanes, now + 1 if claimed_before is None else claimed_before),
            )
            return cursor.rowcount

    async def append_text(self, id: int, text: str, ref: str, now: float | None = None) -> bool:
        """Append a line to a still-pending ``sendMessage`` (coalescing relays); False if it
        is already being sent. ``ref`` is appended to the item's ref, comma-separated."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE outbox SET params = json_set(params, '$.text', "
                "json_extract(params, '$.text') || char(10) || ?), "
                "ref = COALESCE(ref || ',', '') || ?, updated_at = ? "
                "WHERE id = ? AND status = 'pending' AND method = 'sendMessage' "
                "AND length(json_extract(params, '$.text')) + length(?) < 4000",
                (text, ref, now, id, text),
            )
            return cursor.rowcount > 0

    async def get(self, id: int) -> OutboxItem | None:
        """Return one call by id, or None."""
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (id,))
        return _item(row) if row else None

    async def counts(self, *, kind: str | None = None, ref: str | None = None) -> dict[str, int]:
        """Count calls by status (every status present, zeros included).

        Args:
            kind: Only calls of this kind, e.g. ``"broadcast"``.
            ref: Only calls for this record, e.g. one broadcast's progress.
        """
        rows = await self._db.fetchall(
            "SELECT status, COUNT(*) FROM outbox "
            "WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR ref = ?) GROUP BY status",
            (kind, kind, ref, ref),
        )
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({row[0]: row[1] for row in rows})
        return counts

    async def prune_sent(self, older_than: float) -> int:
        """Delete sent and cancelled calls finished before ``older_than``; return how many.

        Their dedupe keys are freed with them.
        """
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM outbox WHERE status IN ('sent', 'cancelled') AND updated_at < ?",
                (older_than,),
            )
            return cursor.rowcount
