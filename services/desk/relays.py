"""Relays both ways: a transcript line first, then the durable outbox; albums, coalesced
texts, reply threading, agents' signatures and edits."""

from __future__ import annotations

import asyncio
import logging
import time
from itertools import groupby
from typing import Any

from telegram.error import BadRequest, Forbidden

from storage import OutboxItem, Repositories, Ticket, TicketMessage
from tgbot.config import Config
from tgbot.lanes import Lane
from tgbot.outbox import OutboxWorker
from tgbot.text import escape

from ..tickets import ALBUM_WAIT
from .texts import AGENT_LABEL, CAPTIONED, TEAM_WORD, TOPIC_GONE, USER_BLOCKED, group_translator

_LOGGER = logging.getLogger(__name__)


class Relays:
    """Messages between the user and the ticket's topic, in order and none lost.

    A part of :class:`services.desk.SupportDesk`; the state it uses is set up there.
    """

    _bot: Any
    _repos: Repositories
    _outbox: OutboxWorker
    _config: Config

    async def relay_in(self, ticket: Ticket, message: Any, kind: str, text: str | None) -> bool:
        """Store a user's message as a transcript line, then relay it (or wait for a topic).

        False (nothing stored) if the ticket was closed since the caller read it open: an
        agent's close crossed the message, which must not go into a closed topic."""
        line = await self._repos.tickets.add_message(
            ticket.id,
            "in",
            kind,
            sender_id=ticket.user_id,
            text=text,
            user_message_id=message.message_id,
            media_group_id=message.media_group_id,
            only_open=True,
        )
        if line is None:
            return False
        reply_to = message.reply_to_message.message_id if message.reply_to_message else None
        if reply_to is not None:
            self._reply_hint[(ticket.id, message.message_id)] = reply_to
        await self.flush(ticket, "in")
        return True

    async def relay_in_text(self, ticket: Ticket, line: str) -> None:
        """Relay a line written by the bot on the user's behalf (e.g. a masked message)."""
        await self._repos.tickets.add_message(ticket.id, "in", "text", text=line)
        await self.flush(ticket, "in")

    async def flush(self, ticket: Ticket, direction: str) -> None:
        """Hand a ticket's waiting lines to the outbox, in order; an album still arriving
        (or whose topic is missing) holds everything after it."""
        if direction == "in" and (ticket.thread_id is None or ticket.group_chat_id is None):
            return
        lines = await self._repos.tickets.unrelayed(ticket.id, direction)
        now = time.time()
        for album, group in groupby(lines, key=lambda line: line.media_group_id):
            items = list(group)
            if album is not None and now - items[-1].created_at < ALBUM_WAIT:
                self._schedule_album(ticket.id, album, direction)
                return
            if album is not None and len(items) > 1:
                await self._send(ticket, direction, items, "copyMessages")
            else:
                for line in items:
                    # User texts are re-sent as text, so waiting ones can be coalesced;
                    # agents' texts too when they are signed ("客服 · Wang").
                    as_text = line.kind == "text" and (
                        direction == "in" or self._config.agent_label != "off"
                    )
                    await self._send(
                        ticket, direction, [line], "sendMessage" if as_text else "copyMessage"
                    )

    def _schedule_album(self, ticket_id: int, album: str, direction: str) -> None:
        key = (ticket_id, album)
        if key in self._album_timers:
            self._album_timers[key].cancel()
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._album_timers.pop(key, None)
            task = loop.create_task(self._flush_later(ticket_id, direction))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._album_timers[key] = loop.call_later(ALBUM_WAIT, fire)

    async def _flush_later(self, ticket_id: int, direction: str) -> None:
        ticket = await self._repos.tickets.get(ticket_id)
        if ticket is not None:
            await self.flush(ticket, direction)

    async def _send(
        self, ticket: Ticket, direction: str, lines: list[TicketMessage], method: str
    ) -> None:
        # Checked and queued in one transaction: two flushes of a ticket can run at once
        # (the album timer, start-up, the next message) and must not relay a line twice.
        async with self._repos.db.transaction():
            if await self._repos.tickets.still_unrelayed([line.id for line in lines]):
                await self._queue_relay(ticket, direction, lines, method)

    async def _queue_relay(
        self, ticket: Ticket, direction: str, lines: list[TicketMessage], method: str
    ) -> None:
        # "generation;line,line": appending ",line" (coalescing) keeps it parseable.
        ref = f"{ticket.topic_generation};" + ",".join(str(line.id) for line in lines)
        if direction == "in":
            target, source, thread = ticket.group_chat_id, ticket.user_id, ticket.thread_id
        else:
            target, source, thread = ticket.user_id, ticket.group_chat_id, None
        params: dict[str, Any]
        if method == "sendMessage":
            text = escape(lines[0].text or "")
            if direction == "out":
                body = lines[0].html or text
                text = await self.signed(ticket, lines[0].sender_id, body)
            if direction == "in" and self._last_text.get(ticket.id):
                outbox_id = self._last_text[ticket.id]
                if await self._repos.outbox.append_text(outbox_id, text, str(lines[0].id)):
                    await self._repos.tickets.set_outbox([lines[0].id], outbox_id)
                    return
            params = {"text": text}
        elif method == "copyMessages":
            ids = [
                line.user_message_id if direction == "in" else line.group_message_id
                for line in lines
            ]
            params = {"from_chat_id": source, "message_ids": sorted(ids)}
        else:
            line = lines[0]
            message_id = line.user_message_id if direction == "in" else line.group_message_id
            params = {"from_chat_id": source, "message_id": message_id}
            if direction == "out" and line.kind in CAPTIONED and self._config.agent_label != "off":
                params["caption"] = await self.signed(
                    ticket, line.sender_id, line.html or escape(line.text or "")
                )
        reply = await self._reply_parameters(ticket, direction, lines[0])
        if reply:
            params["reply_parameters"] = reply
        outbox_id = await self._outbox.enqueue(
            target,
            method,
            params,
            thread_id=thread,
            lane=Lane.RELAY,
            kind=f"relay_{direction}",
            ref=ref,
        )
        await self._repos.tickets.set_outbox([line.id for line in lines], outbox_id)
        if method == "sendMessage" and direction == "in":
            self._last_text[ticket.id] = outbox_id
        elif direction == "in":
            self._last_text.pop(ticket.id, None)

    async def _reply_parameters(
        self, ticket: Ticket, direction: str, line: TicketMessage
    ) -> dict[str, Any] | None:
        """Map a reply in one chat to the copy of the replied message in the other."""
        if direction == "in":
            original = self._reply_hint.pop((ticket.id, line.user_message_id or 0), None)
            if original is None:
                return None
            mapped = await self._repos.tickets.by_user_message(ticket.id, original)
            target = mapped.group_message_id if mapped else None
        else:
            original = self._reply_hint.pop((ticket.id, -(line.group_message_id or 0)), None)
            if original is None:
                return None
            mapped = await self._repos.tickets.by_group_message(ticket.id, original)
            target = mapped.user_message_id if mapped else None
        if target is None:
            return None
        return {"message_id": target, "allow_sending_without_reply": True}

    def _forget_text_target(self, outbox_id: int) -> None:
        """A relayed (or failed) text can no longer take coalesced lines."""
        for ticket_id, target in list(self._last_text.items()):
            if target == outbox_id:
                del self._last_text[ticket_id]

    @staticmethod
    def _lines_of(item: OutboxItem) -> tuple[list[int], int]:
        generation, _, ids = (item.ref or "").partition(";")
        return [int(i) for i in ids.split(",") if i], int(generation or 0)

    async def _relayed_in(self, item: OutboxItem, result: Any) -> None:
        lines, _ = self._lines_of(item)
        self._forget_text_target(item.id)
        landed = _message_ids(result)
        for index, line_id in enumerate(lines):
            group_message_id = landed[min(index, len(landed) - 1)] if landed else None
            await self._repos.tickets.relayed(line_id, group_message_id=group_message_id)

    async def _relay_in_failed(self, item: OutboxItem, error: Exception) -> None:
        lines, generation = self._lines_of(item)
        self._forget_text_target(item.id)
        first = await self._repos.tickets.get_message(lines[0]) if lines else None
        ticket = await self._repos.tickets.get(first.ticket_id) if first else None
        if ticket is None:
            return
        if isinstance(error, BadRequest) and any(t in error.message.lower() for t in TOPIC_GONE):
            await self._topic_lost(ticket, lines, generation)
        else:
            _LOGGER.warning("Relay to the agents of ticket %s failed: %s", ticket.code, error)

    async def relay_out(self, ticket: Ticket, message: Any, agent_id: int, kind: str) -> None:
        """Store an agent's message, then copy it to the user (signed with the agent's work
        name or the team, never their Telegram account)."""
        await self._repos.tickets.add_message(
            ticket.id,
            "out",
            kind,
            sender_id=agent_id,
            text=message.text or message.caption,
            # Its formatting and (allowed) links, relayed under the agent's signature.
            html=message.text_html if message.text else message.caption_html,
            group_message_id=message.message_id,
            media_group_id=message.media_group_id,
        )
        if message.reply_to_message and message.reply_to_message.message_id != ticket.thread_id:
            self._reply_hint[(ticket.id, -message.message_id)] = message.reply_to_message.message_id
        await self._repos.tickets.first_response(ticket.id)
        await self.flush(ticket, "out")

    async def signed(self, ticket: Ticket, agent_id: int | None, body: str) -> str:
        """Return an agent's message (HTML) with the label that tells the user a person of
        the support team wrote it ("<b>客服 · Wang</b>"), as ``TGBOT_AGENT_LABEL`` says."""
        mode = self._config.agent_label
        if mode == "off":
            return body
        tr = await self._user_tr(ticket)
        label = tr.gettext(TEAM_WORD)
        if mode == "name" and agent_id is not None:
            agent = await self._repos.agents.get(agent_id)
            if agent is not None:
                label = tr.gettext(AGENT_LABEL).format(team=label, name=escape(agent.name))
        return f"<b>{label}</b>\n{body}" if body else f"<b>{label}</b>"

    async def send_out_text(self, ticket: Ticket, text: str, agent_id: int | None) -> None:
        """Send the user a text written by the bot for an agent (a macro), via the outbox."""
        line = await self._repos.tickets.add_message(
            ticket.id, "out", "macro", sender_id=agent_id, text=text
        )
        outbox_id = await self._outbox.enqueue(
            ticket.user_id,
            "sendMessage",
            {"text": await self.signed(ticket, agent_id, text)},
            lane=Lane.RELAY,
            kind="relay_out",
            ref=f"{ticket.topic_generation};{line}",
        )
        await self._repos.tickets.set_outbox([line], outbox_id)
        await self._repos.tickets.first_response(ticket.id)

    async def _relayed_out(self, item: OutboxItem, result: Any) -> None:
        lines, _ = self._lines_of(item)
        landed = _message_ids(result)
        for index, line_id in enumerate(lines):
            user_message_id = landed[min(index, len(landed) - 1)] if landed else None
            await self._repos.tickets.relayed(line_id, user_message_id=user_message_id)

    async def _relay_out_failed(self, item: OutboxItem, error: Exception) -> None:
        lines, _ = self._lines_of(item)
        first = await self._repos.tickets.get_message(lines[0]) if lines else None
        ticket = await self._repos.tickets.get(first.ticket_id) if first else None
        if ticket is None:
            return
        if isinstance(error, Forbidden):
            if not ticket.user_blocked:
                await self._repos.tickets.mark_user_blocked(ticket.id)
                await self.post_in_topic(
                    ticket,
                    group_translator(self._config, ticket.group_chat_id).gettext(USER_BLOCKED),
                )
        else:
            _LOGGER.warning("Relay to the user of ticket %s failed: %s", ticket.code, error)

    async def edit_out(
        self,
        ticket: Ticket,
        group_message_id: int,
        text: str,
        caption: bool,
        html: str | None = None,
    ) -> bool:
        """Propagate an agent's edit (``html``: its formatting and allowed links) to the
        user's copy; False if it cannot be mapped."""
        line = await self._repos.tickets.by_group_message(ticket.id, group_message_id)
        if line is None or line.user_message_id is None:
            return False
        method = "editMessageCaption" if caption else "editMessageText"
        params = {
            "message_id": line.user_message_id,
            ("caption" if caption else "text"): await self.signed(
                ticket, line.sender_id, html or escape(text)
            ),
        }
        await self._outbox.enqueue(
            ticket.user_id, method, params, lane=Lane.RELAY, kind="relay_edit", ref=str(line.id)
        )
        return True


def _message_ids(result: Any) -> list[int]:
    if hasattr(result, "message_id"):
        return [result.message_id]
    if isinstance(result, tuple | list):
        return [r.message_id for r in result if hasattr(r, "message_id")]
    return []
