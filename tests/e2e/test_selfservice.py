"""Self-service answers through the real bot, in both languages: typed questions get an
article with buttons that work, or close candidates; "Did this solve it?" Yes / No; No hands
the question to a human; freeze is reached only by theft phrasing (see also
``test_router.py``)."""

from __future__ import annotations

import re

from handlers.core import NOT_UNDERSTOOD
from handlers.freeze import CONFIRM as FREEZE_CONFIRM
from handlers.selfservice import (
    CANDIDATES_TEXT,
    DID_IT_HELP,
    NO_LABEL,
    SORRY,
    THANKS,
    YES_LABEL,
)
from services.wording import HUMAN_LABEL, MAIN_MENU_LABEL
from tgbot import facts
from tgbot.answers import get_article
from tgbot.answers.articles import LOOKUP_LABEL
from tgbot.i18n import translator

ZH = translator("zh_Hans")
EN = translator("en")


def _plain(html: str) -> str:
    return re.sub(r"</?[a-z]+>", "", html)


async def _stats(bot):
    return await bot.app.repos.answers.stats()


async def test_chinese_question_gets_the_article_and_its_flow_button_works(bot):
    li = bot.user("李雷", "zh-hans")
    await li.send("支付失败怎么办")
    article = get_article("payment_failed")
    shown = li.last_message
    assert shown.text.startswith(ZH.gettext(article.title))
    assert _plain(ZH.gettext(article.body).format(**facts.values(ZH))) in shown.text
    assert "{" not in shown.text  # every fact filled in
    assert shown.text.endswith(ZH.gettext(DID_IT_HELP))
    assert shown.buttons == [
        ZH.gettext(YES_LABEL),
        ZH.gettext(NO_LABEL),
        ZH.gettext(LOOKUP_LABEL),
        ZH.gettext(HUMAN_LABEL),
        ZH.gettext(MAIN_MENU_LABEL),
    ]
    await li.click(ZH.gettext(LOOKUP_LABEL))
    assert bot.app.user_data[li.user_id]["flow"]["name"] == "lookup"
    stats = await _stats(bot)
    assert stats.answered == 1 and stats.articles[0].article == "payment_failed"


async def test_english_question_in_a_chinese_chat_is_answered_in_chinese(bot):
    li = bot.user("李雷", "zh-hans")
    await li.send("my transfer is still processing")
    assert li.last_message.text.startswith(ZH.gettext(get_article("money_not_arrived").title))


async def test_yes_counts_as_helpful_once_and_removes_the_question_buttons(bot):
    alice = bot.user("Alice", "en")
    await alice.send("my transfer is still processing")
    assert alice.last_message.text.startswith("⏳ Money has not arrived")
    query = await alice.click(EN.gettext(YES_LABEL))
    assert alice.answer_of(query) == EN.gettext(THANKS)
    assert EN.gettext(YES_LABEL) not in alice.buttons
    assert alice.buttons == [EN.gettext(LOOKUP_LABEL), HUMAN_LABEL, MAIN_MENU_LABEL]
    stats = await _stats(bot)
    assert (stats.answered, stats.helpful, stats.not_helpful, stats.escalated) == (1, 1, 0, 0)


async def test_no_offers_a_human_who_gets_the_question_in_the_ticket(bot):
    alice = bot.user("Alice", "en")
    await alice.send("app keeps freezing")
    assert alice.last_message.text.startswith("📲 The app freezes, crashes or will not load")
    await alice.click(NO_LABEL)
    offer = alice.last_message
    assert offer.text == _plain(SORRY.format(question="app keeps freezing"))
    assert offer.buttons == [HUMAN_LABEL, MAIN_MENU_LABEL]
    await alice.click(HUMAN_LABEL)
    ticket = await bot.app.repos.tickets.open_for_user(alice.user_id)
    assert ticket is not None
    assert ticket.context == {"question": "app keeps freezing", "article": "app_trouble"}
    assert "ticket number" in alice.last_message.text
    stats = await _stats(bot)
    assert (stats.helpful, stats.not_helpful, stats.escalated) == (0, 1, 1)


async def test_chinese_no_then_human_carries_the_question(bot):
    li = bot.user("李雷", "zh-hans")
    await li.send("收不到短信验证码")
    assert li.last_message.text.startswith(ZH.gettext(get_article("sms_code").title))
    await li.click(ZH.gettext(NO_LABEL))
    assert "收不到短信验证码" in li.last_message.text
    await li.click(ZH.gettext(HUMAN_LABEL))
    ticket = await bot.app.repos.tickets.open_for_user(li.user_id)
    assert ticket.context["question"] == "收不到短信验证码" and ticket.language == "zh_Hans"


async def test_close_candidates_are_offered_and_a_pick_shows_the_article(bot, monkeypatch):
    from handlers import selfservice
    from tgbot.answers.router import Decision

    class Stub:
        def decide(self, text):
            return Decision("candidates", ("refund_request", "refund_status"), (0.3, 0.3))

    async def stub():
        return Stub()

    monkeypatch.setattr(selfservice, "_router", stub)
    alice = bot.user("Alice", "en")
    await alice.send("refund")
    assert alice.last_message.text == EN.gettext(CANDIDATES_TEXT)
    labels = alice.buttons
    assert labels == ["↩️ Ask for a refund", "📋 Refund status", HUMAN_LABEL, MAIN_MENU_LABEL]
    await alice.click("📋 Refund status")
    shown = alice.last_message
    assert shown.text.startswith("📋 Refund status")
    assert shown.buttons == ["📋 My refunds", HUMAN_LABEL, MAIN_MENU_LABEL]  # a flow: no Yes/No
    await alice.click("📋 My refunds")
    assert bot.app.user_data[alice.user_id]["flow"]["name"] == "refund"
    stats = await _stats(bot)
    assert stats.answered == 1 and stats.articles[0].article == "refund_status"


async def test_out_of_scope_text_is_not_forced_onto_an_article(bot):
    alice = bot.user("Alice", "en")
    await alice.send("what's the weather")
    assert alice.last_message.text == NOT_UNDERSTOOD
    li = bot.user("李雷", "zh-hans")
    await li.send("讲个笑话")
    assert li.last_message.text == ZH.gettext(NOT_UNDERSTOOD)
    assert (await _stats(bot)).questions == 0


async def test_freeze_only_for_theft_and_unfreeze_or_app_questions_go_elsewhere(bot):
    li = bot.user("李雷", "zh-hans")
    for question in ("账户被冻结了怎么解冻", "钱被冻结"):
        await li.send(question)
        text = li.last_message.text
        assert ZH.gettext(FREEZE_CONFIRM) not in text
        # Unfreeze questions get the unfreeze article (with its human button).
        assert text.startswith(ZH.gettext(get_article("unfreeze").title))
    alice = bot.user("Alice", "en")
    await alice.send("app keeps freezing")
    assert alice.last_message.text.startswith("📲 The app freezes")
    assert FREEZE_CONFIRM not in alice.texts
    # Clear theft phrasing reaches the freeze flow, which asks to confirm first.
    await alice.send("my account was stolen")
    assert alice.last_message.text == FREEZE_CONFIRM
    # So does theft the router recognises: the freeze fast path, which asks to confirm.
    bob = bot.user("Bob", "en")
    await bob.send("someone logged into my account, it was not me")
    assert bob.last_message.text == FREEZE_CONFIRM


async def test_asking_for_someone_opens_a_ticket_with_the_question(bot):
    alice = bot.user("Alice", "en")
    await alice.send("can i speak to someone")
    ticket = await bot.app.repos.tickets.open_for_user(alice.user_id)
    assert ticket.context == {"question": "can i speak to someone"}
    assert "ticket number" in alice.last_message.text
    assert (await _stats(bot)).escalated == 1


async def test_contact_article_shows_the_configured_hours(make_bot):
    bot = await make_bot(business_hours=(9 * 60, 21 * 60))
    alice = bot.user("Alice", "en")
    await alice.send("what are your opening hours")
    # The zone as people say it, not an IANA id.
    assert "every day from 09:00 to 21:00 (Beijing time)" in alice.last_message.text
    li = bot.user("李雷", "zh-hans")
    await li.send("你们几点上班")
    assert "每天09:00至21:00（北京时间）" in li.last_message.text


async def test_someone_elses_answer_buttons_do_nothing(bot):
    alice = bot.user("Alice", "en")
    await alice.send("payment failed")
    answer_id = alice.last_message.button_data[0].split(":")[2]
    eve = bot.user("Eve", "en")
    await eve.send("/start")
    await eve.press_forged(eve.last_message.message_id, f"ans:human:{answer_id}")
    await eve.press_forged(eve.last_message.message_id, f"ans:yes:{answer_id}")
    assert await bot.app.repos.tickets.open_for_user(eve.user_id) is None
    stats = await _stats(bot)
    assert (stats.helpful, stats.escalated) == (0, 0)
