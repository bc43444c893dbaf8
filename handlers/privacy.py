"""Privacy: what the bot keeps about the user and for how long, their export and deletion.

``/privacy`` says in plain words what is stored, who sees it and how long each kind is kept
(the figures are the retention settings), with two buttons. Export and deletion both need a
fresh identity check (the one sensitive actions use); deletion then lists what will go and
asks once more. The deletion itself is a job that survives restarts
(:class:`tgbot.privacy.PrivacyService`); while it runs, the privacy gate answers the user
"being deleted" and records nothing about them.

```mermaid
stateDiagram-v2
    [*] --> choose: /privacy
    choose --> verify: export / delete
    verify --> [*]: export -> the file in the chat
    verify --> confirm: delete -> what will go
    confirm --> [*]: yes -> erasure job (its own "done" message follows)
```
"""

from __future__ import annotations

import io
import time
from datetime import datetime
from enum import StrEnum

from telegram import InlineKeyboardButton, InputFile, Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, CommandHandler, TypeHandler
from telegram.ext import filters as f

from storage import PersonalData
from tgbot.context import BotContext
from tgbot.i18n import N_, translator
from tgbot.privacy import export_document

from .common import (
    END,
    GuidedFlow,
    answer_button,
    flow_record,
    main_menu_markup,
    main_menu_row,
    nav_rows,
    send_step,
)
from .handoff import OVER_TICKET
from .verify import require_verified, verify_states

OVERVIEW = N_(
    "🔒 <b>Your data and privacy</b>\n\n"
    "<b>What I keep about you</b>\n"
    "• your Telegram name and the language you chose\n"
    "• the U-Pay account your Telegram is linked to (its account number only: never your "
    "phone number, password or card numbers)\n"
    "• your conversations with support: messages, ratings and comments\n"
    "• questions you typed to me, and refund requests you made here\n"
    "• your identity check: when you verified and wrong tries\n"
    "• messages between us while they are being handled\n\n"
    "<b>Who can see it</b>\n"
    "The U-Pay support agents of your conversation, and admins when they check the security "
    "log. Nobody else.\n\n"
    "<b>How long</b>\n"
    "• messages being handled: {updates} after handling\n"
    "• messages I sent you: {sent}\n"
    "• conversations with support, ratings and comments: {transcripts} after they close\n"
    "• questions you typed: {questions}\n"
    "• refund references: {refunds} after the refund is completed or rejected\n"
    "• identity check: until it expires\n"
    "• security log of actions: {audit}\n"
    "• your name, language and account link: until you delete them, or {profile} after "
    "your last message\n\n"
    "Your U-Pay account, balance, cards and transactions are kept by U-Pay, not by this chat. "
    "Deleting your data here does not close your account."
)
EXPORT_LABEL = N_("📤 Export my data")
DELETE_LABEL = N_("🗑 Delete my data")
EXPORT_CAPTION = N_(
    "📤 Here is everything this support chat keeps about you, as of {time}. Keep the file "
    "private: it contains your conversations."
)
CONFIRM_HEAD = N_("🗑 <b>Delete your data?</b> This permanently deletes:")
GOES_PROFILE = N_("• your profile: name and language setting")
GOES_ACCOUNT = N_("• the link to your U-Pay account {account}")
GOES_VERIFICATION = N_("• your identity check")
GOES_UPDATES = N_("• messages and button presses still being handled")
OPEN_TICKET = N_("Your open conversation {code} will be closed first.")
TOPICS_NOTE = N_(
    "In support's chat, I delete your messages I posted there (Telegram allows this for 48 "
    "hours); older ones stay, and the conversation is marked “data deleted at the user's "
    "request” and closed."
)
STAYS = N_(
    "What stays, without anything that links it to you: that a refund was requested, "
    "ticket times and star ratings, delivery counts of security notices."
)
IRREVERSIBLE = N_(
    "Your U-Pay account, balance, cards and transactions are not affected. This cannot be undone."
)
YES_DELETE = N_("🗑 Yes, delete my data")
DELETING = N_(
    "🗑 Deleting your data now. I will tell you here when it is done, usually within a minute."
)
# TRANSLATORS: callback answer (max 200)
BEING_DELETED = N_("Your data is being deleted. I will tell you when it is done.")


class PrivacyState(StrEnum):
    """States of the privacy flow (besides the shared identity check)."""

    CHOOSE = "privacy:choose"
    CONFIRM = "privacy:confirm"


def _hours(context: BotContext, count: int) -> str:
    return context.ngettext("{count} hour", "{count} hours", count).format(
        count=context.tr.number(count)
    )


def _days(context: BotContext, count: int) -> str:
    return context.ngettext("{count} day", "{count} days", count).format(
        count=context.tr.number(count)
    )


def overview_text(context: BotContext) -> str:
    """Return the /privacy text with the configured retention figures."""
    config = context.config
    return context._(OVERVIEW).format(
        updates=_hours(context, config.retention_updates_hours),
        sent=_hours(context, config.retention_sent_hours),
        transcripts=_days(context, config.retention_transcript_days),
        questions=_days(context, config.retention_question_days),
        refunds=_days(context, config.retention_refund_days),
        audit=_days(context, config.retention_audit_days),
        profile=_days(context, config.retention_profile_days),
    )


async def privacy_start(update: Update, context: BotContext) -> object:
    """Show what the bot keeps, who sees it and for how long, with export and delete."""
    await answer_button(update, context)
    record = flow_record(context)
    if record is not None:
        record[OVER_TICKET] = True  # works during an open ticket; its steps are not relayed
    keyboard = [
        [
            InlineKeyboardButton(context._(EXPORT_LABEL), callback_data="privacy:export"),
            InlineKeyboardButton(context._(DELETE_LABEL), callback_data="privacy:delete"),
        ],
        main_menu_row(context),
    ]
    await send_step(update, context, overview_text(context), keyboard, edit=False)
    return PrivacyState.CHOOSE


async def export_start(update: Update, context: BotContext) -> object:
    """Export: check who the user is first."""
    await answer_button(update, context)
    return await require_verified(update, context, send_export)


async def send_export(update: Update, context: BotContext, account_id: str) -> object:
    """Send the user one file with everything the bot holds about them."""
    user_id = update.effective_user.id
    await context.repos.audit.record(user_id, "privacy.export", None)
    now = time.time()
    data = await context.repos.privacy.personal_data(user_id)
    name, content = export_document(data, context.tr, context.config.zone, now)
    zone = context.config.zone
    when = context.tr.datetime(datetime.fromtimestamp(now, zone), zone, "short")
    # Sent directly, never through the outbox: the file must not be stored anywhere.
    await context.bot.send_document(
        update.effective_chat.id,
        InputFile(io.BytesIO(content), filename=name),
        caption=context._(EXPORT_CAPTION).format(time=when),
        reply_markup=main_menu_markup(context),
    )
    return END


async def delete_start(update: Update, context: BotContext) -> object:
    """Deletion: check who the user is first."""
    await answer_button(update, context)
    return await require_verified(update, context, confirm_delete)


def what_goes(context: BotContext, data: PersonalData) -> str:
    """Return the confirmation: what will be deleted, what stays, what is not affected."""
    lines = [context._(CONFIRM_HEAD), context._(GOES_PROFILE)]
    account = data.profile.wallet_account_id if data.profile else None
    if account:
        lines.append(context._(GOES_ACCOUNT).format(account=f"…{account[-4:]}"))
    if data.verification is not None:
        lines.append(context._(GOES_VERIFICATION))
    if data.tickets:
        messages = sum(len(record.lines) for record in data.tickets)
        lines.append(
            context.ngettext(
                "• {count} conversation with support ({messages} messages), with your rating "
                "comment",
                "• {count} conversations with support ({messages} messages), with your rating "
                "comments",
                len(data.tickets),
            ).format(
                count=context.tr.number(len(data.tickets)), messages=context.tr.number(messages)
            )
        )
    if data.refunds:
        lines.append(
            context.ngettext(
                "• {count} refund reference", "• {count} refund references", len(data.refunds)
            ).format(count=context.tr.number(len(data.refunds)))
        )
    if data.questions:
        lines.append(
            context.ngettext(
                "• {count} question you typed", "• {count} questions you typed", len(data.questions)
            ).format(count=context.tr.number(len(data.questions)))
        )
    if data.updates or data.sends:
        lines.append(context._(GOES_UPDATES))
    paragraphs = ["\n".join(lines)]
    open_ticket = next((r.ticket for r in data.tickets if r.ticket.is_open), None)
    if open_ticket is not None:
        paragraphs.append(context._(OPEN_TICKET).format(code=open_ticket.code))
    if any(r.ticket.thread_id for r in data.tickets):
        paragraphs.append(context._(TOPICS_NOTE))
    paragraphs += [context._(STAYS), context._(IRREVERSIBLE)]
    return "\n\n".join(paragraphs)


async def confirm_delete(update: Update, context: BotContext, account_id: str) -> object:
    """List what will be deleted and ask once more."""
    data = await context.repos.privacy.personal_data(update.effective_user.id)
    keyboard = [
        [InlineKeyboardButton(context._(YES_DELETE), callback_data="privacy:erase")],
        *nav_rows(context),
    ]
    await send_step(update, context, what_goes(context, data), keyboard, edit=False)
    return PrivacyState.CONFIRM


async def erase(update: Update, context: BotContext) -> object:
    """Deletion confirmed: still verified? then start the erasure."""
    await answer_button(update, context)
    return await require_verified(update, context, start_erasure)


async def start_erasure(update: Update, context: BotContext, account_id: str) -> object:
    """Start the erasure job; it tells the user when it is done."""
    await context.app.privacy.request_erasure(update.effective_user.id, context.lang)
    await send_step(update, context, context._(DELETING), [main_menu_row(context)])
    return END


async def gate(update: Update, context: BotContext) -> None:
    """While a user's data is being erased, record nothing about them: answer and stop."""
    user = update.effective_user
    service = context.app.privacy
    language = await service.gate_language(user.id) if user is not None and service else None
    if language is None:
        return
    text = translator(language).gettext(BEING_DELETED)
    query = update.callback_query
    chat = update.effective_chat
    if query is not None:
        await query.answer(text)
    elif update.message is not None and chat is not None and chat.type == ChatType.PRIVATE:
        await context.bot.send_message(chat.id, text)
    raise ApplicationHandlerStop


def gate_handlers() -> list:
    """Return the privacy gate (before anything records the user)."""
    return [TypeHandler(Update, gate)]


def privacy_flow() -> GuidedFlow:
    """Build the /privacy flow."""
    return GuidedFlow(
        name="privacy",
        entry_points=[CommandHandler("privacy", privacy_start, filters=f.ChatType.PRIVATE)],
        states={
            **verify_states(send_export, confirm_delete, start_erasure),
            PrivacyState.CHOOSE: [
                CallbackQueryHandler(export_start, pattern=r"^privacy:export$"),
                CallbackQueryHandler(delete_start, pattern=r"^privacy:delete$"),
            ],
            PrivacyState.CONFIRM: [
                CallbackQueryHandler(erase, pattern=r"^privacy:erase$"),
            ],
        },
    )
