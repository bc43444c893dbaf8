"""The wallet's optional HMAC-signed webhook for refund status changes.

The wallet POSTs ``{"refund_id": ..., "status": ...}`` to ``/wallet-events/refunds`` with
``X-UPay-Timestamp`` (unix seconds) and ``X-UPay-Signature: sha256=<hex>``, the HMAC-SHA256 of
``"<timestamp>.<body>"`` with the shared secret. A valid call makes the bot poll the refunds
at once (the poll is idempotent: each change reaches the user once); anything else is
refused with 401, and a timestamp older than five minutes counts as a replay.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable

import tornado.httpserver
import tornado.netutil
import tornado.web

_LOGGER = logging.getLogger(__name__)

MAX_SKEW = 300.0
PATH = "/wallet-events/refunds"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header value of a webhook call."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class RefundEventHandler(tornado.web.RequestHandler):
    """Check the signature and freshness of a refund event, then trigger a poll."""

    def initialize(self, secret: str, on_event: Callable[[], Awaitable[object]]) -> None:
        self._secret = secret
        self._on_event = on_event

    def check_xsrf_cookie(self) -> None:
        """Machine-to-machine calls carry an HMAC, not a cookie."""

    async def post(self) -> None:
        timestamp = self.request.headers.get("X-UPay-Timestamp", "")
        signature = self.request.headers.get("X-UPay-Signature", "")
        body = self.request.body
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= MAX_SKEW
        if not fresh or not hmac.compare_digest(signature, sign(self._secret, timestamp, body)):
            _LOGGER.warning("Refused a refund event with a bad or stale signature")
            self.set_status(401)
            return
        try:
            event = json.loads(body)
            assert isinstance(event.get("refund_id"), str)
        except (ValueError, AssertionError, AttributeError):
            self.set_status(400)
            return
        await self._on_event()
        self.set_status(204)


async def serve_refund_events(
    secret: str, host: str, port: int, on_event: Callable[[], Awaitable[object]]
) -> tuple[tornado.httpserver.HTTPServer, int]:
    """Listen for refund events; return the server and its port."""
    app = tornado.web.Application(
        [(PATH, RefundEventHandler, {"secret": secret, "on_event": on_event})]
    )
    sockets = tornado.netutil.bind_sockets(port, host)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]
