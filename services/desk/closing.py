"""A ticket's life after it opens: claimed, closed, rated, commented, reopened, reminded."""

from __future__ import annotations

import logging
import time
from typing import Any

from storage import Repositories, Ticket
from tgbot.config import Config
from tgbot.i18n import LANGUAGES, translator
from tgbot.lanes import Lane
from tgbot.outbox import OutboxWorker
from tgbot.text import escape

from ..tickets import AGENT_JOINED, URGENT_PRIORITY, closed_view
from .texts import (
    CLAIMED_BY,
    CLOSED_IN_TOPIC,
    CLOSED_UNANSWERED_IN_TOPIC,
    COMMENT_IN_TOPIC,
    RATED_IN_TOPIC,
    REMINDER,
    REOPENED_IN_TOPIC,
    THE_USER,
    URGENT_ENDED,
    URGENT_ENDED_ADMINS,
    group_translator,
)

_LOGGER = logging.getLogger(__name__)


class Closing:
    """Claiming, closing, rating and reopening a ticket, and reminders of unclaimed ones.

    A part of :class:`services.desk.SupportDesk`; the state it uses is set up there.
    """

    _bot: Any
    _repos: Repositories
    _outbox: OutboxWorker
    _config: Config

    async def claim(self, ticket: Ticket, agent_id: int, agent_name: str) -> bool:
        """Give the ticket to an agent, tell the user and the topic."""
        if not await self._repos.tickets.claim(ticket.id, agent_id):
            return False
        await self._repos.agents.touch(agent_id)
        await self._repos.audit.record(agent_id, "ticket.claim", ticket.id)
        tr = group_translator(self._config, ticket.group_chat_id)
        await self.post_in_topic(ticket, tr.gettext(CLAIMED_BY).format(agent=escape(agent_name)))
        await self.refresh_header(ticket.id)
        if ticket.status == "open":
            await self._notify_user(ticket, AGENT_JOINED)
        return True

    async def close(
        self, ticket: Ticket, closed_by: int | None, *, by_user: bool, who: str = ""
    ) -> bool:
        """Close the ticket: tell the topic and the user; ask the user for a rating only for
        help that came (an agent replied). An urgent ticket the user ends unanswered is
        flagged in the topic and to the admins, never closed silently."""
        if not await self._repos.tickets.close(ticket.id, closed_by):
            return False
        await self._repos.audit.record(closed_by, "ticket.close", ticket.id, {"by_user": by_user})
        ticket = await self._repos.tickets.get(ticket.id) or ticket
        tr = group_translator(self._config, ticket.group_chat_id)
        name = tr.gettext(THE_USER) if by_user else escape(who)
        unanswered = ticket.first_response_at is None
        line = CLOSED_UNANSWERED_IN_TOPIC if unanswered else CLOSED_IN_TOPIC
        await self.post_in_topic(ticket, tr.gettext(line).format(who=name))
        if unanswered and by_user and ticket.priority >= URGENT_PRIORITY:
            await self.post_in_topic(ticket, tr.gettext(URGENT_ENDED))
            await self._tell_admins(
                group_translator(self._config)
                .gettext(URGENT_ENDED_ADMINS)
                .format(code=ticket.code),
                f"urgent-ended:{ticket.id}",
            )
        await self.refresh_header(ticket.id)
        await self._close_topic(ticket)
        if ticket.queue_message_id is not None:
            # The ticket's "✖️ End conversation" is spent: no live button left behind.
            await self._outbox.enqueue(
                ticket.user_id,
                "editMessageReplyMarkup",
                {"message_id": ticket.queue_message_id},
                lane=Lane.REPLY if by_user else Lane.RELAY,
                kind="queue_update",
            )
        text, keyboard = closed_view(await self._user_tr(ticket), ticket, by_user)
        await self._outbox.enqueue(
            ticket.user_id,
            "sendMessage",
            {"text": text, "reply_markup": keyboard.to_dict()},
            lane=Lane.REPLY if by_user else Lane.RELAY,
            kind="ticket_closed",
        )
        return True

    async def rated(self, ticket: Ticket, rating: int) -> None:
        """Tell the ticket's topic how the user rated it."""
        tr = group_translator(self._config, ticket.group_chat_id)
        text = tr.gettext(RATED_IN_TOPIC).format(stars="⭐" * rating, rating=rating)
        await self.post_in_topic(ticket, text)

    async def commented(self, ticket: Ticket, comment: str) -> None:
        """Pass the user's comment on their rating to the ticket's topic."""
        tr = group_translator(self._config, ticket.group_chat_id)
        await self.post_in_topic(
            ticket, tr.gettext(COMMENT_IN_TOPIC).format(comment=escape(comment))
        )

    async def _close_topic(self, ticket: Ticket) -> None:
        if ticket.group_chat_id is not None and ticket.thread_id is not None:
            await self._outbox.enqueue(
                ticket.group_chat_id,
                "closeForumTopic",
                {},
                thread_id=ticket.thread_id,
                lane=Lane.RELAY,
                kind="topic_close",
            )

    async def ticket_reopened(self, ticket: Ticket) -> None:
        """Reopen the topic (or recreate it) and tell the agents."""
        if ticket.group_chat_id is not None and ticket.thread_id is not None:
            await self._outbox.enqueue(
                ticket.group_chat_id,
                "reopenForumTopic",
                {},
                thread_id=ticket.thread_id,
                lane=Lane.RELAY,
                kind="topic_reopen",
            )
            await self.post_in_topic(
                ticket,
                group_translator(self._config, ticket.group_chat_id).gettext(REOPENED_IN_TOPIC),
            )
        await self.refresh_header(ticket.id)

    async def remind_unclaimed(self) -> int:
        """Post a reminder in topics whose ticket nobody claimed in time; return how many."""
        waited = self._config.unclaimed_reminder
        tickets = await self._repos.tickets.unclaimed_before(time.time() - waited)
        reminded = 0
        for ticket in tickets:
            if ticket.thread_id is None:
                continue
            tr = group_translator(self._config, ticket.group_chat_id)
            # One transaction with a conditional mark: a claim or close since the list was
            # read gets no "nobody has claimed" line after it.
            async with self._repos.db.transaction():
                if await self._repos.tickets.mark_reminded(ticket.id):
                    await self.post_in_topic(
                        ticket, tr.gettext(REMINDER).format(minutes=max(1, round(waited / 60)))
                    )
                    reminded += 1
        return reminded

    async def _user_tr(self, ticket: Ticket):
        return translator(ticket.language if ticket.language in LANGUAGES else "en")

    async def _notify_user(self, ticket: Ticket, msgid: str) -> None:
        tr = await self._user_tr(ticket)
        await self._outbox.enqueue(
            ticket.user_id,
            "sendMessage",
            {"text": tr.gettext(msgid)},
            lane=Lane.RELAY,
            kind="ticket_notice",
        )
