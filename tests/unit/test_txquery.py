"""Transaction lookup phrases: ids, dates in the configured zone, day parts, amounts."""

import time as clock
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tgbot.backend.base import Transaction
from tgbot.txquery import TxQuery, match_transactions, parse_amount, parse_query

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Thursday 2026-11-05 21:30 in Shanghai.
NOW = datetime(2026, 11, 5, 21, 30, tzinfo=SHANGHAI)


def local(text: str, tz=SHANGHAI) -> datetime:
    """ "2026-11-03" or "2026-11-03 18:00" as an aware datetime in ``tz``."""
    fmt = "%Y-%m-%d %H:%M" if " " in text else "%Y-%m-%d"
    return datetime.strptime(text, fmt).replace(tzinfo=tz)


def day(text: str, tz=SHANGHAI) -> tuple[datetime, datetime]:
    start = local(text, tz)
    return start, local((start + timedelta(days=1)).strftime("%Y-%m-%d"), tz)


def d(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


# text, start, end (local, Shanghai), amount, day part -- all with now = NOW (a Thursday).
PHRASES = [
    # Chinese
    ("3号", "2026-11-03", "2026-11-04", None, None),
    ("3日", "2026-11-03", "2026-11-04", None, None),
    ("三号", "2026-11-03", "2026-11-04", None, None),
    ("11月3日", "2026-11-03", "2026-11-04", None, None),
    ("11月3号的", "2026-11-03", "2026-11-04", None, None),
    ("十一月三日", "2026-11-03", "2026-11-04", None, None),
    ("2026年11月3日", "2026-11-03", "2026-11-04", None, None),
    ("前天", "2026-11-03", "2026-11-04", None, None),
    ("前天晚上", "2026-11-03 18:00", "2026-11-04", None, "evening"),
    ("前天夜里", "2026-11-03 21:00", "2026-11-04 05:00", None, "night"),
    ("昨天凌晨", "2026-11-03 21:00", "2026-11-04 05:00", None, "night"),
    ("昨天下午", "2026-11-04 12:00", "2026-11-04 18:00", None, "afternoon"),
    ("昨天中午", "2026-11-04 11:00", "2026-11-04 14:00", None, "noon"),
    ("昨晚", "2026-11-04 18:00", "2026-11-05", None, "evening"),
    ("今天早上", "2026-11-05 05:00", "2026-11-05 12:00", None, "morning"),
    ("大前天", "2026-11-02", "2026-11-03", None, None),
    ("3天前", "2026-11-02", "2026-11-03", None, None),
    ("上周五 88块", "2026-10-30", "2026-10-31", "88", None),
    ("上星期五", "2026-10-30", "2026-10-31", None, None),
    ("上个礼拜五 三块五", "2026-10-30", "2026-10-31", "3.5", None),
    ("周五", "2026-10-30", "2026-10-31", None, None),
    ("星期天", "2026-11-01", "2026-11-02", None, None),
    ("这周一", "2026-11-02", "2026-11-03", None, None),
    ("上周", "2026-10-26", "2026-11-02", None, None),
    ("上个月", "2026-10-01", "2026-11-01", None, None),
    ("本月", "2026-11-01", "2026-11-06", None, None),
    ("11月", "2026-11-01", "2026-11-06", None, None),
    ("最近7天", "2026-10-30", "2026-11-06", None, None),
    ("近一周", "2026-10-30", "2026-11-06", None, None),
    ("近一个月", "2026-10-07", "2026-11-06", None, None),
    ("昨天88元的那笔", "2026-11-04", "2026-11-05", "88", None),
    ("11月3号晚上 ¥88", "2026-11-03 18:00", "2026-11-04", "88", "evening"),
    ("前天 八十八元", "2026-11-03", "2026-11-04", "88", None),
    ("昨天 3笔 50元", "2026-11-04", "2026-11-05", "50", None),
    ("１１月３号 ８８块", "2026-11-03", "2026-11-04", "88", None),
    # English
    ("on the 3rd", "2026-11-03", "2026-11-04", None, None),
    ("the 3rd", "2026-11-03", "2026-11-04", None, None),
    ("Nov 3", "2026-11-03", "2026-11-04", None, None),
    ("3 November", "2026-11-03", "2026-11-04", None, None),
    ("November 3rd", "2026-11-03", "2026-11-04", None, None),
    ("11/3", "2026-11-03", "2026-11-04", None, None),
    ("2026-11-03", "2026-11-03", "2026-11-04", None, None),
    ("yesterday", "2026-11-04", "2026-11-05", None, None),
    ("day before yesterday", "2026-11-03", "2026-11-04", None, None),
    ("yesterday evening", "2026-11-04 18:00", "2026-11-05", None, "evening"),
    ("last night", "2026-11-04 21:00", "2026-11-05 05:00", None, "night"),
    ("this morning", "2026-11-05 05:00", "2026-11-05 12:00", None, "morning"),
    ("last Friday 88", "2026-10-30", "2026-10-31", "88", None),
    ("Friday", "2026-10-30", "2026-10-31", None, None),
    ("last week", "2026-10-26", "2026-11-02", None, None),
    ("last month", "2026-10-01", "2026-11-01", None, None),
    ("in October", "2026-10-01", "2026-11-01", None, None),
    ("past 7 days", "2026-10-30", "2026-11-06", None, None),
    ("payment of 88 on Monday", "2026-11-02", "2026-11-03", "88", None),
    ("yesterday 1,288.50", "2026-11-04", "2026-11-05", "1288.50", None),
    ("today at 21:30, 88 yuan", "2026-11-05", "2026-11-06", "88", None),
    ("上个月3号", "2026-10-03", "2026-10-04", None, None),
    ("上周末", "2026-10-31", "2026-11-02", None, None),
    ("last weekend", "2026-10-31", "2026-11-02", None, None),
    ("Nov 3 88", "2026-11-03", "2026-11-04", "88", None),
    ("88 on the 3rd", "2026-11-03", "2026-11-04", "88", None),
    ("2号下午3点 50", "2026-11-02 12:00", "2026-11-02 18:00", "50", "afternoon"),
    ("十号", "2026-10-10", "2026-10-11", None, None),  # the 10th of this month is ahead
    ("refund 88.5 from Nov 3, 2026", "2026-11-03", "2026-11-04", "88.5", None),
    # a day part alone: the most recent one that has begun (21:30: this evening)
    ("晚上", "2026-11-05 18:00", "2026-11-06", None, "evening"),
]


@pytest.mark.parametrize(("text", "start", "end", "amount", "part"), PHRASES)
def test_phrases(text, start, end, amount, part):
    query = parse_query(text, NOW)
    assert (query.start, query.end) == (local(start), local(end))
    assert query.amount == d(amount)
    assert query.day_part == part
    assert query.transaction_id is None
    assert query.alternatives == ()
    assert query.start.tzinfo is SHANGHAI
    assert not query.is_empty


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("¥88.00", "88"),
        ("八十八元", "88"),
        ("88块", "88"),
        ("$12.30", "12.30"),
        ("88 yuan", "88"),
        ("88", "88"),  # a plain number is an amount, never a date
        ("２００", "200"),
        ("两百", "200"),
    ],
)
def test_amount_only(text, amount):
    query = parse_query(text, NOW)
    assert query.amount == Decimal(amount)
    assert (query.start, query.end, query.day_part, query.alternatives) == (None, None, None, ())


@pytest.mark.parametrize(
    "text", ["TX20261102A1B2C3", "tx20261102a1b2c3", "查一下 Tx20261102a1b2c3 88元"]
)
def test_transaction_id(text):
    query = parse_query(text, NOW)
    assert query == TxQuery("TX20261102A1B2C3", None, None, None, None)


@pytest.mark.parametrize(
    "text", ["", "   ", "🤖🤖", "hello", "abc", "-5", "1e9", "0", "TX123", "怎么查账单"]
)
def test_nothing_recognised(text):
    assert parse_query(text, NOW).is_empty


# --- ambiguity ---------------------------------------------------------------------------------


def test_bare_small_number_is_an_amount_with_the_day_as_alternative():
    """Rule: "3" alone is the amount 3; the 3rd is offered as a choice, not a filter."""
    query = parse_query("3", NOW)
    assert query.amount == Decimal("3")
    assert (query.start, query.end) == (None, None)
    assert query.alternatives == (day("2026-11-03"),)
    # "31" on 5 Nov: the most recent 31st is in October
    assert parse_query("31", NOW).alternatives == (day("2026-10-31"),)
    assert parse_query("88", NOW).alternatives == ()


def test_weekday_said_on_that_weekday_offers_last_week():
    friday = datetime(2026, 11, 6, 10, 0, tzinfo=SHANGHAI)
    for text in ("周五", "星期五", "Friday"):
        query = parse_query(text, friday)
        assert (query.start, query.end) == day("2026-11-06")
        assert query.alternatives == (day("2026-10-30"),)


def test_weekday_with_day_part_folds_alternatives_too():
    friday = datetime(2026, 11, 6, 22, 0, tzinfo=SHANGHAI)
    query = parse_query("周五晚上", friday)
    assert (query.start, query.end) == (local("2026-11-06 18:00"), local("2026-11-07"))
    assert query.alternatives == ((local("2026-10-30 18:00"), local("2026-10-31")),)


def test_english_last_weekday_inside_this_week_offers_the_week_before():
    # "last Monday" on Thursday: most recent Monday before today (this week's), or the one before
    query = parse_query("last Monday", NOW)
    assert (query.start, query.end) == day("2026-11-02")
    assert query.alternatives == (day("2026-10-26"),)
    # "上周一" is always the previous Monday-based week
    assert (parse_query("上周一", NOW).start, parse_query("上周一", NOW).alternatives) == (
        local("2026-10-26"),
        (),
    )


def test_english_last_friday_said_on_a_friday_is_a_week_ago():
    friday = datetime(2026, 11, 6, 10, 0, tzinfo=SHANGHAI)
    query = parse_query("last Friday", friday)
    assert (query.start, query.end) == day("2026-10-30")
    assert query.alternatives == ()  # the previous week's Friday: no other reading


WEEKDAYS_EN = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@settings(max_examples=200, deadline=None)
@given(
    today=st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2100, 1, 1).date()),
    hour=st.integers(min_value=0, max_value=23),
    weekday=st.integers(min_value=0, max_value=6),
)
def test_english_last_weekday_is_that_weekday_in_the_seven_days_before_today(today, hour, weekday):
    now = datetime(today.year, today.month, today.day, hour, tzinfo=SHANGHAI)
    query = parse_query(f"last {WEEKDAYS_EN[weekday].capitalize()}", now)
    found = query.start.date()
    assert found.weekday() == weekday
    assert 1 <= (today - found).days <= 7  # before today, never today itself
    assert (query.start, query.end) == day(found.isoformat())


def test_explicit_this_week_is_literal_even_in_the_future():
    query = parse_query("这周五", NOW)
    assert (query.start, query.end) == day("2026-11-06")


# --- boundaries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "now", "start", "end"),
    [
        # the 3rd not reached yet this month: last month's
        ("3号", datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI), "2026-11-03", "2026-11-04"),
        ("3号", datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI), "2026-11-03", "2026-11-04"),
        ("the 3rd", datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI), "2026-11-03", "2026-11-04"),
        # today is the 3rd: today
        ("3号", datetime(2026, 12, 3, 0, 5, tzinfo=SHANGHAI), "2026-12-03", "2026-12-04"),
        # months without a 31st are skipped
        ("31号", datetime(2026, 12, 5, 9, 0, tzinfo=SHANGHAI), "2026-10-31", "2026-11-01"),
        # year boundary
        ("12月31日", datetime(2027, 1, 2, 9, 0, tzinfo=SHANGHAI), "2026-12-31", "2027-01-01"),
        ("Dec 31", datetime(2027, 1, 2, 9, 0, tzinfo=SHANGHAI), "2026-12-31", "2027-01-01"),
        ("前天", datetime(2027, 1, 1, 9, 0, tzinfo=SHANGHAI), "2026-12-30", "2026-12-31"),
        ("上个月", datetime(2027, 1, 2, 9, 0, tzinfo=SHANGHAI), "2026-12-01", "2027-01-01"),
        ("上周", datetime(2027, 1, 2, 9, 0, tzinfo=SHANGHAI), "2026-12-21", "2026-12-28"),
        ("12月", datetime(2027, 1, 2, 9, 0, tzinfo=SHANGHAI), "2026-12-01", "2027-01-01"),
        ("2月29日", datetime(2027, 1, 2, 9, 0, tzinfo=SHANGHAI), "2024-02-29", "2024-03-01"),
        # month boundary
        ("昨天", datetime(2026, 12, 1, 0, 10, tzinfo=SHANGHAI), "2026-11-30", "2026-12-01"),
        ("本月", datetime(2026, 12, 1, 0, 10, tzinfo=SHANGHAI), "2026-12-01", "2026-12-02"),
        # a day part that has not begun yet today: yesterday's
        ("晚上", datetime(2026, 11, 5, 8, 0, tzinfo=SHANGHAI), "2026-11-04 18:00", "2026-11-05"),
        (
            "夜里",
            datetime(2026, 11, 5, 2, 0, tzinfo=SHANGHAI),
            "2026-11-04 21:00",
            "2026-11-05 05:00",
        ),
    ],
)
def test_boundaries(text, now, start, end):
    query = parse_query(text, now)
    assert (query.start, query.end) == (local(start), local(end))


def test_weekend_on_a_weekend_day_is_the_current_one():
    sunday = datetime(2026, 11, 8, 15, 0, tzinfo=SHANGHAI)
    query = parse_query("周末", sunday)
    assert (query.start, query.end) == (local("2026-11-07"), local("2026-11-09"))


def test_chinese_numerals_without_unit_inside_a_phrase_are_not_amounts():
    query = parse_query("昨天花了八十八", NOW)
    assert (query.start, query.amount) == (local("2026-11-04"), None)


def test_dates_are_days_of_the_configured_zone_not_the_servers():
    in_utc = NOW.astimezone(UTC)
    query = parse_query("3号", in_utc)
    assert (query.start, query.end) == day("2026-11-03", UTC)
    shanghai = parse_query("3号", NOW)
    assert shanghai.start == datetime(2026, 11, 2, 16, 0, tzinfo=UTC)


def test_dst_day_is_25_hours():
    new_york = ZoneInfo("America/New_York")  # DST ended on 2026-11-01
    query = parse_query("yesterday", datetime(2026, 11, 2, 12, 0, tzinfo=new_york))
    assert query.start == datetime(2026, 11, 1, tzinfo=new_york)
    assert query.end.astimezone(UTC) - query.start.astimezone(UTC) == timedelta(hours=25)


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        parse_query("3号", datetime(2026, 11, 5, 21, 30))


def test_huge_input_is_quick():
    began = clock.perf_counter()
    for text in ("上周五 88块 " + "哈" * 10_000, "8" * 10_000, "3号 " * 2_500, "🤖" * 10_000):
        parse_query(text, NOW)
    assert clock.perf_counter() - began < 1.0
    query = parse_query("上周五 88块 " + "x" * 10_000, NOW)
    assert (query.start, query.amount) == (local("2026-10-30"), Decimal("88"))


# --- parse_amount ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("88", "88"),
        ("88.5", "88.5"),
        ("88.00", "88"),
        ("¥88", "88"),
        ("￥88.00", "88"),
        ("88块", "88"),
        ("88元", "88"),
        ("88块5", "88.5"),
        ("88块5毛", "88.5"),
        ("88 yuan", "88"),
        ("CNY 88", "88"),
        ("$12.30", "12.30"),
        ("RMB88", "88"),
        ("八十八元", "88"),
        ("一百零五块", "105"),
        ("两百", "200"),
        ("三块五", "3.5"),
        ("十块", "10"),
        ("一百五", "150"),
        ("八十八点五元", "88.5"),
        ("８８", "88"),
        ("1,288.50", "1288.50"),
        ("1.5万", "15000"),
        ("1000000", "1000000"),
        ("abc", None),
        ("-5", None),
        ("1e9", None),
        ("0.001", None),
        ("", None),
        ("inf", None),
        ("nan", None),
        ("Infinity", None),
        ("1,000,000,000", None),
        ("1000000.01", None),
        ("0", None),
        ("1,2345", None),
        ("88块5.5", None),
        ("9" * 100, None),
    ],
)
def test_parse_amount(text, expected):
    assert parse_amount(text) == d(expected)


def test_parse_amount_is_cents():
    assert str(parse_amount("88")) == "88.00"
    assert str(parse_amount("88块5")) == "88.50"


# --- match_transactions ------------------------------------------------------------------------


def tx(tx_id: str, created_utc: str, amount: str) -> Transaction:
    return Transaction(
        id=tx_id,
        account_id="acc",
        created_at=datetime.fromisoformat(created_utc).replace(tzinfo=UTC),
        amount=Decimal(amount),
        currency="CNY",
        merchant="商户",
        status="success",
    )


# 16:30 UTC on the 2nd is 00:30 on the 3rd in Shanghai
EDGE = tx("TX20261102A1B2C3", "2026-11-02 16:30", "88.00")
BEFORE = tx("TX20261102000001", "2026-11-02 15:59", "88.00")  # 23:59 on the 2nd in Shanghai
EVENING_88 = tx("TX20261103000002", "2026-11-03 12:00", "88")  # 20:00 on the 3rd
EVENING_35 = tx("TX20261103000003", "2026-11-03 13:00", "35.50")  # 21:00 on the 3rd
FRIDAY_88 = tx("TX20261030000004", "2026-10-30 04:00", "88.00")  # 12:00 Fri 30 Oct
TODAY_12 = tx("TX20261105000005", "2026-11-05 01:00", "12.30")
ALL = [BEFORE, FRIDAY_88, EDGE, EVENING_35, TODAY_12, EVENING_88]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3号", [EVENING_35, EVENING_88, EDGE]),
        ("前天", [EVENING_35, EVENING_88, EDGE]),
        ("前天晚上", [EVENING_35, EVENING_88]),
        ("3号 88块", [EVENING_88, EDGE]),  # the amount disambiguates within the day
        ("前天晚上 35.5", [EVENING_35]),
        ("88", [EVENING_88, EDGE, BEFORE, FRIDAY_88]),
        ("上周五 88块", [FRIDAY_88]),  # the date disambiguates the same amount
        ("last Friday 88", [FRIDAY_88]),
        ("2号 ¥88.00", [BEFORE]),
        ("tx20261102a1b2c3", [EDGE]),
        ("$12.30", [TODAY_12]),
        ("this morning", [TODAY_12]),
        ("最近7天", [TODAY_12, EVENING_35, EVENING_88, EDGE, BEFORE, FRIDAY_88]),
        ("hello", []),
        ("3号 999元", []),
    ],
)
def test_match_transactions(text, expected):
    assert match_transactions(parse_query(text, NOW), ALL) == expected


def test_match_in_utc_misses_the_shanghai_midnight_transaction():
    assert EDGE in match_transactions(parse_query("3号", NOW), ALL)
    in_utc = match_transactions(parse_query("3号", NOW.astimezone(UTC)), ALL)
    assert in_utc == [EVENING_35, EVENING_88]


def test_match_uses_alternatives():
    friday = datetime(2026, 10, 30, 23, 0, tzinfo=SHANGHAI)
    older = tx("TX20261023000006", "2026-10-23 04:00", "88.00")
    query = parse_query("周五 88", friday)
    assert query.alternatives == (day("2026-10-23"),)
    assert match_transactions(query, [older, FRIDAY_88]) == [FRIDAY_88, older]


def test_bare_number_alternatives_do_not_narrow():
    three = tx("TX20261101000007", "2026-11-01 02:00", "3")
    assert match_transactions(parse_query("3", NOW), [three, EDGE]) == [three]


def test_match_across_a_dst_change_uses_real_instants():
    new_york = ZoneInfo("America/New_York")  # 2026-11-01 lasts 25 hours
    late = tx("TX20261102000008", "2026-11-02 04:30", "5")  # 23:30 EST on the 1st
    next_day = tx("TX20261102000009", "2026-11-02 05:00", "5")  # 00:00 EST on the 2nd
    query = parse_query("yesterday", datetime(2026, 11, 2, 12, 0, tzinfo=new_york))
    assert match_transactions(query, [late, next_day]) == [late]


def test_match_naive_created_at_is_utc():
    naive = Transaction(
        id="TX20261102FFFFFF",
        account_id="acc",
        created_at=datetime(2026, 11, 2, 16, 30),
        amount=Decimal("88"),
        currency="CNY",
        merchant="m",
        status="success",
    )
    assert match_transactions(parse_query("3号", NOW), [naive]) == [naive]


# --- merchants and approximate amounts -------------------------------------------------------

MERCHANTS = ("京东商城", "星巴克", "Starbucks", "Tom & Jerry's <Café>", "Apple Store", "美团外卖")


def shop(
    tx_id: str, merchant: str, amount: str, created_utc: str = "2026-11-03 12:00"
) -> Transaction:
    return Transaction(
        id=tx_id,
        account_id="acc",
        created_at=datetime.fromisoformat(created_utc).replace(tzinfo=UTC),
        amount=Decimal(amount),
        currency="CNY",
        merchant=merchant,
        status="success",
    )


JD = shop("TXJD", "京东商城", "460.61", "2026-10-30 04:00")  # Friday 30 Oct, Shanghai noon
SB = shop("TXSB", "Starbucks", "94.20")
SB2 = shop("TXSB2", "Starbucks", "35.00", "2026-11-01 12:00")
MT = shop("TXMT", "美团外卖", "94.00")
SHOPS = [JD, SB, SB2, MT]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("上周五在京东买的鞋想退", [JD]),  # date + merchant
        ("460块", [JD]),  # users round: 460 finds 460.61
        ("460.00", []),  # typed with cents: exact only
        ("starbucks 94", [SB]),  # merchant + rounded amount
        ("starbucks", [SB, SB2]),  # a merchant alone
        ("94", [MT]),  # an exact amount wins over a rounded one
        ("refund starbucks 94", [SB]),
        ("check the payment on the 3rd", [SB, MT]),  # filler words do not narrow
        ("我在京东买的", [JD]),
        ("costco", []),  # a word alone that names no merchant finds nothing
        ("costco 94", [MT]),  # ... but with an amount it is ignored
    ],
)
def test_merchants_and_rounded_amounts(text, expected):
    assert match_transactions(parse_query(text, NOW), SHOPS) == expected


def test_words_are_kept_apart_from_dates_and_amounts():
    query = parse_query("上周五在京东买的 460块", NOW)
    assert query.amount == Decimal("460") and query.approximate
    assert query.start == local("2026-10-30") and any("京东" in w for w in query.words)
    assert not parse_query("460.61", NOW).approximate
    assert not parse_query("88块5", NOW).approximate
    assert parse_query("hello", NOW).is_empty and parse_query("hello", NOW).words == ("hello",)


@settings(max_examples=300, deadline=None)
@given(
    merchant=st.sampled_from(MERCHANTS),
    cents=st.integers(min_value=100, max_value=9_999_999),
)
def test_a_rounded_amount_finds_the_payment_and_never_one_a_unit_away(merchant, cents):
    amount = Decimal(cents).scaleb(-2)
    paid = shop("TXA", merchant, str(amount))
    far = shop("TXB", merchant, str(amount + 1))
    for typed in (int(amount), int(amount.quantize(Decimal(1), rounding="ROUND_HALF_UP"))):
        query = parse_query(f"{typed}块", NOW)
        assert query.approximate
        found = match_transactions(query, [paid, far])
        assert paid in found
        assert far not in found or int(far.amount) == typed


@settings(max_examples=300, deadline=None)
@given(
    merchant=st.sampled_from(MERCHANTS),
    filler=st.text(alphabet="的了吗呢啊 我想要查退款那笔 the check my payment", max_size=20),
)
def test_a_merchant_named_in_any_filler_is_found(merchant, filler):
    key = merchant.split()[0].lower() if merchant[0].isascii() else merchant[:2]
    others = [shop(f"TX{i}", m, "10.00") for i, m in enumerate(MERCHANTS) if m != merchant]
    wanted = shop("TXW", merchant, "10.00")
    found = match_transactions(parse_query(f"{filler} {key} {filler}", NOW), [*others, wanted])
    assert wanted in found
    # Another merchant is found too only if it shares the name (星巴克 / Starbucks do not).
    assert all(t.merchant == merchant for t in found)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_and_matches_without_error(text):
    query = parse_query(text, NOW)
    found = match_transactions(query, SHOPS)
    assert set(found) <= set(SHOPS)
    if query.is_empty and not query.words:
        assert found == []
