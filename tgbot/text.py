"""Text safety helpers: HTML escaping, Telegram length limits, input normalization.

Messages are sent as HTML. Escaping happens in one place: a catalog text
(:meth:`tgbot.i18n.Translator.gettext`, ``context._``) is a :class:`markupsafe.Markup`, so
its ``format()`` escapes every value that is not itself Markup — a wallet display name, a
Telegram name, a merchant, anything typed by a user or an agent. :func:`escape` is the same
escaping for text sent without a catalog template; its result is Markup, so it is never
escaped twice.
"""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache

from markupsafe import Markup
from markupsafe import escape as _markup_escape

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_ANSWER_LIMIT = 200
TOPIC_NAME_LIMIT = 128
CALLBACK_DATA_LIMIT = 64
DEEP_LINK_LIMIT = 64

_SPACES = re.compile(r"\s+")


class CatalogText(Markup):
    """A catalog text: :class:`~markupsafe.Markup` whose :meth:`format` gives markupsafe's
    result (every value escaped, Markup values kept) faster when every field of the template
    is a plain ``{name}`` or ``{0}`` (no attribute, index, conversion or format spec): each
    value is escaped as markupsafe's formatter escapes it, then put in by ``str.format``, which
    runs in C instead of markupsafe's formatter written in Python. Any other template is
    formatted by markupsafe itself."""

    __slots__ = ()

    def format(self, /, *args: object, **kwargs: object) -> CatalogText:
        if not _plain_fields(str(self)):
            return super().format(*args, **kwargs)
        fields = {name: _escaped(value) for name, value in kwargs.items()}
        return CatalogText(str.format(self, *map(_escaped, args), **fields))


@lru_cache(maxsize=4096)
def _plain_fields(template: str) -> bool:
    """Whether every replacement field of ``template`` is a bare name or position."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return False  # let markupsafe raise what it raises
    return all(
        field is None
        or (
            not spec
            and not conversion
            and (field.isidentifier() or field == "" or field.isdecimal())
        )
        for _, field, spec, conversion in parsed
    )


def _escaped(value: object) -> str:
    """Return ``value`` as markupsafe's formatter puts it into a template (empty spec)."""
    if hasattr(value, "__html_format__"):
        text = value.__html_format__("")
    elif hasattr(value, "__html__"):
        text = value.__html__()
    else:
        text = format(value, "")
    return str(_markup_escape(text))


_FORMATTER = string.Formatter()


def escape(text: object) -> Markup:
    """HTML-escape text from outside the catalogs for a message sent with ``parse_mode=HTML``
    (Markup: formatting it into a catalog text does not escape it again)."""
    return _markup_escape(str(text)) if not isinstance(text, Markup) else text


def plain(template: str, **values: object) -> str:
    """Format a catalog ``template`` as plain text (button answers and other places that
    are not HTML): no markup, no escaping."""
    return str.format(str(template), **values)


def normalize_input(text: str) -> str:
    """Normalize typed input: full-width digits/letters/spaces to ASCII (NFKC), spaces collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with ``ellipsis`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))] + ellipsis


def utf16_len(text: str) -> int:
    """Return the length Telegram counts for entity offsets (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split plain text into chunks of at most ``limit`` characters, at paragraph, line or
    word boundaries where possible."""
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep)
            if cut > limit // 2:
                break
        if cut <= limit // 2:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def check_callback_data(data: str) -> str:
    """Return ``data`` if it fits Telegram's 64-byte callback data limit, else raise."""
    if len(data.encode()) > CALLBACK_DATA_LIMIT:
        raise ValueError(f"callback data over {CALLBACK_DATA_LIMIT} bytes: {data!r}")
    return data
