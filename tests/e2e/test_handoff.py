"""Human handoff end to end: users reach agents in forum topics, nothing lost either way."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.agents import MACROS
from tests.harness import TOKEN, UserSession
from tgbot.i18n import translator
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps, Faults

RIGHTS = {"can_manage_topics": True, "can_delete_messages": True}
ZH = translator("zh_Hans")


class Desk:
    """The agents' group seen by one agent."""

    def __init__(self, bot, group_id: int, agent_id: int, admin_id: int):
        self.bot = bot
        self.emu = bot.emu
        self.group_id = group_id
        self.agent_id = agent_id
        self.admin_id = admin_id

    def topics(self) -> dict:
        return {k: v for k, v in self.emu.topics(self.group_id).items() if not v["deleted"]}

    def topic_of(self, code: str) -> int:
        for thread_id, topic in self.topics().items():
            if topic["name"].startswith(code):
                return thread_id
        raise AssertionError(f"no topic for {code}: {self.topics()}")

    def messages(self, thread_id: int) -> list[dict]:
        """Return the bot's messages in a topic (not the topic service messages)."""
        return [
            m
            for m in self.emu.bot_messages(self.group_id, thread_id)
            if not any(k.startswith("forum_topic_") for k in m)
        ]

    def texts(self, thread_id: int) -> list[str]:
        return [m.get("text") or m.get("caption") or "" for m in self.messages(thread_id)]

    async def say(self, thread_id: int, text: str, agent_id: int | None = None, **kw) -> dict:
        message = self.emu.user_send(
            agent_id or self.agent_id, text, chat_id=self.group_id, thread_id=thread_id, **kw
        )
        await self.bot.settle()
        return message

    async def press(self, thread_id: int, label: str, agent_id: int | None = None) -> str:
        for message in reversed(self.messages(thread_id)):
            for row in message.get("reply_markup", {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"] == label:
                        query = self.emu.press_button(
                            agent_id or self.agent_id, self.group_id, message["message_id"], label
                        )
                        await self.bot.settle()
                        return query
        raise AssertionError(f"no button {label!r} in topic {thread_id}")


@pytest.fixture
async def desk(make_bot):
    d = await _make_desk(make_bot)
    yield d
    assert d.bot.violations == []


@pytest.fixture
async def roomy_desk(make_bot):
    """A desk whose group takes many messages a minute (tests that send many there)."""
    d = await _make_desk(make_bot, rate_group_per_minute=6000.0)
    yield d
    assert d.bot.violations == []


async def _make_desk(make_bot, **config) -> Desk:
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    agent = emu.add_user("Agent Wang", language_code="zh-hans")
    other = emu.add_user("Agent Li", language_code="zh-hans")
    admin = emu.add_user("Admin Zhao", language_code="en", started=True)
    group = emu.add_forum_group(
        "Agents",
        members=[agent.id, other.id],
        admins=[agent.id],
        bot_is_admin=True,
        bot_rights=RIGHTS,
    )
    # As on Telegram: the bot (an admin that manages topics) may write in a closed topic.
    emu.closed_topic_admin_bypass = True
    bot = await make_bot(
        emu=emu, agent_chats=((group.id, None),), admin_ids=frozenset({admin.id}), **config
    )
    await bot.app.repos.agents.add(agent.id, "Wang", admin.id)
    await bot.app.repos.agents.add(other.id, "Li", admin.id)
    d = Desk(bot, group.id, agent.id, admin.id)
    d.other_id = other.id
    return d


async def _open(desk, user, text="/human"):
    await user.send(text)
    ticket = await desk.bot.app.repos.tickets.open_for_user(user.user_id)
    assert ticket is not None
    return ticket, desk.topic_of(ticket.code)


async def test_menu_button_opens_a_ticket_with_topic_header_and_queue_info(desk):
    alice = desk.bot.user("Alice")
    await alice.send("/start")
    await alice.click("🙋 Talk to a human")
    ticket = await desk.bot.app.repos.tickets.open_for_user(alice.user_id)
    text = alice.last_message.text
    assert ticket.code in text and "never ask for your password" in text
    assert "You are number 1 in the queue" in text
    assert alice.buttons == ["✖️ End conversation"]
    thread = desk.topic_of(ticket.code)
    name = desk.topics()[thread]["name"]
    assert name == f"{ticket.code} · Alice · English"  # the language's name, not a code
    header = desk.messages(thread)[0]
    assert f"Ticket {ticket.code}" in header["text"] and "not linked" in header["text"]
    assert [b["text"] for r in header["reply_markup"]["inline_keyboard"] for b in r] == [
        "🙋 Claim",
        "✅ Close",
        "↪️ Transfer",
    ]


@pytest.mark.parametrize("words", ["转人工", "我要找客服", "can I talk to a human please", "agent"])
async def test_words_asking_for_a_person_escalate(desk, words):
    li = desk.bot.user("李雷", "zh-hans")
    ticket, _ = await _open(desk, li, words)
    assert ticket.language == "zh_Hans"
    assert "工单号" in li.texts[-1]


async def test_one_open_ticket_per_user(desk):
    alice = desk.bot.user("Alice")
    first, _ = await _open(desk, alice)
    await alice.send("/end")
    await alice.click("✖️ Yes, end it")  # nobody had answered: ending is confirmed first
    await alice.send("/start")
    ticket, _ = await _open(desk, alice, "/human")
    assert ticket.id != first.id
    await alice.send("/human")
    assert "You are talking to support" in alice.last_message.text
    assert len(desk.topics()) == 2


async def test_text_relays_both_ways_and_agents_stay_anonymous(desk):
    alice = desk.bot.user("Alice")
    ticket, thread = await _open(desk, alice)
    await alice.send("My payment <b>failed</b> & I was charged")
    assert desk.texts(thread)[-1] == "My payment <b>failed</b> & I was charged"
    await desk.say(thread, "Let me check that for you.")
    reply = alice.last_message
    # Signed "Support · Wang": a person of the team wrote it; the account stays hidden.
    assert reply.text == "Support · Wang\nLet me check that for you."
    assert reply.raw["from"]["id"] == desk.emu.bot.id  # the user sees the bot, not the agent
    claimed = await desk.bot.app.repos.tickets.get(ticket.id)
    assert claimed.status == "claimed" and claimed.claimed_by == desk.agent_id
    assert claimed.first_response_at is not None
    assert "✅ An agent has taken your request and will reply here." in alice.texts
    lines = await desk.bot.app.repos.tickets.transcript(ticket.id)
    assert [(line.direction, line.text) for line in lines] == [
        ("in", "My payment <b>failed</b> & I was charged"),
        ("out", "Let me check that for you."),
    ]
    assert all(line.sent_at for line in lines)


async def test_media_relays_both_ways(desk):
    alice = desk.bot.user("Alice")
    _, thread = await _open(desk, alice)
    emu = desk.emu
    emu.user_send_photo(alice.user_id, caption="receipt")
    emu.user_send_document(alice.user_id, b"%PDF-1.4", file_name="bill.pdf")
    emu.user_send_voice(alice.user_id)
    emu.user_send_sticker(alice.user_id)
    await desk.bot.settle()
    kinds = [
        next((k for k in ("photo", "document", "voice", "sticker") if k in m), "text")
        for m in desk.messages(thread)[1:]
    ]
    assert kinds == ["photo", "document", "voice", "sticker"]
    assert desk.messages(thread)[1]["caption"] == "receipt"
    emu.user_send_photo(desk.agent_id, caption="see here", chat_id=desk.group_id, thread_id=thread)
    emu.user_send_document(
        desk.agent_id, b"guide", file_name="guide.pdf", chat_id=desk.group_id, thread_id=thread
    )
    await desk.bot.settle()
    mine = desk.emu.bot_messages(alice.user_id)
    assert "photo" in mine[-2] and mine[-2]["caption"] == "Support · Wang\nsee here"
    assert mine[-1]["document"]["file_name"] == "guide.pdf"


async def test_album_arrives_as_one_album(desk):
    alice = desk.bot.user("Alice")
    _, thread = await _open(desk, alice)
    emu = desk.emu
    album = [("photo", b"x", f"p{i}") for i in range(3)]
    emu.user_send_media_group(alice.user_id, album)
    # The album is relayed once it is complete (a quiet moment after its last item).
    await desk.bot.wait_until(lambda: len(desk.messages(thread)) > 1, "the album relayed")
    relayed = desk.messages(thread)[1:]
    assert len(relayed) == 3
    assert len({m.get("media_group_id") for m in relayed}) == 1 and relayed[0].get("media_group_id")
    calls = [m for m, p in emu.calls if m == "copyMessages"]
    assert calls == ["copyMessages"]


async def test_agent_edit_reaches_the_users_copy_and_replies_keep_threading(desk):
    alice = desk.bot.user("Alice")
    _, thread = await _open(desk, alice)
    question = await alice.send("Where is my refund?")
    relayed_q = desk.messages(thread)[-1]
    answer = await desk.say(thread, "Tomorow", reply_to=relayed_q["message_id"])
    copy = alice.last_message
    assert copy.raw.get("reply_to_message", {}).get("message_id") == question.message_id
    desk.emu.user_edit(desk.agent_id, desk.group_id, answer["message_id"], "Tomorrow")
    await desk.bot.settle()
    assert alice.shown(copy.message_id).text == "Support · Wang\nTomorrow"


async def test_claim_transfer_close_and_rating(desk):
    alice = desk.bot.user("Alice")
    ticket, thread = await _open(desk, alice)
    query = await desk.press(thread, "🙋 Claim")
    assert desk.emu.callback_answers[query]["text"] == "Claimed."
    assert "🙋 Wang claimed this ticket." in desk.texts(thread)
    # The header card now says who has it, and offers no "Claim" any more.
    header = desk.messages(thread)[0]
    assert "🙋 Claimed by Wang" in header["text"]
    assert [b["text"] for r in header["reply_markup"]["inline_keyboard"] for b in r] == [
        "✅ Close",
        "↪️ Transfer",
    ]
    await desk.say(thread, "/claim", agent_id=desk.other_id)
    assert desk.texts(thread)[-1] == "Already claimed by Wang."
    await desk.say(thread, f"/transfer {desk.other_id}")
    assert "↪️ Wang transferred this ticket to Li." in desk.texts(thread)
    assert (await desk.bot.app.repos.tickets.get(ticket.id)).claimed_by == desk.other_id
    assert "🙋 Claimed by Li" in desk.messages(thread)[0]["text"]  # the header follows
    await desk.say(thread, "Your refund is on its way.", agent_id=desk.other_id)
    await desk.press(thread, "✅ Close", agent_id=desk.other_id)
    assert "✅ Ticket closed by Li." in desk.texts(thread)
    assert desk.topics()[thread]["closed"]
    assert alice.last_message.text.startswith(
        f"Support has closed this conversation (ticket {ticket.code})"
    )
    await alice.click("⭐⭐⭐⭐")
    assert alice.last_message.text.startswith("Thank you for rating us ⭐⭐⭐⭐")
    await alice.click("✍️ Add a comment")
    await alice.send("Quick and kind, thanks")
    assert alice.last_message.text.startswith("Thank you, your comment was passed to our team.")
    rated = await desk.bot.app.repos.tickets.get(ticket.id)
    assert (rated.rating, rated.rating_comment) == (4, "Quick and kind, thanks")
    # The agents see how they were rated, in the (closed) topic, and the header is closed.
    texts = desk.texts(thread)
    assert "⭐ The user rated this ticket ⭐⭐⭐⭐ (4 of 5)." in texts
    assert "💬 The user's comment: Quick and kind, thanks" in texts
    header = desk.messages(thread)[0]
    assert header["text"].endswith("✅ Closed") and not header.get("reply_markup")
    audit = [e.action for e in await desk.bot.app.repos.audit.recent(20)]
    assert {"ticket.claim", "ticket.transfer", "ticket.close"} <= set(audit)


async def test_after_a_close_a_new_question_is_a_new_question_and_not_solved_reopens(desk):
    alice = desk.bot.user("Alice")
    ticket, thread = await _open(desk, alice)
    await desk.say(thread, "Hello, how can I help?")
    await alice.click("✖️ End conversation")  # an agent answered: no confirmation needed
    closing = alice.last_message
    assert closing.text.startswith(
        f"You ended the conversation with support (ticket {ticket.code})"
    )
    assert "🔄 Not solved, reopen" in closing.buttons
    assert "✅ Ticket closed by the user." in desk.texts(thread)
    # Typing something new is a new question: self-service answers, the ticket stays closed,
    # nothing goes into the closed topic, and menus work.
    before = len(desk.texts(thread))
    await alice.send("how do I change my phone number")
    assert (await desk.bot.app.repos.tickets.get(ticket.id)).status == "closed"
    assert len(desk.texts(thread)) == before
    assert "is open again" not in alice.last_message.text
    await alice.send("/start")
    assert alice.last_message.text.startswith("Hello, Alice!")
    # A clear "not solved" reopens it and reaches the agents.
    await alice.send("still not working")
    assert f"ticket {ticket.code}) is open again" in alice.texts[-1]
    assert (await desk.bot.app.repos.tickets.get(ticket.id)).is_open
    texts = desk.texts(thread)
    assert texts[-2:] == [
        "🔄 The user says it is not solved: ticket reopened.",
        "still not working",
    ]


async def test_the_reopen_button_works_within_the_window_only(make_bot):
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    agent = emu.add_user("Agent Wang", language_code="zh-hans")
    group = emu.add_forum_group(
        "Agents", members=[agent.id], admins=[agent.id], bot_is_admin=True, bot_rights=RIGHTS
    )
    emu.closed_topic_admin_bypass = True
    bot = await make_bot(emu=emu, agent_chats=((group.id, None),), reopen_window=60)
    await bot.app.repos.agents.add(agent.id, "Wang", None)
    li = bot.user("李雷", "zh-hans")
    await li.send("/human")
    ticket = await bot.app.repos.tickets.open_for_user(li.user_id)
    thread = ticket.thread_id
    emu.user_send(agent.id, "您好", chat_id=group.id, thread_id=thread)
    await bot.settle()
    emu.user_send(agent.id, "/close", chat_id=group.id, thread_id=thread)
    await bot.settle()
    closing = li.last_message
    reopen = ZH.gettext("🔄 Not solved, reopen")
    assert reopen in closing.buttons
    await li.click(reopen)
    assert (await bot.app.repos.tickets.get(ticket.id)).is_open
    assert ticket.code in li.last_message.text
    assert reopen not in li.shown(closing.message_id).buttons  # spent
    # Closed again and the window passed: the button says so and offers a new ticket.
    emu.user_send(agent.id, "/close", chat_id=group.id, thread_id=thread)
    await bot.settle()
    bot.app.config = bot.app.config.replace(reopen_window=0.001)
    await asyncio.sleep(0.01)
    query = await li.click(reopen)
    assert li.answer_of(query) == ZH.gettext(
        "This conversation was closed too long ago to reopen. Tap “🙋 Talk to a human” to "
        "start a new one."
    )
    assert (await bot.app.repos.tickets.get(ticket.id)).status == "closed"
    assert ZH.gettext("🙋 Talk to a human") in li.last_message.buttons


async def test_non_agents_are_ignored_and_reported(desk):
    alice = desk.bot.user("Alice")
    _, thread = await _open(desk, alice)
    stranger = desk.emu.add_user("Mallory")
    desk.emu.chats[desk.group_id].members[stranger.id] = "member"
    before = len(alice.texts)
    await desk.say(thread, "send me your password", agent_id=stranger.id)
    await desk.say(thread, "/close", agent_id=stranger.id)
    assert len(alice.texts) == before
    assert (await desk.bot.app.repos.tickets.open_for_user(alice.user_id)) is not None
    admin_texts = [m["text"] for m in desk.emu.bot_messages(desk.admin_id)]
    assert any("Mallory" in t and "not on the agent roster" in t for t in admin_texts)
    query = await desk.press(thread, "✅ Close", agent_id=stranger.id)
    assert desk.emu.callback_answers[query]["text"] == "Only support agents can do this."


async def test_links_outside_the_allow_list_are_not_relayed(desk):
    alice = desk.bot.user("Alice")
    _, thread = await _open(desk, alice)
    before = len(alice.texts)
    await desk.say(thread, "Log in at https://upay-secure-login.xyz/verify")
    assert len(alice.texts) == before
    assert "links to upay-secure-login.xyz are not allowed" in desk.texts(thread)[-1]
    await desk.say(thread, "See https://help.upay.com/refunds")
    assert alice.last_message.text == "Support · Wang\nSee https://help.upay.com/refunds"


async def test_look_alike_domains_are_not_on_the_allow_list(roomy_desk):
    """upay.com allows its subdomains (help.upay.com), not names that merely end alike."""
    desk = roomy_desk
    alice = desk.bot.user("Alice")
    _, thread = await _open(desk, alice)
    before = len(alice.texts)
    for host in ("evilupay.com", "myupay.com", "upay.com.evil.io", "upay-com.xyz"):
        await desk.say(thread, f"Please log in at https://{host}/verify")
        assert f"links to {host} are not allowed" in desk.texts(thread)[-1], host
    assert len(alice.texts) == before
    await desk.say(thread, "See https://help.upay.com/refunds")
    assert alice.texts[before:] == [
        "✅ An agent has taken your request and will reply here.",
        "Support · Wang\nSee https://help.upay.com/refunds",
    ]


LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(label=LABEL)
async def test_a_host_is_allowed_only_as_upay_com_or_below_it(roomy_desk, label):
    """Generated hosts: "<label>upay.com" is refused, "<label>.upay.com" is relayed."""
    desk = roomy_desk
    alice = UserSession(desk.bot, desk.alice_id, "Alice") if hasattr(desk, "alice_id") else None
    if alice is None:  # one ticket for every example (the fixture lives across them)
        alice = desk.bot.user("Alice")
        desk.alice_id = alice.user_id
        await _open(desk, alice)
    ticket = await desk.bot.app.repos.tickets.open_for_user(alice.user_id)
    await desk.say(ticket.thread_id, f"https://{label}upay.com/login")
    assert f"links to {label}upay.com are not allowed" in desk.texts(ticket.thread_id)[-1]
    assert f"https://{label}upay.com/login" not in alice.texts
    await desk.say(ticket.thread_id, f"https://{label}.upay.com/help")
    assert alice.last_message.text == f"Support · Wang\nhttps://{label}.upay.com/help"


async def test_notes_macros_and_transcript(desk):
    li = desk.bot.user("李雷", "zh-hans")
    ticket, thread = await _open(desk, li)
    before = len(li.texts)
    await desk.say(thread, "/note user sounds worried")
    assert len(li.texts) == before
    await desk.say(thread, "/macro wait")
    assert li.last_message.text.startswith("客服 · Wang\n")
    assert li.last_message.text.endswith(ZH.gettext(MACROS["wait"]))
    await desk.say(thread, "/transcript")
    doc = desk.messages(thread)[-1]
    assert doc["document"]["file_name"] == f"ticket-{ticket.code}.txt"


async def test_card_number_in_a_ticket_is_deleted_and_reaches_agents_masked(desk):
    alice = desk.bot.user("Alice")
    ticket, thread = await _open(desk, alice)
    sent = await alice.send("my card is 4111 1111 1111 1111")
    assert desk.emu.message(alice.user_id, sent.message_id).deleted
    relayed = desk.texts(thread)[-1]
    assert "4111 **** **** 1111" in relayed and "4111 1111 1111 1111" not in relayed
    lines = await desk.bot.app.repos.tickets.transcript(ticket.id)
    assert all("4111111111111111" not in (line.text or "").replace(" ", "") for line in lines)


async def test_deleted_topic_is_recreated_and_nothing_is_lost(desk):
    alice = desk.bot.user("Alice")
    ticket, thread = await _open(desk, alice)
    desk.emu.user_delete_topic(desk.group_id, thread)
    await alice.send("are you there?")
    new_thread = desk.topic_of(ticket.code)
    assert new_thread != thread
    texts = desk.texts(new_thread)
    assert texts[0].startswith(f"Ticket {ticket.code}")
    assert "are you there?" in texts
    assert any("recreated" in t for t in texts)


async def test_user_who_blocked_the_bot_is_reported_in_the_topic(desk):
    alice = desk.bot.user("Alice")
    _, thread = await _open(desk, alice)
    desk.emu.block_bot(alice.user_id)
    await desk.say(thread, "Hello?")
    assert desk.texts(thread)[-1] == "⚠️ The user has blocked the bot: messages cannot be delivered."


async def test_other_flows_escalate_with_context_and_priority(desk):
    alice = desk.bot.user("Alice")
    await alice.send("/escalate")
    ticket = await desk.bot.app.repos.tickets.open_for_user(alice.user_id)
    assert ticket.priority == 1 and ticket.context == {"flow": "refund", "tx": "TX<123>"}
    header = desk.texts(desk.topic_of(ticket.code))[0]
    # Said in words: the flow by its menu name, the transaction by its id; no internal keys.
    assert "HIGH priority" in header and "Came from: ↩️ Refunds" in header
    assert "Transaction: TX<123>" in header and "flow:" not in header


async def test_high_priority_jumps_the_queue(desk):
    users = [desk.bot.user(f"U{i}") for i in range(3)]
    await users[0].send("/human")
    await users[1].send("/human")
    await users[2].send("/escalate")
    repos = desk.bot.app.repos
    positions = [
        await repos.tickets.queue_position(await repos.tickets.open_for_user(u.user_id))
        for u in users
    ]
    assert positions == [2, 3, 1]
    assert "You are number 2 in the queue" in users[1].texts[-1]


async def test_topic_name_is_escaped_and_cut_to_128(desk):
    long_name = "<b>" + "名" * 200
    user = desk.bot.user(long_name, "zh-hans")
    ticket, thread = await _open(desk, user)
    name = desk.topics()[thread]["name"]
    assert (
        len(name) <= 128 and name.startswith(f"{ticket.code} · <b>名") and name.endswith("· 中文")
    )
    header = desk.texts(thread)[0]
    assert "<b>名" in header  # shown literally: escaped in the HTML header


async def test_misconfigured_group_keeps_tickets_and_tells_admins(make_bot):
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    agent = emu.add_user("Agent")
    admin = emu.add_user("Admin", started=True)
    group = emu.add_forum_group("Agents", members=[agent.id], bot_is_admin=False)
    bot = await make_bot(emu=emu, agent_chats=((group.id, None),), admin_ids=frozenset({admin.id}))
    await bot.settle()
    alerts = [m["text"] for m in emu.bot_messages(admin.id)]
    assert any("the bot is not an administrator" in t for t in alerts)
    alice = bot.user("Alice")
    await alice.send("/human")
    assert "Our agents cannot be reached right now. Your ticket is saved" in alice.last_message.text
    ticket = await bot.app.repos.tickets.open_for_user(alice.user_id)
    await alice.send("hello?")
    assert emu.topics(group.id) == {}
    # An admin fixes the rights; the next check creates the topic and relays what waited.
    emu.set_bot_status(group, "administrator", by=emu.users[agent.id], rights=RIGHTS)
    await bot.app.desk.check_groups()
    await bot.settle()
    thread = next(iter(emu.topics(group.id)))
    texts = [m.get("text") for m in emu.bot_messages(group.id, thread)]
    assert any(t and t.startswith(f"Ticket {ticket.code}") for t in texts)
    assert "hello?" in texts


async def test_relays_survive_restart_and_telegram_errors(desk, make_bot):
    alice = desk.bot.user("Alice")
    _ticket, thread = await _open(desk, alice)
    emu = desk.emu
    bot = desk.bot
    await bot.app.outbox.stop()  # relays queue up but are not sent...
    for i in range(3):
        emu.user_send(alice.user_id, f"msg {i}")
    await bot.settle(outbox=False)  # ...the updates are handled and the relays stored
    stored = await bot.app.repos.outbox.counts(kind="relay_in")
    assert stored.get("pending", 0) >= 1
    await bot.stop()  # then the bot stops with them in the outbox
    emu.faults = Faults(
        rate_429=0.3,
        rate_5xx=0.2,
        rng=random.Random(3),
        methods=frozenset({"sendMessage", "copyMessage"}),
    )
    bot2 = await make_bot(
        emu=emu, agent_chats=((desk.group_id, None),), admin_ids=frozenset({desk.admin_id})
    )
    bot2.app.outbox.retry_scale = 0.01
    desk.bot = bot2
    alice.harness = bot2
    await bot2.settle(timeout=30)
    emu.faults = Faults()
    texts = desk.texts(thread)
    relayed = [t for t in texts if t.startswith("msg")]
    # Coalesced or not, every message arrived once and in order.
    joined = "\n".join(relayed).split("\n")
    assert joined == ["msg 0", "msg 1", "msg 2"]


async def test_group_cap_coalesces_consecutive_user_texts(desk):
    alice = desk.bot.user("Alice")
    _ticket, thread = await _open(desk, alice)
    app = desk.bot.app
    limiter = app.bot.rate_limiter
    limiter.pause(desk.group_id, 0.5)  # the group's budget is spent for a moment
    for i in range(5):
        desk.emu.user_send(alice.user_id, f"line {i}")
    await desk.bot.settle()
    relayed = [t for t in desk.texts(thread) if t.startswith("line")]
    assert "\n".join(relayed).split("\n") == [f"line {i}" for i in range(5)]
    assert len(relayed) < 5  # coalesced while waiting for the budget
    lag = await app.repos.tickets.relay_lag(0)
    assert len(lag) == 5 and all(x >= 0 for x in lag)


async def test_unclaimed_ticket_reminder(desk):
    alice = desk.bot.user("Alice")
    _ticket, thread = await _open(desk, alice)
    desk.bot.app.desk._config = desk.bot.app.config.replace(unclaimed_reminder=0.01)
    opened = (await desk.bot.app.repos.tickets.open_for_user(alice.user_id)).created_at
    await asyncio.sleep(max(0.0, opened + 0.011 - time.time()))  # older than the delay
    assert await desk.bot.app.desk.remind_unclaimed() == 1
    await desk.bot.settle()
    assert desk.texts(thread)[-1].startswith("⏰ Nobody has claimed this ticket")
    assert await desk.bot.app.desk.remind_unclaimed() == 0  # once


async def test_out_of_hours_reply_still_creates_the_ticket(desk):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    opens = (now.hour + 1) % 24
    app = desk.bot.app
    app.config = app.config.replace(business_hours=(opens * 60, ((opens + 1) % 24) * 60))
    alice = desk.bot.user("Alice")
    ticket, thread = await _open(desk, alice)
    assert f"Our agents work from {opens:02d}:00 to" in alice.last_message.text
    assert ticket.is_open and thread


async def test_admins_manage_the_roster_and_others_get_nothing(desk):
    stranger = desk.bot.user("Eve")
    await stranger.send("/agent_add 777 Eve")
    assert "did not understand" in stranger.last_message.text
    assert await desk.bot.app.repos.agents.get(777) is None
    from tests.harness import UserSession

    boss = UserSession(desk.bot, desk.admin_id, "Admin Zhao")
    await boss.send("/agent_add 777 New Agent")
    assert boss.last_message.text == "New Agent (ID 777) is now a support agent."
    await boss.send("/agents")
    assert "• New Agent (777)" in boss.last_message.text
    await boss.send("/agent_remove 777")
    assert boss.last_message.text == "777 is no longer a support agent."
    actions = [e.action for e in await desk.bot.app.repos.audit.recent(5)]
    assert actions[:2] == ["agent.remove", "agent.add"]


async def test_queue_position_and_wait_are_refreshed_when_they_change(desk):
    from services.queue import refresh_queue
    from tgbot.context import BotContext

    first, second = desk.bot.user("First"), desk.bot.user("Second")
    _, thread1 = await _open(desk, first)
    await _open(desk, second)
    queue_message = second.last_message
    assert "You are number 2 in the queue" in queue_message.text
    await desk.press(thread1, "🙋 Claim")
    await refresh_queue(BotContext(desk.bot.app))
    await desk.bot.settle()
    edited = desk.emu.message(second.user_id, queue_message.message_id).data["text"]
    assert "You are number 1 in the queue" in edited
    assert second.buttons == ["✖️ End conversation"]
    # Nothing moved: no further edit.
    before = desk.emu.message(second.user_id, queue_message.message_id).edit_count
    await refresh_queue(BotContext(desk.bot.app))
    await desk.bot.settle()
    assert desk.emu.message(second.user_id, queue_message.message_id).edit_count == before


async def test_agents_group_moved_to_a_new_id_is_followed(desk):
    app = desk.bot.app
    alice = desk.bot.user("Alice")
    ticket, _ = await _open(desk, alice)
    await app.repos.tickets.record_group_move(desk.group_id, -100999)
    app.desk._moves = await app.repos.tickets.group_moves()
    assert app.desk.current_id(desk.group_id) == -100999
    assert app.desk.is_agent_group(-100999)
    assert (await app.repos.tickets.get(ticket.id)).group_chat_id == -100999


async def test_album_of_ten_arriving_200ms_apart_is_one_album(desk):
    alice = desk.bot.user("Alice")
    _, thread = await _open(desk, alice)
    emu = desk.emu
    first = emu.user_send_media_group(alice.user_id, [("photo", b"x", "p0")])
    album = first[0]["media_group_id"]
    for i in range(1, 10):
        await asyncio.sleep(0.2)
        # The same album keeps arriving, one item at a time, as Telegram delivers it.
        more = emu.user_send_media_group(alice.user_id, [("photo", b"x", f"p{i}")])
        emu.chats[alice.user_id].messages[more[0]["message_id"]].data["media_group_id"] = album
        emu._updates[-1]["message"]["media_group_id"] = album
    # Relayed once complete: whatever comes first must be the whole album.
    await desk.bot.wait_until(lambda: len(desk.messages(thread)) > 1, "the album relayed")
    relayed = desk.messages(thread)[1:]
    assert [m.get("caption") for m in relayed] == [f"p{i}" for i in range(10)]
    assert len({m.get("media_group_id") for m in relayed}) == 1
    assert [m for m, _ in emu.calls if m == "copyMessages"] == ["copyMessages"]


async def test_removed_agent_is_taken_out_of_the_agents_group(desk):
    from tests.harness import UserSession

    # "Where the bot can": here it may ban members (kick = ban + unban).
    desk.emu.chats[desk.group_id].bot_rights["can_restrict_members"] = True
    admin = UserSession(desk.bot, desk.admin_id, "Admin Zhao")
    await admin.send(f"/agent_remove {desk.other_id}")
    assert admin.last_message.text == f"{desk.other_id} is no longer a support agent."
    members = desk.emu.chats[desk.group_id].members
    assert members.get(desk.other_id) == "left"  # banned and unbanned: out, may come back


async def test_tickets_are_routed_to_the_group_of_the_users_language(make_bot):
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    agent = emu.add_user("Agent")
    zh_group = emu.add_forum_group(
        "中文组", members=[agent.id], bot_is_admin=True, bot_rights=RIGHTS
    )
    en_group = emu.add_forum_group(
        "EN team", members=[agent.id], bot_is_admin=True, bot_rights=RIGHTS
    )
    bot = await make_bot(emu=emu, agent_chats=((zh_group.id, "zh_Hans"), (en_group.id, "en")))
    li, alice = bot.user("李雷", "zh-hans"), bot.user("Alice", "en")
    await li.send("/human")
    await alice.send("/human")
    li_ticket = await bot.app.repos.tickets.open_for_user(li.user_id)
    alice_ticket = await bot.app.repos.tickets.open_for_user(alice.user_id)
    assert li_ticket.group_chat_id == zh_group.id and alice_ticket.group_chat_id == en_group.id
    assert [t["name"][:6] for t in emu.topics(zh_group.id).values()] == [li_ticket.code]
    assert [t["name"][:6] for t in emu.topics(en_group.id).values()] == [alice_ticket.code]


async def test_a_reply_goes_to_the_user_of_its_own_groups_topic(make_bot):
    """Two teams' groups number their topics alike: a reply in the English team's topic N
    reaches that topic's user, never the user of the Chinese team's topic N."""
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    agent = emu.add_user("Agent")
    zh_group = emu.add_forum_group(
        "中文组", members=[agent.id], bot_is_admin=True, bot_rights=RIGHTS
    )
    en_group = emu.add_forum_group(
        "EN team", members=[agent.id], bot_is_admin=True, bot_rights=RIGHTS
    )
    bot = await make_bot(emu=emu, agent_chats=((zh_group.id, "zh_Hans"), (en_group.id, "en")))
    await bot.app.repos.agents.add(agent.id, "Agent", agent.id)
    li, alice = bot.user("李雷", "zh-hans"), bot.user("Alice", "en")
    await li.send("/human")
    await alice.send("/human")
    li_ticket = await bot.app.repos.tickets.open_for_user(li.user_id)
    alice_ticket = await bot.app.repos.tickets.open_for_user(alice.user_id)
    assert li_ticket.thread_id == alice_ticket.thread_id  # the same topic id in both groups
    li_before, alice_before = len(li.texts), len(alice.texts)

    emu.user_send(agent.id, "Hello Alice", chat_id=en_group.id, thread_id=alice_ticket.thread_id)
    await bot.settle()
    emu.user_send(agent.id, "你好李雷", chat_id=zh_group.id, thread_id=li_ticket.thread_id)
    await bot.settle()
    assert alice.texts[alice_before:] == [
        "✅ An agent has taken your request and will reply here.",
        "Support · Agent\nHello Alice",
    ]
    assert li.texts[li_before:] == [
        "✅ 客服已接手您的问题，将在这里回复您。",
        "客服 · Agent\n你好李雷",
    ]
    for ticket, line in ((alice_ticket, "Hello Alice"), (li_ticket, "你好李雷")):
        lines = await bot.app.repos.tickets.transcript(ticket.id)
        assert [m.text for m in lines if m.direction == "out"] == [line]


async def test_a_chinese_teams_group_reads_its_topics_in_chinese(make_bot):
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    agent = emu.add_user("小王")
    group = emu.add_forum_group("中文组", members=[agent.id], bot_is_admin=True, bot_rights=RIGHTS)
    bot = await make_bot(emu=emu, agent_chats=((group.id, "zh_Hans"),))
    li = bot.user("李雷", "zh-hans")
    await li.send("/human")
    ticket = await bot.app.repos.tickets.open_for_user(li.user_id)
    thread = next(iter(emu.topics(group.id)))
    header = next(m for m in emu.bot_messages(group.id, thread) if "text" in m)
    assert header["text"].startswith(f"工单{ticket.code}")
    labels = [b["text"] for r in header["reply_markup"]["inline_keyboard"] for b in r]
    assert labels == ["🙋 认领", "✅ 关闭", "↪️ 转交"]


async def test_a_ticket_closed_while_its_topic_is_created_gets_a_closed_topic(desk):
    """/end before Telegram created the topic: close() had no topic to tell, so the created
    topic gets what the user asked, the closing line, no buttons, and is closed."""
    emu = desk.emu
    alice = desk.bot.user("Alice")
    await alice.send("/start")
    emu.faults = Faults(latency=1.5, methods=frozenset({"createForumTopic"}))
    emu.user_send(alice.user_id, "/human")
    await desk.bot.wait_until(
        lambda: "createForumTopic" in [m for m, _ in emu.calls],
        "the topic being created",
        settled=False,
    )
    emu.user_send(alice.user_id, "/end")
    await desk.bot.settle(timeout=20)
    await alice.click("✖️ Yes, end it")  # nobody had answered: ending is confirmed first
    await desk.bot.settle(timeout=20)
    emu.faults = Faults()
    ticket = await desk.bot.app.repos.tickets.last_closed_for_user(alice.user_id)
    assert ticket is not None and ticket.status == "closed" and ticket.thread_id is not None
    topic = desk.topics()[ticket.thread_id]
    assert topic["closed"], topic
    messages = desk.messages(ticket.thread_id)
    assert not any(m.get("reply_markup") for m in messages)  # no Claim/Close on a closed one
    assert (
        desk.texts(ticket.thread_id)[-1] == "✅ Ticket closed by the user before any agent replied."
    )
    assert "nothing to rate" in alice.texts[-1]  # no rating of help that never came


async def _cross_the_close(desk, alice, text):
    """The user's handler reads the ticket open, then an agent's close commits before the
    line is stored."""
    repos, app = desk.bot.app.repos, desk.bot.app
    real = repos.tickets.open_for_user

    async def read_then_the_agent_closes(user_id):
        repos.tickets.open_for_user = real  # only this one read
        found = await real(user_id)
        await app.desk.close(found, desk.agent_id, by_user=False, who="Wang")
        return found

    repos.tickets.open_for_user = read_then_the_agent_closes
    await alice.send(text)


async def test_a_message_crossing_the_agents_close_is_a_new_message(desk):
    """A line crossing the close does not go into the closed topic, and does not reopen the
    ticket by itself: it is answered like any message (the closing message offers reopen)."""
    alice = desk.bot.user("Alice")
    await alice.send("/start")
    ticket, thread = await _open(desk, alice)
    await desk.say(thread, "Anything else?")
    await _cross_the_close(desk, alice, "how do I change my phone number")
    assert (await desk.bot.app.repos.tickets.get(ticket.id)).status == "closed"
    assert "how do I change my phone number" not in desk.texts(thread)
    assert any("🔄 Not solved, reopen" in m.buttons for m in alice.messages)


async def test_a_not_solved_crossing_the_agents_close_reopens_the_ticket(roomy_desk):
    # More than 20 messages go to the group here (topic, header edits, close, reopen): the
    # group limit would hold the last ones for a minute; that limit is tested elsewhere.
    desk = roomy_desk
    alice = desk.bot.user("Alice")
    await alice.send("/start")
    ticket, thread = await _open(desk, alice)
    await desk.say(thread, "Done, bye")
    await _cross_the_close(desk, alice, "没解决")
    reopened = await desk.bot.app.repos.tickets.get(ticket.id)
    assert reopened.status != "closed"
    texts = desk.texts(thread)
    assert texts.index("🔄 The user says it is not solved: ticket reopened.") < texts.index(
        "没解决"
    )
    lines = await desk.bot.app.repos.tickets.transcript(ticket.id)
    assert [m.text for m in lines if m.direction == "in"][-1] == "没解决"


async def test_no_unclaimed_reminder_for_a_ticket_claimed_since_the_list_was_read(desk):
    alice = desk.bot.user("Alice")
    await alice.send("/start")
    ticket, thread = await _open(desk, alice)
    repos, app = desk.bot.app.repos, desk.bot.app
    real = repos.tickets.unclaimed_before

    async def listed_then_claimed(before):
        found = await real(time.time() + 1)  # the job's read: the ticket waits unclaimed
        assert [t.id for t in found] == [ticket.id]
        assert await repos.tickets.claim(ticket.id, desk.agent_id)  # an agent claims it now
        return found

    repos.tickets.unclaimed_before = listed_then_claimed
    assert await app.desk.remind_unclaimed() == 0
    await desk.bot.settle()
    assert not any(t.startswith("⏰") for t in desk.texts(thread))


async def test_no_queue_position_for_a_ticket_claimed_since_the_job_read_the_queue(desk):
    from services.queue import refresh_queue
    from tgbot.context import BotContext

    alice = desk.bot.user("Alice")
    await alice.send("/start")
    ticket, _ = await _open(desk, alice)
    repos, app = desk.bot.app.repos, desk.bot.app
    ticket = await repos.tickets.get(ticket.id)
    await repos.tickets.set_queue_message(ticket.id, ticket.queue_message_id, 999)  # moved
    real = repos.tickets.open_tickets

    async def read_then_claimed():
        found = await real()
        assert await repos.tickets.claim(ticket.id, desk.agent_id)
        return found

    repos.tickets.open_tickets = read_then_claimed
    await refresh_queue(BotContext(app))
    assert (await repos.outbox.counts(kind="queue_update"))["pending"] == 0
    assert await repos.outbox.counts(kind="queue_update") == dict.fromkeys(
        ("pending", "sending", "sent", "failed", "cancelled"), 0
    )


async def test_two_flushes_at_once_relay_a_line_once(desk):
    """The album timer, start-up and the next message can flush a ticket at the same time;
    each line is checked and queued in one transaction, so it is relayed once."""
    alice = desk.bot.user("Alice")
    await alice.send("/start")
    ticket, _ = await _open(desk, alice)
    app = desk.bot.app
    ticket = await app.repos.tickets.get(ticket.id)
    await app.repos.tickets.add_message(ticket.id, "in", "text", text="waiting text")
    outbox = app.outbox
    enqueue = outbox.enqueue

    async def slow_enqueue(*args, **kwargs):
        # A busy database: the other flush runs meanwhile, as far as it can. A bounded wait,
        # not an event: with the transaction under test the other flush is blocked here, so
        # nothing it does could be waited for.
        await asyncio.sleep(0.1)
        return await enqueue(*args, **kwargs)

    outbox.enqueue = slow_enqueue
    try:
        await asyncio.gather(app.desk.flush(ticket, "in"), app.desk.flush(ticket, "in"))
    finally:
        outbox.enqueue = enqueue
    rows = await app.db.fetchall(
        "SELECT params FROM outbox WHERE kind = 'relay_in' AND params LIKE '%waiting%'"
    )
    assert sum(row["params"].count("waiting text") for row in rows) == 1
    lines = [m for m in await app.repos.tickets.transcript(ticket.id) if m.text]
    assert all(m.outbox_id for m in lines if m.text.startswith("waiting"))
