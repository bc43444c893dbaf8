"""Send lanes pinned on a fake clock: Telegram's default limits, where each wait ends, who
waits for what, the adaptive bulk budget's edges, and the bookkeeping that keeps memory flat.

The limiter sleeps with ``asyncio.sleep``; here that sleep moves a fake clock instead, so every
grant time is exact. Written to kill the mutants of ``tgbot/lanes.py`` that the timing tests
let live (``scripts/mutate.sh lanes``, docs/testing.md).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter

from tgbot import lanes
from tgbot.lanes import (
    GUARD,
    AdaptiveRate,
    AimdSettings,
    Lane,
    LaneRateLimiter,
    TokenBucket,
    WindowBudget,
    _chat_id,
    _seconds,
)


class FakeTime:
    """A clock that only moves when the limiter sleeps; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.waiting_bulk: list[list[int]] = []
        self.limiter: LaneRateLimiter | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the limiter must never sleep for nothing (a busy loop)"
        self.sleeps.append(seconds)
        if self.limiter is not None:
            self.waiting_bulk.append(list(self.limiter._waiting_bulk))
        self.now += seconds


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr(lanes, "asyncio", SimpleNamespace(sleep=clock.sleep))
    return clock


def _limiter(fake: FakeTime, **kwargs) -> LaneRateLimiter:
    limiter = LaneRateLimiter(clock=fake, **kwargs)
    fake.limiter = limiter
    return limiter


async def _grants(limiter: LaneRateLimiter, fake: FakeTime, sends) -> list[float]:
    """Acquire each ``(lane, chat_id[, paid])`` in turn; return the clock at each grant."""
    times = []
    for send in sends:
        await limiter.acquire(*send)
        times.append(fake.now)
    return times


# -- Telegram's limits as the defaults ---------------------------------------------------


async def test_default_private_chat_burst_of_three_then_one_a_second(fake):
    limiter = _limiter(fake)
    start = fake.now
    times = await _grants(limiter, fake, [(Lane.REPLY, 42)] * 5)
    offsets = [t - start for t in times]
    assert offsets[2] < 0.1  # three at once (a guard's margin apart at most)
    assert offsets[3] == pytest.approx(1.0 + GUARD, abs=0.02)
    assert offsets[4] - offsets[3] == pytest.approx(1.0, abs=1e-6)
    assert limiter.granted == [5, 0, 0, 0]


async def test_default_group_burst_of_five_and_twenty_a_minute(fake):
    limiter = _limiter(fake)
    start = fake.now
    offsets = [t - start for t in await _grants(limiter, fake, [(Lane.RELAY, -100123)] * 21)]
    assert sum(offset < 1 for offset in offsets) == 5  # a quarter of the minute's 20 at once
    assert sum(offset < 60 for offset in offsets) == 20
    # The 21st waits for the first to leave the minute (and the guard), no longer.
    assert offsets[20] == pytest.approx(60 + GUARD, abs=0.01)
    assert limiter.granted == [0, 21, 0, 0]


async def test_default_bulk_budget_is_thirty_a_second_and_paid_a_thousand(fake):
    limiter = _limiter(fake)
    assert limiter.bulk_rate == 30.0
    assert (limiter._paid_budget.limit, limiter._paid_budget.bucket.rate) == (1000, 1000.0)
    start = fake.now
    times = await _grants(limiter, fake, [(Lane.NOTIFY, 100 + n) for n in range(31)])
    assert times[30] - start == pytest.approx(1.0, abs=0.05)
    assert limiter.granted == [0, 0, 31, 0]


# -- who waits for what ------------------------------------------------------------------


async def test_a_pause_holds_exactly_its_chat_for_exactly_its_time(fake):
    limiter = _limiter(fake, chat_per_second=1000)
    limiter.pause(7, 0.5)
    start = fake.now
    assert await _grants(limiter, fake, [(Lane.REPLY, 8)]) == [start]
    assert await _grants(limiter, fake, [(Lane.REPLY, 7)]) == [pytest.approx(start + 0.5)]
    assert fake.sleeps == [pytest.approx(0.5)]
    assert limiter.granted == [2, 0, 0, 0]
    assert limiter._chats[7].tokens < limiter._chats[7].capacity  # the chat's token was spent


async def test_a_paid_broadcast_spends_the_paid_budget_not_the_free_one(fake):
    limiter = _limiter(fake, bulk_per_second=1, paid_per_second=1000, chat_per_second=1000)
    start = fake.now
    await limiter.acquire(Lane.BROADCAST, 1, True)
    await limiter.acquire(Lane.NOTIFY, 2)  # the free budget is untouched by the paid send
    assert fake.now == start
    await limiter.acquire(Lane.NOTIFY, 3)  # a plain call is not paid: the free budget, 1/s
    assert fake.now - start == pytest.approx(1.0, abs=0.05)


async def test_the_broadcast_cap_holds_broadcasts_only(fake):
    limiter = _limiter(fake, bulk_per_second=1000, broadcast_per_second=1, chat_per_second=1000)
    start = fake.now
    times = await _grants(limiter, fake, [(Lane.NOTIFY, n) for n in range(1, 4)])
    assert times[2] - start < 0.01  # notifications: only the bulk budget's 1 ms spacing
    times = await _grants(limiter, fake, [(Lane.BROADCAST, n) for n in range(10, 13)])
    assert times[0] - start < 0.01
    assert times[1] - times[0] == pytest.approx(1.0, abs=1e-6)  # its own 1/s bucket
    assert times[2] - times[1] == pytest.approx(1.0, abs=1e-6)


async def test_a_waiting_notification_is_counted_while_it_waits_and_not_after(fake):
    limiter = _limiter(fake, bulk_per_second=1, chat_per_second=1000)
    await _grants(limiter, fake, [(Lane.NOTIFY, 1), (Lane.NOTIFY, 2)])
    assert fake.waiting_bulk == [[0, 0, 1, 0]]  # the second waited for the bulk budget
    assert limiter._waiting_bulk == [0, 0, 0, 0]


def test_a_waiting_notification_makes_broadcasts_yield_a_turn(fake):
    limiter = _limiter(fake)
    now = fake.now
    assert limiter._bulk_wait(Lane.BROADCAST, now) == 0.0
    limiter._waiting_bulk[Lane.NOTIFY] = 1
    assert limiter._bulk_wait(Lane.BROADCAST, now) == pytest.approx(1 / 30)
    assert limiter._bulk_wait(Lane.NOTIFY, now) == 0.0  # it is not behind itself


def test_a_cut_restarts_the_bulk_budget_empty_at_the_lower_rate(fake, caplog):
    limiter = _limiter(fake)
    with caplog.at_level(logging.WARNING, logger="tgbot.lanes"):
        for chat in (11, 12, 13):
            limiter.on_retry_after(chat, 1.0)
    assert limiter.bulk_rate == 15.0
    assert caplog.messages == ["429s from several chats: bulk budget cut to 15.0 messages a second"]
    # Empty bucket: one token and the guard's margin (at the first rate) to earn at 15/s.
    wait = limiter._bulk_wait(Lane.NOTIFY, fake.now)
    assert wait == pytest.approx((1 + GUARD * 30) / 15)
    assert limiter._bulk_budget.bucket.rate == 15.0


# -- pauses and what chat_delay reports ----------------------------------------------------


def test_pauses_and_paused_until_per_lane():
    clock = FakeTime(start=0.0)
    limiter = LaneRateLimiter(clock=clock)
    limiter.pause(None, 60)
    limiter.pause(7, 0.5)
    assert limiter.paused_until(7, Lane.REPLY) == 0.5  # not the bulk lanes' pause
    assert limiter.paused_until(7, Lane.NOTIFY) == 60
    assert limiter.paused_until(8, Lane.REPLY) == 0.0
    assert limiter.paused_until(None, Lane.REPLY) == 0.0
    assert limiter.paused_until(None, Lane.BROADCAST) == 60
    limiter.pause(7, 0.2)  # a shorter pause never shortens a longer one
    assert limiter.paused_until(7) == 0.5
    fresh = LaneRateLimiter(clock=clock)
    assert fresh.paused_until(9, Lane.NOTIFY) == 0.0
    assert fresh.paused_until(None, Lane.RELAY) == 0.0


def test_expired_pauses_are_forgotten_past_a_thousand():
    clock = FakeTime(start=0.0)
    limiter = LaneRateLimiter(clock=clock)
    for chat in range(999):
        limiter.pause(chat, 0)  # ends right now: expired
    limiter.pause(5000, 10)
    assert len(limiter._paused) == 1000  # a thousand: nothing dropped yet
    limiter.pause(5001, 10)
    assert limiter._paused == {5000: 10.0, 5001: 10.0}


def test_chat_delay_reports_pauses_and_budgets_without_spending(fake):
    limiter = _limiter(fake)
    assert limiter.chat_delay(Lane.REPLY, 42) == 0.0
    limiter.pause(42, 5)
    assert limiter.chat_delay(Lane.REPLY, 42) == 5.0
    limiter.pause(None, 3)
    assert limiter.chat_delay(Lane.NOTIFY, None) == 3.0
    assert limiter.chat_delay(Lane.REPLY, None) == 0.0
    fake.now += 10  # every pause is over: no negative delay
    assert limiter.chat_delay(Lane.NOTIFY, 42) == 0.0
    budget = limiter._chats[42]
    for _ in range(3):
        budget.take(fake.now)
    expected = budget.wait_time(fake.now)
    assert expected > 0.9
    assert limiter.chat_delay(Lane.REPLY, 42) == pytest.approx(expected)
    assert limiter.chat_delay(Lane.REPLY, 42) == pytest.approx(expected)  # nothing spent


def test_idle_chat_budgets_are_forgotten_past_ten_thousand(fake):
    limiter = _limiter(fake)
    for chat in range(10_000):
        limiter.chat_delay(Lane.REPLY, chat)
    limiter._chats[5].take(fake.now)  # one chat is busy
    limiter.chat_delay(Lane.REPLY, 20_000)
    assert len(limiter._chats) == 10_001  # ten thousand and one: nothing dropped yet
    limiter.chat_delay(Lane.REPLY, 20_001)
    assert set(limiter._chats) == {5, 20_001}  # the busy chat's budget is kept


# -- buckets, windows and the adaptive rate ---------------------------------------------


def test_bucket_and_window_idle_and_rate_changes():
    bucket = TokenBucket(1.0, 3.0, 0.0)
    assert bucket.is_idle(0.0)
    bucket.take(0.0)
    assert not bucket.is_idle(0.5)
    assert bucket.is_idle(1.0)
    bucket.take(1.0)
    bucket.set_rate(2.0, 1.5)  # the half second before keeps the old rate: half a token
    assert bucket.rate == 2.0
    assert bucket.tokens == pytest.approx(2.5)

    window = WindowBudget(2, 10.0, 2, 0.0)
    assert window.is_idle(0.0)
    window.take(0.0)
    assert not window.is_idle(10.0)
    assert window.is_idle(10.0 + GUARD + 0.01)
    window.set_rate(3, 20.0)
    assert window.limit == 3
    assert window.bucket.rate == pytest.approx(0.3)
    window.set_rate(0.5, 20.0)
    assert window.limit == 1


def test_a_window_send_expires_exactly_at_the_window_and_guard():
    window = WindowBudget(1, 10.0, 1, 0.0, guard=0.0)
    window.take(0.0)
    assert window.wait_time(10.0) == 0.0
    pair = WindowBudget(2, 10.0, 2, 0.0, guard=0.0)
    pair.take(0.0)
    pair.take(0.0)
    assert pair.wait_time(1.0) == pytest.approx(9.0, abs=1e-5)


def test_aimd_edges_of_its_window_and_its_history():
    aimd = AdaptiveRate(30.0, AimdSettings(window=10, distinct_chats=3, increase=2.0), 0.0)
    assert aimd.current(100.0) == 30.0
    assert list(aimd.history) == []  # at the ceiling nothing changes, nothing is logged
    assert not aimd.on_retry_after(1, 100.0)
    assert not aimd.on_retry_after(2, 110.0)
    assert not aimd.on_retry_after(3, 110.0)  # chat 1's 429 left the window at exactly 110
    assert aimd.on_retry_after(4, 110.0)
    assert list(aimd.history) == [(110.0, 15.0)]
    assert aimd.current(114.0) == 15.0
    assert list(aimd.history) == [(110.0, 15.0)]  # no step due: nothing logged
    for chat in (5, 6):
        aimd.on_retry_after(chat, 120.0)
    assert aimd.on_retry_after(7, 120.0)  # exactly a window after the last cut: cut again
    assert aimd.rate == pytest.approx((15.0 + 2 * 2.0) / 2)  # two steps of +2 came first


# -- Telegram's answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "chat"),
    [(42, 42), (-100123, -100123), ("42", 42), ("-100123", -100123), ("@channel", None),
     (" 12", None), ("X12", None), (None, None)],
)  # fmt: skip
def test_chat_ids_given_as_numbers_or_strings(value, chat):
    assert _chat_id({"chat_id": value}) == chat
    assert _chat_id({}) is None


def test_retry_after_seconds_from_ints_and_timedeltas():
    assert _seconds(3) == 3.0
    assert _seconds(timedelta(seconds=2, milliseconds=500)) == 2.5


async def test_harmless_errors_are_swallowed_and_others_raised(fake):
    limiter = _limiter(fake, chat_per_second=1000)

    def failing(*errors):
        remaining = list(errors)

        async def callback():
            raise remaining.pop(0)

        return callback

    too_old = BadRequest("Query is too old and response timeout expired or query id is invalid")
    assert (
        await limiter.process_request(failing(too_old), (), {}, "answerCallbackQuery", {}, None)
        is True
    )
    with pytest.raises(BadRequest):
        await limiter.process_request(
            failing(BadRequest("Query_id_invalid")), (), {}, "answerCallbackQuery", {}, None
        )
    not_modified = BadRequest("Message is not modified: specified new message content is ...")
    with pytest.raises(BadRequest):  # the first attempt: a real mistake of the caller
        await limiter.process_request(
            failing(not_modified), (), {}, "editMessageText", {"chat_id": 1}, None
        )
    retried = failing(NetworkError("Bad Gateway"), not_modified)
    assert (
        await limiter.process_request(retried, (), {}, "editMessageText", {"chat_id": 1}, None)
        is True
    )  # the first attempt had arrived
    with pytest.raises(BadRequest):
        await limiter.process_request(
            failing(NetworkError("Bad Gateway"), not_modified),
            (), {}, "sendMessage", {"chat_id": 1}, None,
        )  # fmt: skip


def test_typing_is_not_limited_but_every_other_send_is():
    assert not lanes.is_limited("sendChatAction")
    assert lanes.is_limited("sendPhoto") and lanes.is_limited("forwardMessage")


def _flaky(*errors):
    """A Bot API call that raises ``errors`` in turn, then returns its arguments."""
    remaining = list(errors)
    calls: list[tuple] = []

    async def callback(*args, **kwargs):
        calls.append((args, kwargs))
        if remaining:
            raise remaining.pop(0)
        return {"args": list(args), "kwargs": kwargs}

    return callback, calls


async def test_a_reply_is_retried_twice_then_the_error_is_raised(fake, caplog):
    limiter = _limiter(fake, chat_per_second=1000)
    callback, calls = _flaky(RetryAfter(1), RetryAfter(2))
    with caplog.at_level(logging.INFO, logger="tgbot.lanes"):
        result = await limiter.process_request(
            callback, (1, 2), {"text": "hi"}, "sendMessage", {"chat_id": 5}, None
        )
    assert result == {"args": [1, 2], "kwargs": {"text": "hi"}}
    assert len(calls) == 3
    assert caplog.messages == [
        "Telegram asked to retry sendMessage after 1.0s (lane REPLY)",
        "Telegram asked to retry sendMessage after 2.0s (lane REPLY)",
    ]
    callback, calls = _flaky(RetryAfter(1), RetryAfter(1), RetryAfter(1))
    with pytest.raises(RetryAfter):
        await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 6}, None)
    assert len(calls) == 3


@pytest.mark.parametrize(("seconds", "calls"), [(30, 2), (31, 1)])
async def test_a_reply_waits_out_a_retry_after_of_up_to_thirty_seconds(fake, seconds, calls):
    limiter = _limiter(fake, chat_per_second=1000)
    callback, made = _flaky(RetryAfter(seconds))
    if calls == 1:
        with pytest.raises(RetryAfter):
            await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 5}, None)
    else:
        await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 5}, None)
    assert len(made) == calls


async def test_a_reply_is_retried_after_network_errors_with_growing_pauses(fake, caplog):
    limiter = _limiter(fake, chat_per_second=1000)
    callback, calls = _flaky(NetworkError("Bad Gateway"), NetworkError("Bad Gateway"))
    with caplog.at_level(logging.INFO, logger="tgbot.lanes"):
        await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 5}, None)
    assert len(calls) == 3
    assert fake.sleeps == [pytest.approx(0.2), pytest.approx(0.4)]
    assert caplog.messages == ["Retrying sendMessage after NetworkError"] * 2
    callback, calls = _flaky(*[NetworkError("Bad Gateway")] * 3)
    with pytest.raises(NetworkError):
        await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 5}, None)
    assert len(calls) == 3


async def test_an_ignored_error_is_logged_with_its_method(fake, caplog):
    limiter = _limiter(fake)
    callback, _ = _flaky(BadRequest("Query is too old and response timeout expired"))
    with caplog.at_level(logging.INFO, logger="tgbot.lanes"):
        assert await limiter.process_request(callback, (), {}, "answerCallbackQuery", {}, None)
    assert caplog.messages == [
        "answerCallbackQuery: Query is too old and response timeout expired (ignored)"
    ]


async def test_a_burst_below_one_still_lets_one_send_through(fake):
    limiter = _limiter(fake, chat_burst=0.5)
    start = fake.now
    times = await _grants(limiter, fake, [(Lane.REPLY, 42)] * 2)
    assert times == [start, pytest.approx(start + 1.0)]


async def test_two_notifications_waiting_at_once_are_both_counted(fake, monkeypatch):
    async def sleep_and_yield(seconds: float) -> None:
        await asyncio.sleep(0)  # the real one: let the other sender start waiting too
        await fake.sleep(seconds)

    monkeypatch.setattr(lanes, "asyncio", SimpleNamespace(sleep=sleep_and_yield))
    limiter = _limiter(fake, bulk_per_second=1, chat_per_second=1000)
    await limiter.acquire(Lane.NOTIFY, 1)
    await asyncio.gather(limiter.acquire(Lane.NOTIFY, 2), limiter.acquire(Lane.NOTIFY, 3))
    assert max(waiting[Lane.NOTIFY] for waiting in fake.waiting_bulk) == 2
    assert limiter._waiting_bulk == [0, 0, 0, 0]  # no lane is left looking busy
    assert limiter._bulk_wait(Lane.BROADCAST, fake.now + 10) == 0.0


def test_the_guard_margin_is_at_most_one_token_and_a_window_passes_its_guard_on():
    fast = TokenBucket(1000.0, 5.0, 0.0)
    sends = 0
    while fast.wait_time(0.0) == 0.0:
        fast.take(0.0)
        sends += 1
    assert sends == 4  # five tokens, one kept as the margin (30 ms at 1000/s, capped at one)
    exact = WindowBudget(10, 1.0, 5, 0.0, guard=0.0)
    sends = 0
    while exact.wait_time(0.0) == 0.0:
        exact.take(0.0)
        sends += 1
    assert sends == 5  # no guard: the whole burst
    idle = WindowBudget(1, 10.0, 1, 0.0, guard=0.0)
    idle.take(0.0)
    assert idle.is_idle(10.0)  # exactly a window later


def test_the_aimd_history_logs_every_change_and_stays_bounded():
    aimd = AdaptiveRate(1000.0, AimdSettings(window=1, distinct_chats=1, increase_every=1), 0.0)
    assert aimd.on_retry_after(1, 10.0)
    assert aimd.current(11.0) == 501.0
    assert list(aimd.history) == [(10.0, 500.0), (11.0, 501.0)]
    now = 11.0
    for _ in range(300):
        now += 1
        aimd.on_retry_after(1, now)
    assert len(aimd.history) == 200
