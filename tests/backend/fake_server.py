"""A wallet written from the documents: ``docs/wallet-api.yaml`` served by tornado.

:class:`FakeWalletApi` knows the API only through the document: a request is routed by the
document's operation (``operationId``) and checked against it (an undocumented or malformed
request is refused, 404 ``no_such_endpoint`` / 422 ``invalid_request``); every answer is
checked against it before it leaves, and one that does not match fails the test
(:attr:`FakeWalletApi.violations`). The wallet's data and rules come from a
:class:`~tgbot.backend.demo.DemoWallet`; what ``docs/wallet-api.md`` asks of a wallet on top
(bearer keys, idempotency: replays, ``idempotency_key_reused``, ``idempotency_key_in_progress``,
24 h lifetime) is done here, in the HTTP layer, as a wallet engineer would.

Tests inject faults (``fail_next``, ``delay_next``, ``slow_next``, ``garble_next``), rotate
the key (``rotate_key``) and read what arrived (``requests``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.backend.spec import (
    GARBLED_HEADER,
    SpecRequest,
    SpecResponse,
    operation,
    request_errors,
    response_errors,
    spec,
)
from tgbot.backend.base import BackendError, Frozen, Locked, NotEligible, NotFound, Unavailable
from tgbot.backend.demo import DemoWallet
from tgbot.backend.wire import parse_datetime, parse_decimal, to_wire

#: How long the wallet keeps an idempotency key and its answer (the documented minimum).
KEY_LIFETIME = 24 * 3600.0
#: The key every fake accepts unless a test says otherwise.
TEST_KEY = "test-key"


@dataclass
class Call:
    """One checked request as an operation sees it."""

    wallet: DemoWallet
    path: dict[str, str]
    body: dict[str, Any]
    query: dict[str, str]
    key: str | None


def _operations() -> dict[str, tuple[Callable[[Call], Awaitable[Any]], int]]:
    """operationId -> (what the wallet does, success status)."""

    async def redeem(c: Call) -> Any:
        return await c.wallet.redeem_link_token(c.body["token"], c.body["telegram_user_id"])

    async def lookup(c: Call) -> Any:
        return {"account": await c.wallet.account_by_phone(c.body["phone"])}

    async def transactions(c: Call) -> Any:
        since, until = c.query.get("since"), c.query.get("until")
        return await c.wallet.list_transactions(
            c.path["account_id"],
            since=None if since is None else parse_datetime(since),
            until=None if until is None else parse_datetime(until),
            status=c.query.get("status"),
            limit=int(c.query.get("limit", "10")),
            offset=int(c.query.get("offset", "0")),
        )

    async def refund(c: Call) -> Any:
        return await c.wallet.create_refund(
            c.path["account_id"],
            c.body["transaction_id"],
            parse_decimal(c.body["amount"]),
            c.body["reason"],
            c.key or "",
        )

    async def changes(c: Call) -> Any:
        return await c.wallet.refund_changes(c.query.get("cursor"), int(c.query.get("limit", 100)))

    async def deposit(c: Call) -> Any:
        p = c.path
        amount = parse_decimal(c.body["amount"])
        return await c.wallet.confirm_deposit(p["account_id"], p["binding_id"], amount)

    async def unbind(c: Call) -> Any:
        await c.wallet.unbind_card(c.path["account_id"], c.path["card_id"], c.key or "")

    async def cards(c: Call) -> Any:
        return {"cards": await c.wallet.list_cards(c.path["account_id"])}

    async def refunds(c: Call) -> Any:
        return {"refunds": await c.wallet.list_refunds(c.path["account_id"])}

    async def check(c: Call) -> Any:
        return {"valid": await c.wallet.check_code(c.path["account_id"], c.body["code"])}

    def account_op(name: str, *fields: str, keyed: bool = False) -> Callable[[Call], Any]:
        async def run(c: Call) -> Any:
            args = [c.path[f] if f in c.path else c.body[f] for f in fields]
            if keyed:
                args.append(c.key or "")
            return await getattr(c.wallet, name)(*args)

        return run

    return {
        "redeemLinkToken": (redeem, 200),
        "accountByPhone": (lookup, 200),
        "getAccount": (account_op("get_account", "account_id"), 200),
        "sendCode": (account_op("send_code", "account_id", keyed=True), 201),
        "checkCode": (check, 200),
        "passwordResetLink": (account_op("password_reset_link", "account_id", keyed=True), 201),
        "unlock": (account_op("unlock", "account_id", keyed=True), 200),
        "freeze": (account_op("freeze", "account_id", "reason", keyed=True), 200),
        "listCards": (cards, 200),
        "unbindCard": (unbind, 204),
        "startBinding": (account_op("start_binding", "account_id", keyed=True), 201),
        "getBinding": (account_op("get_binding", "account_id", "binding_id"), 200),
        "confirmDeposit": (deposit, 200),
        "listTransactions": (transactions, 200),
        "getTransaction": (account_op("get_transaction", "account_id", "transaction_id"), 200),
        "refundEligibility": (
            account_op("refund_eligibility", "account_id", "transaction_id"),
            200,
        ),
        "createRefund": (refund, 201),
        "listRefunds": (refunds, 200),
        "getRefund": (account_op("get_refund", "account_id", "refund_id"), 200),
        "refundChanges": (changes, 200),
    }


OPERATIONS = _operations()


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    idempotency_key: str | None
    authorization: str | None
    operation: str | None = None


@dataclass
class _Fault:
    status: int | None = None
    delay: float = 0.0
    after: bool = False  # hold the answer after the work is done (the work happens)
    busy: bool = False  # hold while the key is in flight, then do the work
    garbled: bool = False
    retry_after: str | None = None
    op: str | None = None  # only requests of this operationId


@dataclass
class _Stored:
    fingerprint: str
    status: int
    payload: Any
    created_at: float


@dataclass
class FakeWalletApi:
    """The wallet API on 127.0.0.1, with fault injection for the http client's tests."""

    wallet: DemoWallet
    api_keys: set[str] = field(default_factory=lambda: {TEST_KEY})
    clock: Callable[[], float] = time.time
    requests: list[Seen] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    port: int = 0
    _http: tornado.httpserver.HTTPServer | None = None
    _keys: dict[str, _Stored] = field(default_factory=dict)
    _in_flight: set[str] = field(default_factory=set)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        """Return the API root."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def api_key(self) -> str:
        """Return one key the wallet accepts."""
        return sorted(self.api_keys)[0]

    def rotate_key(self, new: str) -> None:
        """Accept only ``new`` from now on (the old key gets 401)."""
        self.api_keys = {new}

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        retry_after: str | None = None,
        op: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests (of ``op``) with ``status``, doing nothing."""
        self.faults.extend(_Fault(status=status, retry_after=retry_after, op=op)
                           for _ in range(count))  # fmt: skip

    def delay_next(self, count: int = 1, seconds: float = 1.0, op: str | None = None) -> None:
        """Hold the next ``count`` requests for ``seconds`` before handling them (a request
        whose client gave up meanwhile is not handled: lost on the way)."""
        self.faults.extend(_Fault(delay=seconds, op=op) for _ in range(count))

    def slow_next(self, count: int = 1, seconds: float = 1.0, op: str | None = None) -> None:
        """Handle the next ``count`` requests at once but hold their answers for ``seconds``
        (the work is done even if the client gives up)."""
        self.faults.extend(_Fault(delay=seconds, after=True, op=op) for _ in range(count))

    def busy_next(self, count: int = 1, seconds: float = 1.0, op: str | None = None) -> None:
        """Take the next ``count`` requests but finish their work only after ``seconds``: a
        retry with the same key meanwhile is answered 409 ``idempotency_key_in_progress``."""
        self.faults.extend(_Fault(delay=seconds, busy=True, op=op) for _ in range(count))

    def garble_next(self, count: int = 1, op: str | None = None) -> None:
        """Handle the next ``count`` requests, then answer them with unreadable JSON."""
        self.faults.extend(_Fault(garbled=True, op=op) for _ in range(count))

    def keys(self, path_suffix: str) -> list[str | None]:
        """Return the Idempotency-Key of each request whose path ends with ``path_suffix``."""
        return [r.idempotency_key for r in self.requests if r.path.endswith(path_suffix)]

    def calls(self, op: str) -> list[Seen]:
        """Return the requests of one operation."""
        return [r for r in self.requests if r.operation == op]

    async def start(self) -> FakeWalletApi:
        """Listen on a free port."""
        app = tornado.web.Application(
            [(r"/api/v1(/.*)", _ApiHandler, {"api": self})], log_function=lambda _h: None
        )
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self._http = tornado.httpserver.HTTPServer(app)
        self._http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening; release held requests; close connections."""
        self._stopping.set()
        if self._http is not None:
            self._http.stop()
            await self._http.close_all_connections()
            self._http = None

    async def hold(self, seconds: float) -> None:
        """Sleep up to ``seconds``, ending early when the server stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _fault_for(self, op: str | None) -> _Fault | None:
        for index, fault in enumerate(self.faults):
            if fault.op is None or fault.op == op:
                return self.faults.pop(index)
        return None

    def _remembered(self, key: str) -> _Stored | None:
        stored = self._keys.get(key)
        if stored is not None and self.clock() - stored.created_at > KEY_LIFETIME:
            del self._keys[key]
            return None
        return stored


class _ApiHandler(tornado.web.RequestHandler):
    api: FakeWalletApi

    def initialize(self, api: FakeWalletApi) -> None:
        self.api = api
        self._closed = False
        self._spec_request: SpecRequest | None = None
        self._fault: _Fault | None = None

    def on_connection_close(self) -> None:
        self._closed = True

    def check_xsrf_cookie(self) -> None:
        """An API with keys, not cookies."""

    async def get(self, path: str) -> None:
        await self._handle("GET", path)

    async def post(self, path: str) -> None:
        await self._handle("POST", path)

    async def delete(self, path: str) -> None:
        await self._handle("DELETE", path)

    def _reply(self, status: int, payload: Any = None, headers: dict[str, str] | None = None):
        data = None if status == 204 else json.dumps(payload, ensure_ascii=False).encode()
        if self._spec_request is not None:
            answer = SpecResponse(status, data, headers or {})
            for error in response_errors(self._spec_request, answer):
                self.api.violations.append(
                    f"fake wallet {self._spec_request.method} {self._spec_request.api_path} "
                    f"-> {status}: {error}"
                )
        if self._closed:
            return
        self.set_status(status)
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        if data is None:
            self.finish()
            return
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(data)

    def _error(self, status: int, reason: str, headers: dict[str, str] | None = None,
               **details: Any) -> None:  # fmt: skip
        error = {"reason": reason, "message": reason, "details": to_wire(details)}
        self._reply(status, {"error": error}, headers)

    async def _handle(self, method: str, path: str) -> None:
        api = self.api
        key = self.request.headers.get("Idempotency-Key")
        found = operation(method, path)
        op = found[0] if found else None
        seen = Seen(method, path, key, self.request.headers.get("Authorization"), op)
        api.requests.append(seen)
        if found is None:
            self._error(404, "no_such_endpoint")
            return
        query = [(k, v.decode()) for k, vs in self.request.query_arguments.items() for v in vs]
        self._spec_request = SpecRequest(
            method, path, query, dict(self.request.headers), self.request.body or None,
            self.request.headers.get("Content-Type", "application/json"),
        )  # fmt: skip
        fault = api._fault_for(op)
        self._fault = fault
        if fault is not None and fault.delay and not (fault.after or fault.busy):
            await api.hold(fault.delay)
            if self._closed:
                return  # the client gave up before the wallet saw it: nothing is done
        if fault is not None and fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            self._error(fault.status, "injected_fault", headers)
            return
        bearer = self.request.headers.get("Authorization", "")
        if bearer.removeprefix("Bearer ") not in api.api_keys:
            self._error(401, "unauthorized")
            return
        if request_errors(self._spec_request):
            self._error(422, "invalid_request")
            return
        status, payload = await self._idempotent(method, path, op, key)
        if fault is not None and fault.after:
            await api.hold(fault.delay)
        if fault is not None and fault.garbled:
            self.set_header(GARBLED_HEADER, "garbled")
            self.set_status(status if status != 204 else 200)
            self.finish(b'{"id": "RF2026' if status != 204 else b"<html>")
            return
        if status == 409 and payload["error"]["reason"] == "idempotency_key_in_progress":
            self._reply(status, payload, {"Retry-After": "0.1"})
            return
        self._reply(status, payload)

    async def _idempotent(
        self, method: str, path: str, op: str, key: str | None
    ) -> tuple[int, Any]:
        """Run the operation once per key; a repeat replays, a concurrent one is refused."""
        api = self.api
        if method == "GET" or key is None:
            return await self._run(op)
        fingerprint = hashlib.sha256(
            json.dumps([method, path, self.request.body.decode("utf-8", "replace")]).encode()
        ).hexdigest()
        if key in api._in_flight:
            return 409, _error_payload("idempotency_key_in_progress")
        stored = api._remembered(key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                return 409, _error_payload("idempotency_key_reused")
            return stored.status, stored.payload
        api._in_flight.add(key)
        try:
            if self._fault is not None and self._fault.busy:
                await api.hold(self._fault.delay)
            status, payload = await self._run(op)
        finally:
            api._in_flight.discard(key)
        if status < 500:
            api._keys[key] = _Stored(fingerprint, status, payload, api.clock())
        return status, payload

    async def _run(self, op: str) -> tuple[int, Any]:
        assert self._spec_request is not None
        handler, status = OPERATIONS[op]
        found = operation(self._spec_request.method, self._spec_request.api_path)
        assert found is not None
        try:
            body = json.loads(self.request.body or b"{}") if self.request.body else {}
            call = Call(
                self.api.wallet, found[1], body if isinstance(body, dict) else {},
                dict(self._spec_request.query),
                self._spec_request.parameters.header.get("Idempotency-Key"),
            )  # fmt: skip
            return status, to_wire(await handler(call))
        except (ValueError, KeyError) as exc:
            return 422, _error_payload("invalid_request", str(exc))
        except NotFound as exc:
            return 404, _error_payload(exc.reason, **exc.details)
        except NotEligible as exc:
            code = 410 if exc.reason == "cursor_expired" else 409
            if exc.reason == "invalid_cursor":
                code = 422
            return code, _error_payload(exc.reason, **exc.details)
        except (Locked, Frozen) as exc:
            return 423, _error_payload("frozen" if isinstance(exc, Frozen) else exc.reason)
        except (Unavailable, BackendError) as exc:
            return 503, _error_payload(exc.reason)


def _error_payload(reason: str, message: str = "", **details: Any) -> dict[str, Any]:
    return {"error": {"reason": reason, "message": message or reason, "details": to_wire(details)}}


def documented_operations() -> set[str]:
    """Return every operationId of the document."""
    paths = spec().spec / "paths"
    ids = set()
    for _, path in paths.items():
        for method in ("get", "post", "delete", "put", "patch"):
            if method in path:
                ids.add((path / method)["operationId"])
    return ids
