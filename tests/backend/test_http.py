"""The http backend: retries with the same key, timeouts, circuit breaker, error mapping."""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.backend.fake_server import TEST_KEY, FakeWalletApi, documented_operations
from tests.backend.spec import checked_client
from tests.backend.test_contract import refundable
from tgbot.backend import Frozen, Locked, NotEligible, NotFound, OutcomeUnknown, Unavailable
from tgbot.backend.base import WalletBackend
from tgbot.backend.demo import DemoWallet
from tgbot.backend.http import HttpWallet, endpoint_group


class Monotonic:
    """A monotonic clock for the breaker that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def make_wallet(api: FakeWalletApi) -> AsyncIterator:
    """Make http clients whose traffic is checked against docs/wallet-api.yaml."""
    made: list[tuple[HttpWallet, object]] = []

    def factory(**options) -> HttpWallet:
        options = {"timeout": 2.0, "retries": 2, "backoff": 0.01, "api_key": TEST_KEY, **options}
        base_url = options.pop("base_url", api.url)
        client, transport = checked_client(base_url)
        wallet = HttpWallet(base_url, client=client, **options)
        made.append((wallet, transport))
        return wallet

    yield factory
    for wallet, transport in made:
        await wallet._client.aclose()
        assert transport.violations == []


async def test_5xx_is_retried_with_the_same_idempotency_key(api, make_wallet, demo: DemoWallet):
    api.fail_next(2, status=503)
    sent = await make_wallet().send_code("U1001", "verify-7")
    assert sent.expires_at
    assert api.keys("/codes") == ["verify-7"] * 3
    assert len(await demo.sms_outbox("+8613800138001")) == 1


async def test_writes_without_a_caller_key_still_retry_with_one_key(api, make_wallet):
    await make_wallet().send_code("U1001", "verify-1")
    api.fail_next(1, status=502)
    assert await make_wallet().check_code("U1001", "246810") is True
    keys = api.keys("/codes/check")
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]


async def test_429_honours_retry_after(api, make_wallet):
    api.fail_next(1, status=429, retry_after="0.2")
    started = time.monotonic()
    assert (await make_wallet().get_account("U1001")).id == "U1001"
    assert time.monotonic() - started >= 0.2


async def test_timeouts_are_retried_then_unavailable(api, make_wallet):
    api.delay_next(5, seconds=2.0)
    wallet = make_wallet(timeout=0.1, retries=1)
    started = time.monotonic()
    with pytest.raises(Unavailable) as down:
        await wallet.get_account("U1001")
    assert down.value.reason == "timeout"
    assert len(api.requests) == 2
    assert time.monotonic() - started < 1.0


async def test_circuit_breaker_opens_fails_fast_and_recovers(api, make_wallet):
    clock = Monotonic()
    wallet = make_wallet(retries=1, breaker_threshold=3, breaker_cooldown=30.0, clock=clock)
    api.fail_next(10, status=500)
    with pytest.raises(Unavailable):
        await wallet.get_account("U1001")  # 2 failed attempts
    with pytest.raises(Unavailable):
        await wallet.get_account("U1001")  # the 3rd opens the breaker: no 4th attempt
    assert len(api.requests) == 3
    with pytest.raises(Unavailable) as fast:
        await wallet.get_account("U1001")
    assert fast.value.reason == "circuit_open"
    assert len(api.requests) == 3  # failed fast: nothing sent
    clock.now += 31
    api.faults.clear()
    assert (await wallet.get_account("U1001")).id == "U1001"  # the trial call closes it
    assert wallet.breakers["accounts"].state == "closed"


async def test_a_failed_trial_reopens_the_breaker(api, make_wallet):
    clock = Monotonic()
    wallet = make_wallet(retries=2, breaker_threshold=1, breaker_cooldown=5.0, clock=clock)
    api.fail_next(10, status=503)
    with pytest.raises(Unavailable):
        await wallet.get_account("U1001")
    clock.now += 6
    with pytest.raises(Unavailable):
        await wallet.get_account("U1001")  # the trial: one attempt only
    assert len(api.requests) == 2
    with pytest.raises(Unavailable) as fast:
        await wallet.get_account("U1001")
    assert fast.value.reason == "circuit_open"


async def test_domain_errors_do_not_count_as_failures(api, make_wallet):
    wallet = make_wallet(breaker_threshold=1)
    for _ in range(3):
        with pytest.raises(NotFound):
            await wallet.get_account("U9999")
    assert wallet.breakers["accounts"].state == "closed"


async def test_status_codes_map_to_domain_errors(api, make_wallet):
    wallet = make_wallet()
    with pytest.raises(NotFound):
        await wallet.get_transaction("U1001", "TX0")
    with pytest.raises(NotEligible) as conflict:
        await wallet.unlock("U1001", "unlock-1")
    assert conflict.value.reason == "not_locked"
    with pytest.raises(Frozen):
        await wallet.password_reset_link("U1005", "reset-1")


def mocked(status: int, body: bytes, content_type: str = "application/json") -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def until_held(inside: list[int], count: int) -> None:
    """Wait until the wallet of :func:`held` holds ``count`` requests."""
    while inside[0] < count:  # noqa: ASYNC110 -- waits for the handler's own counter
        await asyncio.sleep(0.001)


@pytest.mark.parametrize(
    ("status", "body", "error", "reason"),
    [
        (423, b'{"error": {"reason": "wrong_password", "message": "locked"}}', Locked,
         "wrong_password"),
        (423, b'{"error": {"reason": "frozen", "message": "frozen"}}', Frozen, "frozen"),
        (422, b'{"error": {"reason": "invalid_amount"}}', NotEligible, "invalid_amount"),
        (401, b'{"error": {"reason": "unauthorized"}}', Unavailable, "unauthorized"),
        (404, b"<html>not here</html>", NotFound, "http_404"),
        (200, b"not json", Unavailable, "bad_response"),
        (200, b'{"id": "U1"}', Unavailable, "bad_response"),
    ],
)  # fmt: skip
async def test_every_answer_becomes_a_domain_error(status, body, error, reason):
    async with mocked(status, body) as client:
        wallet = HttpWallet("http://wallet.test/api", client=client, retries=0)
        with pytest.raises(error) as raised:
            await wallet.get_account("U1")
        assert raised.value.reason == reason


async def test_server_down_is_unavailable_quickly(make_wallet):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    wallet = make_wallet(base_url=f"http://127.0.0.1:{port}/api/v1", retries=2)
    started = time.monotonic()
    with pytest.raises(Unavailable) as down:
        await wallet.account_by_phone("+8613800138001")
    assert down.value.reason == "connection"
    assert time.monotonic() - started < 1.0


async def test_api_key_and_json_bodies(api, make_wallet):
    api.rotate_key("s3cret")
    with pytest.raises(Unavailable):
        await make_wallet().get_account("U1001")
    wallet = make_wallet(api_key="s3cret")
    assert (await wallet.get_account("U1001")).id == "U1001"
    assert api.requests[-1].authorization == "Bearer s3cret"
    assert api.requests[-1].idempotency_key is None  # reads carry no key


def test_the_openapi_file_documents_every_interface_method():
    spec = (Path(__file__).parents[2] / "docs" / "wallet-api.yaml").read_text("utf-8")
    documented = set(re.findall(r"operationId: (\w+)", spec))
    methods = {
        name for name, _ in inspect.getmembers(WalletBackend, inspect.iscoroutinefunction)
        if not name.startswith("_") and name != "close"
    }  # fmt: skip
    camel = {re.sub(r"_(\w)", lambda m: m[1].upper(), name) for name in methods}
    assert camel == documented
    assert documented_operations() == documented  # the fake wallet serves each of them


# -- what the issue asked: unknown outcomes, in-progress keys, breakers per group, 401 --------


async def test_a_slow_write_is_an_unknown_outcome_and_a_slow_read_is_unavailable(
    api, make_wallet, demo: DemoWallet
):
    """A refund made by the wallet whose answer never came in time is not "nothing was
    changed": the client says the outcome is unknown."""
    wallet = make_wallet(timeout=0.2, retries=0)
    tx = await refundable(demo)
    api.slow_next(1, seconds=1.0, op="createRefund")
    with pytest.raises(OutcomeUnknown) as unknown:
        await wallet.create_refund("U1001", tx.id, Decimal("1.00"), "r", "refund:1:k1")
    assert unknown.value.reason == "timeout"
    assert len(await demo.list_refunds("U1001")) == 1  # it was made
    # Asking again with the same key tells the truth: the refund made the first time.
    again = await make_wallet().create_refund("U1001", tx.id, Decimal("1.00"), "r", "refund:1:k1")
    assert [again.id] == [r.id for r in await demo.list_refunds("U1001")]
    api.slow_next(1, seconds=1.0, op="getAccount")
    with pytest.raises(Unavailable) as down:
        await wallet.get_account("U1001")
    assert not isinstance(down.value, OutcomeUnknown)


async def test_a_garbled_answer_to_a_write_is_retried_with_the_same_key(api, make_wallet, demo):
    api.garble_next(1, op="freeze")
    account = await make_wallet().freeze("U1003", "stolen_phone", "freeze:7:100")
    assert account.status == "frozen"
    assert api.keys("/freeze") == ["freeze:7:100", "freeze:7:100"]
    api.garble_next(5, op="freeze")
    with pytest.raises(OutcomeUnknown) as unknown:
        await make_wallet().freeze("U1003", "stolen_phone", "freeze:7:101")
    assert unknown.value.reason == "bad_response"


async def test_5xx_on_a_write_is_unknown_but_429_and_a_refused_connection_are_not(api, make_wallet):
    api.fail_next(3, status=503, op="unlock")
    with pytest.raises(OutcomeUnknown):
        await make_wallet().unlock("U1002", "unlock:1:1")
    api.fail_next(3, status=429, retry_after="0", op="unlock")
    with pytest.raises(Unavailable) as limited:
        await make_wallet().unlock("U1002", "unlock:1:2")
    assert not isinstance(limited.value, OutcomeUnknown)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = make_wallet(base_url=f"http://127.0.0.1:{port}/api/v1", retries=1)
    with pytest.raises(Unavailable) as refused:
        await closed.unlock("U1002", "unlock:1:3")
    assert not isinstance(refused.value, OutcomeUnknown)


async def test_a_retry_while_the_first_call_runs_waits_for_its_answer(api, make_wallet, demo):
    """409 idempotency_key_in_progress is "not yet", never "not eligible": the client waits
    and asks again with the same key until the first call's answer is there."""
    api.busy_next(1, seconds=0.6, op="sendCode")
    wallet = make_wallet(timeout=0.2, retries=6, backoff=0.05)
    sent = await wallet.send_code("U1004", "code:9:1")
    assert sent.expires_at
    statuses = [r.operation for r in api.calls("sendCode")]
    assert len(statuses) >= 3  # the first timed out, then at least one 409 in progress
    assert set(api.keys("/codes")) == {"code:9:1"}
    assert len(await demo.sms_outbox("+447700900104")) == 1


async def test_still_in_progress_after_every_retry_is_an_unknown_outcome(api, make_wallet):
    api.busy_next(1, seconds=2.0, op="freeze")
    wallet = make_wallet(timeout=0.1, retries=2, backoff=0.05)
    with pytest.raises(OutcomeUnknown) as unknown:
        await wallet.freeze("U1003", "stolen_phone", "freeze:5:5")
    assert unknown.value.reason in ("idempotency_key_in_progress", "timeout")
    assert wallet.breakers["accounts"].state == "closed"  # a busy wallet is not a down one


def test_endpoint_groups():
    assert endpoint_group("/refunds/changes") == "refund_feed"
    assert endpoint_group("/accounts/U1/refunds") == "refunds"
    assert endpoint_group("/accounts/U1/transactions/TX1/refund-eligibility") == "refunds"
    assert endpoint_group("/accounts/U1/transactions/TX1") == "transactions"
    assert endpoint_group("/accounts/U1/cards/C1") == "cards"
    assert endpoint_group("/accounts/U1/bindings/B1/deposit-check") == "cards"
    assert endpoint_group("/accounts/U1/freeze") == "accounts"
    assert endpoint_group("/accounts/lookup") == "accounts"
    assert endpoint_group("/link-tokens/redeem") == "accounts"


async def test_a_failing_refund_feed_does_not_block_users(api, make_wallet):
    """The refund poller's endpoint has its own breaker: while it is open, users' calls go
    through."""
    wallet = make_wallet(retries=0, breaker_threshold=2, breaker_cooldown=30.0)
    api.fail_next(5, status=503, op="refundChanges")
    for _ in range(3):
        with pytest.raises(Unavailable):
            await wallet.refund_changes(None)
    assert wallet.breakers["refund_feed"].state == "open"
    assert (await wallet.get_account("U1001")).id == "U1001"
    assert (await wallet.list_transactions("U1001", limit=1)).total == 50
    assert wallet.breakers["accounts"].state == "closed"


async def test_a_rotated_key_is_reread_from_the_key_file_once(api, make_wallet, tmp_path):
    key_file = tmp_path / "wallet.key"
    key_file.write_text(TEST_KEY + "\n")
    wallet = make_wallet(api_key=None, api_key_file=key_file)
    assert (await wallet.get_account("U1001")).id == "U1001"
    api.rotate_key("new-key")
    key_file.write_text("new-key\n")
    assert (await wallet.get_account("U1001")).id == "U1001"
    assert [r.authorization for r in api.requests[-2:]] == ["Bearer test-key", "Bearer new-key"]


async def test_a_refused_key_is_not_retried_and_does_not_open_the_breaker(api, make_wallet):
    wallet = make_wallet(api_key="old-key", breaker_threshold=1)
    before = len(api.requests)
    with pytest.raises(Unavailable) as refused:
        await wallet.freeze("U1003", "stolen_phone", "freeze:1:1")
    assert not isinstance(refused.value, OutcomeUnknown)  # refused: nothing was done
    assert refused.value.reason == "unauthorized"
    assert len(api.requests) == before + 1
    assert wallet.breakers["accounts"].state == "closed"


async def test_every_call_is_bounded_by_the_deadline(api, make_wallet):
    api.delay_next(10, seconds=5.0)
    wallet = make_wallet(timeout=1.0, retries=5, backoff=0.01, deadline=1.5)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await wallet.get_account("U1001")
    assert time.monotonic() - started < 3.0


async def test_the_phone_lookup_changes_nothing_so_its_failure_is_not_unknown(api, make_wallet):
    api.fail_next(3, status=503, op="accountByPhone")
    with pytest.raises(Unavailable) as down:
        await make_wallet().account_by_phone("+8613800138001")
    assert not isinstance(down.value, OutcomeUnknown)


def held(release: asyncio.Event, seen: list[int], inside: list[int]) -> httpx.AsyncClient:
    """A wallet that answers 404 once ``release`` is set, recording how many requests it held
    at once (``inside``: now, ``seen``: the most)."""

    async def handler(request: httpx.Request) -> httpx.Response:
        inside[0] += 1
        seen[0] = max(seen[0], inside[0])
        await release.wait()
        inside[0] -= 1
        return httpx.Response(404, json={"error": {"reason": "account_not_found"}})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_at_most_max_in_flight_requests_reach_the_wallet_at_once():
    release, seen, inside = asyncio.Event(), [0], [0]
    async with held(release, seen, inside) as client:
        wallet = HttpWallet("http://wallet.test/api", client=client, max_in_flight=3)
        calls = [asyncio.create_task(wallet.get_account(f"U{i}")) for i in range(10)]
        await until_held(inside, 3)
        await asyncio.sleep(0.05)  # the seven others had every chance to go out
        assert inside[0] == 3
        release.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert seen[0] == 3
    assert all(isinstance(r, NotFound) for r in results), results


async def test_a_write_that_never_got_a_place_is_unavailable_not_unknown():
    """Waiting for a place longer than the pool timeout sends nothing: the refund surely was
    not created, so the user is told the wallet is busy, not "it may have happened"."""
    release, seen, inside = asyncio.Event(), [0], [0]
    async with held(release, seen, inside) as client:
        wallet = HttpWallet(
            "http://wallet.test/api", client=client, max_in_flight=1, timeout=0.2, retries=0
        )
        first = asyncio.create_task(wallet.get_account("U1"))
        await until_held(inside, 1)
        with pytest.raises(Unavailable) as busy:
            await wallet.create_refund("U1", "TX1", Decimal("1.00"), "not received", "key-1")
        assert not isinstance(busy.value, OutcomeUnknown)
        assert seen[0] == 1  # the refund request never reached the wallet
        release.set()
        with pytest.raises(NotFound):
            await first
