"""The bot's records in PostgreSQL (``TGBOT_DATABASE_URL=postgresql://...``): the same
repositories as SQLite, its own numbered migrations, and the primitives several workers
share (per-chat locks, leases; the inbox and the outbox are safe to share as they are)."""

from storage.postgres.db import PostgresDatabase, redact_url
from storage.postgres.locks import ChatLockLost, ChatLocks
from storage.postgres.migrations import latest_version, migrate, schema_version

__all__ = [
    "ChatLockLost",
    "ChatLocks",
    "PostgresDatabase",
    "latest_version",
    "migrate",
    "redact_url",
    "schema_version",
]
