"""The wallet backend adapter: one typed async interface the handlers call.

The bot never holds money and never sees passwords or card numbers: accounts, cards,
transactions and refunds live in the wallet's own systems, reached through this interface.
Mutating calls take an idempotency key, so a retry never doubles a binding, an SMS, a freeze
or a refund. Implementations: :mod:`tgbot.backend.demo` (the default, self-contained) and
:mod:`tgbot.backend.http` (a client of the JSON API in ``docs/wallet-api.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class BackendError(Exception):
    """A domain error from the wallet; ``reason`` is a stable machine-readable code."""

    def __init__(self, reason: str = "", message: str = "", **details: object) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.details = details


class NotFound(BackendError):
    """The account, card, binding, transaction or refund does not exist (for this account)."""


class NotEligible(BackendError):
    """The action is not allowed now; ``reason`` says why (e.g. ``"refund_window_over"``)."""


class Locked(BackendError):
    """The account is locked (e.g. too many wrong passwords)."""


class Frozen(BackendError):
    """The account is frozen."""


class Unavailable(BackendError):
    """The wallet cannot be reached or answered with an error; try again later.

    Raised as such only when the wallet certainly did nothing: a read, a call never sent
    (circuit breaker open, connection refused), or one it refused (401, 403, 429).
    """


class OutcomeUnknown(Unavailable):
    """A mutating call may or may not have been applied: it timed out after being sent, the
    wallet answered 5xx or something unreadable, or it was still in progress. Retrying with
    the same idempotency key (or looking the result up) tells; until then the user must not
    be told "nothing was changed".
    """


@dataclass(frozen=True)
class Account:
    """A wallet account as the bot may see it (no password, no full phone or card numbers)."""

    id: str
    display_name: str
    phone_masked: str  # e.g. "+86 138****8001"
    status: str  # "active" | "locked" | "frozen"
    locked_reason: str | None = None  # e.g. "wrong_password"
    #: When the password was last changed (the bot tells the user after a reset).
    password_changed_at: datetime | None = None


@dataclass(frozen=True)
class CodeSent:
    """A one-time code was sent by SMS."""

    expires_at: datetime
    resend_after: datetime


@dataclass(frozen=True)
class ResetLink:
    """A one-time password-reset link on the wallet's own page."""

    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Card:
    """A bound bank card, masked."""

    id: str
    bank: str
    last4: str
    kind: str  # "debit" | "credit"


@dataclass(frozen=True)
class BindingCard:
    """The card entered on the secure page: bank and last four digits; ``id`` once bound."""

    bank: str
    last4: str
    kind: str  # "debit" | "credit"
    id: str | None = None


@dataclass(frozen=True)
class Binding:
    """A card binding started on the wallet's secure page."""

    id: str
    status: str  # "waiting_for_card" | "awaiting_deposit" | "bound" | "failed"
    secure_url: str
    reason: str | None = None  # why it failed: "already_bound", "bank_refused", "too_many_tries"
    card: BindingCard | None = None
    tries_left: int | None = None


@dataclass(frozen=True)
class PaidWith:
    """Where a payment's money came from, and so where a refund of it goes back."""

    method: str  # "balance" | "card"
    bank: str | None = None
    last4: str | None = None


@dataclass(frozen=True)
class Transaction:
    """A payment, transfer or top-up; amounts are Decimal in the transaction's currency."""

    id: str
    account_id: str
    created_at: datetime  # timezone-aware (UTC)
    amount: Decimal
    currency: str  # ISO 4217, e.g. "CNY"
    merchant: str
    status: str  # "success" | "processing" | "failed" | "refunded" | "partially_refunded"
    refunded_amount: Decimal = Decimal("0")
    kind: str = "payment"  # "payment" | "transfer" | "topup"
    failure_reason: str | None = None  # "insufficient_balance", "network", "wrong_info", ...
    #: The merchant's name by language tag ("en", "zh-Hans"), where the wallet has them.
    merchant_names: dict[str, str] = field(default_factory=dict, hash=False)
    #: A transfer's other party (the payee, or the payer of money received).
    counterparty: str | None = None
    #: Where the money came from (a refund goes back there), if the wallet says.
    paid_with: PaidWith | None = None


@dataclass(frozen=True)
class RefundEligibility:
    """Whether a transaction can be refunded now, and how much."""

    eligible: bool
    refundable: Decimal
    currency: str
    reason: str | None = None  # "not_paid", "window_over", "fully_refunded", "merchant_rules"
    window_ends: datetime | None = None


@dataclass(frozen=True)
class Refund:
    """A refund request and where it stands."""

    id: str
    account_id: str
    transaction_id: str
    amount: Decimal
    currency: str
    reason: str
    status: str  # "submitted" | "reviewing" | "approved" | "rejected" | "refunded"
    created_at: datetime
    updated_at: datetime
    note: str | None = None


@dataclass(frozen=True)
class RefundChange:
    """One status change of a refund (its creation is the change to "submitted").

    ``status`` and ``changed_at`` are this change's; ``refund`` is the refund as it is now.
    ``cursor`` is where the feed continues after this change.
    """

    cursor: str
    status: str
    changed_at: datetime
    refund: Refund


@dataclass(frozen=True)
class RefundChanges:
    """A page of the refund change feed, oldest change first."""

    changes: list[RefundChange] = field(default_factory=list)
    next_cursor: str = ""
    has_more: bool = False


@dataclass(frozen=True)
class TransactionPage:
    """One page of transactions, newest first."""

    items: list[Transaction] = field(default_factory=list)
    total: int = 0


class WalletBackend(Protocol):
    """What the bot asks of the wallet. Every method may raise :class:`Unavailable`."""

    async def redeem_link_token(self, token: str, telegram_user_id: int) -> Account:
        """Redeem a one-time token from the wallet app (deep link ``/start link_<token>``).

        Raises NotFound (unknown), NotEligible("expired" | "used" | "other_user")."""

    async def account_by_phone(self, phone: str) -> Account | None:
        """Return the account of a phone number (E.164, e.g. "+8613800138001"), if any."""

    async def get_account(self, account_id: str) -> Account:
        """Return an account. Raises NotFound."""

    async def send_code(self, account_id: str, idempotency_key: str) -> CodeSent:
        """Send a one-time code by SMS to the account's phone."""

    async def check_code(self, account_id: str, code: str) -> bool:
        """Return whether ``code`` is the account's current, unexpired code (single use)."""

    async def password_reset_link(self, account_id: str, idempotency_key: str) -> ResetLink:
        """Issue a one-time password-reset link. Raises Frozen."""

    async def unlock(self, account_id: str, idempotency_key: str) -> Account:
        """Unlock an account locked by wrong passwords. Raises NotEligible, Frozen."""

    async def freeze(self, account_id: str, reason: str, idempotency_key: str) -> Account:
        """Freeze the account now (stolen phone, unauthorized payments); an already frozen
        account stays frozen."""

    async def list_cards(self, account_id: str) -> list[Card]:
        """Return the bound cards."""

    async def unbind_card(self, account_id: str, card_id: str, idempotency_key: str) -> None:
        """Unbind a card. Raises NotFound, NotEligible("last_card_with_balance"), Frozen."""

    async def start_binding(self, account_id: str, idempotency_key: str) -> Binding:
        """Open a one-time session on the secure card-entry page. Raises Frozen."""

    async def get_binding(self, account_id: str, binding_id: str) -> Binding:
        """Return a binding's state. Raises NotFound."""

    async def confirm_deposit(self, account_id: str, binding_id: str, amount: Decimal) -> Binding:
        """Check the micro-deposit amount; a wrong one lowers ``tries_left`` (status unchanged
        until none are left: then "failed" with reason "too_many_tries"). Raises Frozen."""

    async def list_transactions(
        self,
        account_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> TransactionPage:
        """Return transactions, newest first."""

    async def get_transaction(self, account_id: str, transaction_id: str) -> Transaction:
        """Return one of the account's transactions. Raises NotFound (also for others')."""

    async def refund_eligibility(self, account_id: str, transaction_id: str) -> RefundEligibility:
        """Return whether and how much can be refunded."""

    async def create_refund(
        self,
        account_id: str,
        transaction_id: str,
        amount: Decimal,
        reason: str,
        idempotency_key: str,
    ) -> Refund:
        """Create a refund request (the same key returns the same refund). Raises NotEligible."""

    async def list_refunds(self, account_id: str) -> list[Refund]:
        """Return the account's refunds, newest first."""

    async def get_refund(self, account_id: str, refund_id: str) -> Refund:
        """Return one refund. Raises NotFound."""

    async def refund_changes(self, cursor: str | None, limit: int = 100) -> RefundChanges:
        """Return the refund changes of every account after ``cursor``, oldest first, at most
        ``limit`` (for notifications). ``None`` starts with the last 24 hours. Raises
        NotEligible("cursor_expired") for a cursor older than the wallet keeps."""

    async def close(self) -> None:
        """Release connections."""
