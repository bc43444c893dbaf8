"""The main screens in both languages, walked in the demo page as a user would; with
``UPDATE_SCREENSHOTS=1`` each is written to docs/screenshots/ (``<screen>-zh.png`` and
``<screen>-en.png``).

李雷 (a Chinese Telegram) and Alice (an English one) link their wallet from the app, look
at their transactions and a detail, prepare a refund, open their cards, and talk to an agent
who answers and closes the ticket. Each screen is also checked for what issue 16 asked:
one language per screen, times with their zone, status icons, signed amounts, a way on.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, update_screenshots
from tests.browser.test_demo_page import (
    ALICE,
    LI_LEI,
    VISIBLE,
    bubble,
    press,
    type_and_send,
    wait_for_text,
)
from tests.support.waiting import wait_until
from tgbot.sandbox.demo import DemoHandle

HAN = re.compile(r"[\u4e00-\u9fff]")
PEOPLE = {
    "zh": (LI_LEI, "link_demo_lilei", "北京时间", "U1001"),
    "en": (ALICE, "link_demo_alice", "Beijing time", "U1003"),
}


async def snap(page: Any, name: str) -> None:
    """Write the screenshot when asked to (the chat is scrolled to its newest message)."""
    if update_screenshots():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.wait_for_timeout(300)  # let the last bubble finish its layout
        await page.screenshot(path=str(SCREENSHOTS / name))


def one_language(text: str, lang: str) -> bool:
    """Return True if ``text`` speaks only ``lang`` (names and merchants aside)."""
    if lang == "zh":
        return not re.search(r"\b(the|your|you|and|with)\b", text)
    return not HAN.search(text.replace("中文", "").replace("语言", ""))


async def latest(demo: DemoHandle, chat_id: int, condition: Any) -> dict[str, Any]:
    """Wait for a bot message in ``chat_id`` matching ``condition``; let the page catch up."""
    message = await wait_until(
        lambda: next((m for m in reversed(demo.emu.bot_messages(chat_id)) if condition(m)), None)
    )
    await demo.emu.settle(quiet=0.2)
    message = demo.emu.message(chat_id, message["message_id"]).data
    await wait_for_text(page_of[chat_id], message["message_id"], message["text"])
    return message


page_of: dict[int, Any] = {}


async def ticket_thread(demo: DemoHandle, user: int, timeout: float = 30.0) -> int:
    """Wait until the user's ticket has its forum topic; return the topic's id."""

    async def topic() -> int | None:
        ticket = await demo.app.repos.tickets.open_for_user(user)  # type: ignore[attr-defined]
        return ticket.thread_id if ticket is not None else None

    # Each look sleeps (the bot, on the same event loop, must get to create the ticket).
    return await wait_until(topic, timeout, "a topic for the ticket", interval=0.05)


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_main_screens(demo: DemoHandle, page: Any, lang: str) -> None:
    user, link, zone, account = PEOPLE[lang]
    page_of[user] = page
    emu = demo.emu
    await page.locator(f"{VISIBLE} .person[data-user-id='{user}']").click()

    # The menu, linked from the app.
    await type_and_send(page, f"/start {link}")
    menu = await latest(demo, user, lambda m: "lang:menu" in str(m.get("reply_markup")))
    assert one_language(menu["text"], lang)
    await type_and_send(page, "/help")
    help_message = await latest(demo, user, lambda m: "/password" in m.get("text", ""))
    assert one_language(help_message["text"], lang) and "96110" in help_message["text"]
    await snap(page, f"help-{lang}.png")

    # Transactions: status, signed amount, name, time; the legend names the zone.
    await type_and_send(page, "/transactions")
    listing = await latest(demo, user, lambda m: "tx:page:next" in str(m.get("reply_markup")))
    assert zone in listing["text"] and one_language(listing["text"], lang)
    rows = [
        b["text"]
        for row in listing["reply_markup"]["inline_keyboard"]
        for b in row
        if b["callback_data"].startswith("tx:open:")
    ]
    assert rows and all(re.match(r"^(✅|⏳|❌|↩️) [+-]", r) for r in rows)
    await snap(page, f"transactions-{lang}.png")

    # A detail, in place of the list, then the refund of a successful payment.
    backend = demo.app.backend  # type: ignore[attr-defined]
    payments = (await backend.list_transactions(account, limit=100)).items
    tx = next(
        t
        for t in payments
        if t.kind == "payment"
        and t.status == "success"
        and t.merchant not in ("中国移动话费充值", "Steam Wallet")
    )
    await type_and_send(page, tx.id)  # a search by transaction ID
    detail = await latest(demo, user, lambda m: tx.id in m.get("text", ""))
    assert f"（{zone}）" in detail["text"] or f"({zone})" in detail["text"]
    assert one_language(detail["text"].split("\n", 1)[1], lang)
    await snap(page, f"detail-{lang}.png")
    await press(page, detail["message_id"], f"tx:refund:{tx.id}")
    reason = await latest(
        demo, user, lambda m: "refund:reason:duplicate" in str(m.get("reply_markup"))
    )
    await press(page, reason["message_id"], "refund:reason:duplicate")
    amount = await latest(demo, user, lambda m: "refund:full" in str(m.get("reply_markup")))
    await press(page, amount["message_id"], "refund:full")
    confirm = await latest(demo, user, lambda m: "refund:confirm" in str(m.get("reply_markup")))
    assert one_language(confirm["text"], lang)
    await snap(page, f"refund-{lang}.png")

    # Cards.
    await type_and_send(page, "/cards")
    cards = await latest(demo, user, lambda m: "cards:add" in str(m.get("reply_markup")))
    assert one_language(cards["text"], lang)
    await snap(page, f"cards-{lang}.png")

    # A human: the agent answers (signed), closes; the user is asked to rate, or reopen.
    await press(page, cards["message_id"], "menu:human")
    thread = await ticket_thread(demo, user)
    group = demo.world.agents_group.id
    agent = demo.world.agent.user_id
    answer_text = "您好，已为您查到这笔付款。" if lang == "zh" else "Hello, I found that payment."
    emu.user_send(agent, answer_text, chat_id=group, thread_id=thread)
    await latest(demo, user, lambda m: answer_text in m.get("text", ""))
    emu.user_send(agent, "/close", chat_id=group, thread_id=thread)
    closing = await latest(demo, user, lambda m: "tk:reopen" in str(m.get("reply_markup")))
    assert one_language(closing["text"], lang)
    shown = await (await bubble(page, closing["message_id"])).locator(".text").text_content()
    assert shown == closing["text"]
    await snap(page, f"ticket-{lang}.png")
    await emu.settle(quiet=0.2)
