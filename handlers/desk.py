"""The support desk: topics, relays both ways, closing, health of the agents' groups.

Every relayed message is a transcript line in SQLite before it is handed to the durable
outbox, and the outbox's hooks record where it landed (the message-id map that keeps reply
threading and agents' edits). A topic that was deleted or closed by hand is recreated and the
messages that bounced are relayed again. Relays into one group share Telegram's 20-a-minute
budget; while texts wait for it, consecutive user texts are coalesced into one message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from itertools import groupby
from typing import Any

from telegram import Bot, ChatMemberAdministrator, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ChatType
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from storage import OutboxItem, Repositories, Ticket, TicketMessage
from tgbot.config import Config
from tgbot.i18n import LANGUAGES, N_, translator
from tgbot.lanes import Lane
from tgbot.outbox import OutboxWorker
from tgbot.text import escape

from .common import MENU
from .handoff import (
    AGENT_JOINED,
    ALBUM_WAIT,
    URGENT_PRIORITY,
    closed_view,
    topic_name,
)

_LOGGER = logging.getLogger(__name__)

#: Texts in the agents' groups (agents read the group's language; English keeps it simple
#: for mixed teams, and these lines go through gettext like every other).
HEADER = N_(
    "<b>Ticket {code}</b> · {priority}\nUser: {name} · {language}\nLinked account: {account}"
)
PRIORITY_NORMAL = N_("normal priority")
PRIORITY_HIGH = N_("HIGH priority")
NOT_LINKED = N_("not linked")
NO_CONTEXT = N_("Asked for a human from the menu.")
STATUS_WAITING = N_("⏳ Waiting for an agent")
STATUS_CLAIMED = N_("🙋 Claimed by {agent}")
STATUS_CLOSED = N_("✅ Closed")
#: What the header says of a ticket's context (what the user was doing, asked or shown).
CONTEXT_FROM = N_("Came from: {flow}")
CONTEXT_RATING = N_("rating an earlier ticket")
CONTEXT_QUESTION = N_("Question: “{text}”")
CONTEXT_COMPLAINT = N_("⚠️ Complaint: “{text}”")
CONTEXT_ARTICLE = N_("Help article shown: {title}")
CONTEXT_TX = N_("Transaction: <code>{id}</code>")
CONTEXT_FROZEN = N_("🧊 The user froze the account here; it needs checking with them.")
CONTEXT_UNCONFIRMED = N_(
    "⚠️ The wallet did NOT confirm the freeze: check the account and freeze it by hand."
)
CONTEXT_NO_ACCOUNT = N_("⚠️ No U-Pay account matches the user's Telegram phone number.")
CLAIM_LABEL = N_("🙋 Claim")
CLOSE_LABEL = N_("✅ Close")
TRANSFER_LABEL = N_("↪️ Transfer")
CLAIMED_BY = N_("🙋 {agent} claimed this ticket.")
CLOSED_IN_TOPIC = N_("✅ Ticket closed by {who}.")
CLOSED_UNANSWERED_IN_TOPIC = N_("✅ Ticket closed by {who} before any agent replied.")
URGENT_ENDED = N_(
    "⚠️ URGENT: the user ended this freeze ticket before any agent replied. Their account "
    "stays frozen; contact them when they write again or through their ticket history."
)
URGENT_ENDED_ADMINS = N_(
    "⚠️ The urgent ticket {code} (account freeze) was ended by the user before any agent "
    "replied. Please make sure someone follows up."
)
RATED_IN_TOPIC = N_("⭐ The user rated this ticket {stars} ({rating} of 5).")
COMMENT_IN_TOPIC = N_("💬 The user's comment: {comment}")
THE_USER = N_("the user")
REOPENED_IN_TOPIC = N_("🔄 The user says it is not solved: ticket reopened.")
USER_BLOCKED = N_("⚠️ The user has blocked the bot: messages cannot be delivered.")
REMINDER = N_("⏰ Nobody has claimed this ticket for {minutes} min.")
TOPIC_RECREATED = N_("♻️ This topic was recreated: the previous one was deleted or closed.")
GROUP_PROBLEM = N_("⚠️ Agents' group {chat}: {problem}. Tickets wait until it is fixed.")
#: The signature above an agent's reply ("客服 · Wang"): the team's word in the user's
#: language, and the agent's roster name (``TGBOT_AGENT_LABEL``).
TEAM_WORD = N_("Support")
AGENT_LABEL = N_("{team} · {name}")
NOT_A_FORUM = N_("topics are not enabled")
NOT_ADMIN = N_("the bot is not an administrator")
NO_TOPIC_RIGHTS = N_("the bot may not manage topics")
NO_DELETE_RIGHTS = N_("the bot may not delete messages")
UNREACHABLE = N_("the bot cannot reach the group")
NON_AGENT = N_(
    "⚠️ {name} (ID {user_id}) wrote in the agents' group {chat} but is not on the agent "
    "roster; their messages are ignored."
)

#: Message kinds that carry a caption (an agent's label goes there).
CAPTIONED = frozenset({"photo", "video", "document", "audio", "voice", "animation"})

#: Telegram errors meaning the topic is gone (deleted or closed by hand).
_TOPIC_GONE = ("thread not found", "topic_closed", "topic_deleted", "topic_id_invalid")


def _group_tr(config: Config, chat_id: int | None = None):
    """Return the translator of an agents' group: the language its team handles (configured
    with the group), else the default language."""
    language = dict(config.agent_chats).get(chat_id) if chat_id is not None else None
    return translator(language or config.default_language)


def describe_context(tr: Any, info: dict[str, Any]) -> list[str]:
    """Return a ticket's context as lines an agent reads (no internal keys or ids)."""
    from tgbot.answers import get_article  # the articles load the search index lazily

    from .lookup import STATUS_NAMES

    lines = []
    flow = info.get("flow")
    if flow == "rating":
        lines.append(tr.gettext(CONTEXT_FROM).format(flow=tr.gettext(CONTEXT_RATING)))
    elif flow:
        label = next((e.label for e in MENU if e.data == f"menu:{flow}"), None)
        if label is not None:
            lines.append(tr.gettext(CONTEXT_FROM).format(flow=tr.gettext(label)))
    if info.get("question"):
        lines.append(tr.gettext(CONTEXT_QUESTION).format(text=escape(info["question"])))
    if info.get("complaint"):
        lines.append(tr.gettext(CONTEXT_COMPLAINT).format(text=escape(info["complaint"])))
    article = get_article(str(info.get("article") or ""))
    if article is not None:
        lines.append(tr.gettext(CONTEXT_ARTICLE).format(title=tr.gettext(article.title)))
    if info.get("tx"):
        status = STATUS_NAMES.get(str(info.get("status")))
        parts = [tr.gettext(CONTEXT_TX).format(id=escape(info["tx"]))]
        if info.get("amount"):
            parts.append(escape(info["amount"]))
        if status:
            parts.append(tr.gettext(status))
        lines.append(" · ".join(parts))
    account = info.get("account")
    if account == "frozen":
        lines.append(tr.gettext(CONTEXT_FROZEN))
    elif account == "NOT CONFIRMED":
        lines.append(tr.gettext(CONTEXT_UNCONFIRMED))
    if info.get("found") == "no":
        lines.append(tr.gettext(CONTEXT_NO_ACCOUNT))
    return lines


class SupportDesk:
    """Ticket topics and relays; one per application (``app.desk``)."""

    def __init__(self, bot: Bot, repos: Repositories, outbox: OutboxWorker, config: Config):
        self._bot = bot
        self._repos = repos
        self._outbox = outbox
        self._config = config
        self._health: dict[int, str | None] = {}
        self._moves: dict[int, int] = {}
        self._rr = 0
        self._album_timers: dict[tuple[int, str], asyncio.TimerHandle] = {}
        self._reported: set[tuple[int, int]] = set()
        #: (ticket, message id) -> the message it replies to, until the relay is queued
        #: (negative ids: agents' messages).
        self._reply_hint: dict[tuple[int, int], int] = {}
        #: ticket -> its last queued user-text relay, which later texts may join.
        self._last_text: dict[int, int] = {}
        self._tasks: set[asyncio.Task] = set()
        outbox.on_sent("ticket_topic", self._topic_created)
        outbox.on_sent("ticket_header", self._header_posted)
        outbox.on_failed("ticket_topic", self._topic_failed)
        outbox.on_sent("relay_in", self._relayed_in)
        outbox.on_failed("relay_in", self._relay_in_failed)
        outbox.on_sent("relay_out", self._relayed_out)
        outbox.on_failed("relay_out", self._relay_out_failed)

    # ------------------------------------------------------------------ groups

    async def start(self) -> None:
        """Load group moves, check the groups, and relay whatever waited over a restart."""
        self._moves = await self._repos.tickets.group_moves()
        await self.check_groups()
        for ticket_id in await self._repos.tickets.tickets_with_unrelayed():
            ticket = await self._repos.tickets.get(ticket_id)
            if ticket is not None:
                await self.flush(ticket, "in")
                await self.flush(ticket, "out")

    def group_tr(self, chat_id: int | None) -> Any:
        """Return the translator of an agents' group (its team's language)."""
        return _group_tr(self._config, chat_id)

    def current_id(self, chat_id: int) -> int:
        """Return the group's id now (following migrations)."""
        while chat_id in self._moves:
            chat_id = self._moves[chat_id]
        return chat_id

    def is_agent_group(self, chat_id: int) -> bool:
        """Return True for a configured agents' group (by its current id)."""
        return chat_id in {self.current_id(c) for c in self._config.agent_chat_ids}

    def is_healthy(self, chat_id: int) -> bool:
        """Return True unless the last check found a problem with the group."""
        return self._health.get(chat_id) is None

    def next_of(self, pool: list[int]) -> int:
        """Return the next group of ``pool`` in round-robin order."""
        self._rr += 1
        return pool[self._rr % len(pool)]

    async def check_groups(self) -> dict[int, str | None]:
        """Check every agents' group (forum, bot admin with topic and delete rights) and
        report problems to the admins; return the problems by group."""
        tr = _group_tr(self._config)
        for configured in self._config.agent_chat_ids:
            chat_id = self.current_id(configured)
            problem = None
            try:
                chat = await self._bot.get_chat(chat_id)
                member = await self._bot.get_chat_member(chat_id, self._bot.id)
                if chat.type != ChatType.SUPERGROUP or not chat.is_forum:
                    problem = NOT_A_FORUM
                elif not isinstance(member, ChatMemberAdministrator):
                    problem = NOT_ADMIN
                elif not member.can_manage_topics:
                    problem = NO_TOPIC_RIGHTS
                elif not member.can_delete_messages:
                    problem = NO_DELETE_RIGHTS
            except ChatMigrated as moved:
                await self._repos.tickets.record_group_move(chat_id, moved.new_chat_id)
                self._moves[chat_id] = moved.new_chat_id
                await self._repos.audit.record(
                    None, "group.moved", chat_id, {"new_chat_id": moved.new_chat_id}
                )
                return await self.check_groups()
            except TelegramError as exc:
                _LOGGER.warning("Agents' group %s unreachable: %s", chat_id, exc)
                problem = UNREACHABLE
            was = self._health.get(chat_id, "unknown")
            self._health[chat_id] = problem
            if problem and problem != was:
                await self._tell_admins(
                    tr.gettext(GROUP_PROBLEM).format(chat=chat_id, problem=tr.gettext(problem)),
                    f"group:{chat_id}:{problem}:{int(time.time() // 3600)}",
                )
            if problem is None and was is not None:
                await self._give_topics()
        return dict(self._health)

    async def _give_topics(self) -> None:
        """Create the topics of tickets that waited for a healthy group."""
        for ticket in await self._repos.tickets.waiting_for_topic():
            group = ticket.group_chat_id
            if group is None or not self.is_healthy(group):
                healthy = [
                    c
                    for c in map(self.current_id, self._config.agent_chat_ids)
                    if self.is_healthy(c)
                ]
                if not healthy:
                    return
                group = self.next_of(healthy)
                await self._repos.tickets.set_group(ticket.id, group)
                ticket = await self._repos.tickets.get(ticket.id)
            user = await self._repos.users.get(ticket.user_id)
            await self.request_topic(ticket, user.first_name if user else str(ticket.user_id))

    async def _tell_admins(self, text: str, dedupe_key: str) -> None:
        for admin_id in sorted(self._config.admin_ids):
            await self._outbox.enqueue(
                admin_id,
                "sendMessage",
                {"text": escape(text)},
                lane=Lane.NOTIFY,
                kind="admin_alert",
                dedupe_key=f"{dedupe_key}:{admin_id}",
            )

    async def report_non_agent(self, chat_id: int, user_id: int, name: str) -> None:
        """Tell the admins (once) that someone off the roster writes in an agents' group."""
        if (chat_id, user_id) in self._reported:
            return
        self._reported.add((chat_id, user_id))
        tr = _group_tr(self._config)
        await self._tell_admins(
            tr.gettext(NON_AGENT).format(name=name, user_id=user_id, chat=chat_id),
            f"nonagent:{chat_id}:{user_id}:{int(time.time() // 86400)}",
        )

    # ------------------------------------------------------------------ topics

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
        tr = _group_tr(self._config, ticket.group_chat_id)
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
        tr = _group_tr(self._config, ticket.group_chat_id)
        close = InlineKeyboardButton(tr.gettext(CLOSE_LABEL), callback_data=f"tk:close:{ticket.id}")
        transfer = InlineKeyboardButton(
            tr.gettext(TRANSFER_LABEL), callback_data=f"tk:xfer:{ticket.id}"
        )
        if ticket.claimed_by is not None:
            return InlineKeyboardMarkup([[close, transfer]])
        claim = InlineKeyboardButton(tr.gettext(CLAIM_LABEL), callback_data=f"tk:claim:{ticket.id}")
        return InlineKeyboardMarkup([[claim, close], [transfer]])

    async def header_text(self, ticket: Ticket) -> str:
        """Return the header card: who, language, linked account (masked), context, state."""
        tr = _group_tr(self._config, ticket.group_chat_id)
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

    # ------------------------------------------------------------------ relay in

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
        if isinstance(error, BadRequest) and any(t in error.message.lower() for t in _TOPIC_GONE):
            await self._topic_lost(ticket, lines, generation)
        else:
            _LOGGER.warning("Relay to the agents of ticket %s failed: %s", ticket.code, error)

    # ------------------------------------------------------------------ relay out

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
                    ticket, _group_tr(self._config, ticket.group_chat_id).gettext(USER_BLOCKED)
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

    # ------------------------------------------------------------------ lifecycle

    async def claim(self, ticket: Ticket, agent_id: int, agent_name: str) -> bool:
        """Give the ticket to an agent, tell the user and the topic."""
        if not await self._repos.tickets.claim(ticket.id, agent_id):
            return False
        await self._repos.agents.touch(agent_id)
        await self._repos.audit.record(agent_id, "ticket.claim", ticket.id)
        tr = _group_tr(self._config, ticket.group_chat_id)
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
        tr = _group_tr(self._config, ticket.group_chat_id)
        name = tr.gettext(THE_USER) if by_user else escape(who)
        unanswered = ticket.first_response_at is None
        line = CLOSED_UNANSWERED_IN_TOPIC if unanswered else CLOSED_IN_TOPIC
        await self.post_in_topic(ticket, tr.gettext(line).format(who=name))
        if unanswered and by_user and ticket.priority >= URGENT_PRIORITY:
            await self.post_in_topic(ticket, tr.gettext(URGENT_ENDED))
            await self._tell_admins(
                _group_tr(self._config).gettext(URGENT_ENDED_ADMINS).format(code=ticket.code),
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
        tr = _group_tr(self._config, ticket.group_chat_id)
        text = tr.gettext(RATED_IN_TOPIC).format(stars="⭐" * rating, rating=rating)
        await self.post_in_topic(ticket, text)

    async def commented(self, ticket: Ticket, comment: str) -> None:
        """Pass the user's comment on their rating to the ticket's topic."""
        tr = _group_tr(self._config, ticket.group_chat_id)
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
                ticket, _group_tr(self._config, ticket.group_chat_id).gettext(REOPENED_IN_TOPIC)
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
            tr = _group_tr(self._config, ticket.group_chat_id)
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


class _Speaker:
    """The bit of a context that message builders need: ``_`` in one language."""

    def __init__(self, tr: Any) -> None:
        self.tr = tr

    def _(self, message: str) -> str:
        return self.tr.gettext(message)


def _message_ids(result: Any) -> list[int]:
    if hasattr(result, "message_id"):
        return [result.message_id]
    if isinstance(result, tuple | list):
        return [r.message_id for r in result if hasattr(r, "message_id")]
    return []
