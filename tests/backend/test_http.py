"""The http backend: retries with the same key, timeouts, circuit breaker, error mapping."""

from __future__ import annotations

import inspect
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.backend.fake_server import FakeWalletApi
from tgbot.backend import Frozen, Locked, NotEligible, NotFound, Unavailable
from tgbot.backend.base import WalletBackend
from tgbot.backend.demo import DemoWallet
from tgbot.backend.http import HttpWallet


class Monotonic:
    """A monotonic clock for the breaker that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def make_wallet(api: FakeWalletApi) -> AsyncIterator:
    made: list[HttpWallet] = []

    def factory(**options) -> HttpWallet:
        options = {"timeout": 2.0, "retries": 2, "backoff": 0.01, **options}
        wallet = HttpWallet(options.pop("base_url", api.url), **options)
        made.append(wallet)
        return wallet

    yield factory
    for wallet in made:
        await wallet.close()


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
    assert wallet.breaker.state == "closed"


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
    assert wallet.breaker.state == "closed"


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
    api.api_key = "s3cret"
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
