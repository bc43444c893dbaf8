"""The identity check's bookkeeping: code tries, expiry, lockout and how long a check holds.

Written to kill the mutants of ``storage/repos/verifications.py`` (``scripts/mutate.sh
verify``, docs/testing.md): the e2e tests drive these through the bot, far too slowly to run
once per mutant. SQLite only: that is the file mutated.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import Database, Repositories, Verification


@pytest.fixture
def repos(sqlite_db: Database) -> Repositories:
    return Repositories(sqlite_db)


def _state(**changes) -> Verification:
    blank = dict(
        user_id=1,
        account_id=None,
        code_sent_at=None,
        code_expires_at=None,
        resend_after=None,
        tries_left=5,
        failed_rounds=0,
        locked_until=None,
        verified_at=None,
    )
    return Verification(**{**blank, **changes})


async def test_a_user_never_checked_has_a_blank_state(repos: Repositories):
    assert await repos.verifications.get(42) == _state(user_id=42)


async def test_a_sent_code_records_its_account_times_and_tries(repos: Repositories):
    await repos.verifications.code_sent(7, "U1", expires_at=400.0, resend_after=160.0, now=100.0)
    assert await repos.verifications.get(7) == _state(
        user_id=7, account_id="U1", code_sent_at=100.0, code_expires_at=400.0, resend_after=160.0
    )
    # A new code (another account, three tries) replaces every one of them.
    await repos.verifications.code_sent(7, "U2", 900.0, 660.0, tries=3, now=600.0)
    assert await repos.verifications.get(7) == _state(
        user_id=7,
        account_id="U2",
        code_sent_at=600.0,
        code_expires_at=900.0,
        resend_after=660.0,
        tries_left=3,
    )
    before = time.time()
    await repos.verifications.code_sent(8, "U3", 1.0, 2.0)
    sent_at = (await repos.verifications.get(8)).code_sent_at
    assert sent_at is not None and before - 1 <= sent_at <= time.time() + 1


async def test_a_new_code_gives_the_tries_back_but_keeps_the_spent_rounds(repos: Repositories):
    v = repos.verifications
    await v.code_sent(7, "U1", 400.0, 160.0, tries=1, now=100.0)
    state = await v.wrong_code(7, lockout=1800.0, rounds_before_lock=2, now=200.0)
    assert (state.tries_left, state.failed_rounds, state.locked_until) == (0, 1, None)
    await v.code_sent(7, "U1", 800.0, 560.0, tries=2, now=500.0)
    state = await v.get(7)
    assert (state.tries_left, state.failed_rounds, state.code_expires_at) == (2, 1, 800.0)


async def test_wrong_codes_count_down_then_spend_the_code_and_lock(repos: Repositories):
    v = repos.verifications
    await v.code_sent(7, "U1", expires_at=400.0, resend_after=160.0, tries=3, now=100.0)
    state = await v.wrong_code(7, lockout=1800.0, now=110.0)
    assert (state.tries_left, state.failed_rounds, state.code_expires_at) == (2, 0, 400.0)
    assert state.locked_until is None
    state = await v.wrong_code(7, lockout=1800.0, now=120.0)
    assert (state.tries_left, state.failed_rounds, state.code_expires_at) == (1, 0, 400.0)
    # The last try: the code is spent at once (expires now) and, one round being enough by
    # default, the user is locked out for the lockout from now.
    state = await v.wrong_code(7, lockout=1800.0, now=130.0)
    assert state == _state(
        user_id=7,
        account_id="U1",
        code_sent_at=100.0,
        code_expires_at=130.0,
        resend_after=160.0,
        tries_left=0,
        failed_rounds=1,
        locked_until=1930.0,
    )
    assert state.locked(now=1929.0) and not state.locked(now=1930.0)


async def test_the_lock_comes_only_after_the_rounds_allowed(repos: Repositories):
    v = repos.verifications
    await v.code_sent(7, "U1", 400.0, 160.0, tries=1, now=100.0)
    state = await v.wrong_code(7, lockout=60.0, rounds_before_lock=3, now=110.0)
    assert (state.failed_rounds, state.locked_until, state.code_expires_at) == (1, None, 110.0)
    await v.code_sent(7, "U1", 500.0, 260.0, tries=1, now=200.0)
    state = await v.wrong_code(7, lockout=60.0, rounds_before_lock=3, now=210.0)
    assert (state.failed_rounds, state.locked_until) == (2, None)
    await v.code_sent(7, "U1", 600.0, 360.0, tries=1, now=300.0)
    state = await v.wrong_code(7, lockout=60.0, rounds_before_lock=3, now=310.0)
    assert (state.failed_rounds, state.locked_until) == (3, 370.0)


async def test_a_wrong_code_touches_only_its_user(repos: Repositories):
    v = repos.verifications
    await v.code_sent(7, "U1", 400.0, 160.0, tries=1, now=100.0)
    await v.code_sent(8, "U2", 400.0, 160.0, tries=1, now=100.0)
    await v.wrong_code(7, lockout=60.0, now=110.0)
    assert (await v.get(8)) == _state(
        user_id=8,
        account_id="U2",
        code_sent_at=100.0,
        code_expires_at=400.0,
        resend_after=160.0,
        tries_left=1,
    )


async def test_a_wrong_code_without_a_pending_code_changes_nothing(repos: Repositories):
    assert await repos.verifications.wrong_code(9, lockout=60.0, now=1.0) == _state(user_id=9)


async def test_a_wrong_code_uses_the_clock_when_no_time_is_given(repos: Repositories):
    v = repos.verifications
    await v.code_sent(7, "U1", 10**12, 160.0, tries=1, now=100.0)
    before = time.time()
    state = await v.wrong_code(7, lockout=1800.0)
    assert state.code_expires_at is not None and state.locked_until is not None
    assert before - 1 <= state.code_expires_at <= time.time() + 1
    assert state.locked_until == pytest.approx(state.code_expires_at + 1800.0)
    assert state.locked() and state.code_expired()


async def test_verifying_resets_the_counters_and_spends_the_code(repos: Repositories):
    v = repos.verifications
    await v.code_sent(7, "U1", 400.0, 160.0, tries=1, now=100.0)
    await v.wrong_code(7, lockout=60.0, now=110.0)
    await v.code_sent(7, "U2", 900.0, 660.0, tries=2, now=600.0)
    await v.verified(7, "U2", now=700.0)
    assert await v.get(7) == _state(
        user_id=7,
        account_id="U2",
        code_sent_at=600.0,
        code_expires_at=None,
        resend_after=660.0,
        tries_left=5,
        failed_rounds=0,
        locked_until=None,
        verified_at=700.0,
    )
    # A user linked from the app without a code is verified as well.
    before = time.time()
    await v.verified(8, "U3")
    state = await v.get(8)
    assert state.account_id == "U3" and state.verified_at is not None
    assert before - 1 <= state.verified_at <= time.time() + 1
    assert state.fresh(60.0) and not state.locked()


def test_a_lock_holds_until_its_time():
    assert not _state().locked(now=100.0)
    locked = _state(locked_until=200.0)
    assert locked.locked(now=199.5) and not locked.locked(now=200.0)
    assert not locked.locked(now=300.0)
    assert _state(locked_until=time.time() + 60).locked()
    assert not _state(locked_until=time.time() - 60).locked()


def test_a_check_is_fresh_for_its_age_including_the_last_second():
    assert not _state().fresh(10**9, now=100.0)
    done = _state(verified_at=1000.0)
    assert done.fresh(300.0, now=1000.0)
    assert done.fresh(300.0, now=1300.0)
    assert not done.fresh(300.0, now=1300.5)
    assert _state(verified_at=time.time() - 10).fresh(60.0)
    assert not _state(verified_at=time.time() - 120).fresh(60.0)


def test_a_code_is_good_until_its_expiry_and_none_is_expired():
    assert _state().code_expired(now=1.0)
    code = _state(code_expires_at=500.0)
    assert not code.code_expired(now=499.0)
    assert not code.code_expired(now=500.0)
    assert code.code_expired(now=500.001)
    assert code.code_expired()  # the clock is far past 500
    assert not _state(code_expires_at=time.time() + 60).code_expired()


@given(
    expires=st.floats(0, 1e10, allow_nan=False),
    now=st.floats(1, 1e10, allow_nan=False),
)
def test_a_code_typed_after_its_expiry_is_always_refused(expires: float, now: float):
    assert _state(code_expires_at=expires).code_expired(now=now) == (now > expires)


@given(
    until=st.floats(1, 1e10, allow_nan=False),
    now=st.floats(1, 1e10, allow_nan=False),
)
def test_locked_exactly_while_the_lock_runs(until: float, now: float):
    assert _state(locked_until=until).locked(now=now) == (now < until)
