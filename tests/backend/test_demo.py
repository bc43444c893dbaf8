"""The demo wallet: seed data, secrets kept out of the database, refunds, card checks."""

from __future__ import annotations

import collections
import re
from decimal import Decimal
from pathlib import Path

import pytest

from storage import Database
from tests.backend.conftest import PUBLIC_URL, FakeClock
from tgbot.backend import NotEligible, Transaction, create_backend
from tgbot.backend.demo import DemoWallet
from tgbot.backend.demo_store import WalletStore, open_wallet_database

PHONES = ("+8613800138001", "+8613800138002", "+14155550103", "+447700900104")


def db_bytes(path: Path) -> bytes:
    """Return the database file and its WAL, as an attacker with the disk would see them."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def first_refundable(demo: DemoWallet, account_id: str) -> Transaction:
    """Return a transaction of the account that can be refunded now (amount above 2)."""
    for tx in (await demo.list_transactions(account_id, limit=100)).items:
        if tx.amount > 2 and (await demo.refund_eligibility(account_id, tx.id)).eligible:
            return tx
    raise AssertionError("nothing refundable")


async def test_seed_has_the_documented_accounts_and_varied_transactions(demo: DemoWallet):
    for phone in PHONES:
        account = await demo.account_by_phone(phone)
        assert account is not None
        page = await demo.list_transactions(account.id, limit=100)
        assert page.total == 50
        statuses = collections.Counter(t.status for t in page.items)
        assert set(statuses) == {"success", "processing", "failed", "refunded",
                                 "partially_refunded"}  # fmt: skip
        for tx in page.items:
            assert tx.amount > 0 and tx.amount == tx.amount.quantize(Decimal("0.01"))
            assert re.fullmatch(r"TX\d{8}[0-9A-F]{6}", tx.id)
            if tx.status == "partially_refunded":
                assert 0 < tx.refunded_amount < tx.amount
    alice = await demo.list_transactions("U1003", limit=100)
    assert {"USD", "CNY"} <= {t.currency for t in alice.items}


async def test_seed_includes_merchants_that_need_escaping(demo: DemoWallet):
    merchants = set()
    for account_id in ("U1001", "U1002", "U1003", "U1004"):
        merchants |= {
            t.merchant for t in (await demo.list_transactions(account_id, limit=100)).items
        }
    assert "Tom & Jerry's <Café>" in merchants
    assert {"美团外卖", "京东商城"} <= merchants  # the seed is the same on every run


async def test_seeding_is_idempotent_and_deterministic(tmp_path: Path, demo: DemoWallet, clock):
    assert await demo.seed() is False
    before = await demo.list_transactions("U1001", limit=100)
    other = await open_wallet_database(tmp_path / "other.db")
    try:
        twin = DemoWallet(WalletStore(other), public_url=PUBLIC_URL, clock=clock)
        assert await twin.seed() is True
        assert await twin.list_transactions("U1001", limit=100) == before
        ids = [t.id for a in ("U1001", "U1002", "U1003", "U1004", "U1005")
               for t in (await twin.list_transactions(a, limit=100)).items]  # fmt: skip
        assert len(ids) == len(set(ids)) == 250
    finally:
        await other.close()


async def test_random_codes_never_reach_the_disk(db: Database, db_path: Path, clock: FakeClock):
    wallet = DemoWallet(WalletStore(db), public_url=PUBLIC_URL, clock=clock, fixed_codes={})
    await wallet.send_code("U1001", "k1")
    (sms,) = await wallet.sms_outbox("+8613800138001")
    code = re.search(r"\d{6}", sms.text)[0]  # type: ignore[index]
    assert code.encode() not in db_bytes(db_path)
    assert await wallet.check_code("U1001", code) is True
    assert await wallet.check_code("U1001", code) is False


async def test_five_wrong_codes_burn_the_code(demo: DemoWallet):
    await demo.send_code("U1001", "k1")
    for _ in range(5):
        assert await demo.check_code("U1001", "111111") is False
    assert await demo.check_code("U1001", "246810") is False


async def test_sms_text_is_logged_only_when_asked(demo: DemoWallet, caplog):
    caplog.set_level("INFO")
    await demo.send_code("U1003", "k1")
    assert "246810" not in caplog.text and "4155550103" not in caplog.text
    demo.log_sms = True
    await demo.send_code("U1004", "k2")
    assert "246810" in caplog.text


async def test_rejected_refund_for_amounts_ending_in_99(demo: DemoWallet, clock: FakeClock):
    tx = await first_refundable(demo, "U1001")
    refund = await demo.create_refund("U1001", tx.id, Decimal("0.99"), "wrong item", "r1")
    clock.advance(200)
    done = await demo.get_refund("U1001", refund.id)
    assert (done.status, done.note) == ("rejected", "merchant_declined")
    assert (await demo.get_transaction("U1001", tx.id)).refunded_amount == tx.refunded_amount


async def test_a_refund_in_flight_blocks_the_rest(demo: DemoWallet):
    tx = await first_refundable(demo, "U1003")
    remaining = (await demo.refund_eligibility("U1003", tx.id)).refundable
    await demo.create_refund("U1003", tx.id, remaining, "all of it", "r1")
    eligibility = await demo.refund_eligibility("U1003", tx.id)
    assert (eligibility.eligible, eligibility.reason) == (False, "refund_in_progress")
    with pytest.raises(NotEligible) as reused:
        await demo.create_refund("U1003", tx.id, Decimal("1.00"), "other", "r1")
    assert reused.value.reason == "idempotency_key_reused"


async def test_merchant_rules_forbid_some_refunds(demo: DemoWallet):
    for account_id in ("U1001", "U1002", "U1003", "U1004"):
        for tx in (await demo.list_transactions(account_id, limit=100)).items:
            if tx.merchant in ("中国移动话费充值", "Steam Wallet") and tx.status == "success":
                eligibility = await demo.refund_eligibility(account_id, tx.id)
                assert eligibility.reason == "merchant_rules"
                return
    pytest.fail("no paid transaction with a no-refund merchant in the seed")


async def test_factory_builds_both_kinds(db: Database):
    demo = create_backend("demo", db=db, public_url=PUBLIC_URL)
    assert (await demo.get_account("U1004")).display_name == "Bob Jones"
    http = create_backend("http", base_url="http://127.0.0.1:9/api")
    await http.close()
    with pytest.raises(ValueError):
        create_backend("ftp")


async def test_refunds_move_when_due_each_status_logged_once(demo: DemoWallet, clock: FakeClock):
    """The wallet advances only refunds due for their next status: refunds created at
    different times each reach the status their age says, none skips or repeats a status
    in the change feed, and a call when nothing is due changes nothing."""
    step = demo.refund_step_seconds
    accounts = ("U1001", "U1002", "U1003", "U1004")
    refunds = []
    for index, account_id in enumerate(accounts):
        tx = await first_refundable(demo, account_id)
        amount = Decimal("0.99") if index == 3 else Decimal("1.00")
        refunds.append(await demo.create_refund(account_id, tx.id, amount, "why", f"k{index}"))
        clock.advance(step * 0.6)  # each one created 0.6 steps after the one before
    expected_paths = {
        0: ["submitted", "reviewing", "approved", "refunded"],
        3: ["submitted", "reviewing", "rejected"],
    }
    for _ in range(12):
        clock.advance(step * 0.35)
        for refund, account_id in zip(refunds, accounts, strict=True):
            now = await demo.get_refund(account_id, refund.id)
            age = clock() - refund.created_at.timestamp()
            path = expected_paths.get(accounts.index(account_id), expected_paths[0])
            assert now.status == path[min(int(age // step), len(path) - 1)], (age, now)
    feed = await demo.refund_changes("0", limit=100)
    for index, refund in enumerate(refunds):
        logged = [c.status for c in feed.changes if c.refund.id == refund.id]
        assert logged == expected_paths.get(index, expected_paths[0])
