"""Fixtures: the demo wallet's own database, the demo wallet on a fake clock, the API server,
backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import Database
from tests.backend.fake_server import TEST_KEY, FakeWalletApi
from tests.backend.spec import checked_client
from tgbot.backend.base import WalletBackend
from tgbot.backend.demo import DemoWallet
from tgbot.backend.demo_store import WalletStore, open_wallet_database
from tgbot.backend.http import HttpWallet

#: 2026-09-21 14:13:20 UTC: the demo data is seeded relative to this "now".
START = 1_790_000_000.0
PUBLIC_URL = "http://wallet.test"


class FakeClock:
    """Unix time that moves only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """Return the wallet's clock."""
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Return where the demo wallet's own database lives."""
    return tmp_path / "wallet.db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    """Yield the demo wallet's own database, open and migrated; close it afterwards."""
    database = await open_wallet_database(db_path)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def demo(db: Database, clock: FakeClock) -> DemoWallet:
    """Return a seeded demo wallet with the default fixed codes."""
    wallet = DemoWallet(WalletStore(db), public_url=PUBLIC_URL, clock=clock)
    await wallet.seed()
    return wallet


@pytest.fixture
async def api(demo: DemoWallet, clock: FakeClock) -> AsyncIterator[FakeWalletApi]:
    """Yield the wallet API on a local port, backed by the demo wallet; its answers must
    match docs/wallet-api.yaml."""
    server = await FakeWalletApi(demo, clock=clock).start()
    yield server
    await server.stop()
    assert server.violations == []


@pytest.fixture
async def http_wallet(api: FakeWalletApi) -> AsyncIterator[HttpWallet]:
    """Yield an http backend talking to the local API; every request it sends and every
    answer it reads is checked against docs/wallet-api.yaml."""
    client, transport = checked_client(api.url)
    wallet = HttpWallet(api.url, api_key=TEST_KEY, timeout=2.0, retries=2, backoff=0.01,
                        client=client)  # fmt: skip
    yield wallet
    await client.aclose()
    assert transport.violations == []
    assert transport.checked > 0 or not api.requests


@pytest.fixture(params=["demo", "http"])
async def backend(
    request: pytest.FixtureRequest, demo: DemoWallet, http_wallet: HttpWallet
) -> WalletBackend:
    """Each implementation in turn; both see the same demo wallet's data."""
    return demo if request.param == "demo" else http_wallet
