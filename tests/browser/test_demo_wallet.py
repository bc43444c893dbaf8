"""The demo wallet panel: a user verifies with the one-time code read from the SMS outbox.

李雷 asks for his bank cards, shares his contact, reads the code the demo wallet "sent" in
the Demo wallet tab, types it in the chat (the bot deletes it) and gets his card list.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.browser.conftest import SCREENSHOTS, update_screenshots
from tests.browser.test_demo_page import LI_LEI, VISIBLE, bubble, press, type_and_send
from tests.support.waiting import wait_until
from tgbot.sandbox.demo import DemoHandle

LI_LEI_PHONE = "+8613800138001"
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")


async def outbox_code(demo: DemoHandle, phone: str, timeout: float = 10.0) -> str:
    """Wait until the demo wallet sent ``phone`` an SMS; return the code of the newest."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        messages = await demo.app.backend.sms_outbox(phone)  # type: ignore[attr-defined]
        if messages:
            found = CODE.search(messages[-1].text)
            assert found, messages[-1].text
            return found.group()
        if loop.time() > deadline:
            raise AssertionError(f"no SMS to {phone} in time")
        await asyncio.sleep(0.05)


async def test_user_verifies_with_the_code_from_the_wallet_panel(
    demo: DemoHandle, page: Any
) -> None:
    emu = demo.emu
    await page.locator(f"{VISIBLE} .person[data-user-id='{LI_LEI}']").click()
    await type_and_send(page, "/start")
    menu = await wait_until(lambda: emu.bot_messages(LI_LEI) and emu.last_bot_message(LI_LEI))
    await press(page, menu["message_id"], "menu:cards")

    # The bot asks to share the contact with a request_contact reply-keyboard button.
    contact_button = page.locator(f"{VISIBLE} .reply-keyboard .reply-btn.contact-btn")
    await contact_button.wait_for()
    await contact_button.click()
    expected = await outbox_code(demo, LI_LEI_PHONE)

    # The Demo wallet tab shows the SMS (newest first), the accounts and the code hint.
    await page.locator("[data-tab='wallet']").click()
    panel = page.locator("[data-panel='wallet']")
    newest = panel.locator(".sms-list .sms").first
    await newest.wait_for()
    assert await newest.get_attribute("data-phone") == LI_LEI_PHONE
    assert LI_LEI_PHONE in await newest.locator(".sms-phone").text_content()
    assert await newest.locator(".sms-time").text_content()
    shown = await newest.locator(".sms-code").first.text_content()
    assert shown == expected
    outbox = await demo.app.backend.sms_outbox()  # type: ignore[attr-defined]
    ids = await panel.locator(".sms-list .sms").evaluate_all(
        "items => items.map(item => item.dataset.smsId)"
    )
    assert ids == [m.id for m in reversed(outbox)]  # newest first

    row = panel.locator(f".accounts tr[data-phone='{LI_LEI_PHONE}']")
    assert "李雷" in await row.text_content()
    assert "active" in await row.locator(".status").text_content()
    locked = panel.locator(".accounts tr[data-phone='+8613800138002'] .status")
    assert "locked" in await locked.text_content()
    assert "246810" in await panel.locator(".code-hint").text_content()
    assert "/wallet/card/" in await panel.locator(".links-card").text_content()
    if update_screenshots():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "wallet.png"))

    # Back in the chat: type the code; the bot deletes it and shows the cards.
    await page.locator("[data-tab='chats']").click()
    await type_and_send(page, shown)
    typed = await wait_until(
        lambda: next(
            (
                m
                for m in emu.chats[LI_LEI].messages.values()
                if m.sender_id == LI_LEI and m.data.get("text") == shown
            ),
            None,
        )
    )
    cards = await wait_until(
        lambda: next((m for m in emu.bot_messages(LI_LEI) if "尾号0017" in m.get("text", "")), None)
    )
    assert (
        "尾号0017"
        in await (await bubble(page, cards["message_id"])).locator(".text").text_content()
    )
    await wait_until(lambda: typed.deleted)
    await page.locator(f"{VISIBLE} .msg[data-message-id='{typed.message_id}']").wait_for(
        state="detached"
    )
    texts = await page.locator(f"{VISIBLE} .msg .text").all_text_contents()
    assert shown not in texts
    await emu.settle(quiet=0.2)
