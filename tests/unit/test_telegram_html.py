"""Telegram's HTML subset: admins' HTML is kept when Telegram accepts it, refused with why
otherwise; text is always escaped again, so a stray < or & cannot break a notice."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from tgbot.telegram_html import ALLOWED, check, has_markup

ALLOW = ("upay.com",)
SIMPLE = ["b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler", "code",
          "blockquote"]  # fmt: skip
TAG = re.compile(r"</?([a-z-]+)")


@st.composite
def well_formed(draw, depth=0):
    """Telegram HTML built from allowed tags around escaped text."""
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        if depth < 3 and draw(st.booleans()):
            tag = draw(st.sampled_from([*SIMPLE, "a"]))
            inner = draw(well_formed(depth=depth + 1))
            if tag == "a":
                path = draw(st.from_regex(r"[a-z0-9/]{0,12}", fullmatch=True))
                parts.append(f'<a href="https://help.upay.com/{path}">{inner}</a>')
            else:
                parts.append(f"<{tag}>{inner}</{tag}>")
        else:
            parts.append(html.escape(draw(st.text(min_size=1, max_size=20)), quote=False))
    return "".join(parts)


@given(well_formed())
def test_well_formed_html_of_the_subset_is_kept_as_written(text):
    checked = check(text, ALLOW)
    assert checked.ok, checked.problems
    assert checked.html == text


@given(st.text(max_size=300))
def test_any_text_comes_out_with_only_allowed_tags(text):
    checked = check(text, ALLOW)
    for name in TAG.findall(checked.html):
        assert name in ALLOWED
    if not has_markup(text):
        # Plain text (no tag, no entity): kept, only escaped.
        assert checked.ok and html.unescape(checked.html) == text


@given(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True).filter(lambda t: t not in ALLOWED))
def test_a_tag_telegram_does_not_know_is_refused(tag):
    checked = check(f"<{tag}>x</{tag}>", ALLOW)
    assert [(p.kind, p.tag) for p in checked.problems][:1] == [("unknown_tag", tag)]


def test_problems_name_the_line_and_what_is_wrong():
    checked = check("ok\n<b>bold\n<a href='https://evil.example/x'>x</a>\n</i>", ALLOW)
    kinds = {(p.kind, p.tag, p.line) for p in checked.problems}
    assert ("bad_link", "a", 3) in kinds and ("stray_close", "i", 4) in kinds
    assert ("unclosed", "b", 2) in kinds


def test_spoiler_span_and_code_language_are_the_only_attributes():
    assert check('<span class="tg-spoiler">s</span>', ALLOW).ok
    assert not check('<span class="red">s</span>', ALLOW).ok
    assert check('<pre><code class="language-python">x</code></pre>', ALLOW).ok
    assert not check('<b onclick="x">s</b>', ALLOW).ok
