"""Transaction lookup: recent transactions page by page, filters, search by id or phrase.

After the identity check the user sees their transactions newest first (5 a page), can
filter by period and status, or type a transaction id or a phrase ("前天晚上 88块", "last
Friday 88"). A transaction's detail says what its status means and what to do next, with
buttons to ask for a refund or a human about it.

```mermaid
stateDiagram-v2
    [*] --> verify: menu / /transactions
    verify --> list: verified
    list --> list: page, period, status, search
    list --> detail: a transaction / one match
    list --> choose: several matches
    choose --> detail
    detail --> list: back
    detail --> [*]: refund flow / human
```
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from babel.dates import format_skeleton
from telegram import InlineKeyboardButton, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler
from telegram.ext import filters as f

from services.wording import STATUS_NAMES, add_menu_entry, tx_name, tx_title
from tgbot import facts
from tgbot.backend.base import NotFound, Transaction, Unavailable
from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.text import escape, truncate
from tgbot.txquery import match_transactions, parse_query

from .common import (
    END,
    GuidedFlow,
    answer_button,
    expect_numbers,
    human_button,
    main_menu_row,
    nav_rows,
    scratch,
    send_step,
)
from .handoff import create_ticket
from .verify import account_gone, require_verified, verify_states, wallet_down

PAGE_SIZE = 5
PERIODS = (7, 30, 90)
STATUSES = ("all", "processing", "failed", "refunded")

LABEL = N_("🧾 Transactions")
DESCRIPTION = N_("find a payment and see what its status means")
LEGEND = N_("✅ successful · ⏳ processing · ❌ failed · ↩️ refunded · times in {zone}")
SEARCH_HINT = N_(
    "Tap a transaction for its details, or type a date and an amount to search, e.g. "
    "“{example}”, or a transaction ID."
)
SEARCH_HINT_EMPTY = N_(
    "To search, type a date and an amount, e.g. “{example}”, or a transaction ID."
)
FILTER_LABELS = {
    "processing": N_("Processing"),
    "failed": N_("Failed"),
    "refunded": N_("Refunded"),
}
ALL_LABEL = N_("All")
PREV_LABEL = N_("◀ Newer")
NEXT_LABEL = N_("Older ▶")
NOTHING_FOUND = N_(
    "I found no transaction matching “{query}” in the last 90 days. Try another date or "
    "amount, or go back to the list."
)
NOT_UNDERSTOOD = N_("Please type a date and an amount, e.g. “{example}”, or a transaction ID.")
SEVERAL = N_("Several transactions match. Which one?")
TX_NOT_FOUND = N_("I cannot find this transaction in your account.")
DETAIL = N_(
    "<b>{merchant}</b>\n"
    "{kind}: {amount}\n"
    "Time: {time}\n"
    "Transaction ID: <code>{id}</code>\n"
    "Status: {status}\n\n"
    "{meaning}"
)
KINDS = {
    "payment": N_("Payment"),
    "transfer": N_("Transfer"),
    "topup": N_("Top-up"),
}
STATUS_ICONS = {
    "success": "✅",
    "processing": "⏳",
    "failed": "❌",
    "refunded": "↩️",
    "partially_refunded": "↩️",
}
MEANINGS = {
    "success": N_(
        "The payment went through. If something is wrong with the order, you can ask for a refund."
    ),
    "processing": N_(
        "The bank is still handling it; please do not pay again. {processing} {processing_human}"
    ),
    "failed": N_(
        "The payment did not go through. {failed_return} Common causes: not enough balance, a "
        "network problem, wrong card details."
    ),
    "refunded": N_("The money went back to where it came from. {refund_arrival}"),
    "partially_refunded": N_(
        "{refunded} went back to where it came from; the rest stayed paid. {refund_arrival}"
    ),
}
FAILURE_CAUSES = {
    "insufficient_balance": N_("Cause: not enough balance."),
    "network": N_("Cause: a network problem during payment."),
    "wrong_info": N_("Cause: wrong payment details."),
    "risk_control": N_("Cause: stopped by security checks. A human agent can tell you more."),
    "card_expired": N_("Cause: the card has expired."),
}
REFUND_LABEL = N_("↩️ Ask for a refund")
HUMAN_ABOUT_LABEL = N_("🙋 Ask a human about this")
BACK_LABEL = N_("⬅️ Back to the list")

add_menu_entry("menu:lookup", LABEL, DESCRIPTION, order=40)


class Lookup(StrEnum):
    """States of the lookup flow (besides the shared identity check)."""

    LIST = "lookup:list"
    DETAIL = "lookup:detail"


def tx_amount(context: BotContext, tx: Transaction) -> str:
    """Return the amount with its direction and currency: "+¥100.00" in, "-¥88.00" out."""
    return context.tr.money_signed(tx.amount, tx.currency, incoming=tx.kind == "topup")


def tx_button(context: BotContext, tx: Transaction) -> InlineKeyboardButton:
    """Return a transaction's button: status, signed amount, name, date and time."""
    name = tx_name(context, tx)  # button labels are plain text
    when = context.tr.date_time(tx.created_at, context.config.zone)
    icon = STATUS_ICONS.get(tx.status, "")
    label = f"{icon} {tx_amount(context, tx)} {truncate(name, 16)} · {when}"
    return InlineKeyboardButton(label, callback_data=f"tx:open:{tx.id}")


def search_example(context: BotContext, tx: Transaction | None) -> str:
    """Return a search that finds ``tx`` (the newest shown): its date and amount, written
    the way the user's language writes them."""
    if tx is None:
        moment, amount = datetime.now(context.config.zone), "88"
    else:
        moment, amount = tx.created_at, f"{tx.amount:f}"
    day = format_skeleton("MMMd", moment, tzinfo=context.config.zone, locale=context.tr.locale)
    return f"{day} {amount}"


def detail_text(context: BotContext, tx: Transaction) -> str:
    """Return the detail view: name, kind and signed amount, local time with the zone,
    status and what it means."""
    meaning_label = MEANINGS.get(tx.status, MEANINGS["success"])
    status_label = STATUS_NAMES.get(tx.status, STATUS_NAMES["success"])
    values = facts.values(context.tr)
    meaning = context._(meaning_label).format(
        refunded=context.tr.money(tx.refunded_amount, tx.currency), **values
    )
    if tx.status == "failed" and tx.failure_reason in FAILURE_CAUSES:
        meaning += "\n" + context._(FAILURE_CAUSES[tx.failure_reason])
    kind = KINDS.get(tx.kind, KINDS["payment"])
    return context._(DETAIL).format(
        merchant=tx_title(context, tx),
        kind=context._(kind),
        amount=tx_amount(context, tx),
        time=context.tr.when(tx.created_at, context.config.zone),
        id=tx.id,
        status=f"{STATUS_ICONS.get(tx.status, '')} {context._(status_label)}",
        meaning=meaning,
    )


async def lookup_start(update: Update, context: BotContext) -> object:
    """Start: check who the user is, then show the latest transactions."""
    await answer_button(update, context)
    data = scratch(context)
    data.setdefault("days", 30)
    data.setdefault("status", "all")
    data["page"] = 0
    return await require_verified(update, context, show_list)


async def from_search(update: Update, context: BotContext) -> object:
    """Start from typed text that asks about a payment ("check the payment on the 3rd",
    "starbucks 94"): after the identity check, the search is already applied."""
    data = scratch(context)
    data.update(days=30, status="all", page=0, routed=True)
    data["search"] = (update.effective_message.text or "")[:200]
    return await require_verified(update, context, show_search)


async def show_list(update: Update, context: BotContext, account_id: str) -> object:
    """Show one page of transactions with paging and filter buttons."""
    data = scratch(context)
    days, status, page = data.get("days", 30), data.get("status", "all"), data.get("page", 0)
    since = datetime.now(UTC) - timedelta(days=days)
    try:
        result = await context.backend.list_transactions(
            account_id,
            since=since,
            status=None if status == "all" else status,
            limit=PAGE_SIZE,
            offset=page * PAGE_SIZE,
        )
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    expect_numbers(context, "query")
    pages = max(1, -(-result.total // PAGE_SIZE))
    suffix = "" if status == "all" else f" · {context._(FILTER_LABELS[status])}"
    example = search_example(context, result.items[0] if result.items else None)
    if result.total:
        head = context.ngettext(
            "Your transactions, last {days} day{status} — page {page} of {pages}:",
            "Your transactions, last {days} days{status} — page {page} of {pages}:",
            days,
        ).format(days=days, status=suffix, page=page + 1, pages=pages)
        legend = context._(LEGEND).format(zone=context.tr.zone_name(context.config.zone))
        hint = f"{legend}\n\n{context._(SEARCH_HINT).format(example=example)}"
    else:
        head = context.ngettext(
            "No transactions in the last {days} day{status}.",
            "No transactions in the last {days} days{status}.",
            days,
        ).format(days=days, status=suffix)
        hint = context._(SEARCH_HINT_EMPTY).format(example=example)
    scratch(context)["example"] = example
    rows: list[list[InlineKeyboardButton]] = [[tx_button(context, tx)] for tx in result.items]
    paging = []
    if page > 0:
        paging.append(InlineKeyboardButton(context._(PREV_LABEL), callback_data="tx:page:prev"))
    if page + 1 < pages:
        paging.append(InlineKeyboardButton(context._(NEXT_LABEL), callback_data="tx:page:next"))
    if paging:
        rows.append(paging)
    rows.append(
        [
            InlineKeyboardButton(
                ("✓ " if d == days else "")
                + context.ngettext("{days} day", "{days} days", d).format(days=d),
                callback_data=f"tx:days:{d}",
            )
            for d in PERIODS
        ]
    )
    rows.append(
        [
            InlineKeyboardButton(
                ("✓ " if s == status else "")
                + (context._(ALL_LABEL) if s == "all" else context._(FILTER_LABELS[s])),
                callback_data=f"tx:status:{s}",
            )
            for s in STATUSES
        ]
    )
    await send_step(update, context, f"{head}\n\n{hint}", [*rows, *nav_rows(context)])
    return Lookup.LIST


async def change_list(update: Update, context: BotContext) -> object:
    """Page or filter the list (values checked: forged data gets the first page)."""
    query = update.callback_query
    await answer_button(update, context)
    _, what, value = query.data.split(":", 2)
    data = scratch(context)
    if what == "page":
        data["page"] = max(0, data.get("page", 0) + (1 if value == "next" else -1))
    elif what == "days" and value.isdigit() and int(value) in PERIODS:
        data["days"], data["page"] = int(value), 0
    elif what == "status" and value in STATUSES:
        data["status"], data["page"] = value, 0
    return await require_verified(update, context, show_list)


async def open_transaction(update: Update, context: BotContext) -> object:
    """Show a transaction's detail (only one of the user's own)."""
    query = update.callback_query
    scratch(context)["open"] = query.data.split(":", 2)[2][:40]
    return await require_verified(update, context, show_detail)


async def show_detail(update: Update, context: BotContext, account_id: str) -> object:
    """Show the detail of ``scratch["open"]`` with the next steps."""
    tx_id = scratch(context).get("open", "")
    try:
        tx = await context.backend.get_transaction(account_id, tx_id)
    except NotFound:
        await answer_button(update, context)
        await send_step(update, context, context._(TX_NOT_FOUND), _back_rows(context))
        return Lookup.LIST
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    await answer_button(update, context)
    rows = []
    if tx.kind == "payment" and tx.status in ("success", "partially_refunded"):
        rows.append(
            [InlineKeyboardButton(context._(REFUND_LABEL), callback_data=f"tx:refund:{tx.id}")]
        )
    rows.append(
        [InlineKeyboardButton(context._(HUMAN_ABOUT_LABEL), callback_data=f"tx:human:{tx.id}")]
    )
    rows.extend(_back_rows(context))
    await send_step(update, context, detail_text(context, tx), rows)
    return Lookup.DETAIL


def _back_rows(context: BotContext) -> list[list[InlineKeyboardButton]]:
    """Return "back to the list", a human and the main menu."""
    return [
        [InlineKeyboardButton(context._(BACK_LABEL), callback_data="tx:back")],
        [human_button(context), *main_menu_row(context)],
    ]


async def back_to_list(update: Update, context: BotContext) -> object:
    """Back from a detail to the list."""
    await answer_button(update, context)
    return await require_verified(update, context, show_list)


async def search(update: Update, context: BotContext) -> object:
    """Find transactions by id or by a phrase with a date and/or an amount."""
    text = update.message.text
    scratch(context)["search"] = text[:200]
    return await require_verified(update, context, show_search)


async def show_search(update: Update, context: BotContext, account_id: str) -> object:
    """Run the search of ``scratch["search"]`` and show the result."""
    text = scratch(context).get("search", "")
    now = datetime.now(context.config.zone)
    query = parse_query(text, now)
    routed = scratch(context).pop("routed", False)
    if query.is_empty and routed:
        return await show_list(update, context, account_id)  # nothing to search: the list
    if query.is_empty:
        example = scratch(context).get("example") or search_example(context, None)
        text = context._(NOT_UNDERSTOOD).format(example=escape(example))
        await send_step(update, context, text, _back_rows(context))
        return Lookup.LIST
    if query.transaction_id:
        scratch(context)["open"] = query.transaction_id
        return await show_detail(update, context, account_id)
    ranges = [(query.start, query.end), *query.alternatives] if query.start else [(None, None)]
    found: dict[str, Transaction] = {}
    try:
        for start, end in ranges:
            since = start or now - timedelta(days=90)
            page = await context.backend.list_transactions(
                account_id, since=since, until=end, limit=100
            )
            for tx in match_transactions(query, page.items):
                found[tx.id] = tx
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    matches = sorted(found.values(), key=lambda tx: tx.created_at, reverse=True)
    if not matches:
        text = context._(NOTHING_FOUND).format(query=escape(truncate(text, 60)))
        await send_step(update, context, text, _back_rows(context))
        return Lookup.LIST
    if len(matches) == 1:
        scratch(context)["open"] = matches[0].id
        return await show_detail(update, context, account_id)
    rows = [[tx_button(context, tx)] for tx in matches[:8]]
    await send_step(update, context, context._(SEVERAL), [*rows, *_back_rows(context)])
    return Lookup.LIST


async def human_about(update: Update, context: BotContext) -> object:
    """Open a ticket with this transaction as context."""
    query = update.callback_query
    await answer_button(update, context)
    tx_id = query.data.split(":", 2)[2][:40]
    account_id = context.user_record.wallet_account_id if context.user_record else None
    info: dict[str, Any] = {"flow": "lookup"}
    try:
        tx = await context.backend.get_transaction(account_id or "", tx_id)
        info.update(tx=tx.id, status=tx.status, amount=f"{tx.amount} {tx.currency}")
    except (NotFound, Unavailable):
        pass  # never reveal or attach a transaction that is not the user's
    await create_ticket(update, context, info=info, in_place=True)
    return END


def lookup_flow() -> GuidedFlow:
    """Build the transaction lookup flow."""
    text = f.TEXT & ~f.COMMAND
    list_handlers = [
        CallbackQueryHandler(change_list, pattern=r"^tx:(page|days|status):[a-z0-9_]{1,12}$"),
        CallbackQueryHandler(open_transaction, pattern=r"^tx:open:\w{1,40}$"),
        CallbackQueryHandler(back_to_list, pattern=r"^tx:back$"),
        MessageHandler(text, search),
    ]
    return GuidedFlow(
        name="lookup",
        entry_points=[
            CallbackQueryHandler(lookup_start, pattern=r"^menu:lookup$"),
            CommandHandler("transactions", lookup_start, filters=f.ChatType.PRIVATE),
        ],
        states={
            **verify_states(show_list, show_detail, show_search),
            Lookup.LIST: list_handlers,
            Lookup.DETAIL: [
                CallbackQueryHandler(human_about, pattern=r"^tx:human:\w{1,40}$"),
                *list_handlers,
            ],
        },
        menu="menu:lookup",
        owns=("tx",),
    )
