"""The bot as a separate process on the emulator over HTTP: kill -9, restart, continue.

These are the durability guarantees of DESIGN sections 3-4: conversation state on disk
within a second, every received update handled exactly once across a hard kill, one
instance per database; and a stop (Ctrl-C) at any moment of start-up is clean.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.harness import TOKEN
from tests.support.waiting import wait_until
from tgbot.config import demo_wallet_beside
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps, Faults
from tgbot.sandbox.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]


class ProcessBot:
    """Runs ``python -m tests.support.survey`` (the real bot plus test flows) as a child.

    The child is started through the ``children`` fixture: whatever the test's outcome, its
    process group is killed when the test ends.
    """

    def __init__(self, server: EmulatorServer, children, db_path: Path, log_path: Path, **env: str):
        self.server = server
        self.children = children
        self.db_path = db_path
        self.log_path = log_path
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, module: str = "tests.support.survey", *args: str) -> None:
        env = {
            **os.environ,
            "TGBOT_TOKEN": TOKEN,
            "TGBOT_API_BASE_URL": self.server.base_url,
            "TGBOT_DB_PATH": str(self.db_path),
            "TGBOT_RATE_OVERALL_PER_SECOND": "10000",
            "TGBOT_RATE_CHAT_PER_SECOND": "10000",
            "TGBOT_RUN_DEMO_WALLET": "true",  # `tgbot run` on the demo wallet, on purpose
            # ... with its pages on a free port (8766 may be taken by another run).
            "TGBOT_WALLET_PUBLIC_URL": f"http://127.0.0.1:{_free_port()}",
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.proc = await self.children.spawn(
                sys.executable, "-m", module, *args, env=env, cwd=ROOT, stdout=log, stderr=log
            )

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()

    async def interrupt(self) -> int:
        """Ctrl-C; return the exit code (fail with the end of the log if it does not stop)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            tail = self.log_path.read_text()[-3000:]
            raise AssertionError(f"running 30 s after Ctrl-C; the log ends:\n{tail}") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def on_disk(db_path: Path, sql: str, *params: object) -> int:
    """Return the first column of ``sql``'s row, read from the running bot's database."""
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, params).fetchone()[0]


@pytest.fixture
async def server():
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    srv = EmulatorServer(emu)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def process_bot(server, children, tmp_path):
    """Return a factory of :class:`ProcessBot` children (killed when the test ends)."""

    def factory(db_name: str = "bot.db", log_name: str = "bot.log", **env: str) -> ProcessBot:
        return ProcessBot(server, children, tmp_path / db_name, tmp_path / log_name, **env)

    return factory


def _texts(emu: TelegramEmulator, user_id: int) -> list[str]:
    return [m.get("text", "") for m in emu.bot_messages(user_id)]


async def test_user_continues_a_flow_after_graceful_stop_and_after_kill_9(server, process_bot):
    emu = server.emulator
    bot = process_bot()
    alice = emu.add_user("Alice", language_code="en")
    await bot.start()
    emu.user_send(alice.id, "/survey")
    await wait_until(lambda: "Step 1/3: pick a colour" in _texts(emu, alice.id), what="step 1")
    menu = emu.bot_messages(alice.id)[-1]["message_id"]

    # Graceful stop (Ctrl-C) mid-flow, then a new process on the same database.
    assert await bot.interrupt() == 0
    await bot.start()
    emu.press_button(alice.id, alice.id, menu, "Red")
    await wait_until(lambda: "Step 2/3: type a word" in _texts(emu, alice.id), what="step 2")

    # Hard kill once the state is on disk (within a second of the update, DESIGN 4): the
    # word step and the colour chosen in it.
    await wait_until(
        lambda: (
            on_disk(
                bot.db_path,
                "SELECT COUNT(*) FROM ptb_conversations WHERE name = 'survey' AND state LIKE ?",
                "%survey:word%",
            )
            and on_disk(
                bot.db_path,
                "SELECT COUNT(*) FROM ptb_user_data WHERE user_id = ? AND data LIKE ?",
                alice.id,
                '%"colour":"red"%',
            )
        ),
        what="the word step persisted",
    )
    await bot.kill()
    await bot.start()
    emu.user_send(alice.id, "kiwi")
    await wait_until(lambda: "Step 3/3: red kiwi?" in _texts(emu, alice.id), what="step 3")
    assert await bot.interrupt() == 0


async def test_every_update_is_handled_exactly_once_across_kill_9(server, process_bot):
    emu = server.emulator
    bot = process_bot(SLOW_SECONDS="0.3")
    users = [emu.add_user(f"User{i}", language_code="en") for i in range(3)]
    await bot.start()
    for n in range(8):
        for user in users:
            emu.user_send(user.id, f"/slow {n}")
    # Each chat is handled in order, 0.3 s an update: kill while most are still queued.
    await wait_until(
        lambda: all("slow 1 done" in _texts(emu, u.id) for u in users), what="first replies"
    )
    await wait_until(emu.all_fetched, what="all fetched")

    # Kill while the next updates sleep in their handlers, not in the instant between a
    # reply and its inbox mark (that window can repeat one reply: at-least-once sending):
    # that is when every reply sent so far has its update marked done.
    def replies_all_marked() -> bool:
        replied = sum(len(_texts(emu, u.id)) for u in users)
        done = on_disk(bot.db_path, "SELECT COUNT(*) FROM inbox WHERE done_at IS NOT NULL")
        return replied == done

    await wait_until(replies_all_marked, what="every reply so far marked done")
    await bot.kill()
    before = {u.id: _texts(emu, u.id) for u in users}
    replied_before = sum(len(texts) for texts in before.values())
    assert replied_before < 24, "the kill came too late to test anything"
    pending = on_disk(bot.db_path, "SELECT COUNT(*) FROM inbox WHERE done_at IS NULL")
    assert pending > 0  # fetched from Telegram (and confirmed) but not handled yet

    await bot.start()
    # A reply is sent before its update is marked done: once all 24 are marked, every
    # reply that will ever come (a duplicate too) has come.
    await wait_until(
        lambda: on_disk(bot.db_path, "SELECT COUNT(*) FROM inbox WHERE done_at IS NOT NULL") == 24,
        what="every update handled",
    )
    for user in users:
        counts = collections.Counter(_texts(emu, user.id))
        assert set(counts) == {f"slow {n} done" for n in range(8)}, counts  # nothing lost
        # Exactly once, except if a loaded machine delayed the kill into the instant between
        # a reply and its inbox mark: then that one reply (sent before the kill, the chat's
        # latest) repeats once (at-least-once sending, documented).
        again = [text for text, n in counts.items() if n > 1]
        assert again in ([], [before[user.id][-1]]), (counts, before[user.id])
        assert max(counts.values()) <= 2, counts
        order = [int(t.split()[1]) for t in _texts(emu, user.id)]
        assert order == sorted(order)
    assert await bot.interrupt() == 0


async def test_second_instance_on_the_same_database_refuses_to_start(server, process_bot):
    emu = server.emulator
    first = process_bot(log_name="one.log")
    await first.start()
    alice = emu.add_user("Alice", language_code="en")
    emu.user_send(alice.id, "/start")
    await wait_until(lambda: _texts(emu, alice.id), what="first instance answering")

    second = process_bot(log_name="two.log")
    await second.start("tgbot", "run")
    code = await asyncio.wait_for(second.proc.wait(), 30)
    assert code == 3
    log = second.log_path.read_text()
    assert "Another instance is already running" in log
    assert "Traceback" not in log
    # The first one is unharmed.
    emu.user_send(alice.id, "/help")
    await wait_until(lambda: len(_texts(emu, alice.id)) == 2, what="first instance still on")
    assert await first.interrupt() == 0


async def test_tgbot_run_answers_against_a_bot_api_server(server, process_bot):
    """``TGBOT_TOKEN=... TGBOT_API_BASE_URL=http://127.0.0.1:PORT/bot tgbot run`` works."""
    emu = server.emulator
    bot = process_bot()
    await bot.start("tgbot", "run")
    alice = emu.add_user("Alice", language_code="en")
    emu.user_send(alice.id, "/start")
    await wait_until(lambda: _texts(emu, alice.id), what="an answer")
    assert _texts(emu, alice.id)[0].startswith("Hello, Alice!")
    methods = {method for method, _ in emu.calls}
    assert {"getMe", "getUpdates", "sendMessage", "setMyCommands"} <= methods
    # Once started, the heap (PTB, the catalogs, the router...) is out of the collector's view.
    started = r"Started: (\d+) objects left out of garbage collection"
    await wait_until(lambda: re.search(started, bot.log_path.read_text()), what="the freeze")
    assert await bot.interrupt() == 0
    log = bot.log_path.read_text()
    assert "Traceback" not in log
    assert TOKEN.split(":")[1] not in log  # the token never reaches the log
    frozen = re.search(started, log)
    assert frozen is not None and int(frozen[1]) > 50_000


async def test_debug_log_of_tgbot_run_has_no_token(server, process_bot, tmp_path):
    """Finding 12 of the security review: PTB logs ``Set Bot API URL: .../bot<token>`` and
    httpx every request URL at DEBUG; the log shows neither the token nor what users typed."""
    emu = server.emulator
    bot = process_bot(TGBOT_LOG_LEVEL="DEBUG")
    await bot.start("tgbot", "run")
    alice = emu.add_user("Alice", language_code="en")
    emu.user_send(alice.id, "/start")
    emu.user_send(alice.id, "my card 4111 1111 1111 1111 and my code 482913")
    await wait_until(lambda: len(_texts(emu, alice.id)) >= 2, what="two answers")
    assert await bot.interrupt() == 0
    log = (tmp_path / "bot.log").read_text()
    assert "Set Bot API URL" in log and "<redacted>" in log  # DEBUG records are there
    assert TOKEN not in log and f"bot{TOKEN.split(':')[0]}:" not in log
    assert "4111 1111 1111 1111" not in log and "482913" not in log


def _log_problems(log: str) -> list[str]:
    """Return the log lines that are not plain INFO records (warnings, errors, tracebacks)."""
    return [line for line in log.splitlines() if line and " INFO " not in line]


@pytest.mark.parametrize(
    "slow_call",
    [
        "getMe",  # initialize: PTB's bootstrap
        "deleteWebhook",  # the updater starting to poll
        "setMyCommands",  # start(): the first reply is out, the command menus not yet
    ],
)
async def test_ctrl_c_during_start_up_stops_cleanly(server, process_bot, slow_call):
    """Ctrl-C while the bot is still starting: start-up completes, then it stops as usual
    (exit 0, nothing in the log but INFO lines, no task left half-started)."""
    emu = server.emulator
    emu.faults = Faults(latency=1.0, methods=frozenset({slow_call}))
    bot = process_bot()
    await bot.start("tgbot", "run")
    alice = emu.add_user("Alice", language_code="en")
    emu.user_send(alice.id, "/start")
    await wait_until(lambda: slow_call in [m for m, _ in emu.calls], what=f"{slow_call} called")
    if slow_call == "setMyCommands":
        # Updates are handled from the moment PTB's start() runs, before ours is done.
        await wait_until(lambda: _texts(emu, alice.id), what="the first reply")
    assert await bot.interrupt() == 0
    log = bot.log_path.read_text()
    assert _log_problems(log) == []
    assert "Stopping as soon as start-up is complete" in log
    methods = [m for m, _ in emu.calls]
    if slow_call == "getMe":  # stopped right after initialize: the updater never polled
        assert "getUpdates" not in methods
    if slow_call in ("getMe", "deleteWebhook"):  # nothing of the application started
        assert "Application started" not in log
    else:
        # Start-up was not cut short (the command menus were published: 3 calls), then the
        # application stopped as always.
        assert methods.count("setMyCommands") == 3
        assert "Application.stop() complete" in log
    with sqlite3.connect(bot.db_path) as db:  # the database was closed, not cut off
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_stop_signal_handled_as_start_up_ends_is_clean(server, process_bot):
    """The signal is handled in the very loop iteration in which start() returns: it is
    delivered after PTB's run_until_complete(start()) has finished, not in the middle of it
    (which left that call's stop callback to break the next one: exit 1, "Event loop stopped
    before Future completed", aiosqlite's "Event loop is closed")."""
    bot = process_bot(SURVEY_STOP_AS_START_ENDS="1")
    await bot.start()
    code = await asyncio.wait_for(bot.proc.wait(), 30)
    log = bot.log_path.read_text()
    assert (code, _log_problems(log)) == (0, [])
    assert "Stopping as soon as start-up is complete" in log
    assert "Application.stop() complete" in log


def _buttons(message: dict) -> list[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["text"] for row in rows for button in row]


async def test_a_refund_confirmed_just_before_a_crash_is_created_once(server, process_bot):
    """The wallet created the refund, then the bot died before it marked the press handled:
    at the restart the press is handled again and asks for the same refund (same key),
    which the wallet does not create a second time; the user gets its reference."""
    emu = server.emulator
    bot = process_bot()
    alice = emu.add_user("Alice", language_code="en", phone_number="+14155550103")
    await bot.start()

    def last() -> dict:
        messages = emu.bot_messages(alice.id)
        return messages[-1] if messages else {}

    async def step(action, expect: str) -> None:
        action()
        await wait_until(lambda: expect in last().get("text", ""), what=expect)

    await step(lambda: emu.user_send(alice.id, "/refund"), "To protect your account")
    await step(lambda: emu.user_share_contact(alice.id), "I sent a 6-digit code")
    await step(lambda: emu.user_send(alice.id, "246810"), "Which payment do you want a refund")
    assert last()["text"].startswith("✅ Verified")  # said in one message
    payment = last()["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    tx_id = payment.split(":", 2)[2]
    await step(
        lambda: emu.press_button(alice.id, alice.id, last()["message_id"], payment),
        "Why do you want a refund?",
    )
    await step(
        lambda: emu.press_button(alice.id, alice.id, last()["message_id"], "Charged twice"),
        "How much should be refunded?",
    )
    # Part of the amount: the wallet would accept a second refund of the same payment.
    await step(lambda: emu.user_send(alice.id, "1"), "Please confirm your refund request:")
    confirm = last()["message_id"]
    await wait_until(
        lambda: on_disk(
            bot.db_path,
            "SELECT COUNT(*) FROM ptb_conversations WHERE name = 'refund' AND state LIKE ?",
            "%refund:confirm%",
        ),
        what="the confirm step persisted",
    )

    # The answer to the press (the reference) never arrives: the bot dies while sending it.
    emu.faults = Faults(rate_timeout=1.0, methods=frozenset({"editMessageText"}))
    calls_before = len(emu.calls)
    emu.press_button(alice.id, alice.id, confirm, "✅ Request the refund")
    await wait_until(
        lambda: "editMessageText" in [m for m, _ in emu.calls[calls_before:]],
        what="the reference being sent",
    )
    await bot.kill()
    wallet_refunds = "SELECT COUNT(*) FROM demo_refunds WHERE transaction_id = ?"
    wallet_file = demo_wallet_beside(bot.db_path)  # the demo wallet's own database
    assert on_disk(wallet_file, wallet_refunds, tx_id) == 1
    assert on_disk(bot.db_path, "SELECT COUNT(*) FROM inbox WHERE done_at IS NULL") == 1

    emu.faults = Faults()
    await bot.start()
    await wait_until(
        lambda: on_disk(bot.db_path, "SELECT COUNT(*) FROM inbox WHERE done_at IS NULL") == 0,
        what="the press handled again",
    )
    assert on_disk(wallet_file, wallet_refunds, tx_id) == 1  # not a second refund
    with sqlite3.connect(wallet_file) as db:
        (refund_id,) = db.execute(
            "SELECT id FROM demo_refunds WHERE transaction_id = ?", (tx_id,)
        ).fetchone()
    db.close()
    with sqlite3.connect(bot.db_path) as db:
        mine = db.execute("SELECT id FROM refunds WHERE user_id = ?", (alice.id,)).fetchall()
    assert mine == [(refund_id,)]
    shown = emu.message(alice.id, confirm).data["text"]
    assert shown.startswith("✅ Refund requested: ") and f"Reference: {refund_id}." in shown, shown
    assert not any("cannot be refunded" in t for t in _texts(emu, alice.id))
    assert await bot.interrupt() == 0
