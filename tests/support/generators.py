"""Hypothesis strategies for the security guards: secrets in the formats people type them,
and the ordinary things people write that must not be taken for secrets.

A test that types a secret into the bot passes it to :func:`remember`; the scan after the
whole suite (``tests/test_secrets_on_disk.py``) looks for every one of them in every file the
bot wrote.
"""

from __future__ import annotations

import string
import unicodedata
from datetime import datetime, timedelta
from decimal import Decimal

from babel.dates import format_datetime
from babel.numbers import format_currency
from hypothesis import strategies as st

from tgbot.sensitive import luhn_ok

#: Every secret a test typed into the bot, as it must never be found on disk.
TYPED_SECRETS: set[str] = set()


def remember(*needles: str) -> None:
    """Record secrets a test typed into the bot, for the scan after the whole suite. A code
    alone ("482913") is too short to look for in a whole database (ids and timestamps hold
    such digits too); the message it came in is looked for instead, when it has words."""
    for needle in needles:
        bare = "".join(needle.split())
        if len(needle) >= 6 and not (bare.isdigit() and len(bare) < 13):
            TYPED_SECRETS.add(needle)


#: First digits of each network the detector knows (ISO/IEC 7812 IINs).
NETWORK_PREFIXES = (
    ["4", "34", "37", "36", "38", "39", "6011", "65", "62", "60", "63", "67", "50", "56", "58"]
    + [str(n) for n in range(51, 56)]
    + [str(n) for n in range(300, 306)]
    + [str(n) for n in range(644, 650)]
    + [str(n) for n in range(3528, 3590, 7)]
    + [str(n) for n in range(2221, 2721, 37)]
    + ["2200", "2204", "81", "82", "8600", "9792", "9860"]
)

#: Digit characters of other scripts a phone keyboard may produce (offsets of 0).
DIGIT_SCRIPTS = ("0", "\uff10", "\u0660", "\u06f0", "\u0966", "\U0001d7ce", "\U0001d7ec")
#: Separators people put between the groups of a card number.
SEPARATORS = (" ", "-", ".", "/", "_", "\\", "·", "\u00a0", "\u2013", "\u2014", "\u3000", "\t")
#: Invisible characters (Unicode format characters and fillers).
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u2061")


def _luhn_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_ok(body + digit):
            return digit
    raise AssertionError("unreachable")


@st.composite
def card_numbers(draw) -> str:
    """A card number as digits: Luhn-valid with a network prefix, or a UnionPay 62 number
    of 16-19 digits with any checksum."""
    if draw(st.booleans()):
        length = draw(st.integers(16, 19))
        rest = draw(st.text(string.digits, min_size=length - 2, max_size=length - 2))
        return "62" + rest
    prefix = draw(st.sampled_from(NETWORK_PREFIXES))
    length = draw(st.integers(max(13, len(prefix) + 2), 19))
    body = prefix + draw(
        st.text(string.digits, min_size=length - 1 - len(prefix), max_size=length - 1 - len(prefix))
    )
    return body + _luhn_digit(body)


def _no_digits(char: str) -> bool:
    """Characters that are not digits and do not become digits under NFKC (①, ², ㏩...)."""
    return not any(c.isdigit() for c in unicodedata.normalize("NFKC", char))


#: Text around a secret: any letters, CJK, punctuation, emoji, spaces; never digits.
SURROUNDING = st.text(
    st.characters(codec="utf-8", exclude_categories=("Nd", "No", "Nl", "Cs")).filter(_no_digits),
    max_size=30,
)


@st.composite
def groupings(draw, length: int) -> list[int]:
    """Group sizes people type a card number in: one block, equal groups of up to eight
    digits (4 4 4 4, digit by digit, pairs...) with a shorter last group, or the 4-6 digit
    prefix then groups of 3-8 digits with any last group (4 6 5, 6 13)."""
    if draw(st.booleans()):
        size = draw(st.one_of(st.integers(1, 8), st.just(length)))
        sizes = [size] * (length // size)
        return [*sizes, length % size] if length % size else sizes
    sizes = [draw(st.integers(4, 6))]
    left = length - sizes[0]
    while left:
        if left < 6 or draw(st.booleans()):
            sizes.append(left)  # the rest in one last group (6 13, 4 4 8...)
            break
        size = draw(st.integers(3, min(8, left - 3)))
        sizes.append(size)
        left -= size
    return sizes


@st.composite
def typed(draw, digits: str, *, glue_ok: bool = True) -> str:
    """``digits`` as a person might type them: groups, any separators, invisible characters
    anywhere, digits of other scripts."""
    sizes = draw(groupings(len(digits)))
    out = []
    position = 0
    for index, size in enumerate(sizes):
        if index:
            sep = "".join(draw(st.lists(st.sampled_from(SEPARATORS), min_size=1, max_size=3)))
            out.append(sep)
        for char in digits[position : position + size]:
            script = draw(st.sampled_from(DIGIT_SCRIPTS))
            out.append(chr(ord(script) + int(char)))
            if draw(st.integers(0, 9)) == 0:
                out.append(draw(st.sampled_from(INVISIBLE)))
        position += size
    return "".join(out)


@st.composite
def card_texts(draw) -> tuple[str, str]:
    """Return ``(text, digits)``: a message holding a card number in any typed format, with
    text, an expiry or a CVV around it."""
    digits = draw(card_numbers())
    card = draw(typed(digits))
    single_group = card.isdigit() or all(
        c.isdigit() or unicodedata.category(c) == "Cf" for c in card
    )
    before = draw(SURROUNDING)
    after = draw(
        st.one_of(
            SURROUNDING,
            st.sampled_from(
                [" 12/26", " 12/26 123", " exp 0927 cvv 4821", " CVV: 123", " 有效期 1226"]
            ),
            st.just("123" if single_group else " 123"),  # a CVV glued to an unbroken number
            st.just("/1226" if single_group else " / 1226"),
        )
    )
    return before + card + after, digits


# ---------------------------------------------------------------------- passwords, codes

PASSWORDS = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "!#$%&*+-=?@^_~"),
    min_size=6,
    max_size=20,
).filter(lambda p: any(c.isdigit() for c in p) and any(c.isalpha() for c in p))


@st.composite
def password_texts(draw) -> tuple[str, str]:
    """Return ``(text, password)``: a password or PIN written out in a message."""
    if draw(st.booleans()):
        pin = draw(st.text(string.digits, min_size=4, max_size=6))
        template = draw(
            st.sampled_from(["my pin {}", "PIN: {}", "pin is {}", "支付密码{}", "my PIN code {}"])
        )
        value = pin
    else:
        value = draw(PASSWORDS)
        template = draw(
            st.sampled_from(
                [
                    "my password is {}",
                    "password: {}",
                    "password {}",
                    "Password={}",
                    "我的密码是{}",
                    "登录密码：{}",
                    "密码 {}",
                    "pwd {} thanks",
                    "my passcode is {}",
                ]
            )
        )
    return draw(SURROUNDING) + " " + template.format(value) + " " + draw(SURROUNDING), value


@st.composite
def code_texts(draw) -> tuple[str, str]:
    """Return ``(text, code)``: a one-time code alone or after a word, spaces allowed."""
    code = draw(st.text(string.digits, min_size=6, max_size=6))
    spaced = draw(st.sampled_from([code, " ".join(code), f"{code[:3]} {code[3:]}", f" {code} "]))
    template = draw(
        st.sampled_from(["{}", "code {}", "验证码{}", "my code is {}", "OTP: {}", "验证码是 {}"])
    )
    return template.format(spaced), code


# ---------------------------------------------------------------------- ordinary text

_WHEN = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2035, 12, 31))


@st.composite
def amounts(draw) -> str:
    """A money amount as a user or the bot writes it."""
    value = draw(st.decimals(Decimal("0.01"), Decimal("9999999.99"), places=2))
    style = draw(st.integers(0, 4))
    if style == 0:
        locale = draw(st.sampled_from(["en", "zh_Hans_CN", "de", "fr"]))
        currency = draw(st.sampled_from(["CNY", "USD", "EUR", "HKD"]))
        return format_currency(value, currency, locale=locale)
    if style == 1:
        return f"{value}元"
    if style == 2:
        return f"{int(value)}块"
    if style == 3:
        return f"{value:,}"
    return f"¥{value}"


@st.composite
def dates(draw) -> str:
    """A date (or time, or range) in the formats people write."""
    moment = draw(_WHEN)
    fmt = draw(
        st.sampled_from(
            [
                "%Y-%m-%d",
                "%Y/%m/%d",
                "%Y.%m.%d",
                "%d.%m.%Y",
                "%m/%d/%Y",
                "%d/%m/%Y",
                "%Y-%m-%d %H:%M",
                "%Y-%m-%d %H:%M:%S",
                "%Y年%m月%d日",
                "%m月%d日 %H:%M",
                "%m/%d",
                "%Y%m%d",
                "%H:%M",
            ]
        )
    )
    text = moment.strftime(fmt)
    if draw(st.booleans()):
        later = moment + timedelta(days=draw(st.integers(1, 60)))
        joiner = draw(st.sampled_from([" - ", " ~ ", "-", " to ", "至", " – "]))
        text = text + joiner + later.strftime(fmt)
    if draw(st.integers(0, 3)) == 0:
        locale = draw(st.sampled_from(["en", "zh_Hans_CN"]))
        text = format_datetime(moment, draw(st.sampled_from(["short", "medium"])), locale=locale)
    return text


@st.composite
def phones(draw) -> str:
    """A phone number: Chinese mobiles with or without +86, US and UK numbers."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        number = (
            "1"
            + draw(st.sampled_from("3456789"))
            + draw(st.text(string.digits, min_size=9, max_size=9))
        )
        shape = draw(
            st.sampled_from(["{}", "+86 {}", "+86{}", "0086 {}", "(+86) {}", "+86-{}", "86 {}"])
        )
        if draw(st.booleans()):
            number = f"{number[:3]} {number[3:7]} {number[7:]}"
        return shape.format(number)
    if kind == 1:
        a, b, c = (draw(st.text(string.digits, min_size=n, max_size=n)) for n in (3, 3, 4))
        a = draw(st.sampled_from("23456789")) + a[1:]
        return draw(
            st.sampled_from(["+1 {}-{}-{}", "({}) {}-{}", "{}.{}.{}", "+1 {} {} {}"])
        ).format(a, b, c)
    rest = draw(st.text(string.digits, min_size=6, max_size=6))
    return draw(st.sampled_from(["+44 7700 {}", "07700 {}", "+44 (0)7700 {}"])).format(rest)


@st.composite
def bot_ids(draw) -> str:
    """A transaction id or refund reference as the bot shows them (TX/RF + date + hex)."""
    moment = draw(_WHEN)
    tail = draw(st.text("0123456789ABCDEF", min_size=6, max_size=6))
    return draw(st.sampled_from(["TX", "RF"])) + f"{moment:%Y%m%d}" + tail


@st.composite
def order_numbers(draw) -> str:
    """Order and trade numbers of Chinese payment apps and shops."""
    moment = draw(_WHEN)
    kind = draw(st.integers(0, 4))
    digits = st.text(string.digits, min_size=1, max_size=1)
    if kind == 0:  # Alipay trade number: date + 20 digits
        return f"{moment:%Y%m%d}" + "".join(draw(st.lists(digits, min_size=20, max_size=20)))
    if kind == 1:  # WeChat Pay transaction id: 4200 + 6 + date + 10
        return (
            "4200"
            + "".join(draw(st.lists(digits, min_size=6, max_size=6)))
            + f"{moment:%Y%m%d}"
            + "".join(draw(st.lists(digits, min_size=10, max_size=10)))
        )
    if kind == 2:  # Pinduoduo: yymmdd-15 digits
        return f"{moment:%y%m%d}-" + "".join(draw(st.lists(digits, min_size=15, max_size=15)))
    if kind == 3:  # JD: 12 digits
        return draw(st.sampled_from("123456789")) + "".join(
            draw(st.lists(digits, min_size=11, max_size=11))
        )
    return "E" + f"{moment:%Y%m%d%H%M%S}" + "".join(draw(st.lists(digits, min_size=4, max_size=4)))


ORDINARY_ITEMS = st.one_of(amounts(), dates(), phones(), bot_ids(), order_numbers())

_TEMPLATES = [
    "{} {}",
    "I paid {} on {}",
    "订单号 {}，金额 {}",
    "交易 {} 在 {} 还没到账",
    "my number is {} and the amount was {}",
    "refund {} for {}?",
    "{}, {}",
    "{}，{}",
    "转账 {} 给 {}",
    "where is {} ({})",
]


@st.composite
def ordinary_texts(draw) -> str:
    """A message with two ordinary numbers (amounts, dates, phones, ids, order numbers)."""
    template = draw(st.sampled_from(_TEMPLATES))
    return template.format(draw(ORDINARY_ITEMS), draw(ORDINARY_ITEMS))


_PROBLEM_WORDS = [
    "wrong",
    "not working",
    "forgotten",
    "locked",
    "expired",
    "reset",
    "too short",
    "错误",
    "忘了",
    "锁了",
]


@st.composite
def password_talk(draw) -> str:
    """A message about a password or PIN that discloses none."""
    template = draw(
        st.sampled_from(
            [
                "my password is {}",
                "password {}",
                "I think my pin is {}",
                "支付密码{}",
                "我的密码{}怎么办",
                "how do I reset my password? it is {}",
                "forgot password, PIN {}",
            ]
        )
    )
    return template.format(draw(st.sampled_from(_PROBLEM_WORDS)))
