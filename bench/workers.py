"""Several workers on PostgreSQL, webhook mode, open loop: capacity of 1, 2 and 4 workers.

For each worker count, ``tgbot run --workers N`` (the real supervisor and CLI; ``tgbot run``
for one) runs on a throwaway PostgreSQL server (``tests/support/postgres.py``: initdb into a
temporary directory, as the ``postgres`` user under root, production durability settings
unless ``--pg-fast``) and on the Bot API emulator over HTTP, which delivers the webhook on up
to 40 connections at once (Telegram's default ``max_connections``), one chat at a time,
adds 50 ms to every Bot API call and enforces Telegram's caps.

The load is the light path of ``bench.capacity``, open loop: users arrive at random
(Poisson) at a fixed rate for ``--duration`` seconds and walk ``/start`` -> a typed question
-> the first button under the answer, thinking 1-3 s between steps. The rates double until
p99 of the step latency (update -> the first message or edit in the chat) reaches 1 s or a
walk times out, then the gap is bisected. The workers keep running from one rate to the
next (new users each time; the backlog drained in between).

Each trial reports updates/s and the CPU time of the workers (the supervisor's process
tree), of the PostgreSQL server (the postmaster and every backend) and of this process (the
emulator and the load generator), from /proc, per update and as cores busy; and how busy
the whole machine was. At the first failing rate, that says where it saturates: the
workers' CPU, PostgreSQL's CPU, the machine's cores (all of them busy, whoever uses them),
the load generator, or none of them (latency).

    python -m bench.workers                               # 1, 2, 4 workers: ~10-20 min
    python -m bench.workers --workers 1,2,4,8 --rates 8,16,32,64,128   # a bigger machine
    python -m bench.workers --small                       # seconds, for CI
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import (
    QUESTIONS,
    ROOT,
    TOKEN,
    Watcher,
    busy_between,
    cpu_seconds,
    emit,
    emulator_server,
    machine,
    machine_cpu_ticks,
    make_emulator,
    open_loop,
    parser,
    percentiles,
    rss_mb,
    trim_emulator_log,
    walk_light,
    workdir,
)

P99_LIMIT_MS = 1000.0
#: Telegram's default max_connections: how many webhook requests it has open at once.
WEBHOOK_CONNECTIONS = 40
#: A share of CPU at or above which a part counts as saturated.
SATURATED = 0.85
_TICK = os.sysconf("SC_CLK_TCK")


# -- CPU of process trees, from /proc ------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """Return (parent pid, CPU seconds of the process and of its reaped children)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # After the name: state, ppid, ... utime (14th field), stime, cutime, cstime.
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / _TICK


def tree_cpu(root: int) -> tuple[float, list[int]]:
    """Return the CPU seconds of ``root`` and every live descendant (with what each reaped:
    a process that exited counts once, in its parent's children time), and the pids."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    if root not in stats:
        return 0.0, []
    tree, frontier = [root], [root]
    while frontier:
        parents = set(frontier)
        frontier = [pid for pid, (ppid, _) in stats.items() if ppid in parents]
        tree.extend(frontier)
    return sum(stats[pid][1] for pid in tree), tree


# -- one deployment: PostgreSQL schema, emulator, N workers --------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Workers:
    """``tgbot run --workers N`` in a process group of its own, logging to a file."""

    def __init__(self, count: int, env: dict[str, str], log_path: Path) -> None:
        self.count = count
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "tgbot", "run"]
        if self.count > 1:
            argv += ["--workers", str(self.count)]
        # In this process's group: whoever kills the benchmark's group kills the workers too.
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=log, stderr=log)

    def workers(self) -> list[int]:
        """Return the pids of the processes that serve updates."""
        assert self.proc is not None
        _, tree = tree_cpu(self.proc.pid)
        return tree if self.count == 1 else tree[1:]

    def cpu(self) -> float:
        assert self.proc is not None
        return tree_cpu(self.proc.pid)[0]

    def rss_mb(self) -> float:
        return round(sum(rss_mb(pid)["rss_mb"] or 0.0 for pid in self.workers()), 1)

    async def ready(self, emu: Any, timeout: float = 120.0) -> None:
        """Wait until every worker started and the webhook is set, then until the workers
        are idle (each trains the question router in the background at start)."""
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while (
            self.log_path.read_text(errors="replace").count("Application started") < self.count
            or emu.webhook is None
        ):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.count} workers did not start; the log ends:\n{tail}")
            await asyncio.sleep(0.1)
        before = self.cpu()
        while True:
            await asyncio.sleep(1.0)
            now = self.cpu()
            if now - before < 0.05 * self.count or time.monotonic() > deadline:
                return
            before = now

    def stop(self) -> int | None:
        """Ctrl-C, as an operator stops it; then kill any worker still there. Return the
        exit code of the Ctrl-C (None if it did not stop within a minute)."""
        if self.proc is None:
            return None
        code = None
        _, tree = tree_cpu(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = self.proc.wait(timeout=60)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        return code


async def _drain(emu: Any, conn: Any, timeout: float) -> bool:
    """Wait until every update is delivered and handled; return whether it happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        unfinished = await conn.fetchval("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL")
        if emu.pending_updates() == 0 and unfinished == 0:
            return True
        await asyncio.sleep(0.2)
    return False


async def trial(
    deployment: dict[str, Any],
    rate: float,
    *,
    duration: float,
    think: tuple[float, float],
    seed: int,
    drain: float,
) -> dict[str, Any]:
    """Run one open-loop trial at ``rate`` users a second on a running deployment."""
    emu, workers, pg_pid = deployment["emu"], deployment["workers"], deployment["pg_pid"]
    rng = random.Random(seed)
    expected = int(rate * duration * 1.5) + 10
    offset = deployment["users"]
    people = [
        emu.add_user(f"U{offset + i}", language_code=QUESTIONS[i % len(QUESTIONS)][0])
        for i in range(expected)
    ]
    deployment["users"] += expected
    watcher = Watcher(emu)
    latencies: list[float] = []
    per_step: dict[str, list[float]] = {}
    workers_cpu0, pg_cpu0, bench_cpu0 = workers.cpu(), tree_cpu(pg_pid)[0], cpu_seconds()
    ticks0 = machine_cpu_ticks()
    peak_rss = 0.0

    def think_time() -> float:
        return rng.uniform(*think)

    def walk(index: int) -> Any:
        question = QUESTIONS[index % len(QUESTIONS)][1]
        return walk_light(
            emu, watcher, people[index].id, question, think_time, latencies, per_step,
            step_timeout=drain,
        )  # fmt: skip

    def every_20() -> None:
        nonlocal peak_rss
        peak_rss = max(peak_rss, workers.rss_mb())
        trim_emulator_log(emu)

    try:
        walks, elapsed = await open_loop(rng, rate, duration, len(people), walk, drain, every_20)
        workers_cpu = workers.cpu() - workers_cpu0
        pg_cpu = tree_cpu(pg_pid)[0] - pg_cpu0
        bench_cpu = cpu_seconds() - bench_cpu0
        machine_busy = busy_between(ticks0, machine_cpu_ticks())
        peak_rss = max(peak_rss, workers.rss_mb())
    finally:
        watcher.unsubscribe()
    lat = percentiles(latencies + [float("inf")] * walks["timeout"])
    updates = len(latencies)
    drained = await _drain(emu, deployment["conn"], drain)

    def per_update(cpu: float) -> float | None:
        return round(cpu * 1000 / updates, 2) if updates else None

    def cores(cpu: float) -> float | None:
        return round(cpu / elapsed, 3) if elapsed else None

    return {
        "rate_users_per_s": rate,
        "ok": lat["p99"] is not None and lat["p99"] < P99_LIMIT_MS and walks["timeout"] == 0,
        "walks": walks,
        "updates": updates,
        "updates_per_s": round(updates / elapsed, 2) if elapsed else None,
        "latency_ms": lat,
        "per_step_p99_ms": {k: percentiles(v)["p99"] for k, v in per_step.items()},
        "workers_cpu_ms_per_update": per_update(workers_cpu),
        "postgres_cpu_ms_per_update": per_update(pg_cpu),
        # Cores busy on average during the trial (1.0 = one core all the time).
        "workers_cores": cores(workers_cpu),
        "postgres_cores": cores(pg_cpu),
        "harness_cores": cores(bench_cpu),  # the emulator and the load generator
        "machine_busy": machine_busy,  # share of all cores, everything on the machine
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "workers_rss_mb": peak_rss,
        "drained_after": drained,
    }


def limit_of(trial_result: dict[str, Any], count: int, nproc: int) -> str:
    """Name what saturated in a trial: the part whose CPU was (nearly) full."""
    if trial_result["machine_busy"] is not None and trial_result["machine_busy"] >= SATURATED:
        return "machine cores"
    if (trial_result["workers_cores"] or 0) >= SATURATED * count:
        return "workers cpu"
    if (trial_result["postgres_cores"] or 0) >= SATURATED:
        return "postgresql cpu"
    if (trial_result["harness_cores"] or 0) >= SATURATED:
        return "load generator cpu"
    return "latency (no cpu full)"


def summarize(trials: list[dict[str, Any]], count: int, nproc: int) -> dict[str, Any]:
    """Reduce one worker count's trials to its capacity and where it saturates."""
    trials = sorted(trials, key=lambda t: t["rate_users_per_s"])
    ok = [t for t in trials if t["ok"]]
    failed = [t for t in trials if not t["ok"]]
    best = max(ok, key=lambda t: t["rate_users_per_s"]) if ok else None
    knee = min(failed, key=lambda t: t["rate_users_per_s"]) if failed else None
    at = knee or (trials[-1] if trials else None)
    return {
        "max_rate_p99_under_1s": best["rate_users_per_s"] if best else None,
        "updates_per_s_at_it": best["updates_per_s"] if best else None,
        "workers_cpu_ms_per_update_at_it": best["workers_cpu_ms_per_update"] if best else None,
        "postgres_cpu_ms_per_update_at_it": best["postgres_cpu_ms_per_update"] if best else None,
        "knee_rate": knee["rate_users_per_s"] if knee else None,
        # At the knee (or the highest rate tried, if none failed): what was full.
        "saturation": {
            "at_rate": at["rate_users_per_s"],
            "limit": limit_of(at, count, nproc) if knee else "not reached",
            "workers_cores": at["workers_cores"],
            "postgres_cores": at["postgres_cores"],
            "harness_cores": at["harness_cores"],
            "machine_busy": at["machine_busy"],
        }
        if at
        else None,
        "trials": trials,
    }


async def run_count(
    pg: Any, count: int, rates: list[float], bisect: int, tmp: Path, **kw: Any
) -> dict[str, Any]:
    """Start ``count`` workers on a fresh schema and emulator; search their capacity."""
    import asyncpg

    url = await pg.migrated_schema()
    emu = make_emulator(caps=True, latency=0.05, seed=kw["seed"])
    emu.webhook_connections = WEBHOOK_CONNECTIONS
    port = _free_port()
    async with emulator_server(emu) as server:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TGBOT_TOKEN": TOKEN,
            "TGBOT_API_BASE_URL": server.base_url,
            "TGBOT_DATABASE_URL": url,
            "TGBOT_DB_PATH": str(tmp / f"w{count}.db"),  # the demo wallet's file beside it
            "TGBOT_RUN_DEMO_WALLET": "true",
            "TGBOT_WALLET_PUBLIC_URL": f"http://127.0.0.1:{_free_port()}",
            "TGBOT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
            "TGBOT_WEBHOOK_PORT": str(port),
            "TGBOT_WEBHOOK_SECRET": "bench-workers-secret",
            "TGBOT_LOG_LEVEL": "INFO",  # "Application started" says a worker is up
        }
        workers = Workers(count, env, tmp / f"workers{count}.log")
        conn = await asyncpg.connect(url)
        trials: list[dict[str, Any]] = []
        try:
            workers.start()
            await workers.ready(emu)
            deployment = {
                "emu": emu,
                "workers": workers,
                "pg_pid": pg.postmaster_pid(),
                "conn": conn,
                "users": 0,
            }
            # Warm up, not measured: a question per worker or so reaches each.
            await trial(deployment, 2.0 * count, **{**kw, "duration": 1.0})

            async def point(rate: float) -> dict[str, Any]:
                result = await trial(deployment, rate, **kw)
                trials.append(result)
                print(
                    f"# {count} workers, {rate}/s: p99 {result['latency_ms']['p99']} ms, "
                    f"{result['updates_per_s']} updates/s, workers {result['workers_cores']} "
                    f"cores, postgres {result['postgres_cores']}, harness "
                    f"{result['harness_cores']}, machine {result['machine_busy']}, "
                    f"ok {result['ok']}",
                    file=sys.stderr,
                )
                return result

            for rate in rates:
                result = await point(rate)
                if not result["ok"] or not result["drained_after"]:
                    break
            for _ in range(bisect):
                passed = [t["rate_users_per_s"] for t in trials if t["ok"]]
                over = [t["rate_users_per_s"] for t in trials if not t["ok"]]
                if not passed or not over or not trials[-1]["drained_after"]:
                    break
                low, high = max(passed), min(r for r in over if r > max(passed))
                if high - low < 0.5:
                    break
                await point(round((low + high) / 2, 1))
        finally:
            exit_code = workers.stop()
            await conn.close()
    summary = summarize(trials, count, os.cpu_count() or 1)
    summary["stopped_with"] = exit_code
    return summary


async def main_async(args: Any) -> dict[str, Any]:
    from tests.support.postgres import PostgresServer, find_bindir, missing_reason

    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    if args.small:
        duration, think, drain, bisect, rates = 1.5, (1.0, 1.2), 20.0, 0, [2.0]
    else:
        duration, think, drain, bisect = args.duration, (1.0, 3.0), 60.0, args.bisect
        rates = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    if args.rates:
        rates = [float(r) for r in args.rates.split(",")]
    result: dict[str, Any] = {"bench": "workers", "small": args.small, "machine": machine()}
    reason = missing_reason()
    if reason:
        return {**result, "skipped": reason}
    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    pg = PostgresServer(find_bindir()).start(durable=not args.pg_fast)  # type: ignore[arg-type]
    results: dict[str, Any] = {}
    try:
        with workdir() as tmp:
            for count in counts:
                results[str(count)] = await run_count(
                    pg, count, rates, bisect, tmp,
                    duration=duration, think=think, seed=args.seed, drain=drain,
                )  # fmt: skip
    finally:
        pg.stop()
    return {
        **result,
        "params": {
            "flow": "light: /start -> typed question -> first button under the answer",
            "mode": "webhook, tgbot run --workers N (tgbot run for 1), SO_REUSEPORT",
            "worker_counts": counts,
            "rates_tried": rates,
            "arrival_seconds_per_rate": duration,
            "think_s": think,
            "bot_api_latency_s": 0.05,
            "telegram_caps": True,
            "webhook_connections": WEBHOOK_CONNECTIONS,
            "postgres_durable": not args.pg_fast,
            "p99_limit_ms": P99_LIMIT_MS,
            "saturated_at": SATURATED,
        },
        "results": results,
        "load_avg_before": load_before,
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "duration_s": round(time.monotonic() - started, 1),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    p.add_argument("--rates", help="comma-separated users/s to try, in order")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals per rate")
    p.add_argument("--bisect", type=int, default=1, help="bisection steps after the knee")
    p.add_argument(
        "--pg-fast",
        action="store_true",
        help="PostgreSQL without fsync and synchronous commit (as the tests run it)",
    )
    args = p.parse_args()
    if args.small and "--workers" not in sys.argv:
        args.workers = "1,2"
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
