"""Links that agents and admins send to users: every target parsed, its host judged as
browsers resolve it, only allow-listed domains pass (DESIGN section 6, rule 6).

A hijacked staff account must not be able to phish through the official bot, so each link
of a message — Telegram's ``url`` and ``text_link`` entities, mentions of other bots, and
any ``scheme://``, ``www.`` or ``tg:`` in the text — is judged by :func:`judge_url`:

- parsed with :func:`urllib.parse.urlsplit`; whitespace, control characters and backslashes
  anywhere are refused (browsers read ``https://evil.example\\@upay.com/`` as evil.example);
- only ``https`` (a link written without a scheme is judged by its host); no user name or
  password before the host (``https://upay.com@evil.example/``), no port but 443;
- the host is converted to IDNA (UTS 46, as browsers do: ``UPAY。com`` is ``upay.com``, a
  Cyrillic ``uрay.com`` is ``xn--uay-0ed.com``) and must be an allow-listed domain or one of
  its subdomains; IP addresses never pass;
- Telegram links (``t.me/NAME``, ``tg://resolve?domain=NAME``, ``@NAME``) pass only for the
  bot itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import idna
from telegram import Message, MessageEntity
from telegram.constants import MessageEntityType

#: Characters trimmed around a link found in text ("(https://upay.com)", "见 https://…。").
_TRIM = "()[]{}<>\"'`,;!?。，、；：！？（）【】《》「」『』“”‘’…"
#: Hosts of Telegram links to a user or bot.
_TELEGRAM_HOSTS = ("t.me", "telegram.me", "telegram.dog")


@dataclass(frozen=True)
class Verdict:
    """What :func:`judge_url` found: ``reason`` is None when the link may be sent."""

    target: str
    host: str | None
    reason: str | None

    @property
    def allowed(self) -> bool:
        """Return True if the link may be sent."""
        return self.reason is None

    @property
    def shown(self) -> str:
        """Return what to tell staff about a refused link: its real host, else the link."""
        return self.host or self.target


def idna_host(host: str) -> str | None:
    """Return ``host`` as browsers look it up (IDNA, UTS 46, lower case, no final dot), or
    None if it is not a valid host name."""
    host = host[:-1] if host.endswith(".") else host
    if not host:
        return None
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def normalize_allowlist(domains: Iterable[str]) -> tuple[str, ...]:
    """Return the allow-list as IDNA host names (entries that are not host names dropped)."""
    hosts = (idna_host(domain.strip().lstrip(".")) for domain in domains)
    return tuple(host for host in hosts if host and not _is_ip(host))


def host_allowed(host: str, allowlist: tuple[str, ...]) -> bool:
    """Return True if the IDNA ``host`` is an allow-listed domain or a subdomain of one."""
    return any(host == domain or host.endswith("." + domain) for domain in allowlist)


def judge_url(url: str, allowlist: Iterable[str], bot_username: str | None = None) -> Verdict:
    """Judge one link target; see the module docstring for the rules."""
    allowed_hosts = normalize_allowlist(allowlist)
    own = (bot_username or "").lower() or None
    if any(c.isspace() or c == "\\" or not c.isprintable() for c in url):
        return Verdict(url, None, "malformed")
    target = url if "://" in url or ":" in url.split("/", 1)[0] else "https://" + url
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        return Verdict(url, None, "malformed")
    scheme = parts.scheme.lower()
    if scheme == "tg":
        domain = parse_qs(parts.query).get("domain", [""])[0].lower()
        action = (parts.netloc or parts.path).lower()
        is_own = action == "resolve" and own is not None and domain == own
        return Verdict(url, None, None if is_own else "telegram")
    if scheme != "https":
        return Verdict(url, None, "scheme")
    if "@" in parts.netloc:
        return Verdict(url, None, "userinfo")
    if port not in (None, 443):
        return Verdict(url, None, "port")
    raw_host = parts.hostname or ""
    if not raw_host:
        return Verdict(url, None, "malformed")
    if _is_ip(raw_host):
        return Verdict(url, raw_host, "ip")
    host = idna_host(raw_host)
    if host is None:
        return Verdict(url, None, "malformed")
    if host_allowed(host, allowed_hosts):
        return Verdict(url, host, None)
    if host in _TELEGRAM_HOSTS:
        name = parts.path.strip("/").split("/", 1)[0].lower()
        return Verdict(url, host, None if own is not None and name == own else "telegram")
    return Verdict(url, host, "host")


def _trimmed(token: str) -> str:
    return token.strip(_TRIM)


def links_in_text(text: str) -> list[str]:
    """Return the links written in plain ``text``: anything with ``://``, starting with
    ``www.`` or with the ``tg:`` scheme (Telegram's own entities cover bare domains)."""
    found = []
    for token in text.split():
        token = _trimmed(token)
        lower = token.lower()
        if "://" in token:
            begin = token.index("://")
            while begin > 0 and (token[begin - 1].isalnum() or token[begin - 1] in "+.-"):
                begin -= 1
            found.append(token[begin:] if begin < token.index("://") else token)
        elif lower.startswith(("www.", "tg:")):
            found.append(token)
    return found


def links_in_message(message: Message) -> list[str]:
    """Return every link target of a message: its entities as Telegram gives them (links,
    text links, mentions, e-mail addresses), link buttons, and links in the text."""
    text = message.text if message.text is not None else message.caption or ""
    entities = message.entities if message.text is not None else message.caption_entities
    found: list[str] = []
    for entity in entities or ():
        found.extend(_entity_targets(message, entity))
    found.extend(links_in_text(text))
    markup = message.reply_markup
    for row in markup.inline_keyboard if markup is not None else ():
        found.extend(button.url for button in row if button.url)
    return found


def _entity_targets(message: Message, entity: MessageEntity) -> list[str]:
    kind = entity.type
    if kind == MessageEntityType.TEXT_LINK:
        return [entity.url or ""]
    if kind not in (
        MessageEntityType.URL,
        MessageEntityType.MENTION,
        MessageEntityType.EMAIL,
        MessageEntityType.TEXT_MENTION,
    ):
        return []
    if kind == MessageEntityType.TEXT_MENTION:
        return [f"tg://user?id={entity.user.id if entity.user else 0}"]
    shown = (
        message.parse_entity(entity)
        if message.text is not None
        else message.parse_caption_entity(entity)
    )
    if kind == MessageEntityType.MENTION:
        return [f"https://t.me/{shown.lstrip('@')}"]
    if kind == MessageEntityType.EMAIL:
        return ["https://" + shown.rpartition("@")[2]]  # judged by its domain
    return [shown]


class _Hrefs(HTMLParser):
    """Collect the link targets and the text of Telegram-flavoured HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs.extend(value or "" for name, value in attrs if name.lower() == "href")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def links_in_html(html_text: str) -> list[str]:
    """Return every link target of an HTML text: ``href`` attributes and links written in
    its text."""
    parser = _Hrefs()
    parser.feed(html_text)
    parser.close()
    return parser.hrefs + links_in_text(" ".join(parser.text))


def refused(
    targets: Iterable[str], allowlist: Iterable[str], bot_username: str | None = None
) -> list[Verdict]:
    """Return the verdicts of the targets that may not be sent."""
    allowlist = tuple(allowlist)
    verdicts = (judge_url(target, allowlist, bot_username) for target in targets)
    return [verdict for verdict in verdicts if not verdict.allowed]
