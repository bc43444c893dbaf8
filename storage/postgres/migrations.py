"""Numbered PostgreSQL migrations (``storage/postgres/migrations/NNNN_name.sql``), tracked
in the ``schema_migrations`` table of the bot's schema."""

from __future__ import annotations

from functools import cache

import asyncpg

from storage.errors import StorageError
from storage.migrations import Migration, read_migrations
from storage.postgres.db import PostgresDatabase


@cache
def load_migrations() -> tuple[Migration, ...]:
    """Read the packaged PostgreSQL migrations, numbered 1..N without gaps."""
    return read_migrations("storage.postgres")


def latest_version() -> int:
    """Return the schema version this code brings a PostgreSQL database to."""
    return len(load_migrations())


async def migrate(db: PostgresDatabase) -> tuple[int, int]:
    """Apply pending migrations in order, each in its own transaction.

    Processes starting together on one database take turns (an advisory lock on the
    migrating connection): one migrates, the others find nothing left to do.

    Returns:
        ``(from_version, to_version)``; equal when nothing was pending.

    Raises:
        StorageError: the schema was written by newer code, or a migration failed.
    """
    migrations = load_migrations()
    latest = len(migrations)
    key = db.key("migrate")
    async with db.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", key)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            start = await _version(conn)
            _refuse_newer(db, start, latest)
            for migration in migrations[start:]:
                try:
                    async with conn.transaction():
                        # A script without parameters runs as one multi-statement query.
                        await conn.execute(migration.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                            migration.version,
                            migration.name,
                        )
                except asyncpg.PostgresError as exc:
                    raise StorageError(f"Migration {migration.name} failed: {exc}") from exc
            return start, await _version(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)


async def schema_version(db: PostgresDatabase) -> int:
    """Return the version the database's schema is at (0: never migrated)."""
    async with db.acquire() as conn:
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        return await _version(conn) if exists else 0


async def _version(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))


def _refuse_newer(db: PostgresDatabase, version: int, latest: int) -> None:
    if version > latest:
        raise StorageError(
            f"Database {db.path} has schema version {version}, but this code only knows "
            f"up to {latest}. Run a newer version of the bot, or restore a backup made "
            "for this version."
        )
