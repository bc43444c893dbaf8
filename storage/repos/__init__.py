"""Repositories: one class per aggregate, speaking in domain terms."""

from storage.db import Database
from storage.repos.answers import AnswerRecord, AnswerRepository, AnswerStats, ArticleStats
from storage.repos.audit import AuditEntry, AuditRepository
from storage.repos.broadcasts import Broadcast, BroadcastRepository
from storage.repos.inbox import InboxRepository
from storage.repos.outbox import OutboxItem, OutboxRepository
from storage.repos.privacy import Erasure, PersonalData, PrivacyRepository
from storage.repos.refunds import RefundRecord, RefundRepository, SettingsRepository
from storage.repos.stats import StatsRepository
from storage.repos.tickets import Agent, AgentRepository, Ticket, TicketMessage, TicketRepository
from storage.repos.users import User, UserRepository
from storage.repos.verifications import Verification, VerificationRepository
from storage.repos.wallet import WalletRepository

__all__ = [
    "Agent",
    "AgentRepository",
    "AnswerRecord",
    "AnswerRepository",
    "AnswerStats",
    "ArticleStats",
    "AuditEntry",
    "AuditRepository",
    "Broadcast",
    "BroadcastRepository",
    "Erasure",
    "InboxRepository",
    "OutboxItem",
    "OutboxRepository",
    "PersonalData",
    "PrivacyRepository",
    "RefundRecord",
    "RefundRepository",
    "Repositories",
    "SettingsRepository",
    "StatsRepository",
    "Ticket",
    "TicketMessage",
    "TicketRepository",
    "User",
    "UserRepository",
    "Verification",
    "VerificationRepository",
]


class Repositories:
    """All repositories over one database, e.g. ``repos.users.get(user_id)``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = UserRepository(db)
        self.audit = AuditRepository(db)
        self.inbox = InboxRepository(db)
        self.outbox = OutboxRepository(db)
        self.agents = AgentRepository(db)
        self.tickets = TicketRepository(db)
        self.wallet = WalletRepository(db)
        self.verifications = VerificationRepository(db)
        self.refunds = RefundRepository(db)
        self.settings = SettingsRepository(db)
        self.broadcasts = BroadcastRepository(db)
        self.stats = StatsRepository(db)
        self.answers = AnswerRepository(db)
        self.privacy = PrivacyRepository(db)
