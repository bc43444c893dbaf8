"""Detection and masking of card numbers, one-time codes and passwords typed in chat.

DESIGN section 6, rule 4: anything that looks like one of these outside the step that asks
for it is deleted with a warning and never stored or logged in clear.

How a card number is found (``docs/security.md`` says why each rule is there):

1. The text is cleaned: NFKC (full-width digits), digits of every script to ASCII, invisible
   characters (zero-width spaces and joiners, soft hyphens, direction marks...) removed.
2. Digit *groups* (maximal runs of digits) separated by 1-3 separator characters
   (whitespace, any dash, ``.``, ``/``, ``_``, ``\\``, ``·``) form one *digit run*:
   ``4111.1111 - 1111_1111 12/26 123`` is one run of 23 digits in six groups.
3. Every window of 13-19 digits of a run is a candidate if it is typed like a card:
   - in groups: it starts where the run starts and ends where a group ends, and its groups
     (but the last) are at most eight digits and all equal (4 4 4 4, 1 1 1 ..., 2 2 2 ...)
     or the 4-6 digit prefix followed by groups of three or more (4 6 5, 6 13); so
     ``4111 1111 1111 1111 12/26 123`` holds the window of its first four groups;
   - in one block: a whole group that starts the run or follows a separator with a space,
     or such a group but its last 3-4 digits (a CVV or an expiry glued to the number).
4. A candidate is a card when it starts with a card network's first digits and passes the
   Luhn check; UnionPay numbers (62, 16-19 digits) count without the Luhn check.

What is not found, on purpose: a card typed in groups after other numbers in the same run
(``12/26 4111 1111 1111 1111``) and a card glued to digits before it. Windows anywhere in a
run would take two phone numbers in a row, a phone number and a date, a date range or an
order number and its amount for cards (the property tests in ``tests/unit`` found each);
a card in those places cannot be told apart from them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

#: Digits a card window may leave glued after it inside its group: none, a CVV or an expiry.
GLUED = (0, 3, 4)
#: Separator characters between the groups of one digit run, and how many in a row.
_SEPARATOR_CHARS = frozenset("._/\\·")
MAX_SEPARATOR = 3
#: Invisible characters that are not Unicode format characters (category Cf, removed too).
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u3164\uffa0") | frozenset(
    chr(c) for c in range(0xFE00, 0xFE10)
)


def clean(text: str) -> str:
    """Return ``text`` as the detectors read it: NFKC, ASCII digits, invisible characters
    removed (so ``4\\u200b111`` and ``４１１１`` are ``4111``)."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    out = []
    for char in text:
        if char in _INVISIBLE:
            continue
        category = unicodedata.category(char)
        if category == "Cf":
            continue
        if category == "Nd":
            char = str(unicodedata.decimal(char))
        out.append(char)
    return "".join(out)


def _is_separator(char: str) -> bool:
    return char.isspace() or char in _SEPARATOR_CHARS or unicodedata.category(char) == "Pd"


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


def network_prefix(digits: str) -> bool:
    """Return True if ``digits`` starts like a payment card of a network (ISO/IEC 7812 IINs):
    Visa 4, Mastercard 51-55 and 2221-2720, Maestro 5/6, Amex 34/37, Diners 30/36/38/39,
    JCB 35, Discover/UnionPay/RuPay 6, UnionPay/RuPay 81/82, Mir 2200-2204, UzCard 8600,
    Troy 9792, Humo 9860. Not 0, 1 (airlines), 7 (petroleum), 20/21, other 8 and 9: wallet
    order numbers start with a date (20...), timestamps with 1, phone numbers with 86."""
    first = digits[:1]
    if first in ("4", "5", "6"):
        return True
    if first == "3":
        return digits[1:2] in ("0", "4", "5", "6", "7", "8", "9")
    if first == "2" and len(digits) >= 4:
        head = int(digits[:4])
        return 2200 <= head <= 2204 or 2221 <= head <= 2720
    if first == "8":
        return digits[:2] in ("81", "82") or digits[:4] == "8600"
    if first == "9":
        return digits[:4] in ("9792", "9860")
    return False


def is_card(digits: str) -> bool:
    """A card number: 13-19 digits, a network's first digits, the Luhn checksum; UnionPay's
    62 numbers of 16-19 digits count without it (some are issued without a valid one)."""
    if not 13 <= len(digits) <= 19 or not network_prefix(digits):
        return False
    return luhn_ok(digits) or (digits.startswith("62") and len(digits) >= 16)


@dataclass(frozen=True)
class _Group:
    start: int  # index in the cleaned text
    digits: str
    #: A card may start here: the run's first group, or one after a separator with a space.
    may_start: bool


@dataclass(frozen=True)
class CardMatch:
    """A card number found in cleaned text: its digits and the span it covers."""

    digits: str
    start: int
    end: int


def _runs(text: str) -> Iterator[list[_Group]]:
    """Yield the digit runs of cleaned ``text`` (groups joined by short separators)."""
    run: list[_Group] = []
    last_end = -1
    for match in re.finditer(r"[0-9]+", text):
        gap = text[last_end : match.start()]
        joined = run and 1 <= len(gap) <= MAX_SEPARATOR and all(_is_separator(c) for c in gap)
        if run and not joined:
            yield run
            run = []
        may_start = not run or any(c.isspace() for c in gap)
        run.append(_Group(match.start(), match.group(), may_start))
        last_end = match.end()
    if run:
        yield run


def _typed_grouping(sizes: list[int]) -> bool:
    """Whether groups of these sizes (all but a window's last) are grouped as people type a
    card: at most eight digits each, and all equal (4 4 4 4, digit by digit, pairs) or
    starting with the 4-6 digit prefix and then groups of three or more (Amex 4 6 5, 6 13).
    Days and months (25.12.2026 - 05.01.2027), phone numbers (415 555 0103, 130 6324 5468)
    and a 12-digit order number followed by an amount are neither."""
    if max(sizes) > 8:
        return False
    return len(set(sizes)) == 1 or (4 <= sizes[0] <= 6 and min(sizes) >= 3)


def _cards_in_run(run: list[_Group]) -> Iterator[CardMatch]:
    """Yield the best card window at each place a card may start in ``run`` (module doc)."""
    sizes = [len(group.digits) for group in run]
    offsets = [sum(sizes[:i]) for i in range(len(run))]  # of each group in the run's digits
    total = sum(sizes)
    digits = "".join(group.digits for group in run)
    index = 0
    while index < len(run):
        if not run[index].may_start:
            index += 1
            continue
        start = offsets[index]
        best: tuple[int, int, int] | None = None  # (luhn, length, last group)
        last = index
        for length in range(13, 20):
            end = start + length
            if end > total:
                break
            while offsets[last] + sizes[last] < end:
                last += 1
            group_end = offsets[last] + sizes[last]
            if last == index:  # one block, maybe with its CVV or expiry glued
                fits = group_end - end in GLUED
            else:  # typed in groups: from where the run starts, ending with a group
                fits = index == 0 and group_end == end and _typed_grouping(sizes[index:last])
            window = digits[start:end]
            if fits and is_card(window):
                rank = (int(luhn_ok(window)), length, last)
                best = rank if best is None or rank > best else best
        if best is None:
            index += 1
            continue
        _, length, last = best
        end_char = run[last].start + (start + length - offsets[last])
        yield CardMatch(digits[start : start + length], run[index].start, end_char)
        index = last + 1


def card_matches(cleaned: str) -> list[CardMatch]:
    """Return the card numbers in already :func:`clean` text, left to right."""
    return [match for run in _runs(cleaned) for match in _cards_in_run(run)]


def find_card_numbers(text: str) -> list[str]:
    """Return the card numbers in ``text`` (digits only), in any format a person types."""
    return [match.digits for match in card_matches(clean(text))]


# ---------------------------------------------------------------------- codes


_CODE_WORD = r"验证码|校验码|动态码|短信码|确认码|otp|verification\s*code|security\s*code|code"
#: 4-8 digits, single spaces between them allowed ("482 913", "4 8 2 9 1 3").
_CODE_DIGITS = r"[0-9](?:[ \t]?[0-9]){3,7}"
_CODE_ALONE = re.compile(rf"^\s*({_CODE_DIGITS})\s*$")
_CODE_WITH_WORD = re.compile(
    rf"(?<![A-Za-z])({_CODE_WORD})[^0-9]{{0,6}}?({_CODE_DIGITS})(?![ \t]?[0-9])", re.IGNORECASE
)


def looks_like_code(text: str) -> bool:
    """Return True if ``text`` looks like a one-time code (4-8 digits alone, spaces between
    them allowed, or after a word like "code" / 验证码)."""
    cleaned = clean(text)
    return bool(_CODE_ALONE.match(cleaned) or _CODE_WITH_WORD.search(cleaned))


# ---------------------------------------------------------------------- passwords

_PASSWORD = re.compile(
    r"(?<![A-Za-z])(支付密码|登录密码|交易密码|密码|密碼|口令|passcode|password|passwd|pass\s+word|"
    r"pwd|pin(?:\s*code)?)(?![A-Za-z])"
    r"[ \t]*(?:(是|为|為|:|：|=|is|was)[ \t]*)?(\S+)",
    re.IGNORECASE,
)
#: Words after "password is" that describe a problem rather than disclose a password.
_NOT_A_PASSWORD = re.compile(
    r"(?:wrong|incorrect|not|invalid|expired|locked|forgotten|forgot|lost|missing|too|"
    r"blocked|correct|right|changed|reset|the|my|a|an|still|being|been|what|how|same|"
    r"different|required|needed|empty|weak|strong|ok|okay|fine|done|set|sent)[.,;!?]*",
    re.IGNORECASE,
)
_NOT_A_PASSWORD_ZH = re.compile(
    r"错误|错了|错的|不对|不正确|忘了|忘记|被锁|锁了|过期|多少|什么|对的|正确|不|没|被"
)


def _password_value(match: re.Match[str]) -> str | None:
    """Return the disclosed value of a password match, or None if it only talks about one."""
    keyword, connector, value = match.group(1), match.group(2), match.group(3)
    value = value.rstrip(".,;!?。，；！？")
    if _NOT_A_PASSWORD.fullmatch(value) or _NOT_A_PASSWORD_ZH.match(value):
        return None
    if keyword.lower().startswith("pin") and value.isdigit() and 4 <= len(value) <= 12:
        return value  # "my pin 1234"
    if connector:
        return value if len(value) >= 3 else None  # "password is hunter2", "密码是abc123"
    # No "is" / ":": only a value that looks like a secret ("password hunter22", "密码123456").
    printable = value.isascii() and value.isprintable()
    if printable and len(value) >= 4 and any(c.isdigit() for c in value):
        return value
    return None


def looks_like_password(text: str) -> bool:
    """Return True if ``text`` discloses a password or PIN ("my password is ...",
    "password hunter22", "my pin 1234", "密码是...")."""
    return any(_password_value(m) for m in _PASSWORD.finditer(clean(text)))


# ---------------------------------------------------------------------- together


def classify(text: str, *, code_expected: bool = False) -> str | None:
    """Return "card", "password" or "code" for sensitive text, else None."""
    if find_card_numbers(text):
        return "card"
    if looks_like_password(text):
        return "password"
    if not code_expected and looks_like_code(text):
        return "code"
    return None


def _mask_cards(cleaned: str) -> str:
    """Mask card numbers (first and last four digits kept); with a card in the text every
    other digit is masked too (its expiry and CVV)."""
    matches = card_matches(cleaned)
    if not matches:
        return cleaned
    pieces = []
    position = 0
    for match in matches:
        pieces.append(re.sub(r"[0-9]", "*", cleaned[position : match.start]))
        pieces.append(f"{match.digits[:4]} **** **** {match.digits[-4:]}")
        position = match.end
    pieces.append(re.sub(r"[0-9]", "*", cleaned[position:]))
    return "".join(pieces)


def _mask_passwords(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if _password_value(match) is None:
            return match.group(0)
        return match.group(0)[: match.start(3) - match.start(0)].rstrip() + " ******"

    return _PASSWORD.sub(replace, text)


def mask(text: str, *, codes: bool = True) -> str:
    """Mask card numbers, disclosed passwords and (with ``codes``) one-time codes in
    ``text``, for agents and logs. The result is :func:`clean` text."""
    masked = _mask_passwords(_mask_cards(clean(text)))
    if codes:
        masked = _CODE_WITH_WORD.sub(lambda m: f"{m.group(1)} ******", masked)
        masked = _CODE_ALONE.sub("******", masked)
    return masked


_CHEAP_KEYWORDS = re.compile(r"密|码|碼|口令|pin|pass|pwd|code|otp", re.IGNORECASE)


def might_be_sensitive(text: str) -> bool:
    """Return False for text that cannot hold a card number, code or password (cheap, for
    the hot path; :func:`mask` does the real work on the rest). Sound: anything with four
    digits of any script (invisible characters between them or not) or a keyword is True."""
    if _CHEAP_KEYWORDS.search(text):
        return True
    if text.isascii():
        return len(re.findall(r"[0-9]", text)) >= 4
    return sum(char.isdigit() for char in clean(text)) >= 4 or bool(
        _CHEAP_KEYWORDS.search(clean(text))
    )
