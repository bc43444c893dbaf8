"""What a user is told about their support ticket: queue place, closing, rating buttons.

Shared by the ticket flow (``handlers.handoff``), the support desk and the queue refresher.
"""

from __future__ import annotations

import time
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from storage import Ticket
from tgbot.context import BotContext
from tgbot.i18n import LANGUAGES, N_
from tgbot.keyboard import Keyboard
from tgbot.text import TOPIC_NAME_LIMIT, truncate

from .wording import HUMAN_LABEL, MAIN_MENU_LABEL

#: Seconds to wait for the rest of an album before relaying it as one.
ALBUM_WAIT = 0.8


#: Handling time assumed before any ticket was closed.
DEFAULT_HANDLING_SECONDS = 300.0


#: Agents who acted this recently count as online.
ONLINE_WINDOW = 1800.0


TICKET_OPENED = N_(
    "🙋 I have passed your request to our support team. Your ticket number is <b>{code}</b>.\n"
    "An agent will reply in this chat. U-Pay staff never ask for your password, PIN or a "
    "verification code, by any means."
)


QUEUE_STATUS = N_("You are number {position} in the queue. {wait}")


AGENT_JOINED = N_("✅ An agent has taken your request and will reply here.")


ENDED_BY_USER = N_("You ended the conversation with support (ticket <b>{code}</b>).")


ENDED_BY_AGENT = N_("Support has closed this conversation (ticket <b>{code}</b>).")


REOPEN_HINT = N_(
    "Not solved? Tap “🔄 Not solved, reopen” or write “not solved”: the same agent team "
    "picks it up again. Anything else you write starts a new question."
)


RATE_PROMPT = N_("How would you rate the help you got? 1 = poor, 5 = excellent.")


ENDED_UNANSWERED = N_(
    "You ended the conversation (ticket <b>{code}</b>) before an agent replied, so there is "
    "nothing to rate. If you still need help, tap “🙋 Talk to a human” at any time."
)


CLOSED_UNANSWERED = N_(
    "Support closed this conversation (ticket <b>{code}</b>) before replying. If you still "
    "need help, tap “🙋 Talk to a human”."
)


STAYS_FROZEN = N_(
    "🧊 Your account stays frozen for your protection. Only an agent can unfreeze it: tap "
    "“🙋 Talk to a human” when you are ready."
)


END_LABEL = N_("✖️ End conversation")


REOPEN_LABEL = N_("🔄 Not solved, reopen")


def end_keyboard(context: BotContext) -> InlineKeyboardMarkup:
    """Return the "end conversation" button."""
    return Keyboard([[InlineKeyboardButton(context._(END_LABEL), callback_data="tk:end")]])


async def queue_text(context: BotContext, ticket: Ticket) -> tuple[str, int]:
    """Return the queue position line and the expected wait in minutes."""
    repos = context.repos
    position = await repos.tickets.queue_position(ticket)
    handling = await repos.tickets.median_handling_seconds() or DEFAULT_HANDLING_SECONDS
    online = max(1, await repos.agents.online_count(time.time() - ONLINE_WINDOW))
    minutes = max(1, round(position * handling / online / 60))
    wait = context.ngettext(
        "Expected wait: about {minutes} minute.", "Expected wait: about {minutes} minutes.", minutes
    ).format(minutes=context.tr.number(minutes))
    text = context._(QUEUE_STATUS).format(position=context.tr.number(position), wait=wait)
    return text, minutes


#: Tickets at or above this priority are urgent (a freeze): they never close silently.
URGENT_PRIORITY = 2


def rating_keyboard(ticket_id: int, tr: Any) -> InlineKeyboardMarkup:
    """Return the closing message's buttons: 1-5 stars, and "not solved, reopen"."""
    return Keyboard(
        [
            [
                InlineKeyboardButton("⭐" * n, callback_data=f"tk:rate:{ticket_id}:{n}")
                for n in range(1, 6)
            ],
            [
                InlineKeyboardButton(
                    tr.gettext(REOPEN_LABEL), callback_data=f"tk:reopen:{ticket_id}"
                )
            ],
        ]
    )


def closed_view(tr: Any, ticket: Ticket, by_user: bool) -> tuple[str, InlineKeyboardMarkup]:
    """Return what the user gets when their ticket closes: a rating and a way to reopen when
    an agent helped; else no rating, a human and the menu (an urgent ticket says the account
    stays frozen)."""
    if ticket.first_response_at is None:
        head = ENDED_UNANSWERED if by_user else CLOSED_UNANSWERED
        lines = [tr.gettext(head).format(code=ticket.code)]
        if ticket.priority >= URGENT_PRIORITY:
            lines.append(tr.gettext(STAYS_FROZEN))
        keyboard = Keyboard(
            [
                [InlineKeyboardButton(tr.gettext(HUMAN_LABEL), callback_data="menu:human")],
                [InlineKeyboardButton(tr.gettext(MAIN_MENU_LABEL), callback_data="menu:main")],
            ]
        )
        return "\n\n".join(lines), keyboard
    head = ENDED_BY_USER if by_user else ENDED_BY_AGENT
    text = "\n\n".join(
        [
            tr.gettext(head).format(code=ticket.code),
            tr.gettext(RATE_PROMPT),
            tr.gettext(REOPEN_HINT),
        ]
    )
    return text, rating_keyboard(ticket.id, tr)


def topic_name(ticket: Ticket, first_name: str) -> str:
    """Return the topic name: code, first name (cut) and the language's own name (中文,
    English), within 128 characters."""
    suffix = f" · {LANGUAGES.get(ticket.language, ticket.language)}"
    head = f"{ticket.code} · "
    return head + truncate(first_name, TOPIC_NAME_LIMIT - len(head) - len(suffix)) + suffix
