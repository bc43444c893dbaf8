"""Facts the bot states in more than one place, each stated once here.

How long a payment may stay "processing", when failed money comes back, how a refund is
reviewed and when it arrives, what the card micro-deposit is: the help articles, a
transaction's detail, refund notices, the card flow and the agents' canned replies all take
these sentences (or numbers) from here, so they can never contradict each other. A message
that needs one has a ``{placeholder}`` (e.g. ``{refund_arrival}``) filled by :func:`values`.

To change a fact: change it here, run ``tgbot i18n update`` and translate the changed entry.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from .i18n import N_, Translator

PROCESSING = N_(
    "Most payments and transfers complete within minutes, and almost all within 2 hours. A "
    "withdrawal to a bank card can take up to 2 business days (longer over weekends and "
    "public holidays)."
)
PROCESSING_HUMAN = N_(
    "Still processing after 2 hours (a withdrawal: after 2 business days)? Talk to a human "
    "and have the transaction at hand."
)
FAILED_RETURN = N_(
    "If money was taken, it comes back by itself to where it came from within 1–3 business days."
)
REFUND_REVIEW = N_(
    "The merchant or our team reviews a refund request, usually within 1–3 business days."
)
REFUND_ARRIVAL = N_(
    "Once approved, a refund reaches your U-Pay balance at once, or a bank card within 1–7 "
    "business days, depending on the bank."
)
MICRO_DEPOSIT = N_(
    "It is less than {max} and usually shows in the card's statement or the bank's app "
    "within a few minutes, at the latest within 1 business day."
)
WITHDRAWAL_FEE = N_(
    "Withdrawals to a bank card are free up to a monthly allowance; above it a fee of 0.1% "
    "(at least {minimum}) covers the bank's processing costs."
)

#: The card micro-deposit: a random amount in this range, in this currency.
DEPOSIT_RANGE = (Decimal("0.01"), Decimal("0.99"))
DEPOSIT_CURRENCY = "CNY"
DEPOSIT_EXAMPLE = Decimal("0.37")
#: The smallest withdrawal fee.
FEE_MINIMUM = Decimal("0.10")
FEE_CURRENCY = "CNY"


def micro_deposit(tr: Translator) -> str:
    """Return the micro-deposit fact in ``tr``'s language, amounts with their currency."""
    return tr.gettext(MICRO_DEPOSIT).format(max=tr.money(Decimal("1.00"), DEPOSIT_CURRENCY))


def values(tr: Translator) -> dict[str, str]:
    """Return every fact as a ``{placeholder}`` value in ``tr``'s language (a new dict; the
    texts are made once per language)."""
    return dict(_values(tr))


@cache
def _values(tr: Translator) -> dict[str, str]:
    return {
        "processing": tr.gettext(PROCESSING),
        "processing_human": tr.gettext(PROCESSING_HUMAN),
        "failed_return": tr.gettext(FAILED_RETURN),
        "refund_review": tr.gettext(REFUND_REVIEW),
        "refund_arrival": tr.gettext(REFUND_ARRIVAL),
        "micro_deposit": micro_deposit(tr),
        "withdrawal_fee": tr.gettext(WITHDRAWAL_FEE).format(
            minimum=tr.money(FEE_MINIMUM, FEE_CURRENCY)
        ),
    }
