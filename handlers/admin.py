"""Admins' overview: /stats (users, tickets, refunds, broadcasts, self-service) and /audit.

Every command re-checks the role on each call; anyone else gets exactly what an unknown
command gets.
"""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup
from telegram import Update
from telegram.constants import ChatType
from telegram.ext import CommandHandler

from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.text import escape, split_text

from .common import CONTINUE

STATS = N_(
    "<b>Users</b>: {total} (中文 {zh}, English {en}); active in 7 days {active}; "
    "blocked the bot {blocked}\n"
    "<b>Tickets</b>: open {open}, closed {closed}; median first response {response}; "
    "average rating {rating}\n"
    "<b>Refunds requested</b>: {refunds}\n"
    "<b>Self-service</b>: {answers}\n"
    "<b>Recent broadcasts</b>:\n{broadcasts}"
)
NONE = N_("none")
ANSWERS_LINE = N_(
    "{questions} questions, {answered} answered, {helpful} helpful, {not_helpful} not "
    "helpful, {escalated} passed to a human"
)
BROADCAST_LINE = N_("#{id} {status}: sent {sent}, failed {failed}, blocked {blocked} of {total}")
AUDIT_HEAD = N_("Recent actions:")
AUDIT_EMPTY = N_("The audit log is empty.")


def _admin(update: Update, context: BotContext) -> bool:
    user = update.effective_user
    chat = update.effective_chat
    return (
        user is not None
        and user.id in context.config.admin_ids
        and chat is not None
        and chat.type == ChatType.PRIVATE
    )


def _duration(context: BotContext, seconds: float | None) -> str:
    if seconds is None:
        return context._(NONE)
    return f"{context.tr.number(round(seconds / 60, 1))} min"


async def stats(update: Update, context: BotContext) -> object:
    """/stats: the figures an admin needs at a glance."""
    if not _admin(update, context):
        return CONTINUE
    repos = context.repos
    users = await repos.stats.users(context.config.default_language)
    tickets = await repos.stats.tickets()
    refunds = await repos.stats.refunds()
    lines = []
    for broadcast in await repos.broadcasts.recent(3):
        counts = await repos.broadcasts.counts(broadcast.id)
        lines.append(
            context._(BROADCAST_LINE).format(
                id=broadcast.id,
                status=broadcast.status,
                sent=counts.get("sent", 0),
                failed=counts.get("failed", 0),
                blocked=counts.get("blocked", 0),
                total=broadcast.total,
            )
        )
    answered = await repos.answers.stats()
    answer_text = context._(ANSWERS_LINE).format(
        questions=answered.questions,
        answered=answered.answered,
        helpful=answered.helpful,
        not_helpful=answered.not_helpful,
        escalated=answered.escalated,
    )
    rating = tickets["avg_rating"]
    text = context._(STATS).format(
        total=users["total"],
        zh=users.get("lang_zh_Hans", 0),
        en=users.get("lang_en", 0),
        active=users["active_7d"],
        blocked=users["blocked"],
        open=tickets["open"],
        closed=tickets["closed"],
        response=_duration(context, tickets["median_first_response"]),
        rating=context.tr.number(round(rating, 2)) if rating is not None else context._(NONE),
        refunds=refunds,
        answers=answer_text,
        broadcasts=Markup("\n").join(lines) or context._(NONE),
    )
    await update.effective_message.reply_text(text)
    return None


async def audit(update: Update, context: BotContext) -> object:
    """/audit: the latest agent and admin actions."""
    if not _admin(update, context):
        return CONTINUE
    entries = await context.repos.audit.recent(20)
    if not entries:
        await update.effective_message.reply_text(context._(AUDIT_EMPTY))
        return None
    zone = context.config.zone
    lines = [context._(AUDIT_HEAD)]
    for entry in entries:
        when = datetime.fromtimestamp(entry.at, zone).strftime("%m-%d %H:%M")
        lines.append(
            escape(f"{when} {entry.actor_id or 'system'} {entry.action} {entry.target or ''}")
        )
    for chunk in split_text("\n".join(lines)):
        await update.effective_message.reply_text(chunk)
    return None


def command_handlers() -> list:
    """Return the admin overview commands."""
    return [CommandHandler("stats", stats), CommandHandler("audit", audit)]
