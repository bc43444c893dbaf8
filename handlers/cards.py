"""Bank cards: see the bound cards (masked), unbind one, bind a new one.

A new card is typed only on the wallet's secure page, opened from a button with a one-time
session; the bot then asks for the amount of the small test deposit the bank received.

```mermaid
stateDiagram-v2
    [*] --> verify: menu / /cards
    verify --> list: verified
    list --> confirm_unbind: unbind a card
    confirm_unbind --> [*]: unbound
    list --> waiting_for_card: add a card (secure page)
    waiting_for_card --> deposit: card entered on the page
    deposit --> [*]: bound / failed
    deposit --> deposit: wrong amount (tries left)
```
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from telegram import InlineKeyboardButton, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler
from telegram.ext import filters as f

from tgbot.backend.base import Binding, NotEligible, NotFound, Unavailable
from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.text import escape, normalize_input

from .common import (
    END,
    EXPIRED_TEXT,
    GuidedFlow,
    add_menu_entry,
    answer_button,
    expect_numbers,
    main_menu_row,
    nav_rows,
    scratch,
    send_step,
)
from .verify import human_rows, require_verified, verify_states, wallet_down

LABEL = N_("💳 Bank cards")
DESCRIPTION = N_("see, unbind or add a bank card")
CARDS = N_("Your bound cards:")
NO_CARDS = N_("You have no bound cards.")
CARD_LINE = N_("{bank} ({kind}) •••• {last4}")
DEBIT = N_("debit")
CREDIT = N_("credit")
UNBIND_LABEL = N_("✖️ Unbind {bank} •••• {last4}")
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
NOT_YET = N_("I do not see a card yet. Please finish on the secure page first.")
ASK_DEPOSIT = N_(
    "We sent a small test deposit (less than 1.00) to your {bank} card •••• {last4}. Check "
    "the card's statement or bank app and type the amount here, e.g. 0.37."
)
BAD_AMOUNT = N_("Please type the amount as a number between 0.01 and 0.99, e.g. 0.37.")
WRONG_DEPOSIT = N_("That is not the amount we sent. {tries} tries left.")
BOUND = N_("✅ Your {bank} card •••• {last4} is now bound to your account.")
BIND_FAILED = N_("The card could not be bound: {reason}.")
REASONS = {
    "already_bound": N_("this card is already bound to an account"),
    "bank_refused": N_("the bank refused the card"),
    "too_many_tries": N_("too many wrong deposit amounts"),
    "expired": N_("the secure session expired"),
}
OTHER_REASON = N_("the wallet refused it")

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


async def cards_start(update: Update, context: BotContext) -> object:
    """Start: check who the user is, then list the cards."""
    await answer_button(update, context)
    return await require_verified(update, context, list_cards)


async def list_cards(update: Update, context: BotContext, account_id: str) -> object:
    """Show the bound cards (masked) with unbind buttons and "add a card"."""
    try:
        cards = await context.backend.list_cards(account_id)
    except Unavailable:
        await wallet_down(update, context)
        return None
    scratch(context)["cards"] = {c.id: [c.bank, c.last4] for c in cards}
    lines = [context._(CARDS) if cards else context._(NO_CARDS)]
    rows = []
    for card in cards:
        kind_label = CREDIT if card.kind == "credit" else DEBIT
        kind = context._(kind_label)
        lines.append(
            "• " + context._(CARD_LINE).format(bank=escape(card.bank), kind=kind, last4=card.last4)
        )
        label = context._(UNBIND_LABEL).format(bank=card.bank, last4=card.last4)
        rows.append([InlineKeyboardButton(label, callback_data=f"cards:unbind:{card.id}")])
    rows.append([InlineKeyboardButton(context._(ADD_LABEL), callback_data="cards:add")])
    await send_step(update, context, "\n".join(lines), [*rows, *nav_rows(context)], edit=False)
    return Cards.LIST


async def ask_unbind(update: Update, context: BotContext) -> object:
    """Ask to confirm unbinding one of the user's own cards."""
    query = update.callback_query
    card_id = query.data.split(":", 2)[2]
    card = scratch(context).get("cards", {}).get(card_id)
    if card is None:  # not one of the cards shown to this user: forged or stale
        await query.answer(context._(EXPIRED_TEXT))
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
    try:
        await context.backend.unbind_card(account_id, card_id, f"unbind:{user_id}:{card_id}")
    except (NotEligible, NotFound) as exc:
        text = context._(CANNOT_UNBIND).format(reason=_reason(context, exc.reason))
        await send_step(update, context, text, human_rows(context))
        return END
    except Unavailable:
        await wallet_down(update, context)
        return None
    await context.repos.audit.record(user_id, "card.unbind", account_id, {"last4": last4})
    await send_step(
        update,
        context,
        context._(UNBOUND).format(bank=escape(bank), last4=last4),
        [main_menu_row(context)],
    )
    return END


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
        binding = await context.backend.start_binding(
            account_id, f"bind:{user_id}:{update.update_id}"
        )
    except Unavailable:
        await wallet_down(update, context)
        return None
    scratch(context)["binding"] = binding.id
    keyboard = [
        [InlineKeyboardButton(context._(SECURE_PAGE_LABEL), url=binding.secure_url)],
        [InlineKeyboardButton(context._(ENTERED_LABEL), callback_data="cards:entered")],
        *nav_rows(context),
    ]
    await send_step(update, context, context._(OPEN_SECURE), keyboard)
    return Cards.WAITING


async def card_entered(update: Update, context: BotContext) -> object:
    """Check the binding: ask for the deposit once the card was entered."""
    query = update.callback_query
    account_id = context.user_record.wallet_account_id
    try:
        binding = await context.backend.get_binding(account_id, scratch(context)["binding"])
    except Unavailable:
        await query.answer()
        await wallet_down(update, context)
        return None
    if binding.status == "waiting_for_card":
        await query.answer(context._(NOT_YET), show_alert=True)
        return None
    await query.answer()
    return await _after_binding_change(update, context, binding)


async def _after_binding_change(update: Update, context: BotContext, binding: Binding) -> object:
    card = binding.card
    bank, last4 = (escape(card.bank), card.last4) if card else ("?", "????")
    if binding.status == "awaiting_deposit":
        expect_numbers(context, "amount")
        await send_step(
            update,
            context,
            context._(ASK_DEPOSIT).format(bank=bank, last4=last4),
            nav_rows(context),
            edit=False,
        )
        return Cards.DEPOSIT
    if binding.status == "bound":
        await context.repos.audit.record(
            update.effective_user.id, "card.bind", binding.id, {"last4": last4}
        )
        await send_step(
            update,
            context,
            context._(BOUND).format(bank=bank, last4=last4),
            [main_menu_row(context)],
            edit=False,
        )
        return END
    text = context._(BIND_FAILED).format(reason=_reason(context, binding.reason))
    await send_step(update, context, text, human_rows(context), edit=False)
    return END


_AMOUNT = re.compile(r"^[¥$]?\s*(\d{0,1}[.,]\d{1,2}|\d)\s*(元|块|yuan|cny)?$", re.IGNORECASE)


async def deposit_typed(update: Update, context: BotContext) -> object:
    """Check the deposit amount the user typed."""
    text = normalize_input(update.message.text).replace("，", ",")
    match = _AMOUNT.match(text)
    try:
        amount = Decimal(match.group(1).replace(",", ".")) if match else None
    except InvalidOperation:
        amount = None
    if amount is None or not Decimal("0.01") <= amount <= Decimal("0.99"):
        await update.message.reply_text(context._(BAD_AMOUNT))
        return None
    account_id = context.user_record.wallet_account_id
    try:
        binding = await context.backend.confirm_deposit(
            account_id, scratch(context)["binding"], amount
        )
    except Unavailable:
        await wallet_down(update, context)
        return None
    if binding.status == "awaiting_deposit":
        tries = context.tr.number(binding.tries_left or 0)
        await update.message.reply_text(context._(WRONG_DEPOSIT).format(tries=tries))
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
                CallbackQueryHandler(back_to_list, pattern=r"^cards:back$"),
            ],
            Cards.WAITING: [CallbackQueryHandler(card_entered, pattern=r"^cards:entered$")],
            Cards.DEPOSIT: [MessageHandler(f.TEXT & ~f.COMMAND, deposit_typed)],
        },
    )
