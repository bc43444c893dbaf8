"""The bot as a benchmark's child process: ``python -m bench._child '<json spec>'``.

Settings come from ``TGBOT_*`` variables (as ``tgbot run``) plus the spec's ``config``
overrides; ``wallet`` wraps the backend in :class:`bench._common.SlowWallet`; ``profile``
names a file for a pyinstrument (or cProfile) report of the whole run; ``uvloop`` runs it on
uvloop; ``tuned_gc`` applies ``tgbot run``'s garbage-collector settings (:mod:`tgbot.heap`).
Prints ``READY`` once polling, and on SIGTERM/SIGINT stops gracefully and prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any

from telegram import Update


def _profiler(path: str | None) -> Any:
    if not path:
        return None
    try:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001, async_mode="disabled")
    except ImportError:
        import cProfile

        profiler = cProfile.Profile()
        profiler.kind = "cProfile"  # type: ignore[attr-defined]
        profiler.enable()
        return profiler
    profiler.start()
    profiler.kind = "pyinstrument"  # type: ignore[attr-defined]
    return profiler


def _finish_profile(profiler: Any, path: str) -> None:
    if profiler.kind == "pyinstrument":
        profiler.stop()
        with open(path, "w") as fh:
            fh.write(profiler.output_text(unicode=False, color=False, show_all=False))
        with open(path + ".html", "w") as fh:
            fh.write(profiler.output_html())
        from pyinstrument.renderers import ConsoleRenderer

        for flat_time, suffix in (("self", ".self.txt"), ("total", ".total.txt")):
            renderer = ConsoleRenderer(flat=True, flat_time=flat_time, show_all=True)
            with open(path + suffix, "w") as fh:
                fh.write(profiler.output(renderer))
    else:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        with open(path, "w") as fh:
            fh.write(out.getvalue())


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    from bench._common import GcClock, SlowWallet, cpu_seconds, rss_mb
    from tgbot.app import build_application
    from tgbot.config import load_config

    overrides = spec.get("config", {})
    if "agent_chats" in overrides:
        overrides["agent_chats"] = tuple(tuple(x) for x in overrides["agent_chats"])
    if "admin_ids" in overrides:
        overrides["admin_ids"] = frozenset(overrides["admin_ids"])
    config = load_config(**overrides)
    app = build_application(config)
    app.freeze_heap_when_started = bool(spec.get("tuned_gc"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.initialize()
    if spec.get("preload_answers"):
        # The free-text router (trained, embeddings loaded) before the bot polls, so that
        # start-up includes it.
        from tgbot.answers.router import default_router

        await asyncio.to_thread(default_router)
    if spec.get("refund_step_seconds"):
        app.backend.refund_step_seconds = spec["refund_step_seconds"]
    wallet = None
    if spec.get("wallet"):
        wallet = app.backend = SlowWallet(app.backend, **spec["wallet"])
    if spec.get("retry_scale") is not None:
        app.outbox.retry_scale = spec["retry_scale"]
    await app.updater.start_polling(poll_interval=0.0, timeout=10, allowed_updates=Update.ALL_TYPES)
    await app.start()
    await app.started.wait()  # what start-up does last (the heap's freeze) included
    started_cpu = cpu_seconds()
    collector = GcClock()
    print("READY", flush=True)
    await stop.wait()
    cpu = cpu_seconds() - started_cpu
    collected = collector.report()
    processed = getattr(app.update_processor, "in_progress", 0)
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    report = {
        "cpu_s_after_ready": round(cpu, 3),
        "gc_after_ready": collected,
        "in_progress_at_stop": processed,
        **rss_mb(),
    }
    if wallet is not None:
        report["wallet_calls"] = wallet.calls
        report["wallet_timeouts"] = wallet.timeouts
    return report


def main() -> int:
    spec = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    profiler = _profiler(spec.get("profile"))
    started = time.perf_counter()
    if spec.get("tuned_gc"):
        from tgbot.heap import tune_collector

        tune_collector()
    if spec.get("uvloop"):
        import uvloop

        report = uvloop.run(run(spec))
    else:
        report = asyncio.run(run(spec))
    report["wall_s"] = round(time.perf_counter() - started, 3)
    if profiler is not None:
        _finish_profile(profiler, spec["profile"])
        report["profile"] = spec["profile"]
        report["profiler"] = profiler.kind
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
