"""The tests' one polling helper: it returns what it waited for, names it when the time runs
out, and lets the event loop run between looks (or what it waits for could never happen)."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.waiting import wait_until


async def test_returns_the_first_truthy_value_which_another_task_brings():
    box: list[str] = []
    asyncio.get_running_loop().call_later(0.05, box.append, "reply")
    assert await wait_until(lambda: box and box[0], 5, "the reply") == "reply"


async def test_names_what_it_waited_for_when_the_time_runs_out():
    looks = 0

    def never() -> bool:
        nonlocal looks
        looks += 1
        return False

    with pytest.raises(AssertionError, match=r"after 0\.1 s waiting for the ticket's topic"):
        await wait_until(never, 0.1, "the ticket's topic", interval=0.01)
    assert looks > 2


async def test_awaits_a_coroutine_condition_at_each_look():
    looks: list[int] = []

    async def read() -> int | None:
        looks.append(1)
        return 7 if len(looks) == 3 else None

    assert await wait_until(read, 5, "the third look", interval=0.01) == 7
    assert len(looks) == 3
