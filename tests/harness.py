"""Tests that read like user sessions: ``await alice.send("/start")``, ``await alice.click(...)``.

:class:`BotHarness` runs the real application against the Bot API emulator (in-process
transport, or HTTP on loopback) and waits, after each action, until the bot has handled
every update and sent everything due in its outbox.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telegram import Update

from tgbot.app import WalletApplication, build_application
from tgbot.config import Config
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps
from tgbot.sandbox.request import EmulatorRequest
from tgbot.sandbox.server import EmulatorServer

TOKEN = "123456:TEST"

#: Parameters PTB itself adds that Telegram ignores (not our code's mistakes):
#: ``edit_message_reply_markup`` goes through ``_send_message``, which adds the default
#: ``parse_mode``.
PTB_EXTRAS = frozenset({"editMessageReplyMarkup: unknown parameter 'parse_mode'"})


@dataclass
class Shown:
    """A message as the user sees it."""

    raw: dict[str, Any]

    @property
    def text(self) -> str:
        """Return the plain text (or caption) of the message."""
        return self.raw.get("text") or self.raw.get("caption") or ""

    @property
    def message_id(self) -> int:
        """Return the message id."""
        return self.raw["message_id"]

    @property
    def buttons(self) -> list[str]:
        """Return the inline button labels, row after row."""
        rows = self.raw.get("reply_markup", {}).get("inline_keyboard", [])
        return [button["text"] for row in rows for button in row]

    @property
    def button_data(self) -> list[str]:
        """Return the callback data of the inline buttons."""
        rows = self.raw.get("reply_markup", {}).get("inline_keyboard", [])
        return [b.get("callback_data", "") for row in rows for b in row]


@dataclass
class UserSession:
    """One Telegram user talking to the bot in their private chat."""

    harness: BotHarness
    user_id: int
    first_name: str
    sent_ids: list[int] = field(default_factory=list)

    @property
    def emu(self) -> TelegramEmulator:
        """Return the emulator."""
        return self.harness.emu

    async def send(self, text: str, settle: bool = True) -> Shown:
        """Type ``text`` (a command or a message) and wait for the bot."""
        message = self.emu.user_send(self.user_id, text)
        self.sent_ids.append(message["message_id"])
        if settle:
            await self.harness.settle()
        return Shown(message)

    async def edit(self, message_id: int, text: str) -> None:
        """Edit one of my text messages and wait for the bot."""
        self.emu.user_edit(self.user_id, self.user_id, message_id, text)
        await self.harness.settle()

    async def click(self, label_or_data: str, message_id: int | None = None) -> str:
        """Press an inline button on the latest bot message that has it; return the query id."""
        if message_id is None:
            message_id = self._message_with_button(label_or_data)
        query_id = self.emu.press_button(self.user_id, self.user_id, message_id, label_or_data)
        await self.harness.settle()
        return query_id

    async def press_forged(self, message_id: int, data: str) -> str:
        """Send callback data that no button carries (a modified client can)."""
        query_id = self.emu.user_press(self.user_id, self.user_id, message_id, data)
        await self.harness.settle()
        return query_id

    async def share_contact(self, **kwargs: Any) -> None:
        """Share my contact card and wait for the bot."""
        self.emu.user_share_contact(self.user_id, **kwargs)
        await self.harness.settle()

    def _message_with_button(self, label_or_data: str) -> int:
        for message in reversed(self.emu.bot_messages(self.user_id)):
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            for row in rows:
                for button in row:
                    if label_or_data in (button.get("text"), button.get("callback_data")):
                        return message["message_id"]
        raise AssertionError(f"no visible button {label_or_data!r}; last: {self.texts[-3:]}")

    @property
    def messages(self) -> list[Shown]:
        """Return the bot's visible messages in my chat, oldest first."""
        return [Shown(m) for m in self.emu.bot_messages(self.user_id)]

    @property
    def texts(self) -> list[str]:
        """Return the texts of the bot's visible messages."""
        return [m.text for m in self.messages]

    def shown(self, message_id: int) -> Shown:
        """Return one of the bot's messages in my chat as I see it now (edits included)."""
        return Shown(self.emu.message(self.user_id, message_id).data)

    @property
    def last_message(self) -> Shown:
        """Return the bot's latest visible message."""
        return Shown(self.emu.last_bot_message(self.user_id))

    @property
    def buttons(self) -> list[str]:
        """Return the button labels of the bot's latest message."""
        return self.last_message.buttons

    def answer_of(self, query_id: str) -> str | None:
        """Return the text the bot answered a button press with (toast), if any."""
        answer = self.emu.callback_answers.get(query_id)
        return answer.get("text") if answer else None


class BotHarness:
    """The real bot wired to the emulator, started and stopped by tests.

    Its records are in the SQLite file ``db_path``, or with ``database_url`` in PostgreSQL,
    as ``TGBOT_DATABASE_URL`` does; the demo wallet keeps its own file beside ``db_path``
    (``bot.db`` -> ``bot.wallet.db``).
    """

    def __init__(
        self,
        db_path: Path,
        emu: TelegramEmulator | None = None,
        *,
        database_url: str | None = None,
        http: bool = False,
        extra_flows: list | None = None,
        extra_handlers: list | None = None,
        webhook_port: int | None = None,
        **config: Any,
    ) -> None:
        self.emu = emu or TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
        self.db_path = db_path
        self.database_url = database_url
        self.http = http
        self.extra_flows = extra_flows
        self.extra_handlers = extra_handlers or []
        self.webhook_port = webhook_port
        self.config_overrides = config
        self.server: EmulatorServer | None = None
        self.app: WalletApplication | None = None

    @property
    def violations(self) -> list[str]:
        """Return the strict-mode reports caused by our code (PTB's own extras left out)."""
        return [v for v in self.emu.violations if v not in PTB_EXTRAS]

    def config(self) -> Config:
        """Return the configuration the bot runs with."""
        settings: dict[str, Any] = {
            "token": TOKEN,
            "db_path": self.db_path,
            "database_url": self.database_url,
        }
        if self.server is not None:
            settings["api_base_url"] = self.server.base_url
            settings["api_file_url"] = self.server.base_file_url
        settings.update(self.config_overrides)
        return Config(**settings)

    async def start(self) -> BotHarness:
        """Start the bot (initialize, polling, processing, outbox)."""
        if self.http and self.server is None:
            self.server = EmulatorServer(self.emu)
            await self.server.start()
        flows = [build() for build in self.extra_flows or []]
        if self.http:
            app = build_application(self.config(), extra_flows=flows)
        else:
            app = build_application(
                self.config(),
                request=EmulatorRequest(self.emu),
                get_updates_request=EmulatorRequest(self.emu, read_timeout=None),
                extra_flows=flows,
            )
        self.app = app
        for handler_factory in self.extra_handlers:
            app.add_handlers(handler_factory(), group=5)
        await app.initialize()
        if self.webhook_port:
            await app.updater.start_webhook(
                listen="127.0.0.1",
                port=self.webhook_port,
                url_path="hook",
                webhook_url=f"http://127.0.0.1:{self.webhook_port}/hook",
                secret_token="s3cret-token",
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await app.updater.start_polling(
                poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES
            )
        await app.start()
        return self

    async def stop(self) -> None:
        """Stop the bot gracefully (as on Ctrl-C)."""
        app, self.app = self.app, None
        if app is None:
            return
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def close(self) -> None:
        """Stop the bot and the HTTP server."""
        await self.stop()
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def user(
        self, first_name: str = "Alice", language_code: str | None = "en", **kw: Any
    ) -> UserSession:
        """Create a Telegram user who can talk to the bot."""
        user = self.emu.add_user(first_name, language_code=language_code, **kw)
        return UserSession(self, user.id, first_name)

    async def wait_until(
        self,
        predicate: Callable[[], object],
        what: str,
        timeout: float = 10.0,
        *,
        settled: bool = True,
    ) -> None:
        """Wait until ``predicate()`` is true, checked whenever the bot has settled (or, with
        ``settled=False``, all along: for a moment in the middle of handling an update)."""
        deadline = time.monotonic() + timeout
        while True:
            if settled:
                await self.settle(timeout=max(0.1, deadline - time.monotonic()))
            if predicate():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def settle(self, timeout: float = 30.0, *, outbox: bool = True) -> None:
        """Wait until every update so far is handled and (unless ``outbox`` is False) the
        outbox has nothing due."""
        app = self.app
        assert app is not None, "the bot is not running"
        last_id = self.emu._next_update_id - 1
        deadline = time.monotonic() + timeout
        while True:
            if self.emu.all_fetched() and await app.handled_up_to(last_id):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not handle update {last_id} in {timeout}s")
            await asyncio.sleep(0.005)
        if not outbox:
            return
        assert app.outbox is not None
        if not await app.outbox.idle(
            timeout=max(0.1, deadline - time.monotonic()), include_scheduled=True
        ):
            raise TimeoutError("the outbox still has messages to send")
