"""The security review's findings, end to end: the real bot on the emulator, attacked the way
the review did (forged buttons, links, edits, names, the inbox, the webhook). Each test is
named after the finding it proves; unit-level proofs are in ``tests/unit``."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import socket
import sqlite3
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Update
from telegram.ext import CallbackQueryHandler, ConversationHandler

from tests.e2e.test_account import ALICE, CODE, person, verify
from tests.e2e.test_broadcast import EN_TEXT, ZH_TEXT, make_world, wait_done
from tests.e2e.test_handoff import RIGHTS, Desk
from tests.harness import TOKEN, UserSession
from tests.support.generators import card_texts, code_texts, password_texts, remember
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps

ERROR = "Sorry, something went wrong on our side"
EXPIRED = "This button belongs to an earlier step"
#: The emulator's bot (tgbot.sandbox.emulator default).
BOT_USERNAME = "upay_support_bot"


@pytest.fixture
async def desk(make_bot):
    """An agents' forum group with two roster agents, a stranger in it, and an admin."""
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    agent = emu.add_user("Agent Wang", language_code="zh-hans")
    other = emu.add_user("Agent Li", language_code="zh-hans")
    stranger = emu.add_user("Mallory", language_code="en")
    admin = emu.add_user("Admin Zhao", language_code="en", started=True)
    group = emu.add_forum_group(
        "Agents",
        members=[agent.id, other.id, stranger.id],
        admins=[agent.id],
        bot_is_admin=True,
        bot_rights=RIGHTS,
    )
    bot = await make_bot(
        emu=emu,
        agent_chats=((group.id, None),),
        admin_ids=frozenset({admin.id}),
        rate_group_per_minute=60_000.0,  # relays into the group never wait in these tests
    )
    await bot.app.repos.agents.add(agent.id, "Wang", admin.id)
    await bot.app.repos.agents.add(other.id, "Li", admin.id)
    d = Desk(bot, group.id, agent.id, admin.id)
    d.other_id = other.id
    d.stranger_id = stranger.id
    yield d
    assert bot.violations == []


async def _ticket(desk, user):
    await user.send("/human")
    ticket = await desk.bot.app.repos.tickets.open_for_user(user.user_id)
    return ticket, desk.topic_of(ticket.code)


def _entity(kind: str, text: str, part: str, **extra) -> dict:
    offset = text.index(part)
    return {"type": kind, "offset": offset, "length": len(part), **extra}


# ---------------------------------------------------------------------- 2: card + CVV


async def test_f02_card_with_expiry_and_cvv_in_a_ticket_reaches_agents_masked(desk):
    alice = desk.bot.user("Alice")
    ticket, thread = await _ticket(desk, alice)
    remember("4111111111111111", "4111 1111 1111 1111", "hunter22", "6212345678901234567")
    for text in (
        "my card is 4111 1111 1111 1111 12/26 cvv 123",
        "card: 4111.1111.1111.1111",
        "6212 3456 7890 1234 567",  # UnionPay, no Luhn
        "4111\u200b1111\u200b1111\u200b1111",
        "password hunter22",
        "验证码 4 8 2 9 1 3",
    ):
        sent = await alice.send(text)
        assert desk.emu.message(alice.user_id, sent.message_id).deleted, text
        assert alice.last_message.text.startswith("⚠️ I deleted your message"), text
    relayed = "\n".join(desk.texts(thread))
    for clear in ("1111 1111", "12/26", "123", "7890", "hunter22", "482913", "4 8 2 9 1 3"):
        assert clear not in relayed, clear
    assert "4111 **** **** 1111" in relayed
    lines = [line.text or "" for line in await desk.bot.app.repos.tickets.transcript(ticket.id)]
    assert not any("4111111111111111" in t.replace(" ", "") for t in lines)


async def test_f02_an_edit_into_a_card_number_is_deleted(bot):
    alice = bot.user("Alice")
    sent = await alice.send("hello")
    await alice.edit(sent.message_id, "4111-1111-1111-1111 exp 12/26")
    assert bot.emu.message(alice.user_id, sent.message_id).deleted
    assert alice.last_message.text.startswith("⚠️ I deleted your message")


@settings(
    max_examples=min(25, settings.default.max_examples),
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # one bot for all examples
)
@given(
    case=st.one_of(
        card_texts().map(lambda c: (*c, "card")),
        password_texts().map(lambda c: (*c, "password")),
        code_texts().map(lambda c: (*c, "code")),
    )
)
async def test_f02_generated_secrets_in_a_ticket_never_reach_agents_or_disk(desk_once, case):
    desk, alice, thread = desk_once
    text, secret, kind = case
    # The scan after the suite looks for all of it: the digits, the value, the message.
    remember(secret if kind != "code" else text.strip(), text.strip())
    sent = await alice.send(text)
    assert desk.emu.message(alice.user_id, sent.message_id).deleted, text
    last = desk.texts(thread)[-1]
    assert last.startswith("⚠️ The user sent "), last
    assert secret not in last and secret not in "".join(c for c in last if c.isdigit()), last


@pytest.fixture
async def desk_once(desk):
    """One ticket of Alice's for every generated example (hypothesis reuses the fixture)."""
    alice = desk.bot.user("Alice")
    _, thread = await _ticket(desk, alice)
    return desk, alice, thread


# ---------------------------------------------------------------------- 3: agents' links

REFUSED_LINKS = [
    ("Log in: https://upay.com@evil.example/login", []),
    ("Log in: https://upay.com:443@evil.example/", []),
    ("Log in: https://upay.com:x@evil.example:8443/", []),
    ("https://uрay.com/login", []),  # Cyrillic р
    ("https://xn--uay-0ed.com/login", []),
    ("https://127.0.0.1/upay", []),
    ("https://[::1]/upay", []),
    ("https://2130706433/upay", []),
    ("tg://resolve?domain=upay_refund_bot", []),
    ("https://t.me/upay_refund_bot", []),
    ("http://upay.com/login", []),
    ("https://upay.com.evil.example/", []),
    ("https://evil.example\\@upay.com/", []),
    ("Reset it at https://upay.com/reset", "text_link https://evil.example/reset"),
    ("Reset it at https://upay.com/reset", "text_link https://185.199.108.153/reset"),
    ("Reset it at https://upay.com/reset", "text_link tg://resolve?domain=upay_refund_bot"),
    ("Reset it at https://upay.com/reset", "text_link https://uрay.com/reset"),
    ("Write to @upay_refund_bot", "mention @upay_refund_bot"),
    ("see evil.example/login", "url evil.example/login"),
    ("mail refunds@evil.example", "email refunds@evil.example"),
    ("tap here", "text_link javascript:alert(1)"),
]


def _entities(text: str, spec) -> list[dict]:
    if not spec:
        return []
    kind, _, value = spec.partition(" ")
    if kind == "text_link":
        part = "https://upay.com/reset" if "upay.com/reset" in text else text
        return [_entity("text_link", text, part, url=value)]
    return [_entity(kind, text, value)]


@pytest.mark.parametrize(
    ("text", "spec"), REFUSED_LINKS, ids=[f"{t} {s or ''}".strip() for t, s in REFUSED_LINKS]
)
async def test_f03_agents_links_past_the_allow_list_never_reach_the_user(desk, text, spec):
    alice = desk.bot.user("Alice")
    ticket, thread = await _ticket(desk, alice)
    before = list(alice.texts)
    await desk.say(thread, text, entities=_entities(text, spec))
    assert alice.texts == before
    assert "⛔" in desk.texts(thread)[-1]
    audit = await desk.bot.app.repos.audit.recent(5)
    assert audit[0].action == "relay.link_refused" and audit[0].target == str(ticket.id)


async def test_f03_allowed_links_still_reach_the_user(desk):
    alice = desk.bot.user("Alice")
    _, thread = await _ticket(desk, alice)
    text = "See https://help.upay.com/refunds or HTTPS://UPAY.COM/x"
    await desk.say(thread, text)
    await desk.say(
        thread, "Guide", entities=[_entity("text_link", "Guide", "Guide", url="https://upay.com/g")]
    )
    await desk.say(thread, f"Back to me: tg://resolve?domain={BOT_USERNAME}")
    # Signed for the user ("Support · Wang"), links and formatting kept.
    label = "Support · Wang\n"
    expected = [text, "Guide", f"Back to me: tg://resolve?domain={BOT_USERNAME}"]
    assert alice.texts[-3:] == [label + t for t in expected]
    guide = alice.messages[-2].raw
    links = [e for e in guide.get("entities", []) if e["type"] == "text_link"]
    assert [e["url"] for e in links] == ["https://upay.com/g"]


# ---------------------------------------------------------------------- 4: agents' edits


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("Log in at https://upay-secure.example/login", None),
        ("Reset it at https://upay.com/reset", "text_link https://evil.example/reset"),
        ("Reset it at https://upay.com/reset", "text_link https://185.199.108.153/reset"),
        ("Reset it at https://upay.com/reset", "text_link tg://resolve?domain=upay_refund_bot"),
        ("Reset it at https://upay.com/reset", "text_link https://uрay.com/reset"),
        ("Log in: https://upay.com@evil.example/", None),
    ],
)
async def test_f04_an_agent_edit_into_a_phishing_link_never_reaches_the_users_copy(
    desk, text, spec
):
    alice = desk.bot.user("Alice")
    _, thread = await _ticket(desk, alice)
    answer = await desk.say(thread, "Our help page explains it.")
    users_copy = alice.last_message
    assert users_copy.text == "Support · Wang\nOur help page explains it."
    desk.emu.user_edit(
        desk.agent_id, desk.group_id, answer["message_id"], text, entities=_entities(text, spec)
    )
    await desk.bot.settle()
    shown = desk.emu.message(alice.user_id, users_copy.message_id).data["text"]
    assert shown == "Support · Wang\nOur help page explains it."
    assert "⛔" in desk.texts(thread)[-1]
    audit = (await desk.bot.app.repos.audit.recent(5))[0]
    assert audit.action == "relay.link_refused" and audit.details["edit"] is True


# ---------------------------------------------------------------------- 6, 9: broadcasts


async def test_f06_broadcast_text_links_outside_the_allow_list_are_refused(make_bot):
    _bot, emu, (admin,), _ = await make_world(make_bot, users=2)
    await admin.send("/broadcast")
    await admin.click("Everyone")
    text = "【安全提醒】请在官方网站核实。"
    link = _entity("text_link", text, "官方网站", url="https://upay-verify.example/")
    emu.user_send(admin.user_id, text, entities=[link])
    await admin.harness.settle()
    assert admin.last_message.text.startswith(
        "Not accepted: this text links to upay-verify.example"
    )
    for bad in ("Visit https://upay.com@evil.example/", "Call @upay_refund_bot"):
        entities = [_entity("mention", bad, "@upay_refund_bot")] if "@upay_r" in bad else []
        emu.user_send(admin.user_id, bad, entities=entities)
        await admin.harness.settle()
        assert admin.last_message.text.startswith("Not accepted"), bad
    await admin.send(ZH_TEXT)  # accepted: the English text is asked for next
    assert "English" in admin.last_message.text


async def test_f06_the_approver_sees_every_link_target_in_clear(make_bot):
    bot, emu, (alice, bob), _ = await make_world(make_bot, users=3, admins=2)
    await alice.send("/broadcast")
    await alice.click("English users")
    text = "Read our safety guide before you pay."
    guide = _entity("text_link", text, "safety guide", url="https://help.upay.com/safety")
    emu.user_send(alice.user_id, text, entities=[guide])
    await bot.settle()
    await alice.send("https://upay.com/notice?id=7")
    await alice.click("📣 Send")
    request = [m["text"] for m in emu.bot_messages(bob.user_id) if "wants to send" in m["text"]]
    assert request, emu.bot_messages(bob.user_id)
    assert "https://help.upay.com/safety" in request[-1]  # hidden behind "safety guide"
    assert "https://upay.com/notice?id=7" in request[-1]  # the button's URL


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example\\@upay.com/x",
        "https://evil.example\\\\@upay.com/x",
        "https://upay.com@evil.example/",
        "https://upay.com /x",
        "https://uрay.com/x",
    ],
)
async def test_f09_broadcast_button_links_with_host_tricks_are_refused(make_bot, url):
    _bot, _emu, (admin,), _ = await make_world(make_bot, users=2)
    await admin.send("/broadcast")
    await admin.click("English users")
    await admin.send(EN_TEXT)
    await admin.send(url)
    assert admin.last_message.text.startswith("Links may only go to upay.com")


# ---------------------------------------------------------------------- 7: agents' group


USER_BUTTONS = [
    "menu:main",
    "menu:human",
    "menu:cards",
    "menu:lookup",
    "lang:menu",
    "lang:set:zh_Hans",
    "tk:end",
    "flow:cancel",
]


@pytest.mark.parametrize("who", ["stranger", "agent"])
async def test_f07_user_buttons_do_nothing_in_the_agents_group(desk, who):
    alice = desk.bot.user("Alice")
    ticket, thread = await _ticket(desk, alice)
    header = copy.deepcopy(desk.messages(thread)[0])
    presser = desk.stranger_id if who == "stranger" else desk.agent_id
    before = _snapshot(desk)
    for data in USER_BUTTONS:
        query = desk.emu.user_press(presser, desk.group_id, header["message_id"], data)
        await desk.bot.settle()
        assert query in desk.emu.callback_answers, data  # answered, nothing else
    assert _snapshot(desk) == before
    assert desk.emu.message(desk.group_id, header["message_id"]).data == header
    assert await desk.bot.app.repos.tickets.open_for_user(presser) is None
    # Ticket buttons still work for roster agents, and only for them.
    query = await desk.press(thread, "🙋 Claim", agent_id=presser)
    answer = desk.emu.callback_answers[query]["text"]
    assert answer == ("Only support agents can do this." if who == "stranger" else "Claimed.")
    del ticket


def _snapshot(desk) -> list[str]:
    """The agents' group as its members see it: every bot message, text and buttons."""
    return [
        json.dumps([m.get("text"), m.get("reply_markup")], ensure_ascii=False)
        for m in desk.emu.bot_messages(desk.group_id)
    ]


async def test_f07_user_commands_do_nothing_in_the_agents_group(desk):
    alice = desk.bot.user("Alice")
    _, thread = await _ticket(desk, alice)
    before = _snapshot(desk)
    for command in ("/start", "/human", "/help", "/language", "/cards"):
        await desk.say(thread, command)  # a roster agent
    assert _snapshot(desk) == before


# ---------------------------------------------------------------------- 8: the inbox


async def test_f08_the_inbox_keeps_no_personal_data(bot):
    stored: list[dict] = []
    inbox = bot.app.repos.inbox
    real_store, real_store_many = inbox.store, inbox.store_many

    async def capture(update_id, payload, now=None):
        stored.append(json.loads(payload))
        return await real_store(update_id, payload, now)

    async def capture_many(items, now=None):  # polling writes a getUpdates answer at once
        stored.extend(json.loads(payload) for _, payload in items)
        return await real_store_many(items, now)

    inbox.store = capture
    inbox.store_many = capture_many
    alice = person(bot, "Alice", ALICE)
    friend = bot.emu.add_user("Zhang Wei", last_name="Secretname", phone_number="+8613912345678")
    await alice.send("/password")
    await verify(bot, alice)  # shares her own contact: +14155550103
    bot.emu.user_share_contact(alice.user_id, contact_user_id=friend.id)
    bot.emu.user_send_document(
        alice.user_id, b"%PDF", file_name="passport-ZHANG-WEI-110101199003071234.pdf"
    )
    question = await alice.send("Note to self: the spare key is under the blue pot")
    bot.emu.user_send(alice.user_id, "see above", reply_to=question.message_id)
    await bot.settle()
    blob = json.dumps(stored, ensure_ascii=False)
    for personal in (
        "14155550103",
        "8613912345678",
        "Secretname",
        "Zhang Wei",
        "passport-ZHANG-WEI",
        "110101199003071234",
    ):
        assert personal not in blob, personal
    # Her own message is kept (masked if need be); the reply to it does not repeat it.
    assert blob.count("the spare key is under the blue pot") == 1
    assert CODE not in blob  # the code typed in its step is masked too


async def test_f08_a_contact_handled_again_after_a_restart_asks_to_share_again(make_bot):
    bot = await make_bot()
    alice = person(bot, "Alice", ALICE)
    await alice.send("/password")
    await bot.stop()
    # A crash after the inbox stored her contact and before it was handled: the inbox holds
    # its projection (no number); the restarted bot handles that.
    from tgbot.runtime import inbox_projection

    update = Update.de_json(
        {
            "update_id": 900001,
            "message": {
                "message_id": 900,
                "date": int(time.time()),
                "chat": {"id": alice.user_id, "type": "private", "first_name": "Alice"},
                "from": {"id": alice.user_id, "is_bot": False, "first_name": "Alice"},
                "contact": {
                    "phone_number": ALICE.lstrip("+"),
                    "first_name": "Alice",
                    "user_id": alice.user_id,
                },
            },
        },
        None,
    )
    payload = json.dumps(inbox_projection(update))
    assert ALICE.lstrip("+") not in payload
    with sqlite3.connect(bot.db_path) as conn:
        conn.execute(
            "INSERT INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?)",
            (900001, payload, time.time()),
        )
    await bot.start()
    for _ in range(1000):
        if await bot.app.repos.inbox.is_done(900001):
            break
        await asyncio.sleep(0.01)
    await bot.settle()
    assert alice.last_message.text.startswith("Sorry, I was restarted before I could check")
    await alice.share_contact()
    assert "6-digit code" in alice.last_message.text


# ---------------------------------------------------------------------- 10: names


@pytest.mark.parametrize(
    "name", ['<a href="https://evil.example/">U-Pay Security</a>', "Alice <", "Tom & <b>Jerry"]
)
async def test_f10_wallet_display_names_never_become_markup(bot, name):
    await bot.app.backend.seed()
    async with bot.app.backend.store.db.transaction() as conn:  # the demo wallet's own file
        await conn.execute("UPDATE demo_accounts SET display_name = ? WHERE id = 'U1003'", (name,))
    alice = person(bot, "Alice", ALICE)
    await alice.send("/password")
    await verify(bot, alice)
    verified = next(m for m in alice.messages if m.text.startswith("✅ Verified"))
    assert name.strip() in verified.text
    assert not [e for e in verified.raw.get("entities", []) if e["type"] in ("text_link", "url")]
    assert ERROR not in "".join(alice.texts)


async def test_f10_an_admin_name_with_markup_still_reaches_the_approver(make_bot):
    bot, emu, (alice, bob), people = await make_world(make_bot, users=3, admins=2)
    emu.users[alice.user_id].first_name = '<a href="https://evil.example/">Admin</a> <'
    await alice.send("/broadcast")
    await alice.click("Everyone")
    await alice.send(ZH_TEXT)
    await alice.send(EN_TEXT)
    await alice.click("No link")
    await alice.click("📣 Send")
    request = next(m for m in emu.bot_messages(bob.user_id) if "wants to send" in m["text"])
    assert request["text"].startswith('📣 <a href="https://evil.example/">Admin</a> <')
    assert not [e for e in request.get("entities", []) if e["type"] == "text_link"]
    approve = next(m for m in emu.bot_messages(bob.user_id) if m.get("reply_markup"))
    await bob.click("✅ Approve", message_id=approve["message_id"])
    await wait_done(bot)
    assert (await bot.app.repos.broadcasts.get(1)).status == "done"
    del people


# ---------------------------------------------------------------------- 13: ids in buttons

LONG = "9" * 20


async def test_f13_a_20_digit_id_in_button_data_is_an_expired_button(desk, caplog):
    caplog.set_level(logging.ERROR)
    alice = desk.bot.user("Alice")
    await alice.send("/start")
    last = alice.last_message.message_id
    for data in (f"tk:rate:{LONG}:5", f"bc:approve:{LONG}", f"tk:claim:{LONG}"):
        query = await alice.press_forged(last, data)
        assert desk.emu.callback_answers[query]["text"].startswith(EXPIRED), data
    admin = UserSession(desk.bot, desk.admin_id, "Admin Zhao")
    await admin.send("/start")
    for data in (f"bc:approve:{LONG}", f"bc:recall:{LONG}", f"bc:pause:{LONG}"):
        query = await admin.press_forged(admin.last_message.message_id, data)
        assert desk.emu.callback_answers[query]["text"].startswith(EXPIRED), data
    _, thread = await _ticket(desk, alice)
    header = desk.messages(thread)[0]["message_id"]
    for data in (f"tk:claim:{LONG}", f"tk:to:1:{LONG}", f"tk:close:{LONG}"):
        desk.emu.user_press(desk.agent_id, desk.group_id, header, data)
        await desk.bot.settle()
    assert not any(ERROR in t for t in alice.texts + admin.texts)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---------------------------------------------------------------------- 1: webhook


async def test_f01_webhook_requests_without_the_secret_header_are_refused(make_bot):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    admin = emu.add_user("Admin", language_code="en", started=True)
    bot = await make_bot(emu=emu, webhook_port=port, admin_ids=frozenset({admin.id}))
    update = {
        "update_id": 777000,
        "message": {
            "message_id": 1,
            "date": 1,
            "chat": {"id": admin.id, "type": "private"},
            "from": {"id": admin.id, "is_bot": False, "first_name": "Admin"},
            "text": "/agent_add 666 Mallory",
            "entities": [{"type": "bot_command", "offset": 0, "length": 10}],
        },
    }
    url = f"http://127.0.0.1:{port}/hook"
    async with httpx.AsyncClient() as client:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
            answer = await client.post(url, json=update, headers=headers)
            assert answer.status_code == 403
        await asyncio.sleep(0)  # nothing was queued: there is nothing to wait for
        assert await bot.app.repos.inbox.max_update_id() is None
        assert await bot.app.repos.agents.get(666) is None
        good = await client.post(
            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
        )
        assert good.status_code == 200
    for _ in range(500):
        if await bot.app.repos.inbox.is_done(777000):
            break
        await asyncio.sleep(0.01)
    assert await bot.app.repos.agents.get(666) is not None  # the real endpoint, for comparison


def _callback_patterns(app) -> list[str]:
    """Every callback pattern the bot's handlers register (in flows too)."""
    found = []

    def visit(handler) -> None:
        if isinstance(handler, ConversationHandler):
            for inner in [*handler.entry_points, *handler.fallbacks]:
                visit(inner)
            for handlers in handler.states.values():
                for inner in handlers:
                    visit(inner)
        elif (
            isinstance(handler, CallbackQueryHandler)
            and isinstance(handler.pattern, re.Pattern)
            and handler.callback.__module__.startswith("handlers.")  # not the test flows
        ):
            found.append(handler.pattern.pattern)

    for handlers in app.handlers.values():
        for handler in handlers:
            visit(handler)
    return sorted(set(found))


def _forged(pattern: str) -> st.SearchStrategy[str]:
    """Data a pattern matches, and the same with every number made 20 digits long."""
    matching = st.from_regex(pattern, fullmatch=True)
    return st.one_of(matching, matching.map(lambda d: re.sub(r"[0-9]+", LONG, d)))


@pytest.fixture
async def pressers(desk):
    """Alice and the admin in their private chats, an agent under a ticket's header."""
    alice = desk.bot.user("Alice")
    admin = UserSession(desk.bot, desk.admin_id, "Admin Zhao")
    await admin.send("/start")
    _, thread = await _ticket(desk, alice)
    header = desk.messages(thread)[0]["message_id"]
    return desk, alice, admin, header


@settings(
    max_examples=min(40, settings.default.max_examples),
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # one bot for all examples
)
@given(data=st.data())
async def test_f13_any_button_data_of_any_pattern_never_errors(pressers, data, caplog):
    desk, alice, admin, header = pressers
    patterns = _callback_patterns(desk.bot.app)
    assert len(patterns) > 20
    for pattern in patterns:  # anchored at both ends: a longer number is not matched
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
    pattern = data.draw(st.sampled_from(patterns))
    forged = data.draw(_forged(pattern).filter(lambda d: len(d.encode()) <= 64))
    who = data.draw(st.sampled_from(["user", "admin", "agent"]))
    caplog.set_level(logging.ERROR)
    if who == "agent":
        desk.emu.user_press(desk.agent_id, desk.group_id, header, forged)
        await desk.bot.settle()
    else:
        session = alice if who == "user" else admin
        await session.press_forged(session.last_message.message_id, forged)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], (pattern, forged)
    assert not any(ERROR in t for t in alice.texts + admin.texts), (pattern, forged)
