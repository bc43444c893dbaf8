"""Words, buttons and names that the services and the flows both use.

The main-menu registry (flows add their entries), the shared button labels, a user's
translator from their stored record, and how a transaction and a refund's destination are
named for the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tgbot.backend.base import Transaction
from tgbot.context import BotContext
from tgbot.i18n import N_, Translator, pick_language, translator
from tgbot.text import check_callback_data, escape

#: Shared button labels, translated where shown.
MAIN_MENU_LABEL = N_("🏠 Main menu")


HUMAN_LABEL = N_("🙋 Talk to a human")


@dataclass(frozen=True)
class MenuEntry:
    """A main-menu button that starts a flow; flows add theirs with :func:`add_menu_entry`."""

    data: str
    label: str
    description: str
    order: int


MENU: list[MenuEntry] = []


def add_menu_entry(data: str, label: str, description: str, order: int) -> None:
    """Register a main-menu button; ``label`` and ``description`` (shown by /help) are marked
    with ``N_``; ``order`` sorts the menu."""
    check_callback_data(data)
    if all(entry.data != data for entry in MENU):
        MENU.append(MenuEntry(data, label, description, order))
        MENU.sort(key=lambda entry: entry.order)


async def translator_for(context: Any, user_id: int) -> Translator:
    """Return the translator of a user from their stored record (for jobs and errors)."""
    user = await context.application.repos.users.get(user_id)
    return translator(
        pick_language(
            user.language if user else None,
            user.telegram_language if user else None,
            context.application.config.default_language,
        )
    )


#: System labels the bot writes itself, in the user's language (not the wallet's free text).
TOPUP_TITLE = N_("Balance top-up")


TRANSFER_TITLE = N_("Transfer to {name}")


STATUS_NAMES = {
    "success": N_("successful"),
    "processing": N_("processing"),
    "failed": N_("failed"),
    "refunded": N_("refunded"),
    "partially_refunded": N_("partially refunded"),
}


def tx_name(context: BotContext, tx: Transaction) -> str:
    """Return what a transaction is called for the user (plain text): the bot's own label
    for top-ups and transfers, else the merchant's name in the user's language if the
    wallet has it."""
    if tx.kind == "topup":
        return str(context._(TOPUP_TITLE))
    if tx.kind == "transfer" and tx.counterparty:
        return str(context._(TRANSFER_TITLE)).format(name=tx.counterparty)
    tag = context.lang.replace("_", "-")
    return tx.merchant_names.get(tag) or tx.merchant


def tx_title(context: BotContext, tx: Transaction) -> str:
    """Return :func:`tx_name` escaped for an HTML message."""
    return escape(tx_name(context, tx))


#: Where a refund goes: back to where the payment's money came from.
TO_BALANCE = N_("your U-Pay balance")


TO_CARD = N_("your {bank} card •••• {last4}")


TO_SOURCE = N_("where the money came from (your balance or the card you paid with)")


def destination_text(context: BotContext, tx: Transaction | None) -> str:
    """Return where a refund of ``tx`` goes back to, in the user's words (plain text)."""
    paid = tx.paid_with if tx is not None else None
    if paid is None:
        return str(context._(TO_SOURCE))
    if paid.method == "card" and paid.last4:
        return str(context._(TO_CARD)).format(bank=paid.bank or "", last4=paid.last4)
    return str(context._(TO_BALANCE))


def destination(context: BotContext, tx: Transaction | None) -> str:
    """Return :func:`destination_text` escaped for an HTML message."""
    return escape(destination_text(context, tx))
