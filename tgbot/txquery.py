"""Understand a typed transaction lookup ("前天晚上 88块", "last Friday 88", a transaction id).

Pure logic, no I/O: :func:`parse_query` turns a zh/en phrase into a :class:`TxQuery` (an id,
a date range, an amount), :func:`parse_amount` reads a money amount, and
:func:`match_transactions` filters a list of :class:`~tgbot.backend.base.Transaction`.

Rules
-----
Input
    Text goes through :func:`tgbot.text.normalize_input` (NFKC: full-width ``８８`` and ``￥``
    become ``88`` and ``¥``) and is lower-cased; only the first :data:`MAX_QUERY_CHARS`
    characters are read, so a huge message costs no more than a short one.

Transaction id
    ``TX`` + 14 hex digits, any case (``tx20261102a1b2c3``), returned upper-case. An id is
    decisive: when one is present, dates and amounts in the same message are ignored.

Time zone
    Every date is a calendar day *in the zone of* ``now`` (the configured zone, e.g.
    Asia/Shanghai), never the server's: "3号" said in Shanghai starts at 00:00 Shanghai time
    (16:00 UTC the day before). ``start`` is inclusive, ``end`` exclusive.

Relative dates resolve to the past
    A date without a year is the most recent one that is not in the future: "3号" / "the 3rd"
    on 2026-12-01 is 2026-11-03, "12月31日" on 2027-01-02 is 2026-12-31, "31号" skips months
    without a 31st. A bare weekday ("周五", "Friday") is the most recent such day, today
    included; said on that very weekday it is today, with last week's as an alternative.
    "上周五" / "上星期五" is the Friday of the previous Monday-based week; English
    "last Friday" is the most recent Friday before today (when that one is in the current
    week, the previous week's is offered as an alternative). Explicit forms are taken
    literally, even in the future ("这周五", "this Friday", "2026年12月3日"): the search then
    simply finds nothing. Month/day in digits is month first ("11/3" is 3 November).

Periods
    "上周"/"last week" and "本周"/"this week" are Monday-based weeks; "上个月"/"last month",
    "本月"/"this month", "今年", "去年" are calendar periods; "上周末"/"last weekend" is
    Saturday-Sunday of the previous week, a bare "周末"/"weekend" the current one on a
    weekend day, else the last one; "上个月3号" is the 3rd of last month. A period that
    contains today ends at the end of today. "最近7天"/"近一周"/"past 7 days"/"past week"
    are rolling: today and the N-1 days before (a week is 7 days, a month 30).

One date per message
    When several date expressions appear, a fixed priority picks one (full dates, then
    relative days, weekdays, rolling spans, periods, months, days of month); ranges such as
    "2号到3号" are not understood (the first reading wins). Clock times are not used.

Day parts (local time; folded into ``start``/``end``)
    morning 05:00-12:00, noon 11:00-14:00, afternoon 12:00-18:00, evening 18:00-24:00,
    night 21:00-05:00 of the next day (so "前天夜里" spans midnight, "前天晚上" does not).
    "凌晨 of day D" is the night that began on D-1. "昨晚"/"tonight" mean the evening,
    "last night" yesterday's night. A day part with no date is the most recent one that
    has begun (at 08:00 "晚上" is yesterday evening). A day part only narrows a single day;
    with a longer period ("上周 晚上") it is ignored and ``day_part`` is None.

Amounts versus dates
    A number with a currency mark (``¥88``, ``$12.30``, ``88元``, ``88块5``, ``88 yuan``,
    ``CNY 88``, ``八十八元``) is an amount. A number that belongs to a date expression
    ("3号", "3rd", "Nov 3", "11/3", "3天前") is a date. Any other plain number (digits only;
    "88", "88.50", "1,288") is an amount; numbers glued to letters, clock times ("21:30",
    "9点", "9pm") and counts ("3笔", "3次") are neither. Chinese numerals count as an
    amount only with a currency unit, or when they are the whole message ("两百").
    A message that is only a number is an amount; when that number could also be a day of
    the month (1-31, e.g. "3"), the day ("the 3rd", resolved as above) is put in
    ``alternatives`` so the bot can offer it as a choice. ``start``/``end`` stay None, so
    such alternatives do not narrow :func:`match_transactions` (an open range already
    includes them). Amounts are positive, at most 2 decimals, up to :data:`MAX_AMOUNT`;
    the currency mark is not used for matching.

Merchant words
    What is left once ids, amounts and dates are taken out becomes ``words``: Latin words of
    3+ letters and runs of Chinese characters, minus filler ("the", "payment", "退款", "那笔").
    They name a merchant when a Latin word equals (or, from 4 letters, begins) a word of the
    merchant's name, or when a Chinese run shares 2+ characters with it ("京东" and
    "京东商城"). Words alone are a query; with a date or an amount they narrow it only when
    they name a merchant among the transactions that the date and amount allow (so "check
    the payment on the 3rd" is the 3rd, whatever "check" means).

Approximate amounts
    Users round: an amount typed without decimals ("460块", "starbucks 94") is
    ``approximate`` and also matches amounts from 0.50 below to 0.99 above it (460 finds
    459.50-460.99, so ¥460.61), but only when no amount equals it exactly.

Matching
    :func:`match_transactions` keeps transactions with the id (case-insensitive), created in
    ``[start, end)`` or in any alternative range, whose absolute amount equals the amount
    (Decimal equality: 88 == 88.00; else approximately, see above), and whose merchant the
    words name (see above); newest first. An empty query matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from tgbot.backend.base import Transaction
from tgbot.text import normalize_input

MAX_QUERY_CHARS = 500
MAX_AMOUNT = Decimal("1000000")
CENT = Decimal("0.01")

#: Local hours (start, end) of each day part; hours >= 24 fall on the next day.
DAY_PARTS: dict[str, tuple[int, int]] = {
    "morning": (5, 12),
    "noon": (11, 14),
    "afternoon": (12, 18),
    "evening": (18, 24),
    "night": (21, 29),
}
_PREDAWN = "predawn"  # 凌晨: the night that began the day before

DateRange = tuple[datetime, datetime]


@dataclass(frozen=True)
class TxQuery:
    """What a lookup message asks for; see the module docstring for the rules."""

    transaction_id: str | None
    start: datetime | None
    end: datetime | None
    amount: Decimal | None
    day_part: str | None
    alternatives: tuple[DateRange, ...] = ()
    #: Words that may name a merchant (see the module docstring).
    words: tuple[str, ...] = ()
    #: The amount was typed without decimals: nearby amounts match too when none is equal.
    approximate: bool = False

    @property
    def is_empty(self) -> bool:
        """Whether no id, date or amount was recognised (``words`` may still name a
        merchant)."""
        return (
            self.transaction_id is None
            and self.start is None
            and self.end is None
            and self.amount is None
            and not self.alternatives
        )


EMPTY = TxQuery(None, None, None, None, None)

# --- numbers ---------------------------------------------------------------------------------

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN = "零〇一二两三四五六七八九十百千万"
_CN_SMALL = "[一二三四五六七八九十]{1,3}"  # 1-31 in dates
_CN_DIGIT = "[零〇一二两三四五六七八九]"


def _cn_int(text: str) -> int | None:
    """Chinese numerals to an int: "八十八" 88, "一百零五" 105, "两百" 200, "一百五" 150."""
    if not text or any(ch not in _CN_DIGITS and ch not in _CN_UNITS and ch != "万" for ch in text):
        return None
    if all(ch in _CN_DIGITS for ch in text):  # read digit by digit: "二〇二六"
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total = section = num = 0
    last_unit = 1
    for ch in text:
        if ch in _CN_DIGITS:
            num = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            if num == 0:
                num = 1  # "十五" is 15, "一千零十" is 1010
            section += num * _CN_UNITS[ch]
            num, last_unit = 0, _CN_UNITS[ch]
        else:  # 万
            total += ((section + num) or 1) * 10000
            section = num = 0
            last_unit = 10000
    if num and len(text) >= 2 and text[-2] in "百千万":
        num *= last_unit // 10  # colloquial "一百五" = 150, "两千五" = 2500
    return total + section + num


def _small_int(text: str) -> int | None:
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    return _cn_int(text)


_NUM = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
_CUR_PREFIX = r"¥|us\$|hk\$|\$|rmb|cny|usd|hkd|€|£"
_CUR_SUFFIX_ZH = r"块钱|元钱|人民币|美元|美金|元|块|圆|刀"
_CUR_SUFFIX_EN = r"yuan|rmb|cny|usd|hkd|dollars?|bucks?"
_UNIT_YUAN = {"元", "块", "圆", "块钱", "元钱"}

_AMOUNT_RE = re.compile(
    rf"(?:{_CUR_PREFIX})?(?P<num>{_NUM})(?P<mult>万|千|k)?"
    rf"(?:(?P<unit>{_CUR_SUFFIX_ZH}|{_CUR_SUFFIX_EN})"
    r"(?:(?P<jiao>[0-9])(?:毛|角)?(?:(?P<fen>[0-9])分?)?)?)?"
)
_CN_RUN_RE = re.compile(rf"(?<![0-9.])[{_CN}]+(?:点{_CN_DIGIT}+)?")


def _cn_run_to_ascii(match: re.Match[str]) -> str:
    whole, _, frac = match.group().partition("点")
    value = _cn_int(whole)
    if value is None:
        return match.group()
    if frac:
        return f"{value}." + "".join(str(_CN_DIGITS[ch]) for ch in frac)
    return str(value)


def parse_amount(text: str) -> Decimal | None:
    """Read an amount typed by a user, or None; see the module docstring.

    Accepts "88", "88.5", "¥88", "88块5" (88.5), "88 yuan", "CNY 88", "$12.30", "1,288.50",
    "1.5万", Chinese numerals ("八十八元", "一百零五块", "两百", "三块五"), full-width digits.
    Rejects negatives, exponents, inf/nan, more than 2 decimals, zero and more than
    :data:`MAX_AMOUNT`. The result is quantized to cents.
    """
    compact = re.sub(r"\s+", "", normalize_input(text).lower())
    if not compact or len(compact) > 40:
        return None
    compact = _CN_RUN_RE.sub(_cn_run_to_ascii, compact)
    match = _AMOUNT_RE.fullmatch(compact)
    if match is None:
        return None
    num = match.group("num")
    try:
        value = Decimal(num.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern only lets digits through
        return None
    if not value.is_finite():  # pragma: no cover
        return None
    mult, jiao, fen = match.group("mult"), match.group("jiao"), match.group("fen")
    if mult:
        value *= {"万": 10000, "千": 1000, "k": 1000}[mult]
        if value != value.quantize(CENT):
            return None
    elif "." in num and len(num.partition(".")[2]) > 2:
        return None
    if jiao is not None:
        if "." in num or mult or match.group("unit") not in _UNIT_YUAN:
            return None
        value += Decimal(jiao) / 10 + Decimal(fen or 0) / 100
    if not 0 < value <= MAX_AMOUNT:
        return None
    return value.quantize(CENT)


# --- dates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hit:
    """A recognised date expression: local dates [start, end), alternatives, implied part."""

    start: date
    end: date
    alternatives: tuple[tuple[date, date], ...] = ()
    part: str | None = None

    @property
    def single_day(self) -> bool:
        return self.end - self.start == timedelta(days=1)


def _day(d: date, alternatives: Iterable[date] = (), part: str | None = None) -> _Hit:
    one = timedelta(days=1)
    return _Hit(d, d + one, tuple((a, a + one) for a in alternatives), part)


def _period(start: date, end: date, today: date) -> _Hit:
    """A multi-day period; one that contains today ends at the end of today."""
    if start <= today < end:
        end = today + timedelta(days=1)
    return _Hit(start, end)


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _recent_day_of_month(day: int, today: date) -> date | None:
    """The most recent ``day``-th of a month that is not after today."""
    year, month = today.year, today.month
    for _ in range(13):
        found = _make_date(year, month, day)
        if found is not None and found <= today:
            return found
        year, month = _shift_month(year, month, -1)
    return None


def _recent_month_day(month: int, day: int, today: date) -> date | None:
    """The most recent month/day that is not after today (up to 8 years back for 29 Feb)."""
    for year in range(today.year, today.year - 9, -1):
        found = _make_date(year, month, day)
        if found is not None and found <= today:
            return found
    return None


def _month_hit(year: int, month: int, today: date) -> _Hit | None:
    if not 1 <= month <= 12 or not 1 <= year <= 9998:
        return None
    next_year, next_month = _shift_month(year, month, 1)
    return _period(date(year, month, 1), date(next_year, next_month, 1), today)


def _recent_month(month: int, today: date) -> _Hit | None:
    if not 1 <= month <= 12:
        return None
    year = today.year if month <= today.month else today.year - 1
    return _month_hit(year, month, today)


def _monday(today: date) -> date:
    return today - timedelta(days=today.weekday())


def _weekday_hit(weekday: int, mode: str, today: date) -> _Hit:
    """``mode``: "recent" (bare), "before" (English "last"), or a week offset "-2".."1"."""
    if mode == "recent":
        found = today - timedelta(days=(today.weekday() - weekday) % 7)
        return _day(found, [found - timedelta(days=7)] if found == today else [])
    if mode == "before":
        found = today - timedelta(days=(today.weekday() - weekday) % 7 or 7)
        in_this_week = found >= _monday(today)
        return _day(found, [found - timedelta(days=7)] if in_this_week else [])
    return _day(_monday(today) + timedelta(days=7 * int(mode) + weekday))


def _rolling(days: int, today: date) -> _Hit | None:
    if not 1 <= days <= 3660:
        return None
    return _Hit(today - timedelta(days=days - 1), today + timedelta(days=1))


_MONTHS = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAYS_EN = {
    "monday": 0,
    "mon": 0,
    "tuesday": 1,
    "tues": 1,
    "tue": 1,
    "wednesday": 2,
    "wed": 2,
    "thursday": 3,
    "thurs": 3,
    "thur": 3,
    "thu": 3,
    "friday": 4,
    "fri": 4,
    "saturday": 5,
    "sat": 5,
    "sunday": 6,
    "sun": 6,
}
_WEEKDAY_EN_RE = "|".join(sorted(_WEEKDAYS_EN, key=len, reverse=True))
_WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_EN_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "fourteen": 14,
    "thirty": 30,
    "ninety": 90,
}
_EN_NUMBER_RE = "|".join(_EN_NUMBERS)
_ORD = "(?:st|nd|rd|th)"
_YEAR = "(?:19|20)[0-9]{2}"


def _en(pattern: str) -> str:
    """Delimit an English pattern by non-letters (``\\b`` fails next to Chinese)."""
    return rf"(?<![a-z])(?:{pattern})(?![a-z])"


_RELATIVE = {
    "大前天": (-3, None),
    "前天": (-2, None),
    "昨天": (-1, None),
    "昨日": (-1, None),
    "昨晚": (-1, "evening"),
    "昨夜": (-1, "night"),
    "今天": (0, None),
    "今日": (0, None),
    "今早": (0, "morning"),
    "今晚": (0, "evening"),
    "今夜": (0, "night"),
    "the day before yesterday": (-2, None),
    "day before yesterday": (-2, None),
    "yesterday": (-1, None),
    "today": (0, None),
    "tonight": (0, "evening"),
    "last night": (-1, "night"),
    "this morning": (0, "morning"),
    "this afternoon": (0, "afternoon"),
    "this evening": (0, "evening"),
}

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str], date], _Hit | None]]


def _h_iso(m: re.Match[str], today: date) -> _Hit | None:
    found = _make_date(int(m[1]), int(m[2]), int(m[3]))
    return _day(found) if found else None


def _h_month_day(month: str | None, day: str | None, year: str | None, today: date) -> _Hit | None:
    month_n = _MONTHS.get(month or "") or _small_int(month or "")
    day_n = _small_int(day or "")
    if not month_n or not day_n:
        return None
    if year:
        found = _make_date(int(year), month_n, day_n)
    elif 1 <= month_n <= 12 and 1 <= day_n <= 31:
        found = _recent_month_day(month_n, day_n, today)
    else:
        found = None
    return _day(found) if found else None


def _h_relative(m: re.Match[str], today: date) -> _Hit | None:
    key = " ".join(m.group().split())
    if key in _RELATIVE:
        offset, part = _RELATIVE[key]
        return _day(today + timedelta(days=offset), part=part)
    days = _small_int(m["ago_zh"] or m["ago_en"] or "")
    if days is None or not 0 <= days <= 3660:
        return None
    return _day(today - timedelta(days=days))


_ZH_WEEK_OFFSETS = {"上上": "-2", "上": "-1", "这": "0", "本": "0", "下": "1"}


def _h_weekday_zh(m: re.Match[str], today: date) -> _Hit | None:
    key = m[2]
    weekday = _WEEKDAYS_ZH[key] if key in _WEEKDAYS_ZH else int(key) - 1
    prefix = (m[1] or "").replace("个", "")
    return _weekday_hit(weekday, _ZH_WEEK_OFFSETS.get(prefix, "recent"), today)


def _h_weekday_en(m: re.Match[str], today: date) -> _Hit | None:
    prefix = m[1] or ""
    mode = {"last": "before", "previous": "before", "past": "before", "this": "0", "next": "1"}
    return _weekday_hit(_WEEKDAYS_EN[m[2]], mode.get(prefix, "recent"), today)


def _h_rolling(m: re.Match[str], today: date) -> _Hit | None:
    raw = m["n"]
    count = 1 if raw is None else _EN_NUMBERS.get(raw) or _small_int(raw)
    if not count:
        return None
    unit = m["unit"]
    size = 7 if unit[0] in "周星礼w" else 30 if unit[0] in "月m" else 1
    return _rolling(count * size, today)


_PERIOD_SHIFTS = {"上上": -2, "上": -1, "这": 0, "本": 0, "当": 0, "今": 0, "去": -1}
_PERIOD_SHIFTS_EN = {"last": -1, "previous": -1, "this": 0}


def _h_period(m: re.Match[str], today: date) -> _Hit | None:
    if m["zp"]:
        shift, unit = _PERIOD_SHIFTS[m["zp"]], m["zu"]
    else:
        shift, unit = _PERIOD_SHIFTS_EN[m["ep"]], m["eu"]
    if unit in ("周", "星期", "礼拜", "week"):
        monday = _monday(today) + timedelta(days=7 * shift)
        return _period(monday, monday + timedelta(days=7), today)
    if unit in ("月", "month"):
        return _month_hit(*_shift_month(today.year, today.month, shift), today)
    year = today.year + shift
    return _period(date(year, 1, 1), date(year + 1, 1, 1), today)


def _h_relative_month_day(m: re.Match[str], today: date) -> _Hit | None:
    """ "上个月3号": a day of a month counted from this one (taken literally)."""
    year, month = _shift_month(today.year, today.month, _PERIOD_SHIFTS[m["zp"]])
    day_n = _small_int(m["day"])
    found = _make_date(year, month, day_n) if day_n else None
    return _day(found) if found else None


def _h_weekend(m: re.Match[str], today: date) -> _Hit | None:
    """Saturday and Sunday; a bare "周末"/"weekend" is the current one on a weekend day,
    else the last one."""
    prefix = m["zp"] or m["ep"]
    if prefix is None:
        shift = 0 if today.weekday() >= 5 else -1
    else:
        shift = _PERIOD_SHIFTS.get(prefix, _PERIOD_SHIFTS_EN.get(prefix, 0))
    saturday = _monday(today) + timedelta(days=7 * shift + 5)
    return _period(saturday, saturday + timedelta(days=2), today)


def _h_month_only(m: re.Match[str], today: date) -> _Hit | None:
    month = _MONTHS.get(m["name"] or "") or _small_int(m["num"] or "")
    if not month:
        return None
    if m["year"]:
        return _month_hit(int(m["year"]), month, today)
    return _recent_month(month, today)


def _h_day_of_month(m: re.Match[str], today: date) -> _Hit | None:
    day = _small_int(m["day"])
    if not day or not 1 <= day <= 31:
        return None
    found = _recent_day_of_month(day, today)
    return _day(found) if found else None


_DATE_RULES: list[_Rule] = [
    (
        re.compile(rf"(?P<zp>上上|上|这|本)个?月\s*(?P<day>[0-9]{{1,2}}|{_CN_SMALL})\s*[日号]"),
        _h_relative_month_day,
    ),
    (
        re.compile(
            rf"(?<![0-9])({_YEAR})\s*[-/.年]\s*([0-9]{{1,2}})\s*[-/.月]\s*([0-9]{{1,2}})"
            r"(?:\s*[日号])?(?![0-9])"
        ),
        _h_iso,
    ),
    (
        re.compile(
            rf"(?<![0-9])(?:(?P<year>{_YEAR})\s*年\s*)?(?P<month>[0-9]{{1,2}}|{_CN_SMALL})\s*月"
            rf"(?P<day>[0-9]{{1,2}}|{_CN_SMALL})(?:\s*[日号])?(?![0-9])"
        ),
        lambda m, t: _h_month_day(m["month"], m["day"], m["year"], t),
    ),
    (
        re.compile(
            _en(
                rf"(?P<month>{_MONTH_RE})\.?\s*(?P<day>[0-9]{{1,2}}){_ORD}?(?![0-9])"
                rf"(?:,?\s*(?P<year>{_YEAR})(?![0-9]))?"
            )
        ),
        lambda m, t: _h_month_day(m["month"], m["day"], m["year"], t),
    ),
    (
        re.compile(
            rf"(?<![0-9a-z])(?:the\s+)?(?P<day>[0-9]{{1,2}}){_ORD}?\s*(?:of\s+)?"
            rf"(?P<month>{_MONTH_RE})(?![a-z])\.?(?:,?\s*(?P<year>{_YEAR})(?![0-9]))?"
        ),
        lambda m, t: _h_month_day(m["month"], m["day"], m["year"], t),
    ),
    (
        re.compile(r"(?<![0-9/.,:\-])(?P<month>[0-9]{1,2})/(?P<day>[0-9]{1,2})(?![0-9/])"),
        lambda m, t: _h_month_day(m["month"], m["day"], None, t),
    ),
    (
        re.compile(
            "大前天|前天|昨天|昨日|昨晚|昨夜|今天|今日|今早|今晚|今夜"
            rf"|(?P<ago_zh>[0-9]{{1,4}}|{_CN_SMALL})\s*天(?:以)?前"
            + "|"
            + _en(
                r"(?:the\s+)?day\s+before\s+yesterday|yesterday|today|tonight|last\s+night"
                r"|this\s+(?:morning|afternoon|evening)|(?P<ago_en>[0-9]{1,4})\s+days?\s+ago"
            )
        ),
        _h_relative,
    ),
    (
        re.compile(
            r"(?:(?P<zp>上上|上|这|本)个?)?周末|"
            + _en(r"(?:(?P<ep>last|this|previous)\s+)?weekend")
        ),
        _h_weekend,
    ),
    (
        re.compile(r"(上上个?|上个?|这个?|本|下个?)?\s*(?:周|星期|礼拜)\s*([一二三四五六日天1-7])"),
        _h_weekday_zh,
    ),
    (
        re.compile(_en(rf"(?:(last|this|next|previous|past|on)\s+)?({_WEEKDAY_EN_RE})\.?")),
        _h_weekday_en,
    ),
    (
        re.compile(
            rf"(?:最近|近|过去)\s*(?P<n>[0-9]{{1,4}}|{_CN_SMALL})\s*个?\s*"
            r"(?P<unit>天|日|周|星期|礼拜|月)"
            + "|"
            + _en(
                rf"(?:in\s+)?(?:the\s+)?(?:this\s+)?(?:last|past|previous)\s+"
                rf"(?P<n2>[0-9]{{1,4}}|{_EN_NUMBER_RE})\s+(?P<unit2>days?|weeks?|months?)"
            )
        ),
        lambda m, t: _h_rolling(_Groups(m, {"n": "n2", "unit": "unit2"}), t),
    ),
    (
        re.compile(
            _en(r"(?:in\s+)?(?:the\s+)?(?:this\s+)?past\s+(?P<unit>week|month)")
            + rf"|(?P<n>[0-9]{{1,4}}|{_CN_SMALL})\s*天(?:以)?内"
        ),
        lambda m, t: _h_rolling(_Groups(m, {"unit": "unit", "n": "n"}, default_unit="天"), t),
    ),
    (
        re.compile(
            r"(?P<zp>上上|上|这|本)个?(?P<zu>周|星期|礼拜|月)|(?P<zp2>当|今|本|去)(?P<zu2>月|年)|"
            + _en(r"(?P<ep>last|this|previous)\s+(?P<eu>week|month|year)")
        ),
        lambda m, t: _h_period(_Groups(m, {"zp": "zp2", "zu": "zu2"}), t),
    ),
    (
        re.compile(
            rf"(?<![0-9])(?:(?P<year>{_YEAR})\s*年\s*)?(?P<num>1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九])"
            r"\s*月份?(?![0-9])"
            + "|"
            + _en(
                r"(?:(?:in|during)\s+(?P<name>"
                + _MONTH_RE
                + r")|(?P<name2>january|february|april|june|july|august|september|october"
                r"|november|december))"
            )
        ),
        lambda m, t: _h_month_only(_Groups(m, {"name": "name2"}), t),
    ),
    (
        re.compile(rf"(?<![0-9])(?P<day>[0-9]{{1,2}}|{_CN_SMALL})\s*[日号]"),
        _h_day_of_month,
    ),
    (
        re.compile(
            rf"(?<![0-9a-z])(?:on\s+)?(?:the\s+)?(?P<day>[0-9]{{1,2}}){_ORD}(?![a-z])"
            r"|(?<![a-z])on\s+the\s+(?P<day2>[0-9]{1,2})(?![0-9a-z]|[.,][0-9])"
        ),
        lambda m, t: _h_day_of_month(_Groups(m, {"day": "day2"}), t),
    ),
]


class _Groups:
    """Group access with fallbacks: ``g["n"]`` is group "n", else its alias (e.g. "n2")."""

    def __init__(
        self, match: re.Match[str], aliases: dict[str, str], default_unit: str | None = None
    ) -> None:
        self._match = match
        self._aliases = aliases
        self._default_unit = default_unit

    def __getitem__(self, name: str) -> str | None:
        groups = self._match.groupdict()
        value = groups.get(name)
        if value is None and name in self._aliases:
            value = groups.get(self._aliases[name])
        if value is None and name == "unit":
            value = self._default_unit
        return value

    def group(self) -> str:
        return self._match.group()


# --- day parts -------------------------------------------------------------------------------

_PART_RULES = [
    (re.compile("凌晨"), _PREDAWN),
    (re.compile("半夜|深夜|午夜|夜里|夜间|夜晚|" + _en("overnight|night|midnight")), "night"),
    (re.compile("下午|午后|" + _en("afternoon")), "afternoon"),
    (re.compile("中午|午饭|午餐|午间|" + _en("noon|midday|lunch(?:time)?")), "noon"),
    (re.compile("上午|早上|早晨|清晨|早饭|早餐|" + _en("morning")), "morning"),
    (re.compile("晚上|傍晚|晚饭|晚餐|晚间|" + _en("evening")), "evening"),
]


def _at(d: date, hour: int, now: datetime) -> datetime:
    """Local wall-clock time ``hour`` (may be >= 24) of day ``d`` in the zone of ``now``."""
    d += timedelta(days=hour // 24)
    return datetime.combine(d, time(hour % 24), tzinfo=now.tzinfo)


def _fold(d: date, part: str, now: datetime) -> DateRange:
    if part == _PREDAWN:
        d, part = d - timedelta(days=1), "night"
    first, last = DAY_PARTS[part]
    return _at(d, first, now), _at(d, last, now)


# --- amounts in a phrase ---------------------------------------------------------------------

_MARKED_AMOUNT_RE = re.compile(
    rf"(?<![0-9a-z])(?:{_CUR_PREFIX})\s*(?:{_NUM})(?:\s*(?:万|千|k)(?![a-z]))?"
    rf"|(?<![0-9.,])(?:{_NUM})\s*(?:万|千)?\s*"
    rf"(?:(?:{_CUR_SUFFIX_ZH})(?:[0-9](?:毛|角)?(?:[0-9]分?)?)?|(?:{_CUR_SUFFIX_EN})(?![a-z]))"
)
_MARKED_CN_AMOUNT_RE = re.compile(
    rf"[{_CN}]+(?:点{_CN_DIGIT}+)?\s*(?:{_CUR_SUFFIX_ZH})"
    rf"(?:{_CN_DIGIT}(?:毛|角)?(?:{_CN_DIGIT}分?)?)?"
)
_BARE_NUMBER_RE = re.compile(
    rf"(?<![0-9a-z.,:\-/])(?:{_NUM})"
    r"(?![0-9a-z]|[.,:][0-9]|\s*(?:号|日|月|年|天|周|个|笔|次|点|时|分|:|%|"
    r"(?:st|nd|rd|th|am|pm|h|min|times?)(?![a-z])))"
)
_TXID_RE = re.compile(r"(?<![0-9a-z])tx[0-9a-f]{14}(?![0-9a-z])")
_DAY_NUMBER_RE = re.compile(r"[0-9]{1,2}")


def _blank(pattern: re.Pattern[str], text: str) -> tuple[list[re.Match[str]], str]:
    """All matches of ``pattern`` and the text with them blanked out (same length)."""
    matches = list(pattern.finditer(text))
    if matches:
        text = pattern.sub(lambda m: " " * len(m.group()), text)
    return matches, text


def _first_amount_text(matches: Iterable[re.Match[str]]) -> tuple[Decimal | None, str]:
    for match in matches:
        amount = parse_amount(match.group())
        if amount is not None:
            return amount, match.group()
    return None, ""


def _is_whole(amount_text: str) -> bool:
    """Whether an amount was typed without decimals ("460块", not "460.61", "88块5")."""
    return not re.search(r"[.点角毛分]|[块元圆]\s*[0-9一二三四五六七八九]", amount_text)


# --- merchant words --------------------------------------------------------------------------

_LATIN_WORD_RE = re.compile(r"[a-z][a-z0-9'&]*")
_HAN_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{2,}")
#: Words that never name a merchant: how people ask, not whom they paid.
_FILLER_EN = frozenset(
    (
        "the", "and", "for", "from", "with", "that", "this", "was", "were", "what", "which", "when",
        "where", "have", "has", "had", "did", "does", "can", "could", "would", "should", "want",
        "wanted", "need", "please", "help", "check", "show", "find", "see", "look", "looking",
        "refund", "refunds", "refunded", "return", "money", "payment", "payments", "paid", "pay",
        "paying", "transaction", "transactions", "charge", "charged", "charges", "purchase",
        "purchased", "bought", "buy", "order", "ordered", "spent", "receipt", "bill", "statement",
        "history", "record", "records", "last", "yesterday", "today", "week", "month", "about",
        "get", "back", "from", "into", "onto", "you", "your", "mine", "card", "bank", "account",
        "wallet", "upay", "u-pay",
    )
)  # fmt: skip
#: Chinese runs that never name a merchant (the rest of a run may: "在京东买的" -> "京东").
_FILLER_ZH = (
    "退款", "退钱", "退货", "付款", "支付", "消费", "扣款", "扣费", "交易", "记录", "账单",
    "查询", "一下", "那笔", "这笔", "一笔", "买的", "花了", "想退", "我要", "我想", "申请",
    "帮我", "看看", "钱包", "银行", "的钱", "多少", "什么",
)  # fmt: skip


def _merchant_words(rest: str) -> tuple[str, ...]:
    latin = [w for w in _LATIN_WORD_RE.findall(rest) if len(w) >= 3 and w not in _FILLER_EN]
    han = _HAN_RUN_RE.findall(rest)
    return tuple(dict.fromkeys([*latin, *han]))


def _common_run(a: str, b: str) -> str:
    """The longest run of characters that ``a`` and ``b`` share (the first if tied)."""
    best = ""
    for i in range(len(a)):
        for j in range(i + len(best) + 1, len(a) + 1):
            if a[i:j] in b:
                best = a[i:j]
            else:
                break
    return best


def merchant_score(words: Iterable[str], merchant: str) -> int:
    """How strongly ``words`` name ``merchant`` (0: not at all); see the module docstring."""
    name = normalize_input(merchant).lower()
    latin = _LATIN_WORD_RE.findall(name)
    score = 0
    for word in words:
        if word.isascii():
            if any(m == word or (len(word) >= 4 and m.startswith(word)) for m in latin):
                score += len(word)
            continue
        for run in _HAN_RUN_RE.findall(name):
            shared = _common_run(word, run)
            if len(shared) >= 2 and not any(shared in filler for filler in _FILLER_ZH):
                score += len(shared)
    return score


# --- the query -------------------------------------------------------------------------------


def parse_query(text: str, now: datetime) -> TxQuery:
    """Parse a lookup message; ``now`` is tz-aware in the configured zone (see module doc)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (in the configured zone)")
    clean = normalize_input(text[: MAX_QUERY_CHARS * 4])[:MAX_QUERY_CHARS].lower()
    if not clean:
        return EMPTY
    today = now.date()

    tx_id = _TXID_RE.search(clean)
    if tx_id:
        return TxQuery(tx_id.group().upper(), None, None, None, None)

    whole = parse_amount(clean)
    if whole is not None:
        alternatives: tuple[DateRange, ...] = ()
        if _DAY_NUMBER_RE.fullmatch(clean):
            day = _recent_day_of_month(int(clean), today) if 1 <= int(clean) <= 31 else None
            if day is not None:
                alternatives = ((_at(day, 0, now), _at(day, 24, now)),)
        return TxQuery(None, None, None, whole, None, alternatives, approximate=_is_whole(clean))

    marked, rest = _blank(_MARKED_AMOUNT_RE, clean)
    amount, amount_text = _first_amount_text(marked)

    hit: _Hit | None = None
    for pattern, handler in _DATE_RULES:
        matches, rest = _blank(pattern, rest)
        for match in matches if hit is None else ():
            hit = handler(match, today)
            if hit is not None:
                break

    part = next((name for pattern, name in _PART_RULES if pattern.search(rest)), None)
    if hit is not None and hit.part is not None and part is None:
        part = hit.part

    marked_cn, rest = _blank(_MARKED_CN_AMOUNT_RE, rest)
    if amount is None:
        amount, amount_text = _first_amount_text(marked_cn)
    if amount is None:
        bare, rest = _blank(_BARE_NUMBER_RE, rest)
        amount, amount_text = _first_amount_text(bare)
    words = _merchant_words(rest)

    start = end = None
    ranges: tuple[DateRange, ...] = ()
    day_part = None
    if hit is not None:
        if part is not None and hit.single_day:
            start, end = _fold(hit.start, part, now)
            ranges = tuple(_fold(a, part, now) for a in (s for s, _ in hit.alternatives))
            day_part = "night" if part == _PREDAWN else part
        else:
            start, end = _at(hit.start, 0, now), _at(hit.end, 0, now)
            ranges = tuple((_at(s, 0, now), _at(e, 0, now)) for s, e in hit.alternatives)
    elif part is not None:
        start, end = _fold(today, part, now)
        if start > now:  # not begun yet today: the most recent one was yesterday's
            start, end = _fold(today - timedelta(days=1), part, now)
        day_part = "night" if part == _PREDAWN else part
    return TxQuery(
        None,
        start,
        end,
        amount,
        day_part,
        ranges,
        words=words,
        approximate=amount is not None and _is_whole(amount_text),
    )


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC); comparing in UTC avoids the
    wall-clock comparison Python does between datetimes sharing one tzinfo."""
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _within(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or _utc(start) <= moment) and (end is None or moment < _utc(end))


def _near(amount: Decimal, wanted: Decimal) -> bool:
    return wanted - Decimal("0.5") <= abs(amount) < wanted + 1


def match_transactions(query: TxQuery, transactions: Iterable[Transaction]) -> list[Transaction]:
    """The transactions a query asks for, newest first (see the module docstring)."""
    if query.is_empty and not query.words:
        return []
    ranges: list[tuple[datetime | None, datetime | None]] = []
    if query.start is not None or query.end is not None:
        ranges = [(query.start, query.end), *query.alternatives]
    found = []
    for tx in transactions:
        created = _utc(tx.created_at)
        if query.transaction_id is not None and tx.id.upper() != query.transaction_id:
            continue
        if ranges and not any(_within(created, start, end) for start, end in ranges):
            continue
        found.append(tx)
    if query.words and query.transaction_id is None:
        scores = {tx.id: merchant_score(query.words, tx.merchant) for tx in found}
        top = max(scores.values(), default=0)
        if top > 0:
            found = [tx for tx in found if scores[tx.id] == top]
        elif query.is_empty:
            found = []  # words alone that name no merchant find nothing
    if query.amount is not None:
        exact = [tx for tx in found if abs(tx.amount) == query.amount]
        if not exact and query.approximate:
            exact = [tx for tx in found if _near(tx.amount, query.amount)]
        found = exact
    found.sort(key=lambda tx: _utc(tx.created_at), reverse=True)
    return found
