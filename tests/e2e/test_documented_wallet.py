"""The bot against a wallet written from the documents alone (``TGBOT_BACKEND=http``).

The wallet is :class:`tests.backend.fake_server.FakeWalletApi`: it knows the API only through
``docs/wallet-api.yaml`` (routes by its operations, checks every request and answer against
it) and does what ``docs/wallet-api.md`` asks of a wallet (keys, replays, in-progress
answers). The bot's own HTTP traffic is checked against the same file. Each test is one of
the flows the wallet engineer could not go live with, and asserts what the user is told
and what the wallet holds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest

import handlers.cards as cards_module
import services.refunds as refunds_service
from services.refunds import poll_refunds
from tests.backend.fake_server import TEST_KEY, FakeWalletApi
from tests.backend.spec import checked_client
from tests.backend.test_contract import refundable
from tests.support.waiting import wait_until
from tgbot.backend.demo import DemoWallet
from tgbot.backend.demo_store import WalletStore, open_wallet_database
from tgbot.backend.http import HttpWallet
from tgbot.context import BotContext

ALICE, LILEI, WANGFANG = "U1003", "U1001", "U1005"
CODE = "246810"


class DocumentedWallet:
    """The fake wallet, its data, and the bot's checked client to it."""

    def __init__(self, demo: DemoWallet, api: FakeWalletApi) -> None:
        self.demo = demo
        self.api = api
        self.transports: list = []

    def client(self, **options) -> HttpWallet:
        """Return an http backend for the bot whose traffic is checked against the spec."""
        client, transport = checked_client(self.api.url)
        self.transports.append(transport)
        options = {"api_key": TEST_KEY, "timeout": 2.0, "retries": 2, "backoff": 0.01, **options}
        backend = HttpWallet(self.api.url, client=client, **options)
        backend._owns_client = True  # the bot's shutdown closes it
        return backend


@pytest.fixture
async def wallet(tmp_path) -> AsyncIterator[DocumentedWallet]:
    db = await open_wallet_database(tmp_path / "wallet.db")
    demo = DemoWallet(WalletStore(db), public_url="http://wallet.test")
    await demo.seed()
    api = await FakeWalletApi(demo).start()
    documented = DocumentedWallet(demo, api)
    yield documented
    await api.stop()
    await db.close()
    assert api.violations == []
    for transport in documented.transports:
        assert transport.violations == []


async def bot_on(make_bot, wallet: DocumentedWallet, **client_options):
    """Start the bot with TGBOT_BACKEND=http on the documented wallet."""
    bot = await make_bot(backend="http", backend_url=wallet.api.url, backend_api_key=TEST_KEY)
    await bot.app.backend.close()
    bot.app.backend = wallet.client(**client_options)
    return bot


async def linked(bot, name: str, token: str, lang: str = "en"):
    """A user who linked their Telegram from the wallet app (linked and verified)."""
    user = bot.user(name, lang)
    await user.send(f"/start link_{token}")
    return user


async def request_refund(user):
    await user.send("/refund")
    await user.click(user.last_message.buttons[0])
    await user.click("Charged twice")
    await user.click(user.last_message.buttons[0])  # the full amount
    await user.click("✅ Request the refund")


async def test_a_second_freeze_after_support_unfroze_freezes_again(make_bot, wallet):
    bot = await bot_on(make_bot, wallet)
    alice = await linked(bot, "Alice", "demo_alice")
    await alice.send("/freeze")
    await alice.click("🧊 Yes, freeze it now")
    assert any("is frozen. No payments or transfers" in t for t in alice.texts)
    assert (await wallet.demo.get_account(ALICE)).status == "frozen"
    await alice.send("/end")
    await alice.click("✖️ Yes, end it")  # unanswered urgent ticket: ending is confirmed
    await wallet.demo.unfreeze(ALICE)  # support checked and unfroze it
    told = len(alice.texts)
    await alice.send("/freeze")
    await alice.click("🧊 Yes, freeze it now")
    assert any("is frozen. No payments or transfers" in t for t in alice.texts[told:])
    assert (await wallet.demo.get_account(ALICE)).status == "frozen"  # and it really is
    keys = wallet.api.keys("/freeze")
    assert len(keys) == 2 and keys[0] != keys[1]


async def test_a_frozen_account_is_refused_card_changes_with_why_and_a_human(make_bot, wallet):
    bot = await bot_on(make_bot, wallet)
    wang = await linked(bot, "王芳", "demo_wangfang", "zh-hans")
    await wang.send("/cards")
    listing = wang.last_message
    assert "（尾号0007）" in listing.text  # the cards are still shown
    assert "您的账户已冻结，客服解冻前无法添加或解绑银行卡" in listing.text
    assert not [d for d in listing.button_data if d.startswith(("cards:unbind", "cards:add"))]
    assert "🙋 联系人工客服" in listing.buttons
    assert not wallet.api.calls("unbindCard") and not wallet.api.calls("startBinding")


async def test_an_account_frozen_while_the_list_is_open_is_not_changed(make_bot, wallet):
    bot = await bot_on(make_bot, wallet)
    li = await linked(bot, "李雷", "demo_lilei", "zh-hans")
    await li.send("/cards")
    await wallet.demo.freeze(LILEI, "stolen_phone", "support-1")  # frozen in the app meanwhile
    await li.click("➖ 解绑招商银行（尾号0017）")
    await li.click("确定解绑")
    assert "您的账户已冻结" in li.last_message.text
    assert "🙋 联系人工客服" in li.buttons
    assert len(await wallet.demo.list_cards(LILEI)) == 2
    await li.send("/cards")
    assert "➕ 添加银行卡" not in li.buttons


async def test_a_refund_created_in_the_app_is_told_with_every_status(make_bot, wallet, monkeypatch):
    bot = await bot_on(make_bot, wallet)
    alice = await linked(bot, "Alice", "demo_alice")
    tx = await refundable(wallet.demo, ALICE)
    made = await wallet.demo.create_refund_in_app(ALICE, tx.id, Decimal("1.00"), "in the app")
    start = time.time()
    wallet.demo._clock = lambda: start + 45  # reviewing, then approved, before the next poll
    context = BotContext(bot.app)
    # A refund younger than the grace is held back (its bot flow may be about to record it);
    # this one is from the app, and the test does not wait the 30 s.
    monkeypatch.setattr(refunds_service, "UNRECORDED_GRACE", timedelta(seconds=0))
    assert await poll_refunds(context) == 3
    await bot.settle()
    told = [t for t in alice.texts if made.id in t]
    assert told[0].startswith("🧾 A refund of") and "If you did not ask for it" in told[0]
    assert told[1].startswith("🔎 Your refund") and told[2].startswith("✅ Your refund")
    wallet.demo._clock = lambda: start + 65
    assert await poll_refunds(context) == 1
    assert await poll_refunds(context) == 0  # nothing new: nothing told
    await bot.settle()
    done = alice.last_message.text
    assert done.startswith("💰 Your refund of ") and f"(reference {made.id})" in done
    assert "went back to" in done  # where the money goes, named
    await alice.send("/refunds")
    assert made.id in alice.last_message.text


async def test_a_slow_refund_answer_is_not_nothing_changed_and_check_again_tells(make_bot, wallet):
    bot = await bot_on(make_bot, wallet, timeout=0.3, retries=1)
    alice = await linked(bot, "Alice", "demo_alice")
    wallet.api.slow_next(2, seconds=1.0, op="createRefund")  # made, but the answers are late
    await request_refund(alice)
    unsure = alice.last_message
    assert "did not confirm in time whether your refund request went through" in unsure.text
    assert "Nothing was changed" not in " ".join(alice.texts[-2:])
    assert "🔄 Check again" in unsure.buttons
    made = await wallet.demo.list_refunds(ALICE)
    assert len(made) == 1  # the refund exists
    await alice.click("🔄 Check again")
    assert alice.last_message.text.startswith("✅ Refund requested: ")
    assert f"Reference: {made[0].id}." in alice.last_message.text
    assert len(await wallet.demo.list_refunds(ALICE)) == 1
    assert len(set(wallet.api.keys("/refunds"))) == 1  # every ask used the same key


async def test_a_garbled_answer_after_the_refund_was_made_is_resolved(make_bot, wallet):
    bot = await bot_on(make_bot, wallet, retries=1)
    alice = await linked(bot, "Alice", "demo_alice")
    wallet.api.garble_next(2, op="createRefund")
    await request_refund(alice)
    assert "did not confirm in time" in alice.last_message.text
    await alice.click("🔄 Check again")
    (made,) = await wallet.demo.list_refunds(ALICE)
    assert alice.last_message.text.startswith("✅ Refund requested: ")
    assert f"Reference: {made.id}." in alice.last_message.text
    (record,) = await bot.app.repos.refunds.for_user(alice.user_id)
    assert record.id == made.id


async def test_a_freeze_whose_answer_was_lost_is_looked_up_before_telling(make_bot, wallet):
    bot = await bot_on(make_bot, wallet, timeout=0.3, retries=0)
    alice = await linked(bot, "Alice", "demo_alice")
    wallet.api.slow_next(1, seconds=1.0, op="freeze")
    await alice.send("/freeze")
    await alice.click("🧊 Yes, freeze it now")
    assert any("is frozen. No payments or transfers" in t for t in alice.texts)
    assert wallet.api.calls("getAccount")  # looked up before telling


async def test_a_freeze_the_wallet_never_confirmed_is_not_told_as_done(make_bot, wallet):
    bot = await bot_on(make_bot, wallet, retries=1)
    alice = await linked(bot, "Alice", "demo_alice")
    wallet.api.fail_next(2, status=503, op="freeze")
    await alice.send("/freeze")
    await alice.click("🧊 Yes, freeze it now")
    assert not any("is frozen. No payments" in t for t in alice.texts)
    assert any("did not confirm that it is frozen" in t for t in alice.texts)
    ticket = await bot.app.repos.tickets.open_for_user(alice.user_id)
    assert ticket.priority == 2 and ticket.context["account"] == "NOT CONFIRMED"


async def test_a_rotated_key_tells_the_truth_then_works_from_the_key_file(
    make_bot, wallet, tmp_path
):
    key_file = tmp_path / "wallet.key"
    key_file.write_text(TEST_KEY)
    bot = await bot_on(make_bot, wallet, api_key=None, api_key_file=key_file)
    li = await linked(bot, "李雷", "demo_lilei", "zh-hans")
    wallet.api.rotate_key("key-2")  # the wallet rotated the key; the bot was not told yet
    await li.send("/cards")
    await li.click(
        "➖ 解绑招商银行（尾号0017）"
    ) if "➖ 解绑招商银行（尾号0017）" in li.buttons else None
    assert "未做任何更改" in li.last_message.text  # refused: nothing was done, and it says so
    assert len(await wallet.demo.list_cards(LILEI)) == 2
    key_file.write_text("key-2\n")  # the operator puts the new key in place: no restart
    await li.send("/cards")
    assert "招商银行储蓄卡（尾号0017）" in li.last_message.text


async def test_an_unbind_retried_while_the_first_runs_waits_for_it(make_bot, wallet):
    bot = await bot_on(make_bot, wallet, timeout=0.3, retries=6, backoff=0.05)
    li = await linked(bot, "李雷", "demo_lilei", "zh-hans")
    await li.send("/cards")
    await li.click("➖ 解绑招商银行（尾号0017）")
    wallet.api.busy_next(1, seconds=0.8, op="unbindCard")
    await li.click("确定解绑")
    assert li.last_message.text == "✅ 尾号0017的招商银行卡已解绑。"
    assert [c.last4 for c in await wallet.demo.list_cards(LILEI)] == ["0023"]
    assert len(set(wallet.api.keys("/cards/" + "CDU10011"))) == 1


async def test_a_new_card_pending_without_an_id_is_bound(make_bot, wallet):
    bot = await bot_on(make_bot, wallet)
    bob = await linked(bot, "Bob", "demo_bob")
    await bob.send("/cards")
    await bob.click("➕ Add a card")
    url = next(
        b["url"] for row in bob.last_message.raw["reply_markup"]["inline_keyboard"]
        for b in row if "url" in b
    )  # fmt: skip
    await wallet.demo.submit_card(url.rsplit("/", 1)[-1], "4242 4242 4242 4242")
    await bob.click("✅ I have entered my card")
    assert "card •••• 4242" in bob.last_message.text  # Binding.card had no id yet
    sms = (await wallet.demo.sms_outbox("+447700900104"))[-1].text
    amount = sms.split("¥")[1].split(" ")[0]
    await bob.send(amount)
    assert bob.last_message.text.startswith("✅ Your") and "4242" in bob.last_message.text


async def test_the_bot_sees_the_card_entered_and_asks_for_the_deposit_itself(
    make_bot, wallet, monkeypatch
):
    """The user comes back from the secure page without pressing anything: the bot polls
    the binding and asks for the deposit on its own."""
    monkeypatch.setattr(cards_module, "BINDING_POLL_SECONDS", 0.05)
    bot = await bot_on(make_bot, wallet)
    bob = await linked(bot, "Bob", "demo_bob")
    await bob.send("/cards")
    await bob.click("➕ Add a card")
    secure_step = bob.last_message.message_id
    url = next(
        b["url"] for row in bob.last_message.raw["reply_markup"]["inline_keyboard"]
        for b in row if "url" in b
    )  # fmt: skip
    await wallet.demo.submit_card(url.rsplit("/", 1)[-1], "4242 4242 4242 4242")
    await wait_until(lambda: "card •••• 4242" in bob.last_message.text)
    assert bob.last_message.text.startswith("To check that the card is yours, U-Pay sent")
    sms = (await wallet.demo.sms_outbox("+447700900104"))[-1].text
    await bob.send(sms.split("¥")[1].split(" ")[0])
    assert bob.last_message.text.startswith("✅ Your") and "4242" in bob.last_message.text
    # The secure-page step is over: its buttons went when the bot moved on by itself.
    assert bob.shown(secure_step).buttons == []
    query = await bob.press_forged(secure_step, "cards:entered")  # an old client presses late
    assert bob.answer_of(query)
