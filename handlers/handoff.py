"""Talk to a human: the user's side of a support ticket.

The user gets a ticket code, their place in the queue and the expected wait, and from then
on everything they send is relayed to the ticket's topic in an agents' forum group (stored
first, sent through the durable outbox) until they or an agent close it; then they can rate
the help. Other flows escalate with :func:`create_ticket`.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime
from enum import StrEnum
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
)
from telegram.ext import filters as f

from storage import Ticket
from tgbot.context import BotContext
from tgbot.i18n import LANGUAGES, N_, translator
from tgbot.lanes import Lane
from tgbot.text import TOPIC_NAME_LIMIT, plain, truncate

from .common import (
    CALLBACK_ID,
    END,
    EXPIRED_TEXT,
    HUMAN_LABEL,
    GuidedFlow,
    add_menu_entry,
    main_menu_markup,
    send_step,
    translator_for,
)

_LOGGER = logging.getLogger(__name__)

#: Seconds to wait for the rest of an album before relaying it as one.
ALBUM_WAIT = 0.8
#: Handling time assumed before any ticket was closed.
DEFAULT_HANDLING_SECONDS = 300.0
#: Agents who acted this recently count as online.
ONLINE_WINDOW = 1800.0

TICKET_OPENED = N_(
    "🙋 I have passed your request to our support team. Your ticket number is <b>{code}</b>.\n"
    "An agent will reply in this chat. Support only ever talks to you here, and will never "
    "ask for your password, PIN or a verification code."
)
QUEUE_STATUS = N_("You are number {position} in the queue. Expected wait: about {minutes} min.")
OUT_OF_HOURS = N_(
    "Our agents work from {start} to {end} ({zone}). Your ticket is saved and an agent will "
    "reply as soon as we open."
)
NO_AGENTS_YET = N_(
    "Our agents cannot be reached right now. Your ticket is saved and an agent will reply "
    "later in this chat."
)
ALREADY_OPEN = N_(
    "You are already talking to support (ticket <b>{code}</b>). Just write here; "
    "send /end to finish."
)
IN_TICKET = N_(
    "You are talking to support (ticket <b>{code}</b>). Menus are paused until you finish; "
    "send /end or tap the button to end the conversation."
)
AGENT_JOINED = N_("✅ An agent has taken your request and will reply here.")
ENDED_BY_USER = N_("You ended the conversation with support (ticket <b>{code}</b>).")
ENDED_BY_AGENT = N_("Support has closed this conversation (ticket <b>{code}</b>).")
RATE_PROMPT = N_("How would you rate the help you got? 1 = poor, 5 = excellent.")
RATED = N_("Thank you for rating us {stars}. If you like, write a comment now, or tap Skip.")
COMMENT_THANKS = N_("Thank you, your comment was passed to our team.")
COMMENT_SKIPPED = N_("Thank you for your feedback.")
NO_TICKET = N_("You have no open conversation with support.")
REOPENED = N_("Your conversation with support (ticket <b>{code}</b>) is open again.")
END_LABEL = N_("✖️ End conversation")
SKIP_LABEL = N_("Skip")
HUMAN_DESCRIPTION = N_("chat with a support agent")
SENSITIVE_RELAYED = N_("[message deleted: it contained {what}; shown to agents masked: {masked}]")

#: A comment on a rating is at most this long.
COMMENT_LIMIT = 1000
#: Commands that work while a ticket is open instead of being relayed: ending it, and the
#: privacy page (a user may export or delete their data at any time).
TICKET_COMMANDS = ("/end", "/privacy")
#: Set in a running flow's record when the flow runs on top of an open ticket (privacy): its
#: steps (an identity check's code...) are the flow's, not messages for the agent.
OVER_TICKET = "over_ticket"

add_menu_entry("menu:human", HUMAN_LABEL, HUMAN_DESCRIPTION, order=90)


def _new_code() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "T" + "".join(secrets.choice(alphabet) for _ in range(5))


def end_keyboard(context: BotContext) -> InlineKeyboardMarkup:
    """Return the "end conversation" button."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(context._(END_LABEL), callback_data="tk:end")]]
    )


def route_group(context: BotContext, language: str) -> int | None:
    """Pick the agents' group for a ticket: a healthy group of the user's language, else any
    healthy group (round robin), else any configured group (it may recover)."""
    desk = context.app.desk
    chats = [(desk.current_id(chat), lang) for chat, lang in context.config.agent_chats]
    if not chats:
        return None
    healthy = [(chat, lang) for chat, lang in chats if desk.is_healthy(chat)]
    for pool in (
        [c for c, lang in healthy if lang == language],
        [c for c, lang in healthy if lang is None],
        [c for c, _ in healthy],
        [c for c, _ in chats],
    ):
        if pool:
            return desk.next_of(pool)
    return None


def is_open_now(context: BotContext, moment: datetime | None = None) -> bool:
    """Return True within the configured business hours (always, if none are set)."""
    hours = context.config.business_hours
    if hours is None:
        return True
    now = moment or datetime.now(context.config.zone)
    minute = now.hour * 60 + now.minute
    start, end = hours
    return start <= minute < end if start <= end else (minute >= start or minute < end)


async def queue_text(context: BotContext, ticket: Ticket) -> tuple[str, int]:
    """Return the queue position line and the expected wait in minutes."""
    repos = context.repos
    position = await repos.tickets.queue_position(ticket)
    handling = await repos.tickets.median_handling_seconds() or DEFAULT_HANDLING_SECONDS
    online = max(1, await repos.agents.online_count(time.time() - ONLINE_WINDOW))
    minutes = max(1, round(position * handling / online / 60))
    text = context._(QUEUE_STATUS).format(
        position=context.tr.number(position), minutes=context.tr.number(minutes)
    )
    return text, minutes


async def create_ticket(
    update: Update,
    context: BotContext,
    priority: int = 0,
    info: dict[str, Any] | None = None,
) -> Ticket:
    """Open a ticket for the update's user (or show the open one) and tell them.

    Args:
        update: the update of the user asking for a human.
        context: the handler context.
        priority: higher is answered first (e.g. a stolen account).
        info: what the agent should know: flow, step, transaction id...
    """
    user = update.effective_user
    chat = update.effective_chat
    assert user is not None and chat is not None
    existing = await context.repos.tickets.open_for_user(user.id)
    if existing is not None:
        await context.bot.send_message(
            chat.id,
            context._(ALREADY_OPEN).format(code=existing.code),
            reply_markup=end_keyboard(context),
        )
        return existing
    group = route_group(context, context.lang)
    for _ in range(5):
        try:
            ticket, created = await context.repos.tickets.create(
                user.id,
                _new_code(),
                context.lang,
                priority=priority,
                context=info or {},
                group_chat_id=group,
            )
            break
        except Exception:  # a code collision: draw another
            continue
    else:
        raise RuntimeError("could not draw a unique ticket code")
    await context.repos.audit.record(user.id, "ticket.open", ticket.id, {"priority": priority})
    if created and group is not None and context.app.desk.is_healthy(group):
        await context.app.desk.request_topic(ticket, user.first_name)
    lines = [context._(TICKET_OPENED).format(code=ticket.code)]
    queue, eta = await queue_text(context, ticket)
    lines.append(queue)
    if group is None or not context.app.desk.is_healthy(group):
        lines.append(context._(NO_AGENTS_YET))
    elif not is_open_now(context):
        start, end = context.config.business_hours or (0, 0)
        lines.append(
            context._(OUT_OF_HOURS).format(
                start=f"{start // 60:02d}:{start % 60:02d}",
                end=f"{end // 60:02d}:{end % 60:02d}",
                zone=context.config.timezone,
            )
        )
    sent = await context.bot.send_message(
        chat.id, "\n\n".join(lines), reply_markup=end_keyboard(context)
    )
    await context.repos.tickets.set_queue_message(ticket.id, sent.message_id, eta)
    return ticket


async def talk_to_human(update: Update, context: BotContext) -> None:
    """Escalate from the menu button, /human or words like 人工 / agent."""
    if update.callback_query:
        await update.callback_query.answer()
    await create_ticket(update, context, info={"entry": "menu"})


def _kind(message: Message) -> str:
    for kind in ("photo", "document", "video", "voice", "audio", "sticker", "animation"):
        if getattr(message, kind):
            return kind
    if message.video_note:
        return "video_note"
    if message.contact:
        return "contact"
    if message.location:
        return "location"
    return "text" if message.text else "other"


async def relay_from_user(update: Update, context: BotContext) -> None:
    """While a ticket is open, relay whatever the user sends and run no menus."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or user is None or chat.type != ChatType.PRIVATE or user.is_bot:
        return
    ticket = await context.repos.tickets.open_for_user(user.id)
    query = update.callback_query
    message = update.message
    if ticket is None:
        if message is not None and not (message.text or "").startswith("/"):
            ticket = await _maybe_reopen(update, context)
        if ticket is None:
            return
    flow = (context.user_data or {}).get("flow")
    if flow and flow.get(OVER_TICKET):
        return
    if query is not None:
        if (query.data or "").startswith("tk:"):
            return  # end / rate buttons are handled below
        await query.answer(context._(IN_TICKET).split(".")[0][:190])
        raise ApplicationHandlerStop
    if update.edited_message is not None:
        raise ApplicationHandlerStop  # edits are not relayed; the transcript keeps the original
    if message is None:
        return
    text = message.text or message.caption or ""
    if text.startswith("/"):
        if text.split()[0].split("@")[0] in TICKET_COMMANDS:
            return
        await message.reply_text(
            context._(IN_TICKET).format(code=ticket.code), reply_markup=end_keyboard(context)
        )
        raise ApplicationHandlerStop
    desk = context.app.desk
    if not await desk.relay_in(ticket, message, _kind(message), text or None):
        # Closed by an agent a moment ago: the message reopens it (as it would a second
        # later), else later stages answer it like any message outside a ticket.
        ticket = await _maybe_reopen(update, context)
        if ticket is None or not await desk.relay_in(ticket, message, _kind(message), text or None):
            return
    raise ApplicationHandlerStop


async def _maybe_reopen(update: Update, context: BotContext) -> Ticket | None:
    """Reopen the user's last ticket if it was closed within the reopen window."""
    user = update.effective_user
    if context.user_data and context.user_data.get("flow"):
        return None  # the user is in a flow (e.g. commenting on a rating)
    last = await context.repos.tickets.last_closed_for_user(user.id)
    if last is None or last.closed_at is None:
        return None
    if time.time() - last.closed_at > context.config.reopen_window:
        return None
    if not await context.repos.tickets.reopen(last.id):
        return None
    ticket = await context.repos.tickets.get(last.id)
    await context.repos.audit.record(user.id, "ticket.reopen", last.id)
    await context.bot.send_message(
        update.effective_chat.id,
        context._(REOPENED).format(code=last.code),
        reply_markup=end_keyboard(context),
    )
    await context.app.desk.ticket_reopened(ticket)
    return ticket


async def relay_scrubbed(update: Update, context: BotContext, what: str, masked: str) -> None:
    """Tell the agents (masked) what the user sent that the guard deleted, if in a ticket."""
    user = update.effective_user
    if user is None:
        return
    ticket = await context.repos.tickets.open_for_user(user.id)
    if ticket is None:
        return
    tr = translator(ticket.language if ticket.language in LANGUAGES else "en")
    # A transcript line is plain text (escaped when relayed), like the user's own lines.
    line = plain(tr.gettext(SENSITIVE_RELAYED), what=what, masked=masked)
    await context.app.desk.relay_in_text(ticket, line)


async def end_by_user(update: Update, context: BotContext) -> None:
    """Close the user's open ticket from /end or the button, and ask for a rating."""
    user = update.effective_user
    query = update.callback_query
    if query is not None:
        await query.answer()
    ticket = await context.repos.tickets.open_for_user(user.id)
    if ticket is None:
        await context.bot.send_message(
            update.effective_chat.id, context._(NO_TICKET), reply_markup=main_menu_markup(context)
        )
        raise ApplicationHandlerStop
    await context.app.desk.close(ticket, closed_by=user.id, by_user=True)
    raise ApplicationHandlerStop


def rating_keyboard(ticket_id: int) -> InlineKeyboardMarkup:
    """Return the 1-5 rating buttons of a closed ticket."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("⭐" * n, callback_data=f"tk:rate:{ticket_id}:{n}")
                for n in range(1, 6)
            ]
        ]
    )


def closed_text(context: Any, ticket: Ticket, by_user: bool) -> str:
    """Return the message that tells the user their ticket is closed and asks for a rating."""
    head = ENDED_BY_USER if by_user else ENDED_BY_AGENT
    return context._(head).format(code=ticket.code) + "\n\n" + context._(RATE_PROMPT)


class Rating(StrEnum):
    """States of the rating flow."""

    COMMENT = "rate:comment"


async def rate(update: Update, context: BotContext) -> object:
    """Store the rating of the user's own closed ticket and offer a comment."""
    query = update.callback_query
    _, _, ticket_id, stars = query.data.split(":")
    ticket = await context.repos.tickets.get(int(ticket_id))
    if ticket is None or ticket.user_id != query.from_user.id or ticket.is_open:
        await query.answer(context._(EXPIRED_TEXT))
        return END
    await query.answer()
    rating = max(1, min(5, int(stars)))
    await context.repos.tickets.rate(ticket.id, rating)
    context.user_data["rated_ticket"] = ticket.id
    keyboard = [[InlineKeyboardButton(context._(SKIP_LABEL), callback_data="tk:skip")]]
    await send_step(update, context, context._(RATED).format(stars="⭐" * rating), keyboard)
    return Rating.COMMENT


async def rating_comment(update: Update, context: BotContext) -> object:
    """Store the user's comment on their rating."""
    comment = truncate(update.message.text, COMMENT_LIMIT)
    await context.repos.tickets.comment(context.user_data["rated_ticket"], comment)
    await update.message.reply_text(
        context._(COMMENT_THANKS), reply_markup=main_menu_markup(context)
    )
    return END


async def skip_comment(update: Update, context: BotContext) -> object:
    """Finish the rating without a comment."""
    await update.callback_query.answer()
    await send_step(update, context, context._(COMMENT_SKIPPED))
    await context.bot.send_message(
        update.effective_chat.id,
        context._(N_("What can I help you with?")),
        reply_markup=main_menu_markup(context),
    )
    return END


def rating_flow() -> GuidedFlow:
    """Build the rating flow (stars, then an optional comment)."""
    return GuidedFlow(
        name="rating",
        entry_points=[CallbackQueryHandler(rate, pattern=rf"^tk:rate:{CALLBACK_ID}:[1-5]$")],
        states={
            Rating.COMMENT: [
                MessageHandler(f.TEXT & ~f.COMMAND, rating_comment),
                CallbackQueryHandler(skip_comment, pattern=r"^tk:skip$"),
            ]
        },
    )


def command_handlers() -> list:
    """Return the escalation entry points and /end."""
    private = f.ChatType.PRIVATE
    return [
        CommandHandler("end", end_by_user, filters=private),
        CallbackQueryHandler(end_by_user, pattern=r"^tk:end$"),
        CommandHandler("human", talk_to_human, filters=private),
        CallbackQueryHandler(talk_to_human, pattern=r"^menu:human$"),
    ]


def topic_name(ticket: Ticket, first_name: str) -> str:
    """Return the topic name: code, first name (cut) and language, within 128 characters."""
    suffix = f" · {ticket.language}"
    head = f"{ticket.code} · "
    return head + truncate(first_name, TOPIC_NAME_LIMIT - len(head) - len(suffix)) + suffix


async def refresh_queue(context: BotContext) -> None:
    """Job: update each waiting user's queue position and wait when it moved a minute+."""
    app = context.application
    for ticket in await app.repos.tickets.open_tickets():
        if ticket.status != "open" or ticket.queue_message_id is None:
            continue
        context.tr = await translator_for(context, ticket.user_id)
        queue, eta = await queue_text(context, ticket)
        if ticket.queue_eta_minutes is not None and abs(eta - ticket.queue_eta_minutes) < 1:
            continue
        text = context._(TICKET_OPENED).format(code=ticket.code) + "\n\n" + queue
        async with app.repos.db.transaction():
            # Claimed or closed while this job went through the list: no queue line then.
            current = await app.repos.tickets.get(ticket.id)
            if current is None or current.status != "open":
                continue
            await app.outbox.enqueue(
                ticket.user_id,
                "editMessageText",
                {
                    "message_id": ticket.queue_message_id,
                    "text": text,
                    "reply_markup": end_keyboard(context).to_dict(),
                },
                lane=Lane.NOTIFY,
                kind="queue_update",
            )
            await app.repos.tickets.set_queue_message(ticket.id, ticket.queue_message_id, eta)
