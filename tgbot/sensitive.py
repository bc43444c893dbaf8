"""Detection and masking of card numbers, one-time codes and passwords typed in chat.

DESIGN section 6, rule 4: anything that looks like one of these outside the step that asks
for it is deleted with a warning and never stored or logged in clear.
"""

from __future__ import annotations

import re

from .text import normalize_input

# Digits right after a Latin letter belong to an identifier ("RF2026112202901F", "TX…"), not a
# card number someone typed; Chinese text around a number ("卡号6222…") does not count.
_CARD_CANDIDATE = re.compile(r"(?<![\dA-Za-z])(?:\d[ -]?){12,18}\d(?!\d)")
# No card network issues numbers starting with 0, 1, 20, 21 or 7; wallet order numbers
# ("2026112…", a date) and millisecond timestamps ("17…") do, and 1 in 10 passes Luhn.
_NOT_A_CARD_START = re.compile(r"0|1|2[01]|7")
_CODE_ALONE = re.compile(r"^\s*(\d{4,8})\s*$")
_CODE_WITH_WORD = re.compile(
    r"(验证码|校验码|动态码|短信码|otp|verification code|code)\D{0,6}(\d{4,8})(?!\d)", re.IGNORECASE
)
_PASSWORD = re.compile(
    r"(密码|支付密码|登录密码|pin|password|passcode|pwd)\s*(是|为|:|：|=|is)\s*\S{3,}",
    re.IGNORECASE,
)


_CHEAP_CHECK = re.compile(r"(?:\d[\s-]?){4}|密码|pin|pass|pwd|code|码", re.IGNORECASE)


def might_be_sensitive(text: str) -> bool:
    """Return False for text that cannot hold a card number, code or password (cheap, for
    the hot path; :func:`mask` does the real work on the rest)."""
    if not text.isascii():
        text = normalize_input(text)  # full-width digits count too
    return bool(_CHEAP_CHECK.search(text))


def luhn_ok(digits: str) -> bool:
    """Return True if ``digits`` passes the Luhn check used by card numbers."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    """A card number: 13-19 digits, a network's first digits, the Luhn checksum."""
    return 13 <= len(digits) <= 19 and not _NOT_A_CARD_START.match(digits) and luhn_ok(digits)


def find_card_numbers(text: str) -> list[str]:
    """Return the card numbers (13-19 digits, Luhn-valid, spaces/dashes allowed) in ``text``."""
    found = []
    for match in _CARD_CANDIDATE.finditer(normalize_input(text)):
        digits = re.sub(r"\D", "", match.group())
        if _is_card(digits):
            found.append(digits)
    return found


def looks_like_code(text: str) -> bool:
    """Return True if ``text`` looks like a one-time code (4-8 digits alone, or "code 1234")."""
    normalized = normalize_input(text)
    return bool(_CODE_ALONE.match(normalized) or _CODE_WITH_WORD.search(normalized))


#: Words after "password is" that describe a problem rather than disclose a password.
_NOT_A_PASSWORD = re.compile(
    r"^(wrong|incorrect|not|invalid|expired|locked|forgotten|forgot|lost|missing|too|"
    r"blocked|correct|right|changed|reset|错误|错了|错的|不对|不正确|忘了|忘记|被锁|锁了|过期|多少)",
    re.IGNORECASE,
)


def looks_like_password(text: str) -> bool:
    """Return True if ``text`` discloses a password or PIN ("my password is ...")."""
    for match in _PASSWORD.finditer(normalize_input(text)):
        value = match.group(0)[match.end(2) - match.start(0) :].strip()
        if not _NOT_A_PASSWORD.match(value):
            return True
    return False


def classify(text: str, *, code_expected: bool = False) -> str | None:
    """Return "card", "password" or "code" for sensitive text, else None."""
    if find_card_numbers(text):
        return "card"
    if looks_like_password(text):
        return "password"
    if not code_expected and looks_like_code(text):
        return "code"
    return None


def mask(text: str) -> str:
    """Mask card numbers, codes and disclosed passwords in ``text`` (for agents and logs)."""
    normalized = normalize_input(text)

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        if _is_card(digits):
            return f"{digits[:4]} **** **** {digits[-4:]}"
        return match.group()

    masked = _CARD_CANDIDATE.sub(card, normalized)
    masked = _PASSWORD.sub(lambda m: f"{m.group(1)}{m.group(2)}******", masked)
    masked = _CODE_WITH_WORD.sub(lambda m: f"{m.group(1)} ******", masked)
    return _CODE_ALONE.sub("******", masked)
