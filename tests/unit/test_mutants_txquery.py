"""The transaction phrase parser pinned at the edges its phrase table leaves loose: every
period word, week prefixes, weekends seen from a weekend, the ends of each number range,
Chinese numerals with 万, open date ranges, and which rule wins when several match.

Every expected date is worked out by hand from ``NOW`` (Thursday 2026-11-05 21:30 in Shanghai;
Monday of its week is 11-02). Written to kill the mutants of ``tgbot/txquery.py`` that the
phrase tests let live (``scripts/mutate.sh txquery``, docs/testing.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tgbot.backend.base import Transaction
from tgbot.txquery import TxQuery, match_transactions, merchant_score, parse_amount, parse_query

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 5, 21, 30, tzinfo=SHANGHAI)


def local(text: str) -> datetime:
    fmt = "%Y-%m-%d %H:%M" if " " in text else "%Y-%m-%d"
    return datetime.strptime(text, fmt).replace(tzinfo=SHANGHAI)


def span(text: str, now: datetime = NOW) -> tuple[str, str] | None:
    """The local dates a phrase asks for, as ("start", "end") with the end excluded."""
    query = parse_query(text, now)
    if query.start is None:
        return None
    assert query.end is not None
    return (query.start.strftime("%Y-%m-%d"), query.end.strftime("%Y-%m-%d"))


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        # periods: the current one ends at the end of today
        ("今年", ("2026-01-01", "2026-11-06")),
        ("this year", ("2026-01-01", "2026-11-06")),
        ("去年", ("2025-01-01", "2026-01-01")),
        ("last year", ("2025-01-01", "2026-01-01")),
        ("本月", ("2026-11-01", "2026-11-06")),
        ("上星期", ("2026-10-26", "2026-11-02")),
        ("上礼拜", ("2026-10-26", "2026-11-02")),
        ("上上周", ("2026-10-19", "2026-10-26")),
        # weekdays with a prefix
        ("previous thursday", ("2026-10-29", "2026-10-30")),  # not today: the one before
        ("past thursday", ("2026-10-29", "2026-10-30")),
        ("this friday", ("2026-11-06", "2026-11-07")),
        ("next monday", ("2026-11-09", "2026-11-10")),
        ("上个周二", ("2026-10-27", "2026-10-28")),
        ("周1", ("2026-11-02", "2026-11-03")),
        ("周7", ("2026-11-01", "2026-11-02")),
        # weekends, on a Thursday
        ("周末", ("2026-10-31", "2026-11-02")),
        ("weekend", ("2026-10-31", "2026-11-02")),
        ("这周末", ("2026-11-07", "2026-11-09")),
        ("this weekend", ("2026-11-07", "2026-11-09")),
        ("上上周末", ("2026-10-24", "2026-10-26")),
        # months
        ("2025年3月", ("2025-03-01", "2025-04-01")),
        ("十二月", ("2025-12-01", "2026-01-01")),
        ("1月", ("2026-01-01", "2026-02-01")),
        ("january", ("2026-01-01", "2026-02-01")),
        ("in march", ("2026-03-01", "2026-04-01")),
        # days ago, rolling windows, at both ends of their ranges
        ("0天前", ("2026-11-05", "2026-11-06")),
        ("3660天前", ("2016-10-28", "2016-10-29")),  # ten years (3652 days) and 8
        ("3661天前", None),
        ("5 days ago", ("2026-10-31", "2026-11-01")),
        ("最近1天", ("2026-11-05", "2026-11-06")),
        ("最近3660天", ("2016-10-29", "2026-11-06")),
        ("最近3661天", None),
        ("past week", ("2026-10-30", "2026-11-06")),
        ("last two weeks", ("2026-10-23", "2026-11-06")),
        ("last 2 weeks", ("2026-10-23", "2026-11-06")),
        ("last 2 months", ("2026-09-07", "2026-11-06")),
        ("3天内", ("2026-11-03", "2026-11-06")),
        # days of a month
        ("1号", ("2026-11-01", "2026-11-02")),
        ("1/15", ("2026-01-15", "2026-01-16")),
        ("11/1", ("2026-11-01", "2026-11-02")),
        ("11/5", ("2026-11-05", "2026-11-06")),  # today itself, not a year ago
        ("2/30", None),
        ("2026-02-30", None),
        ("上上个月31号", None),  # there is no 31 September
        # several dates: the first rule that finds one wins, and within a rule the first match
        ("昨天 3号", ("2026-11-04", "2026-11-05")),
        ("昨天 前天", ("2026-11-04", "2026-11-05")),
        ("2/30 3/4", ("2026-03-04", "2026-03-05")),
    ],
)
def test_dates_at_the_edges(text, dates):
    assert span(text) == dates


@pytest.mark.parametrize(
    ("now", "dates"),
    [
        (datetime(2026, 11, 7, 12, 0, tzinfo=SHANGHAI), ("2026-11-07", "2026-11-08")),  # Sat
        (datetime(2026, 11, 8, 12, 0, tzinfo=SHANGHAI), ("2026-11-07", "2026-11-09")),  # Sun
        (datetime(2026, 11, 6, 12, 0, tzinfo=SHANGHAI), ("2026-10-31", "2026-11-02")),  # Fri
    ],
)
def test_a_bare_weekend_on_a_weekend_is_this_one(now, dates):
    assert span("周末", now) == dates


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("两万", "20000"),
        ("一万五千", "15000"),
        ("一万五", "15000"),
        ("十万块", "100000"),
        ("万块", "10000"),
        ("一千二百", "1200"),
        ("千五块", "1500"),
        ("三点五六元", "3.56"),
        ("一千零十", "1010"),
        ("两千零十块", "2010"),
        ("2千", "2000"),
        ("1.5k", "1500"),
        ("88块56", "88.56"),
        ("88刀5", None),  # jiao only after yuan
        ("88.5块5", None),  # jiao only after a whole number
        ("1万块5", None),
        ("0" * 39 + "1", "1"),  # forty characters: still read
        ("0" * 40 + "1", None),  # forty-one: too long to be an amount
    ],
)
def test_amounts_in_chinese_numerals_and_at_the_length_limit(text, amount):
    assert parse_amount(text) == (None if amount is None else Decimal(amount))


def test_a_period_that_ended_yesterday_does_not_reach_into_today():
    monday = datetime(2026, 11, 2, 12, 0, tzinfo=SHANGHAI)
    assert span("上周", monday) == ("2026-10-26", "2026-11-02")


def test_a_bare_day_number_is_an_amount_or_that_day():
    query = parse_query("1", NOW)
    assert query.amount == Decimal("1")
    assert query.alternatives == ((local("2026-11-01"), local("2026-11-02")),)


def test_predawn_alone_is_last_night_and_no_amount_is_not_approximate():
    query = parse_query("凌晨", NOW)
    assert (query.start, query.end, query.day_part) == (
        local("2026-11-04 21:00"),
        local("2026-11-05 05:00"),
        "night",
    )
    assert parse_query("昨天", NOW).approximate is False


def test_a_day_part_that_begins_right_now_is_todays():
    now = datetime(2026, 11, 5, 18, 0, tzinfo=SHANGHAI)
    query = parse_query("evening", now)
    assert (query.start, query.end) == (local("2026-11-05 18:00"), local("2026-11-06"))


class _NoOffset(tzinfo):
    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None


def test_now_must_have_an_offset():
    with pytest.raises(ValueError, match=r"^now must be timezone-aware"):
        parse_query("昨天", datetime(2026, 11, 5, 12, 0))
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        parse_query("昨天", datetime(2026, 11, 5, 12, 0, tzinfo=_NoOffset()))


def test_only_the_first_two_thousand_characters_are_read():
    spaces = " " * 2000  # collapsed by normalizing, but counted before that
    assert parse_query(spaces + "88", NOW).amount is None
    assert parse_query(spaces[:1990] + "88", NOW).amount == Decimal("88")


def test_merchant_words_are_three_letters_or_more_and_not_filler():
    assert parse_query("kfc the ab", NOW).words == ("kfc",)
    assert parse_query("starbucks昨天kfc", NOW).words == ("starbucks", "kfc")


@pytest.mark.parametrize(
    ("words", "merchant", "score"),
    [
        (["star"], "Starbucks", 4),  # four letters: a prefix counts
        (["sta"], "Starbucks", 0),
        (["apple", "store"], "Apple Store", 10),
        (["京东", "商城"], "京东商城", 4),
        (["北京"], "京东商城", 0),  # one shared character is not a name
        (["京东星巴克"], "星巴克京东", 3),  # the longest shared run, found after a shorter one
    ],
)
def test_merchant_scores(words, merchant, score):
    assert merchant_score(words, merchant) == score


def _tx(id: str, when: str, amount: str, merchant: str = "m") -> Transaction:
    return Transaction(
        id=id,
        account_id="acc",
        created_at=local(when).astimezone(UTC),
        amount=Decimal(amount),
        currency="CNY",
        merchant=merchant,
        status="success",
    )


def test_open_ranges_and_the_first_instant_of_a_range():
    early = _tx("TX20261101000001", "2026-11-01 10:00", "5")
    midnight = _tx("TX20261104000002", "2026-11-04 00:00", "5")
    later = _tx("TX20261105000003", "2026-11-05 10:00", "5")
    since = TxQuery(None, local("2026-11-04"), None, None, None)
    until = TxQuery(None, None, local("2026-11-04"), None, None)
    assert match_transactions(since, [early, midnight, later]) == [later, midnight]
    assert match_transactions(until, [early, midnight, later]) == [early]
    assert match_transactions(parse_query("昨天", NOW), [early, midnight, later]) == [midnight]


def test_a_typed_whole_amount_also_finds_amounts_just_around_it():
    low = _tx("TX20261104000004", "2026-11-04 10:00", "87.50")
    below = _tx("TX20261104000005", "2026-11-04 11:00", "87.49")
    high = _tx("TX20261104000006", "2026-11-04 12:00", "88.99")
    above = _tx("TX20261104000007", "2026-11-04 13:00", "89.00")
    found = match_transactions(parse_query("88", NOW), [low, below, high, above])
    assert found == [high, low]


def test_words_with_nothing_on_that_day_find_nothing():
    assert match_transactions(parse_query("starbucks 昨天", NOW), []) == []


def test_naive_times_are_utc_whatever_the_machines_zone(monkeypatch):
    naive = Transaction(
        id="TX20261102FFFFFF",
        account_id="acc",
        created_at=datetime(2026, 11, 2, 16, 30),  # 00:30 on the 3rd in Shanghai
        amount=Decimal("88"),
        currency="CNY",
        merchant="m",
        status="success",
    )
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert match_transactions(parse_query("3号", NOW), [naive]) == [naive]
        assert match_transactions(parse_query("2号", NOW), [naive]) == []
    finally:
        monkeypatch.undo()
        time.tzset()


def test_rolling_windows_end_today():
    query = parse_query("最近3天", NOW)
    assert query.end - query.start == timedelta(days=3)
