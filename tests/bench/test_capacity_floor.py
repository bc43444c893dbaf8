"""The wallet flow's latency floor (bench.capacity): what the slow wallet alone gives."""

from __future__ import annotations

import pytest

from bench.capacity import wallet_floor_p99_ms

CALLS = {"list": 1, "detail": 1, "refund": 2, "reason": 0, "amount": 0, "confirm": 1}
STEPS = list(CALLS)


def test_a_fixed_latency_wallet_gives_the_slowest_step_plus_one_bot_api_call():
    wallet = {"lo": 0.2, "hi": 0.2, "timeout_rate": 0.0}
    # Two wallet calls in a row (the refund step) and the answer's Bot API call.
    assert wallet_floor_p99_ms(wallet, CALLS, STEPS) == pytest.approx(450.0)


def test_no_wallet_calls_leave_only_the_bot_api_call():
    wallet = {"lo": 0.1, "hi": 0.8, "timeout_rate": 0.0}
    assert wallet_floor_p99_ms(wallet, dict.fromkeys(STEPS, 0), STEPS) == pytest.approx(50.0)


def test_the_floor_follows_the_uniform_latency_and_the_timeouts():
    slow = {"lo": 0.1, "hi": 0.8, "timeout_rate": 0.0}
    # One step in six sums two U(0.1, 0.8): the mixture's p99 is that sum's top 6 %,
    # 1.6 - sqrt(0.06 * 2 * 0.49) = 1.357 s, plus 50 ms.
    assert wallet_floor_p99_ms(slow, CALLS, STEPS) == pytest.approx(1407, abs=25)
    # Calls that time out (5 s) often enough reach the p99.
    timing_out = {**slow, "timeout_rate": 0.05, "timeout_s": 5.0}
    assert wallet_floor_p99_ms(timing_out, CALLS, STEPS) > 5000
