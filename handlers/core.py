"""The pipeline's fixed stages: prepare the update, guard sensitive data, enforce the flow
lifecycle, fall back when nothing else answered, and apologise on errors.

Users get: their language on every message, sensitive data deleted with a warning, a polite
end to an abandoned flow, an answer to every stale button, and never a dead end.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
import traceback

from telegram import Chat, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, MessageHandler, TypeHandler
from telegram.ext import filters as f

from services.tickets import end_keyboard
from services.wording import translator_for
from tgbot.context import BotContext
from tgbot.i18n import N_, pick_language, translator
from tgbot.sensitive import classify, mask

from .common import (
    FLOW_KEY,
    answer_button,
    answer_expired,
    end_flow_of,
    flow_record,
    is_expired,
    main_menu_markup,
    make_inert,
    show_main_menu,
    user_in_sync,
)
from .handoff import relay_scrubbed
from .verify import close_reply_keyboard

_LOGGER = logging.getLogger(__name__)

WARN_CARD = N_(
    "⚠️ I deleted your message because it looked like a bank card number. Never send a card "
    "number in any chat: U-Pay staff never ask for it. Cards are added only on U-Pay's "
    "secure page."
)
WARN_PASSWORD = N_(
    "⚠️ I deleted your message because it looked like a password. U-Pay staff never ask for "
    "your password or PIN, by any means. If you shared it anywhere, change it in the app now."
)
WARN_CODE = N_(
    "⚠️ I deleted your message because it looked like a one-time code. U-Pay staff never ask "
    "for a code, by chat, phone or text message. I ask for one only during a check that you "
    "started yourself, in this chat."
)
#: What the user is told for each kind of data the guard deleted.
WARNINGS = {"card": WARN_CARD, "password": WARN_PASSWORD, "code": WARN_CODE}
WARN_IN_TICKET = N_("The agent was told that a message was deleted, without its content.")
TIMED_OUT_NEXT = N_("Nothing was submitted. You can start again from the menu.")
NOT_UNDERSTOOD = N_("Sorry, I did not understand that. Please choose from the menu below.")
TEXT_ONLY = N_("I can only read text messages here. Please choose from the menu.")
ERROR_TEXT = N_(
    "Sorry, something went wrong on our side. Your request was not lost. "
    "Please try again, or tell support this error code: {ref}"
)
TOO_LONG = N_(
    "Your message is too long for me to read ({length} characters). "
    "Please keep it under {limit} characters."
)

#: Commands that always end the running flow.
LEAVING_COMMANDS = ("/start", "/cancel", "/menu")

#: Longest text a user may send into a flow step; longer ones are refused with a message.
MAX_INPUT = 2000


def timed_out_text(context: BotContext, timeout: float) -> str:
    """Return the polite "your request was closed" message for a flow timeout."""
    minutes = max(1, round(timeout / 60))
    closed = context.ngettext(
        "Your previous request was closed after {minutes} minute without activity.",
        "Your previous request was closed after {minutes} minutes without activity.",
        minutes,
    ).format(minutes=context.tr.number(minutes))
    return f"{closed} {context._(TIMED_OUT_NEXT)}"


def is_agent_chat(context: BotContext, chat: Chat | None) -> bool:
    """Return True if ``chat`` is one of the agents' groups (following id migrations)."""
    return chat is not None and context.app.desk.is_agent_group(chat.id)


async def prepare(update: Update, context: BotContext) -> None:
    """Load the user's record and pick the language every later handler speaks."""
    user = update.effective_user
    if user is None or user.is_bot:
        return
    record = await context.repos.users.get(user.id)
    chat = update.effective_chat
    if (
        chat is not None
        and chat.type == ChatType.PRIVATE
        and (
            record is None
            or record.first_name != user.first_name
            or record.telegram_language != user.language_code
            or record.blocked
            or time.time() - record.last_seen_at > 600
        )
    ):
        record = await context.repos.users.touch(user.id, user.first_name, user.language_code)
    context.user_record = record
    lang = pick_language(
        record.language if record else None, user.language_code, context.config.default_language
    )
    context.tr = translator(lang)


async def leave_foreign_groups(update: Update, context: BotContext) -> None:
    """Leave any group or channel that is not an agents' group; user flows are private only."""
    chat = update.effective_chat
    if chat is None or chat.type == ChatType.PRIVATE or is_agent_chat(context, chat):
        return
    member = update.my_chat_member
    if member is not None and member.new_chat_member.status in ("left", "kicked"):
        raise ApplicationHandlerStop
    _LOGGER.info("Leaving chat %s (%s): not an agents' group", chat.id, chat.type)
    try:
        await context.bot.leave_chat(chat.id)
    except TelegramError as exc:
        _LOGGER.warning("Could not leave chat %s: %s", chat.id, exc)
    raise ApplicationHandlerStop


async def guard_sensitive(update: Update, context: BotContext) -> None:
    """Delete card numbers, passwords and unexpected codes (new or edited) and warn."""
    # Only what the user wrote: a button press carries the bot's own message (a refund
    # reference or an amount can look like a code), which is not the user's to be warned about.
    message = update.message or update.edited_message
    chat = update.effective_chat
    if message is None or chat is None or chat.type != ChatType.PRIVATE:
        return
    text = message.text or message.caption
    if not text:
        return
    record = flow_record(context)
    # Steps that ask for a code, an amount or a search may get a lone number.
    expects = record.get("expects") if record else None
    kind = classify(text, code_expected=bool(expects))
    if kind is None or (expects == "notice" and kind != "card"):
        # An admin's notice may say "password" or show a number: its words are content.
        return
    _LOGGER.info("Deleted a message with a %s from user %s", kind, chat.id)
    try:
        await message.delete()
    except BadRequest as exc:
        _LOGGER.warning("Could not delete a sensitive message: %s", exc)
    # In a ticket the agents learn what happened, masked; menus stay paused there.
    in_ticket = await relay_scrubbed(update, context, kind, mask(text))
    label = WARNINGS.get(kind, WARN_CARD)
    warning = context._(label)
    if in_ticket:
        warning = f"{warning}\n\n{context._(WARN_IN_TICKET)}"
    markup = end_keyboard(context) if in_ticket else main_menu_markup(context)
    await context.bot.send_message(chat.id, warning, reply_markup=markup)
    raise ApplicationHandlerStop


async def enforce_lifecycle(update: Update, context: BotContext) -> None:
    """End an abandoned flow politely, refuse stale buttons and oversized input."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or user is None or chat.type != ChatType.PRIVATE:
        return
    record = flow_record(context)
    if record is not None and is_expired(record, context.config.flow_timeout):
        end_flow_of(context.application, user.id, chat.id)
        await close_reply_keyboard(update, context, record)
        await make_inert(context, chat.id, record.get("msgs", ()))
        await context.bot.send_message(
            chat.id,
            timed_out_text(context, context.config.flow_timeout),
            reply_markup=main_menu_markup(context),
        )
    query = update.callback_query
    if query is not None:
        sent = query.message.date.timestamp() if query.message else 0
        if time.time() - sent > context.config.button_ttl:
            await answer_expired(update, context)
            raise ApplicationHandlerStop
        return
    message = update.message
    if message is not None and message.text and len(message.text) > MAX_INPUT:
        in_ticket = await context.repos.tickets.open_for_user(user.id) is not None
        await message.reply_text(
            context._(TOO_LONG).format(
                length=context.tr.number(len(message.text)), limit=context.tr.number(MAX_INPUT)
            ),
            reply_markup=end_keyboard(context) if in_ticket else main_menu_markup(context),
        )
        raise ApplicationHandlerStop
    command = message.text.split()[0] if message is not None and message.text else ""
    if command in LEAVING_COMMANDS and FLOW_KEY in (context.user_data or {}):
        # These always leave the running flow; the command handlers then answer.
        record = flow_record(context)
        context.ended_flow = end_flow_of(context.application, user.id, chat.id)
        await close_reply_keyboard(update, context, record)
        if record is not None:
            await make_inert(context, chat.id, record.get("msgs", ()))


async def expired_button(update: Update, context: BotContext) -> None:
    """Answer a button that no flow or menu took: it belongs to an ended or old menu."""
    await answer_expired(update, context)


async def not_understood(update: Update, context: BotContext) -> None:
    """Answer free text that nothing understood: offer the menu (and a human, when present)."""
    await update.effective_message.reply_text(
        context._(NOT_UNDERSTOOD), reply_markup=main_menu_markup(context)
    )


async def text_only(update: Update, context: BotContext) -> None:
    """Answer a sticker, photo or file sent outside a step that wants one."""
    await update.effective_message.reply_text(
        context._(TEXT_ONLY), reply_markup=main_menu_markup(context)
    )


async def on_error(update: object, context: BotContext) -> None:
    """Log the error with a reference id and tell the user, with a way forward."""
    ref = secrets.token_hex(4).upper()
    error = context.error
    if isinstance(error, Forbidden):
        _LOGGER.info("ref %s: user unreachable: %s", ref, error)
        return
    _LOGGER.error(
        "ref %s: error while handling an update: %s\n%s",
        ref,
        type(error).__name__,
        "".join(traceback.format_exception(error)) if error else "",
    )
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    chat = update.effective_chat
    if chat.type != ChatType.PRIVATE:
        return
    # PTB gives the error handler a fresh context: find the user's language again.
    context.tr = await translator_for(context, chat.id)
    if update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    try:
        await context.bot.send_message(
            chat.id,
            context._(ERROR_TEXT).format(ref=ref),
            reply_markup=main_menu_markup(context),
        )
    except TelegramError as exc:
        _LOGGER.warning("ref %s: could not send the apology: %s", ref, exc)


async def menu_button(update: Update, context: BotContext) -> None:
    """Show the main menu from the "main menu" button: a running flow's step becomes the
    menu (navigation in place); a result worth keeping (a reference, a link) keeps its text
    and loses its buttons, and the menu comes below it."""
    query = update.callback_query
    await answer_button(update, context)
    user = update.effective_user
    record = flow_record(context)
    in_step = (
        record is not None
        and isinstance(query.message, Message)
        and query.message.message_id in record["msgs"]
    )
    if user is not None and record is not None:
        end_flow_of(context.application, user.id, update.effective_chat.id)
        await close_reply_keyboard(update, context, record)
        pressed = query.message.message_id if isinstance(query.message, Message) else 0
        await make_inert(
            context, update.effective_chat.id, [m for m in record["msgs"] if m != pressed]
        )
    if in_step:
        await show_main_menu(update, context, edit=True)
        return
    if isinstance(query.message, Message):
        with contextlib.suppress(BadRequest):
            await query.message.edit_reply_markup(reply_markup=None)
    await show_main_menu(update, context)


def prepare_handlers() -> list:
    """Return the handlers of the prepare stage."""
    return [TypeHandler(Update, prepare)]


def guard_handlers() -> list:
    """Return the handlers of the sensitive-data guard stage."""
    return [TypeHandler(Update, guard_sensitive)]


def group_handlers() -> list:
    """Return the handler that leaves groups other than the agents' groups."""
    return [TypeHandler(Update, leave_foreign_groups)]


def lifecycle_handlers() -> list:
    """Return the handlers of the flow-lifecycle stage."""
    return [TypeHandler(Update, enforce_lifecycle)]


def menu_handlers() -> list:
    """Return the "main menu" button handler (any time, any flow)."""
    return [CallbackQueryHandler(menu_button, pattern=r"^menu:main$")]


def fallback_handlers() -> list:
    """Return the last-resort answers: stale buttons, unknown text, non-text messages."""
    private = f.ChatType.PRIVATE & f.UpdateType.MESSAGE
    return [
        CallbackQueryHandler(expired_button),
        MessageHandler(private & f.TEXT, not_understood),
        MessageHandler(private & ~f.TEXT & ~f.StatusUpdate.ALL, text_only),
    ]


async def expire_flows(context: BotContext) -> None:
    """End flows that saw no activity for the configured timeout and tell their users."""
    app = context.application
    timeout = app.config.flow_timeout
    now = time.time()
    cluster = getattr(app, "cluster", None)
    # Several workers: the flows of users other workers served are in the database only.
    users = await cluster.stored_user_data() if cluster is not None else app.user_data
    expired = [
        user_id
        for user_id, data in users.items()
        if data.get(FLOW_KEY) and is_expired(data[FLOW_KEY], timeout, now)
    ]
    for user_id in expired:
        async with user_in_sync(app, user_id):
            # Telling the previous users awaited: look again, this user may have just acted.
            record = (app.user_data.get(user_id) or {}).get(FLOW_KEY)
            if not record or not is_expired(record, timeout, time.time()):
                continue
            end_flow_of(app, user_id)
            context.tr = await translator_for(context, user_id)
            await app.outbox.enqueue(
                user_id,
                "sendMessage",
                {
                    "text": timed_out_text(context, timeout),
                    "reply_markup": main_menu_markup(context).to_dict(),
                },
                kind="flow-timeout",
            )
