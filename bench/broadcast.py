"""Broadcast: many recipients, some blocked, some 429s; achieved rate against the configured
rate, the bot's RSS over the run, duration; a kill -9 mid-run and a restart: duplicates and
misses.

The bot runs as its own process on the emulator over HTTP. The broadcast is created and
started in the database before the bot starts (as if an admin had pressed Send), so the run
measures sending only. Telegram's caps are on; a rate above 30/s is a paid broadcast
(``TGBOT_PAID_BROADCAST``, ``allow_paid_broadcast``), for which the emulator's overall cap is
raised to 1000/s as Telegram's is.

    python -m bench.broadcast                            # 100,000 recipients at 1000/s (paid)
    python -m bench.broadcast --recipients 20000         # a medium run
    python -m bench.broadcast --rate 20 --recipients 6000   # the free tier (20/s)
    python -m bench.broadcast --small                    # seconds, for CI
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import sqlite3
import time
from typing import Any

from bench._common import (
    ChildBot,
    emit,
    emulator_server,
    link_users,
    machine,
    make_emulator,
    parser,
    peak_rss_mb,
    prepare_database,
    trim_emulator_log,
    workdir,
)
from tgbot.sandbox.models import Caps, Faults

EN_TEXT = "Security notice: support never asks for your codes."
ZH_TEXT = "【安全提醒】客服不会向您索要验证码。"


async def create_running_broadcast(db_path: Any, admin_id: int) -> int:
    """Create broadcast #1 to everyone and start it, as the admin's Send button does."""
    from storage import Database, Repositories

    db = await Database.open(db_path)
    try:
        repos = Repositories(db)
        broadcast_id = await repos.broadcasts.create(admin_id, "all", ZH_TEXT, EN_TEXT, None)
        await repos.broadcasts.add_recipients(broadcast_id, "all", "en")
        await repos.broadcasts.set_status(
            broadcast_id, "running", started_at=time.time(), approved_by=admin_id
        )
        return broadcast_id
    finally:
        await db.close()


def db_status(db_path: Any, broadcast_id: int) -> tuple[str, dict[str, int]]:
    with contextlib.closing(sqlite3.connect(db_path, timeout=5)) as conn:
        status = conn.execute("SELECT status FROM broadcasts WHERE id = ?", (broadcast_id,))
        row = status.fetchone()
        counts = dict(
            conn.execute(
                "SELECT status, COUNT(*) FROM broadcast_recipients WHERE broadcast_id = ? "
                "GROUP BY status",
                (broadcast_id,),
            ).fetchall()
        )
    return (row[0] if row else "missing"), counts


def stranded(db_path: Any, broadcast_id: int) -> int:
    """Count recipients still 'queued' whose outbox message is 'sent': the send was recorded
    but the broadcast's own bookkeeping (the outbox's on-sent hook) never ran."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=5)) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM broadcast_recipients r JOIN outbox o "
            "ON o.kind = 'broadcast' AND o.ref = CAST(r.broadcast_id AS TEXT) "
            "AND o.chat_id = r.user_id WHERE r.broadcast_id = ? AND r.status = 'queued' "
            "AND o.status = 'sent'",
            (broadcast_id,),
        ).fetchone()[0]


async def main_async(args: Any) -> dict[str, Any]:
    recipients = 300 if args.small else args.recipients
    rate = 200.0 if args.small else args.rate
    # Generous in --small: a busy CI machine (all benchmarks at once on 2 cores) can take
    # several times the ~10 s a quiet one needs; the run ends as soon as the broadcast is done.
    timeout = min(90.0, args.timeout) if args.small else args.timeout
    stall = 20.0 if args.small else 30.0
    paid = rate > 30
    rng = random.Random(args.seed)
    started = time.monotonic()
    with workdir() as tmp:
        db = tmp / "bot.db"
        await prepare_database(db)
        emu = make_emulator(caps=True, seed=args.seed)
        if paid:
            emu.caps = Caps(overall_per_second=1000)
        admin = emu.add_user("Admin", language_code="en", started=True)
        people = [
            emu.add_user(f"R{i}", language_code="zh-hans" if i % 2 else "en", started=True)
            for i in range(recipients)
        ]
        blocked = set()
        for user in rng.sample(people, int(recipients * args.blocked)):
            user.blocked_bot = True  # blocked while the bot was not looking: it finds out now
            blocked.add(user.id)
        link_users(
            db, [(u.id, u.first_name, u.language_code, None) for u in [admin, *people]], False
        )
        broadcast_id = await create_running_broadcast(db, admin.id)
        emu.faults = Faults(
            rate_429=args.rate_429,
            retry_after=1,
            methods=frozenset({"sendMessage"}),
            rng=random.Random(args.seed),
        )
        received: collections.Counter[int] = collections.Counter()
        times: list[float] = []

        def on_event(event: dict[str, Any]) -> None:
            if event.get("type") != "message":
                return
            message = event["message"]
            if message.get("text") in (EN_TEXT, ZH_TEXT) and message["from"]["id"] == emu.bot.id:
                received[event["chat_id"]] += 1
                times.append(time.monotonic())

        emu.subscribe(on_event)
        kill_after = int((recipients - len(blocked)) * args.kill_at) if args.kill_at else None
        rss_samples: list[tuple[float, float]] = []
        segments: list[dict[str, Any]] = []
        async with emulator_server(emu) as server:
            spec = {
                "config": {"broadcast_rate": rate, "paid_broadcast": paid},
                "retry_scale": 0.25 if args.small else 1.0,
            }
            restarts = 0
            report: dict[str, Any] = {}
            killed_at_sent = None
            status = "running"
            deadline = time.monotonic() + timeout
            while status == "running" and time.monotonic() < deadline:
                child = ChildBot(server.base_url, db, tmp / "bot.log", **spec)
                seg_start, seg_sent = time.monotonic(), len(times)
                await child.start()
                killed = False
                last_count, last_progress = len(times), time.monotonic()
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.25)
                    if len(times) != last_count:
                        last_count, last_progress = len(times), time.monotonic()
                    elif time.monotonic() - last_progress > stall:
                        status = "stalled"  # nothing sent for a while but not done
                        break
                    rss = child.rss()["rss_mb"]
                    if rss is not None:
                        rss_samples.append((round(time.monotonic() - started, 1), rss))
                    trim_emulator_log(emu)
                    if kill_after is not None and not restarts and len(times) >= kill_after:
                        await child.kill()
                        killed, killed_at_sent = True, len(times)
                        break
                    status, _ = db_status(db, broadcast_id)
                    if status != "running":
                        break
                seg_end = time.monotonic()
                sent = len(times) - seg_sent
                segments.append(
                    {
                        "sent": sent,
                        "seconds": round(seg_end - seg_start, 2),
                        "rate_per_s": round(sent / (seg_end - seg_start), 1),
                        "ended_by": "kill -9" if killed else status,
                    }
                )
                if killed:
                    restarts += 1
                    continue
                break
            report = await child.stop()
            await asyncio.sleep(0.5)  # late duplicates would land now
            status, counts = db_status(db, broadcast_id)
            stranded_queued = stranded(db, broadcast_id)
    reachable = [u.id for u in people if u.id not in blocked] + [admin.id]
    misses = sum(1 for uid in reachable if received[uid] == 0)
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    send_seconds = sum(s["seconds"] for s in segments)
    delivered = sum(1 for uid in reachable if received[uid])
    rss_values = [r for _, r in rss_samples]
    step = max(1, len(rss_samples) // 12)
    return {
        "bench": "broadcast",
        "small": args.small,
        "machine": machine(),
        "params": {
            "recipients": recipients + 1,
            "blocked": len(blocked),
            "rate_429": args.rate_429,
            "configured_rate_per_s": rate,
            "paid_broadcast": paid,
            "kill_at_fraction": args.kill_at,
        },
        "status": status,
        "db_counts": counts,
        "delivered_users": delivered,
        "misses": misses,
        "duplicates": duplicates,
        "stranded_queued": stranded_queued,
        "killed_at_sent": killed_at_sent,
        "restarts": restarts,
        "injected_429": emu.fault_counts.get("429", 0),
        "segments": segments,
        "achieved_rate_per_s": round(len(times) / send_seconds, 1) if send_seconds else None,
        "achieved_fraction_of_configured": round(len(times) / send_seconds / rate, 3)
        if send_seconds
        else None,
        "duration_s": round(time.monotonic() - started, 1),
        "bot_rss_mb": {
            "min": min(rss_values, default=None),
            "max": max(rss_values, default=None),
            "samples": rss_samples[::step],
        },
        "bot_report": report,
        "bench_peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--recipients", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=1000.0, help="TGBOT_BROADCAST_RATE (>30: paid)")
    p.add_argument("--blocked", type=float, default=0.02, help="fraction who blocked the bot")
    p.add_argument("--rate-429", type=float, default=0.01, help="fraction of sends answered 429")
    p.add_argument("--kill-at", type=float, default=0.4, help="kill -9 at this fraction (0: no)")
    p.add_argument("--timeout", type=float, default=3600.0, help="give up after this many s")
    args = p.parse_args()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
