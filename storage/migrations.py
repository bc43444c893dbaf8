"""Numbered SQL migrations tracked by ``PRAGMA user_version``."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources

from storage.base import BotDatabase
from storage.db import Database
from storage.errors import StorageError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``storage/migrations/NNNN_name.sql`` brings the db to ``version``."""

    version: int
    name: str
    sql: str


@cache
def load_migrations() -> tuple[Migration, ...]:
    """Read the packaged migration files, checking they are numbered 1..N without gaps."""
    return read_migrations("storage")


def read_migrations(package: str, folder: str = "migrations") -> tuple[Migration, ...]:
    """Read ``<package>/<folder>/NNNN_name.sql``, checking they are numbered 1..N."""
    found: list[Migration] = []
    for entry in resources.files(package).joinpath(folder).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    expected = list(range(1, len(found) + 1))
    if [m.version for m in found] != expected:
        names = ", ".join(m.name for m in found)
        raise StorageError(f"Migrations must be numbered 0001.. without gaps, found: {names}")
    return tuple(found)


def latest_version() -> int:
    """Return the schema version this code brings a database to."""
    return len(load_migrations())


def split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (semicolons in strings and triggers kept)."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise StorageError(f"Incomplete SQL statement at end of migration: {buffer.strip()!r}")
    return statements


async def migrate(db: Database | BotDatabase) -> tuple[int, int]:
    """Apply pending migrations in order, each in its own transaction (PostgreSQL: its own
    migrations, :mod:`storage.postgres.migrations`).

    Returns:
        ``(from_version, to_version)``; equal when nothing was pending.

    Raises:
        StorageError: the database was written by newer code (its version is
            higher than any migration here), or a migration failed.
    """
    if db.dialect == "postgresql":
        from storage.postgres.migrations import migrate as migrate_postgres

        return await migrate_postgres(db)  # type: ignore[arg-type]
    return await apply_migrations(db, load_migrations())  # type: ignore[arg-type]


async def apply_migrations(db: Database, migrations: tuple[Migration, ...]) -> tuple[int, int]:
    """Bring a SQLite database to the last of ``migrations`` (numbered 1..N, see
    :func:`read_migrations`), each in its own transaction; the version is ``PRAGMA
    user_version``, so one database file follows one series of migrations.

    Returns:
        ``(from_version, to_version)``; equal when nothing was pending.

    Raises:
        StorageError: the database is newer than ``migrations``, or a migration failed.
    """
    latest = len(migrations)
    start = await _user_version(db)
    _refuse_newer(db, start, latest)
    for migration in migrations[start:]:
        # Executed statement by statement: sqlite3's executescript() would commit
        # the surrounding transaction first and lose atomicity.
        async with db.transaction() as conn:
            # Re-read under the write lock: another connection may have migrated.
            current = await _user_version(db)
            _refuse_newer(db, current, latest)
            if current >= migration.version:
                continue
            try:
                for statement in split_statements(migration.sql):
                    await conn.execute(statement)
            except sqlite3.Error as exc:
                raise StorageError(f"Migration {migration.name} failed: {exc}") from exc
            await conn.execute(f"PRAGMA user_version = {migration.version:d}")
    return start, await _user_version(db)


async def _user_version(db: Database) -> int:
    row = await db.fetchone("PRAGMA user_version")
    return int(row[0]) if row else 0


def _refuse_newer(db: Database | BotDatabase, version: int, latest: int) -> None:
    if version > latest:
        raise StorageError(
            f"Database {db.path} has schema version {version}, but this code only knows "
            f"up to {latest}. Run a newer version of the bot, or restore a backup made "
            "for this version."
        )
