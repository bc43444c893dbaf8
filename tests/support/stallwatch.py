"""Opt-in pytest plugin: when a test's event loop stops turning for more than two seconds,
write every thread's stack, once a second while it lasts, to stderr (shown with a failing
test) and to ``$STALLWATCH_FILE`` (default ``stallwatch.txt``).

For failures that read "nothing happened for N seconds": it tells a loop blocked by a call
that never returns from a test spinning without awaiting (the browser screens test once
kept the bot from running that way). Use::

    .venv/bin/python -m pytest -p tests.support.stallwatch tests/browser/test_screens.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator

import pytest_asyncio

#: Seconds without a heartbeat that count as a stall.
STALL = 2.0
#: Most stack dumps per stall (one a second).
DUMPS = 30


class _State:
    beat = time.monotonic()  # the loop's last heartbeat
    watching = False  # a test is running
    dumps = 0  # stacks written in the current stall


_state = _State()


def _dump(stalled: float) -> str:
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = [f"=== event loop stalled for {stalled:.1f} s at {time.strftime('%H:%M:%S')}"]
    for ident, frame in sys._current_frames().items():
        if ident != threading.get_ident():  # not this watcher
            stack = "".join(traceback.format_stack(frame))
            parts.append(f"--- thread {names.get(ident, ident)}\n{stack}")
    return "\n".join(parts) + "\n"


def _watch() -> None:
    path = os.environ.get("STALLWATCH_FILE", "stallwatch.txt")
    while True:
        time.sleep(1.0)
        if not _state.watching:
            continue
        stalled = time.monotonic() - _state.beat
        if stalled < STALL:
            _state.dumps = 0
        elif _state.dumps < DUMPS:
            _state.dumps += 1
            text = _dump(stalled)
            sys.stderr.write(text)
            with open(path, "a", encoding="utf-8") as out:
                out.write(text)


threading.Thread(target=_watch, name="stallwatch", daemon=True).start()


@pytest_asyncio.fixture(autouse=True)
async def _stallwatch_heartbeat() -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            _state.beat = time.monotonic()
            await asyncio.sleep(0.1)

    _state.beat = time.monotonic()
    task = asyncio.ensure_future(beat())
    _state.watching = True
    try:
        yield
    finally:
        _state.watching = False
        task.cancel()
