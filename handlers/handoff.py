"""Talk to a human: the user's side of a support ticket.

The user gets a ticket code, their place in the queue and the expected wait, and from then
on everything they send is relayed to the ticket's topic in an agents' forum group (stored
first, sent through the durable outbox) until they or an agent close it; then they can rate
the help. Other flows escalate with :func:`create_ticket`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import time
from datetime import datetime
from enum import StrEnum
from typing import Any

from telegram import InlineKeyboardButton, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
)
from telegram.ext import filters as f

from services.tickets import REOPEN_LABEL, TICKET_OPENED, URGENT_PRIORITY, end_keyboard, queue_text
from services.wording import HUMAN_LABEL, add_menu_entry
from storage import Ticket
from tgbot.context import BotContext
from tgbot.i18n import LANGUAGES, N_, translator
from tgbot.intents import asks_for_human, is_complaint, says_not_solved
from tgbot.keyboard import Keyboard
from tgbot.text import plain, truncate

from .common import (
    CALLBACK_ID,
    END,
    LET_GO,
    MENU_PROMPT,
    GuidedFlow,
    answer_button,
    answer_expired,
    end_flow_of,
    flow_record,
    human_button,
    main_menu_markup,
    main_menu_row,
    make_inert,
    not_step_input,
    retire_steps,
    send_step,
    show_main_menu,
)
from .verify import close_reply_keyboard

_LOGGER = logging.getLogger(__name__)


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
# TRANSLATORS: callback answer (max 200)
IN_TICKET_TOAST = N_(
    "You are talking to support (ticket {code}). Menus are paused until you end the conversation."
)
COMPLAINT_RECEIVED = N_(
    "I am sorry about this. Your complaint goes to our support team with your words as you "
    "wrote them."
)
CONFIRM_END = N_(
    "No agent has replied yet. If you end the conversation now, your request leaves the "
    "queue. End it anyway?"
)
CONFIRM_END_URGENT = N_(
    "⚠️ An agent has not replied yet to your urgent request. Your account stays frozen until "
    "an agent checks it with you. End the conversation anyway?"
)
YES_END_LABEL = N_("✖️ Yes, end it")
KEEP_WAITING_LABEL = N_("⏳ Keep waiting")
KEPT_WAITING = N_(
    "Your request stays in the queue (ticket <b>{code}</b>). An agent will reply here."
)
RATED = N_("Thank you for rating us {stars}.")
COMMENT_PROMPT = N_("Please write your comment in one message.")
COMMENT_THANKS = N_("Thank you, your comment was passed to our team.")
COMMENT_SKIPPED = N_("Thank you for your feedback.")
NO_TICKET = N_("You have no open conversation with support.")
REOPENED = N_("Your conversation with support (ticket <b>{code}</b>) is open again.")
# TRANSLATORS: callback answer (max 200)
TOO_LATE_TO_REOPEN = N_(
    "This conversation was closed too long ago to reopen. Tap “🙋 Talk to a human” to start "
    "a new one."
)
# TRANSLATORS: callback answer (max 200)
ALREADY_RATED = N_("Thank you, your rating is already noted.")
COMMENT_LABEL = N_("✍️ Add a comment")
SKIP_LABEL = N_("Skip")
HUMAN_DESCRIPTION = N_("chat with a support agent")
SENSITIVE_RELAYED = N_("⚠️ The user sent {what}; I deleted it from their chat. Masked: {masked}")
#: What the guard deleted, in the agents' words.
SENSITIVE_KINDS = {
    "card": N_("a bank card number"),
    "password": N_("a password"),
    "code": N_("a one-time code"),
}
SENSITIVE_OTHER = N_("sensitive data")

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


async def flow_context(update: Update, context: BotContext) -> dict[str, Any]:
    """End the flow the user is in, if any, and return what the agent should know of it."""
    record = flow_record(context)
    if record is None or update.effective_user is None or update.effective_chat is None:
        return {}
    context.left_steps = set(record.get("msgs", ()))
    end_flow_of(context.application, update.effective_user.id, update.effective_chat.id)
    await close_reply_keyboard(update, context, record)
    return {"flow": record["name"]}


async def create_ticket(
    update: Update,
    context: BotContext,
    priority: int = 0,
    info: dict[str, Any] | None = None,
    *,
    intro: str | None = None,
    in_place: bool = False,
) -> Ticket:
    """Open a ticket for the update's user (or show the open one) and tell them.

    Args:
        update: the update of the user asking for a human.
        context: the handler context.
        priority: higher is answered first (e.g. a stolen account).
        info: what the agent should know: flow, transaction id, question...
        intro: a line above the ticket's opening message (e.g. "sorry about this").
        in_place: show the ticket in the pressed message (a 🙋 button) instead of anew.
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
    lines = [intro] if intro else []
    lines.append(context._(TICKET_OPENED).format(code=ticket.code))
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
                zone=context.tr.zone_name(context.config.zone),
            )
        )
    text = "\n\n".join(lines)
    query = update.callback_query
    if in_place and query is not None and isinstance(query.message, Message):
        sent_id = await send_step(
            update, context, text, end_keyboard(context).inline_keyboard, keep=True
        )
    else:
        sent_id = (
            await context.bot.send_message(chat.id, text, reply_markup=end_keyboard(context))
        ).message_id
    await context.repos.tickets.set_queue_message(ticket.id, sent_id, eta)
    return ticket


async def talk_to_human(update: Update, context: BotContext) -> None:
    """Escalate from the 🙋 button (the menu or any flow step) or /human; the flow the user
    was in ends and goes into the ticket as context."""
    await answer_button(update, context)
    info = {"entry": "menu", **await flow_context(update, context)}
    await create_ticket(update, context, info=info, in_place=True)
    query = update.callback_query
    pressed = query.message.message_id if query and isinstance(query.message, Message) else 0
    await retire_steps(context, update.effective_chat.id, keep=[pressed])


async def escalate_anywhere(update: Update, context: BotContext) -> None:
    """ "转人工" / "agent" / "我要投诉…" typed at any flow step: a ticket now (a complaint
    carries its words), with the flow as context. Outside flows the free-text router reads
    these (and counts them); inside a flow whose step takes free text from an admin (a
    notice), the step's input wins."""
    message = update.message
    chat = update.effective_chat
    if message is None or message.text is None or chat is None or chat.type != ChatType.PRIVATE:
        return
    record = flow_record(context)
    if record is None:
        return
    flow = context.application.flows.get(record["name"])
    if flow is not None and not getattr(flow, "escalate", True):
        return
    text = message.text
    complaint = is_complaint(text)
    if not complaint and not asks_for_human(text) and text.strip() not in _human_labels():
        return
    info: dict[str, Any] = {"entry": "typed", **await flow_context(update, context)}
    intro = None
    if complaint:
        info["complaint"] = truncate(text, 500)
        intro = context._(COMPLAINT_RECEIVED)
    await create_ticket(update, context, info=info, intro=intro)
    await retire_steps(context, chat.id)
    raise ApplicationHandlerStop


@functools.cache
def _human_labels() -> frozenset[str]:
    """The "🙋 Talk to a human" label in every language (a reply keyboard sends it as text)."""
    return frozenset(translator(lang).gettext(HUMAN_LABEL) for lang in LANGUAGES)


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
    """While a ticket is open, relay whatever the user sends and run no menus. After a
    close, only a clear "not solved" reopens it; anything else is a new question."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or user is None or chat.type != ChatType.PRIVATE or user.is_bot:
        return
    ticket = await context.repos.tickets.open_for_user(user.id)
    query = update.callback_query
    message = update.message
    if ticket is None:
        if message is not None and says_not_solved(message.text or ""):
            ticket = await _maybe_reopen(update, context)
        if ticket is None:
            return
    flow = (context.user_data or {}).get("flow")
    if flow and flow.get(OVER_TICKET):
        return
    if query is not None:
        data = query.data or ""
        if data.startswith("tk:") or data == "menu:human":
            return  # end / rate buttons are handled below; 🙋 says "already open"
        await answer_button(update, context, context._(IN_TICKET_TOAST).format(code=ticket.code))
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
        # Closed by an agent a moment ago: a "not solved" reopens it; anything else is
        # answered by the later stages like any message outside a ticket (the closing
        # message offers the reopen button).
        if not says_not_solved(text):
            return
        ticket = await _maybe_reopen(update, context)
        if ticket is None or not await desk.relay_in(ticket, message, _kind(message), text or None):
            return
    raise ApplicationHandlerStop


async def _maybe_reopen(
    update: Update, context: BotContext, ticket_id: int | None = None
) -> Ticket | None:
    """Reopen the user's last ticket (or ``ticket_id``) if it was closed within the reopen
    window, on the user's explicit request."""
    user = update.effective_user
    record = flow_record(context)
    if record is not None and record["name"] != "rating":
        return None  # the user is busy in another flow: "not solved" is that step's input
    last = await context.repos.tickets.last_closed_for_user(user.id)
    if ticket_id is not None and (last is None or last.id != ticket_id):
        last = await context.repos.tickets.get(ticket_id)
    if last is None or last.closed_at is None or last.user_id != user.id:
        return None
    if time.time() - last.closed_at > context.config.reopen_window:
        return None
    if not await context.repos.tickets.reopen(last.id):
        return None
    if record is not None:
        end_flow_of(context.application, user.id, update.effective_chat.id)
    ticket = await context.repos.tickets.get(last.id)
    await context.repos.audit.record(user.id, "ticket.reopen", last.id)
    sent = await context.bot.send_message(
        update.effective_chat.id,
        context._(REOPENED).format(code=last.code),
        reply_markup=end_keyboard(context),
    )
    # This message now carries the ticket's "end" button (taken off when it closes).
    await context.repos.tickets.set_queue_message(ticket.id, sent.message_id, None)
    ticket = await context.repos.tickets.get(ticket.id) or ticket
    await context.app.desk.ticket_reopened(ticket)
    return ticket


async def reopen_button(update: Update, context: BotContext) -> None:
    """ "🔄 Not solved, reopen" on the closing message: reopen within the window."""
    query = update.callback_query
    ticket_id = int(query.data.rsplit(":", 1)[1])
    ticket = await context.repos.tickets.get(ticket_id)
    if ticket is None or ticket.user_id != query.from_user.id:
        await answer_expired(update, context)
        return
    if ticket.is_open:
        await answer_button(update, context, context._(IN_TICKET_TOAST).format(code=ticket.code))
        return
    other = await context.repos.tickets.open_for_user(ticket.user_id)
    if other is not None:
        await answer_button(update, context, context._(IN_TICKET_TOAST).format(code=other.code))
        return
    reopened = await _maybe_reopen(update, context, ticket_id)
    if reopened is None:
        await answer_button(update, context, context._(TOO_LATE_TO_REOPEN))
        if isinstance(query.message, Message):
            markup = Keyboard([[human_button(context)], main_menu_row(context)])
            with contextlib.suppress(BadRequest):
                await query.message.edit_reply_markup(reply_markup=markup)
        return
    await answer_button(update, context)
    if isinstance(query.message, Message):
        await make_inert(context, query.message.chat_id, [query.message.message_id])


async def relay_scrubbed(update: Update, context: BotContext, what: str, masked: str) -> bool:
    """Tell the agents (masked, in their group's language) what the user sent that the
    guard deleted; return True if the user is in a ticket."""
    user = update.effective_user
    if user is None:
        return False
    ticket = await context.repos.tickets.open_for_user(user.id)
    if ticket is None:
        return False
    tr = context.app.desk.group_tr(ticket.group_chat_id)
    kind = tr.gettext(SENSITIVE_KINDS.get(what, SENSITIVE_OTHER))
    # A transcript line is plain text (escaped when relayed), like the user's own lines.
    line = plain(tr.gettext(SENSITIVE_RELAYED), what=kind, masked=masked)
    await context.app.desk.relay_in_text(ticket, line)
    return True


async def end_by_user(update: Update, context: BotContext) -> None:
    """Close the user's open ticket from /end or the button (after a confirmation when no
    agent has replied yet); a rating is asked only for help that came."""
    user = update.effective_user
    query = update.callback_query
    await answer_button(update, context)
    ticket = await context.repos.tickets.open_for_user(user.id)
    if ticket is None:
        await context.bot.send_message(
            update.effective_chat.id, context._(NO_TICKET), reply_markup=main_menu_markup(context)
        )
        raise ApplicationHandlerStop
    confirmed = query is not None and query.data == "tk:endok"
    if ticket.first_response_at is None and not confirmed:
        text = CONFIRM_END_URGENT if ticket.priority >= URGENT_PRIORITY else CONFIRM_END
        keyboard = Keyboard(
            [
                [InlineKeyboardButton(context._(YES_END_LABEL), callback_data="tk:endok")],
                [InlineKeyboardButton(context._(KEEP_WAITING_LABEL), callback_data="tk:keep")],
            ]
        )
        await context.bot.send_message(
            update.effective_chat.id, context._(text), reply_markup=keyboard
        )
        raise ApplicationHandlerStop
    if query is not None and isinstance(query.message, Message) and confirmed:
        await make_inert(context, query.message.chat_id, [query.message.message_id])
    await context.app.desk.close(ticket, closed_by=user.id, by_user=True)
    raise ApplicationHandlerStop


async def keep_waiting(update: Update, context: BotContext) -> None:
    """ "⏳ Keep waiting": the ticket stays as it is."""
    await answer_button(update, context)
    query = update.callback_query
    ticket = await context.repos.tickets.open_for_user(query.from_user.id)
    if isinstance(query.message, Message):
        if ticket is None:
            await make_inert(context, query.message.chat_id, [query.message.message_id])
        else:
            with contextlib.suppress(BadRequest):
                await query.message.edit_text(context._(KEPT_WAITING).format(code=ticket.code))
    raise ApplicationHandlerStop


class Rating(StrEnum):
    """States of the rating flow."""

    RATED = "rate:rated"
    COMMENT = "rate:comment"


def _rated_keyboard(context: BotContext, ticket: Ticket) -> list[list[InlineKeyboardButton]]:
    rows = [[InlineKeyboardButton(context._(COMMENT_LABEL), callback_data="tk:comment")]]
    if ticket.closed_at and time.time() - ticket.closed_at <= context.config.reopen_window:
        rows.append(
            [InlineKeyboardButton(context._(REOPEN_LABEL), callback_data=f"tk:reopen:{ticket.id}")]
        )
    rows.append(main_menu_row(context))
    return rows


async def rate(update: Update, context: BotContext) -> object:
    """Store the rating of the user's own closed ticket, tell the agents, offer a comment."""
    query = update.callback_query
    _, _, ticket_id, stars = query.data.split(":")
    ticket = await context.repos.tickets.get(int(ticket_id))
    if ticket is None or ticket.user_id != query.from_user.id or ticket.is_open:
        await answer_expired(update, context)
        return END
    if ticket.rating is not None:
        await answer_button(update, context, context._(ALREADY_RATED))
        return END
    await answer_button(update, context)
    rating = max(1, min(5, int(stars)))
    await context.repos.tickets.rate(ticket.id, rating)
    await context.app.desk.rated(ticket, rating)
    context.user_data["rated_ticket"] = ticket.id
    text = context._(RATED).format(stars="⭐" * rating)
    await send_step(update, context, text, _rated_keyboard(context, ticket), edit=True)
    return Rating.RATED


async def ask_comment(update: Update, context: BotContext) -> object:
    """ "✍️ Add a comment": the next message is the comment."""
    await answer_button(update, context)
    keyboard = [[InlineKeyboardButton(context._(SKIP_LABEL), callback_data="tk:skip")]]
    await send_step(update, context, context._(COMMENT_PROMPT), keyboard)
    return Rating.COMMENT


async def not_a_comment(update: Update, context: BotContext) -> object:
    """Text after rating without asking to comment: a new question, not a comment."""
    return LET_GO


async def rating_comment(update: Update, context: BotContext) -> object:
    """Store the user's comment on their rating and pass it to the agents."""
    comment = truncate(update.message.text, COMMENT_LIMIT)
    ticket_id = context.user_data["rated_ticket"]
    await context.repos.tickets.comment(ticket_id, comment)
    ticket = await context.repos.tickets.get(ticket_id)
    if ticket is not None:
        await context.app.desk.commented(ticket, comment)
    text = f"{context._(COMMENT_THANKS)}\n\n{context._(MENU_PROMPT)}"
    await send_step(update, context, text, main_menu_markup(context).inline_keyboard)
    return END


async def skip_comment(update: Update, context: BotContext) -> object:
    """Finish the rating without a comment."""
    await answer_button(update, context)
    text = f"{context._(COMMENT_SKIPPED)}\n\n{context._(MENU_PROMPT)}"
    await show_main_menu(update, context, text, edit=True)
    return END


def rating_flow() -> GuidedFlow:
    """Build the rating flow (stars, then an optional comment when asked for)."""
    return GuidedFlow(
        name="rating",
        entry_points=[CallbackQueryHandler(rate, pattern=rf"^tk:rate:{CALLBACK_ID}:[1-5]$")],
        states={
            Rating.RATED: [
                CallbackQueryHandler(ask_comment, pattern=r"^tk:comment$"),
                not_step_input(f.TEXT & ~f.COMMAND, not_a_comment),
            ],
            Rating.COMMENT: [
                MessageHandler(f.TEXT & ~f.COMMAND, rating_comment),
                CallbackQueryHandler(skip_comment, pattern=r"^tk:skip$"),
            ],
        },
        owns=("tk",),
    )


def command_handlers() -> list:
    """Return the escalation entry points, /end and the closing message's buttons."""
    private = f.ChatType.PRIVATE
    return [
        CommandHandler("end", end_by_user, filters=private),
        CallbackQueryHandler(end_by_user, pattern=r"^tk:(end|endok)$"),
        CallbackQueryHandler(keep_waiting, pattern=r"^tk:keep$"),
        CallbackQueryHandler(reopen_button, pattern=r"^tk:reopen:\d+$"),
        CommandHandler("human", talk_to_human, filters=private),
        CallbackQueryHandler(talk_to_human, pattern=r"^menu:human$"),
    ]


def escalation_handlers() -> list:
    """Return the "a human / a complaint, from anywhere" rule (before the flows)."""
    return [MessageHandler(f.ChatType.PRIVATE & f.TEXT & ~f.COMMAND, escalate_anywhere)]
