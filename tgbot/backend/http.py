"""The http backend: a client of the wallet JSON API documented in ``docs/wallet-api.yaml``.

The rules it follows are written down for wallet engineers in ``docs/wallet-api.md``
("The client"). In short: every attempt has a timeout and a logical call a deadline; 5xx,
429, timeouts, connection errors, unreadable answers and 409 ``idempotency_key_in_progress``
are retried with exponential backoff, mutating calls with the same ``Idempotency-Key`` each
time. One circuit breaker per endpoint group (accounts, cards, transactions, refunds, the
refund feed) fails fast with :class:`Unavailable` after ``breaker_threshold`` failed attempts
in a row, for ``breaker_cooldown`` seconds, then lets one trial call through; a slow group
never blocks the others. A mutating call that may have been applied (timed out after being
sent, 5xx, unreadable answer, still in progress) ends in :class:`OutcomeUnknown`, never in a
plain :class:`Unavailable`. A 401 re-reads the key file once (a rotated key) and otherwise
fails without retries. No httpx exception leaves this module: everything becomes a
:mod:`.base` error.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from ..logs import protect
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
    OutcomeUnknown,
    Refund,
    RefundChanges,
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
#: The reason a wallet gives to a retry that arrives while the first call still runs.
IN_PROGRESS = "idempotency_key_in_progress"
#: Endpoint groups, each with its own circuit breaker (see :func:`endpoint_group`).
GROUPS = ("accounts", "cards", "transactions", "refunds", "refund_feed")


def endpoint_group(path: str) -> str:
    """Return the breaker group of an API path (e.g. ``/accounts/U1/cards/C1`` -> ``cards``)."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["refunds", "changes"]:
        return "refund_feed"
    if parts[0] != "accounts" or len(parts) < 3:
        return "accounts"
    section = parts[2]
    if section in ("cards", "bindings"):
        return "cards"
    if section == "refunds" or parts[-1] == "refund-eligibility":
        return "refunds"
    if section == "transactions":
        return "transactions"
    return "accounts"


class CircuitBreaker:
    """Counts failed attempts in a row; when open, calls fail fast until the cooldown ends.

    After the cooldown one trial call is let through (half-open): its success closes the
    breaker, its failure opens it for another cooldown.
    """

    def __init__(
        self,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "wallet",
    ) -> None:
        self.name = name
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
                log.warning(
                    "Wallet API circuit breaker %r open for %.0f s", self.name, self.cooldown
                )
            self._opened_at = self._clock()
            self._trial = False

    @property
    def is_open(self) -> bool:
        """Return whether the breaker has tripped (open or waiting for its trial call)."""
        return self._opened_at is not None


class _Attempt(Exception):
    """One failed attempt: ``kind`` says why, ``maybe_applied`` whether a write may have
    happened (so the call's outcome is unknown unless a later attempt tells)."""

    def __init__(self, kind: str, *, maybe_applied: bool, retry_after: float | None = None):
        super().__init__(kind)
        self.kind = kind
        self.maybe_applied = maybe_applied
        self.retry_after = retry_after


class HttpWallet:
    """A :class:`~tgbot.backend.base.WalletBackend` over the wallet's JSON API.

    Args:
        base_url: the API root, e.g. ``"https://wallet.example/api/v1"``.
        api_key: sent as ``Authorization: Bearer <key>``.
        api_key_file: a file holding the key (read at start and again after a 401, so a
            rotated key is picked up without a restart); wins over ``api_key``.
        timeout: seconds an attempt may wait for the answer (connecting: at most 3 s).
        retries: extra attempts after a failed one (so ``retries=2`` is up to 3 attempts).
        backoff: the first retry waits this long, each next one twice as long.
        deadline: seconds one logical call may take with all its attempts and waits.
        breaker_threshold: failed attempts in a row that open a group's circuit breaker.
        breaker_cooldown: seconds a breaker stays open before a trial call.
        max_in_flight: requests sent to the wallet at once; more wait their turn (for at most
            ``timeout`` seconds, then the attempt fails as "never sent"). The client made here
            keeps that many connections open. It bounds the load a burst of users puts on the
            wallet, and it keeps httpcore's connection pool small: the pool looks at every
            connection and every waiting request on each request (quadratic, encode/httpcore
            #1035). With 200 users at once, httpx's default pool (100 connections, 20 kept
            alive) cost the bot about 0.3 ms of CPU a call more than this bound does, and
            100 kept alive several ms (docs/performance.md).
        client: an httpx client to use (the caller closes it); by default one is made here
            and closed by :meth:`close`.
        clock: monotonic seconds, for the breakers (injectable for tests).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_file: str | Path | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        deadline: float = 12.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        max_in_flight: int = 16,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = max(retries, 0)
        self.backoff = backoff
        self.deadline = deadline
        self.breakers = {
            group: CircuitBreaker(breaker_threshold, breaker_cooldown, clock, name=group)
            for group in GROUPS
        }
        self._headers = {"Accept": "application/json", "User-Agent": "upay-support-bot"}
        self._key_file = Path(api_key_file) if api_key_file else None
        self._set_key(self._read_key_file() or api_key)
        self._owns_client = client is None
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 3.0))
        places = max(max_in_flight, 1)
        self._in_flight = asyncio.Semaphore(places)
        self._client = client or httpx.AsyncClient(
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=places, max_keepalive_connections=places),
        )

    async def close(self) -> None:
        """Close the http client if this object made it."""
        if self._owns_client:
            await self._client.aclose()

    # -- the API key ----------------------------------------------------------------------

    def _set_key(self, key: str | None) -> None:
        self._key = key
        if key:
            protect((key,))  # a key read from its file stays out of the logs too
            self._headers["Authorization"] = f"Bearer {key}"
        else:
            self._headers.pop("Authorization", None)

    def _read_key_file(self) -> str | None:
        if self._key_file is None:
            return None
        try:
            return self._key_file.read_text("utf-8").strip() or None
        except OSError as exc:
            log.error("Cannot read the wallet API key file %s: %s", self._key_file, exc)
            return None

    def _reload_key(self) -> bool:
        """Re-read the key file after a 401; return whether the key changed."""
        key = self._read_key_file()
        if key and key != self._key:
            log.warning("Wallet API key reloaded from %s after a 401", self._key_file)
            self._set_key(key)
            return True
        return False

    # -- transport -------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        parse: Callable[[Any], Any] = lambda data: data,
        changes: bool | None = None,
    ) -> Any:
        """Make one logical call (with retries) and return ``parse`` of the decoded JSON.

        ``changes``: whether the call changes anything in the wallet (default: every method
        but GET); only a call that changes something can end in :class:`OutcomeUnknown`.
        """
        group = endpoint_group(path)
        breaker = self.breakers[group]
        if not breaker.allow():
            raise Unavailable(
                "circuit_open",
                "The wallet is not answering; try again later.",
                retry_after=round(breaker.retry_after(), 1),
                group=group,
            )
        headers = dict(self._headers)
        write = method != "GET" if changes is None else changes
        if method != "GET":
            # Every write carries a key, so a retry is never applied twice.
            headers["Idempotency-Key"] = idempotency_key or f"bot-{uuid.uuid4()}"
        url = self.base_url + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        started = time.monotonic()
        maybe_applied = False
        reloaded_key = False
        failure = "unknown"
        attempt = 0
        while True:
            try:
                try:
                    response = await self._send(method, url, body, query, headers, started)
                except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                    # Never reached the wallet: nothing can have been done.
                    raise _Attempt(f"connection:{type(exc).__name__}", maybe_applied=False) from exc
                except httpx.TimeoutException as exc:
                    raise _Attempt("timeout", maybe_applied=True) from exc
                except httpx.HTTPError as exc:
                    raise _Attempt(f"connection:{type(exc).__name__}", maybe_applied=True) from exc
                if response.status_code == 401 and not reloaded_key and self._reload_key():
                    reloaded_key = True
                    headers["Authorization"] = self._headers["Authorization"]
                    continue  # the wallet refused the old key before doing anything
                result = self._outcome(method, path, response, parse)
            except _Attempt as failed:
                failure = failed.kind
                maybe_applied = maybe_applied or (write and failed.maybe_applied)
                retry_after = failed.retry_after
            else:
                breaker.success()
                return result
            attempt += 1
            log.warning(
                "Wallet API %s %s failed (%s), attempt %d of %d",
                method, _log_path(path), failure, attempt, self.retries + 1,
            )  # fmt: skip
            if failure != IN_PROGRESS:  # a wallet busy with our own first call is not down
                breaker.failure()
            delay = self.backoff * 2 ** (attempt - 1)
            if retry_after is not None:
                delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
            out_of_time = time.monotonic() - started + delay >= self.deadline
            if attempt > self.retries or breaker.is_open or out_of_time:
                break
            await asyncio.sleep(delay)
        reason = failure.split(":")[0]
        if maybe_applied:
            raise OutcomeUnknown(
                reason, "The wallet may or may not have done it; ask again with the same key."
            )
        raise Unavailable(reason, "The wallet is not answering; try again later.")

    async def _send(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        query: dict[str, Any],
        headers: dict[str, str],
        started: float,
    ) -> httpx.Response:
        """Send one attempt when one of the ``max_in_flight`` places is free; waiting longer
        than the pool timeout is httpx's ``PoolTimeout`` (nothing was sent)."""
        try:
            async with asyncio.timeout(self._timeout.pool):
                await self._in_flight.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("every place for a wallet request stayed busy") from None
        try:
            return await self._client.request(
                method, url, json=body, params=query, headers=headers,
                timeout=self._attempt_timeout(started),
            )  # fmt: skip
        finally:
            self._in_flight.release()

    def _attempt_timeout(self, started: float) -> httpx.Timeout:
        left = max(self.deadline - (time.monotonic() - started), 0.1)
        read = min(self._timeout.read or left, left)
        return httpx.Timeout(read, connect=min(self._timeout.connect or read, read))

    def _outcome(
        self, method: str, path: str, response: httpx.Response, parse: Callable[[Any], Any]
    ) -> Any:
        """Return the parsed answer, raise a domain error, or raise :class:`_Attempt`."""
        status = response.status_code
        if status >= 500:
            raise _Attempt(f"status:{status}", maybe_applied=True,
                           retry_after=_retry_after(response))  # fmt: skip
        if status == 429:  # refused before doing anything, as documented
            raise _Attempt("status:429", maybe_applied=False, retry_after=_retry_after(response))
        if status == 204:
            return parse(None)
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = None
            if 200 <= status < 300:
                log.error("Wallet API %s %s: invalid JSON", method, _log_path(path))
                raise _Attempt("bad_response", maybe_applied=True) from None
        if 200 <= status < 300:
            try:
                return parse(data)
            except WireError as exc:
                log.error("Wallet API %s %s: answer not as documented: %s",
                          method, _log_path(path), exc)  # fmt: skip
                raise _Attempt("bad_response", maybe_applied=True) from exc
        error = data.get("error") if isinstance(data, dict) else None
        error = error if isinstance(error, dict) else {}
        reason = str(error.get("reason") or f"http_{status}")
        message = str(error.get("message") or "")
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
        if status == 409 and reason == IN_PROGRESS:
            raise _Attempt(IN_PROGRESS, maybe_applied=True, retry_after=_retry_after(response))
        if status == 404:
            raise NotFound(reason, message, **details)
        if status in (400, 409, 410, 422):
            raise NotEligible(reason, message, **details)
        if status == 423:
            raise (Frozen if reason == "frozen" else Locked)(reason, message, **details)
        if status in (401, 403):
            log.error(
                "Wallet API %s %s answered %d (%s): the bot's API key was refused (rotated?). "
                "Set TGBOT_BACKEND_API_KEY or the key file TGBOT_BACKEND_API_KEY_FILE.",
                method, _log_path(path), status, reason,
            )  # fmt: skip
        else:
            log.error("Wallet API %s %s answered %d (%s)", method, _log_path(path), status, reason)
        # 401, 403 and other 4xx: refused before anything was done; not the wallet being down.
        raise Unavailable(reason, message or "The wallet refused the request.", status=status)

    async def _get(self, cls: type[T], path: str, **kwargs: Any) -> T:
        return await self._call("GET", path, parse=_parser(cls), **kwargs)

    async def _post(self, cls: type[T], path: str, **kwargs: Any) -> T:
        return await self._call("POST", path, parse=_parser(cls), **kwargs)

    # -- the interface ---------------------------------------------------------------------

    async def redeem_link_token(self, token: str, telegram_user_id: int) -> Account:
        """Redeem a one-time deep-link token."""
        body = {"token": token, "telegram_user_id": telegram_user_id}
        return await self._post(Account, "/link-tokens/redeem", body=body)

    async def account_by_phone(self, phone: str) -> Account | None:
        """Return the account of a phone number, if any (the phone travels in the body)."""

        def parse(data: Any) -> Account | None:
            if not isinstance(data, dict) or "account" not in data:
                raise WireError("no 'account' in the answer")
            found = data["account"]
            return None if found is None else from_wire(Account, found)

        # A POST only to keep the phone out of URLs: it changes nothing.
        path, body = "/accounts/lookup", {"phone": phone}
        return await self._call("POST", path, body=body, parse=parse, changes=False)

    async def get_account(self, account_id: str) -> Account:
        """Return an account."""
        return await self._get(Account, _account(account_id))

    async def send_code(self, account_id: str, idempotency_key: str) -> CodeSent:
        """Send a one-time code by SMS."""
        path = _account(account_id) + "/codes"
        return await self._post(CodeSent, path, body={}, idempotency_key=idempotency_key)

    async def check_code(self, account_id: str, code: str) -> bool:
        """Return whether the code is right (single use)."""

        def parse(data: Any) -> bool:
            valid = data.get("valid") if isinstance(data, dict) else None
            if not isinstance(valid, bool):
                raise WireError("no boolean 'valid' in the answer")
            return valid

        path = _account(account_id) + "/codes/check"
        return await self._call("POST", path, body={"code": code}, parse=parse)

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
        return await self._call("GET", _account(account_id) + "/cards", parse=_list(Card, "cards"))

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
        path = _account(account_id) + "/refunds"
        return await self._call("GET", path, parse=_list(Refund, "refunds"))

    async def get_refund(self, account_id: str, refund_id: str) -> Refund:
        """Return one refund."""
        return await self._get(Refund, f"{_account(account_id)}/refunds/{_seg(refund_id)}")

    async def refund_changes(self, cursor: str | None, limit: int = 100) -> RefundChanges:
        """Return the refund changes after ``cursor``, oldest first."""
        params = {"cursor": cursor, "limit": limit}
        return await self._get(RefundChanges, "/refunds/changes", params=params)


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


def _parser(cls: type[T]) -> Callable[[Any], T]:
    def parse(data: Any) -> T:
        return from_wire(cls, data)

    return parse


def _list(cls: type[T], key: str) -> Callable[[Any], list[T]]:
    def parse(data: Any) -> list[T]:
        items = data.get(key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise WireError(f"no {key!r} list in the answer")
        return [from_wire(cls, item) for item in items]

    return parse


__all__ = ["BackendError", "CircuitBreaker", "HttpWallet", "endpoint_group"]
