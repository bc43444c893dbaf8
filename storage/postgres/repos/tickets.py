"""Support tickets (PostgreSQL): the agent roster, tickets, transcripts, message-id maps."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import asyncpg

from storage.errors import StorageError
from storage.postgres.db import PostgresDatabase
from storage.repos.tickets import Agent, Ticket, TicketMessage, _message, _ticket


class AgentRepository:
    """The roster of support agents."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def add(
        self, user_id: int, name: str, added_by: int | None, now: float | None = None
    ) -> bool:
        """Put a user on the roster (or rename them); return True if they were new."""
        now = time.time() if now is None else now
        # xmax = 0 only for a row this statement inserted (an update sets it).
        inserted = await self._db.fetchval(
            "INSERT INTO agents (user_id, name, added_by, added_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (user_id) DO UPDATE SET name = excluded.name "
            "RETURNING xmax = 0",
            (user_id, name, added_by, now),
        )
        return bool(inserted)

    async def remove(self, user_id: int) -> bool:
        """Take a user off the roster; return True if they were on it."""
        return await self._db.execute("DELETE FROM agents WHERE user_id = $1", (user_id,)) > 0

    async def get(self, user_id: int) -> Agent | None:
        """Return the agent, or None if the user is not on the roster."""
        row = await self._db.fetchone("SELECT * FROM agents WHERE user_id = $1", (user_id,))
        return Agent(**dict(row)) if row else None

    async def all(self) -> list[Agent]:
        """Return the roster by name."""
        rows = await self._db.fetchall('SELECT * FROM agents ORDER BY name COLLATE "C", user_id')
        return [Agent(**dict(row)) for row in rows]

    async def touch(self, user_id: int, now: float | None = None) -> None:
        """Record that the agent just acted (agents online = active recently)."""
        now = time.time() if now is None else now
        await self._db.execute(
            "UPDATE agents SET last_active_at = $1 WHERE user_id = $2", (now, user_id)
        )

    async def online_count(self, since: float) -> int:
        """Return how many agents acted since ``since``."""
        return int(
            await self._db.fetchval(
                "SELECT COUNT(*) FROM agents WHERE last_active_at >= $1", (since,)
            )
        )


class TicketRepository:
    """Tickets and their transcripts."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    # ------------------------------------------------------------------ tickets

    async def create(
        self,
        user_id: int,
        code: str,
        language: str,
        *,
        priority: int = 0,
        context: dict[str, Any] | None = None,
        group_chat_id: int | None = None,
        now: float | None = None,
    ) -> tuple[Ticket, bool]:
        """Open a ticket; return ``(ticket, True)``, or ``(open_ticket, False)`` if the user
        already has one (one open ticket per user)."""
        now = time.time() if now is None else now
        # ON CONFLICT DO NOTHING instead of catching the violation: an error would abort a
        # caller's surrounding transaction in PostgreSQL.
        row = await self._db.fetchone(
            "INSERT INTO tickets (code, user_id, language, priority, context, group_chat_id, "
            "created_at) VALUES ($1, $2, $3, $4, $5::json, $6, $7) ON CONFLICT DO NOTHING "
            "RETURNING *",
            (
                code,
                user_id,
                language,
                priority,
                json.dumps(context or {}, ensure_ascii=False),
                group_chat_id,
                now,
            ),
        )
        if row is not None:
            return _ticket(row), True
        existing = await self.open_for_user(user_id)
        if existing is None:
            raise StorageError(f"ticket code {code!r} is taken")  # the code collided
        return existing, False

    async def get(self, ticket_id: int) -> Ticket | None:
        """Return a ticket by id (inside a transaction: locked until it ends, so a status
        checked there still holds when the transaction acts on it)."""
        lock = " FOR UPDATE" if self._db.in_transaction else ""
        row = await self._db.fetchone(f"SELECT * FROM tickets WHERE id = $1{lock}", (ticket_id,))
        return _ticket(row) if row else None

    async def open_for_user(self, user_id: int) -> Ticket | None:
        """Return the user's open (or claimed) ticket, if any."""
        row = await self._db.fetchone(
            "SELECT * FROM tickets WHERE user_id = $1 AND status != 'closed'", (user_id,)
        )
        return _ticket(row) if row else None

    async def last_closed_for_user(self, user_id: int) -> Ticket | None:
        """Return the user's most recently closed ticket, if any."""
        row = await self._db.fetchone(
            "SELECT * FROM tickets WHERE user_id = $1 AND status = 'closed' "
            "ORDER BY closed_at DESC LIMIT 1",
            (user_id,),
        )
        return _ticket(row) if row else None

    async def by_topic(self, group_chat_id: int, thread_id: int) -> Ticket | None:
        """Return the ticket whose forum topic this is (the newest, if recreated)."""
        row = await self._db.fetchone(
            "SELECT * FROM tickets WHERE group_chat_id = $1 AND thread_id = $2 "
            "ORDER BY id DESC LIMIT 1",
            (group_chat_id, thread_id),
        )
        return _ticket(row) if row else None

    async def open_tickets(self) -> list[Ticket]:
        """Return every open or claimed ticket, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM tickets WHERE status != 'closed' ORDER BY created_at, id"
        )
        return [_ticket(row) for row in rows]

    async def _update(self, ticket_id: int, sql: str, params: tuple[Any, ...]) -> bool:
        n = len(params)
        return (
            await self._db.execute(
                f"UPDATE tickets SET {sql} WHERE id = ${n + 1}", (*params, ticket_id)
            )
            > 0
        )

    async def set_topic(self, ticket_id: int, group_chat_id: int, thread_id: int | None) -> None:
        """Record the ticket's agents' group and forum topic (None: to be recreated)."""
        await self._update(
            ticket_id,
            "group_chat_id = $1, thread_id = $2, topic_generation = topic_generation + "
            "CASE WHEN $2::bigint IS NULL THEN 1 ELSE 0 END",
            (group_chat_id, thread_id),
        )

    async def claim(self, ticket_id: int, agent_id: int, now: float | None = None) -> bool:
        """Give an open ticket to an agent; False if it is closed or someone else has it."""
        now = time.time() if now is None else now
        return (
            await self._db.execute(
                "UPDATE tickets SET status = 'claimed', claimed_by = $1, claimed_at = $2 "
                "WHERE id = $3 AND (status = 'open' OR (status = 'claimed' AND claimed_by = $1))",
                (agent_id, now, ticket_id),
            )
            > 0
        )

    async def transfer(self, ticket_id: int, agent_id: int, now: float | None = None) -> bool:
        """Hand a ticket that is not closed to another agent."""
        now = time.time() if now is None else now
        return (
            await self._db.execute(
                "UPDATE tickets SET status = 'claimed', claimed_by = $1, claimed_at = $2 "
                "WHERE id = $3 AND status != 'closed'",
                (agent_id, now, ticket_id),
            )
            > 0
        )

    async def close(self, ticket_id: int, closed_by: int | None, now: float | None = None) -> bool:
        """Close a ticket; False if it was already closed."""
        now = time.time() if now is None else now
        return (
            await self._db.execute(
                "UPDATE tickets SET status = 'closed', closed_at = $1, closed_by = $2 "
                "WHERE id = $3 AND status != 'closed'",
                (now, closed_by, ticket_id),
            )
            > 0
        )

    async def reopen(self, ticket_id: int) -> bool:
        """Reopen a closed ticket (a user wrote again soon after the close)."""
        try:
            # A savepoint: the violation must not abort a caller's surrounding transaction.
            async with self._db.transaction():
                return await self._update(
                    ticket_id,
                    "status = CASE WHEN claimed_by IS NULL THEN 'open' ELSE 'claimed' END, "
                    "closed_at = NULL, closed_by = NULL, rating = NULL, rating_comment = NULL",
                    (),
                )
        except asyncpg.UniqueViolationError:  # the user already has another open ticket
            return False

    async def set_header_message(self, ticket_id: int, message_id: int | None) -> None:
        """Record the message id of the header card in the ticket's topic."""
        await self._update(ticket_id, "header_message_id = $1", (message_id,))

    async def rate(self, ticket_id: int, rating: int) -> bool:
        """Store the user's 1-5 rating of a closed ticket."""
        return await self._update(ticket_id, "rating = $1", (rating,))

    async def comment(self, ticket_id: int, comment: str) -> bool:
        """Store the user's comment on a closed ticket."""
        return await self._update(ticket_id, "rating_comment = $1", (comment,))

    async def first_response(self, ticket_id: int, now: float | None = None) -> None:
        """Record the first agent reply time (only the first one counts)."""
        now = time.time() if now is None else now
        await self._update(ticket_id, "first_response_at = COALESCE(first_response_at, $1)", (now,))

    async def set_queue_message(self, ticket_id: int, message_id: int | None, eta: int | None):
        """Remember the user's queue-position message and the wait it showed."""
        await self._update(
            ticket_id, "queue_message_id = $1, queue_eta_minutes = $2", (message_id, eta)
        )

    async def mark_reminded(self, ticket_id: int, now: float | None = None) -> bool:
        """Record that agents are reminded of this ticket; False if it is no longer open and
        unclaimed-and-unreminded (claimed or closed meanwhile: no reminder)."""
        return (
            await self._db.execute(
                "UPDATE tickets SET reminded_at = $1 WHERE id = $2 AND status = 'open' "
                "AND reminded_at IS NULL",
                (time.time() if now is None else now, ticket_id),
            )
            > 0
        )

    async def mark_user_blocked(self, ticket_id: int, blocked: bool = True) -> None:
        """Record that the user blocked the bot (relays to them fail)."""
        await self._update(ticket_id, "user_blocked = $1", (bool(blocked),))

    async def queue_position(self, ticket: Ticket) -> int:
        """Return the ticket's place among unclaimed tickets (1 = next)."""
        ahead = await self._db.fetchval(
            "SELECT COUNT(*) FROM tickets WHERE status = 'open' AND "
            "(priority > $1 OR (priority = $1 AND (created_at < $2 OR "
            "(created_at = $2 AND id < $3))))",
            (ticket.priority, ticket.created_at, ticket.id),
        )
        return int(ahead) + 1

    async def median_handling_seconds(self, last: int = 20) -> float | None:
        """Return the median handling time of the last ``last`` closed tickets."""
        rows = await self._db.fetchall(
            "SELECT closed_at - COALESCE(claimed_at, created_at) AS t FROM tickets "
            "WHERE status = 'closed' AND closed_at IS NOT NULL ORDER BY closed_at DESC LIMIT $1",
            (last,),
        )
        values = [row["t"] for row in rows if row["t"] is not None and row["t"] >= 0]
        return statistics.median(values) if values else None

    async def unclaimed_before(self, before: float) -> list[Ticket]:
        """Return open tickets created before ``before`` that nobody was reminded of."""
        rows = await self._db.fetchall(
            "SELECT * FROM tickets WHERE status = 'open' AND reminded_at IS NULL "
            "AND created_at < $1 ORDER BY created_at",
            (before,),
        )
        return [_ticket(row) for row in rows]

    # ------------------------------------------------------------------ messages

    async def add_message(
        self,
        ticket_id: int,
        direction: str,
        kind: str,
        *,
        sender_id: int | None = None,
        text: str | None = None,
        html: str | None = None,
        user_message_id: int | None = None,
        group_message_id: int | None = None,
        media_group_id: str | None = None,
        now: float | None = None,
        only_open: bool = False,
    ) -> int | None:
        """Store a transcript line (before it is relayed) and return its id; with
        ``only_open``, None (nothing stored) if the ticket is closed by now."""
        now = time.time() if now is None else now
        new = await self._db.fetchval(
            "INSERT INTO ticket_messages (ticket_id, direction, sender_id, kind, text, html, "
            "user_message_id, group_message_id, media_group_id, created_at) "
            "SELECT $1::bigint, $2::text, $3::bigint, $4::text, $5::text, $11::text, "
            "$6::bigint, $7::bigint, $8::text, $9::float8 "
            "WHERE NOT $10::boolean "
            "OR EXISTS (SELECT 1 FROM tickets WHERE id = $1 AND status != 'closed') "
            "RETURNING id",
            (
                ticket_id,
                direction,
                sender_id,
                kind,
                text,
                user_message_id,
                group_message_id,
                media_group_id,
                now,
                only_open,
                html,
            ),
        )
        return None if new is None else int(new)

    async def get_message(self, message_id: int) -> TicketMessage | None:
        """Return one transcript line."""
        row = await self._db.fetchone("SELECT * FROM ticket_messages WHERE id = $1", (message_id,))
        return _message(row) if row else None

    async def set_outbox(self, message_ids: list[int], outbox_id: int | None) -> None:
        """Link transcript lines to the outbox message that relays them (None: unlink, to
        relay them again)."""
        await self._db.execute(
            "UPDATE ticket_messages SET outbox_id = $1 WHERE id = ANY($2::bigint[])",
            (outbox_id, list(message_ids)),
        )

    async def relayed(
        self,
        message_id: int,
        *,
        user_message_id: int | None = None,
        group_message_id: int | None = None,
        now: float | None = None,
    ) -> None:
        """Record where a relayed message landed (the other side's message id)."""
        now = time.time() if now is None else now
        await self._db.execute(
            "UPDATE ticket_messages SET sent_at = $1, "
            "user_message_id = COALESCE($2, user_message_id), "
            "group_message_id = COALESCE($3, group_message_id) WHERE id = $4",
            (now, user_message_id, group_message_id, message_id),
        )

    async def still_unrelayed(self, message_ids: list[int]) -> bool:
        """Whether none of these lines was handed to the outbox yet (check it inside the
        transaction that queues them: there the lines stay locked until it ends)."""
        lock = " FOR UPDATE" if self._db.in_transaction else ""
        rows = await self._db.fetchall(
            "SELECT id FROM ticket_messages WHERE id = ANY($1::bigint[]) "
            f"AND outbox_id IS NULL AND sent_at IS NULL{lock}",
            (list(message_ids),),
        )
        return len(rows) == len(set(message_ids))

    async def unrelayed(self, ticket_id: int, direction: str = "in") -> list[TicketMessage]:
        """Return relay lines not yet handed to the outbox (waiting for a topic or the rest of
        an album), in order."""
        rows = await self._db.fetchall(
            "SELECT * FROM ticket_messages WHERE ticket_id = $1 AND outbox_id IS NULL "
            "AND direction = $2 AND sent_at IS NULL ORDER BY id",
            (ticket_id, direction),
        )
        return [_message(row) for row in rows]

    async def tickets_with_unrelayed(self) -> list[int]:
        """Return ids of open tickets that have relay lines not yet in the outbox."""
        rows = await self._db.fetchall(
            "SELECT DISTINCT m.ticket_id FROM ticket_messages m JOIN tickets t "
            "ON t.id = m.ticket_id WHERE m.outbox_id IS NULL AND m.sent_at IS NULL "
            "AND m.direction IN ('in', 'out') AND t.status != 'closed' ORDER BY m.ticket_id"
        )
        return [row["ticket_id"] for row in rows]

    async def by_user_message(self, ticket_id: int, user_message_id: int) -> TicketMessage | None:
        """Return the line for a message in the user's chat (to map replies and edits)."""
        row = await self._db.fetchone(
            "SELECT * FROM ticket_messages WHERE ticket_id = $1 AND user_message_id = $2 "
            "ORDER BY id LIMIT 1",
            (ticket_id, user_message_id),
        )
        return _message(row) if row else None

    async def by_group_message(self, ticket_id: int, group_message_id: int) -> TicketMessage | None:
        """Return the line for a message in the ticket's topic (to map replies and edits)."""
        row = await self._db.fetchone(
            "SELECT * FROM ticket_messages WHERE ticket_id = $1 AND group_message_id = $2 "
            "ORDER BY id LIMIT 1",
            (ticket_id, group_message_id),
        )
        return _message(row) if row else None

    async def transcript(self, ticket_id: int) -> list[TicketMessage]:
        """Return a ticket's transcript in order."""
        rows = await self._db.fetchall(
            "SELECT * FROM ticket_messages WHERE ticket_id = $1 ORDER BY id", (ticket_id,)
        )
        return [_message(row) for row in rows]

    async def waiting_for_topic(self) -> list[Ticket]:
        """Return open tickets routed to a group but without a topic yet."""
        rows = await self._db.fetchall(
            "SELECT * FROM tickets WHERE status != 'closed' AND thread_id IS NULL ORDER BY id"
        )
        return [_ticket(row) for row in rows]

    async def set_group(self, ticket_id: int, group_chat_id: int) -> None:
        """Route a ticket (still without a topic) to an agents' group."""
        await self._update(ticket_id, "group_chat_id = $1", (group_chat_id,))

    async def record_group_move(self, old_chat_id: int, new_chat_id: int) -> None:
        """Follow an agents' group to its new id (tickets there move with it)."""
        async with self._db.transaction():
            await self._db.execute(
                "INSERT INTO agent_group_moves VALUES ($1, $2, $3) ON CONFLICT (old_chat_id) "
                "DO UPDATE SET new_chat_id = excluded.new_chat_id, moved_at = excluded.moved_at",
                (old_chat_id, new_chat_id, time.time()),
            )
            await self._db.execute(
                "UPDATE tickets SET group_chat_id = $1 WHERE group_chat_id = $2",
                (new_chat_id, old_chat_id),
            )

    async def group_moves(self) -> dict[int, int]:
        """Return every recorded agents' group move (old id -> new id)."""
        rows = await self._db.fetchall("SELECT old_chat_id, new_chat_id FROM agent_group_moves")
        return {row["old_chat_id"]: row["new_chat_id"] for row in rows}

    async def relay_lag(self, since: float) -> list[float]:
        """Return seconds from receipt to delivery of user messages relayed since ``since``."""
        rows = await self._db.fetchall(
            "SELECT sent_at - created_at AS lag FROM ticket_messages WHERE direction = 'in' "
            "AND sent_at IS NOT NULL AND created_at >= $1 ORDER BY id",
            (since,),
        )
        return [row["lag"] for row in rows]
