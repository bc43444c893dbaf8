"""The send lanes against the emulator with Telegram's caps on: replies limited per chat only,
relays into a group within its window, bulk sends within the bulk budget (and behind replies
and relays), and the bulk budget shrinking on 429s across chats and growing back (AIMD).

The emulator answers 429 over any cap (its model of which sends are bulk: see ``Caps``), so
"no 429" below means the bot kept to Telegram's limits by itself.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict

from tests.support.waiting import wait_until
from tgbot.lanes import AimdSettings, Lane
from tgbot.sandbox.models import Caps, Faults


class Arrivals:
    """When each of the bot's messages (and edits) appeared, per chat."""

    def __init__(self, emu) -> None:
        self.times: dict[int, list[float]] = defaultdict(list)
        self.bot_id = emu.bot.id
        self.unsubscribe = emu.subscribe(self._on_event)

    def _on_event(self, event) -> None:
        message = event.get("message") or {}
        if event.get("type") in ("message", "edit") and message.get("from", {}).get("id") == (
            self.bot_id
        ):
            self.times[event["chat_id"]].append(time.monotonic())

    def all(self) -> list[float]:
        return sorted(t for times in self.times.values() for t in times)


def most_in_any_window(times: list[float], window: float) -> int:
    """Return the most events in any half-open window of ``window`` seconds."""
    times = sorted(times)
    best = 0
    for i, start in enumerate(times):
        best = max(best, sum(1 for t in times[i:] if t < start + window))
    return best


def limiter(bot):
    return bot.app.bot.rate_limiter


async def test_replies_are_limited_per_chat_not_by_the_bulk_budget(make_bot):
    # A bulk budget of 5/s, in the bot and in the emulator: 40 replies at 5/s would take 8 s.
    bot = await make_bot(rate_bulk_per_second=5.0, rate_chat_per_second=1.0)
    bot.emu.caps = Caps(overall_per_second=5)
    users = [bot.user(f"U{n}") for n in range(40)]
    arrivals = Arrivals(bot.emu)
    started = time.monotonic()
    for user in users:
        await user.send("/start", settle=False)
    await bot.settle()
    assert all(len(user.texts) == 1 for user in users)
    assert max(arrivals.all()) - started < 3.0
    assert limiter(bot).retry_afters == 0
    assert limiter(bot).granted[Lane.REPLY] == 40
    assert sum(bot.emu.bulk_per_second.values()) == 0  # answers to users who wrote


async def test_one_chat_gets_a_burst_then_its_rate_and_edits_count(make_bot):
    bot = await make_bot(rate_chat_per_second=4.0, rate_chat_burst=3.0)
    bot.emu.caps = Caps(per_private_chat_per_second=4, private_chat_burst=3)
    alice = bot.user("Alice")
    await alice.send("/start")  # one of the burst spent, on the menu
    arrivals = Arrivals(bot.emu)
    sender = bot.app.bot
    first = await sender.send_message(alice.user_id, "one")
    await asyncio.gather(
        sender.edit_message_text("one, edited", chat_id=alice.user_id, message_id=first.message_id),
        *(sender.send_message(alice.user_id, f"more {n}") for n in range(5)),
    )
    times = arrivals.all()
    assert len(times) == 7
    # At most 3 at once, then 4 a second: 7 sends and edits take about a second.
    assert times[-1] - times[0] >= 0.9
    assert limiter(bot).retry_afters == 0
    assert alice.texts[-5:] == [f"more {n}" for n in range(5)]


async def test_relays_into_a_group_keep_to_its_window(make_bot):
    bot = await make_bot(rate_group_per_minute=6.0, rate_group_window=3.0)
    bot.emu.caps = Caps(per_group_per_minute=6, group_window=3.0)
    group = bot.emu.add_group("Agents")
    arrivals = Arrivals(bot.emu)
    for n in range(14):
        await bot.app.outbox.enqueue(
            group.id, "sendMessage", {"text": f"line {n}"}, lane=Lane.RELAY
        )
    await bot.settle(timeout=30)
    times = arrivals.times[group.id]
    assert len(times) == 14
    assert most_in_any_window(times, 3.0) <= 6
    assert times[-1] - times[0] >= 6.0  # 14 messages at 6 per 3 s: at least two windows more
    assert limiter(bot).retry_afters == 0
    rows = await bot.app.db.fetchall("SELECT status FROM outbox WHERE chat_id = ?", (group.id,))
    assert {row[0] for row in rows} == {"sent"}


async def test_bulk_sends_keep_to_the_bulk_budget_behind_replies_and_relays(make_bot):
    bot = await make_bot(rate_bulk_per_second=10.0)
    bot.emu.caps = Caps(overall_per_second=10)
    audience = [bot.emu.add_user(f"R{n}", started=True) for n in range(40)]
    alice, agent_user = bot.user("Alice"), bot.user("Bob")
    await alice.send("/start")
    await agent_user.send("/start")
    arrivals = Arrivals(bot.emu)
    started = time.monotonic()
    for user in audience:
        await bot.app.outbox.enqueue(
            user.id, "sendMessage", {"text": "notice"}, lane=Lane.BROADCAST
        )
    await asyncio.sleep(0.5)  # the broadcast is under way, most of it still waiting
    asked = time.monotonic()
    await alice.send("/help", settle=False)
    await bot.app.outbox.enqueue(
        agent_user.user_id, "sendMessage", {"text": "an agent's reply"}, lane=Lane.RELAY
    )
    await wait_until(lambda: len(alice.texts) == 2, 5, "the reply")
    await wait_until(lambda: "an agent's reply" in agent_user.texts, 5, "the relay")
    reply_at = arrivals.times[alice.user_id][-1]
    relay_at = arrivals.times[agent_user.user_id][-1]
    assert reply_at - asked < 1.0 and relay_at - asked < 1.0
    await bot.settle(timeout=30)
    notices = [t for user in audience for t in arrivals.times[user.id]]
    assert len(notices) == 40
    assert most_in_any_window(notices, 1.0) <= 10
    assert max(notices) - started >= 3.5  # 40 at 10 a second
    # Still sending notices when the reply and the relay went out.
    assert max(notices) > max(reply_at, relay_at) + 1.0
    assert limiter(bot).retry_afters == 0


async def test_429s_across_chats_shrink_the_bulk_budget_and_it_grows_back(make_bot):
    # The bot assumes 40/s; Telegram (the emulator) allows 8/s of bulk sends.
    bot = await make_bot(rate_bulk_per_second=40.0)
    bot.emu.caps = Caps(overall_per_second=8)
    lanes = limiter(bot)
    lanes.bulk.settings = AimdSettings(window=1.0, distinct_chats=3, increase=1, increase_every=0.5)
    audience = [bot.emu.add_user(f"R{n}", started=True) for n in range(80)]
    for user in audience:
        await bot.app.outbox.enqueue(user.id, "sendMessage", {"text": "notice"}, lane=Lane.NOTIFY)
    await bot.settle(timeout=60)
    delivered = [user for user in audience if bot.emu.bot_messages(user.id)]
    assert len(delivered) == 80  # nothing lost: each 429 rescheduled after its retry_after
    cuts = [rate for _, rate in lanes.bulk.history if rate < 40.0]
    assert cuts and min(cuts) <= 10.0  # it found a rate near the real one
    # Fewer 429s than messages (a sender fixed at 40/s would get several per message).
    assert 3 <= lanes.retry_afters < 80
    rows = await bot.app.db.fetchall("SELECT COUNT(*) FROM outbox WHERE last_error LIKE 'Retry%'")
    assert rows[0][0] >= 1  # rescheduled by the outbox, not dropped
    # With no more 429s it grows back, additively (+4 every 0.5 s here), to the ceiling.
    lanes.bulk.settings = AimdSettings(window=1.0, distinct_chats=3, increase=4, increase_every=0.5)
    mark = len(lanes.bulk.history)
    await wait_until(lambda: lanes.bulk_rate == 40.0, 15, "the budget to grow back")
    rates = [rate for _, rate in list(lanes.bulk.history)[mark - 1 :]]
    steps = [b - a for a, b in itertools.pairwise(rates)]
    assert len(steps) >= 2 and all(0 < step <= 4.0 + 1e-9 for step in steps)


async def test_injected_429s_in_many_chats_cut_the_budget_and_pause_only_those_chats(make_bot):
    bot = await make_bot(rate_bulk_per_second=30.0)
    bot.app.outbox.retry_scale = 1.0
    bot.emu.caps = Caps(enabled=False)
    lanes = limiter(bot)
    lanes.bulk.settings = AimdSettings(window=2.0, distinct_chats=3)
    audience = [bot.emu.add_user(f"R{n}", started=True) for n in range(30)]
    bot.emu.faults = Faults(rate_429=0.3, retry_after=1, methods=frozenset({"sendMessage"}))
    alice = bot.user("Alice")
    for user in audience:
        await bot.app.outbox.enqueue(user.id, "sendMessage", {"text": "notice"}, lane=Lane.NOTIFY)
    await wait_until(lambda: bot.emu.fault_counts["429"] >= 3, 10, "injected 429s")
    bot.emu.faults = Faults()
    # A chat that got a 429 waits its retry_after; a user who writes meanwhile is answered.
    await alice.send("/start")
    assert len(alice.texts) == 1
    await bot.settle(timeout=30)
    assert all(bot.emu.bot_messages(user.id) for user in audience)
    assert lanes.bulk.history and min(rate for _, rate in lanes.bulk.history) <= 15.0


async def test_a_group_out_of_budget_does_not_hold_back_relays_to_users(make_bot):
    """Relays into a group that had its messages for this window wait pending (where a
    relay line can still be coalesced into them); the worker moves on to other chats."""
    bot = await make_bot(rate_group_per_minute=4.0, rate_group_window=3.0)
    bot.emu.caps = Caps(per_group_per_minute=4, group_window=3.0)
    group = bot.emu.add_group("Agents")
    bob = bot.user("Bob")
    await bob.send("/start")
    arrivals = Arrivals(bot.emu)

    async def relay_into_group(lines: range) -> None:
        for n in lines:
            await bot.app.outbox.enqueue(
                group.id, "sendMessage", {"text": f"line {n}"}, lane=Lane.RELAY
            )

    await relay_into_group(range(4))
    await wait_until(lambda: len(arrivals.times[group.id]) == 4, 10, "the group's first lines")
    await relay_into_group(range(4, 12))  # the group's window is full for about 3 s
    await asyncio.sleep(0.3)  # the worker has picked them up by now
    asked = time.monotonic()
    await bot.app.outbox.enqueue(
        bob.user_id, "sendMessage", {"text": "an agent's reply"}, lane=Lane.RELAY
    )
    await wait_until(lambda: "an agent's reply" in bob.texts, 10, "the relay to the user")
    assert arrivals.times[bob.user_id][-1] - asked < 1.0
    assert len(arrivals.times[group.id]) < 12  # the group's lines are still waiting
    await bot.settle(timeout=30)
    times = arrivals.times[group.id]
    assert len(times) == 12 and most_in_any_window(times, 3.0) <= 4
    assert limiter(bot).retry_afters == 0
    rows = await bot.app.db.fetchall(
        "SELECT status, attempts FROM outbox WHERE chat_id = ?", (group.id,)
    )
    # Deferred for the budget is not a failed attempt.
    assert {row[0] for row in rows} == {"sent"} and {row[1] for row in rows} == {0}
    assert [m["text"] for m in bot.emu.bot_messages(group.id)] == [f"line {n}" for n in range(12)]
