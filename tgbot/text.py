"""Text safety helpers: HTML escaping, Telegram length limits, input normalization.

Messages are sent as HTML. Escaping happens in one place: a catalog text
(:meth:`tgbot.i18n.Translator.gettext`, ``context._``) is a :class:`markupsafe.Markup`
(:class:`CatalogText`, the same result computed faster), so its ``format()`` escapes every
value that is not itself Markup — a wallet display name, a
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
    value the template uses is escaped as markupsafe's formatter escapes it, then put in by
    ``str.format``, which runs in C instead of markupsafe's formatter written in Python. Any
    other template is formatted by markupsafe itself."""

    __slots__ = ()

    def format(self, /, *args: object, **kwargs: object) -> CatalogText:
        used = _plain_fields(self)
        if used is None:
            return super().format(*args, **kwargs)
        names, positions = used
        # Only what the template uses is escaped (markupsafe never touches the rest); a
        # missing one is left for str.format to report.
        fields = {name: _escaped(kwargs[name]) for name in names if name in kwargs}
        values = [_escaped(v) if i in positions else v for i, v in enumerate(args)]
        return CatalogText(str.format(self, *values, **{**kwargs, **fields}))


@lru_cache(maxsize=4096)
def _plain_fields(template: str) -> tuple[frozenset[str], frozenset[int]] | None:
    """The names and positions ``template``'s fields use, when every field is a bare name
    or position; None otherwise."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return None  # let markupsafe raise what it raises
    names: set[str] = set()
    positions: set[int] = set()
    automatic = 0
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec or conversion:
            return None
        if field == "":
            positions.add(automatic)
            automatic += 1
        elif field.isdecimal():
            positions.add(int(field))
        elif field.isidentifier():
            names.add(field)
        else:
            return None
    return frozenset(names), frozenset(positions)


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
