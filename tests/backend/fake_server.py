"""A local wallet API (``docs/wallet-api.yaml``) served by tornado, backed by a DemoWallet.

:class:`FakeWalletApi` answers every documented endpoint by delegating to the wallet it is
given, so the http client and the demo wallet pass the same contract suite. Tests inject
faults (``fail_next``, ``delay_next``) and read what arrived (``requests``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from tgbot.backend.base import BackendError, Frozen, Locked, NotEligible, NotFound, Unavailable
from tgbot.backend.demo import DemoWallet
from tgbot.backend.wire import WireError, parse_datetime, parse_decimal, to_wire

Route = Callable[["Call"], Awaitable[Any]]


@dataclass
class Call:
    """One request as a route sees it."""

    wallet: DemoWallet
    args: tuple[str, ...]
    body: dict[str, Any]
    query: dict[str, str]
    key: str | None

    def str_field(self, name: str) -> str:
        value = self.body.get(name)
        if not isinstance(value, str):
            raise WireError(f"{name} must be a string")
        return value


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    idempotency_key: str | None
    authorization: str | None


def _optional_datetime(value: str | None) -> Any:
    return None if value is None else parse_datetime(value)


def _routes() -> list[tuple[str, re.Pattern[str], Route, int]]:
    seg = r"([^/]+)"

    async def redeem(c: Call) -> Any:
        user = c.body.get("telegram_user_id")
        if not isinstance(user, int):
            raise WireError("telegram_user_id must be an integer")
        return await c.wallet.redeem_link_token(c.str_field("token"), user)

    async def lookup(c: Call) -> Any:
        return {"account": await c.wallet.account_by_phone(c.str_field("phone"))}

    async def transactions(c: Call) -> Any:
        return await c.wallet.list_transactions(
            c.args[0],
            since=_optional_datetime(c.query.get("since")),
            until=_optional_datetime(c.query.get("until")),
            status=c.query.get("status"),
            limit=int(c.query.get("limit", "10")),
            offset=int(c.query.get("offset", "0")),
        )

    async def refund(c: Call) -> Any:
        return await c.wallet.create_refund(
            c.args[0],
            c.str_field("transaction_id"),
            parse_decimal(c.body.get("amount")),
            c.str_field("reason"),
            c.key or "",
        )

    async def changes(c: Call) -> Any:
        since = parse_datetime(c.query.get("since", ""))
        return {"refunds": await c.wallet.refunds_changed_since(since)}

    async def deposit(c: Call) -> Any:
        amount: Decimal = parse_decimal(c.body.get("amount"))
        return await c.wallet.confirm_deposit(c.args[0], c.args[1], amount)

    async def unbind(c: Call) -> Any:
        await c.wallet.unbind_card(c.args[0], c.args[1], c.key or "")

    table: list[tuple[str, str, Route, int]] = [
        ("POST", "/link-tokens/redeem", redeem, 200),
        ("POST", "/accounts/lookup", lookup, 200),
        ("GET", f"/accounts/{seg}", lambda c: c.wallet.get_account(c.args[0]), 200),
        ("POST", f"/accounts/{seg}/codes",
         lambda c: c.wallet.send_code(c.args[0], c.key or ""), 201),
        ("POST", f"/accounts/{seg}/codes/check",
         lambda c: _valid(c.wallet.check_code(c.args[0], c.str_field("code"))), 200),
        ("POST", f"/accounts/{seg}/password-reset-links",
         lambda c: c.wallet.password_reset_link(c.args[0], c.key or ""), 201),
        ("POST", f"/accounts/{seg}/unlock", lambda c: c.wallet.unlock(c.args[0], c.key or ""), 200),
        ("POST", f"/accounts/{seg}/freeze",
         lambda c: c.wallet.freeze(c.args[0], c.str_field("reason"), c.key or ""), 200),
        ("GET", f"/accounts/{seg}/cards", lambda c: _wrap("cards", c.wallet.list_cards(c.args[0])),
         200),
        ("DELETE", f"/accounts/{seg}/cards/{seg}", unbind, 204),
        ("POST", f"/accounts/{seg}/bindings",
         lambda c: c.wallet.start_binding(c.args[0], c.key or ""), 201),
        ("GET", f"/accounts/{seg}/bindings/{seg}",
         lambda c: c.wallet.get_binding(c.args[0], c.args[1]), 200),
        ("POST", f"/accounts/{seg}/bindings/{seg}/deposit-check", deposit, 200),
        ("GET", f"/accounts/{seg}/transactions", transactions, 200),
        ("GET", f"/accounts/{seg}/transactions/{seg}",
         lambda c: c.wallet.get_transaction(c.args[0], c.args[1]), 200),
        ("GET", f"/accounts/{seg}/transactions/{seg}/refund-eligibility",
         lambda c: c.wallet.refund_eligibility(c.args[0], c.args[1]), 200),
        ("POST", f"/accounts/{seg}/refunds", refund, 201),
        ("GET", f"/accounts/{seg}/refunds",
         lambda c: _wrap("refunds", c.wallet.list_refunds(c.args[0])), 200),
        ("GET", f"/accounts/{seg}/refunds/{seg}",
         lambda c: c.wallet.get_refund(c.args[0], c.args[1]), 200),
        ("GET", "/refunds/changes", changes, 200),
    ]  # fmt: skip
    return [(m, re.compile(f"^{p}$"), fn, status) for m, p, fn, status in table]


async def _valid(result: Awaitable[bool]) -> Any:
    return {"valid": await result}


async def _wrap(name: str, result: Awaitable[Any]) -> Any:
    return {name: await result}


@dataclass
class _Fault:
    status: int | None = None
    delay: float = 0.0
    retry_after: str | None = None


@dataclass
class FakeWalletApi:
    """The wallet API on 127.0.0.1, with fault injection for the http client's tests."""

    wallet: DemoWallet
    api_key: str | None = None
    requests: list[Seen] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    port: int = 0
    _http: tornado.httpserver.HTTPServer | None = None
    _replies: dict[tuple[str, str, str], tuple[int, str]] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        """Return the API root."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def fail_next(self, count: int = 1, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (without touching the wallet)."""
        self.faults.extend(_Fault(status=status, retry_after=retry_after) for _ in range(count))

    def delay_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Hold the next ``count`` requests for ``seconds`` before answering (or not at all)."""
        self.faults.extend(_Fault(delay=seconds) for _ in range(count))

    def keys(self, path_suffix: str) -> list[str | None]:
        """Return the Idempotency-Key of each request whose path ends with ``path_suffix``."""
        return [r.idempotency_key for r in self.requests if r.path.endswith(path_suffix)]

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


_ROUTES = _routes()


def _route(method: str, path: str) -> tuple[Route, re.Match[str], int] | None:
    for route_method, pattern, route, status in _ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return route, match, status
    return None


class _ApiHandler(tornado.web.RequestHandler):
    api: FakeWalletApi

    def initialize(self, api: FakeWalletApi) -> None:
        self.api = api
        self._closed = False

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

    def _reply(self, status: int, payload: Any = None) -> None:
        if self._closed:
            return
        self.set_status(status)
        if status == 204:
            self.finish()
            return
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(payload, ensure_ascii=False))

    def _error(self, status: int, reason: str, message: str = "", **details: Any) -> None:
        error = {"reason": reason, "message": message or reason, "details": to_wire(details)}
        self._reply(status, {"error": error})

    async def _handle(self, method: str, path: str) -> None:
        key = self.request.headers.get("Idempotency-Key")
        api = self.api
        api.requests.append(Seen(method, path, key, self.request.headers.get("Authorization")))
        if api.faults:
            fault = api.faults.pop(0)
            if fault.delay:
                await api.hold(fault.delay)
                if self._closed:
                    return
            if fault.status is not None:
                if fault.retry_after:
                    self.set_header("Retry-After", fault.retry_after)
                self._error(fault.status, "injected_fault")
                return
        if api.api_key and self.request.headers.get("Authorization") != f"Bearer {api.api_key}":
            self._error(401, "unauthorized")
            return
        # A repeated key replays the first answer, as the documented API does.
        replay_key = (method, path, key) if key and method != "GET" else None
        if replay_key and replay_key in api._replies:
            status, text = api._replies[replay_key]
            self._reply(status, json.loads(text) if text else None)
            return
        found = _route(method, path)
        if found is None:
            self._error(404, "no_such_endpoint")
            return
        route, match, status = found
        try:
            body = json.loads(self.request.body or b"{}") if method != "GET" else {}
            if not isinstance(body, dict):
                raise WireError("the body must be an object")
            query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
            call = Call(api.wallet, match.groups(), body, query, key)
            result = to_wire(await route(call))
        except (WireError, ValueError) as exc:
            self._error(422, "invalid_request", str(exc))
            return
        except NotFound as exc:
            self._error(404, exc.reason, **_details(exc))
            return
        except NotEligible as exc:
            self._error(409, exc.reason, **_details(exc))
            return
        except (Locked, Frozen) as exc:
            self._error(423, "frozen" if isinstance(exc, Frozen) else exc.reason or "locked")
            return
        except (Unavailable, BackendError) as exc:
            self._error(503, exc.reason)
            return
        if replay_key:
            api._replies[replay_key] = (status, "" if status == 204 else json.dumps(result))
        self._reply(status, result)


def _details(exc: BackendError) -> dict[str, Any]:
    return dict(exc.details)
