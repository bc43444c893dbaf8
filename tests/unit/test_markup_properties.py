"""Finding 10 of the security review, proved with generated inputs: a name (or any text from
outside the catalogs) formatted into any catalog text never becomes markup, and never
breaks Telegram's HTML parsing."""

from __future__ import annotations

import string
from collections import Counter
from functools import cache

from babel.messages.pofile import read_po
from hypothesis import example, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from tgbot.i18n import LANGUAGES, LOCALES_DIR, translator
from tgbot.sandbox.entities import parse_html
from tgbot.text import CatalogText, escape

#: Names people (or attackers) give themselves: any text, and HTML that Telegram accepts.
NAMES = st.one_of(
    st.text(max_size=40),
    st.from_regex(r'<a href="https?://[a-z.]{1,12}/?">[^<>]{0,12}</a>', fullmatch=True),
    st.lists(
        st.sampled_from(["<", ">", "&", "&amp;", "&#60;", "<b>", "</b>", '"', "'", "<i>", "x"]),
        max_size=8,
    ).map("".join),
)


@cache
def _templates() -> list[tuple[str, tuple[str, ...]]]:
    """Every catalog text with placeholders, and the names of its placeholders."""
    with (LOCALES_DIR / "messages.pot").open("rb") as fh:
        catalog = read_po(fh)
    found = []
    for message in catalog:
        for msgid in message.id if isinstance(message.id, tuple) else (message.id,):
            fields = tuple(
                sorted({f for _, f, _, _ in string.Formatter().parse(msgid) if f}) if msgid else ()
            )
            if fields:
                found.append((msgid, fields))
    return found


def test_f10_the_catalog_has_texts_with_names_to_check():
    msgids = {msgid for msgid, _ in _templates()}
    assert (
        "📣 {admin} wants to send broadcast #{id} to {total} users. The notice follows. "
        "Approve it?" in msgids
    )
    assert len(msgids) > 50


@settings(max_examples=max(30, settings.default.max_examples // 4))  # every template each
@given(NAMES)
@example('<a href="https://evil.example/">Alice</a>')
@example("Bob <")
@example("Tom & Jerry </b>")
def test_f10_names_in_catalog_texts_never_produce_markup(name):
    for lang in LANGUAGES:
        tr = translator(lang)
        for msgid, fields in _templates():
            template = tr.gettext(msgid)
            reference = parse_html(template.format(**dict.fromkeys(fields, "x")))
            # Any text in any placeholder: Telegram parses it (no "can't parse entities"),
            # and the message has no formatting but the template's own.
            text, entities = parse_html(template.format(**dict.fromkeys(fields, name)))
            added = Counter((e["type"], e.get("url")) for e in entities)
            added.subtract((e["type"], e.get("url")) for e in reference[1])
            assert max(added.values(), default=0) <= 0, (lang, msgid, name, entities)
            assert name.strip() in text


@given(NAMES)
def test_f10_escape_shows_any_text_as_it_is(name):
    text, entities = parse_html(escape(name))
    assert entities == [] and text.strip() == name.strip()


class _Html:
    """A value with its own HTML (markupsafe's ``__html__`` protocol)."""

    def __init__(self, html: str) -> None:
        self.html = html

    def __html__(self) -> str:
        return self.html


class _Broken:
    """A value that fails whenever it is formatted (markupsafe formats only what is used)."""

    def __html__(self) -> str:
        raise RuntimeError("formatted")


#: Values formatted into catalog texts: text with HTML's special characters, numbers,
#: amounts, Markup (kept as it is), and objects with their own HTML.
VALUES = st.one_of(
    NAMES,
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False),
    NAMES.map(Markup),
    NAMES.map(_Html),
    st.none(),
    st.booleans(),
)


@settings(max_examples=max(30, settings.default.max_examples // 4))  # every template each
@given(st.lists(VALUES, min_size=1, max_size=4))
def test_catalog_texts_format_exactly_as_markupsafe_does(pool):
    """The faster CatalogText.format gives markupsafe's own result, character for character,
    for every catalog text in every language and any values (taken in turn from ``pool``)."""
    for lang in LANGUAGES:
        tr = translator(lang)
        for msgid, fields in _templates():
            template = tr.gettext(msgid)
            assert isinstance(template, CatalogText)
            values = {field: pool[i % len(pool)] for i, field in enumerate(fields)}
            fast = template.format(**values)
            assert fast == Markup(str(template)).format(**values), (lang, msgid)
            assert isinstance(fast, Markup)


TEMPLATE_PARTS = st.sampled_from(
    [
        "{a}",
        "{0}",
        "{}",
        "{a!r}",
        "{a:>5}",
        "{a.real}",
        "{b[0]}",
        "{{",
        "}}",
        "{",
        "}",
        "x",
        "<b>",
        "&",
        "{名}",
        "{1}",
    ]
)


@given(st.lists(TEMPLATE_PARTS, max_size=6).map("".join), st.lists(VALUES, max_size=3), VALUES)
@example("{a.real}", [], 5)
@example("<b>{b[0]}</b>", [], "<i>")
@example("{a!r}", [], "<i>")
@example("{a:>5}", [], "&")
@example("{0}{}", ["<"], "x")
@example("{名}{1}", ["<", Markup("<b>")], "&")
def test_any_template_formats_or_fails_as_markupsafe_does(template, args, value):
    """Templates with attributes, indexes, conversions, specs or broken braces: the same
    result or the same kind of error as markupsafe's formatter."""
    kwargs = {"a": value, "b": [value], "名": value, "unused": _Broken()}
    args = [*args, _Broken()]  # past every position the templates use

    def run(text: Markup) -> object:
        try:
            return str(text.format(*args, **kwargs))
        except Exception as exc:
            return type(exc)

    assert run(CatalogText(template)) == run(Markup(template))
