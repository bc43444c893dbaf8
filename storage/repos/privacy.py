"""Privacy: everything stored about one user (export), erasing it, and retention purges.

This repository reads and writes across the other aggregates on purpose: a user's data is
spread over the profile, tickets, refunds, questions, notices, the audit log and the stored
updates and sends, and an erasure must take all of it in one transaction. Records that must
stay for accountability (a ticket's times and stars, that a refund was requested, a
broadcast's delivery count) stay with the person replaced by a pseudonym that links to
nobody: ``-erasure_id`` for an erasure, ``0`` for a retention purge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from storage.db import Database
from storage.repos.answers import AnswerRecord
from storage.repos.answers import _record as _answer
from storage.repos.audit import AuditEntry
from storage.repos.outbox import OutboxItem
from storage.repos.outbox import _item as _outbox_item
from storage.repos.refunds import RefundRecord
from storage.repos.refunds import _record as _refund
from storage.repos.tickets import Ticket, TicketMessage, _ticket
from storage.repos.tickets import _message as _ticket_message
from storage.repos.users import User, _user
from storage.repos.verifications import Verification

#: Steps of an erasure, in order (``done``: nothing left to do).
ERASURE_STEPS = ("close", "collect", "erase", "delete_posts", "close_topics", "notify", "finish")
ERASURE_DONE = "done"

#: Audit actions that are a staff member's work (agents, admins): when a staff member erases
#: their own customer data, these keep their actor, because they account for staff actions.
_STAFF_ACTIONS = (
    "agent.%",
    "broadcast.%",
    "relay.%",
    "group.%",
    "ticket.claim",
    "ticket.transfer",
)

#: Outbox kinds that belong to a ticket by ``ref`` (its id): the topic, its header card and
#: the lines the bot posts in it.
_TICKET_SENDS = ("ticket_topic", "ticket_header", "header_edit", "topic_notice")

#: A blanked stored update: only its id stays (a handled update_id is never handled again).
_BLANK_UPDATE = "json_object('update_id', update_id)"


@dataclass(frozen=True, slots=True)
class StoredUpdate:
    """An update kept in the inbox, as received (after the sensitive-data guard)."""

    update_id: int
    received_at: float
    done_at: float | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NoticeDelivery:
    """A security notice (broadcast) addressed to the user and what became of it."""

    broadcast_id: int
    status: str
    sent_at: float | None


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """A ticket with the part of its transcript the user can see (their messages and the
    replies they got; agents' internal notes are not theirs to see)."""

    ticket: Ticket
    lines: list[TicketMessage]


@dataclass(frozen=True, slots=True)
class PersonalData:
    """Everything the bot holds about one user (the export)."""

    user_id: int
    profile: User | None
    verification: Verification | None
    tickets: list[TicketRecord]
    refunds: list[RefundRecord]
    questions: list[AnswerRecord]
    notices: list[NoticeDelivery]
    actions: list[AuditEntry]
    updates: list[StoredUpdate]
    sends: list[OutboxItem]

    @property
    def is_empty(self) -> bool:
        """Whether the bot holds nothing about the user."""
        return not (
            self.profile
            or self.verification
            or self.tickets
            or self.refunds
            or self.questions
            or self.notices
            or self.actions
            or self.updates
            or self.sends
        )


@dataclass(frozen=True, slots=True)
class Erasure:
    """A user's data being erased (or erased): a job that survives restarts."""

    id: int
    user_id: int | None
    language: str | None
    reason: str
    step: str
    requested_at: float
    finished_at: float | None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def pseudonym(self) -> int:
        """The id that replaces the user's in records that stay (links to nobody)."""
        return -self.id


@dataclass(frozen=True, slots=True)
class TopicPost:
    """One of the bot's posts in an agents' topic that carried the user's data."""

    chat_id: int
    thread_id: int | None
    message_id: int
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class UserTopic:
    """A forum topic of one of the user's tickets."""

    chat_id: int
    thread_id: int
    code: str
    language: str


def _erasure(row: aiosqlite.Row) -> Erasure:
    return Erasure(
        id=row["id"],
        user_id=row["user_id"],
        language=row["language"],
        reason=row["reason"],
        step=row["step"],
        requested_at=row["requested_at"],
        finished_at=row["finished_at"],
        counts=json.loads(row["counts"] or "{}"),
    )


def _ids(values: Iterable[Any]) -> str:
    return json.dumps(list(values))


class PrivacyRepository:
    """A user's data as one whole: export, erasure, and purges by age (retention)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ------------------------------------------------------------------ export

    async def personal_data(self, user_id: int) -> PersonalData:
        """Return every record the bot holds about ``user_id``."""
        db = self._db
        row = await db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
        profile = _user(row) if row else None
        row = await db.fetchone("SELECT * FROM verifications WHERE user_id = ?", (user_id,))
        verification = Verification(**dict(row)) if row else None
        tickets = []
        for ticket_row in await db.fetchall(
            "SELECT * FROM tickets WHERE user_id = ? ORDER BY id", (user_id,)
        ):
            lines = await db.fetchall(
                "SELECT * FROM ticket_messages WHERE ticket_id = ? AND direction IN ('in', 'out') "
                "ORDER BY id",
                (ticket_row["id"],),
            )
            tickets.append(TicketRecord(_ticket(ticket_row), [_ticket_message(r) for r in lines]))
        refunds = [
            _refund(r)
            for r in await db.fetchall(
                "SELECT * FROM refunds WHERE user_id = ? ORDER BY created_at, id", (user_id,)
            )
        ]
        questions = [
            _answer(r)
            for r in await db.fetchall(
                "SELECT * FROM answers WHERE user_id = ? ORDER BY id", (user_id,)
            )
        ]
        notices = [
            NoticeDelivery(r["broadcast_id"], r["status"], r["started_at"])
            for r in await db.fetchall(
                "SELECT r.broadcast_id, r.status, b.started_at FROM broadcast_recipients r "
                "JOIN broadcasts b ON b.id = r.broadcast_id WHERE r.broadcast_id IN "
                "(SELECT id FROM broadcasts) AND r.user_id = ? ORDER BY r.broadcast_id",
                (user_id,),
            )
        ]
        actions = [
            AuditEntry(
                id=r["id"],
                at=r["at"],
                actor_id=r["actor_id"],
                action=r["action"],
                target=r["target"],
                details=json.loads(r["details"]),
            )
            for r in await db.fetchall(
                "SELECT * FROM audit_log WHERE actor_id = ? OR target = ? ORDER BY id",
                (user_id, str(user_id)),
            )
        ]
        updates = [
            StoredUpdate(r["update_id"], r["received_at"], r["done_at"], json.loads(r["payload"]))
            for r in await db.fetchall(
                "SELECT update_id, received_at, done_at, payload FROM inbox WHERE user_id = ? "
                "ORDER BY update_id",
                (user_id,),
            )
        ]
        sends = [
            _outbox_item(r)
            for r in await db.fetchall(
                "SELECT * FROM outbox WHERE chat_id = ? ORDER BY id", (user_id,)
            )
        ]
        return PersonalData(
            user_id=user_id,
            profile=profile,
            verification=verification,
            tickets=tickets,
            refunds=refunds,
            questions=questions,
            notices=notices,
            actions=actions,
            updates=updates,
            sends=sends,
        )

    # ------------------------------------------------------------------ erasure jobs

    async def start_erasure(
        self,
        user_id: int,
        language: str | None,
        reason: str = "request",
        now: float | None = None,
    ) -> tuple[Erasure, bool]:
        """Record a request to erase a user's data; return ``(erasure, True)``, or the one
        already running and False (one at a time per user)."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO erasures (user_id, language, reason, step, requested_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) WHERE user_id IS NOT NULL "
                "DO NOTHING",
                (user_id, language, reason, ERASURE_STEPS[0], now),
            )
            created = cursor.rowcount > 0
            async with conn.execute(
                "SELECT * FROM erasures WHERE user_id = ?", (user_id,)
            ) as cursor:
                row = await cursor.fetchone()
        assert row is not None
        return _erasure(row), created

    async def get_erasure(self, erasure_id: int) -> Erasure | None:
        """Return an erasure by id."""
        row = await self._db.fetchone("SELECT * FROM erasures WHERE id = ?", (erasure_id,))
        return _erasure(row) if row else None

    async def unfinished_erasures(self) -> list[Erasure]:
        """Return erasures a restart must resume, oldest first."""
        rows = await self._db.fetchall(
            f"SELECT * FROM erasures WHERE step != '{ERASURE_DONE}' ORDER BY id"
        )
        return [_erasure(row) for row in rows]

    async def erasure_of(self, user_id: int) -> Erasure | None:
        """Return the erasure running for a user (not yet finished), if any."""
        row = await self._db.fetchone("SELECT * FROM erasures WHERE user_id = ?", (user_id,))
        return _erasure(row) if row else None

    async def set_step(
        self, erasure_id: int, step: str, counts: dict[str, int] | None = None
    ) -> None:
        """Record that an erasure reached ``step`` (and, with ``counts``, what it erased)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE erasures SET step = ?, counts = COALESCE(?, counts) WHERE id = ?",
                (step, None if counts is None else json.dumps(counts, sort_keys=True), erasure_id),
            )

    async def cancel_pending_sends(self, user_id: int) -> int:
        """Cancel messages not sent yet to the user, or carrying their data into their
        tickets' topics; return how many."""
        where, params = await self._sends_of(user_id)
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE outbox SET status = 'cancelled', updated_at = ? "
                f"WHERE status = 'pending' AND ({where})",
                (time.time(), *params),
            )
            return cursor.rowcount

    async def sends_in_flight(self, user_id: int) -> int:
        """Count messages to or about the user being sent right now."""
        where, params = await self._sends_of(user_id)
        row = await self._db.fetchone(
            f"SELECT COUNT(*) FROM outbox WHERE status = 'sending' AND ({where})", params
        )
        return int(row[0]) if row else 0

    async def _sends_of(self, user_id: int) -> tuple[str, tuple[Any, ...]]:
        tickets = await self._ticket_ids(user_id)
        where = (
            "chat_id = ? OR id IN (SELECT outbox_id FROM ticket_messages WHERE outbox_id IS NOT "
            "NULL AND ticket_id IN (SELECT value FROM json_each(?))) OR (kind IN "
            f"({', '.join('?' * len(_TICKET_SENDS))}) AND ref IN (SELECT CAST(value AS TEXT) "
            "FROM json_each(?)))"
        )
        return where, (user_id, _ids(tickets), *_TICKET_SENDS, _ids(tickets))

    async def _ticket_ids(self, user_id: int) -> list[int]:
        rows = await self._db.fetchall("SELECT id FROM tickets WHERE user_id = ?", (user_id,))
        return [row[0] for row in rows]

    async def user_topics(self, user_id: int) -> list[UserTopic]:
        """Return the forum topics of the user's tickets."""
        rows = await self._db.fetchall(
            "SELECT group_chat_id, thread_id, code, language FROM tickets WHERE user_id = ? "
            "AND group_chat_id IS NOT NULL AND thread_id IS NOT NULL ORDER BY id",
            (user_id,),
        )
        return [UserTopic(r[0], r[1], r[2], r[3]) for r in rows]

    async def topic_posts(self, user_id: int) -> list[TopicPost]:
        """Return the bot's posts in the user's topics that carry their data: their relayed
        messages and the tickets' header cards (name and id)."""
        tickets = _ids(await self._ticket_ids(user_id))
        relayed = await self._db.fetchall(
            "SELECT t.group_chat_id, t.thread_id, m.group_message_id FROM ticket_messages m "
            "JOIN tickets t ON t.id = m.ticket_id WHERE m.ticket_id IN "
            "(SELECT value FROM json_each(?)) AND m.direction = 'in' "
            "AND m.group_message_id IS NOT NULL AND t.group_chat_id IS NOT NULL ORDER BY m.id",
            (tickets,),
        )
        headers = await self._db.fetchall(
            "SELECT chat_id, thread_id, json_extract(result, '$.message_id') FROM outbox "
            "WHERE kind = 'ticket_header' AND status = 'sent' AND ref IN "
            "(SELECT CAST(value AS TEXT) FROM json_each(?)) "
            "AND json_extract(result, '$.message_id') IS NOT NULL ORDER BY id",
            (tickets,),
        )
        return [TopicPost(r[0], r[1], r[2]) for r in [*headers, *relayed]]

    async def plan_topic_cleanup(
        self, erasure_id: int, topics: list[tuple[UserTopic, str]], posts: list[TopicPost]
    ) -> None:
        """Remember what to remove from the agents' topics (each topic with its new name)
        before the records that say it are erased; planning twice changes nothing."""
        async with self._db.transaction() as conn:
            await conn.executemany(
                "INSERT OR IGNORE INTO erasure_topics (erasure_id, chat_id, thread_id, name) "
                "VALUES (?, ?, ?, ?)",
                [(erasure_id, t.chat_id, t.thread_id, name) for t, name in topics],
            )
            await conn.executemany(
                "INSERT OR IGNORE INTO erasure_posts (erasure_id, chat_id, thread_id, message_id) "
                "VALUES (?, ?, ?, ?)",
                [(erasure_id, p.chat_id, p.thread_id, p.message_id) for p in posts],
            )

    async def posts_to_delete(self, erasure_id: int) -> list[TopicPost]:
        """Return the planned posts not tried yet."""
        rows = await self._db.fetchall(
            "SELECT chat_id, thread_id, message_id FROM erasure_posts WHERE erasure_id = ? "
            "AND outcome IS NULL ORDER BY chat_id, message_id",
            (erasure_id,),
        )
        return [TopicPost(r[0], r[1], r[2]) for r in rows]

    async def post_outcome(
        self, erasure_id: int, chat_id: int, message_id: int, outcome: str
    ) -> None:
        """Record whether a post was deleted or had to stay (older than Telegram allows)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE erasure_posts SET outcome = ? WHERE erasure_id = ? AND chat_id = ? "
                "AND message_id = ?",
                (outcome, erasure_id, chat_id, message_id),
            )

    async def topics_to_close(self, erasure_id: int) -> list[tuple[UserTopic, str, int]]:
        """Return the planned topics not closed yet: (topic, new name, posts kept in it)."""
        rows = await self._db.fetchall(
            "SELECT t.chat_id, t.thread_id, t.name, (SELECT COUNT(*) FROM erasure_posts p "
            "WHERE p.erasure_id = t.erasure_id AND p.chat_id = t.chat_id AND p.thread_id = "
            "t.thread_id AND p.outcome = 'kept') AS kept FROM erasure_topics t "
            "WHERE t.erasure_id = ? AND t.done = 0 ORDER BY t.chat_id, t.thread_id",
            (erasure_id,),
        )
        return [(UserTopic(r[0], r[1], "", ""), r[2], r[3]) for r in rows]

    async def topic_closed(self, erasure_id: int, chat_id: int, thread_id: int) -> None:
        """Record that a topic was renamed, told and closed."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE erasure_topics SET done = 1 WHERE erasure_id = ? AND chat_id = ? "
                "AND thread_id = ?",
                (erasure_id, chat_id, thread_id),
            )

    async def cleanup_counts(self, erasure_id: int) -> dict[str, int]:
        """Return how many posts were deleted and kept, and how many topics were closed."""
        row = await self._db.fetchone(
            "SELECT (SELECT COUNT(*) FROM erasure_posts WHERE erasure_id = ? AND outcome = "
            "'deleted'), (SELECT COUNT(*) FROM erasure_posts WHERE erasure_id = ? AND outcome = "
            "'kept'), (SELECT COUNT(*) FROM erasure_topics WHERE erasure_id = ? AND done = 1)",
            (erasure_id, erasure_id, erasure_id),
        )
        assert row is not None
        return {"posts_deleted": row[0], "posts_kept": row[1], "topics_closed": row[2]}

    async def erase_user(self, user_id: int, pseudonym: int) -> dict[str, int]:
        """Erase everything personal about ``user_id`` in one transaction; return how many
        records of each kind were erased or made anonymous.

        Gone: the profile (name, languages, account link), the verification state, the
        transcripts and the tickets' context and comments, refund references, the text of
        typed questions, the user's stored updates (and agents' updates in the user's ticket
        topics) and the sends to them or about their tickets, PTB conversation state.
        Kept with ``pseudonym`` instead of the user: tickets (times, stars), questions'
        outcomes, notice deliveries (counts), the audit trail (without targets or details).
        """
        async with self._db.transaction() as conn:
            tickets = _ids(
                r[0]
                for r in await conn.execute_fetchall(
                    "SELECT id FROM tickets WHERE user_id = ?", (user_id,)
                )
            )
            topics = json.dumps(
                [
                    [r[0], r[1]]
                    for r in await conn.execute_fetchall(
                        "SELECT group_chat_id, thread_id FROM tickets WHERE user_id = ? "
                        "AND group_chat_id IS NOT NULL AND thread_id IS NOT NULL",
                        (user_id,),
                    )
                ]
            )
            # Ids that are the user's in the wallet: their targets in the audit trail go.
            personal = _ids(
                str(r[0])
                for r in await conn.execute_fetchall(
                    "SELECT wallet_account_id FROM users WHERE id = ?1 "
                    "AND wallet_account_id IS NOT NULL "
                    "UNION SELECT account_id FROM verifications WHERE user_id = ?1 "
                    "AND account_id IS NOT NULL "
                    "UNION SELECT account_id FROM refunds WHERE user_id = ?1 "
                    "UNION SELECT id FROM refunds WHERE user_id = ?1 "
                    "UNION SELECT CAST(?1 AS TEXT)",
                    (user_id,),
                )
            )
            counts: dict[str, int] = {}

            async def run(name: str, sql: str, params: tuple[Any, ...]) -> None:
                cursor = await conn.execute(sql, params)
                counts[name] = counts.get(name, 0) + max(cursor.rowcount, 0)

            await run(
                "sends",
                "DELETE FROM outbox WHERE chat_id = ? OR id IN (SELECT outbox_id FROM "
                "ticket_messages WHERE outbox_id IS NOT NULL AND ticket_id IN "
                "(SELECT value FROM json_each(?))) OR (kind IN "
                f"({', '.join('?' * len(_TICKET_SENDS))}) AND ref IN "
                "(SELECT CAST(value AS TEXT) FROM json_each(?)))",
                (user_id, tickets, *_TICKET_SENDS, tickets),
            )
            await run(
                "messages",
                "DELETE FROM ticket_messages WHERE ticket_id IN (SELECT value FROM json_each(?))",
                (tickets,),
            )
            await run(
                "tickets",
                "UPDATE tickets SET user_id = ?1, context = '{}', rating_comment = NULL, "
                "queue_message_id = NULL, queue_eta_minutes = NULL, user_blocked = 0, "
                "closed_by = CASE WHEN closed_by = ?2 THEN ?1 ELSE closed_by END "
                "WHERE user_id = ?2",
                (pseudonym, user_id),
            )
            await run(
                "questions",
                "UPDATE answers SET user_id = ?, question = '' WHERE user_id = ?",
                (pseudonym, user_id),
            )
            await run("refunds", "DELETE FROM refunds WHERE user_id = ?", (user_id,))
            # (broadcast_id, user_id) is the key: one lookup per broadcast, no scan.
            await run(
                "notices",
                "UPDATE broadcast_recipients SET user_id = ?1, message_id = NULL, status = CASE "
                "WHEN status IN ('pending', 'queued') THEN 'cancelled' ELSE status END "
                "WHERE broadcast_id IN (SELECT id FROM broadcasts) AND user_id = ?2",
                (pseudonym, user_id),
            )
            staff = " OR ".join("action LIKE ?" for _ in _STAFF_ACTIONS)
            staff += " OR (action = 'ticket.close' AND json_extract(details, '$.by_user') = 0)"
            await run(
                "actions",
                "UPDATE audit_log SET actor_id = ?, details = '{}', target = CASE WHEN target "
                "IN (SELECT value FROM json_each(?)) THEN NULL ELSE target END "
                f"WHERE actor_id = ? AND NOT ({staff})",
                (pseudonym, personal, user_id, *_STAFF_ACTIONS),
            )
            await run(
                "actions",
                "UPDATE audit_log SET target = NULL WHERE target IN "
                "(SELECT value FROM json_each(?))",
                (personal,),
            )
            await run("verification", "DELETE FROM verifications WHERE user_id = ?", (user_id,))
            await run("profile", "DELETE FROM users WHERE id = ?", (user_id,))
            await run("state", "DELETE FROM ptb_user_data WHERE user_id = ?", (user_id,))
            await run("state", "DELETE FROM ptb_chat_data WHERE chat_id = ?", (user_id,))
            await run(
                "state",
                "DELETE FROM ptb_conversations WHERE EXISTS "
                "(SELECT 1 FROM json_each(ptb_conversations.key) WHERE value = ?)",
                (user_id,),
            )
            counts["updates"] = await self._blank_updates(conn, user_id, topics)
        return counts

    async def forget_updates_of(self, user_id: int) -> int:
        """Blank the user's stored updates (e.g. ones that arrived during an erasure)."""
        async with self._db.transaction() as conn:
            return await self._blank_updates(conn, user_id, "[]")

    @staticmethod
    async def _blank_updates(conn: aiosqlite.Connection, user_id: int, topics: str) -> int:
        # Pending ones too: a blanked update replays as an empty one, which nothing answers.
        cursor = await conn.execute(
            f"UPDATE inbox SET payload = {_BLANK_UPDATE} WHERE user_id = ?1 OR chat_id = ?1 "
            "OR (chat_id, thread_id) IN (SELECT json_extract(value, '$[0]'), "
            "json_extract(value, '$[1]') FROM json_each(?2))",
            (user_id, topics),
        )
        return max(cursor.rowcount, 0)

    async def finish_erasure(
        self, erasure_id: int, counts: dict[str, int], now: float | None = None
    ) -> None:
        """Mark an erasure done: it keeps what was erased (counts) and when, not whose."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE erasures SET user_id = NULL, language = NULL, finished_at = ?, "
                "counts = ?, step = 'compact' WHERE id = ?",
                (now, json.dumps(counts, sort_keys=True), erasure_id),
            )
            await conn.execute("DELETE FROM erasure_posts WHERE erasure_id = ?", (erasure_id,))
            await conn.execute("DELETE FROM erasure_topics WHERE erasure_id = ?", (erasure_id,))

    async def compact(self) -> bool:
        """Make erased content unrecoverable from the storage files; False if it has to be
        tried again (SQLite: deleted content is zeroed as it goes, and the write-ahead log,
        which still holds older copies of pages, is folded in and truncated)."""
        return await self._db.checkpoint()

    # ------------------------------------------------------------------ retention

    async def forget_update_contents(self, handled_before: float, batch: int = 1000) -> int:
        """Blank stored updates handled before ``handled_before``; return how many."""
        return await self._in_batches(
            f"UPDATE inbox SET payload = {_BLANK_UPDATE} WHERE update_id IN (SELECT update_id "
            "FROM inbox WHERE done_at IS NOT NULL AND (user_id IS NOT NULL OR chat_id IS NOT "
            "NULL) AND done_at < ? LIMIT ?)",
            handled_before,
            batch,
        )

    async def forget_sends(self, finished_before: float, batch: int = 1000) -> int:
        """Delete sends finished (sent, failed, cancelled) before ``finished_before``."""
        sent = await self._in_batches(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status IN "
            "('sent', 'cancelled') AND updated_at < ? LIMIT ?)",
            finished_before,
            batch,
        )
        failed = await self._in_batches(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'failed' "
            "AND updated_at < ? LIMIT ?)",
            finished_before,
            batch,
        )
        return sent + failed

    async def forget_transcripts(self, closed_before: float, batch: int = 200) -> list[UserTopic]:
        """Erase the transcripts, context and comments of tickets closed before
        ``closed_before`` and make the tickets anonymous (times and stars stay); return their
        topics (whose names still carry the user's first name)."""
        topics: list[UserTopic] = []
        while True:
            async with self._db.transaction() as conn:
                rows = await conn.execute_fetchall(
                    "SELECT id, group_chat_id, thread_id, code, language FROM tickets "
                    "WHERE status = 'closed' AND user_id > 0 AND closed_at < ? LIMIT ?",
                    (closed_before, batch),
                )
                rows = list(rows)
                ids = _ids(r[0] for r in rows)
                await conn.execute(
                    "DELETE FROM ticket_messages WHERE ticket_id IN "
                    "(SELECT value FROM json_each(?))",
                    (ids,),
                )
                await conn.execute(
                    "UPDATE tickets SET closed_by = CASE WHEN closed_by = user_id THEN 0 "
                    "ELSE closed_by END, user_id = 0, context = '{}', rating_comment = NULL, "
                    "queue_message_id = NULL, queue_eta_minutes = NULL "
                    "WHERE id IN (SELECT value FROM json_each(?))",
                    (ids,),
                )
            topics.extend(UserTopic(r[1], r[2], r[3], r[4]) for r in rows if r[1] and r[2])
            if len(rows) < batch:
                return topics

    async def forget_questions(self, asked_before: float, batch: int = 1000) -> int:
        """Blank questions typed before ``asked_before`` and unlink them from the user."""
        return await self._in_batches(
            "UPDATE answers SET question = '', user_id = 0 WHERE id IN (SELECT id FROM answers "
            "WHERE user_id > 0 AND created_at < ? LIMIT ?)",
            asked_before,
            batch,
        )

    async def forget_refunds(self, settled_before: float, batch: int = 1000) -> int:
        """Delete references of refunds that reached their last status (refunded,
        rejected) before ``settled_before``."""
        return await self._in_batches(
            "DELETE FROM refunds WHERE id IN (SELECT id FROM refunds WHERE status IN "
            "('refunded', 'rejected') AND updated_at < ? LIMIT ?)",
            settled_before,
            batch,
        )

    async def forget_expired_verifications(self, verified_before: float, now: float) -> int:
        """Delete verification states with nothing left running: the verification older than
        ``verified_before``, no code waiting, no resend cooldown, no lock-out."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM verifications WHERE (verified_at IS NULL OR verified_at < ?1) "
                "AND (code_expires_at IS NULL OR code_expires_at < ?2) "
                "AND (resend_after IS NULL OR resend_after < ?2) "
                "AND (locked_until IS NULL OR locked_until < ?2)",
                (verified_before, now),
            )
            return cursor.rowcount

    async def forget_audit(self, before: float, batch: int = 1000) -> int:
        """Delete audit entries older than ``before``."""
        return await self._in_batches(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? LIMIT ?)",
            before,
            batch,
        )

    async def inactive_users(
        self, seen_before: float, keep: Iterable[int] = (), limit: int = 100
    ) -> list[int]:
        """Return users not seen since ``seen_before`` without an open ticket or an erasure
        running, except those in ``keep`` (e.g. staff)."""
        rows = await self._db.fetchall(
            "SELECT id FROM users WHERE last_seen_at < ? AND id NOT IN "
            "(SELECT value FROM json_each(?)) AND id NOT IN (SELECT user_id FROM tickets "
            "WHERE status != 'closed') AND id NOT IN (SELECT user_id FROM erasures WHERE "
            "user_id IS NOT NULL) ORDER BY last_seen_at LIMIT ?",
            (seen_before, _ids(keep), limit),
        )
        return [row[0] for row in rows]

    async def _in_batches(self, sql: str, before: float, batch: int) -> int:
        # Short transactions: the bot's other writes are not held up by a large purge.
        total = 0
        while True:
            async with self._db.transaction() as conn:
                cursor = await conn.execute(sql, (before, batch))
                done = max(cursor.rowcount, 0)
            total += done
            if done < batch:
                return total
