"""Findings 3 and 9 of the security review, proved with generated inputs: a link passes only
when its real host (as a browser resolves it) is on the allow-list, whatever the spelling."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from telegram import Message, MessageEntity

from tgbot.links import judge_url, links_in_html, links_in_message

ALLOW = ("upay.com",)
BOT = "upay_support_bot"

LABEL = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10).map(
    lambda s: s.strip("-") or "a"
)
PATH = st.text(string.ascii_letters + string.digits + "/-_.~%", max_size=20).map(lambda p: "/" + p)
QUERY = st.one_of(st.just(""), st.text(string.ascii_letters + "=&", max_size=10).map("?{}".format))
#: Characters of other scripts that look like the letters of "upay" (Cyrillic, Greek,
#: Armenian). Full-width Latin letters are not among them: UTS 46 maps them to ASCII.
LOOKALIKES = {"u": "υս", "p": "рρ", "a": "аɑ", "y": "уү"}


@st.composite
def allowed_hosts(draw) -> str:
    """upay.com or a subdomain, in any case, maybe with full-width dots or a final dot."""
    labels = draw(st.lists(LABEL, max_size=3))
    host = ".".join([*labels, "upay", "com"])
    if draw(st.booleans()):
        host = "".join(c.upper() if draw(st.booleans()) else c for c in host)
    if draw(st.booleans()):
        host = host.replace(".", draw(st.sampled_from([".", "。", "．"])))
    return host + draw(st.sampled_from(["", "."]))


@st.composite
def foreign_hosts(draw) -> str:
    """Hosts that are not upay.com: other domains, look-alikes, suffix tricks, IP literals."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(LABEL) + "." + draw(st.sampled_from(["com", "xyz", "io", "example", "cn"]))
    if kind == 1:  # a letter of upay swapped for a look-alike of another script
        index = draw(st.integers(0, 3))
        letter = "upay"[index]
        swapped = "upay"[:index] + draw(st.sampled_from(LOOKALIKES[letter])) + "upay"[index + 1 :]
        return swapped + ".com"
    if kind == 2:
        return draw(st.sampled_from(["upay.com.", "upay-", "upay", "my-upay", "upaycom."])) + (
            draw(LABEL) + ".example"
        )
    if kind == 3:
        return (
            f"{draw(st.integers(1, 255))}.{draw(st.integers(0, 255))}.0.{draw(st.integers(1, 254))}"
        )
    if kind == 4:
        return "[" + draw(st.sampled_from(["::1", "2001:db8::1", "::ffff:7f00:1"])) + "]"
    return draw(LABEL) + ".upay.com." + draw(LABEL) + ".example"


@given(allowed_hosts(), PATH, QUERY)
@example("help.upay.com", "/refunds", "")
@example("UPAY。COM", "/", "")
def test_f03_https_links_to_the_allow_list_pass(host, path, query):
    verdict = judge_url(f"https://{host}{path}{query}", ALLOW, BOT)
    assert verdict.allowed, verdict


@given(foreign_hosts(), PATH)
@example("uрay.com", "/login")  # Cyrillic р
@example("127.0.0.1", "/")
@example("upay.com.evil.example", "/")
def test_f03_links_to_other_hosts_never_pass(host, path):
    assert not judge_url(f"https://{host}{path}", ALLOW, BOT).allowed


@given(allowed_hosts(), foreign_hosts(), st.sampled_from(["", ":443", ":8443"]))
@example("upay.com", "evil.example", "")
@example("upay.com", "evil.example", ":443")
def test_f03_userinfo_never_hides_the_real_host(shown, real, port):
    # https://upay.com@evil.example/ opens evil.example; with a port too.
    for url in (f"https://{shown}@{real}{port}/", f"https://{shown}:{shown}@{real}/x"):
        assert not judge_url(url, ALLOW, BOT).allowed, url


@given(allowed_hosts(), foreign_hosts(), st.sampled_from(["\\", "\\\\", " ", "\t", "\n", "\x00"]))
@example("upay.com", "evil.example", "\\")
def test_f09_backslashes_and_whitespace_in_a_link_are_refused(allowed, foreign, char):
    # https://evil.example\@upay.com/x: urllib sees upay.com, a browser opens evil.example.
    for url in (f"https://{foreign}{char}@{allowed}/x", f"https://{allowed}{char}/x"):
        assert not judge_url(url, ALLOW, BOT).allowed, url


@given(
    st.sampled_from(["http", "ftp", "javascript", "data", "file", "intent", "mailto", "tg"]),
    allowed_hosts(),
)
def test_f03_only_https_passes(scheme, host):
    assert not judge_url(f"{scheme}://{host}/", ALLOW, BOT).allowed


@given(st.text(string.ascii_letters + string.digits + "_", min_size=5, max_size=32))
def test_f03_telegram_links_pass_only_for_the_bot_itself(name):
    assume(name.lower() != BOT)
    for url in (
        f"tg://resolve?domain={name}",
        f"https://t.me/{name}",
        f"https://t.me/{name}?start=x",
        f"tg:resolve?domain={name}",
    ):
        assert not judge_url(url, ALLOW, BOT).allowed, url
    assert judge_url(f"tg://resolve?domain={BOT}", ALLOW, BOT).allowed
    assert judge_url(f"https://t.me/{BOT}?start=link", ALLOW, BOT).allowed


@given(st.text(max_size=60))
def test_f03_any_text_never_breaks_the_checker(text):
    judge_url(text, ALLOW, BOT)
    links_in_html(text)


def _message(text: str, entities: list[MessageEntity]) -> Message:
    return Message.de_json(
        {
            "message_id": 1,
            "date": 0,
            "chat": {"id": -100, "type": "supergroup"},
            "text": text,
            "entities": [e.to_dict() for e in entities],
        },
        None,
    )


@given(allowed_hosts(), foreign_hosts())
@example("upay.com", "evil.example")
def test_f03_a_text_link_is_judged_by_its_target_not_its_text(shown, real):
    text = f"Reset it at https://{shown}/reset"
    link = MessageEntity(MessageEntity.TEXT_LINK, 12, len(text) - 12, url=f"https://{real}/reset")
    targets = links_in_message(_message(text, [link]))
    assert f"https://{real}/reset" in targets
    assert any(not judge_url(t, ALLOW, BOT).allowed for t in targets)


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("write to @upay_refunds_bot", MessageEntity(MessageEntity.MENTION, 9, 16)),
        ("mail help@evil.example", MessageEntity(MessageEntity.EMAIL, 5, 17)),
        ("see evil.example/login", MessageEntity(MessageEntity.URL, 4, 18)),
    ],
)
def test_f03_mentions_emails_and_bare_links_are_judged(text, entity):
    targets = links_in_message(_message(text, [entity]))
    assert targets and not all(judge_url(t, ALLOW, BOT).allowed for t in targets)


def test_f03_links_written_in_text_without_entities_are_found():
    text = "请访问https://evil.example/登录 或 www.evil.example 和 (https://help.upay.com/x)。"
    found = links_in_html(text)
    assert [judge_url(t, ALLOW, BOT).allowed for t in found] == [False, False, True]
