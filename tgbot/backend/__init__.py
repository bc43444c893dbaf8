"""The wallet backend adapter: ``create_backend("demo" | "http", ...)`` and the interface.

Handlers depend only on :class:`WalletBackend` and the domain errors re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .base import (
    Account,
    BackendError,
    Binding,
    BindingCard,
    Card,
    CodeSent,
    Frozen,
    Locked,
    NotEligible,
    NotFound,
    OutcomeUnknown,
    Refund,
    RefundChange,
    RefundChanges,
    RefundEligibility,
    ResetLink,
    Transaction,
    TransactionPage,
    Unavailable,
    WalletBackend,
)

if TYPE_CHECKING:
    from storage.db import Database

#: Where the demo wallet's pages are served unless configured otherwise.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8766"


def create_backend(
    kind: str,
    *,
    db: Database | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    public_url: str = DEFAULT_PUBLIC_URL,
    fixed_codes: Mapping[str, str] | None = None,
    **options: object,
) -> WalletBackend:
    """Return the wallet backend of ``kind``.

    Args:
        kind: ``"demo"`` (needs ``db``; seeded at first use) or ``"http"`` (needs
            ``base_url``).
        db: the demo wallet's own database, from
            :func:`~tgbot.backend.demo_store.open_wallet_database` (never the bot's).
        base_url: the wallet API root, for ``"http"``.
        api_key: the wallet API key, for ``"http"``.
        public_url: where the demo wallet's pages are served (reset and card links).
        fixed_codes: demo phones' fixed one-time codes (None: the documented defaults).
        options: passed on to :class:`~tgbot.backend.demo.DemoWallet` (``clock``,
            ``refund_step_seconds``, ``log_sms``...) or
            :class:`~tgbot.backend.http.HttpWallet` (``timeout``, ``retries``...).
    """
    if kind == "demo":
        if db is None:
            raise ValueError("the demo backend needs its own database (db=...)")
        from .demo import DemoWallet
        from .demo_store import WalletStore

        return DemoWallet(
            WalletStore(db),
            public_url=public_url,
            fixed_codes=fixed_codes,
            **options,  # type: ignore[arg-type]
        )
    if kind == "http":
        if not base_url:
            raise ValueError("the http backend needs the wallet API's base_url")
        from .http import HttpWallet

        return HttpWallet(base_url, api_key=api_key, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown wallet backend {kind!r} (expected 'demo' or 'http')")


__all__ = [
    "DEFAULT_PUBLIC_URL",
    "Account",
    "BackendError",
    "Binding",
    "BindingCard",
    "Card",
    "CodeSent",
    "Frozen",
    "Locked",
    "NotEligible",
    "NotFound",
    "OutcomeUnknown",
    "Refund",
    "RefundChange",
    "RefundChanges",
    "RefundEligibility",
    "ResetLink",
    "Transaction",
    "TransactionPage",
    "Unavailable",
    "WalletBackend",
    "create_backend",
]
