"""Support tickets: the agent roster, tickets, transcripts and relayed message-id maps."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from storage.db import Database

OPEN_STATUSES = ("open", "claimed")


@dataclass(frozen=True, slots=True)
class Agent:
    """A support agent on the roster."""

    user_id: int
    name: str
    added_by: int | None
    added_at: float
    last_active_at: float | None


@dataclass(frozen=True, slots=True)
class Ticket:
    """One escalation of a user to a human."""

    id: int
    code: str
    user_id: int
    status: str
    priority: int
    language: str
    context: dict[str, Any]
    group_chat_id: int | None
    thread_id: int | None
    topic_generation: int
    claimed_by: int | None
    created_at: float
    claimed_at: float | None
    first_response_at: float | None
    closed_at: float | None
    closed_by: int | None
    rating: int | None
    rating_comment: str | None
    queue_message_id: int | None
    queue_eta_minutes: int | None
    reminded_at: float | None
    user_blocked: bool
    header_message_id: int | None = None

    @property
    def is_open(self) -> bool:
        """Return True while the ticket is open or claimed."""
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class TicketMessage:
    """A relayed message, note or system line of a ticket's transcript."""

    id: int
    ticket_id: int
    direction: str
    sender_id: int | None
    kind: str
    text: str | None
    user_message_id: int | None
    group_message_id: int | None
    media_group_id: str | None
    outbox_id: int | None
    created_at: float
    sent_at: float | None
    #: An agent's message as Telegram HTML (formatting, links), relayed with their label.
    html: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _ticket(row: aiosqlite.Row) -> Ticket:
    data = dict(row)
    data["context"] = json.loads(data["context"] or "{}")
    data["user_blocked"] = bool(data["user_blocked"])
    return Ticket(**data)


def _message(row: aiosqlite.Row) -> TicketMessage:
    return TicketMessage(**dict(row))


class AgentRepository:
    """The roster of support agents."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, user_id: int, name: str, added_by: int | None, now: float | None = None
    ) -> bool:
        """Put a user on the roster (or rename them); return True if they were new."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            async with conn.execute("SELECT 1 FROM agents WHERE user_id = ?", (user_id,)) as cur:
                known = await cur.fetchone() is not None
            await conn.execute(
                "INSERT INTO agents (user_id, name, added_by, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET name = excluded.name",
                (user_id, name, added_by, now),
            )
            return not known

    async def remove(self, user_id: int) -> bool:
        """Take a user off the roster; return True if they were on it."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM agents WHERE user_id = ?", (user_id,))
            return cursor.rowcount > 0

    async def get(self, user_id: int) -> Agent | None:
        """Return the agent, or None if the user is not on the roster."""
        row = await self._db.fetchone("SELECT * FROM agents WHERE user_id = ?", (user_id,))
        return Agent(**dict(row)) if row else None

    async def all(self) -> list[Agent]:
        """Return the roster by name."""
        rows = await self._db.fetchall("SELECT * FROM agents ORDER BY name, user_id")
        return [Agent(**dict(row)) for row in rows]

    async def touch(self, user_id: int, now: float | None = None) -> None:
        """Record that the agent just acted (agents online = active recently)."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE agents SET last_active_at = ? WHERE user_id = ?", (now, user_id)
            )

    async def online_count(self, since: float) -> int:
        """Return how many agents acted since ``since``."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS n FROM agents WHERE last_active_at >= ?", (since,)
        )
        return row["n"] if row else 0


class TicketRepository:
    """Tickets and their transcripts."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # Users who ever had a ticket (tickets are never deleted), so the per-update "is this
        # user in a ticket?" check costs no query for everyone else. Exact because this
        # process is the only writer (InstanceLock) and create() adds before inserting.
        self._ticket_users: set[int] | None = None

    async def _may_have_ticket(self, user_id: int) -> bool:
        if self._ticket_users is None:
            rows = await self._db.fetchall("SELECT DISTINCT user_id FROM tickets")
            if self._ticket_users is None:
                self._ticket_users = {row[0] for row in rows}
        return user_id in self._ticket_users

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
        await self._may_have_ticket(user_id)  # loads the set, so the add below is not lost
        assert self._ticket_users is not None
        self._ticket_users.add(user_id)
        try:
            async with self._db.transaction() as conn:
                cursor = await conn.execute(
                    "INSERT INTO tickets (code, user_id, language, priority, context, "
                    "group_chat_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
                ticket_id = cursor.lastrowid
        except sqlite3.IntegrityError:
            existing = await self.open_for_user(user_id)
            if existing is None:  # the code collided, not the user
                raise
            return existing, False
        ticket = await self.get(ticket_id)
        assert ticket is not None
        return ticket, True

    async def get(self, ticket_id: int) -> Ticket | None:
        """Return a ticket by id."""
        row = await self._db.fetchone("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        return _ticket(row) if row else None

    async def open_for_user(self, user_id: int) -> Ticket | None:
        """Return the user's open (or claimed) ticket, if any."""
        if not await self._may_have_ticket(user_id):
            return None
        row = await self._db.fetchone(
            "SELECT * FROM tickets WHERE user_id = ? AND status != 'closed'", (user_id,)
        )
        return _ticket(row) if row else None

    async def last_closed_for_user(self, user_id: int) -> Ticket | None:
        """Return the user's most recently closed ticket, if any."""
        if not await self._may_have_ticket(user_id):
            return None
        row = await self._db.fetchone(
            "SELECT * FROM tickets WHERE user_id = ? AND status = 'closed' "
            "ORDER BY closed_at DESC LIMIT 1",
            (user_id,),
        )
        return _ticket(row) if row else None

    async def by_topic(self, group_chat_id: int, thread_id: int) -> Ticket | None:
        """Return the ticket whose forum topic this is (the newest, if recreated)."""
        row = await self._db.fetchone(
            "SELECT * FROM tickets WHERE group_chat_id = ? AND thread_id = ? "
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
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE tickets SET {sql} WHERE id = ?", (*params, ticket_id)
            )
            return cursor.rowcount > 0

    async def set_topic(self, ticket_id: int, group_chat_id: int, thread_id: int | None) -> None:
        """Record the ticket's agents' group and forum topic (None: to be recreated)."""
        await self._update(
            ticket_id,
            "group_chat_id = ?, thread_id = ?, topic_generation = topic_generation + "
            "CASE WHEN ? IS NULL THEN 1 ELSE 0 END",
            (group_chat_id, thread_id, thread_id),
        )

    async def claim(self, ticket_id: int, agent_id: int, now: float | None = None) -> bool:
        """Give an open ticket to an agent; False if it is closed or someone else has it."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE tickets SET status = 'claimed', claimed_by = ?, claimed_at = ? "
                "WHERE id = ? AND (status = 'open' OR (status = 'claimed' AND claimed_by = ?))",
                (agent_id, now, ticket_id, agent_id),
            )
            return cursor.rowcount > 0

    async def transfer(self, ticket_id: int, agent_id: int, now: float | None = None) -> bool:
        """Hand a ticket that is not closed to another agent."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE tickets SET status = 'claimed', claimed_by = ?, claimed_at = ? "
                "WHERE id = ? AND status != 'closed'",
                (agent_id, now, ticket_id),
            )
            return cursor.rowcount > 0

    async def close(self, ticket_id: int, closed_by: int | None, now: float | None = None) -> bool:
        """Close a ticket; False if it was already closed."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE tickets SET status = 'closed', closed_at = ?, closed_by = ? "
                "WHERE id = ? AND status != 'closed'",
                (now, closed_by, ticket_id),
            )
            return cursor.rowcount > 0

    async def reopen(self, ticket_id: int) -> bool:
        """Reopen a closed ticket (a user wrote again soon after the close)."""
        try:
            return await self._update(
                ticket_id,
                "status = CASE WHEN claimed_by IS NULL THEN 'open' ELSE 'claimed' END, "
                "closed_at = NULL, closed_by = NULL, rating = NULL, rating_comment = NULL",
                (),
            )
        except sqlite3.IntegrityError:  # the user already has another open ticket
            return False

    async def set_header_message(self, ticket_id: int, message_id: int | None) -> None:
        """Record the message id of the header card in the ticket's topic."""
        await self._update(ticket_id, "header_message_id = ?", (message_id,))

    async def rate(self, ticket_id: int, rating: int) -> bool:
        """Store the user's 1-5 rating of a closed ticket."""
        return await self._update(ticket_id, "rating = ?", (rating,))

    async def comment(self, ticket_id: int, comment: str) -> bool:
        """Store the user's comment on a closed ticket."""
        return await self._update(ticket_id, "rating_comment = ?", (comment,))

    async def first_response(self, ticket_id: int, now: float | None = None) -> None:
        """Record the first agent reply time (only the first one counts)."""
        now = time.time() if now is None else now
        await self._update(ticket_id, "first_response_at = COALESCE(first_response_at, ?)", (now,))

    async def set_queue_message(self, ticket_id: int, message_id: int | None, eta: int | None):
        """Remember the user's queue-position message and the wait it showed."""
        await self._update(
            ticket_id, "queue_message_id = ?, queue_eta_minutes = ?", (message_id, eta)
        )

    async def mark_reminded(self, ticket_id: int, now: float | None = None) -> bool:
        """Record that agents are reminded of this ticket; False if it is no longer open and
        unclaimed-and-unreminded (claimed or closed meanwhile: no reminder)."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE tickets SET reminded_at = ? WHERE id = ? AND status = 'open' "
                "AND reminded_at IS NULL",
                (time.time() if now is None else now, ticket_id),
            )
            return cursor.rowcount > 0

    async def mark_user_blocked(self, ticket_id: int, blocked: bool = True) -> None:
        """Record that the user blocked the bot (relays to them fail)."""
        await self._update(ticket_id, "user_blocked = ?", (int(blocked),))

    async def queue_position(self, ticket: Ticket) -> int:
        """Return the ticket's place among unclaimed tickets (1 = next)."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS n FROM tickets WHERE status = 'open' AND "
            "(priority > ? OR (priority = ? AND (created_at < ? OR (created_at = ? AND id < ?))))",
            (ticket.priority, ticket.priority, ticket.created_at, ticket.created_at, ticket.id),
        )
        return (row["n"] if row else 0) + 1

    async def median_handling_seconds(self, last: int = 20) -> float | None:
        """Return the median handling time of the last ``last`` closed tickets."""
        rows = await self._db.fetchall(
            "SELECT closed_at - COALESCE(claimed_at, created_at) AS t FROM tickets "
            "WHERE status = 'closed' AND closed_at IS NOT NULL ORDER BY closed_at DESC LIMIT ?",
            (last,),
        )
        values = [row["t"] for row in rows if row["t"] is not None and row["t"] >= 0]
        return statistics.median(values) if values else None

    async def unclaimed_before(self, before: float) -> list[Ticket]:
        """Return open tickets created before ``before`` that nobody was reminded of."""
        rows = await self._db.fetchall(
            "SELECT * FROM tickets WHERE status = 'open' AND reminded_at IS NULL "
            "AND created_at < ? ORDER BY created_at",
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
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO ticket_messages (ticket_id, direction, sender_id, kind, text, html, "
                "user_message_id, group_message_id, media_group_id, created_at) "
                "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
                "WHERE NOT ? OR EXISTS (SELECT 1 FROM tickets WHERE id = ? AND status != 'closed')",
                (
                    ticket_id,
                    direction,
                    sender_id,
                    kind,
                    text,
                    html,
                    user_message_id,
                    group_message_id,
                    media_group_id,
                    now,
                    only_open,
                    ticket_id,
                ),
            )
            return cursor.lastrowid if cursor.rowcount > 0 else None

    async def get_message(self, message_id: int) -> TicketMessage | None:
        """Return one transcript line."""
        row = await self._db.fetchone("SELECT * FROM ticket_messages WHERE id = ?", (message_id,))
        return _message(row) if row else None

    async def set_outbox(self, message_ids: list[int], outbox_id: int | None) -> None:
        """Link transcript lines to the outbox message that relays them (None: unlink, to
        relay them again)."""
        async with self._db.transaction() as conn:
            await conn.executemany(
                "UPDATE ticket_messages SET outbox_id = ? WHERE id = ?",
                [(outbox_id, message_id) for message_id in message_ids],
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
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE ticket_messages SET sent_at = ?, "
                "user_message_id = COALESCE(?, user_message_id), "
                "group_message_id = COALESCE(?, group_message_id) WHERE id = ?",
                (now, user_message_id, group_message_id, message_id),
            )

    async def still_unrelayed(self, message_ids: list[int]) -> bool:
        """Whether none of these lines was handed to the outbox yet (check it inside the
        transaction that queues them)."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) FROM ticket_messages WHERE id IN (SELECT value FROM json_each(?)) "
            "AND outbox_id IS NULL AND sent_at IS NULL",
            (json.dumps(message_ids),),
        )
        return row is not None and row[0] == len(set(message_ids))

    async def unrelayed(self, ticket_id: int, direction: str = "in") -> list[TicketMessage]:
        """Return relay lines not yet handed to the outbox (waiting for a topic or the rest of
        an album), in order."""
        rows = await self._db.fetchall(
            "SELECT * FROM ticket_messages WHERE ticket_id = ? AND outbox_id IS NULL "
            "AND direction = ? AND sent_at IS NULL ORDER BY id",
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
            "SELECT * FROM ticket_messages WHERE ticket_id = ? AND user_message_id = ? "
            "ORDER BY id LIMIT 1",
            (ticket_id, user_message_id),
        )
        return _message(row) if row else None

    async def by_group_message(self, ticket_id: int, group_message_id: int) -> TicketMessage | None:
        """Return the line for a message in the ticket's topic (to map replies and edits)."""
        row = await self._db.fetchone(
            "SELECT * FROM ticket_messages WHERE ticket_id = ? AND group_message_id = ? "
            "ORDER BY id LIMIT 1",
            (ticket_id, group_message_id),
        )
        return _message(row) if row else None

    async def transcript(self, ticket_id: int) -> list[TicketMessage]:
        """Return a ticket's transcript in order."""
        rows = await self._db.fetchall(
            "SELECT * FROM ticket_messages WHERE ticket_id = ? ORDER BY id", (ticket_id,)
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
        await self._update(ticket_id, "group_chat_id = ?", (group_chat_id,))

    async def record_group_move(self, old_chat_id: int, new_chat_id: int) -> None:
        """Follow an agents' group to its new id (tickets there move with it)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO agent_group_moves VALUES (?, ?, ?)",
                (old_chat_id, new_chat_id, time.time()),
            )
            await conn.execute(
                "UPDATE tickets SET group_chat_id = ? WHERE group_chat_id = ?",
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
            "AND sent_at IS NOT NULL AND created_at >= ? ORDER BY id",
            (since,),
        )
        return [row["lag"] for row in rows]
