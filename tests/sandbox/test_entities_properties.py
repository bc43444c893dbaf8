"""The emulator's HTML parser against generated messages: plain text and UTF-16 offsets.

The parser copies plain runs in one piece and takes ``markupsafe.Markup`` (the bot's escaped
text reaches it in-process); neither may change what it returns.
"""

from __future__ import annotations

from html import escape

from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from tgbot.sandbox.entities import parse_html, utf16_len

TAGS = {"b": "bold", "i": "italic", "u": "underline", "s": "strikethrough", "code": "code"}

# Text with what makes offsets hard: emoji (two UTF-16 units), CJK, and the characters that
# must be escaped.
plain_text = st.lists(
    st.sampled_from([*"ab 1\n<>&\"'", "钱", "包", "😀", "🇨🇳", "é"]), max_size=12
).map("".join)
segments = st.lists(st.tuples(plain_text, st.sampled_from([None, *TAGS])), min_size=0, max_size=8)


@given(segments, st.booleans())
def test_plain_text_and_entity_offsets_follow_the_segments(parts, as_markup) -> None:
    source = "".join(
        escape(text, quote=False) if tag is None else f"<{tag}>{escape(text, quote=False)}</{tag}>"
        for text, tag in parts
    )
    text, entities = parse_html(Markup(source) if as_markup else source)

    assert type(text) is str
    assert text == "".join(part for part, _ in parts)
    expected = []
    offset = 0
    for part, tag in parts:
        length = utf16_len(part)
        if tag is not None and length:
            expected.append({"type": TAGS[tag], "offset": offset, "length": length})
        offset += length
    assert [{k: e[k] for k in ("type", "offset", "length")} for e in entities] == expected
