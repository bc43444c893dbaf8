"""Bank cards: see the bound cards (masked), unbind one, bind a new one.

A new card is typed only on the wallet's secure page, opened from a button with a one-time
session; the bot then asks for the amount of the small test deposit the bank received.

```mermaid
stateDiagram-v2
    [*] --> verify: menu / /cards
    verify --> list: verified
    list --> confirm_unbind: unbind a card
    confirm_unbind --> [*]: unbound
    verify --> [*]: frozen account -> the cards, why, a human
    confirm_unbind --> confirm_unbind: outcome unknown -> Check again (same key)
    list --> waiting_for_card: add a card (secure page)
    waiting_for_card --> deposit: card entered on the page (polled by the bot, or the button)
    deposit --> [*]: bound / failed
    deposit --> deposit: wrong amount (tries left)
```
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from telegram import InlineKeyboardButton, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler
from telegram.ext import filters as f

from services.wording import add_menu_entry, translator_for
from tgbot import facts
from tgbot.backend.base import (
    Binding,
    Frozen,
    Locked,
    NotEligible,
    NotFound,
    OutcomeUnknown,
    Unavailable,
)
from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.keyboard import Keyboard
from tgbot.text import escape, normalize_input

from .common import (
    END,
    FLOW_KEY,
    SCRATCH_KEY,
    GuidedFlow,
    answer_button,
    answer_expired,
    clear_flow_data,
    expect_numbers,
    main_menu_row,
    nav_rows,
    scratch,
    send_step,
    user_in_sync,
)
from .verify import account_gone, human_rows, require_verified, verify_states, wallet_down

LABEL = N_("💳 Bank cards")
DESCRIPTION = N_("see, unbind or add a bank card")
CARDS = N_("Your bound cards:")
NO_CARDS = N_("You have no bound cards.")
CARD_LINE = N_("{bank} ({kind}) •••• {last4}")
DEBIT = N_("debit")
CREDIT = N_("credit")
UNBIND_LABEL = N_("➖ Unbind {bank} •••• {last4}")
ADD_LABEL = N_("➕ Add a card")
CONFIRM_UNBIND = N_("Unbind {bank} •••• {last4}? You can bind it again later.")
YES_UNBIND = N_("Yes, unbind it")
UNBOUND = N_("✅ {bank} •••• {last4} is no longer bound to your account.")
CANNOT_UNBIND = N_("This card cannot be unbound right now ({reason}). A human agent can help.")
OPEN_SECURE = N_(
    "Tap the button to open U-Pay's secure page and enter your new card there. Never type a "
    "card number in this chat. When you are done, come back and tap “I have entered my card”."
)
SECURE_PAGE_LABEL = N_("🔒 Open the secure card page")
ENTERED_LABEL = N_("✅ I have entered my card")
# TRANSLATORS: callback answer (max 200)
NOT_YET = N_("I do not see a card yet. Please finish on the secure page first.")
ASK_DEPOSIT = N_(
    "To check that the card is yours, U-Pay sent a test deposit to your {bank} card •••• "
    "{last4}. {deposit_fact} Type the exact amount here, e.g. {example}."
)
BAD_AMOUNT = N_("Please type the amount as a number between {low} and {high}, e.g. {example}.")
BOUND = N_("✅ Your {bank} card •••• {last4} is now bound to your account.")
BIND_FAILED = N_("The card could not be bound: {reason}.")
TRY_ANOTHER_LABEL = N_("➕ Try another card")
REASONS = {
    "already_bound": N_("this card is already bound to an account"),
    "bank_refused": N_("the bank refused the card"),
    "too_many_tries": N_("too many wrong deposit amounts"),
    "expired": N_("the secure session expired"),
}
OTHER_REASON = N_("U-Pay refused it")
FROZEN_CARDS = N_(
    "🧊 Your account is frozen, so no card can be added or unbound until support unfreezes "
    "it. This protects your money if someone else has your phone. A human agent can check "
    "your account with you."
)
LOCKED_CARDS = N_(
    "🔒 U-Pay does not allow card changes while your account is locked. Unlock it "
    "first with /password, or talk to a human."
)
UNBIND_UNSURE = N_(
    "The U-Pay service did not confirm in time whether {bank} •••• {last4} was unbound. Tap "
    "“🔄 Check again”: it cannot unbind anything twice."
)
CHECK_AGAIN_LABEL = N_("🔄 Check again")
SESSION_GONE = N_(
    "This card session is no longer valid. Tap “➕ Add a card” in /cards to start again."
)
DEPOSIT_UNSURE = N_(
    "The U-Pay service did not confirm in time whether the amount was right. Please type it "
    "again in a moment."
)

_LOGGER = logging.getLogger(__name__)

add_menu_entry("menu:cards", LABEL, DESCRIPTION, order=20)


class Cards(StrEnum):
    """States of the card flow (besides the shared identity check)."""

    LIST = "cards:list"
    CONFIRM = "cards:confirm"
    WAITING = "cards:waiting"
    DEPOSIT = "cards:deposit"


def _reason(context: BotContext, reason: str | None) -> str:
    label = REASONS.get(reason or "", OTHER_REASON)
    return context._(label)


def _failed_view(context: BotContext, binding: Binding) -> tuple[str, list]:
    """A binding that failed: why, and another card to try (a human, the menu)."""
    text = context._(BIND_FAILED).format(reason=_reason(context, binding.reason))
    rows = [[InlineKeyboardButton(context._(TRY_ANOTHER_LABEL), callback_data="cards:add")]]
    return text, [*rows, *human_rows(context)]


def _deposit_text(context: BotContext, bank: str, last4: str) -> str:
    return context._(ASK_DEPOSIT).format(
        bank=bank,
        last4=last4,
        deposit_fact=facts.micro_deposit(context.tr),
        example=context.tr.number(facts.DEPOSIT_EXAMPLE),
    )


def _bad_amount(context: BotContext) -> str:
    low, high = facts.DEPOSIT_RANGE
    return context._(BAD_AMOUNT).format(
        low=context.tr.money(low, facts.DEPOSIT_CURRENCY),
        high=context.tr.money(high, facts.DEPOSIT_CURRENCY),
        example=context.tr.number(facts.DEPOSIT_EXAMPLE),
    )


async def cards_start(update: Update, context: BotContext) -> object:
    """Start: check who the user is, then list the cards."""
    await answer_button(update, context)
    return await require_verified(update, context, list_cards)


async def list_cards(update: Update, context: BotContext, account_id: str) -> object:
    """Show the bound cards (masked) with unbind buttons and "add a card"; a frozen account
    sees its cards without them, with why and a human."""
    try:
        account = await context.backend.get_account(account_id)
        cards = await context.backend.list_cards(account_id)
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    scratch(context)["cards"] = {c.id: [c.bank, c.last4] for c in cards}
    lines = [context._(CARDS) if cards else context._(NO_CARDS)]
    for card in cards:
        kind_label = CREDIT if card.kind == "credit" else DEBIT
        kind = context._(kind_label)
        lines.append(
            "• " + context._(CARD_LINE).format(bank=escape(card.bank), kind=kind, last4=card.last4)
        )
    if account.status == "frozen":
        # The bot refuses card changes itself: no unbind or add buttons to press.
        lines += ["", context._(FROZEN_CARDS)]
        await send_step(update, context, "\n".join(lines), human_rows(context))
        return END
    rows = []
    for card in cards:
        label = context._(UNBIND_LABEL).format(bank=card.bank, last4=card.last4)
        rows.append([InlineKeyboardButton(label, callback_data=f"cards:unbind:{card.id}")])
    rows.append([InlineKeyboardButton(context._(ADD_LABEL), callback_data="cards:add")])
    await send_step(update, context, "\n".join(lines), [*rows, *nav_rows(context)])
    return Cards.LIST


async def _check_changeable(context: BotContext, account_id: str) -> None:
    """Raise Frozen, as the wallet would, if the account is frozen (the bot does not rely on
    the wallet alone to refuse card changes)."""
    if (await context.backend.get_account(account_id)).status == "frozen":
        raise Frozen("frozen")


async def _refused(update: Update, context: BotContext, error: Exception) -> object:
    """Answer a card change the wallet refused because of the account's state (423)."""
    text = FROZEN_CARDS if isinstance(error, Frozen) else LOCKED_CARDS
    await send_step(update, context, context._(text), human_rows(context))
    return END


async def ask_unbind(update: Update, context: BotContext) -> object:
    """Ask to confirm unbinding one of the user's own cards."""
    query = update.callback_query
    card_id = query.data.split(":", 2)[2]
    card = scratch(context).get("cards", {}).get(card_id)
    if card is None:  # not one of the cards shown to this user: forged or stale
        await answer_expired(update, context)
        return None
    await query.answer()
    scratch(context)["unbind"] = card_id
    keyboard = [
        [InlineKeyboardButton(context._(YES_UNBIND), callback_data="cards:yes")],
        *nav_rows(context, back="cards:back"),
    ]
    text = context._(CONFIRM_UNBIND).format(bank=escape(card[0]), last4=card[1])
    await send_step(update, context, text, keyboard)
    return Cards.CONFIRM


async def unbind(update: Update, context: BotContext) -> object:
    """Unbind the confirmed card (after a fresh verification)."""
    await answer_button(update, context)
    return await require_verified(update, context, _unbind)


async def _unbind(update: Update, context: BotContext, account_id: str) -> object:
    data = scratch(context)
    card_id = data.get("unbind")
    bank, last4 = data.get("cards", {}).get(card_id, ["?", "????"])
    user_id = update.effective_user.id
    # The key names this unbind request (the confirming press), not the card: a card id the
    # wallet reuses later is a new request. "Check again" reuses it.
    key = data.setdefault("unbind_key", f"unbind:{user_id}:{update.update_id}")
    try:
        await _check_changeable(context, account_id)
        await context.backend.unbind_card(account_id, card_id, key)
    except (NotEligible, NotFound) as exc:
        text = context._(CANNOT_UNBIND).format(reason=_reason(context, exc.reason))
        await send_step(update, context, text, human_rows(context))
        return END
    except (Frozen, Locked) as exc:
        return await _refused(update, context, exc)
    except OutcomeUnknown:
        text = context._(UNBIND_UNSURE).format(bank=escape(bank), last4=last4)
        keyboard = [
            [InlineKeyboardButton(context._(CHECK_AGAIN_LABEL), callback_data="cards:recheck")],
            *human_rows(context),
        ]
        await send_step(update, context, text, keyboard)
        return Cards.CONFIRM
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    await context.repos.audit.record(user_id, "card.unbind", account_id, {"last4": last4})
    await send_step(
        update,
        context,
        context._(UNBOUND).format(bank=escape(bank), last4=last4),
        [main_menu_row(context)],
    )
    return END


async def recheck_unbind(update: Update, context: BotContext) -> object:
    """Ask the wallet again, with the same key, whether the card was unbound."""
    await answer_button(update, context)
    account_id = context.user_record.wallet_account_id if context.user_record else None
    if not account_id:
        return await require_verified(update, context, _unbind)
    return await _unbind(update, context, account_id)


async def back_to_list(update: Update, context: BotContext) -> object:
    """Go back to the card list."""
    await answer_button(update, context)
    return await require_verified(update, context, list_cards)


async def add_card(update: Update, context: BotContext) -> object:
    """Open a secure card-entry session (after a fresh verification)."""
    await answer_button(update, context)
    return await require_verified(update, context, _open_secure_page)


async def _open_secure_page(update: Update, context: BotContext, account_id: str) -> object:
    user_id = update.effective_user.id
    try:
        await _check_changeable(context, account_id)
        binding = await context.backend.start_binding(
            account_id, f"bind:{user_id}:{update.update_id}"
        )
    except (Frozen, Locked) as exc:
        return await _refused(update, context, exc)
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    scratch(context)["binding"] = binding.id
    keyboard = [
        [InlineKeyboardButton(context._(SECURE_PAGE_LABEL), url=binding.secure_url)],
        [InlineKeyboardButton(context._(ENTERED_LABEL), callback_data="cards:entered")],
        *nav_rows(context),
    ]
    await send_step(update, context, context._(OPEN_SECURE), keyboard)
    _watch_binding(context, update.effective_chat.id, user_id, account_id, binding.id)
    return Cards.WAITING


#: While the user is on the secure page the bot asks the wallet every this many seconds
#: whether the card was entered, and tells the user itself (the button is a shortcut).
BINDING_POLL_SECONDS = 3.0
#: ... for at most the secure session's lifetime.
BINDING_WATCH_SECONDS = 15 * 60.0


def _watch_binding(
    context: BotContext, chat_id: int, user_id: int, account_id: str, binding_id: str
) -> None:
    queue = context.job_queue
    if queue is None:
        return
    if getattr(context.application, "cluster", None) is not None:
        # Several workers: the duties holder watches every user on the secure page from the
        # database (watch_bindings), so the watch outlives this worker.
        return
    name = f"watch-binding:{user_id}"
    for job in queue.get_jobs_by_name(name):
        job.schedule_removal()
    data = {"chat": chat_id, "user": user_id, "account": account_id, "binding": binding_id}
    queue.run_repeating(
        watch_binding,
        interval=BINDING_POLL_SECONDS,
        first=BINDING_POLL_SECONDS,
        last=BINDING_WATCH_SECONDS,
        data=data,
        name=name,
    )


def _waits_for(app: Any, key: tuple[int, int], binding_id: str) -> bool:
    """Whether the user of ``key`` is still on the secure page of this binding."""
    flow = app.flows.get("cards")
    user_data = app.user_data.get(key[1]) or {}
    return (
        flow is not None
        and flow.state_of(key) == Cards.WAITING
        and (user_data.get(SCRATCH_KEY) or {}).get("binding") == binding_id
    )


async def watch_binding(context: BotContext) -> None:
    """Job: once the wallet shows the card entered on the secure page, move the user's flow
    on and tell them (ask for the deposit, or say bound / failed)."""
    job = context.job
    data = job.data
    app = context.application
    key = (data["chat"], data["user"])
    if not _waits_for(app, key, data["binding"]):
        job.schedule_removal()  # the user moved on (or pressed the button first)
        return
    try:
        binding = await app.backend.get_binding(data["account"], data["binding"])
    except (Unavailable, NotFound):
        return  # looked at again next time; the button still works
    if binding.status == "waiting_for_card":
        return
    job.schedule_removal()
    await _binding_moved(context, key, binding)


async def watch_bindings(context: BotContext) -> None:
    """Job of the duties holder with several workers: the watch of :func:`watch_binding` for
    every user on the secure page, found in the database (their flow state and scratch), so
    it does not depend on the worker that opened the page. The wallet is asked without
    holding the chat; a change is acted on holding it, with the flow as stored."""
    app = context.application
    flow = app.flows.get("cards")
    if flow is None:
        return
    now = time.time()
    for key, state in (await app.persistence.running_conversations(flow.name)).items():
        if state != Cards.WAITING:
            continue
        try:
            await _watch_stored(context, (int(key[0]), int(key[1])), now)
        except Exception:  # one user's trouble (Telegram, the database) never stops the others
            _LOGGER.exception("Watching a card binding failed; trying again in a moment")


async def _watch_stored(context: BotContext, key: tuple[int, int], now: float) -> None:
    app = context.application
    stored = await app.persistence.stored_user_data(key[1])
    binding_id = (stored.get(SCRATCH_KEY) or {}).get("binding")
    record = stored.get(FLOW_KEY)
    # As the one-process watch, for at most the secure session's lifetime.
    if not binding_id or record is None or now - record["last"] > BINDING_WATCH_SECONDS:
        return
    user = await app.repos.users.get(key[1])
    if user is None or not user.wallet_account_id:
        return
    try:
        binding = await app.backend.get_binding(user.wallet_account_id, binding_id)
    except (Unavailable, NotFound):
        return  # looked at again next time; the button still works
    if binding.status == "waiting_for_card":
        return
    async with user_in_sync(app, key[1]):
        if _waits_for(app, key, binding_id):  # the user may have pressed the button meanwhile
            await _binding_moved(context, key, binding)


async def _binding_moved(context: BotContext, key: tuple[int, int], binding: Binding) -> None:
    """Move the flow of a user whose card was entered on, and tell them."""
    app = context.application
    chat_id, user_id = key
    flow = app.flows["cards"]
    user_data = app.user_data.get(user_id) or {}
    context.tr = await translator_for(context, user_id)
    card = binding.card
    bank, last4 = (escape(card.bank), card.last4) if card else ("?", "????")
    record = user_data.get(FLOW_KEY)
    if binding.status == "awaiting_deposit":
        flow.move_to(Cards.DEPOSIT, key)
        if record is not None:
            record["expects"] = "amount"
        text = _deposit_text(context, bank, last4)
        markup = Keyboard(nav_rows(context))
    elif binding.status == "bound":
        flow.end_for(key)
        clear_flow_data(app, user_id)
        record = None
        await app.repos.audit.record(user_id, "card.bind", binding.id, {"last4": last4})
        text = context._(BOUND).format(bank=bank, last4=last4)
        markup = Keyboard([main_menu_row(context)])
    else:
        # Refused by the bank (or another reason): the flow stays, another card is a tap away.
        flow.move_to(Cards.LIST, key)
        text, rows = _failed_view(context, binding)
        markup = Keyboard(rows)
    stale = list(record["msgs"]) if record is not None else []
    message = await app.bot.send_message(chat_id, text, reply_markup=markup)
    # The secure-page step above is over: its buttons go.
    for message_id in stale:
        with contextlib.suppress(BadRequest):
            await app.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
    if record is not None:
        record["msgs"] = [message.message_id]
    app.mark_data_for_update_persistence(user_ids=user_id)


async def card_entered(update: Update, context: BotContext) -> object:
    """Check the binding: ask for the deposit once the card was entered."""
    query = update.callback_query
    account_id = context.user_record.wallet_account_id
    try:
        binding = await context.backend.get_binding(account_id, scratch(context)["binding"])
    except NotFound:
        await query.answer()
        await send_step(update, context, context._(SESSION_GONE), human_rows(context))
        return END
    except Unavailable as exc:
        await query.answer()
        await wallet_down(update, context, exc)
        return None
    if binding.status == "waiting_for_card":
        await answer_button(update, context, context._(NOT_YET))
        return None
    await answer_button(update, context)
    return await _after_binding_change(update, context, binding)


async def _after_binding_change(update: Update, context: BotContext, binding: Binding) -> object:
    card = binding.card
    bank, last4 = (escape(card.bank), card.last4) if card else ("?", "????")
    if binding.status == "awaiting_deposit":
        expect_numbers(context, "amount")
        await send_step(update, context, _deposit_text(context, bank, last4), nav_rows(context))
        return Cards.DEPOSIT
    expect_numbers(context, None)
    if binding.status == "bound":
        await context.repos.audit.record(
            update.effective_user.id, "card.bind", binding.id, {"last4": last4}
        )
        await send_step(
            update,
            context,
            context._(BOUND).format(bank=bank, last4=last4),
            [main_menu_row(context)],
        )
        return END
    text, rows = _failed_view(context, binding)
    await send_step(update, context, text, rows)
    return Cards.LIST


async def deposit_asked(update: Update, context: BotContext) -> object:
    """The "I have entered my card" button after the bot already asked for the deposit."""
    await answer_button(update, context, _bad_amount(context))
    return None


_AMOUNT = re.compile(r"^[¥$]?\s*(\d{0,1}[.,]\d{1,2}|\d)\s*(元|块|yuan|cny)?$", re.IGNORECASE)


async def deposit_typed(update: Update, context: BotContext) -> object:
    """Check the deposit amount the user typed."""
    text = normalize_input(update.message.text).replace("，", ",")
    match = _AMOUNT.match(text)
    try:
        amount = Decimal(match.group(1).replace(",", ".")) if match else None
    except InvalidOperation:
        amount = None
    low, high = facts.DEPOSIT_RANGE
    if amount is None or not low <= amount <= high:
        await update.message.reply_text(_bad_amount(context))
        return None
    account_id = context.user_record.wallet_account_id
    binding_id = scratch(context)["binding"]
    try:
        binding = await context.backend.confirm_deposit(account_id, binding_id, amount)
    except (Frozen, Locked) as exc:
        expect_numbers(context, None)
        return await _refused(update, context, exc)
    except NotFound:
        expect_numbers(context, None)
        await send_step(update, context, context._(SESSION_GONE), human_rows(context))
        return END
    except NotEligible:  # card_not_entered: the page was not finished after all
        await update.message.reply_text(context._(NOT_YET))
        return None
    except OutcomeUnknown:
        # Maybe checked, maybe not: the binding's state tells (bound or failed ends here).
        try:
            binding = await context.backend.get_binding(account_id, binding_id)
        except Unavailable:
            binding = None
        if binding is None or binding.status == "awaiting_deposit":
            await update.message.reply_text(context._(DEPOSIT_UNSURE))
            return None
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    if binding.status == "awaiting_deposit":
        left = binding.tries_left or 0
        wrong = context.ngettext(
            "That is not the amount we sent. {tries} try left.",
            "That is not the amount we sent. {tries} tries left.",
            left,
        )
        await update.message.reply_text(wrong.format(tries=context.tr.number(left)))
        return None
    return await _after_binding_change(update, context, binding)


def cards_flow() -> GuidedFlow:
    """Build the bank-card flow."""
    return GuidedFlow(
        name="cards",
        entry_points=[
            CallbackQueryHandler(cards_start, pattern=r"^menu:cards$"),
            CommandHandler("cards", cards_start, filters=f.ChatType.PRIVATE),
        ],
        states={
            **verify_states(list_cards, _unbind, _open_secure_page),
            Cards.LIST: [
                CallbackQueryHandler(ask_unbind, pattern=r"^cards:unbind:[\w-]{1,40}$"),
                CallbackQueryHandler(add_card, pattern=r"^cards:add$"),
            ],
            Cards.CONFIRM: [
                CallbackQueryHandler(unbind, pattern=r"^cards:yes$"),
                CallbackQueryHandler(recheck_unbind, pattern=r"^cards:recheck$"),
                CallbackQueryHandler(back_to_list, pattern=r"^cards:back$"),
            ],
            Cards.WAITING: [CallbackQueryHandler(card_entered, pattern=r"^cards:entered$")],
            Cards.DEPOSIT: [
                MessageHandler(f.TEXT & ~f.COMMAND, deposit_typed),
                # The watcher may have asked for the deposit before the button was pressed.
                CallbackQueryHandler(deposit_asked, pattern=r"^cards:entered$"),
            ],
        },
        menu="menu:cards",
        owns=("cards",),
    )
