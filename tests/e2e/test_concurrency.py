"""Per-chat ordered concurrency: a flooding chat cannot starve everyone else."""

import asyncio
import time

from tests.harness import UserSession


async def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _walk_survey(user: UserSession, emu) -> None:
    """Do the 3-step survey without waiting for the whole bot to go idle."""

    def last() -> str:
        messages = emu.bot_messages(user.user_id)
        return messages[-1].get("text", "") if messages else ""

    emu.user_send(user.user_id, "/survey")
    await _wait(lambda: last() == "Step 1/3: pick a colour")
    emu.press_button(
        user.user_id, user.user_id, emu.bot_messages(user.user_id)[-1]["message_id"], "Blue"
    )
    await _wait(lambda: last() == "Step 2/3: type a word")
    emu.user_send(user.user_id, f"word{user.user_id}")
    await _wait(lambda: last().startswith("Step 3/3"))
    emu.press_button(
        user.user_id, user.user_id, emu.bot_messages(user.user_id)[-1]["message_id"], "Confirm"
    )
    await _wait(lambda: last() == f"Thanks: blue word{user.user_id}")


async def test_flood_from_one_chat_does_not_delay_fifty_other_users(make_bot, monkeypatch):
    # Each flood update waits 5 ms on I/O, as a backend call would: 1,000 take >= 5 s in order.
    monkeypatch.setenv("SLOW_SECONDS", "0.005")
    bot = await make_bot(concurrent_updates=8)
    emu = bot.emu
    flooder = bot.user("Flood")
    users = [bot.user(f"U{i}") for i in range(50)]
    for i in range(1000):
        emu.user_send(flooder.user_id, f"/slow {i}")
    peak_locks = 0

    async def watch_locks():
        nonlocal peak_locks
        while True:
            peak_locks = max(peak_locks, bot.app.update_processor.lock_count)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch_locks())
    await asyncio.gather(*(_walk_survey(user, emu) for user in users))
    flood_answered_when_others_done = len(emu.bot_messages(flooder.user_id))
    await bot.settle(timeout=120)
    watcher.cancel()

    # The 50 finished long before the flood was through.
    assert flood_answered_when_others_done < 1000
    # The flooding chat's updates were answered in order, each once.
    replies = emu.bot_messages(flooder.user_id)
    assert [m["text"] for m in replies] == [f"slow {i} done" for i in range(1000)]
    # Locks exist only for chats with work in flight, never one per chat ever seen.
    assert peak_locks <= 1 + 50
    assert bot.app.update_processor.lock_count == 0


async def test_forum_topics_are_ordered_per_topic(make_bot):
    from telegram import Update

    from tgbot.runtime import chat_key

    bot = await make_bot()
    agent = bot.user("Agent")
    group = bot.emu.add_forum_group("Agents", members=[agent.user_id], admins=[agent.user_id])
    t1 = bot.emu.user_create_topic(agent.user_id, group.id, "T1")
    t2 = bot.emu.user_create_topic(agent.user_id, group.id, "T2")
    m1 = bot.emu.user_send(agent.user_id, "a", chat_id=group.id, thread_id=t1)
    m2 = bot.emu.user_send(agent.user_id, "b", chat_id=group.id, thread_id=t2)
    u1 = Update.de_json({"update_id": 1, "message": m1}, bot.app.bot)
    u2 = Update.de_json({"update_id": 2, "message": m2}, bot.app.bot)
    assert chat_key(u1) == (group.id, t1)
    assert chat_key(u1) != chat_key(u2)
