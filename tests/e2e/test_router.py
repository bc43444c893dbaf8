"""The learned router through the real bot, in both languages: greetings get the menu,
complaints and "talk to a person" open a ticket, clear intents start their flow (with the
date, amount or merchant already searched), theft is offered the freeze first, unclear
questions get candidates and a human."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from handlers import selfservice
from handlers.common import LANGUAGE_LABEL
from handlers.freeze import CONFIRM as FREEZE_CONFIRM
from handlers.freeze import LABEL as FREEZE_LABEL
from handlers.verify import ASK_CONTACT
from services.wording import HUMAN_LABEL, MAIN_MENU_LABEL
from tgbot.answers import get_article
from tgbot.answers.router import Decision
from tgbot.i18n import translator

ZH = translator("zh_Hans")
EN = translator("en")
ALICE, LILEI = "+14155550103", "+8613800138001"
CODE = "246810"
NO_REFUND = ("中国移动话费充值", "Steam Wallet")


async def _verified(bot, name, phone, lang):
    user = bot.user(name, lang, phone_number=phone)
    await user.send("/transactions")
    await user.share_contact()
    await user.send(CODE)
    await user.send("/cancel")
    return user


async def _payments(bot, account_id, days=30):
    page = await bot.app.backend.list_transactions(
        account_id, since=datetime.now(UTC) - timedelta(days=days), limit=500
    )
    return page.items


def _flow(bot, user):
    return (bot.app.user_data.get(user.user_id) or {}).get("flow", {}).get("name")


@pytest.mark.parametrize(("lang", "text"), [("en", "hi"), ("zh-hans", "你好")])
async def test_a_greeting_gets_a_greeting_and_the_main_menu(bot, lang, text):
    tr = ZH if lang == "zh-hans" else EN
    user = bot.user("Lee", lang)
    await user.send(text)
    shown = user.last_message
    assert shown.text == tr.gettext(get_article("greeting").body)
    assert tr.gettext("🧾 Transactions") in shown.buttons
    assert LANGUAGE_LABEL in shown.buttons


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "I want to file a complaint, your agent was rude to me"),
        ("zh-hans", "我要投诉，你们客服态度太差了"),
    ],
)
async def test_a_complaint_reaches_a_human_with_the_complaint(bot, lang, text):
    tr = ZH if lang == "zh-hans" else EN
    user = bot.user("Lee", lang)
    await user.send(text)
    assert tr.gettext(get_article("complaint").body) in user.texts
    ticket = await bot.app.repos.tickets.open_for_user(user.user_id)
    assert ticket is not None and ticket.context == {"complaint": text}
    assert "ticket" in user.last_message.text or "工单" in user.last_message.text
    stats = await bot.app.repos.answers.stats()
    assert stats.escalated == 1


@pytest.mark.parametrize(
    ("lang", "text"), [("en", "can i talk to a real person please"), ("zh-hans", "转人工")]
)
async def test_talk_to_a_person_opens_a_ticket_with_the_question(bot, lang, text):
    user = bot.user("Lee", lang)
    await user.send(text)
    ticket = await bot.app.repos.tickets.open_for_user(user.user_id)
    assert ticket is not None and ticket.context == {"question": text}


@pytest.mark.parametrize(("lang", "text"), [("en", "I want a refund"), ("zh-hans", "怎么申请退款")])
async def test_i_want_a_refund_starts_the_refund_flow(bot, lang, text):
    tr = ZH if lang == "zh-hans" else EN
    user = bot.user("Lee", lang, phone_number=ALICE)
    await user.send(text)
    assert _flow(bot, user) == "refund"
    assert user.last_message.text == tr.gettext(ASK_CONTACT)
    await user.share_contact()
    await user.send(CODE)
    assert tr.gettext("Which payment do you want a refund for? (paid in the last 30 days)") in (
        user.last_message.text
    )


def _refundable(items):
    return [
        tx
        for tx in items
        if tx.kind == "payment"
        and tx.status in ("success", "partially_refunded")
        and tx.merchant not in NO_REFUND
    ]


async def test_refund_naming_a_merchant_and_a_rounded_amount_goes_to_that_payment(bot):
    alice = await _verified(bot, "Alice", ALICE, "en")
    payments = _refundable(await _payments(bot, "U1003"))
    # A Latin-named merchant's payment with cents, rounded the way users round.
    tx = next(
        t
        for t in payments
        if t.merchant.isascii()
        and t.merchant[0].isalpha()
        and t.amount != int(t.amount)
        and sum(int(o.amount) == int(t.amount) for o in payments) == 1
    )
    word = tx.merchant.split()[0].lower()
    await alice.send(f"I want a refund for {word} {int(tx.amount)}")
    assert _flow(bot, alice) == "refund"
    text = alice.last_message.text
    assert text.startswith(f"Refund for your payment to {tx.merchant}: ")
    assert "Why do you want a refund?" in text


async def test_chinese_refund_naming_a_merchant_goes_to_that_payment(bot):
    li = await _verified(bot, "李雷", LILEI, "zh-hans")
    payments = _refundable(await _payments(bot, "U1001"))
    tx = next(
        t
        for t in payments
        if not t.merchant.isascii() and sum(int(o.amount) == int(t.amount) for o in payments) == 1
    )
    await li.send(f"在{tx.merchant}买的{int(tx.amount)}块的东西想申请退款")
    assert _flow(bot, li) == "refund"
    assert li.last_message.text.startswith(f"退款：{tx.merchant}") or tx.merchant in (
        li.last_message.text
    )
    assert ZH.gettext("Other reason") in li.last_message.buttons


async def test_lookup_with_a_date_and_a_rounded_amount_opens_that_payment(bot):
    li = await _verified(bot, "李雷", LILEI, "zh-hans")
    items = await _payments(bot, "U1001")
    zone = bot.app.config.zone
    tx = next(
        t
        for t in items
        if t.amount != int(t.amount)
        and sum(
            o.created_at.astimezone(zone).date() == t.created_at.astimezone(zone).date()
            and abs(o.amount - t.amount) < 2
            for o in items
        )
        == 1
    )
    local = tx.created_at.astimezone(zone)
    await li.send(f"帮我查一下{local.month}月{local.day}号那笔{int(tx.amount)}块的账单")
    assert _flow(bot, li) == "lookup"
    assert tx.id in li.last_message.text


async def test_english_lookup_by_merchant_and_rounded_amount(bot):
    alice = await _verified(bot, "Alice", ALICE, "en")
    items = await _payments(bot, "U1003", days=90)
    tx = next(
        t
        for t in items
        if t.merchant.isascii()
        and t.merchant[0].isalpha()
        and sum(int(o.amount) == int(t.amount) for o in items) == 1
    )
    word = tx.merchant.split()[0].lower()
    await alice.send(f"check my {word} payment of {int(tx.amount)}")
    assert _flow(bot, alice) == "lookup"
    assert tx.id in alice.last_message.text


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "someone took 2000 out of my balance, it was not me"),
        ("zh-hans", "有人用我的账号一直在付款，快帮我冻结"),
    ],
)
async def test_theft_is_offered_the_freeze_first(bot, lang, text):
    tr = ZH if lang == "zh-hans" else EN
    user = bot.user("Lee", lang)
    await user.send(text)
    shown = user.last_message
    if shown.text != tr.gettext(FREEZE_CONFIRM):  # unsure: asked, with the freeze first
        assert shown.buttons[0] == tr.gettext(FREEZE_LABEL)
        await user.click(tr.gettext(FREEZE_LABEL))
    assert user.last_message.text == tr.gettext(FREEZE_CONFIRM)
    assert tr.gettext(get_article("unfreeze").title) not in user.texts


@pytest.mark.parametrize(
    ("lang", "text"),
    [("zh-hans", "怎么防止账号被盗"), ("en", "how do I stop my account being stolen")],
)
async def test_a_prevention_question_gets_the_safety_article_not_the_freeze(bot, lang, text):
    """Asking how to prevent theft is not theft. The freeze flow's own words (被盗, stolen)
    once sent both straight to "Freeze your account now?"; outside a flow the router
    decides: the account-safety article, or when it is unsure a question that names that
    article next to the freeze (one tap)."""
    tr = ZH if lang == "zh-hans" else EN
    user = bot.user("Lee", lang, phone_number=ALICE)
    await user.send(text)
    title = tr.gettext(get_article("account_safety").title)
    shown = user.last_message
    assert shown.text != tr.gettext(FREEZE_CONFIRM)
    if not shown.text.startswith(title):
        assert shown.text == tr.gettext(selfservice.SAFETY_ASK) and title in shown.buttons
        await user.click(title)
    assert user.last_message.text.startswith(title)
    assert tr.gettext(FREEZE_CONFIRM) not in user.texts
    assert _flow(bot, user) is None
    assert (await bot.app.backend.get_account("U1003")).status == "active"


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("zh-hans", "我的账户被盗了，钱被转走了"),
        ("en", "my account was hacked and my money is gone"),
    ],
)
async def test_clear_theft_outside_a_flow_gets_the_freeze_at_once(bot, lang, text):
    """The router, not the freeze flow's words, starts the freeze for theft typed outside a
    flow: the confirmation at once."""
    tr = ZH if lang == "zh-hans" else EN
    user = bot.user("Lee", lang)
    await user.send(text)
    assert user.last_message.text == tr.gettext(FREEZE_CONFIRM)
    assert _flow(bot, user) == "freeze"
    stats = await bot.app.repos.answers.stats()
    assert stats.answered == 1 and stats.articles[0].article == "account_stolen"


async def test_theft_typed_inside_another_flow_still_starts_the_freeze(bot):
    """Inside a flow whose step takes typed text (the lookup's search), the router never
    sees the text: the freeze flow's own words still catch theft there."""
    li = await _verified(bot, "李雷", LILEI, "zh-hans")
    await li.send("/transactions")
    assert _flow(bot, li) == "lookup"
    await li.send("有人盗刷我的卡，快帮我冻结")
    assert li.last_message.text == ZH.gettext(FREEZE_CONFIRM)
    assert _flow(bot, li) == "freeze"
    await li.click(ZH.gettext("🧊 Yes, freeze it now"))
    assert (await bot.app.backend.get_account("U1001")).status == "frozen"


async def test_possible_theft_adds_the_freeze_button_to_an_article_and_candidates(bot, monkeypatch):
    decision = Decision("answer", ("money_not_arrived",), (0.6,), freeze_button=True)

    async def stub():
        return _Stub(decision)

    monkeypatch.setattr(selfservice, "_router", stub)
    alice = bot.user("Alice", "en")
    await alice.send("my balance is lower than it should be")
    shown = alice.last_message
    assert shown.text.startswith("⏳ Money has not arrived")
    assert EN.gettext(FREEZE_LABEL) in shown.buttons
    await alice.click(EN.gettext(selfservice.YES_LABEL))  # Yes / No go, the freeze stays
    assert EN.gettext(selfservice.YES_LABEL) not in alice.buttons
    assert EN.gettext(FREEZE_LABEL) in alice.buttons
    await alice.click(EN.gettext(FREEZE_LABEL))
    assert alice.last_message.text == EN.gettext(FREEZE_CONFIRM)
    decision = Decision("candidates", ("fees", "limits"), (0.3, 0.25), freeze_button=True)
    bob = bot.user("Bob", "en")
    await bob.send("the thing with my money")
    assert bob.last_message.buttons == [
        "💰 Fees",
        "📊 Daily and monthly limits",
        EN.gettext(FREEZE_LABEL),
        HUMAN_LABEL,
        MAIN_MENU_LABEL,
    ]


class _Stub:
    def __init__(self, decision):
        self.decision = decision

    def decide(self, text):
        return self.decision


async def test_unsure_between_freeze_and_unfreeze_asks_with_the_freeze_first(bot, monkeypatch):
    decision = Decision("safety", ("account_stolen", "unfreeze"), (0.35, 0.45))

    async def stub():
        return _Stub(decision)

    monkeypatch.setattr(selfservice, "_router", stub)
    li = bot.user("李雷", "zh-hans")
    await li.send("账户冻结")
    shown = li.last_message
    assert shown.text == ZH.gettext(selfservice.SAFETY_ASK)
    assert shown.buttons == [
        ZH.gettext(FREEZE_LABEL),
        ZH.gettext(get_article("unfreeze").title),
        ZH.gettext(HUMAN_LABEL),
        ZH.gettext(MAIN_MENU_LABEL),
    ]
    await li.click(ZH.gettext(get_article("unfreeze").title))
    assert li.last_message.text.startswith(ZH.gettext(get_article("unfreeze").title))
    await li.send("账户冻结")
    await li.click(ZH.gettext(FREEZE_LABEL))
    assert li.last_message.text == ZH.gettext(FREEZE_CONFIRM)


async def test_unclear_gets_the_closest_topics_and_a_human_with_the_question(bot, monkeypatch):
    decision = Decision("candidates", ("fees", "limits", "refund_rules"), (0.3, 0.25, 0.2))

    async def stub():
        return _Stub(decision)

    monkeypatch.setattr(selfservice, "_router", stub)
    alice = bot.user("Alice", "en")
    await alice.send("the thing with my money")
    shown = alice.last_message
    assert shown.text == EN.gettext(selfservice.CANDIDATES_TEXT)
    assert shown.buttons == ["💰 Fees", "📊 Daily and monthly limits", "↩️ Refund rules and "
                             "timelines", HUMAN_LABEL, MAIN_MENU_LABEL]  # fmt: skip
    await alice.click(HUMAN_LABEL)
    ticket = await bot.app.repos.tickets.open_for_user(alice.user_id)
    assert ticket.context == {"question": "the thing with my money"}


@pytest.mark.parametrize(
    ("lang", "text"),
    [("en", "what is this charge? i don't recognise it"), ("zh-hans", "这笔扣款是什么，我不认识")],
)
async def test_an_unknown_charge_is_explained_with_lookup_and_freeze(bot, lang, text):
    tr = ZH if lang == "zh-hans" else EN
    user = bot.user("Lee", lang)
    await user.send(text)
    article = get_article("unknown_charge")
    shown = user.last_message
    assert shown.text.startswith(tr.gettext(article.title))
    assert tr.gettext("🧾 Transactions") in shown.buttons
    await user.click(tr.gettext(FREEZE_LABEL))
    assert user.last_message.text == tr.gettext(FREEZE_CONFIRM)


async def test_amount_rounding_rule_in_the_lookup_is_not_too_loose(bot):
    """460 finds 460.61, never 461.20 (that would be 461)."""
    from tgbot.backend.base import Transaction
    from tgbot.txquery import match_transactions, parse_query

    def tx(amount):
        return Transaction(
            id=f"TX{amount}",
            account_id="a",
            created_at=datetime.now(UTC),
            amount=Decimal(amount),
            currency="CNY",
            merchant="京东商城",
            status="success",
        )

    now = datetime.now(bot.app.config.zone)
    found = match_transactions(parse_query("460块", now), [tx("460.61"), tx("461.20")])
    assert [t.id for t in found] == ["TX460.61"]
