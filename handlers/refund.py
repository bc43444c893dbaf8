"""Refund requests, the user's refund list, and refund progress notifications.

From a transaction's detail, the menu (refundable transactions) or a deep link
``/start refund_<txid>``: the wallet says whether and how much can be refunded; the user picks
a reason and the amount (all, or part of what remains), confirms, and gets a reference. Status
changes reach the user in their language through the durable outbox, once per change.

```mermaid
stateDiagram-v2
    [*] --> verify: detail button / menu / /start refund_TX / /refunds
    verify --> choose_tx: from the menu
    choose_tx --> reason
    verify --> reason: a transaction given (eligible)
    verify --> [*]: not eligible -> reason, human, menu
    reason --> reason_text: "other"
    reason --> amount
    reason_text --> amount
    amount --> confirm
    confirm --> [*]: refund created (reference)
    confirm --> unknown: the wallet did not confirm in time
    unknown --> [*]: Check again (same key) -> reference, or why not
```
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from telegram import InlineKeyboardButton, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler
from telegram.ext import filters as f

from services.refunds import REASON_LIMIT, _payments_of
from services.wording import TO_SOURCE, add_menu_entry, destination_text, tx_name, tx_title
from tgbot import facts
from tgbot.backend.base import (
    Frozen,
    Locked,
    NotEligible,
    NotFound,
    OutcomeUnknown,
    Unavailable,
)
from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.text import escape, normalize_input, truncate
from tgbot.txquery import match_transactions, parse_amount, parse_query

from .common import (
    END,
    GuidedFlow,
    answer_button,
    answer_expired,
    expect_numbers,
    human_button,
    main_menu_row,
    nav_button,
    nav_rows,
    scratch,
    send_step,
)
from .lookup import tx_button
from .verify import account_gone, human_rows, require_verified, verify_states, wallet_down

_LOGGER = logging.getLogger(__name__)

LABEL = N_("↩️ Refunds")
DESCRIPTION = N_("ask for a refund or see your refunds")
CHOOSE_TX = N_("Which payment do you want a refund for? (paid in the last 30 days)")
NO_REFUNDABLE = N_("You have no payments in the last 30 days that can be refunded.")
MY_REFUNDS_LABEL = N_("📋 My refunds")
NOT_ELIGIBLE = N_("Sorry, I cannot request a refund for this. {reason}")
INELIGIBLE_REASONS = {
    "not_paid": N_("It was not paid: it failed or is still processing."),
    "window_over": N_("The 30-day refund window is over."),
    "fully_refunded": N_("It has already been refunded in full."),
    "merchant_rules": N_(
        "The merchant does not accept refunds through U-Pay; please contact the merchant."
    ),
    "not_a_payment": N_(
        "Transfers and top-ups cannot be refunded through U-Pay. For a transfer, ask the "
        "person you paid to send the money back."
    ),
    "refund_in_progress": N_("A refund for it is already in progress (see /refunds)."),
    "amount_too_large": N_("The amount is more than what is left to refund."),
    "invalid_amount": N_("The amount is not valid."),
    "invalid_reason": N_("The reason is empty or too long."),
}
OTHER_INELIGIBLE = N_("U-Pay does not allow it right now.")
ASK_REASON = N_(
    "Refund for your payment to {merchant}: {amount}, {when}. Why do you want a refund?"
)
REASONS = {
    "not_received": N_("Not received"),
    "wrong_amount": N_("Charged the wrong amount"),
    "duplicate": N_("Charged twice"),
    "returned": N_("I returned the item"),
    "other": N_("Other reason"),
}
ASK_REASON_TEXT = N_("Please describe the reason in a few words (up to {limit} characters).")
REASON_TOO_LONG = N_("Please keep the reason under {limit} characters.")
ASK_AMOUNT = N_(
    "How much should be refunded? Up to {max}. Tap the button or type an amount, e.g. {example}."
)
ASK_AMOUNT_PARTLY = N_(
    "{refunded} of this payment was already refunded; {max} is left. How much should be "
    "refunded? Tap the button or type an amount, e.g. {example}."
)
FULL_LABEL = N_("Full amount: {amount}")
REST_LABEL = N_("All that is left: {amount}")
BAD_AMOUNT = N_("Please type an amount like {example}, more than 0 and at most {max}.")
CONFIRM = N_(
    "Please confirm your refund request:\n"
    "Payment: {merchant}, {when}\n"
    "Refund: <b>{amount}</b>, back to {destination}\n"
    "Reason: {reason}"
)
CONFIRM_LABEL = N_("✅ Request the refund")
CREATED = N_(
    "✅ Refund requested: {amount} for your payment to {merchant}, back to {destination}. "
    "Reference: <code>{id}</code>.\n"
    "{refund_review} I will tell you here when its status changes; /refunds shows all your "
    "refunds."
)
REFUND_UNSURE = N_(
    "The U-Pay service did not confirm in time whether your refund request went through. "
    "Tap “🔄 Check again”: it cannot create a second refund. If it went through, I will also "
    "tell you here when its status changes."
)
CHECK_AGAIN_LABEL = N_("🔄 Check again")
REFUND_FROZEN = N_(
    "U-Pay does not accept refund requests while your account is frozen or locked. A human "
    "agent can help you."
)
PAYMENT_GONE = N_("I cannot find this payment in your account any more.")
REFUNDS_HEAD = N_("Your refunds (times in {zone}):")
REFUNDS_EMPTY = N_("You have no refund requests yet.")
REFUND_LINE = N_("• {merchant}: {amount}, {status}\n  {when} · reference <code>{id}</code>")
REFUND_STATUS = {
    "submitted": N_("submitted"),
    "reviewing": N_("being reviewed"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "refunded": N_("refunded"),
}

add_menu_entry("menu:refund", LABEL, DESCRIPTION, order=50)


class RefundState(StrEnum):
    """States of the refund flow (besides the shared identity check)."""

    CHOOSE_TX = "refund:choose_tx"
    REASON = "refund:reason"
    REASON_TEXT = "refund:reason_text"
    AMOUNT = "refund:amount"
    CONFIRM = "refund:confirm"
    UNKNOWN = "refund:unknown"


def _start(context: BotContext, tx_id: str | None) -> None:
    data = scratch(context)
    data.clear()
    data["key"] = secrets.token_hex(8)  # one refund per run of this flow, however often sent
    if tx_id:
        data["tx"] = tx_id[:40]


async def from_detail(update: Update, context: BotContext) -> object:
    """Start from a transaction's "ask for a refund" button."""
    await answer_button(update, context)
    _start(context, update.callback_query.data.split(":", 2)[2])
    return await require_verified(update, context, check_transaction)


async def from_deep_link(update: Update, context: BotContext) -> object:
    """Start from ``/start refund_<txid>`` (e.g. a link in a receipt)."""
    payload = context.args[0] if context.args else ""
    _start(context, payload[len("refund_") :])
    return await require_verified(update, context, check_transaction)


async def from_menu(update: Update, context: BotContext) -> object:
    """Start from the menu: list the refundable payments."""
    await answer_button(update, context)
    _start(context, None)
    return await require_verified(update, context, choose_transaction)


async def from_search(update: Update, context: BotContext) -> object:
    """Start from typed text that asks for a refund ("上周五在京东买的鞋想退", "refund
    starbucks 94"): the payments it names (date, amount, merchant) are offered first."""
    text = update.effective_message.text or ""
    _start(context, None)
    scratch(context)["search"] = text[:200]
    return await require_verified(update, context, choose_transaction)


async def my_refunds(update: Update, context: BotContext) -> object:
    """``/refunds`` or the button: list the user's refunds."""
    await answer_button(update, context)
    _start(context, None)
    return await require_verified(update, context, list_refunds)


async def choose_transaction(update: Update, context: BotContext, account_id: str) -> object:
    """List recent payments that can still be refunded."""
    try:
        page = await context.backend.list_transactions(
            account_id, since=datetime.now(UTC) - timedelta(days=30), limit=50
        )
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    payments = [
        tx
        for tx in page.items
        if tx.kind == "payment" and tx.status in ("success", "partially_refunded")
    ]
    search = scratch(context).pop("search", None)
    if search and payments:
        found = match_transactions(parse_query(search, datetime.now(context.config.zone)), payments)
        if len(found) == 1:
            scratch(context)["tx"] = found[0].id
            return await check_transaction(update, context, account_id)
        payments = found or payments
    payments = payments[:8]
    my_refunds_row = [
        InlineKeyboardButton(context._(MY_REFUNDS_LABEL), callback_data="refund:mine")
    ]
    if not payments:
        await send_step(
            update, context, context._(NO_REFUNDABLE), [my_refunds_row, main_menu_row(context)]
        )
        return END
    rows = [[tx_button(context, tx)] for tx in payments]
    await send_step(
        update, context, context._(CHOOSE_TX), [*rows, my_refunds_row, *nav_rows(context)]
    )
    return RefundState.CHOOSE_TX


async def transaction_chosen(update: Update, context: BotContext) -> object:
    """A payment was picked from the list."""
    await answer_button(update, context)
    scratch(context)["tx"] = update.callback_query.data.split(":", 2)[2][:40]
    return await require_verified(update, context, check_transaction)


async def check_transaction(update: Update, context: BotContext, account_id: str) -> object:
    """Ask the wallet whether this payment can be refunded; then ask for the reason."""
    data = scratch(context)
    try:
        tx = await context.backend.get_transaction(account_id, data.get("tx", ""))
        eligibility = await context.backend.refund_eligibility(account_id, tx.id)
    except NotFound:  # not this user's (or gone): say nothing about it
        await send_step(update, context, context._(PAYMENT_GONE), human_rows(context))
        return END
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    if not eligibility.eligible:
        label = INELIGIBLE_REASONS.get(eligibility.reason or "", OTHER_INELIGIBLE)
        reason = context._(label)
        await send_step(
            update, context, context._(NOT_ELIGIBLE).format(reason=reason), human_rows(context)
        )
        return END
    # Scratch holds plain text (it is persisted); escaped where it is formatted.
    data.update(
        tx=tx.id,
        merchant=tx_name(context, tx),
        when=context.tr.when(tx.created_at, context.config.zone),
        currency=eligibility.currency,
        max=str(eligibility.refundable),
        paid=str(tx.amount),
        destination=destination_text(context, tx),
    )
    rows = [[nav_button(context, label, f"refund:reason:{key}")] for key, label in REASONS.items()]
    text = context._(ASK_REASON).format(
        merchant=escape(data["merchant"]),
        amount=context.tr.money(tx.amount, tx.currency),
        when=data["when"],
    )
    await send_step(update, context, text, [*rows, *nav_rows(context)])
    return RefundState.REASON


async def reason_chosen(update: Update, context: BotContext) -> object:
    """A preset reason, or "other" (then free text)."""
    query = update.callback_query
    key = query.data.split(":", 2)[2]
    if key not in REASONS:
        await answer_expired(update, context)
        return None
    await answer_button(update, context)
    if key == "other":
        await send_step(
            update,
            context,
            context._(ASK_REASON_TEXT).format(limit=REASON_LIMIT),
            nav_rows(context),
        )
        return RefundState.REASON_TEXT
    scratch(context)["reason"] = key
    return await ask_amount(update, context)


async def reason_typed(update: Update, context: BotContext) -> object:
    """The user's own reason (length-limited)."""
    text = normalize_input(update.message.text)
    if len(text) > REASON_LIMIT:
        await update.message.reply_text(context._(REASON_TOO_LONG).format(limit=REASON_LIMIT))
        return None
    scratch(context)["reason"] = "other"
    scratch(context)["reason_text"] = text
    return await ask_amount(update, context)


def _example(data: dict) -> str:
    """An amount the user could type: about half of what is left, e.g. "248.54"."""
    half = (Decimal(data["max"]) / 2).quantize(Decimal("0.01"))
    return f"{max(half, Decimal('0.01')):f}"


async def ask_amount(update: Update, context: BotContext) -> object:
    """Offer everything that is left (the full amount, or "all that is left" after an
    earlier partial refund) or ask for part of it."""
    data = scratch(context)
    expect_numbers(context, "amount")
    left = Decimal(data["max"])
    currency = data["currency"]
    money = context.tr.money(left, currency)
    partly = left < Decimal(data.get("paid", data["max"]))
    label = REST_LABEL if partly else FULL_LABEL
    rows = [
        [InlineKeyboardButton(context._(label).format(amount=money), callback_data="refund:full")]
    ]
    if partly:
        refunded = context.tr.money(Decimal(data["paid"]) - left, currency)
        text = context._(ASK_AMOUNT_PARTLY).format(
            refunded=refunded, max=money, example=_example(data)
        )
    else:
        text = context._(ASK_AMOUNT).format(max=money, example=_example(data))
    await send_step(update, context, text, [*rows, *nav_rows(context)])
    return RefundState.AMOUNT


async def full_amount(update: Update, context: BotContext) -> object:
    """Refund everything that remains."""
    await answer_button(update, context)
    scratch(context)["amount"] = scratch(context)["max"]
    return await ask_confirm(update, context)


def acceptable_amount(text: str, maximum: Decimal) -> Decimal | None:
    """Return the amount typed in ``text`` if it is more than 0 and at most ``maximum``."""
    amount = parse_amount(text)
    if amount is None or amount <= 0 or amount > maximum:
        return None
    return amount


async def amount_typed(update: Update, context: BotContext) -> object:
    """Check a typed amount: a number, more than 0, at most what remains, 2 decimals."""
    data = scratch(context)
    maximum = Decimal(data["max"])
    amount = acceptable_amount(update.message.text, maximum)
    if amount is None:
        await update.message.reply_text(
            context._(BAD_AMOUNT).format(
                max=context.tr.money(maximum, data["currency"]), example=_example(data)
            )
        )
        return None
    data["amount"] = str(amount)
    return await ask_confirm(update, context)


async def ask_confirm(update: Update, context: BotContext) -> object:
    """Show what will be requested and ask to confirm."""
    data = scratch(context)
    reason = data.get("reason_text")
    if not reason:
        label = REASONS[data["reason"]]
        reason = context._(label)
    text = context._(CONFIRM).format(
        merchant=escape(data["merchant"]),
        when=data["when"],
        amount=context.tr.money(Decimal(data["amount"]), data["currency"]),
        destination=escape(data.get("destination") or str(context._(TO_SOURCE))),
        reason=escape(reason),
    )
    rows = [[InlineKeyboardButton(context._(CONFIRM_LABEL), callback_data="refund:confirm")]]
    await send_step(update, context, text, [*rows, *nav_rows(context)])
    return RefundState.CONFIRM


async def confirm(update: Update, context: BotContext) -> object:
    """Create the refund (idempotent for this run of the flow) and give the reference."""
    await answer_button(update, context)
    return await require_verified(update, context, create_refund)


async def create_refund(update: Update, context: BotContext, account_id: str) -> object:
    """Ask the wallet to create the refund; remember it for notifications."""
    data = scratch(context)
    user_id = update.effective_user.id
    reason = data.get("reason_text") or data["reason"]
    # One key per run of the flow: a double press, a replayed update or "Check again" asks
    # for the same refund, which the wallet creates at most once.
    key = f"refund:{user_id}:{data['key']}"
    try:
        refund = await context.backend.create_refund(
            account_id, data["tx"], Decimal(data["amount"]), reason, key
        )
    except NotEligible as exc:
        text = context._(INELIGIBLE_REASONS.get(exc.reason, OTHER_INELIGIBLE))
        await send_step(
            update, context, context._(NOT_ELIGIBLE).format(reason=text), human_rows(context)
        )
        return END
    except NotFound:
        await send_step(update, context, context._(PAYMENT_GONE), human_rows(context))
        return END
    except (Frozen, Locked):
        await send_step(update, context, context._(REFUND_FROZEN), human_rows(context))
        return END
    except OutcomeUnknown:
        # Not "nothing was changed": the refund may exist. The same key tells.
        keyboard = [
            [InlineKeyboardButton(context._(CHECK_AGAIN_LABEL), callback_data="refund:recheck")],
            *human_rows(context),
        ]
        await send_step(update, context, context._(REFUND_UNSURE), keyboard)
        return RefundState.UNKNOWN
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    await context.repos.refunds.record(
        refund.id,
        user_id,
        account_id,
        refund.transaction_id,
        refund.amount,
        refund.currency,
        truncate(reason, REASON_LIMIT),
        refund.status,
        audit={"tx": refund.transaction_id, "amount": str(refund.amount)},
    )
    text = context._(CREATED).format(
        id=escape(refund.id),
        amount=context.tr.money(refund.amount, refund.currency),
        merchant=escape(data["merchant"]),
        destination=escape(data.get("destination") or str(context._(TO_SOURCE))),
        refund_review=context._(facts.REFUND_REVIEW),
    )
    await send_step(update, context, text, [main_menu_row(context)])
    return END


async def recheck(update: Update, context: BotContext) -> object:
    """Ask again for the refund whose outcome was unknown, with the same key."""
    await answer_button(update, context)
    return await require_verified(update, context, create_refund)


async def list_refunds(update: Update, context: BotContext, account_id: str) -> object:
    """Show the account's refunds and where each stands."""
    try:
        refunds = await context.backend.list_refunds(account_id)
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    if not refunds:
        await send_step(update, context, context._(REFUNDS_EMPTY), [main_menu_row(context)])
        return END
    shown = refunds[:15]
    payments = await _payments_of(context.backend, account_id, [r.transaction_id for r in shown])
    lines = [context._(REFUNDS_HEAD).format(zone=context.tr.zone_name(context.config.zone))]
    for refund in shown:
        status_label = REFUND_STATUS.get(refund.status, REFUND_STATUS["submitted"])
        tx = payments.get(refund.transaction_id)
        lines.append(
            context._(REFUND_LINE).format(
                merchant=tx_title(context, tx) if tx else escape(refund.transaction_id),
                id=escape(refund.id),
                amount=context.tr.money(refund.amount, refund.currency),
                status=context._(status_label),
                when=context.tr.date_time(refund.created_at, context.config.zone, year=True),
            )
        )
    keyboard = [[human_button(context), *main_menu_row(context)]]
    await send_step(update, context, "\n".join(lines), keyboard)
    return END


#: Text at the confirmation that is an amount ("100", "88.50元", "¥20"): understood.
_AMOUNT_LIKE = r"^\s*[¥$￥]?\s*\d+(?:[.,]\d{1,2})?\s*(?:元|块|yuan|cny|rmb)?\s*$"


def refund_flow() -> GuidedFlow:
    """Build the refund flow."""
    text = f.TEXT & ~f.COMMAND
    return GuidedFlow(
        name="refund",
        entry_points=[
            CallbackQueryHandler(from_detail, pattern=r"^tx:refund:\w{1,40}$"),
            CallbackQueryHandler(from_menu, pattern=r"^menu:refund$"),
            CommandHandler(
                "start",
                from_deep_link,
                filters=f.ChatType.PRIVATE & f.Regex(r"^/start refund_\w{1,57}$"),
            ),
            CommandHandler("refund", from_menu, filters=f.ChatType.PRIVATE),
            CommandHandler("refunds", my_refunds, filters=f.ChatType.PRIVATE),
            CallbackQueryHandler(my_refunds, pattern=r"^refund:mine$"),
        ],
        states={
            **verify_states(check_transaction, choose_transaction, list_refunds, create_refund),
            RefundState.CHOOSE_TX: [
                CallbackQueryHandler(transaction_chosen, pattern=r"^tx:open:\w{1,40}$"),
            ],
            RefundState.REASON: [
                CallbackQueryHandler(reason_chosen, pattern=r"^refund:reason:[a-z_]{1,20}$")
            ],
            RefundState.REASON_TEXT: [MessageHandler(text, reason_typed)],
            RefundState.AMOUNT: [
                CallbackQueryHandler(full_amount, pattern=r"^refund:full$"),
                MessageHandler(text, amount_typed),
            ],
            RefundState.CONFIRM: [
                CallbackQueryHandler(confirm, pattern=r"^refund:confirm$"),
                # "100" typed at the confirmation: a new amount, confirmed again.
                MessageHandler(text & f.Regex(_AMOUNT_LIKE), amount_typed),
            ],
            RefundState.UNKNOWN: [CallbackQueryHandler(recheck, pattern=r"^refund:recheck$")],
        },
        menu="menu:refund",
        owns=("refund",),
    )
