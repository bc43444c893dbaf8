"""Telegram's HTML subset: check an admin's text and rebuild it so Telegram accepts it.

Telegram's ``parse_mode=HTML`` knows a few tags (``b``, ``i``, ``u``, ``s``, ``a``, ``code``,
``pre``, ``blockquote``, ``tg-spoiler``, ``tg-emoji`` and their aliases) and refuses a message
with any other tag, an unclosed one or a stray ``<``. An admin's notice is parsed with the
standard library's HTML parser: the tags Telegram knows are kept as written (attributes
checked), text is escaped again (so a lone ``&`` or ``<`` is safe), and anything Telegram
would refuse is reported, by line, for the admin to fix.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlparse

#: Tag -> attributes it may carry (Bot API "HTML style").
ALLOWED: dict[str, frozenset[str]] = {
    "b": frozenset(),
    "strong": frozenset(),
    "i": frozenset(),
    "em": frozenset(),
    "u": frozenset(),
    "ins": frozenset(),
    "s": frozenset(),
    "strike": frozenset(),
    "del": frozenset(),
    "span": frozenset({"class"}),
    "tg-spoiler": frozenset(),
    "a": frozenset({"href"}),
    "tg-emoji": frozenset({"emoji-id"}),
    "code": frozenset({"class"}),
    "pre": frozenset(),
    "blockquote": frozenset({"expandable"}),
}


@dataclass(frozen=True)
class Problem:
    """Something Telegram would refuse: ``kind`` (a stable code), the tag, the line."""

    kind: str  # unknown_tag | bad_attribute | unclosed | stray_close | bad_link | bad_nesting
    tag: str
    line: int
    detail: str = ""


@dataclass
class Checked:
    """The rebuilt HTML (valid for Telegram when ``problems`` is empty) and the problems."""

    html: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True if Telegram will accept :attr:`html`."""
        return not self.problems


class _Rebuilder(HTMLParser):
    def __init__(self, allowlist: tuple[str, ...]) -> None:
        super().__init__(convert_charrefs=True)
        self.allowlist = allowlist
        self.out: list[str] = []
        self.open: list[tuple[str, int]] = []
        self.problems: list[Problem] = []

    def _problem(self, kind: str, tag: str, detail: str = "") -> None:
        self.problems.append(Problem(kind, tag, self.getpos()[0], detail))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            self._problem("unknown_tag", tag)
            return
        kept = []
        for name, value in attrs:
            if name not in ALLOWED[tag]:
                self._problem("bad_attribute", tag, name)
                continue
            if tag == "span" and value != "tg-spoiler":
                self._problem("bad_attribute", tag, f'{name}="{value}"')
                continue
            if tag == "code" and not (value or "").startswith("language-"):
                self._problem("bad_attribute", tag, f'{name}="{value}"')
                continue
            if tag == "a" and not self._link_ok(value or ""):
                self._problem("bad_link", tag, value or "")
                continue
            kept.append(name if value is None else f'{name}="{html.escape(value, quote=True)}"')
        if tag == "a" and not any(name == "href" for name, _ in attrs):
            self._problem("bad_link", tag, "")
        if tag == "span" and not attrs:
            self._problem("bad_attribute", tag, "class")
        if self.open and self.open[-1][0] == "pre" and tag != "code":
            self._problem("bad_nesting", tag, "pre")
        self.open.append((tag, self.getpos()[0]))
        self.out.append(f"<{' '.join([tag, *kept])}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <hr/>: Telegram knows no empty tags.
        self._problem("unknown_tag", tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ALLOWED:
            if not any(p.kind == "unknown_tag" and p.tag == tag for p in self.problems):
                self._problem("unknown_tag", tag)
            return
        if not self.open or self.open[-1][0] != tag:
            if any(name == tag for name, _ in self.open):
                opened, line = self.open.pop()
                self.problems.append(Problem("unclosed", opened, line))
            else:
                self._problem("stray_close", tag)
            return
        self.open.pop()
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))

    def handle_comment(self, data: str) -> None:
        self._problem("unknown_tag", "!--")

    def handle_decl(self, decl: str) -> None:
        self._problem("unknown_tag", "!")

    def handle_pi(self, data: str) -> None:
        self._problem("unknown_tag", "?")

    def unknown_decl(self, data: str) -> None:
        self._problem("unknown_tag", "!")

    def _link_ok(self, url: str) -> bool:
        parsed = urlparse(url.strip())
        host = (parsed.hostname or "").lower()
        if parsed.scheme == "tg":
            return True
        return parsed.scheme == "https" and any(
            host == domain or host.endswith("." + domain) for domain in self.allowlist
        )


def check(text: str, allowlist: tuple[str, ...] = ()) -> Checked:
    """Parse ``text`` as Telegram HTML: return it rebuilt (text escaped, known tags kept) and
    what Telegram would refuse (unknown tags or attributes, unclosed or stray tags, links
    outside ``allowlist``)."""
    parser = _Rebuilder(allowlist)
    parser.feed(text)
    parser.close()
    for tag, line in parser.open:
        parser.problems.append(Problem("unclosed", tag, line))
    rest = getattr(parser, "rawdata", "")
    if rest:  # an unfinished "<..." at the very end: text, not a tag
        parser.out.append(html.escape(rest, quote=False))
    return Checked("".join(parser.out), parser.problems)


def has_markup(text: str) -> bool:
    """Return True if ``text`` holds something the HTML parser reads as a tag, a comment or
    an entity (so the admin wrote HTML rather than plain text)."""

    class _Probe(HTMLParser):
        found = False

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.found = True

        def handle_endtag(self, tag: str) -> None:
            self.found = True

        def handle_startendtag(self, tag: str, attrs: list) -> None:
            self.found = True

        def handle_comment(self, data: str) -> None:
            self.found = True

        def handle_entityref(self, name: str) -> None:
            self.found = True

        def handle_charref(self, name: str) -> None:
            self.found = True

    probe = _Probe(convert_charrefs=False)
    probe.feed(text)
    probe.close()
    return probe.found
