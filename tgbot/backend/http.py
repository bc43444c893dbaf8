"""The http backend: a client of the wallet JSON API documented in ``docs/wallet-api.yaml``.

Every call has a timeout; 5xx answers, 429, timeouts and connection errors are retried
with exponential backoff, mutating calls with the same ``Idempotency-Key`` each time. A
circuit breaker fails fast with :class:`Unavailable` after ``breaker_threshold`` failed
attempts in a row, for ``breaker_cooldown`` seconds, then lets one trial call through.
No httpx exception leaves this module: everything becomes a :mod:`.base` error.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from .base import (
    Account,
    BackendError,
    Binding,
    Card,
    CodeSent,
    Frozen,
    Locked,
    NotEligible,
    NotFound,
    Refund,
    RefundEligibility,
    ResetLink,
    Transaction,
    TransactionPage,
    Unavailable,
)
from .wire import WireError, format_datetime, from_wire

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The longest ``Retry-After`` honoured before the next attempt, in seconds.
MAX_RETRY_AFTER = 5.0


class CircuitBreaker:
    """Counts failed attempts in a row; when open, calls fail fast until the cooldown ends.

    After the cooldown one trial call is let through (half-open): its success closes the
    breaker, its failure opens it for another cooldown.
    """

    def __init__(
        self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = max(threshold, 1)
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        """Return ``"closed"``, ``"open"`` or ``"half_open"``."""
        if self._opened_at is None:
            return "closed"
        if self._trial or self._clock() - self._opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def retry_after(self) -> float:
        """Return the seconds left until a trial call is allowed."""
        if self._opened_at is None:
            return 0.0
        return max(self.cooldown - (self._clock() - self._opened_at), 0.0)

    def allow(self) -> bool:
        """Return whether a call may go out now (claiming the trial when half-open)."""
        if self._opened_at is None:
            return True
        if self._trial or self._clock() - self._opened_at < self.cooldown:
            return False
        self._trial = True
        return True

    def success(self) -> None:
        """Record an answer from the wallet (also a 4xx one): close the breaker."""
        self.failures = 0
        self._opened_at = None
        self._trial = False

    def failure(self) -> None:
        """Record a failed attempt (5xx, timeout, connection error)."""
        self.failures += 1
        if self._trial or self.failures >= self.threshold:
            if self._opened_at is None or self._trial:
                log.warning("Wallet API circuit breaker open for %.0f s", self.cooldown)
            self._opened_at = self._clock()
            self._trial = False

    @property
    def is_open(self) -> bool:
        """Return whether the breaker has tripped (open or waiting for its trial call)."""
        return self._opened_at is not None


class HttpWallet:
    """A :class:`~tgbot.backend.base.WalletBackend` over the wallet's JSON API.

    Args:
        base_url: the API root, e.g. ``"https://wallet.example/api/v1"``.
        api_key: sent as ``Authorization: Bearer <key>``.
        timeout: seconds per attempt (connect, read, write, pool).
        retries: extra attempts after a failed one (so ``retries=3`` is up to 4 attempts).
        backoff: the first retry waits this long, each next one twice as long.
        breaker_threshold: failed attempts in a row that open the circuit breaker.
        breaker_cooldown: seconds the breaker stays open before a trial call.
        client: an httpx client to use (the caller closes it); by default one is made here
            and closed by :meth:`close`.
        clock: monotonic seconds, for the breaker (injectable for tests).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = max(retries, 0)
        self.backoff = backoff
        self.breaker = CircuitBreaker(breaker_threshold, breaker_cooldown, clock)
        self._headers = {"Accept": "application/json", "User-Agent": "upay-support-bot"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._timeout = httpx.Timeout(timeout)

    async def close(self) -> None:
        """Close the http client if this object made it."""
        if self._owns_client:
            await self._client.aclose()

    # -- transport -------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Make one logical call (with retries) and return the decoded JSON body."""
        if not self.breaker.allow():
            raise Unavailable(
                "circuit_open",
                "The wallet is not answering; try again later.",
                retry_after=round(self.breaker.retry_after(), 1),
            )
        headers = dict(self._headers)
        if method != "GET":
            # Every write carries a key, so a retry is never applied twice.
            headers["Idempotency-Key"] = idempotency_key or f"bot-{uuid.uuid4()}"
        url = self.base_url + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        failure = "unknown"
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
                await asyncio.sleep(delay)
            retry_after = None
            try:
                response = await self._client.request(
                    method, url, json=body, params=query, headers=headers, timeout=self._timeout
                )
            except httpx.TimeoutException:
                failure = "timeout"
            except httpx.HTTPError as exc:
                failure = f"connection:{type(exc).__name__}"
            else:
                if response.status_code < 500 and response.status_code != 429:
                    self.breaker.success()
                    return self._decode(method, path, response)
                failure = f"status:{response.status_code}"
                retry_after = _retry_after(response)
            log.warning(
                "Wallet API %s %s failed (%s), attempt %d of %d",
                method, _log_path(path), failure, attempt + 1, self.retries + 1,
            )  # fmt: skip
            self.breaker.failure()
            if self.breaker.is_open:
                break
        raise Unavailable(failure.split(":")[0], "The wallet is not answering; try again later.")

    def _decode(self, method: str, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 204:
            return None
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = None
            if 200 <= status < 300:
                log.error("Wallet API %s %s: invalid JSON", method, _log_path(path))
                raise Unavailable("bad_response", "The wallet sent an unreadable answer.") from None
        if 200 <= status < 300:
            return data
        error = data.get("error") if isinstance(data, dict) else None
        error = error if isinstance(error, dict) else {}
        reason = str(error.get("reason") or f"http_{status}")
        message = str(error.get("message") or "")
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
        if status == 404:
            raise NotFound(reason, message, **details)
        if status in (400, 409, 422):
            raise NotEligible(reason, message, **details)
        if status == 423:
            raise (Frozen if reason == "frozen" else Locked)(reason, message, **details)
        log.error("Wallet API %s %s answered %d (%s)", method, _log_path(path), status, reason)
        raise Unavailable(reason, message or "The wallet refused the request.", status=status)

    async def _get(self, cls: type[T], path: str, **kwargs: Any) -> T:
        return _parse(cls, await self._call("GET", path, **kwargs))

    async def _post(self, cls: type[T], path: str, **kwargs: Any) -> T:
        return _parse(cls, await self._call("POST", path, **kwargs))

    # -- the interface ---------------------------------------------------------------------

    async def redeem_link_token(self, token: str, telegram_user_id: int) -> Account:
        """Redeem a one-time deep-link token."""
        body = {"token": token, "telegram_user_id": telegram_user_id}
        return await self._post(Account, "/link-tokens/redeem", body=body)

    async def account_by_phone(self, phone: str) -> Account | None:
        """Return the account of a phone number, if any (the phone travels in the body)."""
        data = await self._call("POST", "/accounts/lookup", body={"phone": phone})
        found = data.get("account") if isinstance(data, dict) else None
        return None if found is None else _parse(Account, found)

    async def get_account(self, account_id: str) -> Account:
        """Return an account."""
        return await self._get(Account, _account(account_id))

    async def send_code(self, account_id: str, idempotency_key: str) -> CodeSent:
        """Send a one-time code by SMS."""
        path = _account(account_id) + "/codes"
        return await self._post(CodeSent, path, body={}, idempotency_key=idempotency_key)

    async def check_code(self, account_id: str, code: str) -> bool:
        """Return whether the code is right (single use)."""
        data = await self._call("POST", _account(account_id) + "/codes/check", body={"code": code})
        valid = data.get("valid") if isinstance(data, dict) else None
        if not isinstance(valid, bool):
            raise Unavailable("bad_response", "The wallet sent an unreadable answer.")
        return valid

    async def password_reset_link(self, account_id: str, idempotency_key: str) -> ResetLink:
        """Issue a one-time password-reset link."""
        path = _account(account_id) + "/password-reset-links"
        return await self._post(ResetLink, path, body={}, idempotency_key=idempotency_key)

    async def unlock(self, account_id: str, idempotency_key: str) -> Account:
        """Unlock an account locked by wrong passwords."""
        path = _account(account_id) + "/unlock"
        return await self._post(Account, path, body={}, idempotency_key=idempotency_key)

    async def freeze(self, account_id: str, reason: str, idempotency_key: str) -> Account:
        """Freeze the account now."""
        path = _account(account_id) + "/freeze"
        body = {"reason": reason}
        return await self._post(Account, path, body=body, idempotency_key=idempotency_key)

    async def list_cards(self, account_id: str) -> list[Card]:
        """Return the bound cards."""
        data = await self._call("GET", _account(account_id) + "/cards")
        return _parse_list(Card, data, "cards")

    async def unbind_card(self, account_id: str, card_id: str, idempotency_key: str) -> None:
        """Unbind a card."""
        path = f"{_account(account_id)}/cards/{_seg(card_id)}"
        await self._call("DELETE", path, idempotency_key=idempotency_key)

    async def start_binding(self, account_id: str, idempotency_key: str) -> Binding:
        """Open a one-time session on the secure card-entry page."""
        path = _account(account_id) + "/bindings"
        return await self._post(Binding, path, body={}, idempotency_key=idempotency_key)

    async def get_binding(self, account_id: str, binding_id: str) -> Binding:
        """Return a binding's state."""
        return await self._get(Binding, f"{_account(account_id)}/bindings/{_seg(binding_id)}")

    async def confirm_deposit(self, account_id: str, binding_id: str, amount: Decimal) -> Binding:
        """Check the micro-deposit amount."""
        path = f"{_account(account_id)}/bindings/{_seg(binding_id)}/deposit-check"
        return await self._post(Binding, path, body={"amount": str(amount)})

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
        params = {
            "since": None if since is None else format_datetime(since),
            "until": None if until is None else format_datetime(until),
            "status": status,
            "limit": limit,
            "offset": offset,
        }
        path = _account(account_id) + "/transactions"
        return await self._get(TransactionPage, path, params=params)

    async def get_transaction(self, account_id: str, transaction_id: str) -> Transaction:
        """Return one of the account's transactions."""
        path = f"{_account(account_id)}/transactions/{_seg(transaction_id)}"
        return await self._get(Transaction, path)

    async def refund_eligibility(self, account_id: str, transaction_id: str) -> RefundEligibility:
        """Return whether and how much can be refunded."""
        path = f"{_account(account_id)}/transactions/{_seg(transaction_id)}/refund-eligibility"
        return await self._get(RefundEligibility, path)

    async def create_refund(
        self,
        account_id: str,
        transaction_id: str,
        amount: Decimal,
        reason: str,
        idempotency_key: str,
    ) -> Refund:
        """Create a refund request (the same key returns the same refund)."""
        body = {"transaction_id": transaction_id, "amount": str(amount), "reason": reason}
        path = _account(account_id) + "/refunds"
        return await self._post(Refund, path, body=body, idempotency_key=idempotency_key)

    async def list_refunds(self, account_id: str) -> list[Refund]:
        """Return the account's refunds, newest first."""
        data = await self._call("GET", _account(account_id) + "/refunds")
        return _parse_list(Refund, data, "refunds")

    async def get_refund(self, account_id: str, refund_id: str) -> Refund:
        """Return one refund."""
        return await self._get(Refund, f"{_account(account_id)}/refunds/{_seg(refund_id)}")

    async def refunds_changed_since(self, since: datetime) -> list[Refund]:
        """Return refunds whose status changed after ``since``."""
        data = await self._call("GET", "/refunds/changes", params={"since": format_datetime(since)})
        return _parse_list(Refund, data, "refunds")


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _account(account_id: str) -> str:
    return f"/accounts/{_seg(account_id)}"


def _log_path(path: str) -> str:
    # Paths carry account, card and transaction ids, never phones, codes or card numbers.
    return path


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _parse(cls: type[T], data: Any) -> T:
    try:
        return from_wire(cls, data)
    except WireError as exc:
        log.error("Wallet API answer does not match %s: %s", cls.__name__, exc)
        raise Unavailable("bad_response", "The wallet sent an unreadable answer.") from exc


def _parse_list(cls: type[T], data: Any, key: str) -> list[T]:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        log.error("Wallet API answer has no %r list", key)
        raise Unavailable("bad_response", "The wallet sent an unreadable answer.")
    return [_parse(cls, item) for item in items]


__all__ = ["BackendError", "CircuitBreaker", "HttpWallet"]
