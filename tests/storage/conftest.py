"""Fixtures: a migrated database of each kind (SQLite in a temporary directory, PostgreSQL
in a fresh schema of the session's server), and its repositories.

``db`` and ``repos`` are parametrized over both backends, so every test that uses them is
one contract test run against SQLite and PostgreSQL (aiogram's storage tests do the same).
Tests of one engine's own behaviour use ``sqlite_db`` or ``postgres_db``.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import BotDatabase, Database, Repositories, migrate
from storage.postgres import PostgresDatabase

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Return where the test's SQLite database lives."""
    return tmp_path / "bot.db"


@pytest.fixture
async def sqlite_db(db_path: Path) -> AsyncIterator[Database]:
    """Yield an open, migrated SQLite database; close it afterwards."""
    database = await Database.open(db_path)
    try:
        await migrate(database)
        yield database
    finally:
        await database.close()


@pytest.fixture
async def postgres_db(postgres_server) -> AsyncIterator[PostgresDatabase]:
    """Yield an open, migrated PostgreSQL database in a schema of its own, with no rows;
    close it afterwards (and empty the schema for a later test)."""
    url = await postgres_server.migrated_schema()
    database = await PostgresDatabase.open(url)
    try:
        await migrate(database)  # nothing to do: it is migrated (the check is cheap)
        yield database
    finally:
        await database.close()
        await postgres_server.give_back(url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Return the name of the backend this run of the test uses."""
    return request.param


@pytest.fixture
def db(backend: str, request: pytest.FixtureRequest) -> BotDatabase:
    """Return an open, migrated database of each backend in turn."""
    return request.getfixturevalue({"sqlite": "sqlite_db", "postgresql": "postgres_db"}[backend])


@pytest.fixture
def repos(db: BotDatabase) -> Repositories:
    """Return the repositories facade over the test database."""
    return Repositories(db)
