"""Send lanes: per-chat and per-group limits, the bulk budget only for bulk lanes, AIMD on
429s, RetryAfter pausing one chat."""

import asyncio
import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram.error import NetworkError, RetryAfter

from tests.support.waiting import wait_until
from tgbot.lanes import (
    GUARD,
    AdaptiveRate,
    AimdSettings,
    Lane,
    LaneRateLimiter,
    WindowBudget,
    is_limited,
)


async def _send(limiter, order, lane, chat_id, tag, endpoint="sendMessage"):
    async def callback():
        order.append(tag)
        return True

    await limiter.process_request(callback, (), {}, endpoint, {"chat_id": chat_id}, {"lane": lane})


async def test_replies_never_wait_for_the_bulk_budget():
    limiter = LaneRateLimiter(bulk_per_second=5, chat_per_second=100)
    order: list[str] = []
    broadcasts = [
        asyncio.create_task(_send(limiter, order, Lane.BROADCAST, 1000 + i, f"b{i}"))
        for i in range(40)
    ]
    # The broadcast has started on its first tokens.
    await wait_until(lambda: len(order) >= 1, 10, interval=0.005)
    broadcast_before = len(order)
    replies = [
        asyncio.create_task(_send(limiter, order, Lane.REPLY, 5000 + i, f"r{i}")) for i in range(50)
    ]
    await asyncio.wait_for(asyncio.gather(*replies), 10.0)
    # 50 replies to 50 chats went while the 5/s bulk budget held the broadcast back: at most a
    # few broadcast sends (those already granted, one per fifth of a second) went between.
    broadcast_during = sum(tag.startswith("b") for tag in order) - broadcast_before
    assert broadcast_during <= 5
    assert not all(task.done() for task in broadcasts)
    for task in broadcasts:
        task.cancel()
    await asyncio.gather(*broadcasts, return_exceptions=True)


async def test_notifications_go_before_broadcasts_within_the_bulk_budget():
    limiter = LaneRateLimiter(bulk_per_second=20, chat_per_second=100)
    order: list[str] = []
    broadcasts = [
        asyncio.create_task(_send(limiter, order, Lane.BROADCAST, 1000 + i, f"b{i}"))
        for i in range(60)
    ]
    await wait_until(lambda: len(order) >= 1, 10, interval=0.005)  # the broadcast is under way
    notices = [
        asyncio.create_task(_send(limiter, order, Lane.NOTIFY, 2000 + i, f"n{i}")) for i in range(3)
    ]
    await asyncio.wait_for(asyncio.gather(*notices), 2.0)
    # Only broadcast sends already granted (or one in the gap) go between.
    first_notice = min(order.index(f"n{i}") for i in range(3))
    last_notice = max(order.index(f"n{i}") for i in range(3))
    assert last_notice - first_notice <= 4
    for task in broadcasts:
        task.cancel()
    await asyncio.gather(*broadcasts, return_exceptions=True)


async def test_bulk_sends_are_spaced_to_the_budget():
    limiter = LaneRateLimiter(bulk_per_second=20, chat_per_second=100)
    stamps: list[float] = []

    async def callback():
        stamps.append(time.monotonic())
        return True

    await asyncio.gather(
        *(
            limiter.process_request(
                callback, (), {}, "sendMessage", {"chat_id": 100 + i}, {"lane": Lane.NOTIFY}
            )
            for i in range(21)
        )
    )
    # 21 sends at 20/s: one at once, then one every 50 ms: about a second, never faster.
    assert stamps[-1] - stamps[0] >= 0.95
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.04


async def test_private_chat_burst_then_one_a_second_and_edits_share_it():
    limiter = LaneRateLimiter(bulk_per_second=1000, chat_per_second=4, chat_burst=3)
    order: list[str] = []
    start = time.monotonic()
    await _send(limiter, order, Lane.REPLY, 42, "s1")
    await _send(limiter, order, Lane.REPLY, 42, "e1", endpoint="editMessageText")
    await _send(limiter, order, Lane.REPLY, 42, "s2")
    assert time.monotonic() - start < 0.25  # the burst: less than one send's spacing at 4/s
    await _send(limiter, order, Lane.REPLY, 42, "e2", endpoint="editMessageReplyMarkup")
    await _send(limiter, order, Lane.REPLY, 42, "s3")
    # Two more after the burst of three, at 4/s: half a second.
    assert 0.4 <= time.monotonic() - start < 1.0
    assert order == ["s1", "e1", "s2", "e2", "s3"]


async def test_group_cap_spaces_sends_to_one_group():
    limiter = LaneRateLimiter(bulk_per_second=1000, group_per_minute=600)  # 10/s, burst 150
    limiter._group_per_minute, limiter._group_window = 8, 1.0  # 8 a second, burst 2
    order: list[str] = []
    start = time.monotonic()
    await asyncio.gather(*(_send(limiter, order, Lane.RELAY, -100123, i) for i in range(5)))
    elapsed = time.monotonic() - start
    # 2 at once, then 3 more at 8/s
    assert 0.3 <= elapsed < 1.5
    assert order == [0, 1, 2, 3, 4]


def test_unlimited_methods():
    assert is_limited("sendMessage") and is_limited("editMessageText")
    assert is_limited("copyMessage") and is_limited("createForumTopic")
    for method in ("answerCallbackQuery", "deleteMessage", "getUpdates", "getChat"):
        assert not is_limited(method)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 30),
    burst=st.integers(1, 30),
    gaps=st.lists(st.floats(0, 5), min_size=1, max_size=120),
)
def test_group_window_never_lets_more_than_the_limit_through_in_any_window(limit, burst, gaps):
    window = 10.0
    group = WindowBudget(limit, window, burst, 0.0)
    now, granted = 0.0, []
    for gap in gaps:
        now += gap
        wait = group.wait_time(now)
        now += wait  # the sender waits as told, then sends
        assert group.wait_time(now) == pytest.approx(0, abs=1e-9)
        group.take(now)
        granted.append(now)
    for i, start in enumerate(granted):
        # Even a send that arrives up to the guard late keeps to the limit.
        inside = [t for t in granted[i:] if t < start + window + GUARD - 1e-9]
        assert len(inside) <= limit


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(1, 100),
    cut=st.one_of(st.none(), st.floats(0.1, 1)),
    gaps=st.lists(st.floats(0, 0.5), min_size=2, max_size=200),
)
def test_bulk_budget_never_exceeds_its_rate_in_any_second(rate, cut, gaps):
    budget = WindowBudget(rate, 1.0, 1.0, 0.0)
    now, granted, limits = 0.0, [], []
    for n, gap in enumerate(gaps):
        if cut is not None and n == len(gaps) // 2:
            budget.set_rate(max(1.0, rate * cut), now)  # an AIMD cut midway
        now += gap
        now += budget.wait_time(now)
        budget.take(now)
        granted.append(now)
        limits.append(budget.limit)
    for i, start in enumerate(granted):
        inside = [t for t in granted[i:] if t < start + 1.0 - 1e-9]
        assert len(inside) <= max(limits[i : i + len(inside)])
    # Sends are spaced, never bunched: no two within a fraction of 1/rate.
    spacing = [b - a for a, b in itertools.pairwise(granted)]
    assert min(spacing) >= 1 / (rate * (1 + 1e-6)) - GUARD


def test_aimd_cuts_on_429s_from_several_chats_and_recovers_additively():
    aimd = AdaptiveRate(30.0, AimdSettings(window=10, distinct_chats=3, increase_every=5), 0.0)
    # One chat's 429s are its own limit: no cut however many.
    for t in range(5):
        assert not aimd.on_retry_after(7, float(t))
    assert aimd.current(5.0) == 30.0
    # Three different chats within the window: halved.
    assert not aimd.on_retry_after(1, 20.0)
    assert not aimd.on_retry_after(2, 20.5)
    assert aimd.on_retry_after(3, 21.0)
    assert aimd.rate == 15.0
    # More 429s right after do not cut again within the window (they were in flight).
    for chat in range(10, 20):
        assert not aimd.on_retry_after(chat, 22.0)
    assert aimd.current(22.0) == 15.0
    # Additive increase: +1/s every 5 s without a cut.
    assert aimd.current(25.9) == 15.0
    assert aimd.current(26.0) == 16.0
    assert aimd.current(31.0) == 17.0
    # A second cut after the window.
    for chat in (1, 2, 3):
        aimd.on_retry_after(chat, 40.0)
    assert aimd.rate == pytest.approx(9.0)
    assert aimd.current(40.0 + 5 * 100) == 30.0  # back to the ceiling, never above


def test_aimd_never_goes_below_its_floor():
    aimd = AdaptiveRate(4.0, AimdSettings(window=1, distinct_chats=2, floor=1.0), 0.0)
    now = 0.0
    for _ in range(10):
        now += 2
        aimd.on_retry_after(1, now)
        aimd.on_retry_after(2, now)
    assert aimd.rate == 1.0


async def test_retry_afters_across_chats_shrink_the_bulk_budget():
    limiter = LaneRateLimiter(bulk_per_second=30, chat_per_second=1000)

    async def flooded():
        raise RetryAfter(1)

    for chat in (11, 12, 13):
        with pytest.raises(RetryAfter):
            await limiter.process_request(
                flooded, (), {}, "sendMessage", {"chat_id": chat}, {"lane": Lane.BROADCAST}
            )
    assert limiter.bulk_rate == 15.0
    assert limiter.retry_afters == 3


async def test_retry_after_pauses_only_that_chat():
    limiter = LaneRateLimiter(bulk_per_second=1000, chat_per_second=1000)
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
    # The bulk budget is untouched by one chat's 429.
    assert limiter.bulk_rate == 1000


async def test_reply_is_retried_after_a_short_retry_after():
    limiter = LaneRateLimiter(bulk_per_second=1000, chat_per_second=1000)
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


async def test_a_pause_without_a_chat_holds_bulk_lanes_only():
    limiter = LaneRateLimiter(bulk_per_second=1000, chat_per_second=1000)
    limiter.pause(None, 60)
    order: list[str] = []
    await asyncio.wait_for(_send(limiter, order, Lane.REPLY, 5, "reply"), 0.5)
    await asyncio.wait_for(_send(limiter, order, Lane.RELAY, 6, "relay"), 0.5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_send(limiter, order, Lane.NOTIFY, 7, "notice"), 0.2)
    assert order == ["reply", "relay"]


async def test_non_sending_methods_are_not_limited():
    limiter = LaneRateLimiter(bulk_per_second=1)
    limiter.pause(None, 60)
    limiter.pause(3, 60)

    async def callback():
        return True

    assert await asyncio.wait_for(
        limiter.process_request(callback, (), {}, "answerCallbackQuery", {"chat_id": 3}, None),
        0.5,
    )


async def test_reply_is_retried_after_a_server_error_but_other_lanes_are_not():
    limiter = LaneRateLimiter(bulk_per_second=1000, chat_per_second=1000)
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
    limiter = LaneRateLimiter(bulk_per_second=1, paid_per_second=1000)
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


@pytest.mark.parametrize(
    ("endpoint", "answer", "expected"),
    [
        # An edit's echoed message is not handed to PTB to parse: the bot never reads it.
        ("editMessageText", {"message_id": 5, "text": "x"}, True),
        ("editMessageReplyMarkup", {"message_id": 5}, True),
        ("editMessageCaption", {"message_id": 5}, True),
        # An inline message's edit answers True itself.
        ("editMessageText", True, True),
        # A sent message is read (its id is recorded), and so is everything else.
        ("sendMessage", {"message_id": 6, "text": "x"}, {"message_id": 6, "text": "x"}),
        ("getChat", {"id": 1}, {"id": 1}),
        ("deleteMessage", True, True),
    ],
)
async def test_an_edit_answers_true_and_other_results_pass_through(endpoint, answer, expected):
    limiter = LaneRateLimiter(bulk_per_second=1000, chat_per_second=1000)

    async def callback():
        return answer

    result = await limiter.process_request(callback, (), {}, endpoint, {"chat_id": 3}, None)
    assert result == expected
