"""Fixtures: an emulator and a real PTB Bot wired to it in-process or over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from telegram import Bot

from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps
from tgbot.sandbox.request import EmulatorRequest
from tgbot.sandbox.server import EmulatorServer


@dataclass
class Wired:
    """An emulator and a Bot talking to it."""

    emu: TelegramEmulator
    bot: Bot


def in_process_bot(emu: TelegramEmulator) -> Bot:
    """Return a Bot whose requests go straight to ``emu``."""
    return Bot(emu.token, request=EmulatorRequest(emu), get_updates_request=EmulatorRequest(emu))


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    """Give a strict emulator with caps off."""
    emulator = TelegramEmulator(caps=Caps(enabled=False))
    yield emulator
    await emulator.aclose()


@pytest.fixture(params=["in_process", "http"])
async def wired(request: pytest.FixtureRequest, emu: TelegramEmulator) -> AsyncIterator[Wired]:
    """Give a Bot on the emulator through each transport."""
    if request.param == "in_process":
        async with in_process_bot(emu) as bot:
            yield Wired(emu, bot)
        return
    server = EmulatorServer(emu)
    await server.start()
    try:
        async with Bot(
            emu.token, base_url=server.base_url, base_file_url=server.base_file_url
        ) as bot:
            yield Wired(emu, bot)
    finally:
        await server.stop()
