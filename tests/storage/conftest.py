"""Fixtures: a migrated database in a temporary directory, and its repositories."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import Database, Repositories, migrate


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Return where the test database lives."""
    return tmp_path / "bot.db"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    """Yield an open, migrated database; close it afterwards."""
    database = await Database.open(db_path)
    try:
        await migrate(database)
        yield database
    finally:
        await database.close()


@pytest.fixture
def repos(db: Database) -> Repositories:
    """Return the repositories facade over the test database."""
    return Repositories(db)
