"""Privacy (PostgreSQL): everything stored about one user (export), erasing it, retention.

The same rules as :mod:`storage.repos.privacy` (read its docstring): an erasure takes all of
a user's data in one transaction, and records that must stay keep a pseudonym instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from storage.postgres.db import PostgresDatabase
from storage.repos.answers import _record as _answer
from storage.repos.audit import AuditEntry
from storage.repos.outbox import _item as _outbox_item
from storage.repos.privacy import (
    _STAFF_ACTIONS,
    _TICKET_SENDS,
    ERASURE_DONE,
    ERASURE_STEPS,
    Erasure,
    NoticeDelivery,
    PersonalData,
    StoredUpdate,
    TicketRecord,
    TopicPost,
    UserTopic,
    _erasure,
)
from storage.repos.refunds import _record as _refund
from storage.repos.tickets import _message as _ticket_message
from storage.repos.tickets import _ticket
from storage.repos.users import _user
from storage.repos.verifications import Verification

#: A blanked stored update: only its id stays (a handled update_id is never handled again),
#: and it belongs to nobody. The same text SQLite's json_object() writes.
_BLANK_UPDATE = (
    "payload = '{\"update_id\":' || update_id || '}', user_id = NULL, chat_id = NULL, "
    "thread_id = NULL"
)

#: Tables an erasure or a purge deletes from or rewrites (VACUUMed by :meth:`compact`).
_ERASED_TABLES = (
    "users",
    "verifications",
    "tickets",
    "ticket_messages",
    "refunds",
    "answers",
    "broadcast_recipients",
    "audit_log",
    "inbox",
    "outbox",
    "ptb_user_data",
    "ptb_chat_data",
    "ptb_conversations",
    "erasures",
    "erasure_posts",
    "erasure_topics",
)


def _refs(ticket_ids: Iterable[int]) -> list[str]:
    return [str(i) for i in ticket_ids]


class PrivacyRepository:
    """A user's data as one whole: export, erasure, and purges by age (retention)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    # ------------------------------------------------------------------ export

    async def personal_data(self, user_id: int) -> PersonalData:
        """Return every record the bot holds about ``user_id``."""
        db = self._db
        row = await db.fetchone("SELECT * FROM users WHERE id = $1", (user_id,))
        profile = _user(row) if row else None
        row = await db.fetchone("SELECT * FROM verifications WHERE user_id = $1", (user_id,))
        verification = Verification(**dict(row)) if row else None
        tickets = []
        for ticket_row in await db.fetchall(
            "SELECT * FROM tickets WHERE user_id = $1 ORDER BY id", (user_id,)
        ):
            lines = await db.fetchall(
                "SELECT * FROM ticket_messages WHERE ticket_id = $1 "
                "AND direction IN ('in', 'out') ORDER BY id",
                (ticket_row["id"],),
            )
            tickets.append(TicketRecord(_ticket(ticket_row), [_ticket_message(r) for r in lines]))
        refunds = [
            _refund(r)
            for r in await db.fetchall(
                "SELECT * FROM refunds WHERE user_id = $1 ORDER BY created_at, id", (user_id,)
            )
        ]
        questions = [
            _answer(r)
            for r in await db.fetchall(
                "SELECT * FROM answers WHERE user_id = $1 ORDER BY id", (user_id,)
            )
        ]
        notices = [
            NoticeDelivery(r["broadcast_id"], r["status"], r["started_at"])
            for r in await db.fetchall(
                "SELECT r.broadcast_id, r.status, b.started_at FROM broadcast_recipients r "
                "JOIN broadcasts b ON b.id = r.broadcast_id WHERE r.broadcast_id IN "
                "(SELECT id FROM broadcasts) AND r.user_id = $1 ORDER BY r.broadcast_id",
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
                "SELECT * FROM audit_log WHERE actor_id = $1 OR target = $2 ORDER BY id",
                (user_id, str(user_id)),
            )
        ]
        updates = [
            StoredUpdate(r["update_id"], r["received_at"], r["done_at"], json.loads(r["payload"]))
            for r in await db.fetchall(
                "SELECT update_id, received_at, done_at, payload FROM inbox WHERE user_id = $1 "
                "ORDER BY update_id",
                (user_id,),
            )
        ]
        sends = [
            _outbox_item(r)
            for r in await db.fetchall(
                "SELECT * FROM outbox WHERE chat_id = $1 ORDER BY id", (user_id,)
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
        async with self._db.transaction():
            created = (
                await self._db.execute(
                    "INSERT INTO erasures (user_id, language, reason, step, requested_at) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) "
                    "WHERE user_id IS NOT NULL DO NOTHING",
                    (user_id, language, reason, ERASURE_STEPS[0], now),
                )
                > 0
            )
            row = await self._db.fetchone("SELECT * FROM erasures WHERE user_id = $1", (user_id,))
        assert row is not None
        return _erasure(row), created

    async def get_erasure(self, erasure_id: int) -> Erasure | None:
        """Return an erasure by id."""
        row = await self._db.fetchone("SELECT * FROM erasures WHERE id = $1", (erasure_id,))
        return _erasure(row) if row else None

    async def unfinished_erasures(self) -> list[Erasure]:
        """Return erasures a restart must resume, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM erasures WHERE step != $1 ORDER BY id", (ERASURE_DONE,)
        )
        return [_erasure(row) for row in rows]

    async def erasure_of(self, user_id: int) -> Erasure | None:
        """Return the erasure running for a user (not yet finished), if any."""
        row = await self._db.fetchone("SELECT * FROM erasures WHERE user_id = $1", (user_id,))
        return _erasure(row) if row else None

    async def set_step(
        self, erasure_id: int, step: str, counts: dict[str, int] | None = None
    ) -> None:
        """Record that an erasure reached ``step`` (and, with ``counts``, what it erased)."""
        await self._db.execute(
            "UPDATE erasures SET step = $1, counts = COALESCE($2::json, counts) WHERE id = $3",
            (step, None if counts is None else json.dumps(counts, sort_keys=True), erasure_id),
        )

    async def cancel_pending_sends(self, user_id: int) -> int:
        """Cancel messages not sent yet to the user, or carrying their data into their
        tickets' topics; return how many."""
        where, params = await self._sends_of(user_id)
        return await self._db.execute(
            f"UPDATE outbox SET status = 'cancelled', updated_at = $5 "
            f"WHERE status = 'pending' AND ({where})",
            (*params, time.time()),
        )

    async def sends_in_flight(self, user_id: int) -> int:
        """Count messages to or about the user being sent right now."""
        where, params = await self._sends_of(user_id)
        return int(
            await self._db.fetchval(
                f"SELECT COUNT(*) FROM outbox WHERE status = 'sending' AND ({where})", params
            )
        )

    async def _sends_of(self, user_id: int) -> tuple[str, tuple[Any, ...]]:
        """The outbox rows to or about the user (params $1-$4)."""
        tickets = await self._ticket_ids(user_id)
        where = (
            "chat_id = $1 OR id IN (SELECT outbox_id FROM ticket_messages WHERE outbox_id IS "
            "NOT NULL AND ticket_id = ANY($2::bigint[])) OR (kind = ANY($3::text[]) "
            "AND ref = ANY($4::text[]))"
        )
        return where, (user_id, tickets, list(_TICKET_SENDS), _refs(tickets))

    async def _ticket_ids(self, user_id: int) -> list[int]:
        rows = await self._db.fetchall("SELECT id FROM tickets WHERE user_id = $1", (user_id,))
        return [row[0] for row in rows]

    async def user_topics(self, user_id: int) -> list[UserTopic]:
        """Return the forum topics of the user's tickets."""
        rows = await self._db.fetchall(
            "SELECT group_chat_id, thread_id, code, language FROM tickets WHERE user_id = $1 "
            "AND group_chat_id IS NOT NULL AND thread_id IS NOT NULL ORDER BY id",
            (user_id,),
        )
        return [UserTopic(r[0], r[1], r[2], r[3]) for r in rows]

    async def topic_posts(self, user_id: int) -> list[TopicPost]:
        """Return the bot's posts in the user's topics that carry their data: their relayed
        messages and the tickets' header cards (name and id)."""
        tickets = await self._ticket_ids(user_id)
        relayed = await self._db.fetchall(
            "SELECT t.group_chat_id, t.thread_id, m.group_message_id FROM ticket_messages m "
            "JOIN tickets t ON t.id = m.ticket_id WHERE m.ticket_id = ANY($1::bigint[]) "
            "AND m.direction = 'in' AND m.group_message_id IS NOT NULL "
            "AND t.group_chat_id IS NOT NULL ORDER BY m.id",
            (tickets,),
        )
        headers = await self._db.fetchall(
            "SELECT chat_id, thread_id, (result ->> 'message_id')::bigint FROM outbox "
            "WHERE kind = 'ticket_header' AND status = 'sent' AND ref = ANY($1::text[]) "
            "AND result ->> 'message_id' IS NOT NULL ORDER BY id",
            (_refs(tickets),),
        )
        return [TopicPost(r[0], r[1], r[2]) for r in [*headers, *relayed]]

    async def plan_topic_cleanup(
        self, erasure_id: int, topics: list[tuple[UserTopic, str]], posts: list[TopicPost]
    ) -> None:
        """Remember what to remove from the agents' topics (each topic with its new name)
        before the records that say it are erased; planning twice changes nothing."""
        async with self._db.transaction():
            await self._db.execute(
                "INSERT INTO erasure_topics (erasure_id, chat_id, thread_id, name) "
                "SELECT $1, c, t, n FROM unnest($2::bigint[], $3::bigint[], $4::text[]) "
                "AS x (c, t, n) ON CONFLICT DO NOTHING",
                (
                    erasure_id,
                    [t.chat_id for t, _ in topics],
                    [t.thread_id for t, _ in topics],
                    [name for _, name in topics],
                ),
            )
            await self._db.execute(
                "INSERT INTO erasure_posts (erasure_id, chat_id, thread_id, message_id) "
                "SELECT $1, c, t, m FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) "
                "AS x (c, t, m) ON CONFLICT DO NOTHING",
                (
                    erasure_id,
                    [p.chat_id for p in posts],
                    [p.thread_id for p in posts],
                    [p.message_id for p in posts],
                ),
            )

    async def posts_to_delete(self, erasure_id: int) -> list[TopicPost]:
        """Return the planned posts not tried yet."""
        rows = await self._db.fetchall(
            "SELECT chat_id, thread_id, message_id FROM erasure_posts WHERE erasure_id = $1 "
            "AND outcome IS NULL ORDER BY chat_id, message_id",
            (erasure_id,),
        )
        return [TopicPost(r[0], r[1], r[2]) for r in rows]

    async def post_outcome(
        self, erasure_id: int, chat_id: int, message_id: int, outcome: str
    ) -> None:
        """Record whether a post was deleted or had to stay (older than Telegram allows)."""
        await self._db.execute(
            "UPDATE erasure_posts SET outcome = $1 WHERE erasure_id = $2 AND chat_id = $3 "
            "AND message_id = $4",
            (outcome, erasure_id, chat_id, message_id),
        )

    async def topics_to_close(self, erasure_id: int) -> list[tuple[UserTopic, str, int]]:
        """Return the planned topics not closed yet: (topic, new name, posts kept in it)."""
        rows = await self._db.fetchall(
            "SELECT t.chat_id, t.thread_id, t.name, (SELECT COUNT(*) FROM erasure_posts p "
            "WHERE p.erasure_id = t.erasure_id AND p.chat_id = t.chat_id AND p.thread_id = "
            "t.thread_id AND p.outcome = 'kept') AS kept FROM erasure_topics t "
            "WHERE t.erasure_id = $1 AND NOT t.done ORDER BY t.chat_id, t.thread_id",
            (erasure_id,),
        )
        return [(UserTopic(r[0], r[1], "", ""), r[2], r[3]) for r in rows]

    async def topic_closed(self, erasure_id: int, chat_id: int, thread_id: int) -> None:
        """Record that a topic was renamed, told and closed."""
        await self._db.execute(
            "UPDATE erasure_topics SET done = true WHERE erasure_id = $1 AND chat_id = $2 "
            "AND thread_id = $3",
            (erasure_id, chat_id, thread_id),
        )

    async def cleanup_counts(self, erasure_id: int) -> dict[str, int]:
        """Return how many posts were deleted and kept, and how many topics were closed."""
        row = await self._db.fetchone(
            "SELECT (SELECT COUNT(*) FROM erasure_posts WHERE erasure_id = $1 AND outcome = "
            "'deleted'), (SELECT COUNT(*) FROM erasure_posts WHERE erasure_id = $1 AND outcome = "
            "'kept'), (SELECT COUNT(*) FROM erasure_topics WHERE erasure_id = $1 AND done)",
            (erasure_id,),
        )
        assert row is not None
        return {"posts_deleted": row[0], "posts_kept": row[1], "topics_closed": row[2]}

    async def erase_user(self, user_id: int, pseudonym: int) -> dict[str, int]:
        """Erase everything personal about ``user_id`` in one transaction; return how many
        records of each kind were erased or made anonymous (see the SQLite repository for
        what goes and what stays with ``pseudonym``)."""
        db = self._db
        async with db.transaction():
            tickets = await self._ticket_ids(user_id)
            topics = await db.fetchall(
                "SELECT group_chat_id, thread_id FROM tickets WHERE user_id = $1 "
                "AND group_chat_id IS NOT NULL AND thread_id IS NOT NULL",
                (user_id,),
            )
            # Ids that are the user's in the wallet: their targets in the audit trail go.
            personal = [
                str(r[0])
                for r in await db.fetchall(
                    "SELECT wallet_account_id FROM users WHERE id = $1 "
                    "AND wallet_account_id IS NOT NULL "
                    "UNION SELECT account_id FROM verifications WHERE user_id = $1 "
                    "AND account_id IS NOT NULL "
                    "UNION SELECT account_id FROM refunds WHERE user_id = $1 "
                    "UNION SELECT id FROM refunds WHERE user_id = $1 "
                    "UNION SELECT ($1::bigint)::text",
                    (user_id,),
                )
            ]
            counts: dict[str, int] = {}

            async def run(name: str, sql: str, params: tuple[Any, ...]) -> None:
                counts[name] = counts.get(name, 0) + await db.execute(sql, params)

            await run(
                "sends",
                "DELETE FROM outbox WHERE chat_id = $1 OR id IN (SELECT outbox_id FROM "
                "ticket_messages WHERE outbox_id IS NOT NULL AND ticket_id = ANY($2::bigint[])) "
                "OR (kind = ANY($3::text[]) AND ref = ANY($4::text[]))",
                (user_id, tickets, list(_TICKET_SENDS), _refs(tickets)),
            )
            await run(
                "messages",
                "DELETE FROM ticket_messages WHERE ticket_id = ANY($1::bigint[])",
                (tickets,),
            )
            await run(
                "tickets",
                "UPDATE tickets SET user_id = $1, context = '{}', rating_comment = NULL, "
                "queue_message_id = NULL, queue_eta_minutes = NULL, user_blocked = false, "
                "closed_by = CASE WHEN closed_by = $2 THEN $1 ELSE closed_by END "
                "WHERE user_id = $2",
                (pseudonym, user_id),
            )
            await run(
                "questions",
                "UPDATE answers SET user_id = $1, question = '' WHERE user_id = $2",
                (pseudonym, user_id),
            )
            await run("refunds", "DELETE FROM refunds WHERE user_id = $1", (user_id,))
            # (broadcast_id, user_id) is the key: one lookup per broadcast, no scan.
            await run(
                "notices",
                "UPDATE broadcast_recipients SET user_id = $1, message_id = NULL, status = CASE "
                "WHEN status IN ('pending', 'queued') THEN 'cancelled' ELSE status END "
                "WHERE broadcast_id IN (SELECT id FROM broadcasts) AND user_id = $2",
                (pseudonym, user_id),
            )
            await run(
                "actions",
                "UPDATE audit_log SET actor_id = $1, details = '{}', target = CASE WHEN "
                "target = ANY($2::text[]) THEN NULL ELSE target END WHERE actor_id = $3 "
                "AND NOT (action LIKE ANY($4::text[]) OR (action = 'ticket.close' AND "
                "details::jsonb -> 'by_user' IN ('false'::jsonb, '0'::jsonb)))",
                (pseudonym, personal, user_id, list(_STAFF_ACTIONS)),
            )
            await run(
                "actions",
                "UPDATE audit_log SET target = NULL WHERE target = ANY($1::text[])",
                (personal,),
            )
            await run("verification", "DELETE FROM verifications WHERE user_id = $1", (user_id,))
            await run("profile", "DELETE FROM users WHERE id = $1", (user_id,))
            await run("state", "DELETE FROM ptb_user_data WHERE user_id = $1", (user_id,))
            await run("state", "DELETE FROM ptb_chat_data WHERE chat_id = $1", (user_id,))
            await run(
                "state",
                "DELETE FROM ptb_conversations WHERE key::jsonb @> to_jsonb($1::bigint)",
                (user_id,),
            )
            counts["updates"] = await self._blank_updates(user_id, [(r[0], r[1]) for r in topics])
        return counts

    async def forget_updates_of(self, user_id: int) -> int:
        """Blank the user's stored updates (e.g. ones that arrived during an erasure)."""
        return await self._blank_updates(user_id, [])

    async def _blank_updates(self, user_id: int, topics: list[tuple[int, int]]) -> int:
        # Pending ones too: a blanked update replays as an empty one, which nothing answers.
        return await self._db.execute(
            f"UPDATE inbox SET {_BLANK_UPDATE} WHERE user_id = $1 OR chat_id = $1 "
            "OR (chat_id, thread_id) IN (SELECT c, t FROM unnest($2::bigint[], $3::bigint[]) "
            "AS x (c, t))",
            (user_id, [t[0] for t in topics], [t[1] for t in topics]),
        )

    async def finish_erasure(
        self, erasure_id: int, counts: dict[str, int], now: float | None = None
    ) -> None:
        """Mark an erasure done: it keeps what was erased (counts) and when, not whose."""
        now = time.time() if now is None else now
        async with self._db.transaction():
            await self._db.execute(
                "UPDATE erasures SET user_id = NULL, language = NULL, finished_at = $1, "
                "counts = $2::json, step = 'compact' WHERE id = $3",
                (now, json.dumps(counts, sort_keys=True), erasure_id),
            )
            await self._db.execute("DELETE FROM erasure_posts WHERE erasure_id = $1", (erasure_id,))
            await self._db.execute(
                "DELETE FROM erasure_topics WHERE erasure_id = $1", (erasure_id,)
            )

    async def compact(self) -> bool:
        """Remove the erased rows' old versions from the tables and their indexes (VACUUM),
        so no query, backup of the live tables or reused page holds them.

        Weaker than SQLite's compaction, and said so: PostgreSQL does not zero the freed
        space inside a page until it is reused, and its write-ahead log (and any WAL archive
        or replica) keeps the old rows until those segments are recycled. Where that
        matters, run the server on encrypted storage with a bounded WAL retention.
        """
        await self._db.vacuum(_ERASED_TABLES)
        return True

    # ------------------------------------------------------------------ retention

    async def forget_update_contents(self, handled_before: float, batch: int = 1000) -> int:
        """Blank stored updates handled before ``handled_before``; return how many."""
        return await self._in_batches(
            f"UPDATE inbox SET {_BLANK_UPDATE} WHERE update_id IN (SELECT update_id "
            "FROM inbox WHERE done_at IS NOT NULL AND (user_id IS NOT NULL OR chat_id IS NOT "
            "NULL) AND done_at < $1 LIMIT $2)",
            handled_before,
            batch,
        )

    async def forget_sends(self, finished_before: float, batch: int = 1000) -> int:
        """Delete sends finished (sent, failed, cancelled) before ``finished_before``."""
        sent = await self._in_batches(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status IN "
            "('sent', 'cancelled') AND updated_at < $1 LIMIT $2)",
            finished_before,
            batch,
        )
        failed = await self._in_batches(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'failed' "
            "AND updated_at < $1 LIMIT $2)",
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
            async with self._db.transaction():
                rows = await self._db.fetchall(
                    "SELECT id, group_chat_id, thread_id, code, language FROM tickets "
                    "WHERE status = 'closed' AND user_id > 0 AND closed_at < $1 LIMIT $2 "
                    "FOR UPDATE",
                    (closed_before, batch),
                )
                ids = [r[0] for r in rows]
                await self._db.execute(
                    "DELETE FROM ticket_messages WHERE ticket_id = ANY($1::bigint[])", (ids,)
                )
                await self._db.execute(
                    "UPDATE tickets SET closed_by = CASE WHEN closed_by = user_id THEN 0 "
                    "ELSE closed_by END, user_id = 0, context = '{}', rating_comment = NULL, "
                    "queue_message_id = NULL, queue_eta_minutes = NULL "
                    "WHERE id = ANY($1::bigint[])",
                    (ids,),
                )
            topics.extend(UserTopic(r[1], r[2], r[3], r[4]) for r in rows if r[1] and r[2])
            if len(rows) < batch:
                return topics

    async def forget_questions(self, asked_before: float, batch: int = 1000) -> int:
        """Blank questions typed before ``asked_before`` and unlink them from the user."""
        return await self._in_batches(
            "UPDATE answers SET question = '', user_id = 0 WHERE id IN (SELECT id FROM answers "
            "WHERE user_id > 0 AND created_at < $1 LIMIT $2)",
            asked_before,
            batch,
        )

    async def forget_refunds(self, settled_before: float, batch: int = 1000) -> int:
        """Delete references of refunds that reached their last status (refunded,
        rejected) before ``settled_before``."""
        return await self._in_batches(
            "DELETE FROM refunds WHERE id IN (SELECT id FROM refunds WHERE status IN "
            "('refunded', 'rejected') AND updated_at < $1 LIMIT $2)",
            settled_before,
            batch,
        )

    async def forget_expired_verifications(self, verified_before: float, now: float) -> int:
        """Delete verification states with nothing left running: the verification older than
        ``verified_before``, no code waiting, no resend cooldown, no lock-out."""
        return await self._db.execute(
            "DELETE FROM verifications WHERE (verified_at IS NULL OR verified_at < $1) "
            "AND (code_expires_at IS NULL OR code_expires_at < $2) "
            "AND (resend_after IS NULL OR resend_after < $2) "
            "AND (locked_until IS NULL OR locked_until < $2)",
            (verified_before, now),
        )

    async def forget_audit(self, before: float, batch: int = 1000) -> int:
        """Delete audit entries older than ``before``."""
        return await self._in_batches(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 LIMIT $2)",
            before,
            batch,
        )

    async def inactive_users(
        self, seen_before: float, keep: Iterable[int] = (), limit: int = 100
    ) -> list[int]:
        """Return users not seen since ``seen_before`` without an open ticket or an erasure
        running, except those in ``keep`` (e.g. staff)."""
        rows = await self._db.fetchall(
            "SELECT id FROM users WHERE last_seen_at < $1 AND id <> ALL($2::bigint[]) "
            "AND id NOT IN (SELECT user_id FROM tickets WHERE status != 'closed') "
            "AND id NOT IN (SELECT user_id FROM erasures WHERE user_id IS NOT NULL) "
            "ORDER BY last_seen_at LIMIT $3",
            (seen_before, [int(i) for i in keep], limit),
        )
        return [row[0] for row in rows]

    async def _in_batches(self, sql: str, before: float, batch: int) -> int:
        # Short transactions: the bot's other writes are not held up by a large purge.
        total = 0
        while True:
            done = await self._db.execute(sql, (before, batch))
            total += done
            if done < batch:
                return total
