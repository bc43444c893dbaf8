"""Admins' broadcasts, stats and audit, through the emulator with fast caps."""

from __future__ import annotations

import asyncio
import collections
import random

from handlers.core import NOT_UNDERSTOOD
from tests.harness import TOKEN, UserSession
from tgbot.i18n import translator
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps, Faults

ZH_TEXT = "【安全提醒】客服不会向您索要验证码。"
EN_TEXT = "Security notice: support never asks for your codes."
ZH = translator("zh_Hans")
EN = translator("en")


async def make_world(make_bot, users=50, admins=1, **config):
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    admin_users = [
        emu.add_user(f"Admin{i}", language_code="en", started=True) for i in range(admins)
    ]
    config.setdefault("broadcast_rate", 5000.0)
    bot = await make_bot(emu=emu, admin_ids=frozenset(a.id for a in admin_users), **config)
    people = []
    for i in range(users):
        lang = "zh-hans" if i % 2 else "en"
        user = emu.add_user(f"U{i}", language_code=lang, started=True)
        await bot.app.repos.users.touch(user.id, user.first_name, lang)
        people.append(user)
    admins_s = [UserSession(bot, a.id, a.first_name) for a in admin_users]
    return bot, emu, admins_s, people


async def compose(admin, audience="Everyone", link=None):
    await admin.send("/broadcast")
    await admin.click(audience)
    if audience in ("Everyone", "Chinese users"):
        await admin.send(ZH_TEXT)
    if audience in ("Everyone", "English users"):
        await admin.send(EN_TEXT)
    if link:
        await admin.send(link)
    else:
        await admin.click("No link")
    return admin.last_message


async def press_send(bot, admin):
    """Press "📣 Send" without waiting for the whole broadcast (as a person would)."""
    message = next(
        m
        for m in reversed(bot.emu.bot_messages(admin.user_id))
        if "bc:send" in str(m.get("reply_markup"))
    )
    bot.emu.press_button(admin.user_id, admin.user_id, message["message_id"], "bc:send")
    await bot.settle(outbox=False)  # the press is handled; the sending goes on


async def wait_sent(bot, at_least: int = 1, broadcast_id: int = 1) -> None:
    """Wait until the broadcast has reached ``at_least`` recipients (it is under way)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (await bot.app.repos.broadcasts.counts(broadcast_id)).get("sent", 0) < at_least:
        assert loop.time() < deadline, "the broadcast does not send"
        await asyncio.sleep(0.01)


async def feeder_rounds(bot, rounds: int = 2) -> None:
    """Wait until the broadcaster has looked for running broadcasts ``rounds`` more times:
    whatever it would still feed (a paused broadcast, say) it has queued by then."""
    broadcasts = bot.app.repos.broadcasts
    real = broadcasts.with_status
    looked = asyncio.Event()
    count = 0

    async def counting(*args, **kwargs):
        nonlocal count
        found = await real(*args, **kwargs)
        count += 1
        if count >= rounds:
            looked.set()
        return found

    broadcasts.with_status = counting
    try:
        for _ in range(rounds):
            bot.app.broadcaster.wake()
        await asyncio.wait_for(looked.wait(), 10)
    finally:
        broadcasts.with_status = real


async def wait_done(bot, broadcast_id=1, timeout=60.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await bot.app.repos.broadcasts.get(broadcast_id)).status not in ("done", "cancelled"):
        assert loop.time() < deadline, await bot.app.repos.broadcasts.counts(broadcast_id)
        await asyncio.sleep(0.05)
    await bot.settle(timeout=timeout)


def received(emu, user_id):
    return [m.get("text") for m in emu.bot_messages(user_id)]


def notices_shown(emu, people) -> int:
    """Return how many of ``people`` see the notice in their chat."""
    return sum(bool({ZH_TEXT, EN_TEXT} & set(received(emu, u.id))) for u in people)


async def test_broadcast_to_thousands_with_429s_and_blocked_users(make_bot):
    bot, emu, (admin,), people = await make_world(make_bot, users=2000)
    bot.app.outbox.retry_scale = 0.01
    blocked = people[:20]
    for user in blocked:
        emu.block_bot(user.id)
    confirm = await compose(admin)
    # The admin is a user too (they wrote to the bot).
    assert "Recipients: 2001 (English 1001, 中文 1000)" in confirm.text
    assert [t for t in admin.texts if t in (ZH_TEXT, EN_TEXT)] == [ZH_TEXT, EN_TEXT]  # previews
    emu.faults = Faults(
        rate_429=0.05, retry_after=1, rng=random.Random(5), methods=frozenset({"sendMessage"})
    )
    await press_send(bot, admin)
    await wait_done(bot)
    emu.faults = Faults()
    counts = await bot.app.repos.broadcasts.counts(1)
    assert counts == {"sent": 1981, "blocked": 20}
    for user in people[20:]:
        expected = ZH_TEXT if user.language_code == "zh-hans" else EN_TEXT
        assert received(emu, user.id).count(expected) == 1
    assert (await bot.app.repos.users.get(blocked[0].id)).blocked
    progress = next(
        m
        for m in emu.bot_messages(admin.user_id)
        if m.get("text", "").startswith("📣 Broadcast #1")
    )
    assert "finished" in progress["text"] and "Sent 1981, failed 0, blocked 20" in progress["text"]


async def test_broadcast_resumes_after_a_stop_mid_way_without_skipping(make_bot):
    bot, emu, (admin,), people = await make_world(make_bot, users=600, broadcast_rate=150.0)
    await compose(admin, "English users")
    await press_send(bot, admin)
    await wait_sent(bot)
    counts = await bot.app.repos.broadcasts.counts(1)
    assert 0 < counts.get("sent", 0) < 300
    await bot.stop()  # the process goes away mid-broadcast
    bot2 = await make_bot(emu=emu, admin_ids=frozenset({admin.user_id}), broadcast_rate=5000.0)
    await wait_done(bot2)
    english = [u for u in people if u.language_code == "en"]
    got = collections.Counter(received(emu, u.id).count(EN_TEXT) for u in english)
    assert got[0] == 0  # nobody skipped
    assert sum(n - 1 for n in got.elements() if n > 1) <= 8  # duplicates at most in flight
    assert (await bot2.app.repos.broadcasts.counts(1)) == {"sent": 301}


async def test_pause_resume_cancel_and_recall(make_bot):
    bot, emu, (admin,), people = await make_world(make_bot, users=400, broadcast_rate=150.0)
    limiter = bot.app.bot.rate_limiter
    limiter._broadcast.rate = 100.0
    await compose(admin)
    await press_send(bot, admin)
    await wait_sent(bot)
    await admin.click("⏸ Pause")
    paused = await bot.app.repos.broadcasts.counts(1)
    shown = notices_shown(emu, people)
    await feeder_rounds(bot)
    await bot.settle()
    after = await bot.app.repos.broadcasts.counts(1)
    assert after.get("sent", 0) <= paused.get("sent", 0) + 8  # only what was in flight
    assert notices_shown(emu, people) <= shown + 8  # what the users see, too
    assert (await bot.app.repos.broadcasts.get(1)).status == "paused"
    limiter._broadcast.rate = 5000.0
    await admin.click("▶️ Resume")
    await wait_done(bot)
    assert (await bot.app.repos.broadcasts.counts(1)) == {"sent": 401}
    await admin.click("🗑 Recall")
    # Deleting a notice from every chat is confirmed first; nothing is deleted before.
    assert admin.last_message.text.startswith("Delete broadcast #1 from every user's chat?")
    assert any(EN_TEXT in received(emu, u.id) for u in people)
    await admin.click("🗑 Yes, recall it")
    await bot.settle()
    assert not [u.id for u in people if {ZH_TEXT, EN_TEXT} & set(received(emu, u.id))]
    # A second broadcast cancelled early reaches nobody more.
    limiter._broadcast.rate = 20.0
    await compose(admin, "Chinese users")
    await press_send(bot, admin)
    await admin.click("⏹ Cancel")
    await bot.settle()
    counts = await bot.app.repos.broadcasts.counts(2)
    assert counts.get("cancelled", 0) > 0 and counts.get("pending", 0) == 0
    actions = [e.action for e in await bot.app.repos.audit.recent(20)]
    assert {"broadcast.pause", "broadcast.resume", "broadcast.recall", "broadcast.cancel"} <= set(
        actions
    )


async def test_two_admins_one_creates_the_other_approves(make_bot):
    bot, emu, (alice, bob), people = await make_world(make_bot, users=10, admins=2)
    await compose(alice)
    await alice.click("📣 Send")
    assert alice.texts[-2] == "Broadcast #1 is waiting for another admin to approve it."
    assert not any(EN_TEXT in received(emu, u.id) for u in people)
    approve_msg = emu.bot_messages(bob.user_id)[-1]
    # The creator cannot approve their own broadcast, even with a forged press.
    query = emu.user_press(
        alice.user_id, alice.user_id, alice.messages[-1].message_id, "bc:approve:1"
    )
    await bot.settle()
    assert emu.callback_answers[query]["text"] == "Another admin must approve your own broadcast."
    await bob.click("✅ Approve", message_id=approve_msg["message_id"])
    await wait_done(bot)
    assert (await bot.app.repos.broadcasts.get(1)).approved_by == bob.user_id
    assert all(received(emu, u.id) for u in people)
    assert "broadcast.approve" in [e.action for e in await bot.app.repos.audit.recent(10)]


async def test_links_only_to_allowed_domains(make_bot):
    _bot, emu, (admin,), _ = await make_world(make_bot, users=2)
    await admin.send("/broadcast")
    await admin.click("English users")
    await admin.send(EN_TEXT)
    for bad in (
        "http://upay.com/x",
        "https://upay-verify.xyz/login",
        "https://upay.com.evil.io",
        "https://evilupay.com/login",
    ):
        await admin.send(bad)
        assert admin.last_message.text.startswith("Links may only go to upay.com")
    await admin.send("https://help.upay.com/safety")
    preview = [m for m in emu.bot_messages(admin.user_id) if m.get("text") == EN_TEXT][-1]
    assert preview["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://help.upay.com/safety"


async def test_authorization_matrix(make_bot):
    bot, _emu, (admin,), (user, agent_user, *_) = await make_world(make_bot, users=3)
    await bot.app.repos.agents.add(agent_user.id, "Agent", admin.user_id)
    commands = ["/broadcast", "/stats", "/audit", "/agents", "/agent_add 5 X", "/agent_remove 5"]
    not_understood = {"en": EN.gettext(NOT_UNDERSTOOD), "zh-hans": ZH.gettext(NOT_UNDERSTOOD)}
    for person in (user, agent_user):
        session = UserSession(bot, person.id, person.first_name)
        for command in commands:
            await session.send(command)
            assert session.last_message.text == not_understood[person.language_code], command
    await admin.send("/stats")
    assert admin.last_message.text.startswith("Users: 4")
    await admin.send("/audit")
    # Refused commands are not audited, and nothing else happened yet.
    assert admin.last_message.text == "The audit log is empty."


async def test_support_replies_flow_while_a_broadcast_runs(make_bot):
    bot, emu, (admin,), people = await make_world(make_bot, users=300, broadcast_rate=150.0)
    bot.app.bot.rate_limiter._broadcast.rate = 50.0  # ~6 s for everyone
    await compose(admin, "English users")
    await press_send(bot, admin)
    chatter = UserSession(bot, people[1].id, "U1")  # a Chinese user: not in this audience
    emu.user_send(chatter.user_id, "/help")
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not any(
        "安全提醒" in t or "我能帮您做什么" in (t or "") for t in received(emu, chatter.user_id)
    ):
        await asyncio.sleep(0.01)
        assert loop.time() - start < 5
    remaining = await bot.app.repos.broadcasts.counts(1)
    assert remaining.get("pending", 0) + remaining.get("queued", 0) > 0  # still broadcasting
    await bot.app.broadcaster.cancel(1)


async def test_users_read_recent_notices(make_bot):
    bot, _emu, (admin,), (_en_user, zh_user, *_) = await make_world(make_bot, users=4)
    await compose(admin)
    await admin.click("📣 Send")
    await wait_done(bot)
    zh = UserSession(bot, zh_user.id, "U1")
    await zh.send("/notices")
    assert zh.last_message.text == ZH_TEXT


async def test_a_cancel_while_the_feeder_picks_a_batch_sends_nothing_more(make_bot):
    """The feeder picks recipients and queues their sends in one transaction that re-reads
    the status, and a cancel is one transaction: a cancel arriving while a batch is being
    picked leaves no send queued and no recipient waiting."""
    bot, _emu, (admin,), people = await make_world(make_bot, users=30)
    app = bot.app
    await app.broadcaster.stop()  # feed by hand, at the moment the test chooses
    await app.outbox.stop()
    repos = app.repos
    broadcast_id = await repos.broadcasts.create(admin.user_id, "all", ZH_TEXT, EN_TEXT, None)
    total = await repos.broadcasts.add_recipients(broadcast_id, "all", "en")
    assert total == len(people)
    await repos.broadcasts.set_status(broadcast_id, "running")
    broadcast = await repos.broadcasts.get(broadcast_id)
    next_pending = repos.broadcasts.next_pending
    cancelling: list[asyncio.Task] = []

    async def picked_while_an_admin_cancels(*args, **kwargs):
        batch = await next_pending(*args, **kwargs)
        cancelling.append(asyncio.create_task(app.broadcaster.cancel(broadcast_id)))
        # The cancel runs as far as it can meanwhile. A bounded wait, not an event: with the
        # transaction under test the cancel is blocked, so nothing it does could be awaited.
        await asyncio.sleep(0.05)
        return batch

    repos.broadcasts.next_pending = picked_while_an_admin_cancels
    try:
        await app.broadcaster._feed(broadcast)
        assert await cancelling[0]
    finally:
        repos.broadcasts.next_pending = next_pending
    assert (await repos.broadcasts.get(broadcast_id)).status == "cancelled"
    assert await repos.broadcasts.counts(broadcast_id) == {"cancelled": total}
    outbox = await repos.outbox.counts(kind="broadcast")
    assert outbox["pending"] == 0 and outbox["sending"] == 0
    assert await app.broadcaster._feed(broadcast) is False  # cancelled: nothing more fed
    assert (await repos.outbox.counts(kind="broadcast"))["pending"] == 0


async def test_recall_while_sending_deletes_the_messages_in_flight_too(make_bot):
    """Recall pressed while the broadcast still runs: sends already claimed by the outbox
    finish after the recall read the delivered messages; each deletes itself once sent."""
    bot, emu, (admin,), people = await make_world(make_bot, users=400, broadcast_rate=150.0)
    bot.app.bot.rate_limiter._broadcast.rate = 40.0  # slow enough to recall mid-way
    await compose(admin)
    await press_send(bot, admin)
    await wait_sent(bot)
    # Pressed as a person would, while the broadcast goes on (click() waits for it all).
    for data in ("bc:recall:1", "bc:recallok:1"):
        found = []

        def shown(data=data, found=found):
            found[:] = [
                m
                for m in reversed(emu.bot_messages(admin.user_id))
                if data in str(m.get("reply_markup"))
            ]
            return bool(found)

        await bot.wait_until(shown, f"a {data} button", settled=False)
        emu.press_button(admin.user_id, admin.user_id, found[0]["message_id"], data)
    await bot.settle(timeout=60)
    counts = await bot.app.repos.broadcasts.counts(1)
    assert counts.get("sent", 0) > 0 and counts.get("cancelled", 0) > 0, counts
    still_shown = [u.id for u in people if {ZH_TEXT, EN_TEXT} & set(received(emu, u.id))]
    assert still_shown == [], f"{len(still_shown)} users still see the recalled notice"


async def test_a_pause_and_resume_while_the_feeder_reads_loses_nobody(make_bot):
    """The feeder re-reads the broadcast in its transaction: after a pause and resume
    (a new round) it queues the put-back recipients under the new round, not the old one,
    whose sends the pause cancelled."""
    bot, emu, (admin,), people = await make_world(make_bot, users=400, broadcast_rate=150.0)
    limiter = bot.app.bot.rate_limiter
    limiter._broadcast.rate = 20.0
    await compose(admin)
    await press_send(bot, admin)
    await wait_sent(bot)
    caster = bot.app.broadcaster
    stale = (await bot.app.repos.broadcasts.with_status("running"))[0]  # the feeder's read
    await caster.stop()  # the feeder is now between its read and its feed
    assert await caster.pause(stale.id)
    assert await caster.resume(stale.id)
    await caster._feed(stale)  # goes on with the row it read before the pause
    limiter._broadcast.rate = 5000.0
    await caster.start()
    await wait_done(bot)
    total = (await bot.app.repos.broadcasts.get(1)).total
    assert total == len(people) + 1  # the admin is a user too
    assert await bot.app.repos.broadcasts.counts(1) == {"sent": total}
    assert all({ZH_TEXT, EN_TEXT} & set(received(emu, u.id)) for u in people)
