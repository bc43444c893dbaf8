"""The whole handoff played in the demo page: a user asks for a human, the agent claims the
topic and answers, the user reads the answer; then a screenshot of the agents' view."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import SCREENSHOTS, update_screenshots
from tests.browser.test_demo_page import LI_LEI, VISIBLE, bubble, press, type_and_send
from tests.support.waiting import wait_until
from tgbot.sandbox.demo import DemoHandle


async def test_user_reaches_an_agent_and_gets_the_answer(demo: DemoHandle, page: Any) -> None:
    emu, world = demo.emu, demo.world
    group = world.agents_group
    await page.locator(f"{VISIBLE} .person[data-user-id='{LI_LEI}']").click()
    await type_and_send(page, "/start")
    menu = await wait_until(lambda: emu.bot_messages(LI_LEI) and emu.last_bot_message(LI_LEI))
    await press(page, menu["message_id"], "menu:human")
    opened = await wait_until(
        lambda: next((m for m in emu.bot_messages(LI_LEI) if "工单号" in m.get("text", "")), None)
    )
    code = re.search(r"T[A-Z0-9]{5}", opened["text"]).group()
    shown = await (await bubble(page, opened["message_id"])).locator(".text").text_content()
    assert code in shown

    await page.locator("[data-tab='agents']").click()
    panel = page.locator("[data-panel='agents']")
    thread_id = await wait_until(
        lambda: next(
            (t for t, v in emu.topics(group.id).items() if v["name"].startswith(code)), None
        )
    )
    await panel.locator(f".topic[data-thread-id='{thread_id}']").click()
    header = await wait_until(
        lambda: next(
            (
                m
                for m in emu.bot_messages(group.id, thread_id)
                if m.get("text", "").startswith(f"Ticket {code}")
            ),
            None,
        )
    )
    await (
        (await bubble(page, header["message_id"]))
        .locator("button.inline-btn[data-callback-data^='tk:claim']")
        .click()
    )
    await wait_until(
        lambda: any(
            "claimed this ticket" in m.get("text", "")
            for m in emu.bot_messages(group.id, thread_id)[1:]
        )
    )
    await type_and_send(page, "您好，我是客服小王，请问有什么可以帮您？")
    answer = await wait_until(
        lambda: next(
            (m for m in emu.bot_messages(LI_LEI) if "您好，我是客服小王" in m.get("text", "")),
            None,
        )
    )
    assert answer["from"]["id"] == emu.bot.id  # the user sees the bot, not the account
    assert answer["text"].startswith("客服 · Wang\n")  # signed: a person of the team wrote it
    if update_screenshots():
        await page.screenshot(path=str(SCREENSHOTS / "handoff-agents.png"))
    await page.locator("[data-tab='chats']").click()
    await bubble(page, answer["message_id"])
    await emu.settle(quiet=0.2)
