"""Capacity (open loop): users arrive at a fixed rate and walk lookup -> refund.

The bot runs as its own process on the Bot API emulator over HTTP (as against Telegram). The
emulator adds 50 ms to every Bot API call; the wallet answers in 100-800 ms and a few calls
time out. For each arrival rate (users/s, Poisson) the run reports the update-to-reply
latency of every step; the answer is the highest rate whose p99 stays under 1 s. The same
search runs with per-chat concurrency switched off (``TGBOT_CONCURRENT_UPDATES=1``, PTB's
sequential processing) for the ratio.

    python -m bench.capacity            # Telegram's caps (25 sends/s budget), then sequential
    python -m bench.capacity --uncapped # send budget lifted: the bot's own capacity
    python -m bench.capacity --small    # seconds, for CI
"""

from __future__ import annotations

import asyncio
import random
import sys
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
    peak_rss_mb,
    percentiles,
    prepare_database,
    trim_emulator_log,
    walk_refund,
    workdir,
)

P99_LIMIT_MS = 1000.0


async def trial(
    rate: float,
    *,
    duration: float,
    concurrent: int,
    wallet: dict[str, Any],
    think: tuple[float, float],
    uncapped: bool,
    seed: int,
    drain: float = 60.0,
    profile: str | None = None,
) -> dict[str, Any]:
    """Run one open-loop trial at ``rate`` users/s for ``duration`` seconds of arrivals."""
    rng = random.Random(seed)
    expected = int(rate * duration * 1.5) + 10
    with workdir() as tmp:
        db = tmp / "bot.db"
        await prepare_database(db, accounts=expected, tx_per_account=3)
        emu = make_emulator(caps=not uncapped, latency=0.05, seed=seed)
        people = [emu.add_user(f"U{i}", language_code="en") for i in range(expected)]
        link_users(db, [(u.id, u.first_name, "en", f"B{i:07d}") for i, u in enumerate(people)])
        config: dict[str, Any] = {
            "concurrent_updates": concurrent,
            "verification_max_age": 86400.0,
            "refund_poll_interval": 3600.0,
        }
        if uncapped:
            config.update(UNCAPPED)
        async with emulator_server(emu) as server:
            child = ChildBot(
                server.base_url, db, tmp / "bot.log", config=config, wallet=wallet, profile=profile
            )
            await child.start()
            watcher = Watcher(emu)
            latencies: list[float] = []
            per_step: dict[str, list[float]] = {}
            tasks: list[asyncio.Task] = []
            peak_child_rss = 0.0
            start = time.monotonic()
            next_arrival = start
            index = 0
            while True:
                next_arrival += rng.expovariate(rate)
                if next_arrival - start > duration or index >= len(people):
                    break
                await asyncio.sleep(max(0.0, next_arrival - time.monotonic()))
                tasks.append(
                    asyncio.create_task(
                        walk_refund(
                            emu,
                            watcher,
                            people[index].id,
                            lambda: rng.uniform(*think),
                            latencies,
                            per_step,
                            step_timeout=drain,
                        )
                    )
                )
                index += 1
                if index % 20 == 0:
                    peak_child_rss = max(peak_child_rss, child.rss()["rss_mb"] or 0.0)
                    trim_emulator_log(emu)
            done, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
            for task in pending:
                task.cancel()
            elapsed = time.monotonic() - start
            peak_child_rss = max(peak_child_rss, child.rss()["rss_mb"] or 0.0)
            report = await child.stop()
    outcomes = [t.result() for t in done if not t.cancelled()]
    walks = {
        "started": len(tasks),
        "done": outcomes.count("done"),
        "stuck": outcomes.count("stuck"),
        "timeout": outcomes.count("timeout") + len(pending),
    }
    # A walk that never got its reply counts as an infinitely slow step.
    lat = percentiles(latencies + [float("inf")] * walks["timeout"])
    updates = len(latencies)
    return {
        "rate_users_per_s": rate,
        "arrival_seconds": duration,
        "walks": walks,
        "updates": updates,
        "updates_per_s": round(updates / elapsed, 2) if elapsed else None,
        "latency_ms": lat,
        "per_step_p99_ms": {k: percentiles(v)["p99"] for k, v in per_step.items()},
        "bot_cpu_ms_per_update": round(report.get("cpu_s_after_ready", 0) * 1000 / updates, 2)
        if updates
        else None,
        "bot_cpu_utilisation": round(report.get("cpu_s_after_ready", 0) / elapsed, 3),
        "bot_rss_mb": peak_child_rss,
        "bot_peak_rss_mb": report.get("peak_rss_mb"),
        "wallet_calls": report.get("wallet_calls"),
        "wallet_timeouts": report.get("wallet_timeouts"),
        "ok": lat["p99"] is not None and lat["p99"] < P99_LIMIT_MS and walks["timeout"] == 0,
    }


async def search(rates: list[float], **kw: Any) -> dict[str, Any]:
    """Try rates in increasing order until the run degrades.

    Two answers: the highest rate whose p99 is under 1 s (the issue's criterion; None when
    even the lowest rate misses it, e.g. because one step makes two 100-800 ms wallet calls),
    and the highest rate not degraded by load: p99 within 25% of the lowest rate's p99 and
    every walk finished. The search stops at the first degraded rate.
    """
    trials = []
    best = None
    not_degraded = None
    baseline = None
    all_ok = True
    for rate in rates:
        result = await trial(rate, **kw)
        trials.append(result)
        p99 = result["latency_ms"]["p99"]
        print(f"# rate {rate}: p99 {p99} ms", file=sys.stderr)
        if baseline is None:
            baseline = p99
        all_ok = all_ok and result["ok"]
        if all_ok:
            best = rate
        degraded = (
            p99 is None
            or baseline is None
            or p99 > 1.25 * baseline
            or result["walks"]["timeout"] > 0
        )
        if degraded:
            break
        not_degraded = rate
    return {
        "max_rate_p99_under_1s": best,
        "max_rate_not_degraded": not_degraded,
        "idle_p99_ms": baseline,
        "trials": trials,
    }


async def main_async(args: Any) -> dict[str, Any]:
    if args.small:
        duration, think = 1.5, (0.3, 0.5)
        wallet = {"lo": 0.01, "hi": 0.08, "timeout_rate": 0.0, "timeout_s": 1.0}
        rates, seq_rates = [2.0], [1.0]
    else:
        duration, think = args.duration, (1.0, 3.0)
        wallet = {"lo": 0.1, "hi": 0.8, "timeout_rate": 0.002, "timeout_s": 5.0}
        if args.uncapped:
            rates = [4.0, 8.0, 12.0, 16.0, 24.0, 32.0]
        else:
            rates = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        seq_rates = [0.1, 0.2, 0.3, 0.5, 0.75, 1.0]
    if args.rates:
        rates = [float(r) for r in args.rates.split(",")]
    common = {
        "duration": duration,
        "wallet": {**wallet, "seed": args.seed},
        "think": think,
        "uncapped": args.uncapped,
        "seed": args.seed,
        "drain": 20.0 if args.small else 60.0,
    }
    started = time.monotonic()
    concurrent = await search(rates, concurrent=64, **common)
    sequential = None
    if not args.no_sequential:
        sequential = await search(seq_rates, concurrent=1, **common)
    best = concurrent["max_rate_not_degraded"]
    seq_best = (sequential or {}).get("max_rate_not_degraded")
    return {
        "bench": "capacity",
        "small": args.small,
        "machine": machine(),
        "params": {
            "walk": "/transactions -> open -> refund -> reason -> full amount -> confirm",
            "think_s": think,
            "bot_api_latency_s": 0.05,
            "wallet": wallet,
            "telegram_caps": not args.uncapped,
            "p99_limit_ms": P99_LIMIT_MS,
        },
        "concurrent": concurrent,
        "sequential": sequential,
        "ratio_concurrent_to_sequential": round(best / seq_best, 1) if best and seq_best else None,
        "duration_s": round(time.monotonic() - started, 1),
        "bench_peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--uncapped", action="store_true", help="lift the send budget and caps")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals per rate")
    p.add_argument("--rates", help="comma-separated users/s to try, e.g. 1,2,4")
    p.add_argument("--no-sequential", action="store_true", help="skip the sequential search")
    args = p.parse_args()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
