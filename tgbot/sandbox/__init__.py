"""In-memory Telegram Bot API emulator: the bot talks to it exactly as to Telegram.

``TelegramEmulator`` holds the state and answers Bot API calls; ``EmulatorRequest`` plugs
it into PTB in-process; ``EmulatorServer`` serves it over HTTP on loopback.
"""

from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import ApiError, Caps, Faults, SandboxError, SandboxUser
from tgbot.sandbox.request import EmulatorRequest
from tgbot.sandbox.server import EmulatorServer

__all__ = [
    "ApiError",
    "Caps",
    "EmulatorRequest",
    "EmulatorServer",
    "Faults",
    "SandboxError",
    "SandboxUser",
    "TelegramEmulator",
]
