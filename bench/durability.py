"""Durability: updates lost after kill -9 under load (the durable inbox), and refund
notification lag (also across a kill -9).

1. Inbox: users keep sending ``/help`` (one reply each) while the bot process is killed with
   SIGKILL several times and restarted at once. Telegram (the emulator) forgets an update as
   soon as the bot's next getUpdates confirms it, so only the inbox can save updates fetched
   but not handled. Lost = sent - answered per chat, duplicates = answered - sent.
2. Refund notifications: users walk lookup -> refund; the demo wallet moves each refund
   along every ``--refund-step`` seconds; the bot polls every ``--poll`` seconds and tells the
   user. Lag = when the user sees the notice - when the wallet's status changed. The bot is
   killed once mid-way: notices must be neither missed nor repeated.

    python -m bench.durability           # 50 users x 30 s with 3 kills; 100 refunds
    python -m bench.durability --small   # seconds, for CI
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
    UNCAPPED,
    ChildBot,
    Watcher,
    emit,
    emulator_server,
    link_users,
    machine,
    make_emulator,
    parser,
    percentiles,
    prepare_database,
    trim_emulator_log,
    walk_refund,
    workdir,
)
from tgbot.config import demo_wallet_beside

STATUS_BY_EMOJI = {"🔎": "reviewing", "✅": "approved", "❌": "rejected", "💰": "refunded"}


async def inbox_run(users: int, seconds: float, kills: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    with workdir() as tmp:
        db = tmp / "bot.db"
        await prepare_database(db)
        emu = make_emulator(seed=seed)
        people = [emu.add_user(f"U{i}", language_code="en") for i in range(users)]
        watcher = Watcher(emu)
        sent: collections.Counter[int] = collections.Counter()
        async with emulator_server(emu) as server:
            child = await ChildBot(
                server.base_url, db, tmp / "bot.log", config=dict(UNCAPPED)
            ).start()
            stop_at = time.monotonic() + seconds

            async def user(user_id: int) -> None:
                while time.monotonic() < stop_at:
                    emu.user_send(user_id, "/help")
                    sent[user_id] += 1
                    await asyncio.sleep(rng.uniform(0.2, 0.6))

            async def killer() -> list[dict[str, Any]]:
                done = []
                for _ in range(kills):
                    await asyncio.sleep(seconds / (kills + 1))
                    in_flight = sum(sent.values()) - sum(watcher.count(u.id) for u in people)
                    await child.kill()
                    with contextlib.closing(sqlite3.connect(db)) as conn:
                        pending = conn.execute(
                            "SELECT COUNT(*) FROM inbox WHERE done_at IS NULL"
                        ).fetchone()[0]
                    restart_started = time.monotonic()
                    await child.start()
                    done.append(
                        {
                            "unanswered_at_kill": in_flight,
                            "inbox_pending_at_kill": pending,
                            "restart_s": round(time.monotonic() - restart_started, 2),
                        }
                    )
                    trim_emulator_log(emu)
                return done

            results = await asyncio.gather(killer(), *(user(u.id) for u in people))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if all(watcher.count(u.id) >= sent[u.id] for u in people):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # duplicates would land now
            await child.stop()
            with contextlib.closing(sqlite3.connect(db)) as conn:
                pending = conn.execute("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL")
                pending_at_end = pending.fetchone()[0]
    answered = {u.id: watcher.count(u.id) for u in people}
    return {
        "users": users,
        "seconds": seconds,
        "kills": results[0],
        "updates_sent": sum(sent.values()),
        "updates_answered": sum(min(answered[u], sent[u]) for u in sent),
        "lost": sum(max(0, sent[u] - answered[u]) for u in sent),
        "duplicates": sum(max(0, answered[u] - sent[u]) for u in sent),
        "inbox_pending_at_end": pending_at_end,
        "updates_per_s": round(sum(sent.values()) / seconds, 1),
    }


async def refund_run(users: int, step: float, poll: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    with workdir() as tmp:
        db = tmp / "bot.db"
        await prepare_database(db, accounts=users, tx_per_account=3)
        emu = make_emulator(seed=seed)
        people = [emu.add_user(f"U{i}", language_code="en") for i in range(users)]
        link_users(db, [(u.id, u.first_name, "en", f"B{i:07d}") for i, u in enumerate(people)])
        watcher = Watcher(emu, clock=time.time)
        config = {**UNCAPPED, "verification_max_age": 86400.0, "refund_poll_interval": poll}
        spec = {"config": config, "refund_step_seconds": step}
        async with emulator_server(emu) as server:
            child = await ChildBot(server.base_url, db, tmp / "bot.log", **spec).start()
            outcomes = await asyncio.gather(
                *(walk_refund(emu, watcher, u.id, lambda: rng.uniform(0.05, 0.2)) for u in people)
            )
            created_by = time.time()
            # Kill mid-way through the notices (after the first status change is due).
            await asyncio.sleep(step * 1.5)
            await child.kill()
            # Anything arriving before this was sent by the killed process (a request still in
            # the server's buffer at the kill lands after it).
            restarted_at = time.time()
            await child.start()
            # Every refund reaches its last status 3 steps after creation, one poll later its
            # notice is due: wait for each user's last notice (a slow machine gets extra time),
            # then two more polls for any late duplicate.
            due_by = created_by + 3 * step + 2 * poll + 1

            def all_final() -> bool:
                return all(
                    any(
                        STATUS_BY_EMOJI.get((m.get("text") or "")[:1]) in ("refunded", "rejected")
                        for _at, _kind, m in watcher.seen[u.id]
                    )
                    for u in people
                )

            for _ in range(int((due_by + 60 - time.time()) / 0.1)):
                if all_final():
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(max(2 * poll, due_by - time.time()))
            await child.stop()
        with contextlib.closing(sqlite3.connect(demo_wallet_beside(db))) as conn:
            refunds = conn.execute(
                "SELECT id, created_at, status, amount FROM demo_refunds"
            ).fetchall()
    expected: set[tuple[str, str]] = set()
    final: set[tuple[str, str]] = set()
    due: dict[tuple[str, str], float] = {}
    for refund_id, created_at, status, _amount in refunds:
        path = ["reviewing", "rejected"] if status == "rejected" else [
            "reviewing", "approved", "refunded"
        ]  # fmt: skip
        final.add((refund_id, path[-1]))
        for k, name in enumerate(path, start=1):
            expected.add((refund_id, name))
            due[(refund_id, name)] = created_at + k * step
    got: collections.Counter[tuple[str, str]] = collections.Counter()
    first_at: dict[tuple[str, str], float] = {}
    # A notice sent just before the kill whose "sent" mark died with the process is sent again
    # after the restart (at least once: Telegram has no idempotency key); any other copy is a bug.
    across_kill = 0
    lags = []
    ids = {r[0] for r in refunds}
    for user in people:
        for at, _kind, message in watcher.seen[user.id]:
            text = message.get("text", "")
            status = STATUS_BY_EMOJI.get(text[:1])
            refund_id = next((i for i in ids if i in text), None)
            if status is None or refund_id is None or "Your refund" not in text:
                continue
            key = (refund_id, status)
            got[key] += 1
            if got[key] == 1:
                first_at[key] = at
            elif first_at[key] < restarted_at <= at:
                across_kill += 1
            if got[key] == 1 and key in due:
                lags.append(at - due[key])
    return {
        "users": users,
        "walks_done": outcomes.count("done"),
        "refunds": len(refunds),
        "refund_step_s": step,
        "poll_interval_s": poll,
        "notices_expected": len(expected),
        "notices_received": sum(1 for k in expected if got[k]),
        "notices_missed": sum(1 for k in expected if not got[k]),
        "final_notices_missed": sum(1 for k in final if not got[k]),
        "missed_by_status": dict(collections.Counter(k[1] for k in expected if not got[k])),
        "notices_duplicated": sum(n - 1 for n in got.values() if n > 1),
        "notices_duplicated_across_kill": across_kill,
        "notice_lag_ms": percentiles(lags),
        "kills": 1,
    }


async def main_async(args: Any) -> dict[str, Any]:
    started = time.monotonic()
    if args.small:
        inbox = await inbox_run(5, 3.0, 1, args.seed)
        refunds = await refund_run(4, 0.5, 0.3, args.seed)
    else:
        inbox = await inbox_run(args.users, args.seconds, args.kills, args.seed)
        refunds = await refund_run(args.refunds, args.refund_step, args.poll, args.seed)
    return {
        "bench": "durability",
        "small": args.small,
        "machine": machine(),
        "inbox": inbox,
        "refund_notifications": refunds,
        "duration_s": round(time.monotonic() - started, 1),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--kills", type=int, default=3)
    p.add_argument("--refunds", type=int, default=100)
    p.add_argument("--refund-step", type=float, default=5.0, help="wallet status step, s")
    p.add_argument("--poll", type=float, default=5.0, help="TGBOT_REFUND_POLL_INTERVAL, s")
    args = p.parse_args()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
