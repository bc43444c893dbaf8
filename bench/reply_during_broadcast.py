"""Reply latency during a broadcast: p50/p95/p99 of support replies (``/help``) while a
broadcast runs at its configured rate, against the same chatter with no broadcast.

In-process bot on the emulator with Telegram's caps on and 50 ms per Bot API call; the bot's
default send budget (25/s overall, broadcasts 20/s of it, replies first).

    python -m bench.reply_during_broadcast           # 30 s idle + 30 s broadcasting
    python -m bench.reply_during_broadcast --small   # seconds, for CI
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench._common import (
    InProcessBot,
    Watcher,
    emit,
    link_users,
    machine,
    make_emulator,
    parser,
    peak_rss_mb,
    percentiles,
    prepare_database,
    quiet_logs,
    trim_emulator_log,
    workdir,
)

EN_TEXT = "Security notice: support never asks for your codes."
ZH_TEXT = "【安全提醒】客服不会向您索要验证码。"


async def chatter(
    emu: Any,
    watcher: Watcher,
    users: list[int],
    seconds: float,
    rng: random.Random,
    pause: tuple[float, float] = (1.5, 3.0),
) -> list[float]:
    """Each user asks /help every ``pause`` seconds for ``seconds``; return reply latencies."""
    latencies: list[float] = []
    end = time.monotonic() + seconds

    async def one(user_id: int) -> None:
        await asyncio.sleep(rng.uniform(0, pause[0]))
        while time.monotonic() < end:
            before = watcher.count(user_id)
            sent = watcher.clock()
            emu.user_send(user_id, "/help")
            seen = await watcher.wait_beyond(user_id, before, 30.0)
            latencies.append((seen if seen is not None else float("inf")) - sent)
            await asyncio.sleep(min(rng.uniform(*pause), max(0.0, end - time.monotonic())))
            trim_emulator_log(emu)

    await asyncio.gather(*(one(u) for u in users))
    return latencies


async def main_async(args: Any) -> dict[str, Any]:
    seconds = 2.0 if args.small else args.seconds
    pause = (0.4, 0.8) if args.small else (1.5, 3.0)
    chatters = 4 if args.small else args.chatters
    rate = args.broadcast_rate
    recipients = args.recipients or int(rate * seconds * 2) + 50
    rng = random.Random(args.seed)
    started = time.monotonic()
    with workdir() as tmp:
        db = tmp / "bot.db"
        await prepare_database(db)
        emu = make_emulator(caps=True, latency=0.05, seed=args.seed)
        admin = emu.add_user("Admin", language_code="en", started=True)
        audience = [
            emu.add_user(f"R{i}", language_code="zh-hans" if i % 2 else "en", started=True)
            for i in range(recipients)
        ]
        talkers = [emu.add_user(f"C{i}", language_code="en") for i in range(chatters)]
        link_users(
            db,
            [(u.id, u.first_name, u.language_code, None) for u in [admin, *audience]],
            verified=False,
        )
        bot = InProcessBot(db, emu, admin_ids=frozenset({admin.id}), broadcast_rate=rate)
        await bot.start()
        watcher = Watcher(emu)
        app = bot.app
        try:
            # Warm up (first-use imports, catalogs) outside the measurement.
            for user in talkers:
                emu.user_send(user.id, "/start")
            await bot.settle()
            idle = await chatter(emu, watcher, [u.id for u in talkers], seconds, rng, pause)
            broadcast_id = await app.repos.broadcasts.create(
                admin.id, "all", ZH_TEXT, EN_TEXT, None
            )
            total = await app.broadcaster.start_broadcast(broadcast_id, admin.id)
            phase_start = time.monotonic()
            busy = await chatter(emu, watcher, [u.id for u in talkers], seconds, rng, pause)
            phase = time.monotonic() - phase_start
            counts = await app.repos.broadcasts.counts(broadcast_id)
            still_running = (await app.repos.broadcasts.get(broadcast_id)).status == "running"
            await app.broadcaster.cancel(broadcast_id)
        finally:
            await bot.stop()
            await emu.aclose()
    sent = counts.get("sent", 0)
    return {
        "bench": "reply_during_broadcast",
        "small": args.small,
        "machine": machine(),
        "params": {
            "seconds_per_phase": seconds,
            "chatters": chatters,
            "broadcast_rate_per_s": rate,
            "recipients": total,
            "bot_api_latency_s": 0.05,
            "telegram_caps": True,
        },
        "idle_reply_ms": percentiles(idle),
        "during_broadcast_reply_ms": percentiles(busy),
        "broadcast_sent_during_phase": sent,
        "broadcast_rate_achieved_per_s": round(sent / phase, 2) if phase else None,
        "broadcast_still_running_at_end": still_running,
        "duration_s": round(time.monotonic() - started, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="seconds per phase")
    p.add_argument("--chatters", type=int, default=10, help="users asking /help")
    p.add_argument("--broadcast-rate", type=float, default=20.0, help="TGBOT_BROADCAST_RATE")
    p.add_argument("--recipients", type=int, help="broadcast audience (default: enough)")
    args = p.parse_args()
    quiet_logs()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
