"""Refunds the bot remembers: recorded once, listed per user newest first, and a status that
only moves forward (a slow poll never moves a refund back, nor tells the user twice).

Written to kill the mutants of ``storage/repos/refunds.py`` (``scripts/mutate.sh refunds``,
docs/testing.md). SQLite only: that is the file mutated.
"""

from __future__ import annotations

import itertools
import time
from decimal import Decimal

import pytest

from storage import Database, Repositories

#: The wallet's order of a refund's statuses (storage/repos/refunds.py, written out again here
#: so that a change of the order there is noticed).
ORDER = ["submitted", "reviewing", "approved", "rejected", "refunded"]


@pytest.fixture
def repos(sqlite_db: Database) -> Repositories:
    return Repositories(sqlite_db)


async def _record(repos: Repositories, refund_id: str, status: str = "submitted", **kw) -> bool:
    args = dict(
        user_id=7,
        account_id="U1",
        transaction_id="T1",
        amount=Decimal("12.30"),
        currency="CNY",
        reason="not received",
        status=status,
        now=100.0,
    )
    args.update(kw)
    return await repos.refunds.record(refund_id, **args)


async def test_a_refund_is_recorded_once_with_every_field(repos: Repositories):
    assert await _record(repos, "R1", transaction_id="T9", amount=Decimal("0.05"), now=50.0)
    # The same reference again (a replayed confirmation): nothing changes, False.
    assert not await _record(repos, "R1", amount=Decimal("99"), status="approved", now=60.0)
    record = await repos.refunds.get("R1")
    assert record is not None
    assert (record.id, record.user_id, record.account_id, record.transaction_id) == (
        "R1",
        7,
        "U1",
        "T9",
    )
    assert record.amount == Decimal("0.05") and isinstance(record.amount, Decimal)
    assert (record.currency, record.reason, record.status) == ("CNY", "not received", "submitted")
    assert (record.created_at, record.updated_at) == (50.0, 50.0)
    assert await repos.refunds.get("R404") is None


async def test_a_refund_recorded_without_a_time_gets_the_clock(repos: Repositories):
    before = time.time()
    assert await repos.refunds.record("R1", 7, "U1", "T1", Decimal("1"), "CNY", "why", "submitted")
    record = await repos.refunds.get("R1")
    assert record is not None
    assert before - 1 <= record.created_at <= time.time() + 1
    assert record.updated_at == record.created_at


async def test_a_users_refunds_are_theirs_newest_first_and_limited(repos: Repositories):
    await _record(repos, "R1", now=10.0)
    await _record(repos, "R3", now=30.0)
    await _record(repos, "R2", now=20.0)
    await _record(repos, "X1", user_id=8, now=40.0)
    assert [r.id for r in await repos.refunds.for_user(7)] == ["R3", "R2", "R1"]
    assert [r.id for r in await repos.refunds.for_user(7, limit=2)] == ["R3", "R2"]
    assert [r.id for r in await repos.refunds.for_user(8)] == ["X1"]
    assert await repos.refunds.for_user(9) == []
    for number in range(25):
        await _record(repos, f"M{number:02}", user_id=10, now=100.0 + number)
    mine = await repos.refunds.for_user(10)
    assert len(mine) == 20 and mine[0].id == "M24" and mine[-1].id == "M05"
    assert all(isinstance(r.amount, Decimal) for r in mine)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(ORDER, ORDER)))
async def test_a_status_moves_only_forward(repos: Repositories, old: str, new: str):
    await _record(repos, "R1", status=old, now=10.0)
    forward = ORDER.index(new) > ORDER.index(old)
    assert await repos.refunds.advance("R1", new, now=20.0) is forward
    record = await repos.refunds.get("R1")
    assert record is not None
    assert (record.status, record.updated_at) == ((new, 20.0) if forward else (old, 10.0))


@pytest.mark.parametrize("new", ORDER)
async def test_a_wallets_own_first_status_is_before_every_known_one(repos: Repositories, new: str):
    await _record(repos, "R1", status="pending", now=10.0)
    assert await repos.refunds.advance("R1", new, now=20.0)
    record = await repos.refunds.get("R1")
    assert record is not None and (record.status, record.updated_at) == (new, 20.0)


@pytest.mark.parametrize("old", [*ORDER, "pending"])
async def test_a_status_the_bot_does_not_know_never_replaces_one(repos: Repositories, old: str):
    await _record(repos, "R1", status=old, now=10.0)
    assert not await repos.refunds.advance("R1", "on_hold", now=20.0)
    assert (await repos.refunds.get("R1")).status == old  # type: ignore[union-attr]


async def test_advancing_touches_only_that_refund_and_uses_the_clock(repos: Repositories):
    await _record(repos, "R1", now=10.0)
    await _record(repos, "R2", now=10.0)
    assert not await repos.refunds.advance("R404", "approved")
    before = time.time()
    assert await repos.refunds.advance("R1", "approved")
    first, second = await repos.refunds.get("R1"), await repos.refunds.get("R2")
    assert first is not None and second is not None
    assert first.status == "approved" and before - 1 <= first.updated_at <= time.time() + 1
    assert (second.status, second.updated_at) == ("submitted", 10.0)


async def test_settings_are_kept_replaced_and_forgotten(repos: Repositories):
    assert await repos.settings.get("cursor") is None
    await repos.settings.set("cursor", "a")
    await repos.settings.set("other", "x")
    await repos.settings.set("cursor", "b")
    assert (await repos.settings.get("cursor"), await repos.settings.get("other")) == ("b", "x")
    await repos.settings.delete("cursor")
    assert (await repos.settings.get("cursor"), await repos.settings.get("other")) == (None, "x")
