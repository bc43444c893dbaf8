"""The demo wallet's own database: accounts, cards, transactions, codes, tokens, bindings,
refunds.

Only :mod:`tgbot.backend.demo` uses it; a real wallet keeps these in its own systems, and the
bot's database (``storage``) never holds them. The demo wallet's SQLite file (or ``:memory:``)
has its own numbered migrations, ``tgbot/backend/demo_migrations/``, run by
:func:`open_wallet_database`. Amounts are ``Decimal`` (stored as text), times unix seconds.
One-time codes are stored as salted hashes and card numbers only as a keyed hash plus bank and
last four digits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import aiosqlite

from storage.db import Database
from storage.migrations import Migration, apply_migrations, read_migrations


@dataclass(frozen=True, slots=True)
class WalletAccount:
    """A demo wallet account."""

    id: str
    display_name: str
    phone: str
    status: str  # "active" | "locked" | "frozen"
    locked_reason: str | None
    frozen_reason: str | None
    balance: Decimal
    password_changed_at: float | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class WalletCard:
    """A bound bank card (bank and last four digits only)."""

    id: str
    account_id: str
    bank: str
    last4: str
    kind: str
    card_hash: str
    bound_at: float


@dataclass(frozen=True, slots=True)
class WalletTransaction:
    """A payment, transfer or top-up."""

    id: str
    account_id: str
    created_at: float
    amount: Decimal
    currency: str
    merchant: str
    status: str
    refunded_amount: Decimal = Decimal("0")
    kind: str = "payment"
    failure_reason: str | None = None
    refundable: bool = True


@dataclass(frozen=True, slots=True)
class OneTimeCode:
    """The hash of an account's current one-time code."""

    account_id: str
    code_hash: str
    salt: str
    sent_at: float
    expires_at: float
    failed_tries: int
    used_at: float | None


@dataclass(frozen=True, slots=True)
class Sms:
    """A text message the demo wallet "sent"."""

    id: int
    phone: str
    text: str
    created_at: float


@dataclass(frozen=True, slots=True)
class WalletToken:
    """A one-time token: an app deep link (``"link"``) or a password-reset page (``"reset"``)."""

    token: str
    kind: str
    account_id: str
    created_at: float
    expires_at: float
    used_at: float | None = None
    used_by: int | None = None


@dataclass(frozen=True, slots=True)
class WalletBinding:
    """A card binding session on the secure page."""

    id: str
    account_id: str
    session: str
    status: str  # "waiting_for_card" | "awaiting_deposit" | "bound" | "failed"
    reason: str | None
    bank: str | None
    last4: str | None
    kind: str | None
    card_hash: str | None
    card_id: str | None
    deposit: Decimal | None
    tries_left: int
    created_at: float
    expires_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class WalletRefundChange:
    """One logged status change of a refund (``seq`` orders the change feed)."""

    seq: int
    refund_id: str
    status: str
    changed_at: float


@dataclass(frozen=True, slots=True)
class WalletRefund:
    """A refund request."""

    id: str
    account_id: str
    transaction_id: str
    amount: Decimal
    currency: str
    reason: str
    status: str  # "submitted" | "reviewing" | "approved" | "rejected" | "refunded"
    note: str | None
    created_at: float
    updated_at: float


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _account(row: aiosqlite.Row) -> WalletAccount:
    return WalletAccount(
        id=row["id"],
        display_name=row["display_name"],
        phone=row["phone"],
        status=row["status"],
        locked_reason=row["locked_reason"],
        frozen_reason=row["frozen_reason"],
        balance=Decimal(row["balance"]),
        password_changed_at=row["password_changed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _card(row: aiosqlite.Row) -> WalletCard:
    return WalletCard(**{name: row[name] for name in _names(WalletCard)})


def _transaction(row: aiosqlite.Row) -> WalletTransaction:
    return WalletTransaction(
        id=row["id"],
        account_id=row["account_id"],
        created_at=row["created_at"],
        amount=Decimal(row["amount"]),
        currency=row["currency"],
        merchant=row["merchant"],
        status=row["status"],
        refunded_amount=Decimal(row["refunded_amount"]),
        kind=row["kind"],
        failure_reason=row["failure_reason"],
        refundable=bool(row["refundable"]),
    )


def _binding(row: aiosqlite.Row) -> WalletBinding:
    values = {name: row[name] for name in _names(WalletBinding)}
    values["deposit"] = None if row["deposit"] is None else Decimal(row["deposit"])
    return WalletBinding(**values)


def _refund(row: aiosqlite.Row) -> WalletRefund:
    values = {name: row[name] for name in _names(WalletRefund)}
    values["amount"] = Decimal(row["amount"])
    return WalletRefund(**values)


_BINDING_FIELDS = frozenset(_names(WalletBinding)) - {"id", "account_id", "session"}


#: Refunds still moving (the partial index ``demo_refunds_moving`` covers them).
_MOVING = "status NOT IN ('rejected', 'refunded')"
#: When a moving refund's next status is due: one step per status from its creation (the
#: step, in seconds, is the parameter).
_NEXT_STATUS_AT = (
    "created_at + ? * (CASE status WHEN 'submitted' THEN 1 WHEN 'reviewing' THEN 2 ELSE 3 END)"
)


@cache
def wallet_migrations() -> tuple[Migration, ...]:
    """Return the demo wallet's migrations (``demo_migrations/NNNN_name.sql``)."""
    return read_migrations(__package__ or "tgbot.backend", "demo_migrations")


async def open_wallet_database(path: str | Path) -> Database:
    """Open (creating if needed) the demo wallet's SQLite file, or ``":memory:"``, and bring
    it to the last of its migrations.

    Raises:
        StorageError: it cannot be opened, or it is not a demo wallet's database (e.g. the
            bot's own file, whose schema version is higher).
    """
    db = await Database.open(path)
    try:
        await apply_migrations(db, wallet_migrations())
    except BaseException:
        await db.close()
        raise
    return db


class WalletStore:
    """The demo wallet's tables (``demo_*``) in its own database.

    Each mutating method is one transaction; :meth:`atomic` groups several into one
    (transactions nest through savepoints), e.g. an idempotency check with the work it guards.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        """Return the demo wallet's database."""
        return self._db

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """Group the repository calls inside into one transaction."""
        async with self._db.transaction():
            yield

    # -- seeding and facts -----------------------------------------------------------------

    async def meta(self, key: str) -> str | None:
        """Return a stored fact, or None."""
        row = await self._db.fetchone("SELECT value FROM demo_meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def meta_setdefault(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless one is there; return the stored value."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO demo_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, value),
            )
            async with conn.execute("SELECT value FROM demo_meta WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
        assert row is not None
        return str(row[0])

    async def seed(
        self,
        *,
        seeded_at: float,
        accounts: Iterable[WalletAccount],
        cards: Iterable[WalletCard],
        transactions: Iterable[WalletTransaction],
        tokens: Iterable[WalletToken],
    ) -> bool:
        """Insert the demo data once; return False (and change nothing) if already seeded."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO demo_meta (key, value) VALUES ('seeded_at', ?) "
                "ON CONFLICT (key) DO NOTHING",
                (repr(seeded_at),),
            )
            if cursor.rowcount == 0:
                return False
            await conn.executemany(
                "INSERT INTO demo_accounts (id, display_name, phone, status, locked_reason, "
                "frozen_reason, balance, password_changed_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (a.id, a.display_name, a.phone, a.status, a.locked_reason, a.frozen_reason,
                     str(a.balance), a.password_changed_at, a.created_at, a.updated_at)
                    for a in accounts
                ],
            )  # fmt: skip
            await conn.executemany(
                "INSERT INTO demo_cards (id, account_id, bank, last4, kind, card_hash, bound_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(c.id, c.account_id, c.bank, c.last4, c.kind, c.card_hash, c.bound_at)
                 for c in cards],
            )  # fmt: skip
            await conn.executemany(
                "INSERT INTO demo_transactions (id, account_id, created_at, amount, currency, "
                "merchant, status, refunded_amount, kind, failure_reason, refundable) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (t.id, t.account_id, t.created_at, str(t.amount), t.currency, t.merchant,
                     t.status, str(t.refunded_amount), t.kind, t.failure_reason,
                     int(t.refundable))
                    for t in transactions
                ],
            )  # fmt: skip
            for token in tokens:
                await self.add_token(token)
        return True

    # -- accounts ----------------------------------------------------------------------------

    async def account(self, account_id: str) -> WalletAccount | None:
        """Return an account by id."""
        row = await self._db.fetchone("SELECT * FROM demo_accounts WHERE id = ?", (account_id,))
        return None if row is None else _account(row)

    async def account_by_phone(self, phone: str) -> WalletAccount | None:
        """Return the account of an E.164 phone number."""
        row = await self._db.fetchone("SELECT * FROM demo_accounts WHERE phone = ?", (phone,))
        return None if row is None else _account(row)

    async def accounts(self) -> list[WalletAccount]:
        """Return all accounts, by id."""
        rows = await self._db.fetchall("SELECT * FROM demo_accounts ORDER BY id")
        return [_account(row) for row in rows]

    async def set_account_status(
        self,
        account_id: str,
        status: str,
        now: float,
        *,
        locked_reason: str | None = None,
        frozen_reason: str | None = None,
    ) -> bool:
        """Set an account's status (and why); False if unknown."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE demo_accounts SET status = ?, locked_reason = ?, frozen_reason = ?, "
                "updated_at = ? WHERE id = ?",
                (status, locked_reason, frozen_reason, now, account_id),
            )
            return cursor.rowcount > 0

    async def record_password_change(self, account_id: str, now: float) -> None:
        """Note that a new password was set (the password itself is never stored)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE demo_accounts SET password_changed_at = ?, updated_at = ? WHERE id = ?",
                (now, now, account_id),
            )

    # -- cards -----------------------------------------------------------------------------

    async def cards(self, account_id: str) -> list[WalletCard]:
        """Return an account's bound cards, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM demo_cards WHERE account_id = ? ORDER BY bound_at, id", (account_id,)
        )
        return [_card(row) for row in rows]

    async def card_by_hash(self, card_hash: str) -> WalletCard | None:
        """Return the bound card with this number hash, on any account."""
        row = await self._db.fetchone("SELECT * FROM demo_cards WHERE card_hash = ?", (card_hash,))
        return None if row is None else _card(row)

    async def add_card(self, card: WalletCard) -> None:
        """Bind a card."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO demo_cards (id, account_id, bank, last4, kind, card_hash, bound_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (card.id, card.account_id, card.bank, card.last4, card.kind, card.card_hash,
                 card.bound_at),
            )  # fmt: skip

    async def remove_card(self, account_id: str, card_id: str) -> bool:
        """Unbind a card of the account; False if it has no such card."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM demo_cards WHERE id = ? AND account_id = ?", (card_id, account_id)
            )
            return cursor.rowcount > 0

    # -- transactions ---------------------------------------------------------------------

    async def transactions(
        self,
        account_id: str,
        *,
        since: float | None = None,
        until: float | None = None,
        status: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> tuple[list[WalletTransaction], int]:
        """Return a page of an account's transactions, newest first, and the total count."""
        where = ["account_id = ?"]
        params: list[Any] = [account_id]
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)
        if until is not None:
            where.append("created_at < ?")
            params.append(until)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        clause = " AND ".join(where)
        total = await self._db.fetchone(
            f"SELECT COUNT(*) FROM demo_transactions WHERE {clause}", params
        )
        rows = await self._db.fetchall(
            f"SELECT * FROM demo_transactions WHERE {clause} "
            "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            [*params, max(limit, 0), max(offset, 0)],
        )
        return [_transaction(row) for row in rows], int(total[0]) if total else 0

    async def transaction(self, account_id: str, transaction_id: str) -> WalletTransaction | None:
        """Return one of the account's transactions."""
        row = await self._db.fetchone(
            "SELECT * FROM demo_transactions WHERE id = ? AND account_id = ?",
            (transaction_id, account_id),
        )
        return None if row is None else _transaction(row)

    async def set_refunded(
        self, transaction_id: str, refunded_amount: Decimal, status: str
    ) -> None:
        """Record how much of a transaction has been refunded, and its new status."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE demo_transactions SET refunded_amount = ?, status = ? WHERE id = ?",
                (str(refunded_amount), status, transaction_id),
            )

    # -- one-time codes and SMS ------------------------------------------------------------

    async def put_code(
        self, account_id: str, code_hash: str, salt: str, sent_at: float, expires_at: float
    ) -> None:
        """Store the hash of a new code, replacing the account's previous one."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO demo_codes (account_id, code_hash, salt, sent_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET "
                "code_hash = excluded.code_hash, salt = excluded.salt, "
                "sent_at = excluded.sent_at, expires_at = excluded.expires_at, "
                "failed_tries = 0, used_at = NULL",
                (account_id, code_hash, salt, sent_at, expires_at),
            )

    async def code(self, account_id: str) -> OneTimeCode | None:
        """Return the account's current code (hash), if any."""
        row = await self._db.fetchone(
            "SELECT * FROM demo_codes WHERE account_id = ?", (account_id,)
        )
        if row is None:
            return None
        return OneTimeCode(**{name: row[name] for name in _names(OneTimeCode)})

    async def use_code(self, account_id: str, now: float) -> bool:
        """Mark the current code used; False if it already was (single use)."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE demo_codes SET used_at = ? WHERE account_id = ? AND used_at IS NULL",
                (now, account_id),
            )
            return cursor.rowcount > 0

    async def record_wrong_code(self, account_id: str) -> int:
        """Count a wrong code against the current one; return the wrong tries so far."""
        async with (
            self._db.transaction() as conn,
            conn.execute(
                "UPDATE demo_codes SET failed_tries = failed_tries + 1 WHERE account_id = ? "
                "RETURNING failed_tries",
                (account_id,),
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return 0 if row is None else int(row[0])

    async def add_sms(self, phone: str, text: str, now: float) -> int:
        """Put a text message into the SMS outbox; return its id."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO demo_sms (phone, text, created_at) VALUES (?, ?, ?)",
                (phone, text, now),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    async def sms(self, phone: str | None = None, limit: int = 100) -> list[Sms]:
        """Return the newest messages of the outbox (of one phone), oldest first."""
        where, params = ("WHERE phone = ?", [phone]) if phone else ("", [])
        rows = await self._db.fetchall(
            f"SELECT * FROM (SELECT * FROM demo_sms {where} ORDER BY id DESC LIMIT ?) ORDER BY id",
            [*params, limit],
        )
        return [Sms(row["id"], row["phone"], row["text"], row["created_at"]) for row in rows]

    # -- one-time tokens -------------------------------------------------------------------

    async def add_token(self, token: WalletToken) -> None:
        """Store a one-time token (an existing one with the same value is kept)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO demo_tokens (token, kind, account_id, created_at, expires_at, "
                "used_at, used_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO NOTHING",
                (token.token, token.kind, token.account_id, token.created_at, token.expires_at,
                 token.used_at, token.used_by),
            )  # fmt: skip

    async def token(self, token: str, kind: str) -> WalletToken | None:
        """Return a token of a kind."""
        row = await self._db.fetchone(
            "SELECT * FROM demo_tokens WHERE token = ? AND kind = ?", (token, kind)
        )
        if row is None:
            return None
        return WalletToken(**{name: row[name] for name in _names(WalletToken)})

    async def use_token(self, token: str, now: float, used_by: int | None = None) -> bool:
        """Mark a token used; False if it already was."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE demo_tokens SET used_at = ?, used_by = ? "
                "WHERE token = ? AND used_at IS NULL",
                (now, used_by, token),
            )
            return cursor.rowcount > 0

    # -- card bindings ---------------------------------------------------------------------

    async def add_binding(self, binding: WalletBinding) -> None:
        """Open a card binding session."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO demo_bindings (id, account_id, session, status, tries_left, "
                "created_at, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (binding.id, binding.account_id, binding.session, binding.status,
                 binding.tries_left, binding.created_at, binding.expires_at, binding.updated_at),
            )  # fmt: skip

    async def binding(self, binding_id: str) -> WalletBinding | None:
        """Return a binding by id."""
        row = await self._db.fetchone("SELECT * FROM demo_bindings WHERE id = ?", (binding_id,))
        return None if row is None else _binding(row)

    async def binding_by_session(self, session: str) -> WalletBinding | None:
        """Return the binding of a secure-page session."""
        row = await self._db.fetchone("SELECT * FROM demo_bindings WHERE session = ?", (session,))
        return None if row is None else _binding(row)

    async def update_binding(self, binding_id: str, **changes: Any) -> None:
        """Change a binding's fields (status, reason, card details, deposit, tries_left...)."""
        unknown = changes.keys() - _BINDING_FIELDS
        if unknown:
            raise TypeError(f"Unknown binding fields: {sorted(unknown)}")
        values = [str(v) if isinstance(v, Decimal) else v for v in changes.values()]
        # Column names come from the checked set above, never from input.
        columns = ", ".join(f"{name} = ?" for name in changes)
        async with self._db.transaction() as conn:
            await conn.execute(
                f"UPDATE demo_bindings SET {columns} WHERE id = ?", [*values, binding_id]
            )

    # -- refunds ---------------------------------------------------------------------------

    async def add_refund(self, refund: WalletRefund) -> None:
        """Store a new refund request (a trigger logs its first status in the change feed)."""
        await self._db.write(
            "INSERT INTO demo_refunds (id, account_id, transaction_id, amount, currency, "
            "reason, status, note, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (refund.id, refund.account_id, refund.transaction_id, str(refund.amount),
             refund.currency, refund.reason, refund.status, refund.note,
             refund.created_at, refund.updated_at),
        )  # fmt: skip

    async def refund(self, account_id: str, refund_id: str) -> WalletRefund | None:
        """Return one of the account's refunds."""
        row = await self._db.fetchone(
            "SELECT * FROM demo_refunds WHERE id = ? AND account_id = ?", (refund_id, account_id)
        )
        return None if row is None else _refund(row)

    async def refunds(self, account_id: str) -> list[WalletRefund]:
        """Return the account's refunds, newest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM demo_refunds WHERE account_id = ? ORDER BY created_at DESC, id DESC",
            (account_id,),
        )
        return [_refund(row) for row in rows]

    async def refunds_of_transaction(self, transaction_id: str) -> list[WalletRefund]:
        """Return a transaction's refunds, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM demo_refunds WHERE transaction_id = ? ORDER BY created_at, id",
            (transaction_id,),
        )
        return [_refund(row) for row in rows]

    async def next_refund_due(self, step: float) -> float | None:
        """Return when the next status of a refund still moving is due (None: none moves)."""
        row = await self._db.fetchone(
            f"SELECT MIN({_NEXT_STATUS_AT}) FROM demo_refunds WHERE {_MOVING}", (step,)
        )
        return None if row is None or row[0] is None else float(row[0])

    async def due_refunds(self, now: float, step: float) -> list[WalletRefund]:
        """Return refunds still moving whose next status is due at ``now`` (a refund moves
        one status every ``step`` seconds from its creation), oldest first."""
        rows = await self._db.fetchall(
            f"SELECT * FROM demo_refunds WHERE {_MOVING} AND created_at <= ? "
            f"AND {_NEXT_STATUS_AT} <= ? ORDER BY created_at, id",
            (now - step, step, now),
        )
        return [_refund(row) for row in rows]

    async def refund_changes(
        self, *, after_seq: int | None = None, since: float | None = None, limit: int = 100
    ) -> tuple[list[WalletRefundChange], bool]:
        """Return logged changes after ``after_seq`` (or at/after the time ``since``), oldest
        first, at most ``limit``, and whether more follow."""
        if after_seq is not None:
            where, param = "seq > ?", after_seq
        else:
            where, param = "changed_at >= ?", since or 0.0
        rows = await self._db.fetchall(
            f"SELECT * FROM demo_refund_changes WHERE {where} ORDER BY seq LIMIT ?",
            (param, limit + 1),
        )
        changes = [WalletRefundChange(**{name: row[name] for name in _names(WalletRefundChange)})
                   for row in rows[:limit]]  # fmt: skip
        return changes, len(rows) > limit

    async def last_refund_change(self) -> int:
        """Return the seq of the newest logged change (0 when there is none)."""
        row = await self._db.fetchone("SELECT MAX(seq) FROM demo_refund_changes")
        return int(row[0] or 0) if row else 0

    async def refund_by_id(self, refund_id: str) -> WalletRefund | None:
        """Return a refund of any account (for the change feed)."""
        row = await self._db.fetchone("SELECT * FROM demo_refunds WHERE id = ?", (refund_id,))
        return None if row is None else _refund(row)

    async def set_refund_status(
        self, refund_id: str, status: str, updated_at: float, note: str | None = None
    ) -> None:
        """Move a refund to a new status (``note`` kept unless given); a trigger logs the
        change."""
        await self._db.write(
            "UPDATE demo_refunds SET status = ?, updated_at = ?, note = COALESCE(?, note) "
            "WHERE id = ?",
            (status, updated_at, note, refund_id),
        )

    # -- idempotency -----------------------------------------------------------------------

    async def remembered(self, operation: str, key: str) -> tuple[str, str] | None:
        """Return ``(fingerprint, result JSON)`` stored for an operation's key, if any."""
        row = await self._db.fetchone(
            "SELECT fingerprint, result FROM demo_idempotency WHERE operation = ? AND key = ?",
            (operation, key),
        )
        return None if row is None else (row["fingerprint"], row["result"])

    async def remember(
        self, operation: str, key: str, fingerprint: str, result: str, now: float
    ) -> None:
        """Store the result of an operation under its idempotency key."""
        await self._db.write(
            "INSERT INTO demo_idempotency (operation, key, fingerprint, result, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (operation, key, fingerprint, result, now),
        )
