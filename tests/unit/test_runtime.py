"""Per-chat ordered concurrency (unit level; the end-to-end version floods the emulator)."""

import asyncio

from telegram import Chat, Message, Update

from tgbot.runtime import ChatOrderedUpdateProcessor, chat_key


def _update(update_id: int, chat_id: int, thread: int | None = None) -> Update:
    chat = Chat(chat_id, "private" if chat_id > 0 else "supergroup")
    message = Message(
        update_id, date=None, chat=chat, message_thread_id=thread, is_topic_message=bool(thread)
    )
    return Update(update_id, message=message)


def test_chat_key_separates_forum_topics():
    assert chat_key(_update(1, 5)) == (5, None)
    assert chat_key(_update(2, -100, 7)) == (-100, 7)
    assert chat_key(_update(3, -100, 8)) != chat_key(_update(4, -100, 7))


async def test_flooding_chat_does_not_take_every_slot_and_stays_ordered():
    done: list[int] = []
    processor = ChatOrderedUpdateProcessor(4, on_done=None)
    seen: list[int] = []
    release = asyncio.Event()
    blocked = asyncio.Event()

    async def work(update_id: int, slow: bool):
        if slow:
            blocked.set()
            await release.wait()
        seen.append(update_id)

    tasks = [
        asyncio.create_task(processor.process_update(_update(i, 1), work(i, slow=(i == 0))))
        for i in range(200)
    ]
    await asyncio.wait_for(blocked.wait(), 1.0)
    # Every update of the flooding chat has reached the processor (199 wait behind the first).
    async with asyncio.timeout(1.0):
        while processor.in_progress < 200:  # noqa: ASYNC110 -- a counter, no event to wait on
            await asyncio.sleep(0)
    # chat 1 waits on its first update; others must still get through.
    others = [
        asyncio.create_task(
            processor.process_update(_update(1000 + i, 10 + i), work(1000 + i, False))
        )
        for i in range(20)
    ]
    await asyncio.wait_for(asyncio.gather(*others), 1.0)
    assert [u for u in seen if u >= 1000] == list(range(1000, 1020))
    assert processor.lock_count == 1  # only the flooding chat holds a lock
    release.set()
    await asyncio.gather(*tasks)
    assert [u for u in seen if u < 1000] == list(range(200))
    assert processor.lock_count == 0
    assert processor.in_progress == 0
    assert done == []
