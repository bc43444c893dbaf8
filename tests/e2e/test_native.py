"""Issue 16: the bot feels like a native Telegram service in both languages.

Each test walks what a user (or an agent, or an admin) does in the demo and asserts what
they see: no dead end, no raw template, no live stale button, no mixed-language line, no
contradicting fact.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from handlers import cards as cards_module
from handlers import password as password_module
from handlers.common import STALE_TEXT, USE_BUTTONS
from handlers.lookup import LEGEND
from services.desk.texts import URGENT_ENDED_ADMINS
from tests.e2e.test_handoff import RIGHTS, Desk
from tests.harness import TOKEN, UserSession
from tgbot.i18n import translator
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps

ZH = translator("zh_Hans")
EN = translator("en")
LILEI, ALICE, WANGFANG = "+8613800138001", "+14155550103", "+8613800138005"
CODE = "246810"
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
async def agents(make_bot):
    """An English agents' group with two agents and an admin (as in test_handoff)."""
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    wang = emu.add_user("Agent Wang", language_code="zh-hans")
    admin = emu.add_user("Admin Zhao", language_code="en", started=True)
    group = emu.add_forum_group(
        "Agents", members=[wang.id], admins=[wang.id], bot_is_admin=True, bot_rights=RIGHTS
    )
    emu.closed_topic_admin_bypass = True  # as on Telegram for a bot that manages topics
    bot = await make_bot(emu=emu, agent_chats=((group.id, None),), admin_ids=frozenset({admin.id}))
    await bot.app.repos.agents.add(wang.id, "Wang", admin.id)
    yield Desk(bot, group.id, wang.id, admin.id)
    assert bot.violations == []


def person(bot, name, phone, lang="en"):
    return bot.user(name, lang, phone_number=phone)


async def verified(bot, user, entry):
    await user.send(entry)
    await user.share_contact()
    await user.send(CODE)


# ---------------------------------------------------------------- the worst three


async def test_chinese_new_question_after_a_close_is_answered_and_menus_work(agents):
    li = agents.bot.user("李雷", "zh-hans")
    await li.send("/human")
    ticket = await agents.bot.app.repos.tickets.open_for_user(li.user_id)
    thread = agents.topic_of(ticket.code)
    await agents.say(thread, "您好，请问还有什么问题？")
    await agents.say(thread, "/close")
    await li.click("⭐⭐⭐⭐⭐")
    # Right after rating, a question is a new question: answered, not filed as a comment.
    await li.send("我的账户还是冻结的，怎么解冻")
    assert li.last_message.text.startswith("🧊 账户解冻")
    rated = await agents.bot.app.repos.tickets.get(ticket.id)
    assert rated.status == "closed" and rated.rating == 5 and rated.rating_comment is None
    assert "我的账户还是冻结的，怎么解冻" not in agents.texts(thread)
    await li.send("/cards")
    assert "分享我的手机号" in li.last_message.text  # menus are not blocked
    # Rated once: a second rating (an old client, a replay) only says so.
    rated_message = next(m for m in li.messages if m.text.startswith("感谢您的评分"))
    query = await li.press_forged(rated_message.message_id, f"tk:rate:{ticket.id}:2")
    assert li.answer_of(query) == ZH.gettext("Thank you, your rating is already noted.")
    assert (await agents.bot.app.repos.tickets.get(ticket.id)).rating == 5


@pytest.mark.parametrize(
    "text",
    ["冻结我的账户 是骗子的说法，请勿轻信", "Never reply to anyone who says: freeze my account"],
)
async def test_an_admins_notice_mentioning_freeze_words_is_the_notice(make_bot, text):
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    admin = emu.add_user("Admin", language_code="en", started=True)
    bot = await make_bot(emu=emu, admin_ids=frozenset({admin.id}))
    boss = UserSession(bot, admin.id, "Admin")
    await boss.send("/broadcast")
    await boss.click("English users")
    await boss.send(text)
    # Taken as the notice's text: no freeze confirmation, the next step asks for a link.
    assert boss.last_message.text.startswith("Optionally send a link")
    assert not any("Freeze your U-Pay account" in t for t in boss.texts)
    await boss.click("No link")
    assert text in boss.texts  # the preview, exactly what users get


async def test_html_typed_in_a_notice_is_kept_and_bad_html_is_refused_with_why(make_bot):
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    admin = emu.add_user("Admin", language_code="en", started=True)
    reader = emu.add_user("Reader", language_code="en", started=True)
    bot = await make_bot(emu=emu, admin_ids=frozenset({admin.id}), broadcast_rate=5000.0)
    await bot.app.repos.users.touch(reader.id, "Reader", "en")
    boss = UserSession(bot, admin.id, "Admin")
    await boss.send("/broadcast")
    await boss.click("English users")
    await boss.send("<div>Update</div> the app <b>now")
    refusal = boss.last_message.text
    assert refusal.startswith("Telegram would refuse this text:")
    assert "line 1: Telegram does not support <div>" in refusal
    assert "<b> is not closed" in refusal
    await boss.send("<b>Security notice</b>: staff never ask for codes & passwords.")
    await boss.click("No link")
    preview = next(m for m in boss.messages if m.text.startswith("Security notice"))
    assert preview.text == "Security notice: staff never ask for codes & passwords."
    assert preview.raw["entities"] == [{"offset": 0, "length": 15, "type": "bold"}]
    await boss.click("📣 Send")
    for _ in range(200):
        if any(m.get("entities") for m in emu.bot_messages(reader.id)):
            break
        await asyncio.sleep(0.05)
    got = emu.bot_messages(reader.id)[-1]
    assert "&lt;b&gt;" not in got["text"] and got["entities"][0]["type"] == "bold"


STEPS = [
    # (entry, what to do before typing, language)
    ("/transactions", None, "zh-hans"),  # the search step (typed text is its input)
    ("/refund", "pick", "en"),  # the reason step (buttons)
    ("/password", None, "en"),  # the password choice (buttons)
    ("/freeze", None, "zh-hans"),  # the freeze confirmation
]


@pytest.mark.parametrize(("entry", "then", "lang"), STEPS)
@pytest.mark.parametrize("words", ["转人工", "人工客服", "agent"])
async def test_asking_for_a_human_works_at_every_step(agents, entry, then, lang, words):
    user = person(
        agents.bot,
        "李雷" if lang == "zh-hans" else "Alice",
        LILEI if lang == "zh-hans" else ALICE,
        lang,
    )
    await verified(agents.bot, user, entry) if entry != "/freeze" else await user.send(entry)
    if then == "pick":
        await user.click(user.last_message.buttons[0])
    flow = agents.bot.app.user_data[user.user_id]["flow"]["name"]
    assert "menu:human" in user.last_message.button_data  # the 🙋 button is on the step
    await user.send(words)
    ticket = await agents.bot.app.repos.tickets.open_for_user(user.user_id)
    assert ticket is not None and ticket.context["flow"] == flow
    assert "flow" not in agents.bot.app.user_data.get(user.user_id, {})  # the flow ended
    header = agents.texts(agents.topic_of(ticket.code))[0]
    assert "Came from: " in header


async def test_the_human_button_of_a_step_opens_a_ticket_with_the_flow(agents):
    alice = person(agents.bot, "Alice", ALICE)
    await verified(agents.bot, alice, "/cards")
    step = alice.last_message.message_id
    await alice.click("🙋 Talk to a human")
    ticket = await agents.bot.app.repos.tickets.open_for_user(alice.user_id)
    assert ticket.context == {"entry": "menu", "flow": "cards"}
    # The step became the ticket's message (in place), with the "end" button only.
    assert alice.shown(step).text.startswith("🙋 I have passed your request")
    assert alice.shown(step).buttons == ["✖️ End conversation"]


async def test_a_complaint_inside_a_flow_reaches_a_human_with_its_words(agents):
    li = person(agents.bot, "李雷", LILEI, "zh-hans")
    await verified(agents.bot, li, "/refunds")
    await li.send("/refund")
    await li.send("我要投诉，退款太慢了")
    ticket = await agents.bot.app.repos.tickets.open_for_user(li.user_id)
    assert ticket.context["complaint"] == "我要投诉，退款太慢了"
    assert li.last_message.text.startswith("给您带来不便，非常抱歉")
    header = agents.texts(agents.topic_of(ticket.code))[0]
    assert "⚠️ Complaint: “我要投诉，退款太慢了”" in header


async def test_at_the_contact_step_the_reply_keyboard_has_a_way_back_and_a_human(agents):
    li = person(agents.bot, "李雷", LILEI, "zh-hans")
    await li.send("/password")
    assert agents.emu.reply_keyboard(li.user_id) == [
        ["📱 分享我的手机号"],
        ["⬅️ 返回", "🙋 联系人工客服"],
    ]
    agents.emu.press_reply_button(li.user_id, "⬅️ 返回")
    await agents.bot.settle()
    assert agents.emu.reply_keyboard(li.user_id) is None  # taken away
    assert li.last_message.text == ZH.gettext("What can I help you with?")
    # The human button of the reply keyboard (it sends its text) opens a ticket, and the
    # reply keyboard goes.
    await li.send("/freeze")
    await li.click("🧊 确定，立即冻结")
    assert agents.emu.reply_keyboard(li.user_id) is not None  # the freeze's share step
    agents.emu.press_reply_button(li.user_id, "🙋 联系人工客服")
    await agents.bot.settle()
    ticket = await agents.bot.app.repos.tickets.open_for_user(li.user_id)
    assert ticket.context["flow"] == "freeze"
    assert agents.emu.reply_keyboard(li.user_id) is None


# ---------------------------------------------------------------- flows


async def test_menus_navigate_in_place_and_back_leaves_no_live_confirm(bot):
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("/start link_demo_lilei")
    menu = li.last_message.message_id
    await li.click("💳 银行卡", message_id=menu)
    assert li.last_message.message_id == menu  # the menu became the card list
    await li.click("➖ 解绑招商银行（尾号0017）")
    assert li.last_message.message_id == menu
    assert "确定解绑" in li.buttons
    await li.click("⬅️ 返回")
    assert li.last_message.message_id == menu  # back: the list again, in place
    assert "确定解绑" not in " ".join(b for m in li.messages for b in m.buttons)
    assert len(await bot.app.backend.list_cards("U1001")) == 2


async def test_a_stale_press_explains_itself_and_offers_the_step_it_belonged_to(bot):
    alice = person(bot, "Alice", ALICE)
    await alice.send("/start link_demo_alice")
    await alice.send("/transactions")
    old_list = alice.last_message.message_id
    await alice.send("/cards")  # another flow: the transaction list is now stale
    query = await alice.press_forged(old_list, "tx:page:next")
    assert alice.answer_of(query) == STALE_TEXT
    assert alice.shown(old_list).buttons == ["🧾 Transactions", "🏠 Main menu"]
    await alice.click("🧾 Transactions", message_id=old_list)
    assert alice.shown(old_list).text.startswith("Your transactions, last 30 days")


async def test_only_one_message_after_verification_and_the_code_prompt_loses_its_buttons(bot):
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("/cards")
    await li.share_contact()
    prompt = li.last_message.message_id
    assert "🔁 重新获取验证码" in li.buttons
    before = len(li.texts)
    await li.send(CODE)
    assert len(li.texts) == before  # nothing new: the prompt became the answer
    shown = li.shown(prompt)
    assert shown.text.startswith("✅ 验证成功：U钱包账户李雷")
    assert "您已绑定的银行卡" in shown.text
    assert "🔁 重新获取验证码" not in shown.buttons


async def test_typed_text_at_a_button_step_is_pointed_at_the_buttons_or_understood(bot):
    alice = person(bot, "Alice", ALICE)
    await alice.send("/start link_demo_alice")
    await alice.send("/refund")
    await alice.click(alice.last_message.buttons[0])
    await alice.send("hello?")  # at the reason step (buttons only)
    assert alice.last_message.text == USE_BUTTONS
    assert "✖️ Cancel" in alice.buttons
    await alice.click("Charged twice", message_id=alice.messages[-2].message_id)
    await alice.send("1")
    assert alice.last_message.text.startswith("Please confirm your refund request")
    await alice.send("2")  # an amount typed at the confirmation: understood
    confirm = alice.last_message
    assert confirm.text.startswith("Please confirm") and "CN¥2.00" in confirm.text
    assert not await bot.app.backend.list_refunds("U1003")


async def test_ending_an_unanswered_ticket_is_confirmed_and_asks_no_rating(agents):
    alice = agents.bot.user("Alice")
    await alice.send("/human")
    await alice.send("/end")
    assert alice.last_message.text.startswith("No agent has replied yet.")
    await alice.click("⏳ Keep waiting")
    ticket = await agents.bot.app.repos.tickets.open_for_user(alice.user_id)
    assert ticket is not None
    await alice.send("/end")
    await alice.click("✖️ Yes, end it")
    assert "nothing to rate" in alice.last_message.text
    assert not any("⭐" in b for b in alice.last_message.buttons)


async def test_an_urgent_ticket_ended_unanswered_is_flagged_not_closed_silently(agents):
    li = person(agents.bot, "李雷", LILEI, "zh-hans")
    await li.send("/start link_demo_lilei")
    await li.send("我的手机被偷了")
    await li.click("🧊 确定，立即冻结")
    ticket = await agents.bot.app.repos.tickets.open_for_user(li.user_id)
    assert ticket.priority >= 2
    await li.send("/end")
    assert "账户会保持冻结" in li.last_message.text
    await li.click("✖️ 确定结束")
    assert "只能由客服解冻" in li.last_message.text
    thread = agents.topic_of(ticket.code)
    assert any(
        t.startswith("⚠️ URGENT: the user ended this freeze ticket") for t in agents.texts(thread)
    )
    admin_texts = [m["text"] for m in agents.emu.bot_messages(agents.admin_id)]
    assert EN.gettext(URGENT_ENDED_ADMINS).format(code=ticket.code) in admin_texts


async def test_an_old_menu_button_during_a_ticket_answers_plain_words(agents):
    li = agents.bot.user("李雷", "zh-hans")
    await li.send("/start")
    menu = li.last_message.message_id
    await li.send("/human")
    ticket = await agents.bot.app.repos.tickets.open_for_user(li.user_id)
    query = await li.click("💳 银行卡", message_id=menu)
    answer = li.answer_of(query)
    assert answer == f"您正在与客服沟通（工单{ticket.code}），对话结束前菜单暂停使用。"
    assert "<b>" not in answer and "{" not in answer


async def test_a_card_number_in_a_ticket_keeps_the_chat_and_agents_read_their_language(agents):
    li = agents.bot.user("李雷", "zh-hans")
    await li.send("/human")
    ticket = await agents.bot.app.repos.tickets.open_for_user(li.user_id)
    await li.send("卡号 4111 1111 1111 1111")
    warning = li.last_message
    assert warning.text.startswith("⚠️ 您的消息疑似包含银行卡号")
    assert warning.buttons == ["✖️ 结束对话"]  # menus stay paused in a ticket
    line = agents.texts(agents.topic_of(ticket.code))[-1]
    assert line.startswith("⚠️ The user sent a bank card number;")  # the group's English
    assert not HAN.search(line.split("Masked:")[0])


async def test_transaction_rows_show_status_sign_and_time_and_names_per_language(bot):
    alice = person(bot, "Alice", ALICE)
    await alice.send("/start link_demo_alice")
    await alice.send("/transactions")
    listing = alice.last_message
    rows = [
        b
        for b, d in zip(listing.buttons, listing.button_data, strict=True)
        if d.startswith("tx:open:")
    ]
    assert rows and all(re.match(r"^(✅|⏳|❌|↩️) [+-]", row) for row in rows)
    assert all(re.search(r"\d\d:\d\d$", row) for row in rows)  # a time, no seconds
    assert EN.gettext(LEGEND).format(zone="Beijing time") in listing.text
    assert [
        b.removeprefix("✓ ")
        for b in listing.buttons
        if b.removeprefix("✓ ") in ("All", "Processing", "Failed", "Refunded")
    ] == ["All", "Processing", "Failed", "Refunded"]
    page = await bot.app.backend.list_transactions("U1003", limit=100)
    topup = next((t for t in page.items if t.kind == "topup"), None)
    named = next(t for t in page.items if t.merchant_names.get("en") not in (None, t.merchant))
    await alice.press_forged(listing.message_id, f"tx:open:{named.id}")
    detail = alice.last_message.text
    assert detail.startswith(named.merchant_names["en"]) and not HAN.search(detail)
    assert re.search(r"Time: \w{3} \d{1,2}, \d{4}, \d\d:\d\d \(Beijing time\)", detail)
    if topup is not None:
        await alice.press_forged(listing.message_id, f"tx:open:{topup.id}")
        assert alice.last_message.text.startswith("Balance top-up")
        assert "Top-up: +" in alice.last_message.text


async def test_the_search_hint_example_finds_a_transaction_and_not_found_has_a_way_back(bot):
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("/start link_demo_lilei")
    await li.send("/transactions")
    example = re.search(r"例如“([^”]+)”", li.last_message.text).group(1)
    assert re.match(r"^\d{1,2}月\d{1,2}日 \d+\.\d\d$", example)
    await li.send(example)
    found = li.last_message.text
    assert "交易单号" in found or "有多笔交易符合条件" in found  # the example finds something
    await li.send("1月1日 12345.67")
    assert li.last_message.text.startswith("最近90天内没有找到")
    await li.click("⬅️ 返回列表")
    assert "您最近30天的交易" in li.last_message.text


async def test_english_hint_starts_with_an_english_example(bot):
    alice = person(bot, "Alice", ALICE)
    await alice.send("/start link_demo_alice")
    await alice.send("/transactions")
    example = re.search(r"e\.g\. “([^”]+)”", alice.last_message.text).group(1)
    assert re.match(r"^[A-Z][a-z]{2} \d{1,2} \d+\.\d\d$", example)
    await alice.send(example)
    assert "Transaction ID:" in alice.last_message.text or "Several" in alice.last_message.text


async def test_refunds_name_the_merchant_and_where_the_money_goes(bot):
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("/start link_demo_lilei")
    page = await bot.app.backend.list_transactions("U1001", limit=100)
    tx = next(
        t
        for t in page.items
        if t.kind == "payment"
        and t.status == "success"
        and t.merchant
        in (
            "星巴克",
            "肯德基",
            "美团外卖",
            "京东商城",
            "滴滴出行",
            "瑞幸咖啡",
            "淘宝",
            "拼多多",
            "海底捞",
            "盒马鲜生",
            "全家便利店",
        )
    )
    await li.send(f"/start refund_{tx.id}")
    assert li.last_message.text.startswith(f"为您在{tx.merchant}的付款")
    await li.click("重复扣款")
    await li.click(li.last_message.buttons[0])
    confirm = li.last_message.text
    assert "退回" in confirm and ("余额" in confirm or "卡" in confirm)
    await li.click("✅ 提交退款申请")
    created = li.last_message.text
    assert created.startswith(f"✅ 退款申请已提交：为您在{tx.merchant}的付款退款")
    await li.send("/refunds")
    assert f"• {tx.merchant}：" in li.last_message.text
    assert "北京时间" in li.last_message.text


async def test_a_partly_refunded_payment_offers_all_that_is_left(bot):
    alice = person(bot, "Alice", ALICE)
    await alice.send("/start link_demo_alice")
    page = await bot.app.backend.list_transactions("U1003", limit=200)
    part = next(
        (t for t in page.items if t.status == "partially_refunded" and t.kind == "payment"), None
    )
    if part is None:
        pytest.skip("the demo data has no partly refunded payment for Alice")
    await alice.send(f"/start refund_{part.id}")
    if "Sorry, I cannot" in alice.last_message.text:
        pytest.skip("not refundable any more")
    await alice.click("Charged twice")
    assert "was already refunded" in alice.last_message.text
    assert alice.last_message.buttons[0].startswith("All that is left: ")


async def test_a_refused_card_offers_another_card(bot, monkeypatch):
    monkeypatch.setattr(cards_module, "BINDING_POLL_SECONDS", 0.05)
    alice = person(bot, "Alice", ALICE)
    await alice.send("/start link_demo_alice")
    await alice.send("/cards")
    labels = alice.buttons
    assert any(b.startswith("➖ Unbind ") for b in labels) and "✖️ Cancel" in labels
    assert not any(b.startswith("✖️ Unbind") for b in labels)  # distinct from cancel
    await alice.click("➕ Add a card")
    url = next(
        b["url"] for row in alice.last_message.raw["reply_markup"]["inline_keyboard"]
        for b in row if "url" in b
    )  # fmt: skip
    await bot.app.backend.submit_card(url.rsplit("/", 1)[-1], "4000 0000 0000 0002")
    for _ in range(200):  # the bot notices the page's result by itself
        if "could not be bound" in alice.last_message.text:
            break
        await asyncio.sleep(0.02)
    await bot.settle()
    assert alice.last_message.text == "The card could not be bound: the bank refused the card."
    assert "➕ Try another card" in alice.buttons
    await alice.click("➕ Try another card")
    assert alice.last_message.text.startswith("Tap the button to open U-Pay's secure page")


async def test_after_a_reset_the_user_gets_a_password_changed_notice(make_bot, monkeypatch):
    monkeypatch.setattr(password_module, "PASSWORD_POLL_SECONDS", 0.05)  # before the start
    bot = await make_bot()
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("/start link_demo_lilei")
    await li.send("/password")
    await li.click("🔗 发送重置密码链接")
    assert "分钟内有效" in li.last_message.text and "北京时间" in li.last_message.text
    url = li.last_message.raw["reply_markup"]["inline_keyboard"][0][0]["url"]
    await bot.app.backend.complete_password_reset(url.rsplit("/", 1)[-1], "n3wPassword")
    for _ in range(200):
        if li.last_message.text.startswith("🔐 安全提醒"):
            break
        await asyncio.sleep(0.02)
    await bot.settle()
    notice = li.last_message
    assert notice.text.startswith("🔐 安全提醒：您的U钱包账户李雷已于")
    assert "（北京时间）修改了登录密码" in notice.text
    assert notice.buttons == ["🧊 冻结我的账户", "🙋 联系人工客服"]
    # Once: the watch ended with the notice.
    await asyncio.sleep(0.3)
    await bot.settle()
    assert sum(m.text.startswith("🔐 安全提醒") for m in li.messages) == 1


async def test_the_password_changed_notice_survives_a_restart(make_bot, monkeypatch):
    """The reset link's watch is in the database: a bot restarted after sending the link (a
    deploy, a crash) still tells the user once the password is changed."""
    monkeypatch.setattr(password_module, "PASSWORD_POLL_SECONDS", 0.05)
    first = await make_bot()
    alice = person(first, "Alice", ALICE)
    await alice.send("/start link_demo_alice")
    await alice.send("/password")
    await alice.click("🔗 Send me a reset link")
    url = alice.last_message.raw["reply_markup"]["inline_keyboard"][0][0]["url"]
    await first.close()  # nothing of the first bot's memory goes on
    again = await make_bot(emu=first.emu)
    alice = UserSession(again, alice.user_id, "Alice")
    await again.app.backend.complete_password_reset(url.rsplit("/", 1)[-1], "n3wPassword")
    await again.wait_until(
        lambda: alice.last_message.text.startswith("🔐 Security notice"), "the notice"
    )
    await again.settle()
    assert alice.last_message.buttons == ["🧊 Freeze my account", "🙋 Talk to a human"]
    assert sum(m.text.startswith("🔐 Security notice") for m in alice.messages) == 1


async def test_a_slow_wallet_shows_typing(bot, monkeypatch):
    alice = person(bot, "Alice", ALICE)
    await alice.send("/start link_demo_alice")
    backend = bot.app.backend
    real = backend.list_cards

    async def slow(*args, **kwargs):
        await asyncio.sleep(1.5)
        return await real(*args, **kwargs)

    monkeypatch.setattr(backend, "list_cards", slow)
    await alice.send("/cards")
    actions = [a for a in bot.emu.chat_actions if a["chat_id"] == alice.user_id]
    assert actions and actions[0]["action"] == "typing"
    quick = len(actions)
    monkeypatch.undo()
    await alice.send("/help")  # a quick answer shows no "typing"
    assert len([a for a in bot.emu.chat_actions if a["chat_id"] == alice.user_id]) == quick


# ---------------------------------------------------------------- agents' side


@pytest.mark.parametrize(("mode", "expected"), [("team", "Support\nHi"), ("off", "Hi")])
async def test_agents_label_can_be_the_team_only_or_off(make_bot, mode, expected):
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    agent = emu.add_user("Agent Wang", language_code="en")
    group = emu.add_forum_group(
        "Agents", members=[agent.id], admins=[agent.id], bot_is_admin=True, bot_rights=RIGHTS
    )
    bot = await make_bot(emu=emu, agent_chats=((group.id, None),), agent_label=mode)
    await bot.app.repos.agents.add(agent.id, "Wang", None)
    alice = bot.user("Alice")
    await alice.send("/human")
    ticket = await bot.app.repos.tickets.open_for_user(alice.user_id)
    emu.user_send(agent.id, "Hi", chat_id=group.id, thread_id=ticket.thread_id)
    await bot.settle()
    assert alice.last_message.text == expected


async def test_header_card_has_no_internal_ids(agents):
    alice = agents.bot.user("Alice")
    await alice.send("payment failed")
    await alice.click("🙋 Talk to a human")
    ticket = await agents.bot.app.repos.tickets.open_for_user(alice.user_id)
    header = agents.texts(agents.topic_of(ticket.code))[0]
    assert "Help article shown: 💳 A payment failed" in header
    assert "payment_failed" not in header and str(alice.user_id) not in header
    assert "Question: “payment failed”" in header


async def test_a_flow_replaced_by_another_leaves_no_live_step_behind(bot):
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("/start link_demo_lilei")
    await li.send("/refund")
    await li.click(li.last_message.buttons[0])
    await li.click("重复扣款")
    await li.click(li.last_message.buttons[0])
    confirm = li.last_message
    assert "✅ 提交退款申请" in confirm.buttons
    await li.send("/cards")  # another flow, by a command
    assert li.shown(confirm.message_id).buttons == []
    listing = li.last_message.message_id
    await li.send("/start")  # leaving: its step goes quiet too
    assert li.shown(listing).buttons == []


async def test_the_ticket_message_reads_natively_and_its_end_button_goes_at_the_close(agents):
    li = agents.bot.user("李雷", "zh-hans")
    await li.send("/human")
    opened = li.last_message
    assert "您目前排在第1位。预计等待约" in opened.text  # no Western space between sentences
    assert opened.buttons == ["✖️ 结束对话"]
    ticket = await agents.bot.app.repos.tickets.open_for_user(li.user_id)
    thread = agents.topic_of(ticket.code)
    await agents.say(thread, "您好")
    await agents.say(thread, "/close")
    assert li.shown(opened.message_id).buttons == []  # spent: no live "end" left behind
