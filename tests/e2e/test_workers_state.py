"""Work outside a user's updates with several workers on one PostgreSQL (issue 22): the
card-binding watch and the privacy gate.

Two worker processes, each on its own webhook port; the test routes every update to the
worker it picks (as a load balancer may), so a user's steps, the page they open and the
watch that follows them land on different workers, and a worker is killed -9 mid-way.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path

import asyncpg
import httpx

from tests.e2e.test_process import ProcessBot, _free_port, _texts, server  # noqa: F401
from tests.support.waiting import wait_until
from tgbot.backend.demo_store import open_wallet_database
from tgbot.sandbox.models import Faults
from tgbot.sandbox.server import EmulatorServer

LEASE_TTL = 3.0
SECRET = "workers-test-secret"
DEPOSIT = "To check that the card is yours, U-Pay sent a test deposit"
OPEN_SECURE = "Tap the button to open U-Pay's secure page"
CARDS = "Your bound cards:"
BEING_DELETED = "Your data is being deleted. I will tell you when it is done."
DONE = "✅ Your data has been deleted"


class Workers:
    """Two workers of one deployment (one PostgreSQL schema, one demo wallet, one wallet
    page address) and the routing of the emulator's webhook deliveries between them."""

    def __init__(self, server: EmulatorServer, children, postgres_url: str, tmp_path: Path):  # noqa: F811
        self.emu = server.emulator
        self.postgres_url = postgres_url
        self.wallet_path = tmp_path / "wallet.db"
        self.wallet_url = f"http://127.0.0.1:{_free_port()}"
        self.ports: dict[int, int] = {}
        self.bots: list[ProcessBot] = []
        for i in range(2):
            port = _free_port()
            env = {
                "TGBOT_DATABASE_URL": postgres_url,
                "TGBOT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
                "TGBOT_WEBHOOK_PORT": str(port),
                "TGBOT_WEBHOOK_SECRET": SECRET,
                "TGBOT_LEASE_TTL": str(LEASE_TTL),
                "TGBOT_RECOVER_AFTER": "4",
                "TGBOT_DEMO_WALLET_DB_PATH": str(self.wallet_path),  # one wallet, ...
                "TGBOT_WALLET_PUBLIC_URL": self.wallet_url,  # ... its pages at one address
            }
            bot = ProcessBot(
                server, children, tmp_path / "wallet.db", tmp_path / f"w{i}.log", **env
            )
            self.bots.append(bot)
            self.ports[id(bot)] = port

    async def start(self) -> tuple[ProcessBot, ProcessBot]:
        """Start both; return (the duties holder, the other)."""
        # The demo wallet's file is migrated before two processes open it at once.
        await (await open_wallet_database(self.wallet_path)).close()
        for bot in self.bots:
            await bot.start("tgbot", "run")
        for bot in self.bots:
            await wait_until(
                lambda b=bot: "Application started" in b.log_path.read_text(), 60, "a worker"
            )
        deadline = time.monotonic() + 30
        while (holder := await self.holder()) is None:
            assert time.monotonic() < deadline, "no worker took the duties"
            await asyncio.sleep(0.05)
        first, second = self.bots
        return (first, second) if holder == first.proc.pid else (second, first)

    async def holder(self) -> int | None:
        """Return the pid of the worker that holds the duties lease now."""
        conn = await asyncpg.connect(self.postgres_url)
        try:
            holder = await conn.fetchval(
                "SELECT holder FROM leases WHERE name = 'duties' "
                "AND expires_at > extract(epoch FROM clock_timestamp())"
            )
        finally:
            await conn.close()
        return int(holder.split(":")[1]) if holder else None

    async def send(self, bot: ProcessBot, user_id: int, text: str) -> None:
        """The user sends ``text``; it reaches ``bot``."""
        self.emu.webhook["url"] = f"http://127.0.0.1:{self.ports[id(bot)]}/hook"
        self.emu.user_send(user_id, text)
        await self.emu.wait_fetched(30)

    async def press(self, bot: ProcessBot, user_id: int, label: str) -> None:
        """The user presses the button ``label`` of the latest message that has it."""
        self.emu.webhook["url"] = f"http://127.0.0.1:{self.ports[id(bot)]}/hook"
        self.emu.press_button(user_id, user_id, _with_button(self.emu, user_id, label), label)
        await self.emu.wait_fetched(30)

    def logs(self) -> str:
        return "".join(bot.log_path.read_text() for bot in self.bots)


def _buttons(message: dict) -> list[dict]:
    return [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def _with_button(emu, user_id: int, label: str) -> int:
    for message in reversed(emu.bot_messages(user_id)):
        if any(button["text"] == label for button in _buttons(message)):
            return message["message_id"]
    raise AssertionError(f"no button {label!r}")


def _last(emu, user_id: int) -> str:
    texts = _texts(emu, user_id)
    return texts[-1] if texts else ""


def _count(emu, user_id: int, start: str) -> int:
    return sum(text.startswith(start) for text in _texts(emu, user_id))


def _secure_page(emu, user_id: int) -> str:
    """Return the address of the secure page the user's latest message links to."""
    return next(b["url"] for b in _buttons(emu.bot_messages(user_id)[-1]) if "url" in b)


async def _enter_card(url: str, number: str) -> None:
    """Type a card number on a secure card page."""
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.post(url, data={"card_number": number})
    assert page.status_code == 200 and "Check the deposit" in page.text


def _deposit_sent(wallet: Path, phone: str) -> str:
    """Return the amount of the latest test deposit the wallet texted to ``phone``."""
    with sqlite3.connect(wallet) as db:
        text = db.execute(
            "SELECT text FROM demo_sms WHERE phone = ? ORDER BY id DESC LIMIT 1", (phone,)
        ).fetchone()[0]
    return re.search(r"¥(0\.\d\d)", text).group(1)


async def _link(workers: Workers, worker, emu, user: int, name: str) -> None:
    """Link ``name``'s demo account (``/start link_demo_<name>``) through ``worker``."""
    await workers.send(worker, user, f"/start link_demo_{name.lower()}")
    await wait_until(lambda: len(_texts(emu, user)) >= 1, 60, f"{name} linked")


async def _open_secure_page(workers: Workers, worker, emu, user: int, name: str) -> str:
    """Through ``worker``: ``/cards``, then "Add a card"; return the secure page's link."""
    await workers.send(worker, user, "/cards")
    await wait_until(lambda: _last(emu, user).startswith(CARDS), 60, f"{name}'s cards")
    await workers.press(worker, user, "➕ Add a card")
    await wait_until(lambda: _last(emu, user).startswith(OPEN_SECURE), 60, f"{name}'s page")
    return _secure_page(emu, user)


async def test_the_card_watch_follows_the_stored_flow_and_outlives_its_worker(
    server: EmulatorServer,  # noqa: F811
    postgres_url: str,  # before children: the workers are killed before the schema is dropped
    children,
    tmp_path,
) -> None:
    workers = Workers(server, children, postgres_url, tmp_path)
    holder, other = await workers.start()
    emu = server.emulator
    alice = emu.add_user("Alice", language_code="en").id
    bob = emu.add_user("Bob", language_code="en").id

    # Alice opens the secure page through one worker, then goes back to her card list
    # through the other: the page she left is then filled in anyway.
    await _link(workers, other, emu, alice, "Alice")
    left_page = await _open_secure_page(workers, other, emu, alice, "Alice")
    await workers.send(holder, alice, "/cards")
    await wait_until(lambda: _last(emu, alice).startswith(CARDS), 60, "Alice's cards again")
    await _enter_card(left_page, "4242 4242 4242 4242")

    # Bob binds a card meanwhile, his page opened through the same worker: his watch tells
    # him (no earlier than one poll after Alice's card was entered).
    await _link(workers, other, emu, bob, "Bob")
    await _enter_card(
        await _open_secure_page(workers, other, emu, bob, "Bob"), "4242 4242 4242 4242"
    )
    await wait_until(lambda: _count(emu, bob, DEPOSIT) == 1, 30, "Bob asked for the deposit")
    await emu.settle(quiet=0.5, timeout=30)
    # Alice left that step: nothing asks her for a deposit of the card she abandoned.
    assert _count(emu, alice, DEPOSIT) == 0, _texts(emu, alice)
    # Bob's answer goes to the other worker, which finds his flow where the watch left it.
    amount = _deposit_sent(workers.wallet_path, "+447700900104")
    await workers.send(other, bob, amount)
    await wait_until(
        lambda: _count(emu, bob, "✅ Your Visa Bank card •••• 4242 is now bound") == 1, 60, "bound"
    )

    # Alice adds another card through the other worker, which dies before she enters it: the
    # watch does not die with it.
    await workers.press(other, alice, "➕ Add a card")
    await wait_until(lambda: _count(emu, alice, OPEN_SECURE) == 2, 60, "the second page")
    assert _last(emu, alice).startswith(OPEN_SECURE)
    page = _secure_page(emu, alice)
    await other.kill()
    await _enter_card(page, "5555 5555 5555 4444")
    await wait_until(lambda: _count(emu, alice, DEPOSIT) == 1, 30, "Alice asked for the deposit")
    assert "•••• 4444" in _texts(emu, alice)[-1]
    amount = _deposit_sent(workers.wallet_path, "+14155550103")
    await workers.send(holder, alice, amount)
    await wait_until(lambda: "•••• 4444 is now bound" in _texts(emu, alice)[-1], 60, "bound")
    assert "Traceback" not in workers.logs()


async def test_the_privacy_gate_holds_on_every_worker_and_the_erasure_survives_its_worker(
    server: EmulatorServer,  # noqa: F811
    postgres_url: str,
    children,
    tmp_path,
) -> None:
    workers = Workers(server, children, postgres_url, tmp_path)
    holder, other = await workers.start()
    emu = server.emulator
    alice = emu.add_user("Alice", language_code="en").id
    await _link(workers, other, emu, alice, "Alice")
    await workers.send(other, alice, "/privacy")
    await wait_until(lambda: _has(emu, alice, "🗑 Delete my data"), 60, "/privacy")
    await workers.press(other, alice, "🗑 Delete my data")
    await wait_until(lambda: _has(emu, alice, "🗑 Yes, delete my data"), 60, "the confirmation")

    # Telegram is slow: Alice confirms through one worker and writes through the other while
    # her erasure runs.
    emu.faults = Faults(latency=1.0, methods=frozenset({"sendMessage", "editMessageText"}))
    await workers.press(other, alice, "🗑 Yes, delete my data")
    await workers.send(holder, alice, "hello, I need help with a refund")
    await wait_until(lambda: BEING_DELETED in _texts(emu, alice), 30, "the gate's answer")

    # The worker running the erasure dies while it tells her; another takes over and ends it.
    conn = await asyncpg.connect(postgres_url)
    try:

        async def step() -> str | None:
            return await conn.fetchval("SELECT step FROM erasures ORDER BY id DESC LIMIT 1")

        deadline = time.monotonic() + 30
        while await step() != "notify":
            assert time.monotonic() < deadline, f"the erasure is at {await step()}"
            await asyncio.sleep(0.05)
        assert await workers.holder() == holder.proc.pid
        await holder.kill()
        deadline = time.monotonic() + 60
        while await step() != "done":
            assert time.monotonic() < deadline, f"the erasure stays at {await step()}"
            await asyncio.sleep(0.05)
        await wait_until(lambda: _count(emu, alice, DONE) >= 1, 30, "Alice told")
        texts = _texts(emu, alice)
        assert texts.index(BEING_DELETED) < texts.index(
            next(t for t in texts if t.startswith(DONE))
        )
        # Nothing of hers was written back, by either worker.
        for sql in (
            "SELECT COUNT(*) FROM users WHERE id = $1",
            "SELECT COUNT(*) FROM ptb_user_data WHERE user_id = $1",
            "SELECT COUNT(*) FROM ptb_conversations WHERE key::jsonb @> to_jsonb($1::bigint)",
            "SELECT COUNT(*) FROM erasures WHERE user_id = $1",
        ):
            assert await conn.fetchval(sql, alice) == 0, sql
    finally:
        await conn.close()
    assert "Traceback" not in workers.logs()


def _has(emu, user_id: int, label: str) -> bool:
    try:
        _with_button(emu, user_id, label)
    except AssertionError:
        return False
    return True
