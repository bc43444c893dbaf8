"""Cost: bot CPU milliseconds per update for each flow step, and for a bare-PTB handler.

Everything runs in one process on the in-process emulator transport (no network, no
latency, send budget lifted): N users do a step together, the bot handles all N updates,
and the process CPU time spent divided by N is the step's cost. The bare-PTB baseline
(an ``Application`` with one ``CommandHandler`` that replies and one ``CallbackQueryHandler``
that answers and edits) runs the same way, so the difference is this project's stack:
durable inbox, per-chat ordering, persistence, lanes, outbox, i18n, SQLite, the demo wallet.
Both figures include the in-process emulator's own share (it parses and stores every call).

    python -m bench.cost            # 200 users
    python -m bench.cost --small    # 10 users
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler

from bench._common import (
    REFUND_WALK,
    STEP_NAMES,
    TOKEN,
    UNCAPPED,
    InProcessBot,
    Watcher,
    emit,
    link_users,
    machine,
    make_emulator,
    parser,
    peak_rss_mb,
    prepare_database,
    quiet_logs,
    workdir,
)


async def _wait_counts(watcher: Watcher, before: dict[int, int], timeout: float = 60.0) -> None:
    for user_id, count in before.items():
        if await watcher.wait_beyond(user_id, count, timeout) is None:
            raise TimeoutError(f"no reply in chat {user_id}")


async def measure_bot(users: int, rounds: int) -> tuple[dict[str, Any], int]:
    """Return CPU ms per update for /start, /help and each step of the refund walk, and how
    many refunds the walks created (one per user when every step did its work)."""
    costs: dict[str, list[float]] = {}
    with workdir() as tmp:
        db = tmp / "bot.db"
        await prepare_database(db, accounts=users * rounds, tx_per_account=3)
        emu = make_emulator()
        people = [emu.add_user(f"U{i}", language_code="en") for i in range(users * rounds)]
        link_users(db, [(u.id, u.first_name, "en", f"B{i:07d}") for i, u in enumerate(people)])
        bot = await InProcessBot(
            db, emu, verification_max_age=86400.0, refund_poll_interval=3600.0, **UNCAPPED
        ).start()
        watcher = Watcher(emu)
        try:
            for r in range(rounds):
                group = people[r * users : (r + 1) * users]
                steps = [("start", ("send", "/start")), ("help", ("send", "/help"))]
                steps += list(zip(STEP_NAMES, REFUND_WALK, strict=True))
                for name, (action, what) in steps:
                    before = {u.id: watcher.count(u.id) for u in group}
                    cpu0 = time.process_time()
                    for user in group:
                        if action == "send":
                            emu.user_send(user.id, what)
                        else:
                            found = watcher.button_message(user.id, what)
                            assert found is not None, (name, user.id)
                            emu.user_press(user.id, user.id, found[0], found[1])
                    await _wait_counts(watcher, before)
                    await bot.settle()
                    costs.setdefault(name, []).append(
                        (time.process_time() - cpu0) * 1000 / len(group)
                    )
            refunds = sum([len(await bot.app.repos.refunds.for_user(u.id)) for u in people])
        finally:
            await bot.stop()
            await emu.aclose()
    return {name: round(min(values), 2) for name, values in costs.items()}, refunds


async def measure_bare_ptb(users: int, rounds: int) -> dict[str, Any]:
    """Return CPU ms per update of a bare PTB application on the same emulator transport."""
    from tgbot.sandbox.request import EmulatorRequest

    emu = make_emulator()

    async def start(update: Update, context: Any) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
        await update.effective_message.reply_text("Hello", reply_markup=keyboard)

    async def go(update: Update, context: Any) -> None:
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
    app.add_handler(CallbackQueryHandler(go, pattern="^go$"))
    await app.initialize()
    await app.updater.start_polling(poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES)
    await app.start()
    watcher = Watcher(emu)
    costs: dict[str, list[float]] = {"command_reply": [], "button_answer_edit": []}
    try:
        for r in range(rounds):
            people = [emu.add_user(f"P{r}-{i}", language_code="en") for i in range(users)]
            for name, action in (("command_reply", "send"), ("button_answer_edit", "press")):
                before = {u.id: watcher.count(u.id) for u in people}
                cpu0 = time.process_time()
                for user in people:
                    if action == "send":
                        emu.user_send(user.id, "/start")
                    else:
                        message_id, data = watcher.button_message(user.id, "go")
                        emu.user_press(user.id, user.id, message_id, data)
                await _wait_counts(watcher, before)
                costs[name].append((time.process_time() - cpu0) * 1000 / users)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        await emu.aclose()
    return {name: round(min(values), 2) for name, values in costs.items()}


async def main_async(args: Any) -> dict[str, Any]:
    users = args.users or (10 if args.small else 200)
    rounds = 1 if args.small else 3
    started = time.monotonic()
    bare = await measure_bare_ptb(users, rounds)
    bot, refunds = await measure_bot(users, rounds)
    bot_buttons = [bot[s] for s in STEP_NAMES[1:]]
    return {
        "bench": "cost",
        "small": args.small,
        "machine": machine(),
        "params": {"users_per_step": users, "rounds": rounds, "figure": "min over rounds"},
        "bare_ptb_cpu_ms_per_update": bare,
        "bot_cpu_ms_per_update": bot,
        "refunds_created": refunds,
        "bot_mean_button_step_ms": round(sum(bot_buttons) / len(bot_buttons), 2),
        "stack_overhead_ratio_buttons": round(
            sum(bot_buttons) / len(bot_buttons) / bare["button_answer_edit"], 1
        )
        if bare["button_answer_edit"]
        else None,
        "duration_s": round(time.monotonic() - started, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--users", type=int, help="users per step")
    args = p.parse_args()
    quiet_logs()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
