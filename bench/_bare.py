"""Bare python-telegram-bot as a benchmark's child process: ``python -m bench._bare '<spec>'``.

The yardstick the bot is measured against: a PTB ``Application`` with no inbox, no
persistence, no lanes, whose handlers make exactly the Bot API calls the bot made for the
same step (``templates``, recorded from the bot by :func:`bench._common.record_bot_traffic`:
the same texts, HTML and keyboards). With ``wallet``, each step first waits as long as the
bot's wallet calls for that step would (``wallet_calls`` of them, each ``lo``..``hi``
seconds; a ``timeout_rate`` fraction wait ``timeout_s``), so the wallet flow's floor is the
wallet's latency and nothing else.

Spec: ``mode`` "sequential" (PTB's default, one update at a time) or "concurrent" (64 at
once, as the bot); ``templates`` and ``wallet_calls``, or a ``traffic_file`` holding both;
optional ``wallet``; ``uvloop`` to run on uvloop; ``tuned_gc`` for ``tgbot run``'s
garbage-collector settings (:mod:`tgbot.heap`; the heap is frozen once started). Settings
come from ``TGBOT_TOKEN`` and ``TGBOT_API_BASE_URL``. Prints ``READY`` once polling, and on
SIGTERM one JSON line (CPU seconds since ready, RSS).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from typing import Any

from telegram import Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tgbot.heap import freeze_heap, tune_collector

#: Which recorded step a pressed button replays (by callback data prefix); anything else is
#: the light path's "first button under the answer".
BUTTON_STEPS = (
    ("tx:open:", "detail"),
    ("tx:refund:", "refund"),
    ("refund:reason:", "reason"),
    ("refund:full", "amount"),
    ("refund:confirm", "confirm"),
)


def button_step(data: str) -> str:
    """Return the recorded step a button with ``data`` stands for."""
    return next((step for prefix, step in BUTTON_STEPS if data.startswith(prefix)), "button")


async def replay(
    update: Update, context: ContextTypes.DEFAULT_TYPE, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    """Make the recorded calls, addressed to this update's chat, query and message."""
    query = update.callback_query
    for method, params in calls:
        params = dict(params)
        if "chat_id" in params:
            params["chat_id"] = update.effective_chat.id
        if method == "answerCallbackQuery":
            params["callback_query_id"] = query.id
        elif query is not None and "message_id" in params:
            params["message_id"] = query.message.message_id
        await getattr(context.bot, method)(**params)


def build(spec: dict[str, Any]) -> Any:
    """Return the bare Application the spec describes."""
    if "traffic_file" in spec:
        with open(spec["traffic_file"], encoding="utf-8") as fh:
            spec = {**json.load(fh), **spec}
    templates: dict[str, list] = spec["templates"]
    wallet = spec.get("wallet")
    wallet_calls: dict[str, int] = spec.get("wallet_calls", {})
    rng = random.Random(spec.get("seed", 1))

    async def wait_for_wallet(step: str) -> None:
        for _ in range(wallet_calls.get(step, 0) if wallet else 0):
            if wallet.get("timeout_rate") and rng.random() < wallet["timeout_rate"]:
                await asyncio.sleep(wallet["timeout_s"])
            else:
                await asyncio.sleep(rng.uniform(wallet["lo"], wallet["hi"]))

    async def step(update: Update, context: ContextTypes.DEFAULT_TYPE, name: str) -> None:
        await wait_for_wallet(name)
        await replay(update, context, templates[name])

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await step(update, context, "start")

    async def transactions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await step(update, context, "list")

    async def question(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await step(update, context, "question")

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await step(update, context, button_step(update.callback_query.data or ""))

    builder = (
        ApplicationBuilder()
        .token(os.environ["TGBOT_TOKEN"])
        .base_url(os.environ["TGBOT_API_BASE_URL"])
        .concurrent_updates(64 if spec["mode"] == "concurrent" else False)
    )
    app = builder.build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("transactions", transactions))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, question))
    app.add_handler(CallbackQueryHandler(button))
    return app


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    from bench._common import cpu_seconds, rss_mb

    app = build(spec)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.initialize()
    await app.updater.start_polling(poll_interval=0.0, timeout=10, allowed_updates=Update.ALL_TYPES)
    await app.start()
    if spec.get("tuned_gc"):
        freeze_heap()
    started_cpu = cpu_seconds()
    print("READY", flush=True)
    await stop.wait()
    cpu = cpu_seconds() - started_cpu
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    return {"cpu_s_after_ready": round(cpu, 3), **rss_mb()}


def main() -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    spec = json.loads(sys.argv[1])
    if spec.get("tuned_gc"):
        tune_collector()
    if spec.get("uvloop"):
        import uvloop

        report = uvloop.run(run(spec))
    else:
        report = asyncio.run(run(spec))
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
