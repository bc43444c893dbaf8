"""The wallet's optional HMAC-signed webhook for refund status changes.

The wallet POSTs ``{"refund_id": ..., "status": ...}`` to ``/wallet-events/refunds`` with
``X-UPay-Timestamp`` (unix seconds) and ``X-UPay-Signature: sha256=<hex>``, the HMAC-SHA256 of
``"<timestamp>.<body>"`` with the shared secret. A valid call makes the bot poll the refunds
at once (the poll is idempotent: each change reaches the user once); anything else is
refused with 401: a timestamp that is not ASCII digits or more than five minutes off, a bad
signature, or a signature already seen within those five minutes (a replayed call).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import tornado.httpserver
import tornado.netutil
import tornado.web

_LOGGER = logging.getLogger(__name__)

MAX_SKEW = 300.0
PATH = "/wallet-events/refunds"
#: Longest timestamp accepted (unix seconds have 10 digits until the year 2286).
MAX_TIMESTAMP_DIGITS = 12


class SeenSignatures:
    """Signatures of valid calls within the freshness window: a repeat is a replay."""

    def __init__(self, window: float = MAX_SKEW) -> None:
        self._window = window
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, signature: str, now: float) -> bool:
        """Remember ``signature``; return False if it was seen within the window."""
        while self._seen and next(iter(self._seen.values())) < now - 2 * self._window:
            self._seen.popitem(last=False)
        if signature in self._seen:
            return False
        self._seen[signature] = now
        return True


def parse_timestamp(raw: str) -> int | None:
    """Return the unix time of an ``X-UPay-Timestamp`` header: ASCII digits only (``²`` and
    other Unicode digits are refused), else None."""
    if not raw or len(raw) > MAX_TIMESTAMP_DIGITS or not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header value of a webhook call."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class RefundEventHandler(tornado.web.RequestHandler):
    """Check the signature and freshness of a refund event, then trigger a poll."""

    def initialize(
        self, secret: str, on_event: Callable[[], Awaitable[object]], seen: SeenSignatures
    ) -> None:
        self._secret = secret
        self._on_event = on_event
        self._seen = seen

    def check_xsrf_cookie(self) -> None:
        """Machine-to-machine calls carry an HMAC, not a cookie."""

    async def post(self) -> None:
        timestamp = self.request.headers.get("X-UPay-Timestamp", "")
        signature = self.request.headers.get("X-UPay-Signature", "")
        body = self.request.body
        now = time.time()
        sent_at = parse_timestamp(timestamp)
        fresh = sent_at is not None and abs(now - sent_at) <= MAX_SKEW
        if not fresh or not hmac.compare_digest(
            signature.encode(), sign(self._secret, timestamp, body).encode()
        ):
            _LOGGER.warning("Refused a refund event with a bad or stale signature")
            self.set_status(401)
            return
        if not self._seen.first_time(signature, now):
            _LOGGER.warning("Refused a replayed refund event")
            self.set_status(401)
            return
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("refund_id"), str):
            self.set_status(400)
            return
        await self._on_event()
        self.set_status(204)


async def serve_refund_events(
    secret: str, host: str, port: int, on_event: Callable[[], Awaitable[object]]
) -> tuple[tornado.httpserver.HTTPServer, int]:
    """Listen for refund events; return the server and its port."""
    app = tornado.web.Application(
        [
            (
                PATH,
                RefundEventHandler,
                {"secret": secret, "on_event": on_event, "seen": SeenSignatures()},
            )
        ]
    )
    sockets = tornado.netutil.bind_sockets(port, host)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]
