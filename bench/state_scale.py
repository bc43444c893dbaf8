"""Scale of state: the bot's RSS and start-up time (process start -> first update answered)
with 10k / 100k users, each linked, verified and in the middle of a guided flow (a persisted
conversation state and ``user_data``), with the free-text router (trained at start) loaded.
Then a burst: ``--burst`` new users each send ``/start`` and ``/help`` at once; the bot's CPU
per update and its garbage collector's work during the burst (collections, total and longest
pause) show what a heap this size costs each update. The bot runs with ``tgbot run``'s
collector settings (:mod:`tgbot.heap`), or CPython's with ``--gc default``.

The persisted rows are real: one user walks lookup -> refund up to the reason step on the
real bot, which is stopped gracefully; its ``ptb_conversations`` and ``ptb_user_data`` rows
are then copied for every user (only the user id changes). PTB loads every conversation and
every user's ``user_data`` at start, so this is the worst case of "many flows in progress".

    python -m bench.state_scale                 # 0, 10k and 100k users
    python -m bench.state_scale --sizes 0,10000
    python -m bench.state_scale --small         # 0 and 2,000 users
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench._common import (
    UNCAPPED,
    ChildBot,
    InProcessBot,
    Watcher,
    emit,
    emulator_server,
    link_users,
    machine,
    make_emulator,
    parser,
    prepare_database,
    quiet_logs,
    runtime_options,
    workdir,
)

TEMPLATE_USER = 990_000_001


async def template_rows(tmp: Path) -> tuple[list[tuple], list[tuple]]:
    """Return the persisted conversation and user_data rows of one user mid-refund."""
    db = tmp / "template.db"
    await prepare_database(db, accounts=1, tx_per_account=3)
    emu = make_emulator()
    user = emu.add_user("Template", language_code="en", user_id=TEMPLATE_USER)
    link_users(db, [(user.id, "Template", "en", "B0000000")])
    bot = InProcessBot(db, emu, verification_max_age=86400.0, **UNCAPPED)
    await bot.start()
    watcher = Watcher(emu)
    for action, what in (("send", "/transactions"), ("press", "tx:open:"), ("press", "tx:refund:")):
        before = watcher.count(user.id)
        if action == "send":
            emu.user_send(user.id, what)
        else:
            message_id, data = watcher.button_message(user.id, what)
            emu.user_press(user.id, user.id, message_id, data)
        await watcher.wait_beyond(user.id, before, 30.0)
        await bot.settle()
    await bot.stop()
    await emu.aclose()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conversations = conn.execute("SELECT name, key, state FROM ptb_conversations").fetchall()
        user_data = conn.execute("SELECT user_id, data FROM ptb_user_data").fetchall()
    if not conversations:
        raise RuntimeError("the template walk left no persisted conversation")
    return conversations, user_data


def fill(db: Path, users: int, conversations: list[tuple], user_data: list[tuple]) -> None:
    """Insert ``users`` linked users, each with the template's persisted rows."""
    ids = [2_000_000_001 + n for n in range(users)]
    link_users(db, [(uid, f"S{uid}", "en", "B0000000") for uid in ids])
    old = str(TEMPLATE_USER)
    now = time.time()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.executemany(
            "INSERT INTO ptb_conversations (name, key, state, updated_at) VALUES (?, ?, ?, ?)",
            [
                (name, key.replace(old, str(uid)), state.replace(old, str(uid)), now)
                for uid in ids
                for name, key, state in conversations
            ],
        )
        conn.executemany(
            "INSERT INTO ptb_user_data (user_id, data, updated_at) VALUES (?, ?, ?)",
            [(uid, data.replace(old, str(uid)), now) for uid in ids for _, data in user_data],
        )


async def startup(
    users: int, rows: tuple[list, list], router: bool, burst: int, tuned_gc: bool
) -> dict[str, Any]:
    with workdir() as tmp:
        db = tmp / "bot.db"
        await prepare_database(db, accounts=1, tx_per_account=3)
        fill_started = time.monotonic()
        fill(db, users, *rows)
        fill_s = time.monotonic() - fill_started
        db_mb = round(db.stat().st_size / 1024 / 1024, 1)
        emu = make_emulator()
        newcomer = emu.add_user("Newcomer", language_code="en")
        watcher = Watcher(emu)
        async with emulator_server(emu) as server:
            emu.user_send(newcomer.id, "/start")  # waiting for the bot as it starts
            child = ChildBot(
                server.base_url,
                db,
                tmp / "bot.log",
                config=dict(UNCAPPED),
                preload_answers=router,
                tuned_gc=tuned_gc,
            )
            await child.start(wait_ready=False)
            answered = await watcher.wait_beyond(newcomer.id, 0, 300.0)
            first_answer_s = answered - child.started_at if answered is not None else None
            ready_s = await child.wait_ready(300.0)
            rss = child.rss()
            crowd = [emu.add_user(f"B{i}", language_code="en") for i in range(burst)]
            for command in ("/start", "/help"):
                before = {u.id: watcher.count(u.id) for u in crowd}
                for user in crowd:
                    emu.user_send(user.id, command)
                await watcher.wait_all(before, 120.0)
            report = await child.stop(timeout=300.0)
    return {
        "users": users,
        "persisted_conversations": users * len(rows[0]),
        "db_mb": db_mb,
        "fill_s": round(fill_s, 2),
        "router_loaded": router,
        "first_update_answered_s": round(first_answer_s, 2) if first_answer_s else None,
        "ready_s": round(ready_s, 2),
        "rss_mb": rss["rss_mb"],
        "peak_rss_mb": rss["peak_rss_mb"],
        "graceful_stop_ok": bool(report),
        "burst_updates": 2 * burst,
        "burst_cpu_ms_per_update": (
            round(report["cpu_s_after_ready"] * 1000 / (2 * burst), 3) if report and burst else None
        ),
        "burst_gc": report.get("gc_after_ready") if report else None,
    }


async def main_async(args: Any) -> dict[str, Any]:
    sizes = [0, 2000] if args.small else [int(s) for s in args.sizes.split(",")]
    started = time.monotonic()
    with workdir() as tmp:
        rows = await template_rows(tmp)
    burst = 50 if args.small else args.burst
    tuned = args.gc == "tuned"
    runs = [await startup(n, rows, not args.no_router, burst, tuned) for n in sizes]
    return {
        "bench": "state_scale",
        "small": args.small,
        "machine": machine(),
        "template": {"conversations_per_user": len(rows[0]), "user_data_rows": len(rows[1])},
        "gc": args.gc,
        "runs": runs,
        "duration_s": round(time.monotonic() - started, 1),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="0,10000,100000", help="comma-separated user counts")
    p.add_argument("--no-router", action="store_true", help="do not train the question router")
    p.add_argument("--burst", type=int, default=1000, help="new users in the burst after start")
    runtime_options(p, loop=False)
    args = p.parse_args()
    quiet_logs()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
