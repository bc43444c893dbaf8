"""The WalletBackend contract: the demo wallet and the http client (over the local API)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.backend.conftest import PUBLIC_URL, FakeClock
from tgbot.backend import (
    Frozen,
    NotEligible,
    NotFound,
    Transaction,
    WalletBackend,
)
from tgbot.backend.demo import DemoWallet

LILEI, HANMEIMEI, ALICE, BOB, WANGFANG = "U1001", "U1002", "U1003", "U1004", "U1005"


def payment(tx: Transaction) -> bool:
    """Return whether a transaction is a payment to a merchant that allows refunds."""
    return tx.kind == "payment" and tx.merchant not in ("中国移动话费充值", "Steam Wallet")


async def all_transactions(backend: WalletBackend, account_id: str) -> list[Transaction]:
    page = await backend.list_transactions(account_id, limit=100)
    return page.items


async def refundable(backend: WalletBackend, account_id: str = LILEI) -> Transaction:
    for tx in await all_transactions(backend, account_id):
        eligibility = await backend.refund_eligibility(account_id, tx.id)
        if eligibility.eligible and tx.status == "success" and tx.amount > Decimal("5"):
            return tx
    raise AssertionError("no refundable transaction in the demo data")


@pytest.mark.parametrize("phone", ["+8613800138001", "8613800138001", "+86 138 0013 8001"])
async def test_account_by_phone_finds_the_account_in_any_usual_spelling(backend, phone):
    account = await backend.account_by_phone(phone)
    assert account is not None and account.id == LILEI
    assert account.display_name == "李雷"
    assert account.phone_masked == "+86 138****8001"


async def test_a_phone_without_an_account_gets_none(backend):
    assert await backend.account_by_phone("+8613800138000") is None


async def test_unknown_account_is_not_found_and_locked_one_says_why(backend):
    with pytest.raises(NotFound):
        await backend.get_account("U9999")
    locked = await backend.get_account(HANMEIMEI)
    assert (locked.status, locked.locked_reason) == ("locked", "wrong_password")


async def test_link_token_works_once_for_its_user(backend):
    account = await backend.redeem_link_token("demo_lilei", 42)
    assert account.id == LILEI
    with pytest.raises(NotEligible) as again:
        await backend.redeem_link_token("demo_lilei", 42)
    assert again.value.reason == "used"
    with pytest.raises(NotEligible) as foreign:
        await backend.redeem_link_token("demo_lilei", 43)
    assert foreign.value.reason == "other_user"


async def test_expired_and_unknown_link_tokens_are_refused(backend):
    with pytest.raises(NotEligible) as expired:
        await backend.redeem_link_token("demo_expired", 42)
    assert expired.value.reason == "expired"
    with pytest.raises(NotFound):
        await backend.redeem_link_token("nope", 42)


async def test_fixed_demo_code_is_single_use(backend):
    sent = await backend.send_code(LILEI, "verify-1")
    assert sent.expires_at - sent.resend_after == timedelta(minutes=4)
    assert await backend.check_code(LILEI, "000000") is False
    assert await backend.check_code(LILEI, "246810") is True
    assert await backend.check_code(LILEI, "246810") is False


async def test_send_code_is_idempotent_and_resend_waits(backend, demo: DemoWallet):
    first = await backend.send_code(ALICE, "verify-1")
    assert await backend.send_code(ALICE, "verify-1") == first
    assert len(await demo.sms_outbox("+14155550103")) == 1
    with pytest.raises(NotEligible) as too_soon:
        await backend.send_code(ALICE, "verify-2")
    assert too_soon.value.reason == "resend_too_soon"


async def test_code_expires_after_five_minutes(backend, clock: FakeClock):
    await backend.send_code(BOB, "verify-1")
    clock.advance(301)
    assert await backend.check_code(BOB, "246810") is False


async def test_reset_link_is_one_time_page_of_the_wallet(backend, clock: FakeClock):
    link = await backend.password_reset_link(HANMEIMEI, "reset-1")
    assert link.url.startswith(f"{PUBLIC_URL}/wallet/reset/")
    assert await backend.password_reset_link(HANMEIMEI, "reset-1") == link
    other = await backend.password_reset_link(HANMEIMEI, "reset-2")
    assert other.url != link.url
    assert link.expires_at == datetime.fromtimestamp(clock() + 15 * 60, UTC)


async def test_unlock_only_locked_accounts(backend):
    assert (await backend.unlock(HANMEIMEI, "unlock-1")).status == "active"
    assert (await backend.unlock(HANMEIMEI, "unlock-1")).status == "active"  # replayed
    with pytest.raises(NotEligible) as active:
        await backend.unlock(LILEI, "unlock-2")
    assert active.value.reason == "not_locked"
    with pytest.raises(Frozen):
        await backend.unlock(WANGFANG, "unlock-3")


async def test_freeze_blocks_reset_links_and_bindings(backend):
    frozen = await backend.freeze(LILEI, "stolen_phone", "freeze-1")
    assert frozen.status == "frozen"
    assert (await backend.freeze(LILEI, "stolen_phone", "freeze-1")).status == "frozen"
    with pytest.raises(Frozen):
        await backend.password_reset_link(LILEI, "reset-1")
    with pytest.raises(Frozen):
        await backend.start_binding(LILEI, "bind-1")


async def test_cards_are_masked_and_unbind_is_idempotent(backend):
    cards = await backend.list_cards(LILEI)
    assert [(c.bank, c.last4, c.kind) for c in cards] == [
        ("招商银行", "0017", "debit"),
        ("中国工商银行", "0023", "credit"),
    ]
    await backend.unbind_card(LILEI, cards[0].id, "unbind-1")
    await backend.unbind_card(LILEI, cards[0].id, "unbind-1")  # a retry: no error
    assert [c.id for c in await backend.list_cards(LILEI)] == [cards[1].id]
    with pytest.raises(NotEligible) as last:
        await backend.unbind_card(LILEI, cards[1].id, "unbind-2")
    assert last.value.reason == "last_card_with_balance"
    with pytest.raises(NotFound):
        await backend.unbind_card(ALICE, cards[1].id, "unbind-3")


async def test_binding_with_micro_deposit(backend, demo: DemoWallet):
    binding = await backend.start_binding(BOB, "bind-1")
    assert binding.status == "waiting_for_card"
    assert binding.secure_url.startswith(f"{PUBLIC_URL}/wallet/card/")
    assert await backend.start_binding(BOB, "bind-1") == binding
    with pytest.raises(NotEligible):
        await backend.confirm_deposit(BOB, binding.id, Decimal("0.10"))
    session = binding.secure_url.rsplit("/", 1)[1]
    await demo.submit_card(session, "4242 4242 4242 4242")
    waiting = await backend.get_binding(BOB, binding.id)
    assert waiting.status == "awaiting_deposit" and waiting.card is not None
    assert waiting.card.last4 == "4242"
    sms = (await demo.sms_outbox("+447700900104"))[-1].text
    deposit = Decimal(re.search(r"¥(0\.\d\d)", sms)[1])  # type: ignore[index]
    wrong = deposit + Decimal("0.01") if deposit < Decimal("0.99") else Decimal("0.01")
    after_wrong = await backend.confirm_deposit(BOB, binding.id, wrong)
    assert (after_wrong.status, after_wrong.tries_left) == ("awaiting_deposit", 2)
    bound = await backend.confirm_deposit(BOB, binding.id, deposit)
    assert bound.status == "bound"
    assert "4242" in [c.last4 for c in await backend.list_cards(BOB)]
    with pytest.raises(NotFound):
        await backend.get_binding(ALICE, binding.id)


async def test_transactions_newest_first_paginated_and_filtered(backend):
    first = await backend.list_transactions(LILEI, limit=10)
    second = await backend.list_transactions(LILEI, limit=10, offset=10)
    assert first.total == 50 and len(first.items) == 10
    times = [t.created_at for t in first.items + second.items]
    assert times == sorted(times, reverse=True)
    assert not {t.id for t in first.items} & {t.id for t in second.items}
    failed = await backend.list_transactions(LILEI, status="failed", limit=100)
    assert failed.total >= 1 and all(t.status == "failed" for t in failed.items)
    assert all(t.failure_reason for t in failed.items)
    since = first.items[0].created_at - timedelta(days=7)
    recent = await backend.list_transactions(LILEI, since=since, limit=100)
    assert all(t.created_at >= since for t in recent.items)
    assert 0 < recent.total < 50


async def test_someone_elses_transaction_is_not_found(backend):
    tx = (await backend.list_transactions(ALICE, limit=1)).items[0]
    assert (await backend.get_transaction(ALICE, tx.id)) == tx
    with pytest.raises(NotFound):
        await backend.get_transaction(LILEI, tx.id)
    with pytest.raises(NotFound):
        await backend.refund_eligibility(LILEI, tx.id)


async def test_refund_is_created_once_and_advances(backend, clock: FakeClock):
    tx = await refundable(backend)
    since = datetime.fromtimestamp(clock(), UTC)
    refund = await backend.create_refund(LILEI, tx.id, Decimal("1.00"), "不想要了", "refund-1")
    assert (refund.status, refund.amount, refund.currency) == ("submitted", Decimal("1.00"),
                                                              tx.currency)  # fmt: skip
    again = await backend.create_refund(LILEI, tx.id, Decimal("1.00"), "不想要了", "refund-1")
    assert again.id == refund.id
    assert [r.id for r in await backend.list_refunds(LILEI)] == [refund.id]
    left = (await backend.refund_eligibility(LILEI, tx.id)).refundable
    assert left == tx.amount - tx.refunded_amount - Decimal("1.00")
    seen = []
    for _ in range(4):
        clock.advance(20)
        seen.append((await backend.get_refund(LILEI, refund.id)).status)
    assert seen == ["reviewing", "approved", "refunded", "refunded"]
    feed = await backend.refund_changes(None)
    mine = [(c.refund.id, c.status) for c in feed.changes if c.changed_at >= since]
    assert mine == [(refund.id, s) for s in ("submitted", "reviewing", "approved", "refunded")]
    assert all(c.refund.account_id == LILEI for c in feed.changes)
    assert not (await backend.refund_changes(feed.next_cursor)).changes
    after = await backend.get_transaction(LILEI, tx.id)
    assert after.refunded_amount == tx.refunded_amount + Decimal("1.00")
    assert after.status == "partially_refunded"


async def test_refund_amount_is_checked(backend):
    tx = await refundable(backend)
    for amount, reason in [
        (tx.amount + 1, "amount_too_large"),
        (Decimal("0"), "invalid_amount"),
        (Decimal("0.001"), "invalid_amount"),
    ]:
        with pytest.raises(NotEligible) as refused:
            await backend.create_refund(LILEI, tx.id, amount, "reason", f"refund-{amount}")
        assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("match", "reason"),
    [
        (lambda t: payment(t) and t.status == "failed", "not_paid"),
        (lambda t: payment(t) and t.status == "processing", "not_paid"),
        (lambda t: payment(t) and t.status == "refunded", "fully_refunded"),
        (lambda t: t.kind != "payment", "not_a_payment"),
        (lambda t: payment(t) and t.status == "success"
         and (datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC) - t.created_at).days > 31,
         "window_over"),
    ],
)  # fmt: skip
async def test_ineligible_transactions_say_why(backend, match, reason):
    tx = next(t for t in await all_transactions(backend, LILEI) if match(t))
    eligibility = await backend.refund_eligibility(LILEI, tx.id)
    assert (eligibility.eligible, eligibility.reason) == (False, reason)
    assert eligibility.refundable == 0
    with pytest.raises(NotEligible) as refused:
        await backend.create_refund(LILEI, tx.id, Decimal("1.00"), "reason", f"r-{tx.id}")
    assert refused.value.reason == reason


async def test_the_refund_feed_lists_every_status_once_in_pages_with_a_cursor(
    backend, clock: FakeClock
):
    """Two refunds, polled rarely: every change is listed (none skipped between polls), in
    order, a page at a time, and the cursor resumes exactly after the last one read."""
    start = await backend.refund_changes(None)
    tx = await refundable(backend)
    first = await backend.create_refund(LILEI, tx.id, Decimal("1.99"), "r", "refund-a")
    second = await backend.create_refund(LILEI, tx.id, Decimal("1.00"), "r", "refund-b")
    clock.advance(100)  # both finished long ago: 1.99 rejected, 1.00 refunded
    seen, cursor, pages = [], start.next_cursor, 0
    while True:
        page = await backend.refund_changes(cursor, limit=2)
        assert len(page.changes) <= 2
        seen += [(c.refund.id, c.status) for c in page.changes]
        cursor, pages = page.next_cursor, pages + 1
        if not page.has_more:
            break
    assert pages == 4
    assert [s for r, s in seen if r == first.id] == ["submitted", "reviewing", "rejected"]
    assert [s for r, s in seen if r == second.id] == [
        "submitted", "reviewing", "approved", "refunded"
    ]  # fmt: skip
    again = await backend.refund_changes(cursor)
    assert again.changes == [] and again.next_cursor == cursor and not again.has_more


async def test_a_refund_made_in_the_app_is_in_the_feed_with_its_account(backend, demo: DemoWallet):
    start = await backend.refund_changes(None)
    tx = await refundable(backend, ALICE)
    made = await demo.create_refund_in_app(ALICE, tx.id, Decimal("2.00"), "app")
    page = await backend.refund_changes(start.next_cursor)
    assert [(c.refund.id, c.refund.account_id, c.status) for c in page.changes] == [
        (made.id, ALICE, "submitted")
    ]


async def test_a_second_freeze_after_support_unfroze_freezes_again(backend, demo: DemoWallet):
    """Keys name the user's action: the second freeze is a new action, and it freezes."""
    assert (await backend.freeze(ALICE, "stolen_phone", "freeze:42:1001")).status == "frozen"
    await demo.unfreeze(ALICE)
    assert (await backend.get_account(ALICE)).status == "active"
    assert (await backend.freeze(ALICE, "stolen_phone", "freeze:42:1002")).status == "frozen"
    assert (await backend.get_account(ALICE)).status == "frozen"


async def test_a_frozen_account_cannot_change_cards(backend, demo: DemoWallet):
    binding = await backend.start_binding(BOB, "bind-1")
    await demo.submit_card(binding.secure_url.rsplit("/", 1)[1], "4242 4242 4242 4242")
    await backend.freeze(LILEI, "stolen_phone", "freeze-1")
    await backend.freeze(BOB, "stolen_phone", "freeze-2")
    card = (await backend.list_cards(LILEI))[0]
    with pytest.raises(Frozen):
        await backend.unbind_card(LILEI, card.id, "unbind-1")
    with pytest.raises(Frozen):
        await backend.start_binding(LILEI, "bind-2")
    with pytest.raises(Frozen):
        await backend.confirm_deposit(BOB, binding.id, Decimal("0.10"))
    assert len(await backend.list_cards(LILEI)) == 2  # listing still works


async def test_a_pending_binding_shows_the_card_without_an_id_until_bound(
    backend, demo: DemoWallet
):
    binding = await backend.start_binding(BOB, "bind-1")
    assert binding.card is None
    await demo.submit_card(binding.secure_url.rsplit("/", 1)[1], "4242 4242 4242 4242")
    pending = await backend.get_binding(BOB, binding.id)
    assert pending.card is not None
    assert (pending.card.last4, pending.card.id) == ("4242", None)
