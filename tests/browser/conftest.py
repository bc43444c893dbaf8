"""Fixtures: the demo (emulator + page + real bot over HTTP) and headless Chromium on it.

Chromium is Debian's ``chromium`` package driven by Playwright with ``executable_path``:
no browser is ever downloaded. Tests skip only when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import FAST
from tests.harness import PTB_EXTRAS
from tgbot.config import Config
from tgbot.sandbox.demo import DemoHandle, demo_emulator, start_demo
from tgbot.sandbox.models import Caps

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def update_screenshots() -> bool:
    """Return whether tests should (re)write the screenshots in docs/."""
    return os.environ.get("UPDATE_SCREENSHOTS") == "1"


async def settled(demo: DemoHandle, timeout: float = 10.0) -> None:
    """Wait until the demo's bot has handled every update so far and sent what was due
    (a condition, not a quiet moment: a loaded machine can be quiet for a while mid-update)."""
    app = demo.app
    assert app is not None
    last_id = demo.emu._next_update_id - 1
    deadline = time.monotonic() + timeout
    while not (demo.emu.all_fetched() and await app.handled_up_to(last_id)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo's bot did not handle update {last_id}")
        await asyncio.sleep(0.005)
    if not await app.outbox.idle(timeout=max(0.1, deadline - time.monotonic())):
        raise TimeoutError("the demo's outbox still has messages to send")


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[DemoHandle]:
    """Start what ``tgbot demo`` starts (caps off for speed) on a free port and a tmp database."""
    handle = await start_demo(
        Config(**FAST),
        port=0,
        db_path=tmp_path / "demo.db",
        emu=demo_emulator(caps=Caps(enabled=False)),
        poll_timeout=1,
    )
    yield handle
    await handle.stop()
    assert [v for v in handle.emu.violations if v not in PTB_EXTRAS] == []


@pytest.fixture
def chromium() -> Path:
    """Return Debian's Chromium, or skip when it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    return CHROMIUM


@pytest.fixture
async def page(chromium: Path, demo: DemoHandle) -> AsyncIterator[object]:
    """Open the demo page in headless Chromium; fail the test on any page error."""
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 800}, locale="zh-CN"
            )
            tab = await context.new_page()
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.on(
                "console",
                lambda msg: errors.append(msg.text) if msg.type == "error" else None,
            )
            await tab.goto(demo.url)
            await tab.wait_for_selector("body[data-ready='1']")
            yield tab
            await context.close()
        finally:
            await browser.close()
    assert errors == []
