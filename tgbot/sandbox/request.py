"""A PTB request transport that talks to the emulator in-process, without any network."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

from telegram._utils.types import ODVInput
from telegram.error import TimedOut
from telegram.request import BaseRequest, RequestData

from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import SimulatedTimeout


class EmulatorRequest(BaseRequest):
    """Hand PTB's Bot API calls straight to a ``TelegramEmulator`` (fast tests, no sockets).

    Args:
        emulator: the emulated Telegram.
        read_timeout: the default read timeout PTB sees (long polling adds to it).
    """

    __slots__ = ("_read_timeout", "emulator")

    def __init__(self, emulator: TelegramEmulator, read_timeout: float | None = 5.0) -> None:
        """Bind the transport to ``emulator``."""
        self.emulator = emulator
        self._read_timeout = read_timeout

    @property
    def read_timeout(self) -> float | None:
        """Return the default read timeout in seconds."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Do nothing: there is no connection pool."""

    async def shutdown(self) -> None:
        """Do nothing: there is no connection pool."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Answer a Bot API call or a file download from the emulator."""
        path = unquote(urlsplit(url).path)
        token = self.emulator.token
        file_marker = f"/file/bot{token}/"
        if file_marker in path:
            content = self.emulator.file_content(path.split(file_marker, 1)[1])
            if content is None:
                return 404, json.dumps(
                    {"ok": False, "error_code": 404, "description": "Not Found"}
                ).encode()
            return 200, content
        head, _, api_method = path.rpartition("/")
        if not head.endswith(f"bot{token}"):
            return 401, json.dumps(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}
            ).encode()
        params: dict[str, Any] = request_data.json_parameters if request_data else {}
        files = _read_files(request_data.multipart_data) if request_data else {}
        try:
            status, envelope = await self.emulator.call(api_method, params, files)
        except SimulatedTimeout as timeout:
            raise TimedOut(
                "Timed out (sandbox fault; the action "
                + ("was" if timeout.performed else "was not")
                + " performed)"
            ) from None
        return status, json.dumps(envelope).encode()


def _read_files(multipart: dict[str, Any]) -> dict[str, tuple[str | None, bytes, str | None]]:
    files = {}
    for name, field in multipart.items():
        file_name, content, *rest = field
        if hasattr(content, "read"):
            content = content.read()
        files[name] = (file_name, bytes(content), rest[0] if rest else None)
    return files
