"""Dates, times and amounts in each locale's own style, with the time zone named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton
from babel.localedata import locale_identifiers
from hypothesis import given, settings
from hypothesis import strategies as st

from tgbot import facts
from tgbot.i18n import _date_time, translator

ZH, EN = translator("zh_Hans"), translator("en")
SHANGHAI = ZoneInfo("Asia/Shanghai")
MOMENT = datetime(2026, 11, 30, 6, 5, 9, tzinfo=UTC)  # 14:05:09 in Beijing


def test_a_date_and_time_reads_as_each_language_writes_it_with_the_zone_and_no_seconds():
    assert ZH.when(MOMENT, SHANGHAI) == "2026年11月30日 14:05（北京时间）"
    assert EN.when(MOMENT, SHANGHAI) == "Nov 30, 2026, 14:05 (Beijing time)"
    assert ZH.date_time(MOMENT, SHANGHAI) == "11月30日 14:05"
    assert EN.date_time(MOMENT, SHANGHAI) == "Nov 30, 14:05"


def test_other_zones_are_named_in_the_users_language():
    berlin = ZoneInfo("Europe/Berlin")
    assert EN.when(MOMENT, berlin).endswith("(Central European Time)")
    assert ZH.when(MOMENT, berlin).endswith("（中欧时间）")


def test_today_shows_the_time_only_with_its_zone():
    now = datetime.now(UTC)
    assert ZH.time_with_zone(now, SHANGHAI).endswith("（北京时间）")
    assert len(ZH.time_with_zone(now, SHANGHAI)) == len("14:05（北京时间）")
    assert "2" in EN.time_with_zone(now - timedelta(days=3), SHANGHAI)  # a date then


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2))
def test_amounts_carry_their_direction_and_currency(amount):
    out, back = ZH.money_signed(amount, "CNY", False), ZH.money_signed(amount, "CNY", True)
    assert out.startswith("-¥") and back.startswith("+¥")
    assert EN.money_signed(amount, "USD", False).startswith("-$")


def test_facts_carry_the_currency_of_their_amounts():
    for tr in (ZH, EN):
        values = facts.values(tr)
        assert "¥1.00" in values["micro_deposit"]
        assert "¥0.10" in values["withdrawal_fee"]
        assert "{" not in "".join(values.values())


#: Instants written in several zones (a half-hour offset among them), and zones to show them in.
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, SHANGHAI, ZoneInfo("America/St_Johns")]),
)
SHOWN_IN = st.sampled_from([SHANGHAI, ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kathmandu"), UTC])


@given(MOMENTS, SHOWN_IN, st.booleans())
def test_a_cached_date_and_time_is_what_babel_gives_for_that_very_moment(moment, zone, year):
    """Formatted dates are cached; one instant written in another zone is an equal key and
    must read the same (it does: the zone to show comes with the key)."""
    for tr in (ZH, EN):
        elsewhere = moment.astimezone(ZoneInfo("Asia/Tokyo"))
        assert tr.date_time(elsewhere, zone, year=year) == tr.date_time(moment, zone, year=year)
        assert tr.date_time(moment, zone, year=year) == _babel_date_time(
            tr.locale, moment, zone, year
        )


def _babel_date_time(locale: Locale, moment: datetime, zone: ZoneInfo, year: bool) -> str:
    """Babel's own text: the day and hour skeletons formatted apart, joined by the locale's
    medium date-time format."""
    day = format_skeleton("yMMMd" if year else "MMMd", moment, tzinfo=zone, locale=locale)
    hour = format_skeleton("Hm", moment, tzinfo=zone, locale=locale)
    return locale.datetime_formats["medium"].format(hour, day)


@settings(max_examples=300)
@given(st.sampled_from(sorted(locale_identifiers())), MOMENTS, SHOWN_IN, st.booleans())
def test_the_joined_pattern_writes_what_babel_writes_in_any_locale(name, moment, zone, year):
    """The date and time are formatted with one joined pattern: in every locale Babel knows
    (joining texts with letters, quotes, other orders), the same text as Babel's own."""
    locale = Locale.parse(name)
    assert _date_time.__wrapped__(locale, moment, zone, year) == _babel_date_time(
        locale, moment, zone, year
    )
