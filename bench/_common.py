"""Shared pieces of the benchmarks: machine facts, statistics, the bot in-process or as a child
process on the Bot API emulator, a slow wallet, synthetic accounts and a reply watcher.

Benchmarks report numbers; nothing here asserts on speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from telegram import Update

from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps, Faults

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:BENCH"
#: Rates high enough that the send lanes never wait (for runs that measure the bot, not caps).
UNCAPPED = {"rate_bulk_per_second": 100_000.0, "rate_chat_per_second": 100_000.0}


# -- machine and numbers -------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Return what the numbers were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_gb = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def percentiles(values: list[float], scale: float = 1000.0) -> dict[str, Any]:
    """Return n, p50, p95, p99, max and mean of ``values`` (seconds) in ms (``scale``)."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        return round(ordered[index] * scale, 1)

    return {
        "n": len(ordered),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1] * scale, 1),
        "mean": round(sum(ordered) / len(ordered) * scale, 1),
    }


def peak_rss_mb() -> float:
    """Return this process's peak resident set size in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb(pid: int | None = None) -> dict[str, float | None]:
    """Return the current (VmRSS) and peak (VmHWM) resident set of a process, in MB."""
    found: dict[str, float | None] = {"rss_mb": None, "peak_rss_mb": None}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                found["rss_mb"] = round(int(line.split()[1]) / 1024, 1)
            elif line.startswith("VmHWM:"):
                found["peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    return found


def machine_cpu_ticks() -> tuple[int, int]:
    """Return (busy, total) CPU ticks of the whole machine so far (/proc/stat; zeros if none).

    Two readings give how busy all cores were in between: on a shared machine, what else ran
    while a benchmark measured (its figures are only as good as that was low).
    """
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields) - idle, sum(fields)
    return 0, 0


def busy_between(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Return the share of all cores that was busy between two :func:`machine_cpu_ticks`."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 3) if total > 0 else None


def cpu_seconds() -> float:
    """Return this process's CPU time (user + system) in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class GcClock:
    """Time spent in the cyclic garbage collector from now on (its callbacks): a collection
    stops the whole process, so its wall time is CPU every running step paid for."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.longest = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._on_collect)

    def _on_collect(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.seconds += took
        self.longest = max(self.longest, took)
        self.collections[info["generation"]] += 1

    def report(self) -> dict[str, Any]:
        """Collections per generation, their total and the longest, in ms."""
        return {
            "collections_per_generation": list(self.collections),
            "ms": round(self.seconds * 1000, 1),
            "longest_ms": round(self.longest * 1000, 1),
        }


def emit(result: dict[str, Any]) -> None:
    """Print the benchmark's one JSON object."""
    print(json.dumps(result, ensure_ascii=False, sort_keys=False), flush=True)


def parser(description: str) -> argparse.ArgumentParser:
    """Return an argument parser with ``--small`` and ``--seed``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--small", action="store_true", help="a few seconds (CI smoke run)")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    return p


def runtime_options(p: argparse.ArgumentParser, loop: bool = True) -> None:
    """Add ``--loop`` (unless ``loop`` is False) and ``--gc``: the event loop and the garbage
    collector's settings the measured processes run with, by default ``tgbot run``'s (uvloop,
    :mod:`tgbot.heap`'s settings)."""
    if loop:
        p.add_argument(
            "--loop",
            choices=("uvloop", "asyncio"),
            default="uvloop",
            help="the event loop (uvloop: what tgbot run uses)",
        )
    p.add_argument(
        "--gc",
        choices=("tuned", "default"),
        default="tuned",
        help="the garbage collector's settings (tuned: tgbot run's, tgbot.heap)",
    )


def runtime_flags(args: argparse.Namespace) -> dict[str, bool]:
    """The child specs' ``uvloop`` and ``tuned_gc`` for :func:`runtime_options`' choices."""
    return {"uvloop": args.loop == "uvloop", "tuned_gc": args.gc == "tuned"}


def quiet_logs() -> None:
    """Keep the bot's INFO logs off the benchmark's output."""
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger().setLevel(logging.WARNING)


@contextlib.contextmanager
def workdir():
    """Yield a temporary directory for databases and logs."""
    with tempfile.TemporaryDirectory(prefix="tgbot-bench-") as path:
        yield Path(path)


# -- the wallet ----------------------------------------------------------------------------


class SlowWallet:
    """Wrap a wallet backend: every call waits ``lo``..``hi`` seconds; a fraction time out.

    A timed-out call waits ``timeout_s`` and raises ``Unavailable``, as the http adapter does
    when the wallet does not answer (one attempt; the real adapter retries, which only makes
    the wait longer).
    """

    def __init__(
        self,
        inner: Any,
        lo: float,
        hi: float,
        timeout_rate: float = 0.0,
        timeout_s: float = 5.0,
        seed: int = 1,
    ) -> None:
        self._inner = inner
        self._lo, self._hi = lo, hi
        self._timeout_rate = timeout_rate
        self._timeout_s = timeout_s
        self._rng = random.Random(seed)
        self.calls = 0
        self.timeouts = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(target) or name == "close":
            return target

        async def slow(*args: Any, **kwargs: Any) -> Any:
            from tgbot.backend.base import Unavailable

            self.calls += 1
            if self._timeout_rate and self._rng.random() < self._timeout_rate:
                self.timeouts += 1
                await asyncio.sleep(self._timeout_s)
                raise Unavailable("timeout")
            await asyncio.sleep(self._rng.uniform(self._lo, self._hi))
            return await target(*args, **kwargs)

        return slow


def _synthetic_accounts(count: int, now: float, tx_per_account: int) -> tuple[list, list]:
    from tgbot.backend.demo_store import WalletAccount, WalletTransaction

    rng = random.Random(7)
    merchants = ("美团外卖", "星巴克", "京东商城", "Amazon", "Uber", "Tesco")
    accounts, transactions = [], []
    for n in range(count):
        account_id = f"B{n:07d}"
        accounts.append(
            WalletAccount(
                account_id, f"Bench {n}", f"+1999{n:07d}", "active", None, None,
                Decimal("100.00"), None, now - 400 * 86400, now,
            )
        )  # fmt: skip
        for k in range(tx_per_account):
            transactions.append(
                WalletTransaction(
                    f"TXB{n:07d}{k:02d}", account_id, now - (k + 1) * 86400 - rng.random() * 3600,
                    Decimal(rng.randint(1000, 50000)).scaleb(-2), "CNY", rng.choice(merchants),
                    "success",
                )
            )  # fmt: skip
    return accounts, transactions


async def prepare_database(db_path: Path, accounts: int = 0, tx_per_account: int = 6) -> None:
    """Create and migrate the bot's database; seed the demo wallet (its own file beside it,
    ``<db>.wallet.db``) plus ``accounts`` synthetic active accounts ``B0000000``... with
    ``tx_per_account`` recent refundable payments each."""
    from storage import Database, migrate
    from tgbot.backend.demo import build_seed
    from tgbot.backend.demo_store import WalletStore, open_wallet_database
    from tgbot.config import demo_wallet_beside

    bot_db = await Database.open(db_path)
    try:
        await migrate(bot_db)
    finally:
        await bot_db.close()
    db = await open_wallet_database(demo_wallet_beside(db_path))
    try:
        repo = WalletStore(db)
        pepper = await repo.meta_setdefault("card_pepper", "bench-pepper")
        now = float(int(time.time()))
        demo_accounts, cards, transactions, tokens = build_seed(now, pepper)
        extra_accounts, extra_tx = _synthetic_accounts(accounts, now, tx_per_account)
        await repo.seed(
            seeded_at=now,
            accounts=[*demo_accounts, *extra_accounts],
            cards=cards,
            transactions=[*transactions, *extra_tx],
            tokens=tokens,
        )
    finally:
        await db.close()


def link_users(
    db_path: Path, users: list[tuple[int, str, str, str | None]], verified: bool = True
) -> None:
    """Insert bot users (id, first name, language, wallet account or None), linked and
    verified now, in one transaction (as if each had done ``/start link_...``)."""
    now = time.time()
    with contextlib.closing(sqlite3.connect(db_path)) as conn, conn:
        conn.executemany(
            "INSERT INTO users (id, first_name, telegram_language, wallet_account_id, "
            "created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [(uid, name, lang, account, now, now) for uid, name, lang, account in users],
        )
        if verified:
            conn.executemany(
                "INSERT INTO verifications (user_id, account_id, verified_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO NOTHING",
                [(uid, account, now) for uid, _, _, account in users if account],
            )


# -- the bot -------------------------------------------------------------------------------


def make_emulator(*, caps: bool = False, latency: float = 0.0, seed: int = 1) -> TelegramEmulator:
    """Return an emulator (strict off: benchmarks measure, tests check parameters)."""
    return TelegramEmulator(
        TOKEN,
        strict=False,
        caps=Caps() if caps else Caps(enabled=False),
        faults=Faults(latency=latency, rng=random.Random(seed)),
    )


def trim_emulator_log(emu: TelegramEmulator, keep: int = 1000) -> None:
    """Forget old entries of the emulator's call log (it keeps every call otherwise)."""
    if len(emu.calls) > keep * 2:
        del emu.calls[:-keep]


class InProcessBot:
    """The real application on an in-process emulator transport (as tests/harness.py)."""

    def __init__(self, db_path: Path, emu: TelegramEmulator, **config: Any) -> None:
        self.db_path = db_path
        self.emu = emu
        self.config = config
        self.app: Any = None

    async def start(self, wallet: dict[str, Any] | None = None) -> InProcessBot:
        from tgbot.app import build_application
        from tgbot.config import Config
        from tgbot.sandbox.request import EmulatorRequest

        settings = {"token": TOKEN, "db_path": self.db_path, **self.config}
        app = build_application(
            Config(**settings),
            request=EmulatorRequest(self.emu),
            get_updates_request=EmulatorRequest(self.emu, read_timeout=None),
        )
        self.app = app
        await app.initialize()
        if wallet:
            app.backend = SlowWallet(app.backend, **wallet)
        await app.updater.start_polling(
            poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES
        )
        await app.start()
        return self

    async def stop(self) -> None:
        app, self.app = self.app, None
        if app is None:
            return
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every update so far is handled and the outbox has nothing due."""
        app = self.app
        last_id = self.emu._next_update_id - 1
        deadline = time.monotonic() + timeout
        while not (self.emu.all_fetched() and await app.handled_up_to(last_id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"update {last_id} not handled in {timeout}s")
            await asyncio.sleep(0.005)
        await app.outbox.idle(timeout=max(0.1, deadline - time.monotonic()), include_scheduled=True)


class ChildBot:
    """The bot as a separate process (``python -m bench._child``, or ``module``: e.g.
    ``bench._bare``, bare PTB) on the emulator over HTTP.

    It prints ``READY`` when it polls, and on SIGTERM/SIGINT stops gracefully and prints one
    JSON line (its CPU time, peak RSS, profile path).
    """

    def __init__(
        self,
        base_url: str,
        db_path: Path,
        log_path: Path,
        module: str = "bench._child",
        **spec: Any,
    ) -> None:
        self.base_url = base_url
        self.db_path = db_path
        self.log_path = log_path
        self.module = module
        self.spec = spec
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.ready_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, wait_ready: bool = True, timeout: float = 60.0) -> ChildBot:
        env = {
            **os.environ,
            "TGBOT_TOKEN": TOKEN,
            "TGBOT_API_BASE_URL": self.base_url,
            "TGBOT_DB_PATH": str(self.db_path),
            "TGBOT_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            json.dumps(self.spec),
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        log.close()
        if wait_ready:
            await self.wait_ready(timeout)
        return self

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait for ``READY``; return seconds since start."""
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if line.strip() != b"READY":
            raise RuntimeError(f"bot child did not start: {line!r}; see {self.log_path}")
        self.ready_at = time.monotonic()
        return self.ready_at - self.started_at

    def rss(self) -> dict[str, float | None]:
        return rss_mb(self.pid)

    async def kill(self) -> None:
        """kill -9."""
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()

    async def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stop gracefully (SIGTERM); return the child's report."""
        assert self.proc is not None and self.proc.stdout is not None
        if self.proc.returncode is None:
            self.proc.terminate()
        out = await asyncio.wait_for(self.proc.stdout.read(), timeout)
        await self.proc.wait()
        for line in reversed(out.decode().splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        return {}


@contextlib.asynccontextmanager
async def emulator_server(emu: TelegramEmulator):
    """Serve ``emu`` over HTTP on loopback."""
    from tgbot.sandbox.server import EmulatorServer

    server = EmulatorServer(emu)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await emu.aclose()


# -- watching what users see ---------------------------------------------------------------


class Watcher:
    """Record, per chat, when the bot's messages and edits appear (what a user sees)."""

    def __init__(self, emu: TelegramEmulator, clock: Callable[[], float] = time.monotonic):
        self.emu = emu
        self.clock = clock
        self.bot_id = emu.bot.id
        #: chat id -> [(time, kind, message)]
        self.seen: dict[int, list[tuple[float, str, dict[str, Any]]]] = defaultdict(list)
        self._events: dict[int, asyncio.Event] = {}
        self.unsubscribe = emu.subscribe(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") not in ("message", "edit"):
            return
        message = event["message"]
        if message.get("from", {}).get("id") != self.bot_id:
            return
        chat_id = event["chat_id"]
        self.seen[chat_id].append((self.clock(), event["type"], message))
        waiter = self._events.pop(chat_id, None)
        if waiter is not None:
            waiter.set()

    def count(self, chat_id: int) -> int:
        return len(self.seen[chat_id])

    async def wait_beyond(self, chat_id: int, count: int, timeout: float) -> float | None:
        """Wait until chat ``chat_id`` has more than ``count`` events; return the time of the
        first new one (None on timeout)."""
        deadline = self.clock() + timeout
        while len(self.seen[chat_id]) <= count:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            waiter = self._events.setdefault(chat_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), remaining)
        return self.seen[chat_id][count][0]

    async def wait_all(self, before: dict[int, int], timeout: float = 60.0) -> None:
        """Wait until every chat in ``before`` (chat id -> count) has a new event; raise
        TimeoutError naming the first chat that does not within ``timeout`` s each."""
        for chat_id, count in before.items():
            if await self.wait_beyond(chat_id, count, timeout) is None:
                raise TimeoutError(f"no reply in chat {chat_id}")

    def button_message(self, chat_id: int, prefix: str) -> tuple[int, str] | None:
        """Return (message id, callback data) of the newest button whose data starts with
        ``prefix`` in the chat, as it shows now."""
        chat = self.emu.chats.get(chat_id)
        if chat is None:
            return None
        for message_id in sorted(chat.messages, reverse=True)[:10]:
            stored = chat.messages[message_id]
            if stored.deleted or stored.sender_id != self.bot_id:
                continue
            for row in stored.data.get("reply_markup", {}).get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data", "")
                    if data.startswith(prefix):
                        return message_id, data
        return None


async def gather_limited(coros: list, limit: int = 200) -> list:
    """Run coroutines with at most ``limit`` at once."""
    semaphore = asyncio.Semaphore(limit)

    async def run(coro):
        async with semaphore:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


#: Typed questions of the light path, (Telegram language, text): what wallet users ask most.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("zh-hans", "支付失败怎么办"),
    ("en", "my payment failed, what should I do?"),
    ("zh-hans", "转账一直显示处理中"),
    ("en", "I forgot my password"),
    ("zh-hans", "怎么换绑手机号"),
    ("en", "how long does a refund take"),
    ("zh-hans", "钱转错人了怎么办"),
    ("en", "what are the daily limits"),
)

#: The lookup -> refund walk: (action, callback data prefix or text).
REFUND_WALK: tuple[tuple[str, str], ...] = (
    ("send", "/transactions"),
    ("press", "tx:open:"),
    ("press", "tx:refund:"),
    ("press", "refund:reason:not_received"),
    ("press", "refund:full"),
    ("press", "refund:confirm"),
)
STEP_NAMES = ("list", "detail", "refund", "reason", "amount", "confirm")


async def open_loop(
    rng: random.Random,
    rate: float,
    duration: float,
    users: int,
    walk: Callable[[int], Any],
    drain: float,
    every_20: Callable[[], None],
) -> tuple[dict[str, int], float]:
    """Start user ``i``'s walk (``walk(i)``, a coroutine ending in "done", "stuck" or
    "timeout") at random (Poisson) arrivals of ``rate`` a second for ``duration`` seconds (or
    until ``users`` have come), calling ``every_20`` after every 20th; then give the walks
    ``drain`` seconds to finish. Return how the walks ended (a walk still running counts as
    a timeout) and the seconds from the first arrival to the end of the drain."""
    tasks: list[asyncio.Task] = []
    start = time.monotonic()
    next_arrival = start
    while True:
        next_arrival += rng.expovariate(rate)
        if next_arrival - start > duration or len(tasks) >= users:
            break
        await asyncio.sleep(max(0.0, next_arrival - time.monotonic()))
        tasks.append(asyncio.create_task(walk(len(tasks))))
        if len(tasks) % 20 == 0:
            every_20()
    done, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    elapsed = time.monotonic() - start
    outcomes = [t.result() for t in done if not t.cancelled()]
    walks = {
        "started": len(tasks),
        "done": outcomes.count("done"),
        "stuck": outcomes.count("stuck"),
        "timeout": outcomes.count("timeout") + len(pending),
    }
    return walks, elapsed


async def walk_refund(
    emu: TelegramEmulator,
    watcher: Watcher,
    user_id: int,
    think: Callable[[], float],
    latencies: list[float] | None = None,
    per_step: dict[str, list[float]] | None = None,
    step_timeout: float = 30.0,
) -> str:
    """Walk lookup -> refund as user ``user_id``; return "done", "stuck" or "timeout".

    Each step's update-to-reply time (first bot message or edit in the chat) goes to
    ``latencies`` and ``per_step``.
    """
    for index, (action, what) in enumerate(REFUND_WALK):
        if index:
            await asyncio.sleep(think())
        before = watcher.count(user_id)
        if action == "send":
            sent_at = watcher.clock()
            emu.user_send(user_id, what)
        else:
            found = watcher.button_message(user_id, what)
            if found is None:
                return "stuck"  # e.g. "the wallet is unavailable, try again later"
            sent_at = watcher.clock()
            emu.user_press(user_id, user_id, found[0], found[1])
        seen_at = await watcher.wait_beyond(user_id, before, step_timeout)
        if seen_at is None:
            return "timeout"
        latency = seen_at - sent_at
        if latencies is not None:
            latencies.append(latency)
        if per_step is not None:
            per_step.setdefault(STEP_NAMES[index], []).append(latency)
    return "done"


def first_button(emu: TelegramEmulator, user_id: int) -> tuple[int, str] | None:
    """Return (message id, callback data) of the first button of the bot's latest keyboard."""
    chat = emu.chats.get(user_id)
    if chat is None:
        return None
    for message_id in sorted(chat.messages, reverse=True):
        stored = chat.messages[message_id]
        rows = stored.data.get("reply_markup", {}).get("inline_keyboard", [])
        if stored.sender_id == emu.bot.id and not stored.deleted and rows:
            return message_id, rows[0][0]["callback_data"]
    return None


#: The light path of the capacity benchmark: (step name, action). No wallet involved.
LIGHT_WALK: tuple[tuple[str, str], ...] = (
    ("start", "/start"),
    ("question", "question"),
    ("button", "first_button"),
)


async def walk_light(
    emu: TelegramEmulator,
    watcher: Watcher,
    user_id: int,
    question: str,
    think: Callable[[], float],
    latencies: list[float] | None = None,
    per_step: dict[str, list[float]] | None = None,
    step_timeout: float = 30.0,
) -> str:
    """Walk /start -> a typed question -> the first button under the answer as ``user_id``;
    return "done", "stuck" or "timeout"."""
    for index, (name, action) in enumerate(LIGHT_WALK):
        if index:
            await asyncio.sleep(think())
        before = watcher.count(user_id)
        if action == "first_button":
            found = first_button(emu, user_id)
            if found is None:
                return "stuck"
            sent_at = watcher.clock()
            emu.user_press(user_id, user_id, found[0], found[1])
        else:
            sent_at = watcher.clock()
            emu.user_send(user_id, question if action == "question" else action)
        seen_at = await watcher.wait_beyond(user_id, before, step_timeout)
        if seen_at is None:
            return "timeout"
        if latencies is not None:
            latencies.append(seen_at - sent_at)
        if per_step is not None:
            per_step.setdefault(name, []).append(seen_at - sent_at)
    return "done"


#: A wallet call as the bot made it: (method, positional arguments, keyword arguments).
WalletCall = tuple[str, tuple[Any, ...], dict[str, Any]]


class CallCounter:
    """A wallet backend wrapper that counts calls (for the bare-PTB replay's wallet waits)
    and logs each one's method and arguments (for ``bench.cost``'s same-work replay)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.log: list[WalletCall] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not asyncio.iscoroutinefunction(target) or name == "close":
            return target

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            self.log.append((name, args, kwargs))
            return await target(*args, **kwargs)

        return counted


async def record_bot_traffic(tmp: Path) -> dict[str, Any]:
    """Walk the bot (in-process) once through the light path and the wallet walk.

    Returns ``templates``: per step, the Bot API calls (method, params) the bot answered it
    with; and ``wallet_calls``: per step, how many wallet calls it made. The bare-PTB
    yardstick (``bench._bare``) replays both.
    """
    db = tmp / "record.db"
    await prepare_database(db, accounts=1, tx_per_account=3)
    emu = make_emulator()
    light = emu.add_user("Rec", language_code=QUESTIONS[0][0])
    walker = emu.add_user("Walker", language_code="en")
    link_users(db, [(walker.id, walker.first_name, "en", "B0000000")])
    bot = InProcessBot(db, emu, verification_max_age=86400.0, refund_poll_interval=3600.0)
    await bot.start()
    counter = CallCounter(bot.app.backend)
    bot.app.backend = counter
    watcher = Watcher(emu)
    templates: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    wallet_calls: dict[str, int] = {}

    async def step(name: str, user_id: int, act: Callable[[], None]) -> None:
        before, mark, calls = watcher.count(user_id), len(emu.calls), counter.calls
        act()
        if await watcher.wait_beyond(user_id, before, 30.0) is None:
            raise TimeoutError(f"the bot did not answer step {name}")
        await bot.settle()
        templates[name] = [(m, p) for m, p in emu.calls[mark:] if m != "getUpdates"]
        wallet_calls[name] = counter.calls - calls

    def press_first(user_id: int) -> Callable[[], None]:
        def act() -> None:
            found = first_button(emu, user_id)
            assert found is not None
            emu.user_press(user_id, user_id, *found)

        return act

    try:
        await step("start", light.id, lambda: emu.user_send(light.id, "/start"))
        await step("question", light.id, lambda: emu.user_send(light.id, QUESTIONS[0][1]))
        await step("button", light.id, press_first(light.id))
        for name, (action, what) in zip(STEP_NAMES, REFUND_WALK, strict=True):
            if action == "send":
                await step(name, walker.id, lambda what=what: emu.user_send(walker.id, what))
            else:

                def press(what: str = what) -> None:
                    found = watcher.button_message(walker.id, what)
                    assert found is not None, what
                    emu.user_press(walker.id, walker.id, *found)

                await step(name, walker.id, press)
    finally:
        await bot.stop()
        await emu.aclose()
    return {"templates": templates, "wallet_calls": wallet_calls}
