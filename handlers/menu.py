"""The front door: /start greets in the user's language with the main menu, /help says what
the bot does and what it will never ask for, /language switches 中文 / English, /cancel
leaves whatever is running.
"""

from __future__ import annotations

import contextlib

from markupsafe import Markup
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    Message,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, CommandHandler
from telegram.ext import filters as f

from services.wording import MENU
from tgbot.context import BotContext
from tgbot.i18n import LANGUAGES, N_, translator
from tgbot.keyboard import Keyboard
from tgbot.text import escape

from .common import (
    CANCELLED,
    GREETING,
    MENU_PROMPT,
    answer_button,
    answer_expired,
    main_menu_markup,
    show_main_menu,
)

HELP_TITLE = N_("<b>What I can do</b>")
HELP_TOPIC = N_("• {label}: {description}")
HELP_GUIDED = N_("Choose a topic from the menu and I will guide you step by step.")
HELP_COMMANDS = N_("<b>Commands</b>")
HELP_LINE = N_("/{command} – {description}")
HELP_SAFETY = N_(
    "<b>Stay safe</b>\n"
    "• U-Pay staff never ask for your password, PIN, full card number or a verification "
    "code, by chat, phone, text message or e-mail. I ask for a code only during a check "
    "that you started yourself, here.\n"
    "• Official support is this bot and the U-Pay app. Someone writing to you from a "
    "personal Telegram account in U-Pay's name is not us, whatever their name or photo.\n"
    "• Nobody from U-Pay will ask you to move money to a “safe account”, or to pay or "
    "share your screen to receive a refund or compensation.\n"
    "• Cards are added only on U-Pay's secure page.\n"
    "• Think you were cheated? Freeze your account with /freeze, talk to a human, and in "
    "mainland China call the police on 110 or the anti-fraud hotline 96110."
)
HELP_PRIVACY = N_(
    "<b>Your data</b>\n/privacy – what I keep about you and for how long; export it or delete it"
)
CHOOSE_LANGUAGE = N_("Please choose your language:")
# TRANSLATORS: name the language of this catalog (the one the user just chose).
LANGUAGE_SET = N_("Language set to English.")
NOTHING_TO_CANCEL = N_("There is nothing to cancel.")

#: Command menus per language (and the /help list): (command, description).
COMMANDS = [
    ("start", N_("Main menu")),
    ("help", N_("What I can do")),
    ("password", N_("Reset the password or unlock the account")),
    ("cards", N_("Bank cards")),
    ("freeze", N_("Freeze my account now")),
    ("transactions", N_("Find a transaction")),
    ("refund", N_("Ask for a refund")),
    ("refunds", N_("My refunds")),
    ("human", N_("Talk to a human")),
    ("language", "中文 / English"),  # the same in every language
    ("cancel", N_("Stop what you are doing")),
    ("privacy", N_("Privacy and my data")),
]


async def start(update: Update, context: BotContext) -> None:
    """Greet the user by name and show the main menu (an unknown deep link lands here too)."""
    user = update.effective_user
    text = context._(GREETING).format(name=escape(user.first_name if user else ""))
    await show_main_menu(update, context, text)


async def help_command(update: Update, context: BotContext) -> None:
    """Explain what the bot does (the flows on the menu) and what it will never ask for."""
    topics = [
        context._(HELP_TOPIC).format(label=context._(e.label), description=context._(e.description))
        for e in MENU
    ]
    parts = [context._(HELP_TITLE), *(topics or [context._(HELP_GUIDED)])]
    # /privacy has its own section below ("Your data").
    commands = [context._(HELP_COMMANDS)] + [
        context._(HELP_LINE).format(command=name, description=context._(desc))
        for name, desc in COMMANDS
        if name != "privacy"
    ]
    text = Markup("\n\n").join(
        [
            Markup("\n").join(parts),
            Markup("\n").join(commands),
            context._(HELP_SAFETY),
            context._(HELP_PRIVACY),
        ]
    )
    await update.effective_message.reply_text(text, reply_markup=main_menu_markup(context))


def language_keyboard() -> list[list[InlineKeyboardButton]]:
    """Return one button per supported language, labelled in that language."""
    return [
        [InlineKeyboardButton(name, callback_data=f"lang:set:{code}")]
        for code, name in LANGUAGES.items()
    ]


async def language_command(update: Update, context: BotContext) -> None:
    """Offer the language buttons (in place of the menu that asked for them)."""
    text = "\n".join(translator(code).gettext(CHOOSE_LANGUAGE) for code in LANGUAGES)
    query = update.callback_query
    markup = Keyboard(language_keyboard())
    if query is not None and isinstance(query.message, Message):
        await answer_button(update, context)
        with contextlib.suppress(BadRequest):
            await query.message.edit_text(text, reply_markup=markup)
            return
    await context.bot.send_message(update.effective_chat.id, text, reply_markup=markup)


async def set_language(update: Update, context: BotContext) -> None:
    """Store the chosen language and show the menu in it."""
    query = update.callback_query
    code = query.data.rsplit(":", 1)[-1]
    if code not in LANGUAGES:
        await answer_expired(update, context)
        return
    await context.repos.users.set_language(query.from_user.id, code)
    context.tr = translator(code)
    await answer_button(update, context)
    text = f"{context._(LANGUAGE_SET)}\n\n{context._(MENU_PROMPT)}"
    await show_main_menu(update, context, text, edit=True)


async def cancel(update: Update, context: BotContext) -> None:
    """Confirm the cancel (the lifecycle stage already ended any running flow)."""
    text = CANCELLED if context.ended_flow else NOTHING_TO_CANCEL
    await update.effective_message.reply_text(
        context._(text), reply_markup=main_menu_markup(context)
    )


async def set_command_menus(application: Application) -> None:
    """Publish the command menu in every language (Telegram shows the user's)."""
    scope = BotCommandScopeAllPrivateChats()
    for code in LANGUAGES:
        tr = translator(code)
        commands = [BotCommand(name, tr.gettext(desc)) for name, desc in COMMANDS]
        language_code = "zh" if code == "zh_Hans" else code
        await application.bot.set_my_commands(commands, scope=scope, language_code=language_code)
    default = translator(application.config.default_language)
    await application.bot.set_my_commands(
        [BotCommand(name, default.gettext(desc)) for name, desc in COMMANDS], scope=scope
    )


def command_handlers() -> list:
    """Return the front door's command and button handlers (private chats)."""
    private = f.ChatType.PRIVATE
    return [
        CommandHandler("start", start, filters=private),
        CommandHandler("menu", start, filters=private),
        CommandHandler("help", help_command, filters=private),
        CommandHandler("language", language_command, filters=private),
        CommandHandler("cancel", cancel, filters=private),
        CallbackQueryHandler(language_command, pattern=r"^lang:menu$"),
        CallbackQueryHandler(set_language, pattern=r"^lang:set:[A-Za-z_]{1,10}$"),
    ]
