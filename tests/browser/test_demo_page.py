"""The demo page in headless Chromium: be a Chinese or an English user, an agent, set faults.

Every assertion compares what the page shows with what the emulator says the bot sent, so
the tests hold whatever the catalogs say.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.browser.conftest import SCREENSHOTS, update_screenshots
from tests.support.waiting import wait_until
from tgbot.sandbox.client import TINY_PNG
from tgbot.sandbox.demo import DemoHandle

LI_LEI, ALICE, BOB = 10001, 10003, 10004
VISIBLE = "[data-panel]:not([hidden])"


async def bot_reply(demo: DemoHandle, chat_id: int, count_before: int) -> dict[str, Any]:
    """Wait until the bot sent a new message to ``chat_id``; return its latest."""
    await wait_until(lambda: len(demo.emu.bot_messages(chat_id)) > count_before)
    await demo.emu.settle(quiet=0.2)
    return demo.emu.last_bot_message(chat_id)


async def bubble(page: Any, message_id: int) -> Any:
    """Return the visible bubble of ``message_id``, waiting for it."""
    locator = page.locator(f"{VISIBLE} .msg[data-message-id='{message_id}']")
    await locator.wait_for()
    return locator


async def shown_text(page: Any, message_id: int) -> str:
    """Return the text the page shows in a bubble (exactly its text nodes)."""
    return await (await bubble(page, message_id)).locator(".text").text_content()


async def type_and_send(page: Any, text: str) -> None:
    """Type into the visible composer and press Enter."""
    box = page.locator(f"{VISIBLE} .composer .input")
    await box.fill(text)
    await box.press("Enter")


async def press(page: Any, message_id: int, data: str) -> None:
    """Click the inline button with callback ``data`` under a bubble."""
    msg = await bubble(page, message_id)
    await msg.locator(f"button.inline-btn[data-callback-data='{data}']").click()


async def assert_entities_rendered(page: Any, message: dict[str, Any]) -> None:
    """Check bold/italic/code entities became elements around exactly their text."""
    text = message.get("text", "")
    tags = {"bold": "b", "italic": "i", "code": "code", "pre": "pre", "blockquote": "blockquote"}
    for kind, tag in tags.items():
        expected = [
            utf16_slice(text, e["offset"], e["length"])
            for e in message.get("entities", [])
            if e["type"] == kind
        ]
        if not expected:
            continue
        shown = (
            await (await bubble(page, message["message_id"]))
            .locator(f".text {tag}")
            .all_text_contents()
        )
        assert shown == expected


def utf16_slice(text: str, offset: int, length: int) -> str:
    """Return ``text[offset:offset+length]`` in UTF-16 units, as Telegram counts."""
    raw = text.encode("utf-16-le")
    return raw[offset * 2 : (offset + length) * 2].decode("utf-16-le")


async def test_chinese_user_starts_and_switches_language(demo: DemoHandle, page: Any) -> None:
    """李雷 sends /start, sees the greeting and the menu, asks for help, then picks English."""
    person = page.locator(f"[data-panel='chats'] .person[data-user-id='{LI_LEI}']")
    assert await person.locator(".person-name").text_content() == "李雷"
    await person.click()
    assert "李雷" in (await page.locator(f"{VISIBLE} .chat-status").text_content())

    await type_and_send(page, "/start")
    greeting = await bot_reply(demo, LI_LEI, 0)
    assert "李雷" in greeting["text"]
    assert await shown_text(page, greeting["message_id"]) == greeting["text"]
    mine = await bubble(page, greeting["message_id"] - 1)
    assert "out" in (await mine.get_attribute("class"))
    assert "in" in (await (await bubble(page, greeting["message_id"])).get_attribute("class"))
    labels = (
        await (await bubble(page, greeting["message_id"]))
        .locator("button.inline-btn")
        .all_text_contents()
    )
    assert labels == [b for row in demo.emu.buttons(greeting) for b in row]

    await type_and_send(page, "/help")
    help_message = await bot_reply(demo, LI_LEI, 1)
    assert await shown_text(page, help_message["message_id"]) == help_message["text"]
    await assert_entities_rendered(page, help_message)
    if update_screenshots():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "demo.png"))

    # The language buttons come in place of the menu, and the menu comes back in place, in
    # English: one message navigated, no new ones.
    before = len(demo.emu.bot_messages(LI_LEI))
    menu_id = greeting["message_id"]
    choose = await edited_to(demo, page, LI_LEI, menu_id, "lang:menu", "Please choose")
    assert await shown_text(page, menu_id) == choose["text"]
    assert await (await bubble(page, menu_id)).locator(".edited").count() == 1
    menu = await edited_to(demo, page, LI_LEI, menu_id, "lang:set:en", "Language set to English")
    assert await shown_text(page, menu_id) == menu["text"]
    assert menu["text"].isascii()  # the menu now comes in English
    assert len(demo.emu.bot_messages(LI_LEI)) == before


async def edited_to(
    demo: DemoHandle, page: Any, chat_id: int, message_id: int, data: str, expect: str
) -> dict[str, Any]:
    """Press ``data`` under a bubble; wait until the bot edited that message to a text with
    ``expect`` and the page shows it; return the message."""
    await press(page, message_id, data)
    message = await wait_until(
        lambda: (
            (m := demo.emu.message(chat_id, message_id).data) and expect in m.get("text", "") and m
        )
    )
    await demo.emu.settle(quiet=0.2)
    message = demo.emu.message(chat_id, message_id).data
    await wait_for_text(page, message_id, message["text"])
    return message


async def wait_for_text(page: Any, message_id: int, text: str) -> None:
    """Wait until a bubble shows ``text`` (after a live edit)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await shown_text(page, message_id) != text:
        assert loop.time() < deadline, f"bubble {message_id} never showed {text!r}"
        await asyncio.sleep(0.05)


async def test_english_user_starts_and_switches_to_chinese(demo: DemoHandle, page: Any) -> None:
    """Alice (English Telegram) gets an English greeting, then switches to 中文."""
    await page.locator(f".person[data-user-id='{ALICE}']").click()
    await type_and_send(page, "/start")
    greeting = await bot_reply(demo, ALICE, 0)
    assert "Alice" in greeting["text"] and greeting["text"].isascii()
    assert await shown_text(page, greeting["message_id"]) == greeting["text"]

    menu_id = greeting["message_id"]
    await edited_to(demo, page, ALICE, menu_id, "lang:menu", "请选择语言")
    menu = await edited_to(demo, page, ALICE, menu_id, "lang:set:zh_Hans", "语言已切换为中文")
    assert await shown_text(page, menu_id) == menu["text"]
    # Switching users keeps each conversation apart.
    await page.locator(f".person[data-user-id='{BOB}']").click()
    assert await page.locator(f"{VISIBLE} .msg").count() == 0
    await page.locator(f".person[data-user-id='{ALICE}']").click()
    assert await page.locator(f"{VISIBLE} .msg").count() == len(demo.emu.chat_messages(ALICE))


async def test_formatting_edits_deletions_toasts_and_reply_keyboard(
    demo: DemoHandle, page: Any
) -> None:
    """Entities render by UTF-16 offsets; edits, deletions and answers show live."""
    emu = demo.emu
    await page.locator(f".person[data-user-id='{BOB}']").click()
    await type_and_send(page, "/start")
    await bot_reply(demo, BOB, 0)
    html = (
        "<b>粗体 bold</b> 😀 <i>italic</i> <code>code</code> <a href='https://example.com/x'>"
        "link</a> <tg-spoiler>secret</tg-spoiler> &lt;script&gt;alert(1)&lt;/script&gt;\n"
        "<blockquote>quoted 引用</blockquote><pre>pre block</pre>"
    )
    status, sent = await emu.call(
        "sendMessage",
        {
            "chat_id": BOB,
            "text": html,
            "parse_mode": "HTML",
            "reply_markup": json.dumps(
                {
                    "inline_keyboard": [
                        [{"text": "Open site", "url": "https://example.com/help"}],
                        [{"text": "Ping", "callback_data": "demo:ping"}],
                    ]
                }
            ),
        },
    )
    assert status == 200
    message = sent["result"]
    shown = await bubble(page, message["message_id"])
    assert await shown.locator(".text").text_content() == message["text"]
    for entity in message["entities"]:
        tag = {
            "bold": "b",
            "italic": "i",
            "code": "code",
            "text_link": "a",
            "spoiler": ".spoiler",
            "blockquote": "blockquote",
            "pre": "pre",
        }[entity["type"]]
        part = utf16_slice(message["text"], entity["offset"], entity["length"])
        assert await shown.locator(f".text {tag}").first.text_content() == part
    assert await shown.locator(".text a").get_attribute("href") == "https://example.com/x"
    assert await shown.locator("script").count() == 0  # escaped, never parsed as HTML
    assert await shown.locator("button.inline-btn.url").count() == 1

    # A press reaches the bot as a callback query; its answer shows as a toast.
    before = len(emu._queries)
    await shown.locator("button[data-callback-data='demo:ping']").click()
    await wait_until(lambda: len(emu._queries) > before)
    query_id = list(emu._queries)[-1]
    assert emu._queries[query_id]["user_id"] == BOB
    await emu.settle(quiet=0.2)
    if not emu._queries[query_id]["answered"]:
        await emu.call("answerCallbackQuery", {"callback_query_id": query_id, "text": "Pong 好"})
    toast_text = emu.callback_answers[query_id]["text"]
    if toast_text:
        await page.locator(".toast .toast-text", has_text=toast_text).wait_for()

    # Edits and deletions arrive live.
    status, _ = await emu.call(
        "editMessageText",
        {
            "chat_id": BOB,
            "message_id": message["message_id"],
            "text": "<b>edited</b> 已编辑",
            "parse_mode": "HTML",
        },
    )
    assert status == 200
    await wait_for_text(page, message["message_id"], "edited 已编辑")
    assert await shown.locator(".edited").count() == 1
    assert await shown.locator("button.inline-btn").count() == 0
    await emu.call("deleteMessage", {"chat_id": BOB, "message_id": message["message_id"]})
    await shown.wait_for(state="detached")

    # A reply keyboard with a "share my contact" button sends Bob's own contact card.
    keyboard = {
        "keyboard": [[{"text": "📱 Share my phone number", "request_contact": True}], ["Cancel"]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
        "input_field_placeholder": "Tap the button",
    }
    await emu.call(
        "sendMessage",
        {"chat_id": BOB, "text": "Share your contact", "reply_markup": json.dumps(keyboard)},
    )
    contact_button = page.locator(f"{VISIBLE} .reply-keyboard .reply-btn.contact-btn")
    await contact_button.wait_for()
    placeholder = page.locator(f"{VISIBLE} .composer .input")
    assert await placeholder.get_attribute("placeholder") == "Tap the button"
    await contact_button.click()
    contact = await wait_until(
        lambda: [m for m in emu.chat_messages(BOB) if "contact" in m] or None
    )
    assert contact[0]["contact"]["user_id"] == BOB
    assert "forward_origin" not in contact[0]
    await (await bubble(page, contact[0]["message_id"])).locator(".contact").wait_for()
    await page.locator(f"{VISIBLE} .reply-keyboard").wait_for(state="hidden")

    # A photo from the file picker arrives as a photo message and shows in a bubble.
    await page.locator(f"{VISIBLE} .file-input").set_input_files(
        {"name": "receipt.png", "mimeType": "image/png", "buffer": TINY_PNG}
    )
    photo = await wait_until(lambda: [m for m in emu.chat_messages(BOB) if "photo" in m] or None)
    assert photo[0]["from"]["id"] == BOB
    await (await bubble(page, photo[0]["message_id"])).locator("img.photo").wait_for()
    await emu.settle(quiet=0.2)


async def test_agents_group_tab_shows_topics_and_sends_as_agent(
    demo: DemoHandle, page: Any
) -> None:
    """The agents' forum group: topics appear live; the agent writes inside a topic."""
    emu, world = demo.emu, demo.world
    group = world.agents_group
    await page.locator("[data-tab='agents']").click()
    panel = page.locator("[data-panel='agents']")
    await panel.wait_for()
    assert await panel.locator(".sidebar-title").text_content() == "U钱包客服 · Agents"
    assert "Agent Wang" in (await panel.locator(".sidebar-sub").text_content())

    status, created = await emu.call(
        "createForumTopic", {"chat_id": group.id, "name": "李雷 · 退款 #1"}
    )
    assert status == 200
    thread_id = created["result"]["message_thread_id"]
    topic = panel.locator(f".topic[data-thread-id='{thread_id}']")
    await topic.wait_for()
    await topic.click()
    assert await panel.locator(".chat-name").text_content() == "李雷 · 退款 #1"

    await type_and_send(page, "您好，我是客服小王")
    sent = await wait_until(
        lambda: (
            [
                m
                for m in emu.chat_messages(group.id, thread_id)
                if m.get("text") == "您好，我是客服小王"
            ]
            or None
        )
    )
    assert sent[0]["from"]["id"] == world.agent.user_id
    assert sent[0]["message_thread_id"] == thread_id
    shown = await bubble(page, sent[0]["message_id"])
    assert "out" in (await shown.get_attribute("class"))
    # The General topic does not show the topic's messages.
    await panel.locator(".topic[data-thread-id='general']").click()
    assert await panel.locator(f".msg[data-message-id='{sent[0]['message_id']}']").count() == 0
    await emu.settle(quiet=0.2)


async def test_admin_and_wallet_tabs(demo: DemoHandle, page: Any) -> None:
    """The admin chats with the bot privately; the wallet panel shows the demo accounts."""
    admin = demo.world.admin
    await page.locator("[data-tab='admin']").click()
    await type_and_send(page, "/start")
    reply = await bot_reply(demo, admin.user_id, 0)
    assert await shown_text(page, reply["message_id"]) == reply["text"]
    await page.locator("[data-tab='wallet']").click()
    wallet = page.locator("[data-panel='wallet']")
    await wallet.locator(".accounts tr[data-account-id='U1001']").wait_for()
    assert "SMS outbox" in await wallet.text_content()


async def test_faults_panel_round_trips_to_the_emulator(demo: DemoHandle, page: Any) -> None:
    """Settings made on the page reach ``emu.faults``; the emulator's show on the page."""
    emu = demo.emu
    await page.locator("[data-tab='faults']").click()
    form = page.locator("#faults-form")
    await form.wait_for()
    # Opening the tab loads the current settings: wait for it, or it may overwrite our typing.
    await form.locator(".faults-status", has_text="Loaded").wait_for()
    await form.locator("input[name='latency']").fill("0.25")
    await form.locator("input[name='rate_429']").fill("0.1")
    await form.locator("input[name='retry_after']").fill("3")
    await form.locator("input[name='rate_5xx']").fill("0.05")
    await form.locator("input[name='rate_timeout']").fill("0.02")
    await form.locator("input[name='timeout_after_delivery']").fill("0.5")
    await form.locator("input[name='caps.enabled']").check()
    await form.locator("input[name='caps.per_group_per_minute']").fill("20")
    await form.locator(f"input[name='blocked'][data-user-id='{BOB}']").check()
    await form.locator("button[name='apply']").click()
    await form.locator(".faults-status", has_text="Applied").wait_for()

    faults = emu.faults
    assert (faults.latency, faults.rate_429, faults.retry_after) == (0.25, 0.1, 3)
    assert (faults.rate_5xx, faults.rate_timeout, faults.timeout_after_delivery) == (
        0.05,
        0.02,
        0.5,
    )
    assert emu.caps.enabled and emu.caps.per_group_per_minute == 20
    assert emu.users[BOB].blocked_bot and not emu.users[ALICE].blocked_bot
    await page.locator("[data-tab='chats']").click()
    await page.locator(f".person[data-user-id='{BOB}'] .badge.blocked").wait_for()

    # Changed by a test on the emulator: the panel shows it after a reload.
    emu.faults.rate_429 = 0.3
    emu.caps.enabled = False
    emu.unblock_bot(BOB)
    await page.locator("[data-tab='faults']").click()
    await form.locator("button[name='reload']").click()
    await form.locator(".faults-status", has_text="Loaded").wait_for()
    assert await form.locator("input[name='rate_429']").input_value() == "0.3"
    assert not await form.locator("input[name='caps.enabled']").is_checked()
    assert not await form.locator(f"input[name='blocked'][data-user-id='{BOB}']").is_checked()

    await form.locator("button[name='reset']").click()
    await wait_until(lambda: emu.faults.rate_429 == 0 and emu.faults.latency == 0)
    await emu.settle(quiet=0.2)
