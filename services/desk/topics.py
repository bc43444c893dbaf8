"""Ticket topics: created (and recreated when deleted by hand), the header card, system
lines in the topic."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from storage import OutboxItem, Repositories, Ticket
from tgbot.config import Config
from tgbot.i18n import LANGUAGES
from tgbot.keyboard import Keyboard
from tgbot.lanes import Lane
from tgbot.outbox import OutboxWorker
from tgbot.text import escape

from ..tickets import topic_name
from .texts import (
    CLAIM_LABEL,
    CLOSE_LABEL,
    CLOSED_IN_TOPIC,
    CLOSED_UNANSWERED_IN_TOPIC,
    HEADER,
    NO_CONTEXT,
    NOT_LINKED,
    PRIORITY_HIGH,
    PRIORITY_NORMAL,
    STATUS_CLAIMED,
    STATUS_CLOSED,
    STATUS_WAITING,
    THE_USER,
    TOPIC_RECREATED,
    TRANSFER_LABEL,
    UNREACHABLE,
    describe_context,
    group_translator,
)

_LOGGER = logging.getLogger(__name__)


class Topics:
    """A ticket's forum topic and its header card.

    A part of :class:`services.desk.SupportDesk`; the state it uses is set up there.
    """

    _bot: Any
    _repos: Repositories
    _outbox: OutboxWorker
    _config: Config

    async def request_topic(self, ticket: Ticket, first_name: str) -> None:
        """Ask for the ticket's forum topic (created by the outbox; then the header)."""
        if ticket.group_chat_id is None:
            return
        await self._outbox.enqueue(
            ticket.group_chat_id,
            "createForumTopic",
            {"name": topic_name(ticket, first_name)},
            lane=Lane.RELAY,
            kind="ticket_topic",
            ref=str(ticket.id),
            dedupe_key=f"topic:{ticket.id}:{ticket.topic_generation}",
        )

    async def _topic_created(self, item: OutboxItem, result: Any) -> None:
        ticket = await self._repos.tickets.get(int(item.ref or 0))
        if ticket is None:
            return
        thread_id = result.message_thread_id
        await self._repos.tickets.set_topic(ticket.id, item.chat_id, thread_id)
        ticket = await self._repos.tickets.get(ticket.id)
        await self._post_header(ticket)
        tr = group_translator(self._config, ticket.group_chat_id)
        if ticket.topic_generation > 0:
            await self.post_in_topic(ticket, tr.gettext(TOPIC_RECREATED))
        await self.flush(ticket, "in")
        if ticket.status == "closed":
            # Closed while the topic was being created (close() had no topic to tell): the
            # agents still see what was asked, then the closing line, in a closed topic.
            agent = None
            if ticket.closed_by not in (None, ticket.user_id):
                agent = await self._repos.agents.get(ticket.closed_by)
            who = escape(agent.name) if agent else tr.gettext(THE_USER)
            line = (
                CLOSED_UNANSWERED_IN_TOPIC if ticket.first_response_at is None else CLOSED_IN_TOPIC
            )
            await self.post_in_topic(ticket, tr.gettext(line).format(who=who))
            await self._close_topic(ticket)

    async def _topic_failed(self, item: OutboxItem, error: Exception) -> None:
        _LOGGER.warning("Could not create the topic of ticket %s: %s", item.ref, error)
        ticket = await self._repos.tickets.get(int(item.ref or 0))
        if ticket is not None and ticket.thread_id is None:
            # A new generation, so the next request is not deduplicated into this failure.
            await self._repos.tickets.set_topic(ticket.id, item.chat_id, None)
        self._health[item.chat_id] = UNREACHABLE
        # Hooks run inside the outbox's transaction: the check (Telegram calls) runs after.
        task = asyncio.get_running_loop().create_task(self.check_groups())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def header_keyboard(self, ticket: Ticket) -> InlineKeyboardMarkup | None:
        """Return the header card's buttons: Claim only while nobody has it; none once
        closed."""
        if not ticket.is_open:
            return None
        tr = group_translator(self._config, ticket.group_chat_id)
        close = InlineKeyboardButton(tr.gettext(CLOSE_LABEL), callback_data=f"tk:close:{ticket.id}")
        transfer = InlineKeyboardButton(
            tr.gettext(TRANSFER_LABEL), callback_data=f"tk:xfer:{ticket.id}"
        )
        if ticket.claimed_by is not None:
            return Keyboard([[close, transfer]])
        claim = InlineKeyboardButton(tr.gettext(CLAIM_LABEL), callback_data=f"tk:claim:{ticket.id}")
        return Keyboard([[claim, close], [transfer]])

    async def header_text(self, ticket: Ticket) -> str:
        """Return the header card: who, language, linked account (masked), context, state."""
        tr = group_translator(self._config, ticket.group_chat_id)
        user = await self._repos.users.get(ticket.user_id)
        account = user.wallet_account_id if user else None
        masked = f"…{account[-4:]}" if account else tr.gettext(NOT_LINKED)
        lines = describe_context(tr, ticket.context) or [tr.gettext(NO_CONTEXT)]
        if not ticket.is_open:
            status = tr.gettext(STATUS_CLOSED)
        elif ticket.claimed_by is not None:
            agent = await self._repos.agents.get(ticket.claimed_by)
            status = tr.gettext(STATUS_CLAIMED).format(agent=escape(agent.name if agent else "?"))
        else:
            status = tr.gettext(STATUS_WAITING)
        head = tr.gettext(HEADER).format(
            code=ticket.code,
            priority=tr.gettext(PRIORITY_HIGH if ticket.priority > 0 else PRIORITY_NORMAL),
            name=escape(user.first_name if user else "?"),
            language=LANGUAGES.get(ticket.language, ticket.language),
            account=escape(masked),
        )
        # Joined, not formatted into a template: each line is already HTML.
        return "\n".join([head, *lines, status])

    async def _post_header(self, ticket: Ticket) -> None:
        keyboard = self.header_keyboard(ticket)
        await self._outbox.enqueue(
            ticket.group_chat_id,
            "sendMessage",
            {
                "text": await self.header_text(ticket),
                **({"reply_markup": keyboard.to_dict()} if keyboard else {}),
            },
            thread_id=ticket.thread_id,
            lane=Lane.RELAY,
            kind="ticket_header",
            ref=str(ticket.id),
            dedupe_key=f"header:{ticket.id}:{ticket.topic_generation}",
        )

    async def _header_posted(self, item: OutboxItem, result: Any) -> None:
        message_id = getattr(result, "message_id", None)
        if message_id is not None and item.ref:
            await self._repos.tickets.set_header_message(int(item.ref), message_id)

    async def refresh_header(self, ticket_id: int) -> None:
        """Edit the header card to the ticket's state (who has it, closed): no "Claim" left
        on a claimed ticket."""
        ticket = await self._repos.tickets.get(ticket_id)
        if ticket is None or ticket.header_message_id is None or ticket.group_chat_id is None:
            return
        keyboard = self.header_keyboard(ticket)
        await self._outbox.enqueue(
            ticket.group_chat_id,
            "editMessageText",
            {
                "message_id": ticket.header_message_id,
                "text": await self.header_text(ticket),
                **({"reply_markup": keyboard.to_dict()} if keyboard else {}),
            },
            lane=Lane.RELAY,
            kind="header_edit",
            ref=str(ticket.id),
        )

    async def post_in_topic(self, ticket: Ticket, text: str, **extra: Any) -> None:
        """Post a system line (already translated, HTML) in the ticket's topic."""
        if ticket.group_chat_id is None or ticket.thread_id is None:
            return
        await self._outbox.enqueue(
            ticket.group_chat_id,
            "sendMessage",
            {"text": text, **extra},
            thread_id=ticket.thread_id,
            lane=Lane.RELAY,
            kind="topic_notice",
            ref=str(ticket.id),
        )

    async def _topic_lost(self, ticket: Ticket, lines: list[int], used_generation: int) -> None:
        """The topic was deleted or closed by hand: recreate it and relay ``lines`` again."""
        await self._repos.tickets.set_outbox(lines, None)
        if ticket.topic_generation == used_generation and ticket.thread_id is not None:
            _LOGGER.info("Topic of ticket %s is gone; recreating it", ticket.code)
            await self._repos.tickets.set_topic(ticket.id, ticket.group_chat_id, None)
            ticket = await self._repos.tickets.get(ticket.id)
            user = await self._repos.users.get(ticket.user_id)
            await self.request_topic(ticket, user.first_name if user else str(ticket.user_id))
