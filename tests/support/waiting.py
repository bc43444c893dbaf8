"""Waiting in a test for something the bot does on its own time (a reply, a row, a job).

One helper for every test that polls: it sleeps between looks (a loop of looks that never
awaits keeps the bot, on the same event loop, from ever doing what the test waits for) and
says what it waited for when the time runs out.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    timeout: float = 20.0,
    what: str = "the condition",
    *,
    interval: float = 0.02,
) -> T:
    """Look at ``condition()`` every ``interval`` seconds until it is truthy; return it.
    ``condition`` may be a coroutine function (a database read), awaited at each look.

    Raises AssertionError after ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)
