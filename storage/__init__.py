"""Storage: connection, migrations, repositories and the PTB persistence, in SQLite (the
embedded default) or PostgreSQL (:mod:`storage.postgres`, ``TGBOT_DATABASE_URL``).

Imports nothing from ``tgbot`` or ``handlers``.
"""

from pathlib import Path

from storage.base import BotDatabase, is_postgres_url
from storage.db import Database
from storage.errors import AlreadyRunning, StorageError
from storage.lock import InstanceLock
from storage.migrations import latest_version, migrate
from storage.persistence import DatabasePersistence, SQLitePersistence
from storage.repos import (
    Agent,
    AgentRepository,
    AnswerRecord,
    AnswerRepository,
    AnswerStats,
    AuditEntry,
    AuditRepository,
    Broadcast,
    BroadcastRepository,
    InboxRepository,
    Lease,
    LeaseRepository,
    OutboxItem,
    OutboxRepository,
    PersonalData,
    PrivacyRepository,
    Repositories,
    StateRepository,
    Ticket,
    TicketMessage,
    TicketRepository,
    User,
    UserRepository,
    Verification,
    VerificationRepository,
)

__all__ = [
    "Agent",
    "AgentRepository",
    "AlreadyRunning",
    "AnswerRecord",
    "AnswerRepository",
    "AnswerStats",
    "AuditEntry",
    "AuditRepository",
    "BotDatabase",
    "Broadcast",
    "BroadcastRepository",
    "Database",
    "DatabasePersistence",
    "InboxRepository",
    "InstanceLock",
    "Lease",
    "LeaseRepository",
    "OutboxItem",
    "OutboxRepository",
    "PersonalData",
    "PrivacyRepository",
    "Repositories",
    "SQLitePersistence",
    "StateRepository",
    "StorageError",
    "Ticket",
    "TicketMessage",
    "TicketRepository",
    "User",
    "UserRepository",
    "Verification",
    "VerificationRepository",
    "is_postgres_url",
    "latest_version",
    "migrate",
    "open_database",
]


async def open_database(target: str | Path) -> BotDatabase:
    """Open the bot's database: a ``postgresql://`` URL, else the path of a SQLite file.

    Raises:
        StorageError: it cannot be opened (a URL's password is never in the message).
    """
    if isinstance(target, str) and is_postgres_url(target):
        from storage.postgres import PostgresDatabase

        return await PostgresDatabase.open(target)
    return await Database.open(target)
