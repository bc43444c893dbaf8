"""Translations and locale formatting (Babel gettext; catalogs in ``locales/``).

Each update gets a :class:`Translator` for its user's language (no process-global current
locale). Catalogs are the ``.po`` files; ``tgbot i18n compile`` writes ``.mo`` files next to
them, and a missing or outdated ``.mo`` is compiled in memory from its ``.po`` at start, so a
fresh checkout runs without a build step. Labels defined at import time use :func:`N_` and are
translated when shown.
"""

from __future__ import annotations

import gettext as gettext_module
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from string import Formatter
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import DateTimePattern, format_skeleton, get_timezone_name, match_skeleton
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from markupsafe import Markup

from tgbot.text import CatalogText

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
#: Supported languages: code -> the language's own name (shown on the language buttons).
LANGUAGES: dict[str, str] = {"zh_Hans": "中文", "en": "English"}
#: Time zones that are China Standard Time: named the way Chinese users say it.
CHINA_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})
#: The zone names users know, per language (Babel's CLDR names are formal: 中国标准时间).
ZONE_NAMES = {"zh_Hans": "北京时间", "en": "Beijing time"}


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated later, where it is shown."""
    return message


def pick_language(chosen: str | None, telegram_code: str | None, default: str) -> str:
    """Return the user's language: their choice, else ``zh*`` -> Chinese, else the default."""
    if chosen in LANGUAGES:
        return chosen
    if telegram_code:
        code = telegram_code.lower().replace("_", "-")
        if code.startswith("zh"):
            return "zh_Hans"
        if code.startswith("en"):
            return "en"
    return default


def _load_catalog(lang: str, locales_dir: Path) -> gettext_module.NullTranslations:
    po_path = locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo_path = po_path.with_suffix(".mo")
    if mo_path.exists() and (
        not po_path.exists() or mo_path.stat().st_mtime >= po_path.stat().st_mtime
    ):
        with mo_path.open("rb") as fh:
            return gettext_module.GNUTranslations(fh)
    if not po_path.exists():
        return gettext_module.NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


@dataclass(frozen=True)
class Translator:
    """One language's gettext functions and Babel formatters."""

    lang: str
    locale: Locale
    catalog: gettext_module.NullTranslations

    def gettext(self, message: str) -> Markup:
        """Translate ``message``: HTML from the catalog, whose ``format()`` escapes every
        value (see :mod:`tgbot.text`)."""
        return CatalogText(self.catalog.gettext(message))

    def ngettext(self, singular: str, plural: str, n: int) -> Markup:
        """Translate the form of ``singular``/``plural`` that fits ``n`` (HTML, as above)."""
        return CatalogText(self.catalog.ngettext(singular, plural, n))

    def money(self, amount: Decimal, currency: str) -> str:
        """Format ``amount`` of ``currency`` for this locale (e.g. ``¥88.00`` / ``US$5.00``)."""
        return _money(self.locale, amount, currency)

    def number(self, value: Decimal | int | float) -> str:
        """Format a number for this locale."""
        return _number(self.locale, value)

    def datetime(self, moment: datetime, zone: ZoneInfo, fmt: str = "medium") -> str:
        """Format ``moment`` in ``zone`` for this locale."""
        return _datetime(self.locale, moment, zone, fmt)

    def zone_name(self, zone: ZoneInfo) -> str:
        """Return the name users know for ``zone``: 北京时间 / Beijing time for China, else the
        locale's long name (e.g. "Central European Time")."""
        if zone.key in CHINA_ZONES:
            return ZONE_NAMES.get(self.lang, ZONE_NAMES["en"])
        return get_timezone_name(zone, "long", locale=self.locale)

    def _with_zone(self, text: str, zone: ZoneInfo) -> str:
        if self.lang.startswith("zh"):
            return f"{text}（{self.zone_name(zone)}）"
        return f"{text} ({self.zone_name(zone)})"

    def when(self, moment: datetime, zone: ZoneInfo, *, year: bool = True) -> str:
        """Return a date and time in the locale's own style, minutes only, with the zone
        named: "2026年11月30日 14:05（北京时间）", "Nov 30, 2026, 14:05 (Beijing time)"."""
        return self._with_zone(self.date_time(moment, zone, year=year), zone)

    def date_time(self, moment: datetime, zone: ZoneInfo, *, year: bool = False) -> str:
        """Return a date and time without seconds or zone (for lists and buttons)."""
        return _date_time(self.locale, moment, zone, year)

    def time_with_zone(self, moment: datetime, zone: ZoneInfo) -> str:
        """Return a time (today) or a date and time, with the zone named."""
        local = moment.astimezone(zone)
        if local.date() == datetime.now(zone).date():
            return self._with_zone(
                format_skeleton("Hm", moment, tzinfo=zone, locale=self.locale), zone
            )
        return self.when(moment, zone, year=False)

    def money_signed(self, amount: Decimal, currency: str, incoming: bool) -> str:
        """Format an amount with its direction: "+¥100.00" in, "-¥497.08" out."""
        text = _money(self.locale, abs(amount), currency)
        return ("+" if incoming else "-") + text


# Babel's formatters cost 15-100 us a call (format_currency ~100 us in English), and a step
# shows the same few amounts and dates again and again (a transaction's amount appears in the
# list, its detail, the refund question and the confirmation): the results are pure functions
# of their arguments, so they are cached. Bounded, so memory stays flat.
@lru_cache(maxsize=8192)
def _money(locale: Locale, amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale=locale)


@lru_cache(maxsize=4096)
def _number(locale: Locale, value: Decimal | int | float) -> str:
    return format_decimal(value, locale=locale)


@lru_cache(maxsize=8192)
def _datetime(locale: Locale, moment: datetime, zone: ZoneInfo, fmt: str) -> str:
    return babel_format_datetime(moment, fmt, tzinfo=zone, locale=locale)


@lru_cache(maxsize=8192)
def _date_time(locale: Locale, moment: datetime, zone: ZoneInfo, year: bool) -> str:
    # One pass of Babel's formatter over one pattern instead of two format_skeleton calls
    # (each a skeleton lookup and a pattern application): a list of new transactions misses
    # the cache above on every line.
    return babel_format_datetime(moment, _date_time_pattern(locale, year), zone, locale)


@cache
def _date_time_pattern(locale: Locale, year: bool) -> DateTimePattern:
    """The locale's day ("yMMMd"/"MMMd") and hour ("Hm") skeletons as one pattern, joined as
    its medium date-time format joins them: the same text as formatting each skeleton with
    ``format_skeleton`` and joining the results."""
    skeletons = locale.datetime_skeletons

    def pattern(skeleton: str) -> DateTimePattern:
        if skeleton not in skeletons:  # as format_skeleton (fuzzy) does
            skeleton = match_skeleton(skeleton, skeletons)
        return skeletons[skeleton]

    fields = {"0": pattern("Hm"), "1": pattern("yMMMd" if year else "MMMd")}
    shown, applied = [], []  # the pattern's text (for its repr), its %-format
    for text, field, _spec, _conversion in Formatter().parse(locale.datetime_formats["medium"]):
        shown.append(text)
        applied.append(text.replace("%", "%%"))  # a literal in a %-format
        if field is not None:
            shown.append(fields[field].pattern)
            applied.append(fields[field].format)
    return DateTimePattern("".join(shown), "".join(applied))


@cache
def translator(lang: str, locales_dir: Path = LOCALES_DIR) -> Translator:
    """Return the (cached) translator of ``lang``."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}")
    locale = Locale.parse(lang.replace("_", "-"), sep="-")
    return Translator(lang=lang, locale=locale, catalog=_load_catalog(lang, locales_dir))
