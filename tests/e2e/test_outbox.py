"""The durable outbox: nothing lost through 429s, 5xx, timeouts, blocks and restarts."""

import collections

from tgbot.lanes import Lane
from tgbot.sandbox.models import Caps, Faults


def _texts(emu, chat_id):
    return [m.get("text", "") for m in emu.bot_messages(chat_id)]


async def _enqueue(bot, user, texts, lane=Lane.NOTIFY, **kw):
    for text in texts:
        await bot.app.outbox.enqueue(user.user_id, "sendMessage", {"text": text}, lane=lane, **kw)


async def test_retry_after_pauses_only_the_flooded_chat_and_keeps_its_order(make_bot):
    bot = await make_bot()
    bot.app.outbox.retry_scale = 0.05
    bot.emu.caps = Caps(per_private_chat_per_second=1, private_chat_burst=2, enabled=True)
    alice, bob = bot.user("Alice"), bot.user("Bob")
    await alice.send("/start")
    await bob.send("/start")
    before = len(alice.texts)
    await _enqueue(bot, alice, [f"note {i}" for i in range(6)])
    await _enqueue(bot, bob, ["for bob"])
    await bot.settle()
    assert _texts(bot.emu, bob.user_id)[-1] == "for bob"
    assert alice.texts[before:] == [f"note {i}" for i in range(6)]
    rows = await bot.app.db.fetchall("SELECT status, attempts, last_error FROM outbox")
    assert {r["status"] for r in rows} == {"sent"}
    assert any((r["last_error"] or "").startswith("RetryAfter") for r in rows)


async def test_server_errors_and_timeouts_lose_nothing(make_bot):
    bot = await make_bot()
    bot.app.outbox.retry_scale = 0.001
    alice = bot.user("Alice")
    await alice.send("/start")
    before = len(alice.texts)
    bot.emu.faults = Faults(
        rate_5xx=0.3,
        rate_timeout=0.3,
        timeout_after_delivery=0.5,
        methods=frozenset({"sendMessage"}),
    )
    await _enqueue(bot, alice, [f"n{i}" for i in range(30)])
    await bot.settle(timeout=30)
    bot.emu.faults = Faults()
    delivered = collections.Counter(alice.texts[before:])
    # Every message arrived; a timed-out send that was delivered anyway may repeat once.
    assert set(delivered) == {f"n{i}" for i in range(30)}
    assert max(delivered.values()) <= 2
    counts = await bot.app.repos.outbox.counts()
    assert counts.get("sent") == 30 and not counts.get("pending")


async def test_blocked_user_fails_without_retries_and_others_continue(any_bot):
    bot = any_bot
    alice, bob = bot.user("Alice"), bot.user("Bob")
    await alice.send("/start")
    await bob.send("/start")
    bot.emu.block_bot(alice.user_id)
    failures = []

    async def on_failed(item, error):
        failures.append((item.chat_id, type(error).__name__))

    bot.app.outbox.on_failed("notice", on_failed)
    await _enqueue(bot, alice, ["hello"], kind="notice")
    await _enqueue(bot, bob, ["hello"], kind="notice")
    await bot.settle()
    assert failures == [(alice.user_id, "Forbidden")]
    assert _texts(bot.emu, bob.user_id)[-1] == "hello"
    row = await bot.app.db.fetchone(
        "SELECT status, attempts, last_error FROM outbox WHERE chat_id = ?", (alice.user_id,)
    )
    assert row["status"] == "failed" and "blocked" in row["last_error"]


async def test_messages_in_flight_at_a_crash_are_sent_after_restart(make_bot):
    bot = await make_bot()
    alice = bot.user("Alice")
    await alice.send("/start")
    emu = bot.emu
    await bot.app.outbox.stop()  # as if the worker died mid-send
    ids = [
        await bot.app.repos.outbox.enqueue(
            Lane.RELAY, alice.user_id, "sendMessage", {"chat_id": alice.user_id, "text": t}
        )
        for t in ("one", "two")
    ]
    await bot.app.repos.outbox.mark_sending(ids)
    await bot.stop()
    bot2 = await make_bot(emu=emu)
    alice.harness = bot2
    await bot2.settle()
    assert alice.texts[-2:] == ["one", "two"]


async def test_urgent_lanes_go_before_a_queued_broadcast(make_bot):
    bot = await make_bot()
    emu = bot.emu
    users = [bot.user(f"U{i}") for i in range(60)]
    for user in users:
        await user.send("/start")
    await bot.app.outbox.stop()
    for user in users:
        await bot.app.outbox.enqueue(
            user.user_id, "sendMessage", {"text": "notice"}, lane=Lane.BROADCAST
        )
    await bot.app.outbox.enqueue(
        users[-1].user_id, "sendMessage", {"text": "agent reply"}, lane=Lane.RELAY
    )
    start = len(emu.calls)
    await bot.app.outbox.start()
    await bot.settle()
    sends = [p.get("text") for m, p in emu.calls[start:] if m == "sendMessage"]
    assert sends.index("agent reply") < 10
    assert sends.count("notice") == 60


async def test_dedupe_key_makes_enqueue_idempotent(make_bot):
    bot = await make_bot()
    alice = bot.user("Alice")
    await alice.send("/start")
    before = len(alice.texts)
    for _ in range(3):
        await bot.app.outbox.enqueue(
            alice.user_id,
            "sendMessage",
            {"text": "refund approved"},
            dedupe_key="refund:1:approved",
        )
    await bot.settle()
    assert alice.texts[before:] == ["refund approved"]


async def test_a_call_that_cannot_be_sent_fails_alone_and_never_blocks_the_rest(bot, caplog):
    """A call PTB refuses (a programming error) is marked failed with the reason; it neither
    stays "sending" for ever nor stops the other chats' messages of the same batch."""
    alice, bob = bot.user("Alice"), bot.user("Bob")
    await alice.send("/start")
    await bob.send("/start")
    bad = await bot.app.outbox.enqueue(
        alice.user_id, "sendMessage", {"text": "x", "no_such_parameter": 1}, lane=Lane.NOTIFY
    )
    await _enqueue(bot, bob, ["for bob"])
    await _enqueue(bot, alice, ["after the bad one"])
    await bot.settle()
    assert bob.texts[-1] == "for bob"
    assert alice.texts[-1] == "after the bad one"  # the chat goes on after the failed call
    item = await bot.app.repos.outbox.get(bad)
    assert item.status == "failed" and "no_such_parameter" in item.last_error
    counts = await bot.app.repos.outbox.counts()
    assert counts["sending"] == 0 and counts["pending"] == 0
    assert "cannot be sent" in caplog.text
