"""Reply latency during a broadcast: p50/p95/p99 of support replies (``/help``) while a
broadcast to 100,000 recipients runs, against the same chatter with no broadcast; and whether
the broadcast kept to the bulk budget and honoured every retry_after.

In-process bot on the emulator with Telegram's caps on and 50 ms per Bot API call. The bot's
default limits: replies per chat only; the broadcast at ``--broadcast-rate`` (default 30/s,
the whole default bulk budget: the hardest case for the replies) within the bulk budget.
During the broadcast the emulator answers ``--inject-429`` (0.5 %) of the sends *to
recipients* 429 with retry_after 2 s; the benchmark checks each such chat got nothing for those
2 s. (More than a few such 429s in different chats within 10 s cut the bulk budget: AIMD.)
The admin starts the broadcast a second into the busy phase, so the snapshot of the 100,000
recipients happens while users are asking.

    python -m bench.reply_during_broadcast           # 30 s idle + 30 s broadcasting, 100k
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
from tgbot.sandbox.models import Faults

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


def most_in_any_window(times: list[float], window: float) -> int:
    """Return the most events in any half-open window of ``window`` seconds."""
    times = sorted(times)
    best, first = 0, 0
    for last, moment in enumerate(times):
        while times[first] <= moment - window:
            first += 1
        best = max(best, last - first + 1)
    return best


async def main_async(args: Any) -> dict[str, Any]:
    seconds = 3.0 if args.small else args.seconds
    # Each chatter asks at most about once a second: Telegram's limit in one chat.
    pause = (1.0, 1.5) if args.small else (1.5, 3.0)
    chatters = 4 if args.small else args.chatters
    rate = args.broadcast_rate
    recipients = args.recipients or (int(rate * seconds * 2) + 50 if args.small else 100_000)
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
        audience_ids = frozenset(u.id for u in audience)
        talkers = [emu.add_user(f"C{i}", language_code="en") for i in range(chatters)]
        link_users(
            db,
            [(u.id, u.first_name, u.language_code, None) for u in [admin, *audience]],
            verified=False,
        )
        # When each recipient's notice arrived (what the budget and retry_after are judged on).
        arrivals: dict[int, float] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event.get("type") == "message" and event["chat_id"] in audience_ids:
                arrivals.setdefault(event["chat_id"], emu.now())

        unsubscribe = emu.subscribe(on_event)
        bot = InProcessBot(db, emu, admin_ids=frozenset({admin.id}), broadcast_rate=rate)
        await bot.start()
        watcher = Watcher(emu)
        app = bot.app
        lanes = app.bot.rate_limiter
        bulk_budget = app.config.rate_bulk_per_second
        try:
            # Warm up (first-use imports, catalogs) outside the measurement.
            for user in talkers:
                emu.user_send(user.id, "/start")
            await bot.settle()
            idle = await chatter(emu, watcher, [u.id for u in talkers], seconds, rng, pause)
            broadcast_id = await app.repos.broadcasts.create(
                admin.id, "all", ZH_TEXT, EN_TEXT, None
            )
            emu.faults = Faults(
                latency=0.05,
                rate_429=args.inject_429,
                retry_after=2,
                methods=frozenset({"sendMessage"}),
                chats=audience_ids,
                rng=random.Random(args.seed),
            )
            retry_afters_before = lanes.retry_afters
            phase_start = time.monotonic()
            # The admin starts the broadcast while users are asking: the recipients' snapshot
            # (one write of the whole audience) happens during the replies, not before them.
            busy_task = asyncio.create_task(
                chatter(emu, watcher, [u.id for u in talkers], seconds, rng, pause)
            )
            await asyncio.sleep(min(1.0, seconds / 4))
            snapshot_start = time.monotonic()
            total = await app.broadcaster.start_broadcast(broadcast_id, admin.id)
            snapshot_s = time.monotonic() - snapshot_start
            busy = await busy_task
            phase = time.monotonic() - phase_start
            counts = await app.repos.broadcasts.counts(broadcast_id)
            still_running = (await app.repos.broadcasts.get(broadcast_id)).status == "running"
            await app.broadcaster.cancel(broadcast_id)
            retry_afters = lanes.retry_afters - retry_afters_before
            injected = [(at, chat) for at, kind, _, chat in emu.fault_log if kind == "429"]
            bulk_rate_at_end = lanes.bulk_rate
        finally:
            unsubscribe()
            await bot.stop()
            await emu.aclose()
    sent = counts.get("sent", 0)
    # A chat that got a 429 must get nothing for retry_after (2 s): its notice comes later.
    gaps = [arrivals[chat] - at for at, chat in injected if chat in arrivals]
    idle_stats, busy_stats = percentiles(idle), percentiles(busy)
    return {
        "bench": "reply_during_broadcast",
        "small": args.small,
        "machine": machine(),
        "params": {
            "seconds_per_phase": seconds,
            "chatters": chatters,
            "broadcast_rate_per_s": rate,
            "bulk_budget_per_s": bulk_budget,
            "recipients": total,
            "bot_api_latency_s": 0.05,
            "telegram_caps": True,
            "injected_429_fraction": args.inject_429,
        },
        "idle_reply_ms": idle_stats,
        "during_broadcast_reply_ms": busy_stats,
        "p99_ratio_busy_to_idle": round(busy_stats["p99"] / idle_stats["p99"], 2)
        if busy_stats["p99"] and idle_stats["p99"]
        else None,
        "snapshot_of_recipients_s": round(snapshot_s, 3),
        "broadcast_sent_during_phase": sent,
        "broadcast_rate_achieved_per_s": round(sent / phase, 2) if phase else None,
        "broadcast_most_in_any_second": most_in_any_window(list(arrivals.values()), 1.0),
        "broadcast_still_running_at_end": still_running,
        "retry_after": {
            "injected_429": len(injected),
            "delivered_after_a_429": len(gaps),
            "shortest_wait_s": round(min(gaps), 3) if gaps else None,
            "honoured": all(gap >= 2.0 for gap in gaps),
            "all_429s_seen_by_the_bot": retry_afters,
            "caps_429s": retry_afters - len(injected),
        },
        "bulk_budget_at_end_per_s": bulk_rate_at_end,
        "duration_s": round(time.monotonic() - started, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="seconds per phase")
    p.add_argument("--chatters", type=int, default=10, help="users asking /help")
    p.add_argument("--broadcast-rate", type=float, default=30.0, help="TGBOT_BROADCAST_RATE")
    p.add_argument("--recipients", type=int, help="broadcast audience (default 100,000)")
    p.add_argument(
        "--inject-429", type=float, default=0.005, help="share of sends to recipients answered 429"
    )
    args = p.parse_args()
    quiet_logs()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
