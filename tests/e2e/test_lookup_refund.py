"""Transaction lookup and refunds through the emulator, in both languages."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from babel.numbers import format_currency

from services.refunds import poll_refunds
from tgbot.context import BotContext

ALICE, LILEI, BOB = "+14155550103", "+8613800138001", "+447700900104"
CODE = "246810"


async def verified(bot, name, phone, lang="en", entry="/transactions"):
    user = bot.user(name, lang, phone_number=phone)
    await user.send(entry)
    await user.share_contact()
    await user.send(CODE)
    return user


async def all_transactions(bot, account_id, days=30, status=None):
    page = await bot.app.backend.list_transactions(
        account_id, since=datetime.now(UTC) - timedelta(days=days), status=status, limit=500
    )
    return page


async def test_list_pages_filters_and_detail_in_english(bot):
    alice = await verified(bot, "Alice", ALICE)
    page = await all_transactions(bot, "U1003")
    pages = -(-page.total // 5)
    first = alice.last_message
    # One message after the check: "verified" and the list (the code prompt became it).
    assert first.text.startswith("✅ Verified: U-Pay account Alice Smith")
    assert f"\n\nYour transactions, last 30 days — page 1 of {pages}:" in first.text
    assert len(alice.texts) == 3  # the contact prompt, "number received", the list
    tx_buttons = [d for d in first.button_data if d.startswith("tx:open:")]
    assert tx_buttons == [f"tx:open:{tx.id}" for tx in page.items[:5]]
    assert "Older ▶" in first.buttons and "◀ Newer" not in first.buttons
    await alice.click("Older ▶")
    assert alice.last_message.text.startswith(
        f"Your transactions, last 30 days — page 2 of {pages}:"
    )
    assert "◀ Newer" in alice.buttons
    await alice.click("✓ 30 days")  # pressing the active filter keeps the list
    await alice.click("Failed")
    failed = await all_transactions(bot, "U1003", status="failed")
    shown = [d for d in alice.last_message.button_data if d.startswith("tx:open:")]
    assert shown == [f"tx:open:{tx.id}" for tx in failed.items[:5]]
    assert "· Failed" in alice.last_message.text
    assert all(label.startswith("❌ -") for label in alice.last_message.buttons[: len(shown)])


async def test_detail_escapes_the_merchant_and_formats_money_and_status(bot):
    alice = await verified(bot, "Alice", ALICE)
    page = await all_transactions(bot, "U1003", days=90)
    cafe = next(tx for tx in page.items if tx.merchant.startswith("Tom & Jerry"))
    await alice.press_forged(alice.last_message.message_id, f"tx:open:{cafe.id}")
    detail = alice.last_message
    assert detail.text.startswith("Tom & Jerry's <Café>")  # escaped in HTML, shown literally
    amount = f"{cafe.amount:,.2f}"
    assert ("CN¥" + amount if cafe.currency == "CNY" else amount) in detail.text
    assert f"Transaction ID: {cafe.id}" in detail.text
    assert "(Beijing time)" in detail.text and "Payment: -" in detail.text
    assert "🙋 Ask a human about this" in detail.buttons


async def test_chinese_lookup_by_phrase_finds_the_payment(bot):
    li = await verified(bot, "李雷", LILEI, "zh-hans")
    pages = -(-(await all_transactions(bot, "U1001")).total // 5)
    # One message after the verification: its line, then the list.
    assert f"\n\n您最近30天的交易——第1/{pages}页：\n\n" in li.last_message.text
    page = await all_transactions(bot, "U1001", days=60)
    zone = bot.app.config.zone
    # A payment whose amount is unique on its day.
    for tx in page.items:
        local = tx.created_at.astimezone(zone)
        same_day = [t for t in page.items if t.created_at.astimezone(zone).date() == local.date()]
        if sum(t.amount == tx.amount for t in same_day) == 1:
            break
    await li.send(f"{local.month}月{local.day}号 {tx.amount}元")
    assert f"<code>{tx.id}</code>" not in li.last_message.text  # rendered, not raw HTML
    assert tx.id in li.last_message.text


async def test_another_users_transaction_reveals_nothing(bot):
    alice = await verified(bot, "Alice", ALICE)
    other = (await all_transactions(bot, "U1001")).items[0]
    await alice.send(other.id)
    assert alice.last_message.text == "I cannot find this transaction in your account."
    query = await alice.press_forged(alice.messages[-2].message_id, f"tx:open:{other.id}")
    assert alice.answer_of(query) == "This button belongs to an earlier step and no longer works."
    assert alice.last_message.text == "I cannot find this transaction in your account."
    assert other.merchant not in " ".join(alice.texts[-2:])
    await alice.send(f"/start refund_{other.id}")
    assert other.merchant not in alice.last_message.text
    assert not await bot.app.repos.refunds.for_user(alice.user_id)


async def test_refund_partial_amount_with_bad_inputs_then_confirm_once(bot):
    alice = await verified(bot, "Alice", ALICE, entry="/refund")
    tx_id = alice.last_message.button_data[0].split(":", 2)[2]
    tx = await bot.app.backend.get_transaction("U1003", tx_id)
    # The first payment on offer depends on the day the demo history was made from.
    paid = tx.paid_with
    back_to = (
        f"your {paid.bank} card •••• {paid.last4}"
        if paid is not None and paid.method == "card"
        else "your U-Pay balance"
    )
    await alice.click(alice.last_message.buttons[0])
    assert "Why do you want a refund?" in alice.last_message.text
    await alice.click("Not received")
    assert alice.last_message.text.startswith("How much should be refunded? Up to")
    for bad in ("abc", "-5", "1e9", "0.001", "0", "99999"):
        await alice.send(bad)
        assert alice.last_message.text.startswith("Please type an amount like ")
    await alice.send("１")  # full-width digit
    confirm = alice.last_message
    refund_line = f"Refund: {format_currency(1, tx.currency, locale='en')}, back to {back_to}\n"
    assert refund_line in confirm.text
    await alice.click("✅ Request the refund", message_id=confirm.message_id)
    created = alice.last_message.text
    assert created.startswith("✅ Refund requested: ") and "Reference: " in created
    # The confirm pressed again (double press, stale button) creates nothing more.
    query = await alice.press_forged(confirm.message_id, "refund:confirm")
    assert alice.answer_of(query) == "This button belongs to an earlier step and no longer works."
    refunds = await bot.app.backend.list_refunds("U1003")
    assert len(refunds) == 1 and str(refunds[0].amount) == "1.00"
    assert (await bot.app.repos.refunds.for_user(alice.user_id))[0].id == refunds[0].id


async def test_typing_exactly_what_remains_refundable_is_accepted(bot):
    """A payment already partly refunded: the user types exactly the amount that remains."""
    alice = await verified(bot, "Alice", ALICE)
    backend = bot.app.backend
    partly = (await all_transactions(bot, "U1003", status="partially_refunded")).items
    tx = partly[0]
    remaining = (await backend.refund_eligibility("U1003", tx.id)).refundable
    assert 0 < remaining < tx.amount
    await alice.send(f"/start refund_{tx.id}")
    await alice.click("Not received")
    await alice.send(str(remaining))
    confirm = alice.last_message
    assert confirm.text.startswith("Please confirm your refund request:")
    assert f"Refund: {format_currency(remaining, tx.currency, locale='en')}" in confirm.text
    await alice.click("✅ Request the refund")
    assert alice.last_message.text.startswith("✅ Refund requested: ")
    assert "Reference: " in alice.last_message.text
    (refund,) = await backend.list_refunds("U1003")
    assert refund.transaction_id == tx.id and refund.amount == remaining


async def test_refund_in_chinese_from_the_detail_with_other_reason(bot):
    li = await verified(bot, "李雷", LILEI, "zh-hans")
    page = await all_transactions(bot, "U1001")
    tx = next(
        t
        for t in page.items
        if t.kind == "payment"
        and t.status == "success"
        and t.merchant not in ("中国移动话费充值", "Steam Wallet")
    )
    await li.press_forged(li.last_message.message_id, f"tx:open:{tx.id}")
    await li.click("↩️ 申请退款")
    await li.click("其他原因")
    await li.send("x" * 300)
    assert "200" in li.last_message.text
    await li.send("商家少发了货")
    await li.click(li.last_message.buttons[0])  # full amount
    await li.click("✅ 提交退款申请")
    assert li.last_message.text.startswith("✅ 退款申请已提交")


async def test_ineligible_payments_explain_why(bot):
    alice = await verified(bot, "Alice", ALICE)
    page = await all_transactions(bot, "U1003", days=90)
    transfer = next(t for t in page.items if t.kind == "transfer")
    failed = next(t for t in page.items if t.status == "failed" and t.kind == "payment")
    await alice.send(f"/start refund_{transfer.id}")
    assert "Transfers and top-ups cannot be refunded" in alice.last_message.text
    await alice.send(f"/start refund_{failed.id}")
    assert "It was not paid" in alice.last_message.text
    assert "🙋 Talk to a human" in alice.buttons


async def test_refund_status_changes_are_notified_once_even_across_restarts(make_bot):
    bot = await make_bot()
    alice = await verified(bot, "Alice", ALICE, entry="/refund")
    await alice.click(alice.last_message.buttons[0])
    await alice.click("Charged twice")
    await alice.click(alice.last_message.buttons[0])
    await alice.click("✅ Request the refund")
    backend = bot.app.backend
    start = time.time()
    backend._clock = lambda: start + 25  # one step later: reviewing
    assert await poll_refunds(BotContext(bot.app)) == 1
    assert await poll_refunds(BotContext(bot.app)) == 0  # nothing new: nothing sent
    await bot.settle()
    assert alice.last_message.text.startswith("🔎 Your refund")
    emu = bot.emu
    await bot.stop()
    bot2 = await make_bot(emu=emu)
    alice.harness = bot2
    bot2.app.backend._clock = lambda: start + 65  # while down it was approved, then refunded
    await poll_refunds(BotContext(bot2.app))
    await bot2.settle()
    texts = [t for t in alice.texts if t.startswith(("🔎", "✅ Your refund", "💰"))]
    assert texts[0].startswith("🔎") and texts[-1].startswith("💰 Your refund")
    assert len(texts) == len(set(texts))  # each change once
    await alice.send("/refunds")
    assert "refunded" in alice.last_message.text


async def test_pagination_edges_zero_one_and_exactly_one_page(bot, monkeypatch):
    from tgbot.backend.base import TransactionPage

    alice = await verified(bot, "Alice", ALICE)
    real = (await all_transactions(bot, "U1003")).items
    backend = bot.app.backend

    for total, pages in ((0, None), (1, 1), (5, 1), (6, 2)):
        items = real[:total]

        async def fake(
            account_id, *, since=None, until=None, status=None, limit=10, offset=0, _items=items
        ):
            return TransactionPage(items=_items[offset : offset + limit], total=len(_items))

        monkeypatch.setattr(backend, "list_transactions", fake)
        await alice.click("✓ All")
        shown = alice.last_message
        buttons = [d for d in shown.button_data if d.startswith("tx:open:")]
        if total == 0:
            assert shown.text.startswith("No transactions in the last 30 days.")
        else:
            assert f"page 1 of {pages}:" in shown.text
        assert len(buttons) == min(total, 5)
        assert ("Older ▶" in shown.buttons) is (total > 5)
        assert "◀ Newer" not in shown.buttons


async def test_english_phrase_search_with_a_weekday_and_amount(bot):
    """ "Sunday 141.17" finds the payment of that amount made on the most recent Sunday; the
    Sunday; the expectation is worked out from the dates here, not with the parser tested."""
    alice = await verified(bot, "Alice", ALICE)
    zone = bot.app.config.zone
    today = datetime.now(zone).date()
    txs = (await all_transactions(bot, "U1003", days=90)).items

    def key(tx):
        return tx.created_at.astimezone(zone).date(), abs(tx.amount)

    # A payment to a merchant 1-6 days ago (a bare weekday then names exactly its day, no other
    # week) whose amount is unique on its day. (Not a top-up or a transfer: those have no
    # merchant's name to check, and on some days the first match was one.)
    candidates = [
        tx
        for tx in txs
        if tx.merchant_names
        and 1 <= (today - key(tx)[0]).days <= 6
        and [key(t) for t in txs].count(key(tx)) == 1
    ]
    assert candidates, "the demo account has no payment 1-6 days ago to search for"
    tx = candidates[0]
    day, amount = key(tx)
    phrase = f"{day.strftime('%A')} {amount}"
    await alice.send(phrase)
    detail = alice.last_message.text
    assert f"Transaction ID: {tx.id}" in detail, (phrase, detail)
    assert detail.startswith(tx.merchant_names["en"])  # her language's name


async def test_signed_refund_webhook_triggers_the_notification(make_bot):
    import json as _json
    import socket

    import httpx

    from tgbot.wallet_events import PATH, sign

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bot = await make_bot(
        refund_webhook_secret="s3cret", refund_webhook_port=port, refund_poll_interval=3600
    )
    alice = await verified(bot, "Alice", ALICE, entry="/refund")
    await alice.click(alice.last_message.buttons[0])
    await alice.click("Charged twice")
    await alice.click(alice.last_message.buttons[0])
    await alice.click("✅ Request the refund")
    refund = (await bot.app.repos.refunds.for_user(alice.user_id))[0]
    start = time.time()
    bot.app.backend._clock = lambda: start + 25
    body = _json.dumps({"refund_id": refund.id, "status": "reviewing"}).encode()
    url = f"http://127.0.0.1:{port}{PATH}"
    stamp = str(int(time.time()))
    async with httpx.AsyncClient() as client:
        forged = await client.post(
            url,
            content=body,
            headers={"X-UPay-Timestamp": stamp, "X-UPay-Signature": "sha256=" + "0" * 64},
        )
        stale = await client.post(
            url,
            content=body,
            headers={
                "X-UPay-Timestamp": str(int(time.time()) - 3600),
                "X-UPay-Signature": sign("s3cret", str(int(time.time()) - 3600), body),
            },
        )
        assert (forged.status_code, stale.status_code) == (401, 401)
        assert not any(t.startswith("🔎") for t in alice.texts)
        good = await client.post(
            url,
            content=body,
            headers={"X-UPay-Timestamp": stamp, "X-UPay-Signature": sign("s3cret", stamp, body)},
        )
        assert good.status_code == 204
    await bot.settle()
    assert alice.last_message.text.startswith("🔎 Your refund")


async def _requested_refund(bot):
    alice = await verified(bot, "Alice", ALICE, entry="/refund")
    await alice.click(alice.last_message.buttons[0])
    await alice.click("Charged twice")
    await alice.click(alice.last_message.buttons[0])
    await alice.click("✅ Request the refund")
    return alice


async def test_two_polls_at_once_never_tell_an_older_status_after_a_newer_one(bot):
    """The job and the wallet's webhook poll concurrently; the first poll's answer is slow
    and older ("approved") than the second's ("refunded")."""
    import asyncio

    alice = await _requested_refund(bot)
    backend = bot.app.backend
    start = time.time()
    backend._clock = lambda: start + 45  # approved
    real = backend.refund_changes
    calls = 0
    first_read = asyncio.Event()

    async def slow_first(cursor, limit=100):
        nonlocal calls
        calls += 1
        result = await real(cursor, limit)
        if calls == 1:
            first_read.set()
            # This poll's HTTP answer is slow: the second poll may run meanwhile, as far as
            # it can (a bounded wait: with the lock under test it is blocked, so there is no
            # event of it to wait for).
            await asyncio.sleep(0.5)
        return result

    backend.refund_changes = slow_first
    first = asyncio.create_task(poll_refunds(BotContext(bot.app)))
    await first_read.wait()
    backend._clock = lambda: start + 65  # refunded
    second = asyncio.create_task(poll_refunds(BotContext(bot.app)))
    await asyncio.gather(first, second)
    await bot.settle()
    told = [t[:1] for t in alice.texts if t.startswith(("🔎", "✅ Your refund", "💰"))]
    assert told[-1] == "💰", told
    assert len(told) == len(set(told))
    (record,) = await bot.app.repos.refunds.for_user(alice.user_id)
    assert record.status == "refunded"


async def test_a_refund_not_recorded_yet_is_looked_at_again_by_the_next_poll(bot):
    """The wallet reports a refund a moment before its flow recorded it: the poll keeps its
    position before it, so its status is told once it is recorded, not skipped."""
    alice = await _requested_refund(bot)
    repos = bot.app.repos
    (record,) = await repos.refunds.for_user(alice.user_id)
    async with repos.db.transaction() as conn:  # as if the flow had not recorded it yet
        await conn.execute("DELETE FROM refunds WHERE id = ?", (record.id,))
    backend = bot.app.backend
    start = time.time()
    backend._clock = lambda: start + 25  # reviewing
    assert await poll_refunds(BotContext(bot.app)) == 0
    await repos.refunds.record(
        record.id,
        record.user_id,
        record.account_id,
        record.transaction_id,
        record.amount,
        record.currency,
        record.reason,
        "submitted",
    )
    assert await poll_refunds(BotContext(bot.app)) == 1
    await bot.settle()
    notice = alice.last_message.text
    assert notice.startswith("🔎 Your refund of ") and f"(reference {record.id})" in notice
