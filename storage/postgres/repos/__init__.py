"""The repositories in PostgreSQL: the same classes, methods and results as the SQLite ones
(one contract suite runs against both), with SQL for PostgreSQL."""

from storage.postgres.repos.answers import AnswerRepository
from storage.postgres.repos.audit import AuditRepository
from storage.postgres.repos.broadcasts import BroadcastRepository
from storage.postgres.repos.inbox import InboxRepository
from storage.postgres.repos.leases import LeaseRepository
from storage.postgres.repos.outbox import OutboxRepository
from storage.postgres.repos.privacy import PrivacyRepository
from storage.postgres.repos.refunds import RefundRepository, SettingsRepository
from storage.postgres.repos.state import StateRepository
from storage.postgres.repos.stats import StatsRepository
from storage.postgres.repos.tickets import AgentRepository, TicketRepository
from storage.postgres.repos.users import UserRepository
from storage.postgres.repos.verifications import VerificationRepository

__all__ = [
    "AgentRepository",
    "AnswerRepository",
    "AuditRepository",
    "BroadcastRepository",
    "InboxRepository",
    "LeaseRepository",
    "OutboxRepository",
    "PrivacyRepository",
    "RefundRepository",
    "SettingsRepository",
    "StateRepository",
    "StatsRepository",
    "TicketRepository",
    "UserRepository",
    "VerificationRepository",
]
