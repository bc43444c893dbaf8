"""The emulator served over HTTP on loopback, speaking the Bot API wire protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import SimulatedTimeout

HandlerSpec = tuple[Any, ...]
_access_log = logging.getLogger("tgbot.sandbox.access")


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Log requests at debug level: Telegram error answers are normal traffic here."""
    request = handler.request
    _access_log.debug("%s %s %s", handler.get_status(), request.method, request.uri)


class _EmulatorHandler(tornado.web.RequestHandler):
    """Base handler: knows the emulator and answers in Telegram's JSON envelope."""

    emulator: TelegramEmulator
    server: EmulatorServer

    def initialize(self, emulator: TelegramEmulator, server: EmulatorServer) -> None:
        """Receive the emulator and its server from the Application."""
        self.emulator = emulator
        self.server = server

    def write_envelope(self, status: int, envelope: dict[str, Any]) -> None:
        """Write a Telegram JSON envelope with its HTTP status."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(envelope))

    def check_token(self, token: str) -> bool:
        """Answer 401 Unauthorized unless ``token`` is the bot's token."""
        if token == self.emulator.token:
            return True
        self.write_envelope(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        return False


class BotApiHandler(_EmulatorHandler):
    """``/bot<token>/<method>``: query string, form, multipart or JSON body."""

    _task: asyncio.Task[tuple[int, dict[str, Any]]] | None = None

    def check_xsrf_cookie(self) -> None:
        """Accept API posts without XSRF cookies, as Telegram does."""

    async def get(self, token: str, method: str) -> None:
        """Answer a Bot API call made with GET."""
        await self._answer(token, method)

    async def post(self, token: str, method: str) -> None:
        """Answer a Bot API call made with POST."""
        await self._answer(token, method)

    def _params(self) -> tuple[dict[str, Any], dict[str, tuple[str | None, bytes, str | None]]]:
        params: dict[str, Any] = {}
        for name, values in self.request.arguments.items():
            params[name] = values[-1].decode("utf-8", "replace")
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.startswith("application/json") and self.request.body:
            body = json.loads(self.request.body)
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            for name, value in body.items():
                params[name] = value if isinstance(value, str) else json.dumps(value)
        files = {
            name: (parts[-1].filename, parts[-1].body, parts[-1].content_type)
            for name, parts in self.request.files.items()
        }
        return params, files

    async def _answer(self, token: str, method: str) -> None:
        if not self.check_token(token):
            return
        try:
            params, files = self._params()
        except ValueError:
            self.write_envelope(
                400, {"ok": False, "error_code": 400, "description": "Bad Request: invalid JSON"}
            )
            return
        if self.server.on_request is not None:
            # Who asks: the client's address and port (tests map it to a process).
            address = getattr(self.request.connection, "context", None)
            self.server.on_request(method, getattr(address, "address", None))
        self._task = asyncio.ensure_future(self.emulator.call(method, params, files))
        try:
            status, envelope = await self._task
        except asyncio.CancelledError:
            return  # the client went away (e.g. a cancelled long poll)
        except SimulatedTimeout:
            await self.server.hold(self.emulator.faults.timeout_hold)
            if self.request.connection and self.request.connection.stream:
                self.request.connection.stream.close()
            return
        self.write_envelope(status, envelope)

    def on_connection_close(self) -> None:
        """Stop a pending long poll whose client disconnected, so no update is lost to it."""
        if self._task is not None and not self._task.done():
            self._task.cancel()


class FileHandler(_EmulatorHandler):
    """``/file/bot<token>/<file_path>``: the bytes behind a getFile path."""

    def get(self, token: str, file_path: str) -> None:
        """Send the file's bytes or 404."""
        if not self.check_token(token):
            return
        content = self.emulator.file_content(file_path)
        if content is None:
            self.write_envelope(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        self.set_header("Content-Type", "application/octet-stream")
        self.finish(content)


class EmulatorServer:
    """Serve a ``TelegramEmulator`` over HTTP; other handlers (a web page) can share the app.

    Args:
        emulator: the emulated Telegram.
        extra_handlers: more tornado URL specs for the same Application, e.g. static files,
            a WebSocket live feed, or JSON endpoints that act as users.
    """

    def __init__(
        self,
        emulator: TelegramEmulator,
        extra_handlers: list[HandlerSpec] | None = None,
    ) -> None:
        """Prepare (but do not start) the server."""
        self.emulator = emulator
        self.extra_handlers = list(extra_handlers or [])
        self.port: int | None = None
        self.host = "127.0.0.1"
        self._http: tornado.httpserver.HTTPServer | None = None
        #: The tornado Application (handlers can be added while it runs).
        self.app: tornado.web.Application | None = None
        self._stopping = asyncio.Event()
        #: Called with (method as requested, the client's ``(host, port)``) as each Bot API
        #: request arrives, before it is answered: tests tell which process polls by it.
        self.on_request: Callable[[str, Any], None] | None = None

    def handlers(self) -> list[HandlerSpec]:
        """Return the Bot API URL specs (append to them to extend the Application)."""
        context = {"emulator": self.emulator, "server": self}
        return [
            (r"/bot([^/]+)/([A-Za-z]+)/?", BotApiHandler, context),
            (r"/file/bot([^/]+)/(.+)", FileHandler, context),
        ]

    def make_app(self) -> tornado.web.Application:
        """Build the tornado Application with the Bot API and the extra handlers."""
        return tornado.web.Application(
            [*self.handlers(), *self.extra_handlers], log_function=_log_request
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 picks a free port); return the port."""
        self.host = host
        self._stopping = asyncio.Event()
        sockets = tornado.netutil.bind_sockets(port, host)
        self.app = self.make_app()
        self._http = tornado.httpserver.HTTPServer(self.app)
        self._http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Release held calls and long polls, then close the server and its connections."""
        self._stopping.set()
        await self.emulator.aclose()
        if self._http is not None:
            self._http.stop()
            await self._http.close_all_connections()
            self._http = None

    async def hold(self, seconds: float) -> None:
        """Sleep up to ``seconds`` (a call that never answers), ending early on stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    @property
    def root_url(self) -> str:
        """Return ``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Return PTB's ``base_url`` (PTB appends the token)."""
        return f"{self.root_url}/bot"

    @property
    def base_file_url(self) -> str:
        """Return PTB's ``base_file_url`` (PTB appends the token)."""
        return f"{self.root_url}/file/bot"
