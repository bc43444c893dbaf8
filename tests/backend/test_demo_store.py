"""The demo wallet's own database: its migrations, a file of its own or memory, never the
bot's database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storage import Database, StorageError, migrate
from tests.backend.conftest import PUBLIC_URL, FakeClock
from tgbot.backend import create_backend
from tgbot.backend.demo_store import open_wallet_database, wallet_migrations
from tgbot.config import Config, demo_wallet_beside


async def _tables(db: Database) -> set[str]:
    rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows if not row[0].startswith("sqlite_")}


async def test_a_new_file_gets_the_wallets_tables_and_only_those(tmp_path: Path):
    db = await open_wallet_database(tmp_path / "wallet.db")
    try:
        found = await _tables(db)
        assert {"demo_accounts", "demo_cards", "demo_refunds", "demo_refund_changes"} <= found
        assert {t for t in found if not t.startswith("demo_")} == set()  # no bot records
        version = (await db.fetchone("PRAGMA user_version"))[0]  # type: ignore[index]
        assert version == len(wallet_migrations()) >= 1
    finally:
        await db.close()
    again = await open_wallet_database(tmp_path / "wallet.db")  # reopened: nothing to do
    try:
        assert await _tables(again) == found
    finally:
        await again.close()


async def test_in_memory_the_demo_wallet_works_and_writes_no_file(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = await open_wallet_database(":memory:")
    try:
        wallet = create_backend("demo", db=db, public_url=PUBLIC_URL, clock=FakeClock())
        assert (await wallet.get_account("U1003")).display_name == "Alice Smith"
    finally:
        await db.close()
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


async def test_the_bots_own_database_is_refused_as_the_wallets(tmp_path: Path):
    bot = await Database.open(tmp_path / "bot.db")
    try:
        await migrate(bot)
    finally:
        await bot.close()
    with pytest.raises(StorageError, match="schema version"):
        await open_wallet_database(tmp_path / "bot.db")


def test_the_wallets_file_is_beside_the_bots_unless_configured(tmp_path: Path):
    assert demo_wallet_beside(Path("tgbot-demo.db")) == Path("tgbot-demo.wallet.db")
    assert demo_wallet_beside(tmp_path / "bot") == tmp_path / "bot.wallet.db"
    assert demo_wallet_beside(Path(":memory:")) == Path(":memory:")
    assert Config(db_path=tmp_path / "x.db").demo_wallet_file == tmp_path / "x.wallet.db"
    custom = tmp_path / "elsewhere.sqlite"
    assert Config(demo_wallet_db_path=custom).demo_wallet_file == custom
