"""The shared identity check: link a Telegram user to their wallet account and verify it.

Flows that touch an account call :func:`require_verified` and add :func:`verify_states` to
their states. The user shares their own Telegram contact (not a forwarded one); the phone must
belong to a wallet account; the wallet sends a one-time code that the user types here. Tries,
expiry, resend cooldown and lockout are persisted; typed codes are deleted from the chat. A
verification is good for ``TGBOT_VERIFICATION_MAX_AGE`` seconds for sensitive actions.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum

from telegram import (
    InlineKeyboardButton,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler
from telegram.ext import filters as f

from services.wording import HUMAN_LABEL
from tgbot.backend.base import NotEligible, NotFound, OutcomeUnknown, Unavailable
from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.text import escape, normalize_input

from .common import (
    BACK_LABEL,
    END,
    answer_button,
    expect_numbers,
    flow_record,
    human_button,
    main_menu_row,
    nav_rows,
    not_step_input,
    scratch,
    send_step,
    show_main_menu,
)

_LOGGER = logging.getLogger(__name__)

CODE_TRIES = 5
LOCKOUT_SECONDS = 1800.0
RESEND_SECONDS = 60.0

ASK_CONTACT = N_(
    "To protect your account I first need to check that it is you. Tap “📱 Share my phone "
    "number” below: I only use it to find your U-Pay account, and I never ask for passwords."
)
SHARE_LABEL = N_("📱 Share my phone number")
#: Older keyboards still on users' screens send this text.
REFUSE_LABEL = N_("I'd rather not")
NOT_OWN_CONTACT = N_(
    "Please share your own number with the button below, not someone else's contact or a "
    "forwarded one."
)
USE_THE_BUTTON = N_(
    "Please tap “📱 Share my phone number” below. To go back, tap “⬅️ Back”; to reach a "
    "person, tap “🙋 Talk to a human”."
)
REFUSED = N_(
    "OK, I have not checked anything. Without checking who you are I cannot look at your "
    "account, but a human agent can still help you."
)
KEYBOARD_CLOSED = N_("OK, I will not ask for your phone number now.")
NUMBER_RECEIVED = N_("✅ Number received.")
NO_ACCOUNT = N_(
    "I could not find a U-Pay account with the phone number of this Telegram account. If "
    "your U-Pay account uses a different number, a human agent can help you."
)
CODE_SENT = N_(
    "I sent a 6-digit code by SMS to {phone}. Type it here within 5 minutes. Never share this "
    "code with anyone, including people who say they are from U-Pay."
)
CODE_RESENT = N_("A new code is on its way to {phone}.")
RESEND_WAIT = N_("You can ask for a new code in {seconds} s.")
RESEND_LABEL = N_("🔁 Send a new code")
SHARE_AGAIN = N_(
    "Sorry, I was restarted before I could check your number, and I never keep it. Please "
    "share it again with the button below."
)
CODE_EXPIRED = N_("❌ That code has expired. Tap “🔁 Send a new code”.")
CODE_FORMAT = N_("❌ Please type the 6 digits of the code from the SMS.")
LOCKED_OUT = N_(
    "Too many wrong codes. For your safety, verification is locked until {time}. A human "
    "agent can help you in the meantime."
)
VERIFIED = N_("✅ Verified: U-Pay account {name} ({phone}).")
WALLET_DOWN = N_(
    "The U-Pay service is not responding right now. Nothing was changed. Please try again "
    "in a few minutes, or talk to a human."
)
WALLET_UNSURE = N_(
    "The U-Pay service did not confirm this in time, so I cannot tell yet whether it was "
    "done. Please check again in a few minutes before asking again, or talk to a human."
)
ACCOUNT_GONE = N_(
    "I cannot find your U-Pay account any more, so I have unlinked it from this chat. A "
    "human agent can help you."
)

Continuation = Callable[[Update, BotContext, str], Awaitable[object]]


class Verify(StrEnum):
    """States of the identity check (shared by every flow that needs it)."""

    CONTACT = "verify:contact"
    CODE = "verify:code"


def human_rows(context: BotContext) -> list[list[InlineKeyboardButton]]:
    """Return the "talk to a human" and "main menu" rows (the way out of a dead end)."""
    return [[human_button(context)], main_menu_row(context)]


def contact_keyboard(context: BotContext) -> ReplyKeyboardMarkup:
    """Return the reply keyboard of a "share your phone number" step: the share button, a
    way back and a human (reply keyboards cannot carry inline buttons)."""
    record = flow_record(context)
    if record is not None:
        record["reply_kb"] = True  # whoever ends the flow takes the keyboard away
    return ReplyKeyboardMarkup(
        [
            [KeyboardButton(context._(SHARE_LABEL), request_contact=True)],
            [KeyboardButton(context._(BACK_LABEL)), KeyboardButton(context._(HUMAN_LABEL))],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


async def close_reply_keyboard(update: Update, context: BotContext, record: dict | None) -> None:
    """Take away a contact step's reply keyboard when its flow ends another way (a human,
    /cancel, another flow): Telegram removes one only with a message."""
    chat = update.effective_chat
    if record is None or not record.get("reply_kb") or chat is None:
        return
    record.pop("reply_kb", None)
    await context.bot.send_message(
        chat.id, context._(KEYBOARD_CLOSED), reply_markup=ReplyKeyboardRemove()
    )


async def wallet_down(
    update: Update, context: BotContext, error: Unavailable | None = None
) -> None:
    """Tell the user the wallet is unreachable; their step is kept. "Nothing was changed"
    only when that is true: not after a change whose outcome is unknown."""
    text = WALLET_UNSURE if isinstance(error, OutcomeUnknown) else WALLET_DOWN
    await send_step(update, context, context._(text), human_rows(context), edit=False, keep=True)


async def account_gone(update: Update, context: BotContext) -> object:
    """The linked account no longer exists (404): unlink it and offer a human."""
    user_id = update.effective_user.id
    await context.repos.users.set_wallet_account(user_id, None)
    if context.user_record is not None:
        context.user_record = await context.repos.users.get(user_id)
    await send_step(update, context, context._(ACCOUNT_GONE), human_rows(context))
    return END


def normalize_phone(raw: str) -> str:
    """Return a phone number as E.164 (digits with a leading +)."""
    digits = re.sub(r"\D", "", normalize_input(raw))
    return "+" + digits


async def require_verified(
    update: Update, context: BotContext, then: Continuation, *, max_age: float | None = None
) -> object:
    """Continue with ``then(account_id)`` if the user verified recently; else start the check.

    Returns the flow's next state.
    """
    user = update.effective_user
    repos = context.repos
    state = await repos.verifications.get(user.id)
    linked = context.user_record.wallet_account_id if context.user_record else None
    age = context.config.verification_max_age if max_age is None else max_age
    if not state.locked() and linked and state.account_id == linked and state.fresh(age):
        return await then(update, context, linked)
    # A lock-out or the check comes next, not what was pressed for: answer the button here.
    await answer_button(update, context)
    if state.locked():
        return await _locked_out(update, context, state.locked_until or 0)
    # Remember where to go once verified (the states know the continuation by name).
    scratch(context)["after_verify"] = then.__name__
    if linked:
        return await _send_code(update, context, linked, first=True)
    await _ask_contact(update, context, context._(ASK_CONTACT))
    return Verify.CONTACT


async def _ask_contact(update: Update, context: BotContext, text: str) -> None:
    """Ask for the user's own contact (reply keyboard); a pressed message is made inert."""
    query = update.callback_query
    if query is not None and query.message is not None:
        # The menu or step that led here: its buttons would start something else.
        with contextlib.suppress(BadRequest):
            await query.message.edit_reply_markup(reply_markup=None)
    await context.bot.send_message(
        update.effective_chat.id, text, reply_markup=contact_keyboard(context)
    )


async def _locked_out(update: Update, context: BotContext, until: float) -> object:
    when = context.tr.time_with_zone(
        datetime.fromtimestamp(until, context.config.zone), context.config.zone
    )
    await send_step(update, context, context._(LOCKED_OUT).format(time=when), human_rows(context))
    return END


async def _send_code(update: Update, context: BotContext, account_id: str, *, first: bool):
    user = update.effective_user
    try:
        account = await context.backend.get_account(account_id)
        # The key names this request of the user (the update that asked for a code).
        sent = await context.backend.send_code(account_id, f"code:{user.id}:{update.update_id}")
    except NotFound:
        return await account_gone(update, context)
    except NotEligible:
        # The wallet's own resend cooldown: the last code is still on its way and valid.
        state = await context.repos.verifications.get(user.id)
        wait = max(1, int((state.resend_after or time.time()) - time.time()) + 1)
        await context.bot.send_message(
            update.effective_chat.id, context._(RESEND_WAIT).format(seconds=wait)
        )
        return Verify.CODE if state.code_expires_at else None
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    await context.repos.verifications.code_sent(
        user.id,
        account_id,
        sent.expires_at.timestamp(),
        sent.resend_after.timestamp(),
        tries=CODE_TRIES,
    )
    expect_numbers(context, "code")
    scratch(context)["code_phone"] = account.phone_masked
    text = CODE_SENT if first else CODE_RESENT
    await send_step(
        update, context, context._(text).format(phone=account.phone_masked), code_keyboard(context)
    )
    return Verify.CODE


def code_keyboard(context: BotContext) -> list[list[InlineKeyboardButton]]:
    """Return the buttons under the code prompt: a new code, and the ways out."""
    return [
        [InlineKeyboardButton(context._(RESEND_LABEL), callback_data="verify:resend")],
        *nav_rows(context),
    ]


async def _code_problem(update: Update, context: BotContext, problem: str) -> None:
    """Say what was wrong with a typed code in the prompt itself (the typed code was deleted,
    so the prompt is the chat's last message); the prompt keeps its buttons."""
    record = flow_record(context)
    phone = scratch(context).get("code_phone", "")
    text = f"{problem}\n\n" + context._(CODE_SENT).format(phone=phone)
    context.edit_target = record["msgs"][-1] if record and record["msgs"] else None
    await send_step(update, context, text, code_keyboard(context), fresh=True)


#: Returned by :func:`account_of_own_contact` when it already answered the user.
ANSWERED = object()


async def account_of_own_contact(update: Update, context: BotContext) -> object:
    """Return the account of the user's own shared contact (None if there is none), or
    :data:`ANSWERED` if the contact is not theirs or the wallet is down (already told)."""
    message = update.message
    contact = message.contact
    if contact.user_id != update.effective_user.id or message.forward_origin is not None:
        await message.reply_text(context._(NOT_OWN_CONTACT))
        return ANSWERED
    if not contact.phone_number:
        # Handled again after a restart: the inbox never keeps the number (DESIGN 6.3).
        await message.reply_text(context._(SHARE_AGAIN), reply_markup=contact_keyboard(context))
        return ANSWERED
    record = flow_record(context)
    if record is not None:
        record.pop("reply_kb", None)
    await message.reply_text(context._(NUMBER_RECEIVED), reply_markup=ReplyKeyboardRemove())
    try:
        return await context.backend.account_by_phone(normalize_phone(contact.phone_number))
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return ANSWERED


async def contact_shared(update: Update, context: BotContext) -> object:
    """Check the shared contact is the user's own, find the account, send a code."""
    account = await account_of_own_contact(update, context)
    if account is ANSWERED:
        return None
    if account is None:
        await send_step(update, context, context._(NO_ACCOUNT), human_rows(context))
        return END
    return await _send_code(update, context, account.id, first=True)


async def contact_text(update: Update, context: BotContext) -> object:
    """Text while waiting for the contact: "⬅️ Back" ends the check; else re-ask (a human is
    reached from the keyboard's 🙋 button before this step sees it)."""
    typed = update.message.text.strip()
    if typed in (context._(BACK_LABEL), context._(REFUSE_LABEL), BACK_LABEL, REFUSE_LABEL):
        record = flow_record(context)
        if record is not None:
            record.pop("reply_kb", None)
        await update.message.reply_text(context._(REFUSED), reply_markup=ReplyKeyboardRemove())
        await show_main_menu(update, context)
        return END
    await update.effective_message.reply_text(
        context._(USE_THE_BUTTON), reply_markup=contact_keyboard(context)
    )
    return None


LINKED = N_("✅ Your Telegram is now linked to the U-Pay account {name} ({phone}).")
LINK_UNKNOWN = N_(
    "This link is not valid. Please open it again from the U-Pay app (Me → Help → Telegram)."
)
LINK_EXPIRED = N_("This link has expired. Please open a new one from the U-Pay app.")
LINK_USED = N_("This link was already used. Please open a new one from the U-Pay app.")
LINK_OTHER_USER = N_(
    "This link was made for another Telegram account. Please open it from the U-Pay app on "
    "your own phone."
)


async def link_from_app(update: Update, context: BotContext) -> None:
    """``/start link_<token>``: link this Telegram user to the account the app vouched for."""
    user = update.effective_user
    token = (context.args[0] if context.args else "")[len("link_") :][:64]
    try:
        account = await context.backend.redeem_link_token(token, user.id)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return
    except NotFound:
        await send_step(update, context, context._(LINK_UNKNOWN), human_rows(context))
        return
    except NotEligible as exc:
        text = {"expired": LINK_EXPIRED, "used": LINK_USED, "other_user": LINK_OTHER_USER}.get(
            exc.reason, LINK_UNKNOWN
        )
        await send_step(update, context, context._(text), human_rows(context))
        return
    await context.repos.users.set_wallet_account(user.id, account.id)
    await context.repos.verifications.verified(user.id, account.id)
    await context.repos.audit.record(user.id, "account.link", account.id, {"via": "app"})
    text = context._(LINKED).format(name=account.display_name, phone=account.phone_masked)
    await show_main_menu(update, context, text)


def link_handlers() -> list:
    """Return the deep-link handler (before the plain /start)."""
    return [
        CommandHandler(
            "start", link_from_app, filters=f.ChatType.PRIVATE & f.Regex(r"^/start link_\S+")
        )
    ]


def verify_states(*continuations: Continuation) -> dict[object, list]:
    """Return the identity-check states for a flow; after the check it continues with the
    continuation that :func:`require_verified` was given (one of ``continuations``)."""
    by_name = {then.__name__: then for then in continuations}

    async def code_typed(update: Update, context: BotContext) -> object:
        """Check a typed code (deleted from the chat at once)."""
        message = update.message
        typed = re.sub(r"\D", "", normalize_input(message.text or ""))
        with contextlib.suppress(BadRequest):
            await message.delete()
        user_id = update.effective_user.id
        repos = context.repos
        state = await repos.verifications.get(user_id)
        if state.locked():
            expect_numbers(context, None)
            return await _locked_out(update, context, state.locked_until or 0)
        if len(typed) != 6:
            await _code_problem(update, context, context._(CODE_FORMAT))
            return None
        if state.code_expired():
            await _code_problem(update, context, context._(CODE_EXPIRED))
            return None
        try:
            good = await context.backend.check_code(state.account_id, typed)
        except NotFound:
            expect_numbers(context, None)
            return await account_gone(update, context)
        except Unavailable as exc:
            await wallet_down(update, context, exc)
            return None
        if not good:
            state = await repos.verifications.wrong_code(user_id, LOCKOUT_SECONDS)
            if state.locked():
                expect_numbers(context, None)
                await repos.audit.record(user_id, "verify.locked", user_id)
                return await _locked_out(update, context, state.locked_until or 0)
            if state.tries_left == 0:
                await _code_problem(update, context, context._(CODE_EXPIRED))
                return None
            wrong = context.ngettext(
                "❌ That code is not right. {tries} try left.",
                "❌ That code is not right. {tries} tries left.",
                state.tries_left,
            ).format(tries=context.tr.number(state.tries_left))
            await _code_problem(update, context, wrong)
            return None
        expect_numbers(context, None)
        await repos.verifications.verified(user_id, state.account_id)
        await repos.users.set_wallet_account(user_id, state.account_id)
        if context.user_record is not None:
            context.user_record = await repos.users.get(user_id)
        await repos.audit.record(user_id, "verify.ok", user_id)
        # One message: the code prompt above (the typed code is gone) becomes "✅ Verified"
        # and the step the user came for; its resend / cancel buttons go with it.
        record = flow_record(context)
        context.edit_target = record["msgs"][-1] if record and record["msgs"] else None
        try:
            account = await context.backend.get_account(state.account_id)
            context.step_prefix = context._(VERIFIED).format(
                name=escape(account.display_name), phone=account.phone_masked
            )
        except Unavailable:
            pass
        then = by_name.get(scratch(context).pop("after_verify", ""), continuations[0])
        result = await then(update, context, state.account_id)
        if context.step_prefix:  # the step said nothing (e.g. the wallet's cooldown)
            await context.bot.send_message(update.effective_chat.id, context.step_prefix)
            context.step_prefix = None
        return result

    async def resend(update: Update, context: BotContext) -> object:
        """Send a new code unless the cooldown is still running."""
        query = update.callback_query
        state = await context.repos.verifications.get(update.effective_user.id)
        wait = (state.resend_after or 0) - time.time()
        if wait > 0:
            await query.answer(context._(RESEND_WAIT).format(seconds=int(wait) + 1))
            return None
        await query.answer()
        return await _send_code(update, context, state.account_id, first=False)

    return {
        Verify.CONTACT: [
            MessageHandler(f.CONTACT, contact_shared),
            not_step_input(f.TEXT & ~f.COMMAND, contact_text),
        ],
        Verify.CODE: [
            MessageHandler(f.TEXT & ~f.COMMAND, code_typed),
            CallbackQueryHandler(resend, pattern=r"^verify:resend$"),
        ],
    }
