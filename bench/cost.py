"""Cost: CPU milliseconds per update for each step, the bot beside a bare-PTB application.

Everything runs in one process on the in-process emulator transport (no network, no
latency, send budget lifted): N users do a step together, the application handles all N
updates, and the process CPU time spent divided by N is the step's cost. Both columns include
the in-process emulator's own share (it parses and stores every call).

Two bare-PTB baselines, each an ``Application`` with 64 concurrent updates: *minimal* (a command
and a text handler that reply "Hello" with one button, a button that answers and edits: the
baseline of the issue's 14x), and *same traffic* (each handler makes exactly the Bot API calls
the bot made for that step, recorded from the bot: its texts, HTML and keyboards, so the
difference is the bot's stack, not the size of its messages). The bot's steps:

* light path (new users, no wallet): ``/start``; a typed question (the free-text router
  answers with an article and buttons); the first button under the answer ("Did this solve
  it?": answer + edit); ``/help``. The comparison the issue's goal is about:
  ``light_button_ratio`` = bot button / bare button, and the same for command and text.
* wallet walk (linked, verified users, the demo wallet in the bot's process, on its own
  SQLite file): ``/transactions`` -> open -> refund -> reason -> full amount -> confirm. Its
  button steps include the demo wallet's own work; ``sql_per_update`` splits the statements
  per update into the bot's and the demo wallet's, counted in a separate small round, and
  ``demo_wallet_sql_thread_cpu_ms_per_update`` is the CPU of the demo wallet's SQLite thread
  (read from that thread's own clock), taken off in ``bot_without_demo_wallet_sql...``.
* wallet apart (always): the walk again with the same demo wallet on an event loop and a
  thread of its own (``bench._wallet_thread``): each wallet call crosses threads and back, as
  a fast network would, and all of the wallet's CPU (its Python too, not only its SQLite
  thread) is read from its threads' clocks and taken off: ``wallet_apart`` is the bot's own.
* paired (in the wallet-apart run): bare PTB's minimal command and button are measured again
  just before each of the bot's steps, by a second bare application alive beside the bot,
  and each step is divided by the one measured just before it; the median over the rounds
  (``wallet_apart.paired_with_minimal``) does not swing with the machine's noise as a ratio
  of figures measured a minute apart does. Each of the bot's steps includes the persistence
  write it caused (run at the step's end).
* same work: bare PTB once more, each handler making the same Bot API calls *and* the same
  wallet calls the bot made for that step (recorded from the bot, same arguments), to the
  same demo wallet apart, whose CPU is taken off as for the bot (``bare_ptb_same_work``;
  ``wallet_apart.wallet_walk_ratios_same_work``): what a wallet step costs the bot beyond
  the calls any bot answering it must make.
* ``--http-wallet``: the walk again with the demo wallet in a child process behind its
  documented HTTP API (``bench._wallet_server``), as a real wallet: the bot pays for its HTTP
  client (httpx) instead of the wallet's queries.
* ``collector``: per step, the mean CPU over the rounds and the cyclic garbage collector's ms
  per update (read from its callbacks) in the best round and over all rounds: a full
  collection lands in one round, which the best-of-3 figure leaves out.

Everything runs as ``tgbot run`` runs the bot, for the bot and bare PTB alike: on uvloop
(``--loop asyncio``: asyncio's loop) with its collector settings (:mod:`tgbot.heap`; each
subject's heap is frozen once it has started; ``--gc default``: CPython's settings).

    python -m bench.cost                  # 200 users a step, best of 3 rounds
    python -m bench.cost --http-wallet    # and the walk with the wallet over HTTP
    python -m bench.cost --small          # 10 users, 1 round
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bench._bare import replay as replay_calls
from bench._common import (
    QUESTIONS,
    REFUND_WALK,
    STEP_NAMES,
    TOKEN,
    UNCAPPED,
    CallCounter,
    GcClock,
    InProcessBot,
    WalletCall,
    Watcher,
    emit,
    link_users,
    machine,
    make_emulator,
    parser,
    peak_rss_mb,
    prepare_database,
    quiet_logs,
    runtime_flags,
    runtime_options,
    workdir,
)
from bench._wallet_thread import ThreadWallet
from tgbot.config import demo_wallet_beside
from tgbot.heap import freeze_heap, tune_collector

ROOT = Path(__file__).resolve().parent.parent

#: The light path: (step name, action, what). "answer" presses the first button of the
#: bot's latest message that has buttons.
LIGHT_STEPS = (
    ("start", "send", "/start"),
    ("question", "question", ""),
    ("answer_button", "first_button", ""),
    ("help", "send", "/help"),
)


def _first_button(emu: Any, user_id: int) -> tuple[int, str]:
    """Return (message id, callback data) of the first button of the bot's latest keyboard."""
    chat = emu.chats[user_id]
    for message_id in sorted(chat.messages, reverse=True):
        stored = chat.messages[message_id]
        rows = stored.data.get("reply_markup", {}).get("inline_keyboard", [])
        if stored.sender_id == emu.bot.id and not stored.deleted and rows:
            return message_id, rows[0][0]["callback_data"]
    raise AssertionError(f"no buttons in chat {user_id}")


def _act(emu: Any, watcher: Watcher, user: Any, index: int, action: str, what: str) -> None:
    if action == "send":
        emu.user_send(user.id, what)
    elif action == "question":
        emu.user_send(user.id, QUESTIONS[index % len(QUESTIONS)][1])
    elif action == "first_button":
        message_id, data = _first_button(emu, user.id)
        emu.user_press(user.id, user.id, message_id, data)
    else:  # press a button whose data starts with ``what``
        found = watcher.button_message(user.id, what)
        assert found is not None, (what, user.id)
        emu.user_press(user.id, user.id, found[0], found[1])


def _thread_cpu(thread: Any) -> float:
    """Return a running thread's CPU seconds so far (Linux: its own CPU clock); 0 without
    one."""
    if thread is None:
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


GC_CLOCK = GcClock()
#: ``--gc tuned``: each subject's heap is frozen once it has started (as ``tgbot run`` does).
FREEZE_AFTER_WARM_UP = False


class _Rounds:
    """Per step and round: process CPU ms per update, the collector's share of it, and the
    share of the wallet's threads (``wallet_cpu``: their CPU seconds so far)."""

    def __init__(self, wallet_cpu: Callable[[], float] = lambda: 0.0) -> None:
        self.cpu: dict[str, list[float]] = {}
        self.gc: dict[str, list[float]] = {}
        self.wallet: dict[str, list[float]] = {}
        self._wallet_cpu = wallet_cpu
        self._mark = (0.0, 0.0, 0.0)

    def start(self) -> None:
        self._mark = (time.process_time(), GC_CLOCK.seconds, self._wallet_cpu())

    def stop(self, name: str, updates: int) -> None:
        cpu0, gc0, wallet0 = self._mark
        self.cpu.setdefault(name, []).append((time.process_time() - cpu0) * 1000 / updates)
        self.gc.setdefault(name, []).append((GC_CLOCK.seconds - gc0) * 1000 / updates)
        self.wallet.setdefault(name, []).append((self._wallet_cpu() - wallet0) * 1000 / updates)

    def best(self) -> dict[str, float]:
        """The figure reported: each step's cheapest round."""
        return {name: round(min(values), 3) for name, values in self.cpu.items()}

    def wallet_in_best(self) -> dict[str, float]:
        """The wallet's threads' ms per update in each step's cheapest round (part of it)."""
        return {
            name: round(self.wallet[name][values.index(min(values))], 3)
            for name, values in self.cpu.items()
        }

    def own_by_round(self) -> dict[str, list[float]]:
        """Each step's ms per update in every round, the wallet's threads' share taken off."""
        return {
            name: [cpu - wallet for cpu, wallet in zip(values, self.wallet[name], strict=True)]
            for name, values in self.cpu.items()
        }

    def collector(self) -> dict[str, dict[str, float]]:
        """Each step's mean CPU over its rounds, and the collector's ms per update in its
        cheapest round and over all rounds (a full collection lands in one round and is
        left out of the cheapest; the mean pays for it)."""
        out = {}
        for name, values in self.cpu.items():
            gcs = self.gc[name]
            out[name] = {
                "mean_cpu_ms": round(sum(values) / len(values), 3),
                "gc_ms_best_round": round(gcs[values.index(min(values))], 3),
                "gc_ms_mean": round(sum(gcs) / len(gcs), 3),
            }
        return out


async def _start_wallet_server(path: Any) -> tuple[Any, dict[str, Any]]:
    """Start ``bench._wallet_server`` on the demo wallet's file; return the process and the
    bot's backend settings for it."""
    from bench._wallet_server import KEY

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._wallet_server", str(path),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"the wallet server did not start: {line!r}")
    url = f"http://127.0.0.1:{int(line.split()[1])}/api/v1"
    return proc, {"backend": "http", "backend_url": url, "backend_api_key": KEY}


async def _stop_wallet_server(proc: Any) -> None:
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()


_BOOKKEEPING = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")


class _SqlCounter:
    """Count the statements run on the bot's connection and on the demo wallet's own."""

    def __init__(self) -> None:
        self.bot = 0
        self.wallet = 0

    def on_bot(self, statement: str) -> None:
        if not statement.startswith(_BOOKKEEPING):
            self.bot += 1

    def on_wallet(self, statement: str) -> None:
        if not statement.startswith(_BOOKKEEPING):
            self.wallet += 1


async def measure_bot(
    users: int,
    rounds: int,
    count_sql: bool = False,
    templates: dict[str, list[tuple[str, dict[str, Any]]]] | None = None,
    refunds_out: list[int] | None = None,
    wallet_out: dict[str, float] | None = None,
    http_wallet: bool = False,
    threaded_wallet: bool = False,
    collector_out: dict[str, Any] | None = None,
    wallet_calls: dict[str, list[WalletCall]] | None = None,
    paired: BarePtb | None = None,
    rounds_out: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """Return CPU ms per update for the light path and each step of the refund walk (or,
    with ``count_sql``, SQL statements per update instead). ``templates`` receives the Bot
    API calls the bot answered each light step with; ``refunds_out`` receives how many refunds
    the measured walks created (one per walker when every step did its work); ``wallet_out``
    receives, per step, the CPU ms per update of the demo wallet's own SQLite thread (part of
    the process CPU above: the in-process demo wallet's queries, not the bot's). With
    ``http_wallet`` the demo wallet runs in a child process behind its documented HTTP API
    (as a real wallet would: the bot pays for its HTTP client only). With ``threaded_wallet``
    it runs on its own event loop and thread (:mod:`bench._wallet_thread`), and
    ``wallet_out`` receives all of its CPU (its loop's thread and its SQLite thread).
    ``collector_out`` receives :meth:`_Rounds.collector`; ``wallet_calls`` the wallet calls
    (method, arguments) the bot made for each step of the walk. With ``paired`` (a minimal
    :class:`BarePtb`, started), its command and button are measured again just before each
    of the bot's steps; ``rounds_out`` receives each step's ms per update in every round,
    the wallet's share taken off. Each step's figure includes writing what it changed (PTB's
    persistence is run at its end, as its timer would soon after)."""
    sql: dict[str, dict[str, float]] = {}
    with workdir() as tmp:
        db = tmp / "bot.db"
        await prepare_database(db, accounts=users * rounds + 1, tx_per_account=3)
        emu = make_emulator()
        walkers = [emu.add_user(f"U{i}", language_code="en") for i in range(users * rounds + 1)]
        link_users(db, [(u.id, u.first_name, "en", f"B{i:07d}") for i, u in enumerate(walkers)])
        walk_recorder = walkers.pop()  # walks once first: warm-up, and the recorded calls
        newcomers = [
            emu.add_user(f"N{i}", language_code=QUESTIONS[i % len(QUESTIONS)][0])
            for i in range(users * rounds)
        ]
        warmup = [
            emu.add_user(f"W{i}", language_code=QUESTIONS[i % len(QUESTIONS)][0])
            for i in range(len(QUESTIONS))
        ]
        backend: dict[str, Any] = {}
        server = None
        if http_wallet:
            server, backend = await _start_wallet_server(demo_wallet_beside(db))
        bot = await InProcessBot(
            db, emu, verification_max_age=86400.0, refund_poll_interval=3600.0,
            **backend, **UNCAPPED,
        ).start()  # fmt: skip
        counter = _SqlCounter()
        wallet_thread = None if http_wallet else bot.app.backend.store.db.worker_thread
        wallet_cpu = functools.partial(_thread_cpu, wallet_thread)
        threaded = None
        if threaded_wallet:
            threaded = await ThreadWallet(demo_wallet_beside(db)).start()
            bot.app.backend = threaded
            wallet_cpu = threaded.cpu_seconds
        rec = _Rounds(wallet_cpu)
        if count_sql:
            await bot.app.db.set_trace(counter.on_bot)
            await bot.app.backend.store.db.set_trace(counter.on_wallet)
        watcher = Watcher(emu)
        # First use loads the answer index (jieba's dictionary) and the catalogs: not a cost
        # per update, so it happens before measuring. The first warm-up user's steps are
        # recorded: the Bot API calls the bot answered each with (for the same-traffic
        # bare-PTB baseline).
        for name, action, what in LIGHT_STEPS:
            before = {u.id: watcher.count(u.id) for u in warmup}
            mark = len(emu.calls)
            _act(emu, watcher, warmup[0], 0, action, what)
            await watcher.wait_all({warmup[0].id: before[warmup[0].id]})
            await bot.settle()
            if templates is not None:
                templates[name] = [
                    (method, params)
                    for method, params in emu.calls[mark:]
                    if method != "getUpdates"
                ]
            for index, user in enumerate(warmup[1:], start=1):
                _act(emu, watcher, user, index, action, what)
            await watcher.wait_all(before)
            await bot.settle()
        logged = bot.app.backend = CallCounter(bot.app.backend)
        for name, (action, what) in zip(STEP_NAMES, REFUND_WALK, strict=True):
            before = {walk_recorder.id: watcher.count(walk_recorder.id)}
            mark, called = len(emu.calls), len(logged.log)
            _act(emu, watcher, walk_recorder, 0, action, what)
            await watcher.wait_all(before)
            await bot.settle()
            if templates is not None:
                templates[name] = [
                    (method, params)
                    for method, params in emu.calls[mark:]
                    if method != "getUpdates"
                ]
            if wallet_calls is not None:
                wallet_calls[name] = logged.log[called:]
        bot.app.backend = logged.inner
        steps = [(name, action, what, newcomers) for name, action, what in LIGHT_STEPS]
        steps += [
            (name, action, what, walkers)
            for name, (action, what) in zip(STEP_NAMES, REFUND_WALK, strict=True)
        ]
        if FREEZE_AFTER_WARM_UP:
            freeze_heap()
        try:
            for r in range(rounds):
                for name, action, what, people in steps:
                    if paired is not None:
                        await paired.minimal_pair()
                    group = people[r * users : (r + 1) * users]
                    before = {u.id: watcher.count(u.id) for u in group}
                    counter.bot = counter.wallet = 0
                    rec.start()
                    for index, user in enumerate(group):
                        _act(emu, watcher, user, index, action, what)
                    await watcher.wait_all(before)
                    await bot.settle()
                    await bot.app.update_persistence()
                    rec.stop(name, len(group))
                    sql[name] = {
                        "bot": round(counter.bot / len(group), 2),
                        "demo_wallet": round(counter.wallet / len(group), 2),
                    }
            refunds = sum([len(await bot.app.repos.refunds.for_user(u.id)) for u in walkers])
        finally:
            await bot.stop()
            await emu.aclose()
            if server is not None:
                await _stop_wallet_server(server)
            if threaded is not None:
                await threaded.stop()
    if count_sql:
        return sql
    result: dict[str, Any] = rec.best()
    if collector_out is not None:
        collector_out.update(rec.collector())
    if refunds_out is not None:
        refunds_out.append(refunds)
    if wallet_out is not None:
        wallet_out.update(rec.wallet_in_best())  # the round the figure above comes from
    if rounds_out is not None:
        rounds_out.update(rec.own_by_round())
    return result


@contextlib.asynccontextmanager
async def _wallet_apart(accounts: int) -> AsyncIterator[ThreadWallet]:
    """The demo wallet with ``accounts`` synthetic accounts (those ``measure_bot`` walks), on
    a loop and thread of its own."""
    with workdir() as tmp:
        await prepare_database(tmp / "bare.db", accounts=accounts, tx_per_account=3)
        wallet = await ThreadWallet(demo_wallet_beside(tmp / "bare.db")).start()
        try:
            yield wallet
        finally:
            await wallet.stop()


class BarePtb:
    """A bare PTB application on its own emulator transport, started (``async with``) and
    measured one step at a time into :attr:`rec`.

    Without ``templates``: minimal replies ("Hello" and one button). With them: each handler
    makes exactly the Bot API calls the bot made for that step (its texts, HTML, keyboards),
    so the difference to the bot is the bot's own stack and not the size of its messages.
    With ``wallet_calls`` as well ("same work"), each handler first makes the wallet calls the
    bot made for that step, with the same arguments, to the same demo wallet on a loop and
    thread of its own (:mod:`bench._wallet_thread`, as the bot's wallet-apart run), whose CPU
    :attr:`rec` reads apart.
    """

    def __init__(
        self,
        users: int,
        rounds: int,
        templates: dict[str, list[tuple[str, dict[str, Any]]]] | None = None,
        wallet_calls: dict[str, list[WalletCall]] | None = None,
    ) -> None:
        self.users = users
        self._rounds = rounds
        self._templates = templates
        self._wallet_calls = wallet_calls
        self._stack = contextlib.AsyncExitStack()
        self._emu: Any = None
        self._watcher: Any = None
        self._people = 0
        self.rec = _Rounds()
        self.steps: tuple[tuple[str, str, str], ...] = (
            ("command_reply", "send", "/start"),
            ("text_reply", "question", ""),
            ("button_answer_edit", "first_button", ""),
        )
        if templates:
            walk = zip(STEP_NAMES, REFUND_WALK, strict=True)
            self.steps += tuple((name, action, what) for name, (action, what) in walk)

    async def __aenter__(self) -> BarePtb:
        from tgbot.sandbox.request import EmulatorRequest

        templates, wallet_calls = self._templates, self._wallet_calls
        # First, so that its start-up is over before anything is measured; closed last.
        wallet = None
        if wallet_calls is not None:
            wallet = await self._stack.enter_async_context(
                _wallet_apart(self.users * self._rounds + 1)
            )
            self.rec = _Rounds(wallet.cpu_seconds)
        emu = self._emu = make_emulator()
        self._stack.push_async_callback(emu.aclose)
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])

        async def replay(update: Update, context: Any, step: str) -> None:
            assert templates is not None
            for method, args, kwargs in (wallet_calls or {}).get(step, ()):
                await getattr(wallet, method)(*args, **kwargs)
            await replay_calls(update, context, templates[step])

        async def start(update: Update, context: Any) -> None:
            if templates:
                return await replay(update, context, "start")
            await update.effective_message.reply_text("Hello", reply_markup=keyboard)

        async def transactions(update: Update, context: Any) -> None:
            await replay(update, context, "list")

        async def text(update: Update, context: Any) -> None:
            if templates:
                return await replay(update, context, "question")
            await update.effective_message.reply_text("An answer", reply_markup=keyboard)

        async def go(update: Update, context: Any) -> None:
            if templates:
                data = update.callback_query.data or ""
                step = next((n for prefix, n in _WALK_BUTTONS if data.startswith(prefix)), None)
                return await replay(update, context, step or "answer_button")
            await update.callback_query.answer()
            await update.callback_query.edit_message_text("Pressed")

        app = (
            ApplicationBuilder()
            .token(TOKEN)
            .request(EmulatorRequest(emu))
            .get_updates_request(EmulatorRequest(emu, read_timeout=None))
            .concurrent_updates(64)
            .build()
        )
        app.add_handler(CommandHandler("start", start))
        app.add_handler(CommandHandler("transactions", transactions))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text))
        app.add_handler(CallbackQueryHandler(go))
        await app.initialize()
        self._stack.push_async_callback(app.shutdown)
        await app.updater.start_polling(
            poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES
        )
        await app.start()
        # Unwound last-in first: the updater stops first, then the application.
        self._stack.push_async_callback(app.stop)
        self._stack.push_async_callback(app.updater.stop)
        if FREEZE_AFTER_WARM_UP:
            freeze_heap()
        self._watcher = Watcher(emu)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def new_people(self) -> list[Any]:
        """Return :attr:`users` users who never wrote (each step's chats are fresh ones)."""
        first, self._people = self._people, self._people + self.users
        return [
            self._emu.add_user(f"P{n}", language_code=QUESTIONS[n % len(QUESTIONS)][0])
            for n in range(first, self._people)
        ]

    async def run_step(self, name: str, action: str, what: str, people: list[Any]) -> None:
        """Measure one step done by each of ``people`` at once."""
        before = {u.id: self._watcher.count(u.id) for u in people}
        self.rec.start()
        for index, user in enumerate(people):
            _act(self._emu, self._watcher, user, index, action, what)
        await self._watcher.wait_all(before)
        self.rec.stop(name, len(people))

    async def minimal_pair(self) -> None:
        """Measure the minimal command and button once more, with new users (``bench.cost``
        runs this just before each of the bot's steps it pairs with them)."""
        people = self.new_people()
        for name, action, what in self.steps:
            if name in ("command_reply", "button_answer_edit"):
                await self.run_step(name, action, what, people)


async def measure_bare_ptb(
    users: int,
    rounds: int,
    templates: dict[str, list[tuple[str, dict[str, Any]]]] | None = None,
    collector_out: dict[str, Any] | None = None,
    wallet_calls: dict[str, list[WalletCall]] | None = None,
    wallet_out: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Return CPU ms per update of a bare PTB application (:class:`BarePtb`) on the same
    emulator transport, each step's cheapest of ``rounds``; ``wallet_out`` receives the
    wallet's CPU ms per update (same work), part of the figures returned."""
    async with BarePtb(users, rounds, templates, wallet_calls) as bare:
        for _ in range(rounds):
            people = bare.new_people()
            for name, action, what in bare.steps:
                await bare.run_step(name, action, what, people)
    if collector_out is not None:
        collector_out.update(bare.rec.collector())
    if wallet_out is not None:
        wallet_out.update(bare.rec.wallet_in_best())
    return bare.rec.best()


#: Which recorded step a pressed button replays (by callback data prefix).
_WALK_BUTTONS = (
    ("tx:open:", "detail"),
    ("tx:refund:", "refund"),
    ("refund:reason:", "reason"),
    ("refund:full", "amount"),
    ("refund:confirm", "confirm"),
)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


#: The bot's steps in the order each round runs them (light path, then the walk).
_ROUND_ORDER = (*(name for name, _, _ in LIGHT_STEPS), *STEP_NAMES)
_COMMAND_STEPS = ("start", "help", "list")


def _paired_ratios(bot: dict[str, list[float]], bare: dict[str, list[float]]) -> dict[str, Any]:
    """Ratios of the bot's steps (``bot``: ms per update per round) to bare PTB's minimal
    command or button measured just before each of them (``bare``: in the same order)."""
    steps = len(_ROUND_ORDER)
    rounds = len(bot[_ROUND_ORDER[0]])

    def paired(step: str, r: int) -> float:
        kind = "command_reply" if step in _COMMAND_STEPS else "button_answer_edit"
        return bare[kind][r * steps + _ROUND_ORDER.index(step)]

    compared = [step for step in _ROUND_ORDER if step != "question"]  # no minimal text here
    minimal = {step: [paired(step, r) for r in range(rounds)] for step in compared}
    by_round = {step: [bot[step][r] / minimal[step][r] for r in range(rounds)] for step in compared}
    walk = STEP_NAMES[1:]  # the walk's button steps (the list is a command)
    walk_by_round = [
        sum(bot[s][r] for s in walk) / sum(minimal[s][r] for s in walk) for r in range(rounds)
    ]
    return {
        "how": (
            "bot (wallet apart) / bare PTB's minimal command or button measured just before "
            "that step, per round; median over rounds"
        ),
        "minimal_ms_before_step": {s: [round(x, 3) for x in v] for s, v in minimal.items()},
        "ratio_by_round": {s: [round(x, 2) for x in v] for s, v in by_round.items()},
        "ratio_median": {s: round(statistics.median(v), 2) for s, v in by_round.items()},
        "wallet_walk_button_ratio_by_round": [round(x, 2) for x in walk_by_round],
        "wallet_walk_button_ratio_median": round(statistics.median(walk_by_round), 2),
    }


async def main_async(args: Any) -> dict[str, Any]:
    users = args.users or (10 if args.small else 200)
    rounds = 1 if args.small else 3
    started = time.monotonic()
    bare_gc: dict[str, Any] = {}
    bare = await measure_bare_ptb(users, rounds, collector_out=bare_gc)
    templates: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    refunds: list[int] = []
    wallet_sql: dict[str, float] = {}
    bot_gc: dict[str, Any] = {}
    wallet_calls: dict[str, list[WalletCall]] = {}
    bot = await measure_bot(
        users,
        rounds,
        templates=templates,
        refunds_out=refunds,
        wallet_out=wallet_sql,
        collector_out=bot_gc,
        wallet_calls=wallet_calls,
    )
    # The bot without the demo wallet's SQLite thread: a real wallet runs elsewhere (its
    # Python, run on the bot's event loop in the demo, stays counted).
    own = {step: round(bot[step] - wallet_sql.get(step, 0.0), 3) for step in bot}
    own_walk = [own[s] for s in STEP_NAMES[1:]]
    own_walk_mean = sum(own_walk) / len(own_walk)
    same = await measure_bare_ptb(users, rounds, templates)
    sql = await measure_bot(min(users, 20), 1, count_sql=True)
    # The wallet on a loop and thread of its own: all of its CPU is measured apart, and what
    # remains is the bot's (its calls to the wallet cross threads, as a fast network would).
    apart_wallet: dict[str, float] = {}
    apart_refunds: list[int] = []
    apart_rounds: dict[str, list[float]] = {}
    # Bare PTB's minimal command and button are measured again just before each step of
    # this run: each ratio compares two figures taken moments apart (the machine's noise
    # moves both), and the median over rounds leaves out a round that one burst spoilt.
    async with BarePtb(users, rounds) as minimal:
        apart_process = await measure_bot(
            users,
            rounds,
            refunds_out=apart_refunds,
            wallet_out=apart_wallet,
            threaded_wallet=True,
            paired=minimal,
            rounds_out=apart_rounds,
        )
    paired = _paired_ratios(apart_rounds, minimal.rec.cpu)
    apart = {
        step: round(apart_process[step] - apart_wallet.get(step, 0.0), 3) for step in apart_process
    }
    apart_walk_mean = sum(apart[s] for s in STEP_NAMES[1:]) / len(STEP_NAMES[1:])
    # Bare PTB doing the same work: the same Bot API calls and the same wallet calls to the
    # same wallet apart, whose CPU is taken off as for the bot.
    same_work_wallet: dict[str, float] = {}
    same_work_process = await measure_bare_ptb(
        users, rounds, templates, wallet_calls=wallet_calls, wallet_out=same_work_wallet
    )
    same_work = {
        step: round(cpu - same_work_wallet.get(step, 0.0), 3)
        for step, cpu in same_work_process.items()
    }
    http: dict[str, Any] | None = None
    if args.http_wallet:
        http_refunds: list[int] = []
        http = await measure_bot(users, rounds, http_wallet=True, refunds_out=http_refunds)
        http["refunds_created"] = http_refunds[0]
    walk_buttons = [bot[s] for s in STEP_NAMES[1:]]
    walk_mean = sum(walk_buttons) / len(walk_buttons)
    bare_button = bare["button_answer_edit"]
    return {
        "bench": "cost",
        "small": args.small,
        "machine": machine(),
        "params": {
            "users_per_step": users,
            "rounds": rounds,
            "figure": "min over rounds of process CPU ms per update (emulator included)",
            "gc": "tuned (tgbot run's)" if FREEZE_AFTER_WARM_UP else "CPython's defaults",
            "gc_threshold": list(gc.get_threshold()),
        },
        "bare_ptb_cpu_ms_per_update": bare,
        "bot_cpu_ms_per_update": bot,
        "light_ratios": {
            "command": _ratio(bot["start"], bare["command_reply"]),
            "text": _ratio(bot["question"], bare["text_reply"]),
            "button": _ratio(bot["answer_button"], bare_button),
        },
        "light_button_ratio": _ratio(bot["answer_button"], bare_button),
        "bare_ptb_same_traffic_cpu_ms_per_update": same,
        "light_ratios_same_traffic": {
            "command": _ratio(bot["start"], same["command_reply"]),
            "text": _ratio(bot["question"], same["text_reply"]),
            "button": _ratio(bot["answer_button"], same["button_answer_edit"]),
        },
        "same_traffic_calls": {
            step: [method for method, _ in calls] for step, calls in templates.items()
        },
        "bot_mean_wallet_button_step_ms": round(walk_mean, 3),
        "wallet_walk_button_ratio": _ratio(walk_mean, bare_button),
        "wallet_walk_ratios_same_traffic": {
            step: _ratio(bot[step], same.get(step)) for step in STEP_NAMES
        },
        "demo_wallet_sql_thread_cpu_ms_per_update": wallet_sql,
        "bot_without_demo_wallet_sql_cpu_ms_per_update": own,
        "without_demo_wallet_sql": {
            "mean_wallet_button_step_ms": round(own_walk_mean, 3),
            "wallet_walk_button_ratio": _ratio(own_walk_mean, bare_button),
            "wallet_walk_ratios_same_traffic": {
                step: _ratio(own[step], same.get(step)) for step in STEP_NAMES
            },
        },
        "wallet_apart": {
            "process_cpu_ms_per_update": apart_process,
            "wallet_threads_cpu_ms_per_update": apart_wallet,
            "bot_cpu_ms_per_update": apart,
            "mean_wallet_button_step_ms": round(apart_walk_mean, 3),
            "wallet_walk_button_ratio": _ratio(apart_walk_mean, bare_button),
            "light_button_ratio": _ratio(apart["answer_button"], bare_button),
            "wallet_walk_ratios_same_traffic": {
                step: _ratio(apart[step], same.get(step)) for step in STEP_NAMES
            },
            "wallet_walk_ratios_same_work": {
                step: _ratio(apart[step], same_work.get(step)) for step in STEP_NAMES
            },
            "refunds_created": apart_refunds[0],
            "paired_with_minimal": paired,
        },
        "bare_ptb_same_work": {
            "process_cpu_ms_per_update": same_work_process,
            "wallet_threads_cpu_ms_per_update": same_work_wallet,
            "cpu_ms_per_update": same_work,
            "wallet_calls": {
                step: [method for method, _, _ in calls] for step, calls in wallet_calls.items()
            },
        },
        "sql_per_update": sql,
        "collector": {"bare_ptb": bare_gc, "bot": bot_gc},
        "bot_http_wallet_cpu_ms_per_update": http,
        "refunds_created": refunds[0],
        "duration_s": round(time.monotonic() - started, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--users", type=int, help="users per step")
    p.add_argument(
        "--http-wallet",
        action="store_true",
        help="also measure the bot with the demo wallet in a child process behind its HTTP API",
    )
    runtime_options(p)  # for the bot and bare PTB alike
    p.add_argument(
        "--orjson", action="store_true", help="parse Bot API answers with orjson (measuring it)"
    )
    args = p.parse_args()
    quiet_logs()
    flags = runtime_flags(args)
    if flags["tuned_gc"]:
        global FREEZE_AFTER_WARM_UP
        FREEZE_AFTER_WARM_UP = True
        tune_collector()
    if args.orjson:
        import orjson
        from telegram.request import BaseRequest

        # PTB's documented hook for another JSON library; for the bot and bare PTB alike.
        BaseRequest.parse_json_payload = staticmethod(orjson.loads)  # type: ignore[method-assign]
    if flags["uvloop"]:
        import uvloop

        result = uvloop.run(main_async(args))
    else:
        result = asyncio.run(main_async(args))
    result["event_loop"] = args.loop
    result["json_decoder"] = "orjson" if args.orjson else "json"
    emit(result)


if __name__ == "__main__":
    main()
