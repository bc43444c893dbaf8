"""The link allow-list pinned exactly: each rule gives its own verdict (the refused link, the
host staff are told about, the reason), and every place a link can hide in a message is read.

Written to kill the mutants of ``tgbot/links.py`` that the property tests let live
(``scripts/mutate.sh links``, docs/testing.md): the property tests prove "never allowed", these
prove the verdict is the right one, so a rule that silently stops firing (another rule catching
the link for the wrong reason) is noticed.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity, User

from tgbot.links import (
    Verdict,
    judge_url,
    links_in_html,
    links_in_message,
    links_in_text,
    normalize_allowlist,
    refused,
)

ALLOW = ("upay.com",)
BOT = "upay_support_bot"


@pytest.mark.parametrize(
    ("url", "host", "reason"),
    [
        ("https://help.upay.com/x", "help.upay.com", None),
        ("https://upay.com:443/x", "upay.com", None),
        ("https://ＵＰＡＹ.com/", "upay.com", None),  # full-width letters: UTS 46 maps them
        ("https://Bücher.upay.com/", "xn--bcher-kva.upay.com", None),
        ("upay.com/x", "upay.com", None),  # no scheme: judged by its host
        ("upay.com/a:b", "upay.com", None),
        ("upay.com/x:y/z", "upay.com", None),
        ("https://upay.com:8443/", None, "port"),
        ("https://upay.com:99999/", None, "malformed"),
        ("https://a..b/", None, "malformed"),
        ("https:///reset", None, "malformed"),
        ("https://upay.com/a b", None, "malformed"),
        ("https://upay.com/a\\b", None, "malformed"),
        ("https://upay.com/\x00", None, "malformed"),
        ("https://support@upay.com/", None, "userinfo"),
        ("http://upay.com/", None, "scheme"),
        ("mailto:help@upay.com", None, "scheme"),
        ("evil.example/?u=https://upay.com", None, "scheme"),
        ("https://1.2.3.4/", "1.2.3.4", "ip"),
        ("https://[::1]/", "::1", "ip"),
        ("https://evil.example/", "evil.example", "host"),
        ("https://evilupay.com/", "evilupay.com", "host"),
        ("https://t.me/someone_else_bot", "t.me", "telegram"),
        ("https://t.me/upay_support_botx", "t.me", "telegram"),
        ("https://t.me/Xupay_support_bot", "t.me", "telegram"),
        ("https://t.me/upay_support_bot/a/b", "t.me", None),
        ("https://t.me/upay_support_bot?start=x", "t.me", None),
        ("tg://resolve?domain=someone_else_bot", None, "telegram"),
        ("tg://resolve?domain=upay_support_bot", None, None),
        ("tg://resolve", None, "telegram"),
    ],
)
def test_each_rule_gives_its_own_verdict(url, host, reason):
    verdict = judge_url(url, ALLOW, BOT)
    assert verdict == Verdict(url, host, reason)
    assert verdict.allowed is (reason is None)
    assert verdict.shown == (host or url)


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{4,31}", fullmatch=True))
@example("XXXX")
def test_without_a_bot_name_no_telegram_link_passes(name):
    for url in (f"https://t.me/{name}", f"tg://resolve?domain={name}", "tg://resolve"):
        assert judge_url(url, ALLOW, None).reason == "telegram", url
    assert judge_url("tg://resolve", ALLOW, name).reason == "telegram"


def test_the_allow_list_is_read_as_browsers_resolve_hosts():
    assert normalize_allowlist([" .Xpay.COM ", "10.0.0.1", "[::1]", "", "a..b", "upay.com."]) == (
        "xpay.com",
        "upay.com",
    )
    assert judge_url("https://xpay.com/", [".Xpay.com"]).allowed


def test_refused_returns_only_the_links_that_may_not_be_sent():
    targets = ["https://upay.com/a", "https://evil.example/", "https://t.me/upay_support_bot"]
    assert refused(targets, ALLOW, BOT) == [
        Verdict("https://evil.example/", "evil.example", "host")
    ]
    assert refused(iter(targets), iter(ALLOW), None) == [
        Verdict("https://evil.example/", "evil.example", "host"),
        Verdict("https://t.me/upay_support_bot", "t.me", "telegram"),
    ]


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("(https://evil.example)", ["https://evil.example"]),
        ("see:https://evil.example/a", ["https://evil.example/a"]),
        ("链接:git+ssh://evil.example", ["git+ssh://evil.example"]),
        ("x;://evil.example", ["x;://evil.example"]),
        ("x;://evil.example/?u=https://c", ["x;://evil.example/?u=https://c"]),
        ("https://a.example/?u=https://b", ["https://a.example/?u=https://b"]),
        ("open tg:resolve?domain=evil_bot now", ["tg:resolve?domain=evil_bot"]),
        ("Open TG:resolve?domain=evil_bot", ["TG:resolve?domain=evil_bot"]),
        ("www.evil.example and upay.com", ["www.evil.example"]),
    ],
)
def test_links_written_in_text_are_cut_out_exactly(text, links):
    assert links_in_text(text) == links


def test_links_in_html_read_hrefs_character_references_and_text():
    html = (
        '<a href="https://evil.example/a">x</a><a HREF="https://b.example/">y</a><a href>z</a>'
        "<b>https://upay.com.evil&#46;example</b>tail"
    )
    assert links_in_html(html) == [
        "https://evil.example/a",
        "https://b.example/",
        "",
        "https://upay.com.evil.example",
    ]


def _message(entities: list[MessageEntity], *, caption: str | None = None, text=None, markup=None):
    data = {"message_id": 1, "date": 0, "chat": {"id": -100, "type": "supergroup"}}
    if text is not None:
        data |= {"text": text, "entities": [e.to_dict() for e in entities]}
    if caption is not None:
        data |= {"caption": caption, "caption_entities": [e.to_dict() for e in entities]}
    if markup is not None:
        data["reply_markup"] = markup.to_dict()
    return Message.de_json(data, None)


def test_every_kind_of_entity_gives_its_target():
    text = "@evil_bot a@upay.com@evil.example evil.example/x here you"
    entities = [
        MessageEntity(MessageEntity.MENTION, 0, 9),
        MessageEntity(MessageEntity.EMAIL, 10, 23),
        MessageEntity(MessageEntity.URL, 34, 14),
        MessageEntity(MessageEntity.TEXT_LINK, 49, 4, url="https://evil.example/t"),
        MessageEntity(MessageEntity.TEXT_MENTION, 54, 3, user=User(42, "Eve", False)),
        MessageEntity(MessageEntity.BOLD, 0, 9),
    ]
    assert links_in_message(_message(entities, text=text)) == [
        "https://t.me/evil_bot",
        "https://evil.example",
        "evil.example/x",
        "https://evil.example/t",
        "tg://user?id=42",
    ]


def test_a_mention_keeps_every_letter_and_plain_text_links_count():
    text = "@Xevil_bot or see https://evil.example/x"
    mention = MessageEntity(MessageEntity.MENTION, 0, 10)
    assert links_in_message(_message([mention], text=text)) == [
        "https://t.me/Xevil_bot",
        "https://evil.example/x",
    ]


def test_entities_without_their_url_or_user_still_give_a_target():
    text = "here you"
    entities = [
        MessageEntity(MessageEntity.TEXT_LINK, 0, 4),
        MessageEntity(MessageEntity.TEXT_MENTION, 5, 3),
    ]
    assert links_in_message(_message(entities, text=text)) == ["", "tg://user?id=0"]


def test_a_caption_and_the_link_buttons_are_read_too():
    caption = "pay at evil.example/x or https://evil.example/y"
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Pay", url="https://evil.example/b")],
            [InlineKeyboardButton("Menu", callback_data="menu:home")],
        ]
    )
    message = _message([MessageEntity(MessageEntity.URL, 7, 14)], caption=caption, markup=markup)
    assert links_in_message(message) == [
        "evil.example/x",
        "https://evil.example/y",
        "https://evil.example/b",
    ]
    assert links_in_message(_message([], caption=None)) == []
