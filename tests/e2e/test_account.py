"""Account linking, verification and the account flows (password, cards, freeze), as users."""

from __future__ import annotations

import logging
import re
import time

import pytest

from tgbot.backend import create_backend
from tgbot.backend.base import Unavailable

LILEI, HANMEIMEI, ALICE, BOB, WANGFANG = (
    "+8613800138001",
    "+8613800138002",
    "+14155550103",
    "+447700900104",
    "+8613800138005",
)
NO_ACCOUNT = "+8613800138000"
CODE = "246810"


def person(bot, name, phone, lang="en"):
    return bot.user(name, lang, phone_number=phone)


ASK_CONTACT = {
    "en": "To protect your account I first need to check that it is you.",
    "zh": "为保护您的账户安全，需要先确认是您本人。",
}
CODE_SENT = {"en": "I sent a 6-digit code by SMS to", "zh": "已通过短信向"}


def language(bot, user) -> str:
    """Return "zh" or "en": the language the bot speaks to this user (from Telegram's)."""
    return "zh" if (bot.emu.users[user.user_id].language_code or "").startswith("zh") else "en"


async def verify(bot, user, code=CODE):
    """Share the contact and type the code (the shared identity check)."""
    lang = language(bot, user)
    assert user.last_message.text.startswith(ASK_CONTACT[lang])
    await user.share_contact()
    assert ("6-digit code" if lang == "en" else "6位数字") in user.last_message.text
    typed = await user.send(code)
    assert bot.emu.message(user.user_id, typed.message_id).deleted  # codes leave the chat
    return typed


async def test_password_reset_link_after_verification_in_english(bot):
    alice = person(bot, "Alice", ALICE)
    await alice.send("/start")
    await alice.click("🔑 Password / unlock")
    await verify(bot, alice)
    assert any(t.startswith("✅ Verified: U-Pay account Alice Smith") for t in alice.texts)
    assert "is active" in alice.last_message.text
    await alice.click("🔗 Send me a reset link")
    link = alice.last_message
    assert "works once, for 15 minutes" in link.text and "Never share this link" in link.text
    url = link.raw["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert "/wallet/reset/" in url
    user = await bot.app.repos.users.get(alice.user_id)
    assert user.wallet_account_id == "U1003"  # the account id, never the phone


async def test_locked_account_is_unlocked_in_chinese(bot):
    han = person(bot, "韩梅梅", HANMEIMEI, "zh-hans")
    await han.send("/password")
    await verify(bot, han)
    assert "已被锁定" in han.last_message.text
    await han.click("🔓 解锁我的账户")
    assert han.last_message.text.startswith("🔓 账户已解锁")
    assert "🔗 发送重置密码链接" in han.buttons  # unlocked, but the password may be forgotten
    account = await bot.app.backend.get_account("U1002")
    assert account.status == "active"


async def test_fresh_verification_is_reused_and_a_stale_one_asked_again(make_bot):
    bot = await make_bot(verification_max_age=600)
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("/password")
    await verify(bot, li)
    await li.send("/password")
    assert "状态正常" in li.last_message.text  # no second check within 10 minutes
    bot.app.config = bot.app.config.replace(verification_max_age=0.001)
    await li.send("/password")
    assert "6位数字" in li.last_message.text  # linked: a new code, no contact needed


async def test_wrong_codes_count_down_and_lock_out_across_a_restart(make_bot):
    bot = await make_bot()
    bob = person(bot, "Bob", BOB)
    await bob.send("/password")
    await bob.share_contact()
    for tries_left in (4, 3):
        await bob.send("111111")
        # Said in the prompt itself (the typed code is gone), which keeps its buttons.
        assert bob.last_message.text.startswith(
            f"❌ That code is not right. {tries_left} tries left.\n\nI sent a 6-digit code"
        )
        assert "🔁 Send a new code" in bob.buttons
    emu = bot.emu
    await bot.stop()
    bot2 = await make_bot(emu=emu)
    bob.harness = bot2
    await bob.send("222222")
    assert bob.last_message.text.startswith("❌ That code is not right. 2 tries left.")
    await bob.send("333333")
    await bob.send("444444")
    assert bob.last_message.text.startswith("Too many wrong codes.")
    await bob.send("/password")
    assert bob.last_message.text.startswith("Too many wrong codes.")
    assert "🙋 Talk to a human" in bob.buttons


async def test_a_code_past_its_expiry_is_refused_even_if_the_wallet_would_accept_it(bot):
    """The bot holds the wallet to the expiry it announced ("type it within 5 minutes"), and
    does not leave it to the wallet's own check: here the wallet's clock runs 6 minutes
    behind, so the code it sends had expired by the bot's clock when it arrived, and the
    wallet itself would still take it."""
    bot.app.backend = create_backend(
        "demo",
        db=bot.app.backend.store.db,  # the demo wallet's own database, on another clock
        public_url=bot.app.config.wallet_public_url,
        fixed_codes={ALICE: CODE},
        clock=lambda: time.time() - 360,
    )
    alice = person(bot, "Alice", ALICE)
    await alice.send("/password")
    await alice.share_contact()
    assert "6-digit code" in alice.last_message.text
    await alice.send(CODE)
    assert alice.last_message.text.startswith("❌ That code has expired. Tap “🔁 Send a new code”.")
    assert not any(t.startswith("✅ Verified") for t in alice.texts)
    user = await bot.app.repos.users.get(alice.user_id)
    assert user.wallet_account_id is None  # not linked by an expired code
    assert await bot.app.backend.check_code("U1003", CODE)  # the wallet would have taken it


async def test_contact_dead_ends_are_explained(bot):
    alice = person(bot, "Alice", ALICE)
    mallory = person(bot, "Mallory", NO_ACCOUNT)
    await mallory.send("/cards")
    await mallory.share_contact()
    assert "could not find a U-Pay account" in mallory.last_message.text
    assert "🙋 Talk to a human" in mallory.buttons
    # Someone else's contact card (or a forwarded one) is refused.
    await alice.send("/cards")
    await alice.share_contact(contact_user_id=mallory.user_id)
    assert alice.last_message.text.startswith("Please share your own number")
    await alice.share_contact(forwarded=True)
    assert alice.last_message.text.startswith("Please share your own number")
    await alice.send("I'd rather not")
    assert "Without checking who you are" in alice.texts[-2]


async def test_deep_link_from_the_app_links_and_verifies(bot):
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("/start link_demo_lilei")
    assert any("已关联U钱包账户李雷" in t for t in li.texts)
    await li.send("/password")
    assert "状态正常" in li.last_message.text  # the app link counts as verification
    other = person(bot, "Eve", NO_ACCOUNT)
    await other.send("/start link_demo_lilei")
    assert "another Telegram account" in other.last_message.text
    await other.send("/start link_demo_expired")
    assert "has expired" in other.last_message.text
    await other.send("/start link_nonsense")
    assert "not valid" in other.last_message.text


async def test_cards_unbind_and_bind_a_new_card(bot):
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("/cards")
    await verify(bot, li)
    listing = li.last_message
    assert "招商银行储蓄卡（尾号0017）" in listing.text
    await li.click("➖ 解绑招商银行（尾号0017）")
    assert "确定解绑尾号0017的招商银行卡吗" in li.last_message.text
    await li.click("确定解绑")
    assert li.last_message.text == "✅ 尾号0017的招商银行卡已解绑。"
    cards = await bot.app.backend.list_cards("U1001")
    assert [c.last4 for c in cards] == ["0023"]
    # Add a card on the secure page (never in the chat), then the micro-deposit.
    await li.send("/cards")
    await li.click("➕ 添加银行卡")
    url = next(
        b["url"]
        for row in li.last_message.raw["reply_markup"]["inline_keyboard"]
        for b in row
        if "url" in b
    )
    session = url.rsplit("/", 1)[-1]
    query = await li.click("✅ 我已填写银行卡")
    assert li.answer_of(query).startswith("暂未收到")
    await bot.app.backend.submit_card(session, "4242 4242 4242 4242")
    await li.click("✅ 我已填写银行卡")
    assert "验证金" in li.last_message.text and "小于¥1.00" in li.last_message.text
    sms = await bot.app.backend.sms_outbox(LILEI)
    amount = re.search(r"[¥￥]\s?(0\.\d\d)", sms[-1].text).group(1)
    await li.send("0.00")
    assert "¥0.01至¥0.99" in li.last_message.text  # the range with its currency
    wrong = "0.01" if amount != "0.01" else "0.02"
    await li.send(wrong)
    assert "还可以再试2次" in li.last_message.text
    await li.send(f"{amount}元")
    assert li.last_message.text.startswith("✅ 您尾号4242的") and "绑定成功" in li.last_message.text


async def test_forged_card_button_never_touches_another_card(bot):
    alice = person(bot, "Alice", ALICE)
    await alice.send("/cards")
    await verify(bot, alice)
    menu = alice.last_message.message_id
    query = await alice.press_forged(menu, "cards:unbind:C-U1001-1")
    assert alice.answer_of(query) == "This button belongs to an earlier step and no longer works."
    assert len(await bot.app.backend.list_cards("U1001")) == 2


@pytest.mark.parametrize(
    ("text", "freezes"),
    [
        ("我的手机被偷了", True),
        ("我的账户被盗了，快帮我冻结", True),
        ("有人盗刷我的卡", True),
        ("my phone was stolen", True),
        ("freeze my account", True),
        ("账户被冻结了怎么解冻", False),
        ("钱被冻结", False),
        ("the app keeps freezing", False),
    ],
)
async def test_freeze_only_on_clear_theft_phrasing(bot, text, freezes):
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send(text)
    shown = li.last_message
    asked = shown.text.startswith("现在冻结您的U钱包账户吗？")  # in her language
    # Unsure between freezing and unfreezing, the router asks with the freeze first.
    asked = asked or shown.buttons[:1] == ["🧊 冻结我的账户"]
    assert asked is freezes
    account = await bot.app.backend.get_account("U1001")
    assert account.status == "active"  # never without the confirmation


async def test_freeze_confirms_then_freezes_and_opens_an_urgent_ticket(bot):
    alice = person(bot, "Alice", ALICE)
    await alice.send("my phone was stolen, freeze my account")
    await alice.click("🧊 Yes, freeze it now")
    await alice.share_contact()
    assert any("is frozen. No payments or transfers" in t for t in alice.texts)
    assert (await bot.app.backend.get_account("U1003")).status == "frozen"
    ticket = await bot.app.repos.tickets.open_for_user(alice.user_id)
    assert ticket.priority == 2 and ticket.context["flow"] == "freeze"
    await alice.send("/end")
    # Nobody answered this urgent ticket yet: ending it is confirmed, and it says the account
    # stays frozen.
    assert "stays frozen" in alice.last_message.text
    await alice.click("✖️ Yes, end it")
    assert "Only an agent can unfreeze it" in alice.last_message.text
    # The freeze took only her contact (speed first): a password reset still asks for the
    # whole check.
    await alice.send("/password")
    assert alice.last_message.text.startswith(ASK_CONTACT["en"])


async def test_unfreeze_question_gets_help_not_a_freeze(bot):
    li = person(bot, "李雷", LILEI, "zh-hans")
    await li.send("账户被冻结了怎么解冻")
    assert li.last_message.text.startswith("🧊 账户解冻")  # the self-service article
    assert "🙋 联系人工客服" in li.buttons
    assert (await bot.app.backend.get_account("U1001")).status == "active"


async def test_backend_down_keeps_the_step_and_says_so(bot, monkeypatch):
    alice = person(bot, "Alice", ALICE)
    await alice.send("/password")
    backend = bot.app.backend

    async def down(*args, **kwargs):
        raise Unavailable("down")

    monkeypatch.setattr(backend, "account_by_phone", down)
    await alice.share_contact()
    assert "not responding right now" in alice.last_message.text
    monkeypatch.undo()
    await alice.share_contact()  # same step, now it works
    assert "6-digit code" in alice.last_message.text


async def test_restart_in_the_middle_of_verification(make_bot):
    bot = await make_bot()
    alice = person(bot, "Alice", ALICE)
    await alice.send("/password")
    await alice.share_contact()
    emu = bot.emu
    await bot.stop()
    bot2 = await make_bot(emu=emu)
    alice.harness = bot2
    await alice.send(CODE)
    assert "is active" in alice.last_message.text


async def test_no_card_number_or_code_in_database_or_logs(make_bot, tmp_path, caplog):
    bot = await make_bot(demo_fixed_code=None)  # random codes, as in production
    alice = person(bot, "Alice", ALICE)
    with caplog.at_level(logging.INFO):  # the production level (DEBUG is explicitly verbose)
        await alice.send("/cards")
        await alice.share_contact()
        code = re.search(r"\b(\d{6})\b", (await bot.app.backend.sms_outbox(ALICE))[-1].text).group(
            1
        )
        await alice.send(code)
        await alice.click("➕ Add a card")
        session = next(
            b["url"]
            for row in alice.last_message.raw["reply_markup"]["inline_keyboard"]
            for b in row
            if "url" in b
        ).rsplit("/", 1)[-1]
        await bot.app.backend.submit_card(session, "4242424242424242")
        await alice.send("my card is 5555 5555 5555 4444")
    await bot.stop()
    # The bot's database and the demo wallet's own file (where the card was bound).
    files = [*tmp_path.glob("bot.db*"), *tmp_path.glob("bot.wallet.db*")]
    assert tmp_path / "bot.wallet.db" in files
    blob = b"".join(p.read_bytes() for p in files)
    logs = caplog.text
    for secret in ("4242424242424242", "5555555555554444", "5555 5555 5555 4444", code):
        assert secret.encode() not in blob
        assert secret not in logs


async def test_restart_in_the_cards_flow_and_in_the_freeze_flow(make_bot):
    bot = await make_bot()
    alice = person(bot, "Alice", ALICE)
    li = person(bot, "李雷", LILEI, "zh-hans")
    await alice.send("/cards")
    await verify(bot, alice)
    await alice.click("➕ Add a card")
    await li.send("有人盗刷我的卡")
    emu = bot.emu
    await bot.stop()
    bot2 = await make_bot(emu=emu)
    alice.harness = li.harness = bot2
    query = await alice.click("✅ I have entered my card")
    assert alice.answer_of(query).startswith("I do not see a card yet")
    await li.click("🧊 确定，立即冻结")
    await li.share_contact()
    assert any("已冻结" in t for t in li.texts)
    assert (await bot2.app.backend.get_account("U1001")).status == "frozen"


async def test_cards_and_freeze_happy_paths_in_the_other_language(bot):
    bob = person(bot, "Bob", BOB)
    await bob.send("/cards")
    await verify(bot, bob)
    assert "Barclays (debit) •••• 0045" in bob.last_message.text
    han = person(bot, "韩梅梅", HANMEIMEI, "zh-hans")
    await han.send("/freeze")
    assert "现在冻结您的U钱包账户吗" in han.last_message.text
    await han.click("🧊 确定，立即冻结")
    await han.share_contact()
    assert (await bot.app.backend.get_account("U1002")).status == "frozen"
