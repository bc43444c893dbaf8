"""SQLite storage: connection, migrations, repositories and the PTB persistence.

Imports nothing from ``tgbot`` or ``handlers``.
"""

from storage.db import Database
from storage.errors import AlreadyRunning, StorageError
from storage.lock import InstanceLock
from storage.migrations import latest_version, migrate
from storage.persistence import SQLitePersistence
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
    OutboxItem,
    OutboxRepository,
    PersonalData,
    PrivacyRepository,
    Repositories,
    Ticket,
    TicketMessage,
    TicketRepository,
    User,
    UserRepository,
    Verification,
    VerificationRepository,
    WalletRepository,
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
    "Broadcast",
    "BroadcastRepository",
    "Database",
    "InboxRepository",
    "InstanceLock",
    "OutboxItem",
    "OutboxRepository",
    "PersonalData",
    "PrivacyRepository",
    "Repositories",
    "SQLitePersistence",
    "StorageError",
    "Ticket",
    "TicketMessage",
    "TicketRepository",
    "User",
    "UserRepository",
    "Verification",
    "VerificationRepository",
    "WalletRepository",
    "latest_version",
    "migrate",
]
