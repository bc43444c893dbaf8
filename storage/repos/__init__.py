"""Repositories: one class per aggregate, speaking in domain terms."""

import sys
from typing import Any

from storage.base import BotDatabase
from storage.db import Database
from storage.repos.answers import AnswerRecord, AnswerRepository, AnswerStats, ArticleStats
from storage.repos.audit import AuditEntry, AuditRepository
from storage.repos.broadcasts import Broadcast, BroadcastRepository
from storage.repos.inbox import InboxRepository
from storage.repos.leases import Lease, LeaseRepository
from storage.repos.outbox import OutboxItem, OutboxRepository
from storage.repos.privacy import Erasure, PersonalData, PrivacyRepository
from storage.repos.refunds import RefundRecord, RefundRepository, SettingsRepository
from storage.repos.state import StateRepository
from storage.repos.stats import StatsRepository
from storage.repos.tickets import Agent, AgentRepository, Ticket, TicketMessage, TicketRepository
from storage.repos.users import User, UserRepository
from storage.repos.verifications import Verification, VerificationRepository

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
    "Lease",
    "LeaseRepository",
    "OutboxItem",
    "OutboxRepository",
    "PersonalData",
    "PrivacyRepository",
    "RefundRecord",
    "RefundRepository",
    "Repositories",
    "SettingsRepository",
    "StateRepository",
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
    """All repositories over one database, e.g. ``repos.users.get(user_id)``.

    The database decides the implementation: SQLite's here, PostgreSQL's in
    :mod:`storage.postgres.repos` (the same classes, methods and results). The demo wallet
    is not here: it keeps its own database (:mod:`tgbot.backend.demo_store`).
    """

    users: UserRepository
    audit: AuditRepository
    inbox: InboxRepository
    outbox: OutboxRepository
    agents: AgentRepository
    tickets: TicketRepository
    verifications: VerificationRepository
    refunds: RefundRepository
    settings: SettingsRepository
    broadcasts: BroadcastRepository
    stats: StatsRepository
    answers: AnswerRepository
    privacy: PrivacyRepository
    state: StateRepository
    leases: LeaseRepository

    def __init__(self, db: Database | BotDatabase) -> None:
        self.db = db
        impl: Any = sys.modules[__name__]
        if db.dialect == "postgresql":
            from storage.postgres import repos as impl
        self.users = impl.UserRepository(db)
        self.audit = impl.AuditRepository(db)
        self.inbox = impl.InboxRepository(db)
        self.outbox = impl.OutboxRepository(db)
        self.agents = impl.AgentRepository(db)
        self.tickets = impl.TicketRepository(db)
        self.verifications = impl.VerificationRepository(db)
        self.refunds = impl.RefundRepository(db)
        self.settings = impl.SettingsRepository(db)
        self.broadcasts = impl.BroadcastRepository(db)
        self.stats = impl.StatsRepository(db)
        self.answers = impl.AnswerRepository(db)
        self.privacy = impl.PrivacyRepository(db)
        self.state = impl.StateRepository(db)
        self.leases = impl.LeaseRepository(db)
