"""The demo wallet: a self-contained :class:`WalletBackend` with its own database.

Seeded at first use with the accounts in ``docs/demo-accounts.md`` (cards, ~50 transactions
each over the last 90 days in every status). Its SMS go to an outbox the sandbox page shows;
its password-reset and card-entry pages are :mod:`tgbot.backend.pages`. Refunds advance on
their own with the clock: submitted -> reviewing -> approved/rejected -> refunded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from .base import (
    Account,
    Binding,
    BindingCard,
    Card,
    CodeSent,
    Frozen,
    NotEligible,
    NotFound,
    PaidWith,
    Refund,
    RefundChange,
    RefundChanges,
    RefundEligibility,
    ResetLink,
    Transaction,
    TransactionPage,
)
from .cards import BANK_REFUSED_NUMBER, bank_of, card_hash, digits_only, luhn_valid
from .demo_store import (
    WalletAccount,
    WalletBinding,
    WalletCard,
    WalletRefund,
    WalletStore,
    WalletToken,
    WalletTransaction,
)
from .wire import from_wire, to_wire

log = logging.getLogger(__name__)

T = TypeVar("T")

DAY = 86_400.0
CODE_TTL = 300.0
RESET_TTL = 900.0
BINDING_TTL = 900.0
REFUND_WINDOW = 30 * DAY
CODE_MAX_WRONG = 5
DEPOSIT_TRIES = 3
#: The most changes one page of the refund change feed holds.
FEED_MAX_LIMIT = 500
#: The one-time code of every demo phone unless configured otherwise.
DEFAULT_DEMO_CODE = "246810"
#: A phone number with no wallet account (for the "no account" dead end).
NO_ACCOUNT_PHONE = "+8613800138000"


@dataclass(frozen=True)
class _DemoPerson:
    id: str
    name: str
    phone: str
    status: str
    locked_reason: str | None
    frozen_reason: str | None
    balance: str
    cards: tuple[tuple[str, str], ...]  # (card number, kind)
    foreign_share: float  # share of non-CNY transactions
    foreign: tuple[str, ...]
    link_token: str


DEMO_PEOPLE: tuple[_DemoPerson, ...] = (
    _DemoPerson("U1001", "李雷", "+8613800138001", "active", None, None, "1288.50",
                (("6214830000000017", "debit"), ("6222020000000023", "credit")),
                0.1, ("HKD", "USD"), "demo_lilei"),
    _DemoPerson("U1002", "韩梅梅", "+8613800138002", "locked", "wrong_password", None, "356.20",
                (("6217000000000030", "debit"),), 0.05, ("HKD",), "demo_hanmeimei"),
    _DemoPerson("U1003", "Alice Smith", "+14155550103", "active", None, None, "842.00",
                (("4111111111111111", "credit"),), 0.4, ("USD", "USD", "HKD"), "demo_alice"),
    _DemoPerson("U1004", "Bob Jones", "+447700900104", "active", None, None, "0",
                (("4462910000000045", "debit"),), 0.2, ("USD", "HKD"), "demo_bob"),
    _DemoPerson("U1005", "王芳", "+8613800138005", "frozen", None, "stolen_phone", "50.00",
                (("6228480000000007", "debit"),), 0.0, (), "demo_wangfang"),
)  # fmt: skip
#: Phones of the demo accounts; each gets :data:`DEFAULT_DEMO_CODE` by default.
DEMO_PHONES = tuple(person.phone for person in DEMO_PEOPLE)

_MERCHANTS_ZH = ("美团外卖", "滴滴出行", "星巴克", "京东商城", "盒马鲜生", "瑞幸咖啡", "肯德基",
                 "淘宝", "拼多多", "海底捞", "全家便利店", "12306 铁路")  # fmt: skip
_MERCHANTS_EN = ("Tom & Jerry's <Café>", "Amazon", "Uber", "Apple Store", "Tesco", "Starbucks")
#: The names the demo wallet has for its merchants in each language (a real wallet's
#: merchant registry); "Tom & Jerry's <Café>" has none, like many small shops.
_MERCHANT_NAMES: dict[str, dict[str, str]] = {
    "美团外卖": {"en": "Meituan Delivery", "zh-Hans": "美团外卖"},
    "滴滴出行": {"en": "DiDi", "zh-Hans": "滴滴出行"},
    "星巴克": {"en": "Starbucks", "zh-Hans": "星巴克"},
    "京东商城": {"en": "JD.com", "zh-Hans": "京东商城"},
    "盒马鲜生": {"en": "Freshippo", "zh-Hans": "盒马鲜生"},
    "瑞幸咖啡": {"en": "Luckin Coffee", "zh-Hans": "瑞幸咖啡"},
    "肯德基": {"en": "KFC", "zh-Hans": "肯德基"},
    "淘宝": {"en": "Taobao", "zh-Hans": "淘宝"},
    "拼多多": {"en": "Pinduoduo", "zh-Hans": "拼多多"},
    "海底捞": {"en": "Haidilao", "zh-Hans": "海底捞"},
    "全家便利店": {"en": "FamilyMart", "zh-Hans": "全家便利店"},
    "12306 铁路": {"en": "China Railway 12306", "zh-Hans": "12306铁路"},
    "中国移动话费充值": {"en": "China Mobile top-up", "zh-Hans": "中国移动话费充值"},
    "Amazon": {"en": "Amazon", "zh-Hans": "亚马逊"},
    "Uber": {"en": "Uber", "zh-Hans": "优步"},
    "Apple Store": {"en": "Apple Store", "zh-Hans": "Apple Store"},
    "Tesco": {"en": "Tesco", "zh-Hans": "乐购"},
    "Starbucks": {"en": "Starbucks", "zh-Hans": "星巴克"},
    "Steam Wallet": {"en": "Steam Wallet", "zh-Hans": "Steam钱包"},
}
#: Merchants whose rules allow no refund through the wallet.
_NO_REFUND_MERCHANTS = ("中国移动话费充值", "Steam Wallet")
_FAILURE_REASONS = ("insufficient_balance", "network", "wrong_info", "risk_control",
                    "card_expired")  # fmt: skip
_ROUND_AMOUNTS = ("88.00", "66.00", "128.00", "9.90", "199.00", "18.80")
_PAYMENT_STATUSES = ("success", "processing", "failed", "refunded", "partially_refunded")
_STATUS_WEIGHTS = (60, 8, 12, 10, 10)


@dataclass(frozen=True)
class SmsMessage:
    """A text message the demo wallet "sent" (shown on the sandbox page)."""

    id: str
    phone: str
    text: str
    sent_at: datetime


def normalize_phone(phone: str) -> str:
    """Return E.164 from what users and Telegram give: spaces, dashes, no "+", or "00"."""
    cleaned = re.sub(r"[\s\-().]", "", phone)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not cleaned.startswith("+"):
        cleaned = "+" + cleaned
    return cleaned


def mask_phone(phone: str) -> str:
    """Return a phone number safe to show and log, e.g. ``"+86 138****8001"``."""
    digits = phone.lstrip("+")
    for code in ("852", "86", "44", "1"):
        if digits.startswith(code) and len(digits) - len(code) >= 8:
            national = digits[len(code) :]
            return f"+{code} {national[:3]}****{national[-4:]}"
    return f"+{'*' * max(len(digits) - 4, 0)}{digits[-4:]}"


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def _hash_code(salt: str, code: str) -> str:
    return hashlib.sha256((salt + code).encode()).hexdigest()


class DemoWallet:
    """A self-contained demo wallet (see the module docstring and ``docs/demo-accounts.md``).

    Args:
        repo: the demo wallet's own database
            (:func:`~tgbot.backend.demo_store.open_wallet_database`).
        public_url: where :mod:`tgbot.backend.pages` is served, for reset and card links.
        fixed_codes: phone -> one-time code for demo/test numbers; None gives every demo
            phone :data:`DEFAULT_DEMO_CODE`, ``{}`` makes all codes random.
        clock: unix time, injectable for tests.
        refund_step_seconds: a refund moves one status on every this many seconds.
        resend_cooldown: seconds before another code may be sent to the same account.
        log_sms: also log SMS texts (they contain codes: demos only).
    """

    def __init__(
        self,
        repo: WalletStore,
        *,
        public_url: str,
        fixed_codes: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        refund_step_seconds: float = 20.0,
        resend_cooldown: float = 60.0,
        log_sms: bool = False,
    ) -> None:
        self._repo = repo
        self.public_url = public_url.rstrip("/")
        if fixed_codes is None:
            fixed_codes = dict.fromkeys(DEMO_PHONES, DEFAULT_DEMO_CODE)
        self.fixed_codes = {normalize_phone(p): c for p, c in fixed_codes.items()}
        self._clock = clock
        self.refund_step_seconds = refund_step_seconds
        #: No refund is due for its next status before this time (see _advance_refunds).
        self._refunds_quiet_until = 0.0
        self.resend_cooldown = resend_cooldown
        self.log_sms = log_sms
        self._seeded = False
        self._seed_lock = asyncio.Lock()
        # SMS whose code is random (not a public demo code) stay in memory, never on disk.
        self._volatile_sms: list[SmsMessage] = []

    # -- setup -----------------------------------------------------------------------------

    async def seed(self) -> bool:
        """Insert the demo accounts, cards, transactions and link tokens unless present.

        Returns True if this call seeded. Deterministic for a given clock: transactions are
        generated by a random.Random seeded per account, at times relative to now.
        """
        pepper = await self._repo.meta_setdefault("card_pepper", secrets.token_hex(16))
        now = float(int(self._clock()))
        accounts, cards, transactions, tokens = build_seed(now, pepper)
        seeded = await self._repo.seed(
            seeded_at=now, accounts=accounts, cards=cards, transactions=transactions,
            tokens=tokens,
        )  # fmt: skip
        self._seeded = True
        if seeded:
            log.info("Demo wallet seeded: %d accounts, %d transactions",
                     len(accounts), len(transactions))  # fmt: skip
        return seeded

    async def _ready(self) -> None:
        if self._seeded:
            return
        async with self._seed_lock:
            if not self._seeded:
                await self.seed()

    def _now(self) -> float:
        return self._clock()

    async def _account(self, account_id: str) -> WalletAccount:
        await self._ready()
        account = await self._repo.account(account_id)
        if account is None:
            raise NotFound("account_not_found")
        return account

    async def _once(
        self,
        operation: str,
        key: str,
        request: list[Any],
        result_type: type[T] | None,
        work: Callable[[], Awaitable[T]],
    ) -> T:
        """Run ``work`` once per (operation, key); a repeat returns the stored result."""
        if not key:
            raise NotEligible("idempotency_key_required")
        fingerprint = hashlib.sha256(json.dumps(request, default=str).encode()).hexdigest()
        async with self._repo.atomic():
            stored = await self._repo.remembered(operation, key)
            if stored is not None:
                if stored[0] != fingerprint:
                    raise NotEligible("idempotency_key_reused")
                data = json.loads(stored[1])
                return None if result_type is None else from_wire(result_type, data)  # type: ignore[return-value]
            result = await work()
            stored_json = json.dumps(to_wire(result), ensure_ascii=False)
            await self._repo.remember(operation, key, fingerprint, stored_json, self._now())
        return result

    async def _send_sms(self, phone: str, text: str, *, secret_code: bool) -> None:
        now = self._now()
        # A random code must never reach the disk; a fixed demo code is public anyway.
        if secret_code and phone not in self.fixed_codes:
            sms_id = f"m{len(self._volatile_sms) + 1}"
            self._volatile_sms.append(SmsMessage(sms_id, phone, text, _ts(now)))
        else:
            await self._repo.add_sms(phone, text, now)
        if self.log_sms:
            log.info("SMS to %s: %s", phone, text)
        else:
            log.info("SMS to %s queued in the demo outbox", mask_phone(phone))

    # -- linking and verification ----------------------------------------------------------

    async def redeem_link_token(self, token: str, telegram_user_id: int) -> Account:
        """Redeem a one-time deep-link token from the wallet app."""
        await self._ready()
        async with self._repo.atomic():
            found = await self._repo.token(token, "link")
            if found is None:
                raise NotFound("unknown_token")
            if found.used_at is not None:
                if found.used_by == telegram_user_id:
                    raise NotEligible("used")
                raise NotEligible("other_user")
            if self._now() >= found.expires_at:
                raise NotEligible("expired")
            await self._repo.use_token(token, self._now(), telegram_user_id)
            return _public_account(await self._account(found.account_id))

    async def issue_link_token(self, account_id: str, ttl: float = 600.0) -> str:
        """Issue a deep-link token as the wallet app would ("contact support in Telegram")."""
        await self._account(account_id)
        token = "app_" + secrets.token_urlsafe(12)
        now = self._now()
        await self._repo.add_token(WalletToken(token, "link", account_id, now, now + ttl))
        return token

    async def account_by_phone(self, phone: str) -> Account | None:
        """Return the account of a phone number, if any."""
        await self._ready()
        account = await self._repo.account_by_phone(normalize_phone(phone))
        return None if account is None else _public_account(account)

    async def get_account(self, account_id: str) -> Account:
        """Return an account."""
        return _public_account(await self._account(account_id))

    async def send_code(self, account_id: str, idempotency_key: str) -> CodeSent:
        """Send a one-time code by SMS (stored hashed; fixed for demo phones)."""
        account = await self._account(account_id)

        async def work() -> CodeSent:
            now = self._now()
            current = await self._repo.code(account_id)
            if current is not None and current.used_at is None:
                resend_after = current.sent_at + self.resend_cooldown
                if now < resend_after:
                    raise NotEligible("resend_too_soon", resend_after=_ts(resend_after))
            code = self.fixed_codes.get(account.phone) or f"{secrets.randbelow(10**6):06d}"
            salt = secrets.token_hex(16)
            await self._repo.put_code(account_id, _hash_code(salt, code), salt, now, now + CODE_TTL)
            await self._send_sms(
                account.phone,
                f"【U钱包】验证码 {code}，5分钟内有效。工作人员不会向您索要验证码，请勿告诉任何人。"
                f" [U-Pay] Your verification code is {code}, valid for 5 minutes. "
                "Our staff will never ask for it; do not share it with anyone.",
                secret_code=True,
            )
            return CodeSent(expires_at=_ts(now + CODE_TTL),
                            resend_after=_ts(now + self.resend_cooldown))  # fmt: skip

        return await self._once("send_code", idempotency_key, [account_id], CodeSent, work)

    async def check_code(self, account_id: str, code: str) -> bool:
        """Return whether ``code`` is the current, unexpired, unused code; it is then used up."""
        await self._account(account_id)
        code = code.strip()
        async with self._repo.atomic():
            current = await self._repo.code(account_id)
            now = self._now()
            if (
                current is None
                or current.used_at is not None
                or now >= current.expires_at
                or current.failed_tries >= CODE_MAX_WRONG
            ):
                return False
            if hmac.compare_digest(_hash_code(current.salt, code), current.code_hash):
                return await self._repo.use_code(account_id, now)
            await self._repo.record_wrong_code(account_id)
            return False

    # -- password reset, unlock, freeze ----------------------------------------------------

    async def password_reset_link(self, account_id: str, idempotency_key: str) -> ResetLink:
        """Issue a one-time link to the reset page (15 minutes)."""
        account = await self._account(account_id)
        if account.status == "frozen":
            raise Frozen("frozen")

        async def work() -> ResetLink:
            now = self._now()
            token = secrets.token_urlsafe(24)
            await self._repo.add_token(
                WalletToken(token, "reset", account_id, now, now + RESET_TTL)
            )
            return ResetLink(url=f"{self.public_url}/wallet/reset/{token}",
                             expires_at=_ts(now + RESET_TTL))  # fmt: skip

        return await self._once("reset_link", idempotency_key, [account_id], ResetLink, work)

    async def reset_token_state(self, token: str) -> str:
        """Return ``"valid"``, ``"expired"``, ``"used"``, ``"frozen"`` or ``"unknown"``."""
        await self._ready()
        found = await self._repo.token(token, "reset")
        if found is None:
            return "unknown"
        if found.used_at is not None:
            return "used"
        if self._now() >= found.expires_at:
            return "expired"
        account = await self._account(found.account_id)
        return "frozen" if account.status == "frozen" else "valid"

    async def complete_password_reset(self, token: str, new_password: str) -> Account:
        """Use a reset token: "set" the new password (never stored) and unlock the account.

        Raises NotFound, NotEligible("expired" | "used" | "weak_password"), Frozen.
        """
        if not password_rules_ok(new_password):
            raise NotEligible("weak_password")
        async with self._repo.atomic():
            state = await self.reset_token_state(token)
            if state == "unknown":
                raise NotFound("unknown_token")
            if state == "frozen":
                raise Frozen("frozen")
            if state != "valid":
                raise NotEligible(state)
            found = await self._repo.token(token, "reset")
            assert found is not None
            now = self._now()
            await self._repo.use_token(token, now)
            # Only the fact of the change is kept: a real wallet would store a slow hash.
            await self._repo.record_password_change(found.account_id, now)
            account = await self._account(found.account_id)
            if account.status == "locked":
                await self._repo.set_account_status(found.account_id, "active", now)
            log.info("Demo wallet: password reset for %s", found.account_id)
            return _public_account(await self._account(found.account_id))

    async def unlock(self, account_id: str, idempotency_key: str) -> Account:
        """Unlock an account locked by wrong passwords."""
        await self._account(account_id)

        async def work() -> Account:
            account = await self._account(account_id)
            if account.status == "frozen":
                raise Frozen("frozen")
            if account.status != "locked":
                raise NotEligible("not_locked")
            await self._repo.set_account_status(account_id, "active", self._now())
            return _public_account(await self._account(account_id))

        return await self._once("unlock", idempotency_key, [account_id], Account, work)

    async def freeze(self, account_id: str, reason: str, idempotency_key: str) -> Account:
        """Freeze the account now (an already frozen account stays frozen)."""
        await self._account(account_id)

        async def work() -> Account:
            account = await self._account(account_id)
            if account.status != "frozen":
                await self._repo.set_account_status(
                    account_id, "frozen", self._now(), frozen_reason=reason[:200] or "user_request"
                )
                log.info("Demo wallet: account %s frozen", account_id)
            return _public_account(await self._account(account_id))

        return await self._once("freeze", idempotency_key, [account_id, reason], Account, work)

    async def unfreeze(self, account_id: str) -> Account:
        """Unfreeze an account, as support does in the wallet's back office after checking."""
        await self._account(account_id)
        await self._repo.set_account_status(account_id, "active", self._now())
        log.info("Demo wallet: account %s unfrozen by support", account_id)
        return _public_account(await self._account(account_id))

    # -- cards -----------------------------------------------------------------------------

    async def list_cards(self, account_id: str) -> list[Card]:
        """Return the bound cards, masked."""
        await self._account(account_id)
        return [_public_card(card) for card in await self._repo.cards(account_id)]

    async def unbind_card(self, account_id: str, card_id: str, idempotency_key: str) -> None:
        """Unbind a card; the last card of an account with a balance stays."""
        await self._account(account_id)

        async def work() -> None:
            account = await self._account(account_id)
            if account.status == "frozen":
                raise Frozen("frozen")
            cards = await self._repo.cards(account_id)
            if card_id not in {card.id for card in cards}:
                raise NotFound("card_not_found")
            if len(cards) == 1 and account.balance > 0:
                raise NotEligible("last_card_with_balance")
            await self._repo.remove_card(account_id, card_id)

        await self._once("unbind_card", idempotency_key, [account_id, card_id], None, work)

    async def start_binding(self, account_id: str, idempotency_key: str) -> Binding:
        """Open a one-time session (15 minutes) on the secure card-entry page."""
        account = await self._account(account_id)
        if account.status == "frozen":
            raise Frozen("frozen")

        async def work() -> Binding:
            now = self._now()
            binding = WalletBinding(
                id="BD" + secrets.token_hex(6).upper(), account_id=account_id,
                session=secrets.token_urlsafe(24), status="waiting_for_card", reason=None,
                bank=None, last4=None, kind=None, card_hash=None, card_id=None, deposit=None,
                tries_left=DEPOSIT_TRIES, created_at=now, expires_at=now + BINDING_TTL,
                updated_at=now,
            )  # fmt: skip
            await self._repo.add_binding(binding)
            return self._public_binding(binding)

        return await self._once("start_binding", idempotency_key, [account_id], Binding, work)

    async def get_binding(self, account_id: str, binding_id: str) -> Binding:
        """Return a binding's state."""
        await self._account(account_id)
        binding = await self._expire_binding(await self._repo.binding(binding_id))
        if binding is None or binding.account_id != account_id:
            raise NotFound("binding_not_found")
        return self._public_binding(binding)

    async def binding_for_session(self, session: str) -> Binding | None:
        """Return the binding of a secure-page session (for the page), or None."""
        await self._ready()
        binding = await self._expire_binding(await self._repo.binding_by_session(session))
        return None if binding is None else self._public_binding(binding)

    async def _expire_binding(self, binding: WalletBinding | None) -> WalletBinding | None:
        if (
            binding is not None
            and binding.status == "waiting_for_card"
            and self._now() >= binding.expires_at
        ):
            await self._repo.update_binding(
                binding.id, status="failed", reason="expired", updated_at=self._now()
            )
            return await self._repo.binding(binding.id)
        return binding

    async def submit_card(self, session: str, card_number: str) -> Binding:
        """Take a card number on the secure page: keep bank + last 4, send a micro-deposit.

        The number itself is never stored or logged. Raises NotFound (unknown session),
        NotEligible("invalid_card_number" | "session_used" | "expired").
        """
        await self._ready()
        number = digits_only(card_number)
        async with self._repo.atomic():
            binding = await self._expire_binding(await self._repo.binding_by_session(session))
            if binding is None:
                raise NotFound("session_not_found")
            if binding.status != "waiting_for_card":
                raise NotEligible("expired" if binding.reason == "expired" else "session_used")
            if not luhn_valid(number):
                raise NotEligible("invalid_card_number")
            now = self._now()
            bank, kind = bank_of(number)
            pepper = await self._repo.meta_setdefault("card_pepper", secrets.token_hex(16))
            digest = card_hash(number, pepper)
            details: dict[str, Any] = {
                "bank": bank, "last4": number[-4:], "kind": kind, "card_hash": digest,
                "card_id": "CD" + secrets.token_hex(6).upper(), "updated_at": now,
            }  # fmt: skip
            if number == BANK_REFUSED_NUMBER:
                details.update(status="failed", reason="bank_refused")
            elif await self._repo.card_by_hash(digest) is not None:
                details.update(status="failed", reason="already_bound")
            else:
                deposit = Decimal(secrets.randbelow(99) + 1).scaleb(-2)
                details.update(status="awaiting_deposit", deposit=deposit)
                account = await self._account(binding.account_id)
                await self._send_sms(
                    account.phone,
                    f"【U钱包】我们向您尾号{number[-4:]}的{bank}卡转入了 ¥{deposit} 验证金额，"
                    f"请在客服对话中输入该金额完成绑卡。 [U-Pay] We deposited ¥{deposit} to your "
                    f"card ending {number[-4:]}. Enter this amount in the support chat to "
                    "finish adding the card.",
                    secret_code=False,
                )
            await self._repo.update_binding(binding.id, **details)
            updated = await self._repo.binding(binding.id)
            assert updated is not None
            return self._public_binding(updated)

    async def confirm_deposit(self, account_id: str, binding_id: str, amount: Decimal) -> Binding:
        """Check the micro-deposit amount (3 tries); a match binds the card."""
        if (await self._account(account_id)).status == "frozen":
            raise Frozen("frozen")
        async with self._repo.atomic():
            binding = await self._expire_binding(await self._repo.binding(binding_id))
            if binding is None or binding.account_id != account_id:
                raise NotFound("binding_not_found")
            if binding.status in ("bound", "failed"):
                return self._public_binding(binding)
            if binding.status != "awaiting_deposit":
                raise NotEligible("card_not_entered")
            now = self._now()
            assert binding.deposit is not None and binding.card_hash is not None
            if amount == binding.deposit:
                if await self._repo.card_by_hash(binding.card_hash) is not None:
                    changes: dict[str, Any] = {"status": "failed", "reason": "already_bound"}
                else:
                    assert binding.card_id and binding.bank and binding.last4 and binding.kind
                    await self._repo.add_card(WalletCard(
                        binding.card_id, account_id, binding.bank, binding.last4, binding.kind,
                        binding.card_hash, now,
                    ))  # fmt: skip
                    changes = {"status": "bound"}
            else:
                tries_left = binding.tries_left - 1
                changes = {"tries_left": tries_left}
                if tries_left <= 0:
                    changes.update(status="failed", reason="too_many_tries")
            await self._repo.update_binding(binding_id, updated_at=now, **changes)
            updated = await self._repo.binding(binding_id)
            assert updated is not None
            return self._public_binding(updated)

    def _public_binding(self, binding: WalletBinding) -> Binding:
        card = None
        if binding.bank and binding.last4 and binding.kind:
            # The card has an id once it is bound; until then only bank and last 4 are known.
            card_id = binding.card_id if binding.status == "bound" else None
            card = BindingCard(binding.bank, binding.last4, binding.kind, card_id)
        return Binding(
            id=binding.id,
            status=binding.status,
            secure_url=f"{self.public_url}/wallet/card/{binding.session}",
            reason=binding.reason,
            card=card,
            tries_left=binding.tries_left,
        )

    # -- transactions and refunds ----------------------------------------------------------

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
        """Return transactions, newest first (``since`` inclusive, ``until`` exclusive)."""
        await self._account(account_id)
        await self._advance_refunds()
        items, total = await self._repo.transactions(
            account_id,
            since=None if since is None else since.timestamp(),
            until=None if until is None else until.timestamp(),
            status=status,
            limit=min(max(limit, 0), 100),
            offset=max(offset, 0),
        )
        return TransactionPage(items=[_public_transaction(t) for t in items], total=total)

    async def get_transaction(self, account_id: str, transaction_id: str) -> Transaction:
        """Return one of the account's transactions."""
        return _public_transaction(await self._transaction(account_id, transaction_id))

    async def _transaction(self, account_id: str, transaction_id: str) -> WalletTransaction:
        await self._account(account_id)
        await self._advance_refunds()
        found = await self._repo.transaction(account_id, transaction_id)
        if found is None:
            raise NotFound("transaction_not_found")
        return found

    async def refund_eligibility(self, account_id: str, transaction_id: str) -> RefundEligibility:
        """Return whether and how much can be refunded now."""
        tx = await self._transaction(account_id, transaction_id)
        return await self._eligibility(tx)

    async def _eligibility(self, tx: WalletTransaction) -> RefundEligibility:
        window_ends = tx.created_at + REFUND_WINDOW

        def no(reason: str) -> RefundEligibility:
            ends = _ts(window_ends) if tx.kind == "payment" else None
            return RefundEligibility(False, Decimal("0.00"), tx.currency, reason, ends)

        if tx.kind != "payment":
            return no("not_a_payment")
        if not tx.refundable:
            return no("merchant_rules")
        if tx.status in ("processing", "failed"):
            return no("not_paid")
        if tx.status == "refunded":
            return no("fully_refunded")
        if self._now() >= window_ends:
            return no("window_over")
        in_flight = sum(
            (r.amount for r in await self._repo.refunds_of_transaction(tx.id)
             if r.status in ("submitted", "reviewing", "approved")),
            Decimal("0"),
        )  # fmt: skip
        remaining = _money(tx.amount - tx.refunded_amount - in_flight)
        if remaining <= 0:
            return no("refund_in_progress" if in_flight else "fully_refunded")
        return RefundEligibility(True, remaining, tx.currency, None, _ts(window_ends))

    async def create_refund(
        self,
        account_id: str,
        transaction_id: str,
        amount: Decimal,
        reason: str,
        idempotency_key: str,
    ) -> Refund:
        """Create a refund request; the same key returns the same refund."""

        async def work() -> Refund:
            tx = await self._transaction(account_id, transaction_id)  # checks the account too
            eligibility = await self._eligibility(tx)
            if not eligibility.eligible:
                raise NotEligible(eligibility.reason or "not_eligible")
            if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
                raise NotEligible("invalid_amount")
            if amount > eligibility.refundable:
                raise NotEligible("amount_too_large", refundable=eligibility.refundable)
            text = reason.strip()
            if not 1 <= len(text) <= 500:
                raise NotEligible("invalid_reason")
            now = self._now()
            refund = WalletRefund(
                id=f"RF{_ts(now):%Y%m%d}{secrets.token_hex(3).upper()}", account_id=account_id,
                transaction_id=tx.id, amount=_money(amount), currency=tx.currency, reason=text,
                status="submitted", note=None, created_at=now, updated_at=now,
            )  # fmt: skip
            await self._repo.add_refund(refund)
            return _public_refund(refund)

        request = [account_id, transaction_id, str(amount), reason]
        return await self._once("create_refund", idempotency_key, request, Refund, work)

    async def create_refund_in_app(
        self, account_id: str, transaction_id: str, amount: Decimal, reason: str
    ) -> Refund:
        """Create a refund as the wallet app does (not through the bot): the bot learns of it
        only from the change feed."""
        key = "app-" + secrets.token_hex(8)
        return await self.create_refund(account_id, transaction_id, amount, reason, key)

    async def list_refunds(self, account_id: str) -> list[Refund]:
        """Return the account's refunds, newest first."""
        await self._account(account_id)
        await self._advance_refunds()
        return [_public_refund(r) for r in await self._repo.refunds(account_id)]

    async def get_refund(self, account_id: str, refund_id: str) -> Refund:
        """Return one refund."""
        await self._account(account_id)
        await self._advance_refunds()
        refund = await self._repo.refund(account_id, refund_id)
        if refund is None:
            raise NotFound("refund_not_found")
        return _public_refund(refund)

    async def refund_changes(self, cursor: str | None, limit: int = 100) -> RefundChanges:
        """Return each refund status change after ``cursor``, oldest first (``None``: the
        changes of the last 24 hours). The cursor is the change's sequence number."""
        await self._ready()
        await self._advance_refunds()
        limit = min(max(limit, 1), FEED_MAX_LIMIT)
        if cursor is None:
            logged, more = await self._repo.refund_changes(since=self._now() - DAY, limit=limit)
            start = await self._repo.last_refund_change() if not logged else 0
        else:
            if not cursor.isdigit():
                raise NotEligible("invalid_cursor")
            start = int(cursor)
            logged, more = await self._repo.refund_changes(after_seq=start, limit=limit)
        changes = []
        for change in logged:
            refund = await self._repo.refund_by_id(change.refund_id)
            assert refund is not None
            changes.append(
                RefundChange(
                    cursor=str(change.seq),
                    status=change.status,
                    changed_at=_ts(change.changed_at),
                    refund=_public_refund(refund),
                )
            )
        next_cursor = changes[-1].cursor if changes else str(start)
        return RefundChanges(changes=changes, next_cursor=next_cursor, has_more=more)

    async def _advance_refunds(self) -> None:
        """Move refunds along by the clock; each step is dated when it was due."""
        now = self._now()
        if now < self._refunds_quiet_until:
            return
        step = self.refund_step_seconds
        next_due = await self._repo.next_refund_due(step)
        if next_due is None or next_due > now:
            # Nothing moves before the next known due time, nor before a refund created from
            # now on (by any process sharing the file) is due: one step from now at the least.
            self._refunds_quiet_until = (
                now + step if next_due is None else min(next_due, now + step)
            )
            return
        async with self._repo.atomic():
            for refund in await self._repo.due_refunds(now, step):
                # Deterministic outcome: amounts ending in .99 are rejected by the merchant.
                rejected = _money(refund.amount) % 1 == Decimal("0.99")
                path = ["submitted", "reviewing", "rejected" if rejected else "approved"]
                if not rejected:
                    path.append("refunded")
                target = min(int((now - refund.created_at) // step), len(path) - 1)
                # Every step is logged, dated when it was due: the feed skips no status.
                for index in range(path.index(refund.status) + 1, target + 1):
                    status = path[index]
                    note = "merchant_declined" if status == "rejected" else None
                    await self._repo.set_refund_status(
                        refund.id, status, refund.created_at + index * step, note
                    )
                    if status == "refunded":
                        await self._apply_refund(refund)

    async def _apply_refund(self, refund: WalletRefund) -> None:
        tx = await self._repo.transaction(refund.account_id, refund.transaction_id)
        assert tx is not None
        refunded = _money(tx.refunded_amount + refund.amount)
        status = "refunded" if refunded >= tx.amount else "partially_refunded"
        await self._repo.set_refunded(tx.id, refunded, status)

    # -- the SMS outbox --------------------------------------------------------------------

    async def sms_outbox(self, phone: str | None = None, limit: int = 50) -> list[SmsMessage]:
        """Return the newest SMS (of one phone), oldest first, for the sandbox page."""
        await self._ready()
        wanted = None if phone is None else normalize_phone(phone)
        stored = [
            SmsMessage(f"s{sms.id}", sms.phone, sms.text, _ts(sms.created_at))
            for sms in await self._repo.sms(wanted, limit)
        ]
        volatile = [m for m in self._volatile_sms if wanted is None or m.phone == wanted]
        merged = sorted([*stored, *volatile], key=lambda m: m.sent_at)
        return merged[-limit:]

    @property
    def store(self) -> WalletStore:
        """Return the demo wallet's own database (for the sandbox, benchmarks and tests)."""
        return self._repo

    async def close(self) -> None:
        """Nothing to release: whoever opened the wallet's database closes it."""


# -- conversions ---------------------------------------------------------------------------


def _public_account(account: WalletAccount) -> Account:
    return Account(
        id=account.id,
        display_name=account.display_name,
        phone_masked=mask_phone(account.phone),
        status=account.status,
        locked_reason=account.locked_reason if account.status == "locked" else None,
        password_changed_at=(
            _ts(account.password_changed_at) if account.password_changed_at else None
        ),
    )


def _public_card(card: WalletCard) -> Card:
    return Card(id=card.id, bank=card.bank, last4=card.last4, kind=card.kind)


def _public_transaction(tx: WalletTransaction) -> Transaction:
    return Transaction(
        id=tx.id,
        account_id=tx.account_id,
        created_at=_ts(tx.created_at),
        amount=tx.amount,
        currency=tx.currency,
        merchant=tx.merchant,
        status=tx.status,
        refunded_amount=tx.refunded_amount,
        kind=tx.kind,
        failure_reason=tx.failure_reason,
        merchant_names=dict(_MERCHANT_NAMES.get(tx.merchant, {})),
        counterparty=_counterparty(tx.merchant) if tx.kind == "transfer" else None,
        paid_with=_paid_with(tx),
    )


def _paid_with(tx: WalletTransaction) -> PaidWith:
    """Where a seeded transaction's money came from: one of the person's cards for most
    payments and every top-up, else the balance (fixed by the transaction id)."""
    person = next((p for p in DEMO_PEOPLE if p.id == tx.account_id), None)
    draw = int(hashlib.sha256(tx.id.encode()).hexdigest()[:8], 16)
    if person is None or not person.cards or (tx.kind == "payment" and draw % 3 == 0):
        return PaidWith("balance")
    if tx.kind == "transfer":
        return PaidWith("balance")
    number, _ = person.cards[draw % len(person.cards)]
    return PaidWith("card", bank_of(number)[0], number[-4:])


def password_rules_ok(password: str) -> bool:
    """The demo wallet's password rules (shown on its reset page): 8 to 64 characters, with
    at least one letter and one digit."""
    return (
        8 <= len(password) <= 64
        and any(c.isalpha() for c in password)
        and any(c.isdigit() for c in password)
    )


def _counterparty(label: str) -> str | None:
    """The payee of a seeded transfer ("转账给 张伟", "Transfer to Emma Brown")."""
    for prefix in ("转账给", "Transfer to"):
        if label.startswith(prefix):
            return label[len(prefix) :].strip() or None
    return None


def _public_refund(refund: WalletRefund) -> Refund:
    return Refund(
        id=refund.id,
        account_id=refund.account_id,
        transaction_id=refund.transaction_id,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
        status=refund.status,
        created_at=_ts(refund.created_at),
        updated_at=_ts(refund.updated_at),
        note=refund.note,
    )


# -- seed data -----------------------------------------------------------------------------


def build_seed(
    now: float, pepper: str
) -> tuple[list[WalletAccount], list[WalletCard], list[WalletTransaction], list[WalletToken]]:
    """Return the demo accounts, cards, transactions and link tokens as of ``now``."""
    accounts: list[WalletAccount] = []
    cards: list[WalletCard] = []
    transactions: list[WalletTransaction] = []
    tokens: list[WalletToken] = []
    used_ids: set[str] = set()
    for person in DEMO_PEOPLE:
        accounts.append(WalletAccount(
            person.id, person.name, person.phone, person.status, person.locked_reason,
            person.frozen_reason, Decimal(person.balance), None, now - 400 * DAY, now,
        ))  # fmt: skip
        for n, (number, kind) in enumerate(person.cards, start=1):
            cards.append(WalletCard(
                f"CD{person.id}{n}", person.id, bank_of(number)[0], number[-4:], kind,
                card_hash(number, pepper), now - (200 - n) * DAY,
            ))  # fmt: skip
        rng = random.Random(f"upay-demo-{person.id}")
        transactions.extend(_transactions(person, rng, now, used_ids))
        year = now + 365 * DAY
        tokens.append(WalletToken(person.link_token, "link", person.id, now, year))
    tokens.append(WalletToken("demo_expired", "link", "U1001", now - DAY, now - 3600))
    tokens.append(WalletToken("demo_used", "link", "U1003", now - DAY, now + 365 * DAY,
                              used_at=now - 3600, used_by=1))  # fmt: skip
    return accounts, cards, transactions, tokens


def _transactions(
    person: _DemoPerson, rng: random.Random, now: float, used_ids: set[str]
) -> list[WalletTransaction]:
    count = 50
    # The first five payments cover every status; the rest are drawn by weight.
    forced = list(_PAYMENT_STATUSES)
    result: list[WalletTransaction] = []
    for i in range(count):
        kind = "payment" if i < len(forced) else rng.choices(
            ("payment", "transfer", "topup"), (80, 10, 10))[0]  # fmt: skip
        if kind == "payment":
            status = forced[i] if i < len(forced) else rng.choices(
                _PAYMENT_STATUSES, _STATUS_WEIGHTS)[0]  # fmt: skip
        else:
            status = rng.choices(("success", "processing", "failed"), (85, 5, 10))[0]
        # Still processing only if recent; the forced ones are recent enough to refund.
        if status == "processing":
            age = rng.uniform(0.01, 1.0) * DAY
        elif i < len(forced):
            age = rng.uniform(1.0, 20.0) * DAY
        else:
            age = rng.uniform(0.05, 90.0) * DAY
        created = float(int(now - age))
        currency = "CNY"
        if person.foreign and rng.random() < person.foreign_share:
            currency = rng.choice(person.foreign)
        if rng.random() < 0.12:
            amount = Decimal(rng.choice(_ROUND_AMOUNTS))
        else:
            amount = Decimal(rng.randint(100, 60_000)).scaleb(-2)
        refundable = True
        if kind == "payment":
            roll = rng.random()
            if roll < 0.06:
                merchant = rng.choice(_NO_REFUND_MERCHANTS)
                refundable = False
            elif currency != "CNY" or roll < 0.2:
                merchant = rng.choice(_MERCHANTS_EN)
            else:
                merchant = rng.choice(_MERCHANTS_ZH)
        elif kind == "transfer":
            merchant = rng.choice(("转账给 张伟", "转账给 刘洋", "Transfer to Emma Brown"))
        else:
            merchant = rng.choice(("余额充值", "Top-up from bank card"))
        refunded = Decimal("0.00")
        if status == "refunded":
            refunded = amount
        elif status == "partially_refunded":
            refunded = _money(amount * Decimal(rng.randint(10, 80)) / 100)
            refunded = max(min(refunded, amount - Decimal("0.01")), Decimal("0.01"))
        failure = rng.choice(_FAILURE_REASONS) if status == "failed" else None
        while True:
            tx_id = f"TX{_ts(created):%Y%m%d}{rng.getrandbits(24):06X}"
            if tx_id not in used_ids:
                used_ids.add(tx_id)
                break
        result.append(WalletTransaction(
            tx_id, person.id, created, amount, currency, merchant, status, refunded, kind,
            failure, refundable,
        ))  # fmt: skip
    return result
