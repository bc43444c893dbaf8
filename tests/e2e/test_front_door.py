"""The front door in both languages: greeting, menu, help, language choice, errors."""

import logging
import re

from handlers.common import LANGUAGE_LABEL, MENU_PROMPT
from handlers.core import ERROR_TEXT
from handlers.menu import COMMANDS, HELP_SAFETY, HELP_TITLE, LANGUAGE_SET
from services.wording import MENU
from tgbot.i18n import translator

ZH = translator("zh_Hans")
EN = translator("en")
HAN = re.compile(r"[\u4e00-\u9fff]")


async def test_chinese_user_gets_a_native_greeting_menu_and_help(any_bot):
    li = any_bot.user("李雷", "zh-hans")
    await li.send("/start")
    greeting = li.last_message
    assert "李雷" in greeting.text and HAN.search(greeting.text)
    assert "Hello" not in greeting.text
    expected = [ZH.gettext(entry.label) for entry in MENU] + [LANGUAGE_LABEL]
    assert greeting.buttons == expected and len(expected) >= 5
    await li.send("/help")
    help_text = li.last_message.text
    assert help_text.startswith(re.sub("<[^>]+>", "", ZH.gettext(HELP_TITLE)))
    assert re.sub("<[^>]+>", "", ZH.gettext(HELP_SAFETY)) in help_text
    assert "密码" in help_text and "验证码" in help_text  # rule 9: never asked in chat
    assert "110" in help_text and "96110" in help_text  # where to report fraud
    assert not re.search(r"\b(the|you|your)\b", help_text)  # no English left over
    # Every command of the menu is in /help (the README documents them all).
    for name, _ in COMMANDS:
        assert f"/{name} – " in help_text


async def test_english_user_gets_an_english_greeting_menu_and_help(any_bot):
    alice = any_bot.user("Alice", "en-GB")
    await alice.send("/start")
    assert alice.last_message.text.startswith("Hello, Alice!")
    assert alice.buttons == [
        "🔑 Password / unlock",
        "💳 Bank cards",
        "🧊 Freeze my account",
        "🧾 Transactions",
        "↩️ Refunds",
        "🙋 Talk to a human",
        "🌐 语言 / Language",  # the cue for a reader of either language
    ]
    await alice.send("/help")
    text = alice.last_message.text
    assert text.startswith("What I can do")
    assert "U-Pay staff never ask for your password, PIN, full card number" in text
    assert "personal Telegram account" in text and "96110" in text
    for command in ("/password", "/cards", "/freeze", "/refund ", "/refunds", "/transactions"):
        assert command in text
    assert not HAN.search(text.replace("中文", "").replace("语言", ""))


async def test_unsupported_telegram_language_uses_the_configured_default(make_bot):
    bot = await make_bot(default_language="zh_Hans")
    pierre = bot.user("Pierre", "fr")
    await pierre.send("/start")
    assert HAN.search(pierre.last_message.text)


async def test_language_choice_is_remembered_across_restarts(make_bot):
    bot = await make_bot()
    li = bot.user("李雷", "zh-hans")
    await li.send("/language")
    assert li.buttons == ["中文", "English"]
    await li.click("English")
    # One message, in place of the language buttons: set, and the menu in English.
    assert li.texts == [f"{EN.gettext(LANGUAGE_SET)}\n\n{EN.gettext(MENU_PROMPT)}"]
    assert li.buttons[-1] == LANGUAGE_LABEL
    emu = bot.emu
    await bot.stop()
    bot2 = await make_bot(emu=emu)
    li.harness = bot2
    await li.send("/start")
    assert li.last_message.text.startswith("Hello, 李雷!")
    user = await bot2.app.repos.users.get(li.user_id)
    assert user.language == "en"


async def test_command_menus_are_published_per_language(bot):
    li = bot.user("李雷", "zh-hans")
    alice = bot.user("Alice", "en")
    zh_menu = {c["command"]: c["description"] for c in bot.emu.command_menu(li.user_id)}
    en_menu = {c["command"]: c["description"] for c in bot.emu.command_menu(alice.user_id)}
    assert set(zh_menu) == set(en_menu) == {name for name, _ in COMMANDS}
    assert {"password", "cards", "freeze", "refund", "refunds", "human"} <= set(en_menu)
    assert zh_menu["start"] == ZH.gettext(dict(COMMANDS)["start"]) and HAN.search(zh_menu["start"])
    assert en_menu["start"] == "Main menu"


async def test_unknown_deep_link_lands_on_the_menu(bot):
    alice = bot.user("Alice")
    await alice.send("/start nonsense_payload_123")
    assert alice.last_message.text.startswith("Hello, Alice!")
    assert LANGUAGE_LABEL in alice.buttons


async def test_an_error_gets_a_localized_apology_with_a_reference(bot, caplog):
    li = bot.user("李雷", "zh-hans")
    with caplog.at_level(logging.INFO):
        await li.send("/boom secret-user-words")
    apology = li.last_message.text
    ref = re.search(r"[0-9A-F]{8}", apology).group()
    assert apology == ZH.gettext(ERROR_TEXT).format(ref=ref)
    assert li.buttons  # a way forward
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"ref {ref}" in logged and "handler failed on purpose" in logged
    assert "secret-user-words" not in logged


async def test_garbage_emoji_and_non_text_get_a_clear_answer(bot):
    alice = bot.user("Alice")
    await alice.send("🤖🤖🤖 ¯\\_(ツ)_/¯ \x00")
    assert "did not understand" in alice.last_message.text
    bot.emu.user_send_sticker(alice.user_id)
    await bot.settle()
    assert (
        alice.last_message.text
        == "I can only read text messages here. Please choose from the menu."
    )
