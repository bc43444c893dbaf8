"""Send lanes: priorities, per-chat and per-group buckets, RetryAfter pausing one chat."""

import asyncio
import time

import pytest
from telegram.error import RetryAfter

from tgbot.lanes import Lane, LaneRateLimiter


async def _send(limiter, order, lane, chat_id, tag):
    async def callback():
        order.append(tag)
        return True

    await limiter.process_request(
        callback, (), {}, "sendMessage", {"chat_id": chat_id}, {"lane": lane}
    )


async def test_replies_overtake_a_waiting_broadcast():
    limiter = LaneRateLimiter(overall_per_second=20, chat_per_second=100)
    order: list[str] = []
    broadcasts = [
        asyncio.create_task(_send(limiter, order, Lane.BROADCAST, 1000 + i, f"b{i}"))
        for i in range(60)
    ]
    async with asyncio.timeout(5):
        while len(order) < 20:  # noqa: ASYNC110 -- the broadcast uses its burst, then waits
            await asyncio.sleep(0.01)
    replies = [asyncio.create_task(_send(limiter, order, Lane.REPLY, 5, f"r{i}")) for i in range(3)]
    await asyncio.gather(*replies)
    sent_before_replies = max(order.index(f"r{i}") for i in range(3))
    # Only the broadcast sends that were already granted may go between: at most a few.
    assert sent_before_replies < 20 + 6 + 3
    assert not all(task.done() for task in broadcasts)
    for task in broadcasts:
        task.cancel()
    await asyncio.gather(*broadcasts, return_exceptions=True)


async def test_group_cap_spaces_sends_to_one_group():
    limiter = LaneRateLimiter(overall_per_second=1000, group_per_minute=600)  # 10/s, burst 150
    limiter._group_capacity = 2.0  # small burst to keep the test short
    order: list[str] = []
    start = time.monotonic()
    await asyncio.gather(*(_send(limiter, order, Lane.RELAY, -100123, i) for i in range(5)))
    elapsed = time.monotonic() - start
    # 2 at once, then 3 more at 10/s
    assert 0.25 <= elapsed < 1.5
    assert order == [0, 1, 2, 3, 4]


async def test_retry_after_pauses_only_that_chat():
    limiter = LaneRateLimiter(overall_per_second=1000, chat_per_second=1000)
    calls: list[int] = []

    async def flooded():
        calls.append(1)
        raise RetryAfter(2)

    with pytest.raises(RetryAfter):
        await limiter.process_request(
            flooded, (), {}, "sendMessage", {"chat_id": 7}, {"lane": Lane.BROADCAST}
        )
    assert limiter.paused_until(7) > time.monotonic() + 1.5
    assert limiter.paused_until(8) == 0
    other: list[str] = []
    await asyncio.wait_for(_send(limiter, other, Lane.BROADCAST, 8, "x"), 0.5)
    assert other == ["x"]


async def test_reply_is_retried_after_a_short_retry_after():
    limiter = LaneRateLimiter(overall_per_second=1000, chat_per_second=1000)
    attempts: list[int] = []

    async def once_flooded():
        attempts.append(1)
        if len(attempts) == 1:
            raise RetryAfter(1)
        return True

    result = await limiter.process_request(
        once_flooded, (), {}, "sendMessage", {"chat_id": 9}, None
    )
    assert result is True and len(attempts) == 2


async def test_non_sending_methods_are_not_limited():
    limiter = LaneRateLimiter(overall_per_second=1)
    limiter.pause(None, 60)

    async def callback():
        return True

    assert await asyncio.wait_for(
        limiter.process_request(callback, (), {}, "answerCallbackQuery", {}, None), 0.5
    )


async def test_reply_is_retried_after_a_server_error_but_other_lanes_are_not():
    from telegram.error import NetworkError

    limiter = LaneRateLimiter(overall_per_second=1000, chat_per_second=1000)
    attempts: list[int] = []

    async def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise NetworkError("Bad Gateway")
        return True

    assert await limiter.process_request(flaky, (), {}, "sendMessage", {"chat_id": 3}, None)
    assert len(attempts) == 2
    attempts.clear()
    with pytest.raises(NetworkError):
        await limiter.process_request(
            flaky, (), {}, "sendMessage", {"chat_id": 3}, {"lane": Lane.RELAY}
        )
    assert len(attempts) == 1


async def test_paid_broadcast_is_not_held_by_the_free_budget():
    limiter = LaneRateLimiter(overall_per_second=1, broadcast_per_second=1000)
    sent: list[int] = []

    async def callback():
        sent.append(1)
        return True

    args = {"lane": Lane.BROADCAST, "paid": True}
    await asyncio.wait_for(
        asyncio.gather(
            *(
                limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 100 + i}, args)
                for i in range(20)
            )
        ),
        2.0,
    )
    assert len(sent) == 20
