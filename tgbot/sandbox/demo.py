"""``tgbot demo``: the sandbox Telegram, the real bot on it, and a web page to use it.

One asyncio process runs the Bot API emulator over HTTP on loopback, the bot connected to
it through its normal HTTP transport with long polling (exactly as with Telegram), and a
web page on the same port where one can be a wallet user, an agent in the agents' forum
group, or an admin. :func:`start_demo` is what tests start; :func:`run_demo` is the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from telegram import Update

from tgbot.config import Config
from tgbot.sandbox.demo_web import LiveFeed, WalletRef, web_handlers
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps, Faults, SandboxChat, SandboxUser
from tgbot.sandbox.server import EmulatorServer

_LOGGER = logging.getLogger(__name__)

#: The sandbox bot's token (only the emulator knows it; no real Telegram is reached).
DEMO_TOKEN = "7000000001:DEMO-sandbox-not-a-real-token"
DEMO_BOT_USERNAME = "upay_support_bot"
DEMO_BOT_NAME = "U钱包客服 U-Pay Support"
AGENTS_GROUP_TITLE = "U钱包客服 · Agents"


@dataclass(frozen=True)
class DemoPerson:
    """A seeded Telegram account the page can act as."""

    user_id: int
    first_name: str
    last_name: str | None
    language_code: str
    phone_number: str
    role: str  # "user", "agent" or "admin"


#: Wallet users (two Chinese, two English Telegram apps), one agent and one admin.
DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(10001, "李雷", None, "zh-hans", "+8613800138001", "user"),
    DemoPerson(10002, "韩梅梅", None, "zh-hans", "+8613800138002", "user"),
    DemoPerson(10003, "Alice", "Smith", "en", "+14155550103", "user"),
    DemoPerson(10004, "Bob", "Jones", "en-GB", "+447700900104", "user"),
    DemoPerson(20001, "Agent Wang", None, "zh-hans", "+8613800138101", "agent"),
    DemoPerson(30001, "Admin", "Zhao", "en", "+8613800138201", "admin"),
)


@dataclass
class DemoWorld:
    """What :func:`seed_demo` created: the people and the agents' forum group."""

    people: list[DemoPerson]
    agents_group: SandboxChat

    def of_role(self, role: str) -> list[DemoPerson]:
        """Return the seeded people with ``role``."""
        return [p for p in self.people if p.role == role]

    @property
    def users(self) -> list[DemoPerson]:
        """Return the wallet users."""
        return self.of_role("user")

    @property
    def agent(self) -> DemoPerson:
        """Return the demo agent."""
        return self.of_role("agent")[0]

    @property
    def admin(self) -> DemoPerson:
        """Return the demo admin."""
        return self.of_role("admin")[0]

    def person(self, user_id: int) -> DemoPerson | None:
        """Return the seeded person with ``user_id``, if any."""
        return next((p for p in self.people if p.user_id == user_id), None)


def demo_emulator(*, caps: Caps | None = None, faults: Faults | None = None) -> TelegramEmulator:
    """Return a strict emulator with Telegram's real caps (unless given others)."""
    return TelegramEmulator(
        DEMO_TOKEN,
        bot_username=DEMO_BOT_USERNAME,
        bot_first_name=DEMO_BOT_NAME,
        strict=True,
        caps=caps or Caps(),
        faults=faults,
        # As on Telegram: the bot, an admin that manages topics, may write in a closed topic
        # (the user's rating of a closed ticket reaches its topic).
        closed_topic_admin_bypass=True,
    )


def seed_demo(emu: TelegramEmulator) -> DemoWorld:
    """Create the demo people and the agents' forum supergroup (the bot is its admin)."""
    people = list(DEMO_PEOPLE)
    created: list[SandboxUser] = []
    for person in people:
        created.append(
            emu.add_user(
                person.first_name,
                last_name=person.last_name,
                language_code=person.language_code,
                phone_number=person.phone_number,
                user_id=person.user_id,
            )
        )
    agent_ids = [p.user_id for p in people if p.role == "agent"]
    admin_ids = [p.user_id for p in people if p.role == "admin"]
    group = emu.add_forum_group(
        AGENTS_GROUP_TITLE,
        admins=[*agent_ids, *admin_ids],
        bot_is_admin=True,
        bot_rights={
            "can_manage_topics": True,
            "can_delete_messages": True,
            "can_pin_messages": True,
        },
    )
    return DemoWorld(people=people, agents_group=group)


def demo_config(config: Config, server: EmulatorServer, world: DemoWorld, db_path: Path) -> Config:
    """Return ``config`` pointed at the sandbox: its token, URLs, group, admin and database."""
    return config.replace(
        token=DEMO_TOKEN,
        api_base_url=server.base_url,
        api_file_url=server.base_file_url,
        db_path=db_path,
        database_url=None,  # the demo's own file, never a real bot's PostgreSQL
        demo_wallet_db_path=None,  # the demo wallet's own file beside it (<db>.wallet.db)
        admin_ids=frozenset({world.admin.user_id}),
        webhook_url=None,
        demo=True,
        wallet_public_url=server.root_url,
        agent_chats=((world.agents_group.id, None),),  # one team for both languages
    )


@dataclass
class DemoHandle:
    """A running demo: the emulator, its HTTP server (page included) and the bot."""

    emu: TelegramEmulator
    server: EmulatorServer
    world: DemoWorld
    app: object | None = None
    wallet: WalletRef = field(default_factory=WalletRef)
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """Return the page's address."""
        return f"{self.server.root_url}/"

    async def stop(self) -> None:
        """Stop polling, the bot (database closed), then the server; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self.wallet.backend = None  # the page's wallet panel stops reading it
        app, self.app = self.app, None
        try:
            if app is not None:
                await _stop_app(app)
        finally:
            LiveFeed.close_all(self.emu)
            await self.server.stop()


async def _stop_app(app: object) -> None:
    from tgbot.app import WalletApplication

    assert isinstance(app, WalletApplication)
    try:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
    finally:
        await app.shutdown()


async def start_demo(
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    db_path: Path,
    emu: TelegramEmulator | None = None,
    poll_timeout: int = 10,
) -> DemoHandle:
    """Start the emulator, the page and the real bot on it; return the running demo.

    Args:
        config: the bot's configuration (token, URLs, group and admin are replaced).
        host: the address to listen on (loopback unless you mean to share the page).
        port: the port of the page and of the emulated Bot API (0 picks a free one).
        db_path: the demo's own database (the demo wallet's is ``<db>.wallet.db`` beside it).
        emu: an emulator to use (tests pass one with caps off); a fresh strict one by default.
        poll_timeout: the long-polling timeout in seconds, as with Telegram.
    """
    from tgbot.app import build_application

    emu = emu or demo_emulator()
    world = seed_demo(emu)
    server = EmulatorServer(emu)
    wallet = WalletRef()  # the page's wallet panel reads the bot's backend through it
    server.extra_handlers.extend(web_handlers(emu, world, wallet))
    await server.start(host, port)
    handle = DemoHandle(emu=emu, server=server, world=world, wallet=wallet)
    try:
        app = build_application(demo_config(config, server, world, db_path))
        handle.app = app
        await app.initialize()
        wallet.backend = app.backend
        for person in world.people:
            if person.role == "agent":  # the roster lives in the bot's database
                # The roster name signs replies to users ("客服 · Wang"): the work name.
                name = person.first_name.removeprefix("Agent ")
                await app.repos.agents.add(person.user_id, name, world.admin.user_id)
        if app.config.backend == "demo":
            from tgbot.backend.pages import wallet_handlers

            # The wallet's own pages (reset link, secure card entry) on the same port.
            server.app.add_handlers(r".*", wallet_handlers(app.backend, sms_outbox=True))
        assert app.updater is not None
        await app.updater.start_polling(
            timeout=poll_timeout, allowed_updates=Update.ALL_TYPES, drop_pending_updates=False
        )
        await app.start()
        seed = getattr(app.backend, "seed", None)
        if seed is not None:  # the demo wallet: seeded before anyone sees the page
            await seed()
        wallet.ready.set()
    except BaseException:
        await handle.stop()
        raise
    return handle


async def _serve(config: Config, host: str, port: int, db_path: Path) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        handle = await start_demo(config, host=host, port=port, db_path=db_path)
        try:
            print(f"Demo running: open {handle.url}  (Ctrl-C to stop)", flush=True)
            await stop.wait()
            print("Stopping the demo...", file=sys.stderr, flush=True)
        finally:
            await handle.stop()
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
    return 0


def run_demo(config: Config, *, host: str = "127.0.0.1", port: int = 8765, db_path: Path) -> int:
    """Run the demo until Ctrl-C or SIGTERM; return the exit code."""
    if config.log_level != "DEBUG":
        # The job scheduler logs every run at INFO: noise on a demo's console.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        return asyncio.run(_serve(config, host, port, db_path))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"error: port {port} on {host} is already in use (another `tgbot demo`?): "
                "stop it, or pick another port with --port",
                file=sys.stderr,
            )
        else:
            print(f"error: cannot start the demo on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
