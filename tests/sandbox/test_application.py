"""A real PTB Application polls the emulator and answers a user, through each transport."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from tests.support.waiting import wait_until
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.request import EmulatorRequest
from tgbot.sandbox.server import EmulatorServer


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet the user with a button."""
    button = InlineKeyboardButton("Balance", callback_data="menu:balance")
    await update.message.reply_html(
        f"Hi <b>{update.effective_user.first_name}</b>",
        reply_markup=InlineKeyboardMarkup([[button]]),
    )


async def balance(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the button and replace the menu text."""
    await update.callback_query.answer()
    await update.callback_query.edit_message_text("Balance: 10.00 USDT")


async def converse(emu: TelegramEmulator, app: Application) -> None:
    """Drive one user session against a running application."""
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(balance, pattern="^menu:balance$"))
    li = emu.add_user("李雷", language_code="zh-hans")
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        emu.user_send(li.id, "/start")
        # The reply is waited for, not a quiet moment: on a loaded machine the handler can
        # be quiet for longer than settle's 50 ms before it sends.
        await wait_until(lambda: emu.bot_messages(li.id), 30, "the reply")
        await emu.settle()
        menu = emu.last_bot_message(li.id)
        assert menu["text"] == "Hi 李雷"
        assert emu.buttons(menu) == [["Balance"]]
        query_id = emu.press_button(li.id, li.id, menu["message_id"], "Balance")
        await wait_until(
            lambda: (
                query_id in emu.callback_answers
                and emu.last_bot_message(li.id)["text"] != "Hi 李雷"
            ),
            30,
            "the button's answer and edit",
        )
        await emu.settle()
        assert emu.callback_answers[query_id]["text"] is None
        assert emu.last_bot_message(li.id)["text"] == "Balance: 10.00 USDT"
        await app.updater.stop()
        await app.stop()
    assert emu.pending_updates() == 0
    assert emu.violations == []


async def test_application_in_process(emu: TelegramEmulator) -> None:
    app = (
        Application.builder()
        .token(emu.token)
        .request(EmulatorRequest(emu))
        .get_updates_request(EmulatorRequest(emu))
        .build()
    )
    await converse(emu, app)


async def test_application_over_http(emu: TelegramEmulator) -> None:
    server = EmulatorServer(emu)
    await server.start()
    try:
        app = (
            Application.builder()
            .token(emu.token)
            .base_url(server.base_url)
            .base_file_url(server.base_file_url)
            .build()
        )
        await converse(emu, app)
    finally:
        await server.stop()
