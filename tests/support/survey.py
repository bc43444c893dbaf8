"""A three-step guided flow used only by the runtime tests (colour -> word -> confirm)."""

from __future__ import annotations

import asyncio
import os
import sys
from enum import StrEnum

from telegram import InlineKeyboardButton, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler
from telegram.ext import filters as f

from handlers.common import END, GuidedFlow, final, nav_rows, scratch, send_step
from tgbot.context import BotContext


class Survey(StrEnum):
    """States of the test survey."""

    COLOUR = "survey:colour"
    WORD = "survey:word"
    CONFIRM = "survey:confirm"


async def survey_start(update: Update, context: BotContext) -> Survey:
    """Ask for a colour."""
    keyboard = [
        [
            InlineKeyboardButton("Red", callback_data="survey:colour:red"),
            InlineKeyboardButton("Blue", callback_data="survey:colour:blue"),
        ],
        *nav_rows(context),
    ]
    await send_step(update, context, "Step 1/3: pick a colour", keyboard)
    return Survey.COLOUR


async def survey_colour(update: Update, context: BotContext) -> Survey:
    """Store the colour and ask for a word."""
    await update.callback_query.answer()
    scratch(context)["colour"] = update.callback_query.data.rsplit(":", 1)[-1]
    await send_step(update, context, "Step 2/3: type a word", nav_rows(context, "survey:back"))
    return Survey.WORD


async def survey_word(update: Update, context: BotContext) -> Survey:
    """Store the word and ask to confirm."""
    scratch(context)["word"] = update.message.text
    data = scratch(context)
    keyboard = [
        [InlineKeyboardButton("Confirm", callback_data="survey:confirm")],
        *nav_rows(context),
    ]
    await send_step(update, context, f"Step 3/3: {data['colour']} {data['word']}?", keyboard)
    return Survey.CONFIRM


async def survey_confirm(update: Update, context: BotContext) -> object:
    """Finish: echo the answers."""
    await update.callback_query.answer()
    data = scratch(context)
    await send_step(update, context, f"Thanks: {data['colour']} {data['word']}")
    return END


async def survey_cancel(update: Update, context: BotContext) -> object:
    """Leave the survey."""
    await update.callback_query.answer()
    await send_step(update, context, "Survey cancelled")
    return END


async def survey_slow(update: Update, context: BotContext) -> None:
    """Tell the user this step wants text."""
    await update.effective_message.reply_text("Please type a word")


def survey_flow() -> GuidedFlow:
    """Build the test survey flow."""
    return GuidedFlow(
        name="survey",
        entry_points=[CommandHandler("survey", survey_start)],
        states={
            Survey.COLOUR: [CallbackQueryHandler(survey_colour, pattern=r"^survey:colour:")],
            Survey.WORD: [
                MessageHandler(f.TEXT & ~f.COMMAND, survey_word),
                CallbackQueryHandler(survey_start, pattern=r"^survey:back$"),
            ],
            Survey.CONFIRM: [CallbackQueryHandler(survey_confirm, pattern=r"^survey:confirm$")],
        },
    )


async def quiz_start(update: Update, context: BotContext) -> str:
    """Ask the one quiz question."""
    keyboard = [[InlineKeyboardButton("42", callback_data="quiz:answer:42")], *nav_rows(context)]
    await send_step(update, context, "Quiz: what is the answer?", keyboard)
    return "quiz:ask"


async def quiz_answer(update: Update, context: BotContext) -> object:
    """Finish the quiz."""
    await update.callback_query.answer()
    await send_step(update, context, "Quiz done")
    return END


def quiz_flow() -> GuidedFlow:
    """Build a one-step test flow (to test that starting a flow ends another)."""
    return GuidedFlow(
        name="quiz",
        entry_points=[CommandHandler("quiz", quiz_start)],
        states={"quiz:ask": [CallbackQueryHandler(quiz_answer, pattern=r"^quiz:answer:")]},
        fallbacks=[CallbackQueryHandler(survey_cancel, pattern=r"^flow:cancel$")],
    )


async def slow_echo(update: Update, context: BotContext) -> None:
    """Answer ``/slow N`` after half a second with "slow N done" (for kill tests)."""
    await asyncio.sleep(float(os.environ.get("SLOW_SECONDS", "0.5")))
    await update.effective_message.reply_text(f"slow {' '.join(context.args)} done")


async def boom(update: Update, context: BotContext) -> None:
    """Fail on purpose (to test the error handler)."""
    raise RuntimeError("handler failed on purpose")


async def escalate(update: Update, context: BotContext) -> None:
    """Escalate like a flow would: with its context and a high priority."""
    from handlers.handoff import create_ticket

    await create_ticket(update, context, priority=1, info={"flow": "refund", "tx": "TX<123>"})


def support_handlers() -> list:
    """Return the test-only command handlers."""
    return final(
        [
            CommandHandler("slow", slow_echo),
            CommandHandler("boom", boom),
            CommandHandler("escalate", escalate),
        ]
    )


def main() -> int:
    """Run the bot with the survey flow (``python -m tests.support.survey``), for kill tests."""
    from tgbot.app import build_application
    from tgbot.cli import setup_logging
    from tgbot.config import load_config

    config = load_config()
    setup_logging(config.log_level)
    app = build_application(config, extra_flows=[survey_flow(), quiz_flow()])
    app.add_handlers(support_handlers(), group=5)
    if os.environ.get("SURVEY_STOP_AS_START_ENDS"):
        start = app.start

        async def start_then_stop_signal() -> None:
            await start()
            # A stop signal handled in the loop iteration in which start() returns, before
            # run_until_complete's own stop callback (a race a real Ctrl-C can hit).
            asyncio.get_running_loop().call_soon(app._raise_system_exit)

        app.start = start_then_stop_signal  # type: ignore[method-assign]
    if config.webhook_url or config.database_url:
        # As `tgbot run` serves it (several workers: tests/e2e/test_workers; a poller and its
        # standbys: tests/e2e/test_standby).
        from tgbot.cli import serve

        return serve(app, config)
    app.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
