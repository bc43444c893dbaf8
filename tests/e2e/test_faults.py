"""Issue 4's criterion: under 10% 429s and 5% 5xx/timeouts, 100 users complete a flow,
the bot never crashes, and visible duplicates are at most the injected timeouts that were
delivered anyway."""

import asyncio
import collections
import random
import time

from tgbot.sandbox.models import Faults


async def _wait_text(emu, user_id, predicate, timeout, start=0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in reversed(emu.bot_messages(user_id)[start:]):
            if predicate(message.get("text", "")):
                return message
        await asyncio.sleep(0.01)
    return None


async def _step(emu, user_id, act, predicate, tries=2, start=0):
    """Do ``act`` until the bot shows what ``predicate`` wants (a user retries on failure)."""
    for _ in range(tries):
        act()
        shown = await _wait_text(emu, user_id, predicate, 5.0, start)
        if shown is not None:
            return shown
    raise AssertionError(f"user {user_id} never got past a step")


async def _walk(emu, user_id, rng):
    """Walk the survey; a user whose step failed for good starts over, as people do."""
    await asyncio.sleep(rng.random())  # users arrive over a second
    for _ in range(3):
        try:
            await _walk_once(emu, user_id)
            return
        except AssertionError:
            continue
    texts = [m.get("text") for m in emu.chat_messages(user_id)]
    raise AssertionError(f"user {user_id} never finished: {texts}")


async def _walk_once(emu, user_id):
    start = len(emu.bot_messages(user_id))
    menu = await _step(
        emu,
        user_id,
        lambda: emu.user_send(user_id, "/survey"),
        lambda t: t.startswith("Step 1/3"),
        1,
        start,
    )

    def red():
        if "Red" in str(emu.message(user_id, menu["message_id"]).data.get("reply_markup")):
            emu.press_button(user_id, user_id, menu["message_id"], "Red")

    await _step(emu, user_id, red, lambda t: t.startswith("Step 2/3"), start=start)
    await _step(
        emu,
        user_id,
        lambda: emu.user_send(user_id, "kiwi"),
        lambda t: t.startswith("Step 3/3"),
        start=start,
    )

    def confirm():
        for message in reversed(emu.bot_messages(user_id)[start:]):
            if "Confirm" in str(message.get("reply_markup")):
                emu.press_button(user_id, user_id, message["message_id"], "Confirm")
                return

    await _step(emu, user_id, confirm, lambda t: t == "Thanks: red kiwi", start=start)


async def test_hundred_users_complete_a_flow_under_injected_faults(make_bot):
    bot = await make_bot()
    bot.app.outbox.retry_scale = 0.01
    emu = bot.emu
    users = [bot.user(f"U{i}") for i in range(100)]
    emu.faults = Faults(
        rate_429=0.10,
        rate_5xx=0.025,
        rate_timeout=0.025,
        timeout_after_delivery=0.5,
        retry_after=1,
        rng=random.Random(7),
    )
    rng = random.Random(1)
    await asyncio.wait_for(asyncio.gather(*(_walk(emu, u.user_id, rng) for u in users)), 240)
    emu.faults = Faults()
    await bot.settle(timeout=60)

    assert bot.app.running and bot.app.updater.running
    assert emu.fault_counts["429"] > 0 and emu.fault_counts["5xx"] > 0
    duplicates = 0
    for user in users:
        counts = collections.Counter(
            (m.get("text"), m.get("edit_date") is None) for m in emu.bot_messages(user.user_id)
        )
        duplicates += sum(n - 1 for n in counts.values() if n > 1)
    assert duplicates <= emu.fault_counts["timeout_delivered"]
