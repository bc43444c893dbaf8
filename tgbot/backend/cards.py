"""Card-number helpers for the demo wallet's secure page: Luhn check, bank lookup, hashing.

A card number only ever exists in memory while the secure page handles it; what is kept
is the bank, the last four digits and a keyed hash (to spot a card bound twice).
"""

from __future__ import annotations

import hashlib
import hmac
import re

#: Luhn-valid test number the demo bank always refuses.
BANK_REFUSED_NUMBER = "4000000000000002"

# (prefix, bank, kind); the longest matching prefix wins.
_BINS: tuple[tuple[str, str, str], ...] = (
    ("621483", "招商银行", "debit"),
    ("622588", "招商银行", "credit"),
    ("622202", "中国工商银行", "credit"),
    ("621226", "中国工商银行", "debit"),
    ("621700", "中国建设银行", "debit"),
    ("622848", "中国农业银行", "debit"),
    ("446291", "Barclays", "debit"),
    ("424242", "Visa Bank", "debit"),
    ("4111", "Chase", "credit"),
    ("4", "Visa Bank", "credit"),
    ("5", "Mastercard Bank", "credit"),
    ("62", "中国银联", "debit"),
)


def digits_only(text: str) -> str:
    """Return the digits of a typed card number (spaces and dashes dropped)."""
    return re.sub(r"[\s\-]", "", text)


def luhn_valid(number: str) -> bool:
    """Return whether ``number`` is 13-19 digits with a valid Luhn check digit."""
    if not number.isascii() or not number.isdigit() or not 13 <= len(number) <= 19:
        return False
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def bank_of(number: str) -> tuple[str, str]:
    """Return ``(bank, kind)`` for a card number from its first digits."""
    for prefix, bank, kind in sorted(_BINS, key=lambda b: -len(b[0])):
        if number.startswith(prefix):
            return bank, kind
    return "Bank", "debit"


def card_hash(number: str, pepper: str) -> str:
    """Return a keyed hash of a card number (HMAC-SHA256 with the wallet's secret pepper)."""
    return hmac.new(pepper.encode(), number.encode(), hashlib.sha256).hexdigest()
