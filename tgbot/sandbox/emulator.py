"""An in-memory Telegram: Bot API methods with Telegram's answers, errors and updates."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import json
import math
import mimetypes
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

from tgbot.sandbox.client import ClientActions
from tgbot.sandbox.entities import EntityParseError, parse_html, plain_markdown_v2, strip_text
from tgbot.sandbox.models import (
    ApiError,
    Caps,
    Faults,
    SandboxChat,
    SandboxUser,
    SimulatedTimeout,
    StoredFile,
    StoredMessage,
    Topic,
    bad_request,
    forbidden,
)
from tgbot.sandbox.spec import ApiSpec, ParameterError, load_spec

FileTuple = tuple[str | None, bytes, str | None]
Subscriber = Callable[[dict[str, Any]], None]

MAX_TEXT = 4096
MAX_CAPTION = 1024
DELETE_WINDOW = 48 * 3600
DEFAULT_ALLOWED_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
TOPIC_COLORS = frozenset({7322096, 16766590, 13338331, 9367192, 16749490, 16478047})
SEND_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVoice",
        "sendVideo",
        "sendSticker",
        "sendAnimation",
        "sendAudio",
        "sendMediaGroup",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    }
)
MEDIA_KINDS = ("photo", "document", "voice", "video", "sticker", "animation", "audio")
_FOLDERS = {
    "photo": "photos",
    "document": "documents",
    "voice": "voice",
    "video": "videos",
    "sticker": "stickers",
    "animation": "animations",
    "audio": "music",
}
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


def _update_chat(update: dict[str, Any]) -> Any:
    """Return whose an update is (its chat, else its sender), for in-order delivery."""
    for value in update.values():
        if isinstance(value, dict):
            chat = value.get("chat") or (value.get("message") or {}).get("chat")
            if isinstance(chat, dict):
                return chat.get("id")
            sender = value.get("from")
            if isinstance(sender, dict):
                return sender.get("id")
    return None


class TelegramEmulator(ClientActions):
    """Telegram as seen by one bot: answers Bot API calls and produces updates.

    Args:
        token: the bot token; its numeric prefix is the bot's user id.
        bot_username: the bot's @username.
        bot_first_name: the bot's display name.
        strict: record unknown and mistyped parameters in ``violations``.
        caps: flood limits; ``Caps(enabled=False)`` for fast tests.
        faults: injected faults; tests may replace fields at any time.
        privacy_mode: in groups where the bot is not an admin, deliver only commands,
            replies to the bot and mentions of it, as Telegram's privacy mode does.
        callback_answer_window: seconds within which a callback query can be answered.
        closed_topic_admin_bypass: let the bot write into closed topics when it may manage
            topics (real Telegram does; off by default so ``TOPIC_CLOSED`` is reachable).
        spec: the Bot API spec; the packaged one by default.
    """

    def __init__(
        self,
        token: str = "123456:TEST",
        *,
        bot_username: str = "upay_support_bot",
        bot_first_name: str = "UPay Support",
        strict: bool = True,
        caps: Caps | None = None,
        faults: Faults | None = None,
        privacy_mode: bool = True,
        callback_answer_window: float = 15.0,
        closed_topic_admin_bypass: bool = False,
        spec: ApiSpec | None = None,
    ) -> None:
        """Create an empty Telegram with one bot."""
        self.token = token
        self.bot = SandboxUser(
            id=int(token.split(":", 1)[0]),
            first_name=bot_first_name,
            username=bot_username,
            is_bot=True,
        )
        self.strict = strict
        self.caps = caps or Caps()
        self.faults = faults or Faults()
        self.privacy_mode = privacy_mode
        self.callback_answer_window = callback_answer_window
        self.closed_topic_admin_bypass = closed_topic_admin_bypass
        self.spec = spec or load_spec()
        self.clock = 0.0
        self.users: dict[int, SandboxUser] = {}
        self.chats: dict[int, SandboxChat] = {}
        self.files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.violations: list[str] = []
        #: 429s the flood caps answered (not injected faults).
        self.cap_429s = 0
        #: Injected faults so far, by kind: "5xx", "429", "timeout", "timeout_delivered".
        self.fault_counts: collections.Counter[str] = collections.Counter()
        #: The latest injected 429s: (emulator time, "429", method, chat_id).
        self.fault_log: collections.deque[tuple[float, str, str, Any]] = collections.deque(
            maxlen=10_000
        )
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.chat_actions: list[dict[str, Any]] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.webhook: dict[str, Any] | None = None
        self.webhook_retry_delay = 0.2
        #: Connections the webhook is delivered on at once (Telegram's max_connections);
        #: above 1 each update goes on a new connection and one chat's wait for each other.
        self.webhook_connections = 1
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._delivered_upto = 0
        self._allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self._poll_generation = 0
        self._changed = asyncio.Event()
        self._closed = False
        self._webhook_task: asyncio.Task[None] | None = None
        self._queries: dict[str, dict[str, Any]] = {}
        self._subscribers: list[Subscriber] = []
        self._last_activity = time.monotonic()
        self._in_flight = 0
        self._overall_window: collections.deque[float] = collections.deque()
        #: Private chat id -> emulator time of its user's latest update to the bot.
        self._last_user_update: dict[int, float] = {}
        #: Bulk sends (those counted against the overall cap) by emulator second, for tests.
        self.bulk_per_second: collections.Counter[int] = collections.Counter()
        self._group_windows: dict[int, collections.deque[float]] = {}
        self._private_buckets: dict[int, tuple[float, float]] = {}
        self._file_counter = 0
        self._next_user_id = 1_000_001
        self._next_group_id = 1_000_000_001

    # ----------------------------------------------------------------- plumbing

    def now(self) -> float:
        """Return emulator time: wall clock plus the offset tests moved it by."""
        return time.time() + self.clock

    def advance(self, seconds: float) -> None:
        """Move the emulator clock forward by ``seconds``."""
        self.clock += seconds

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` on every visible change; return a function to unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _emit(self, event: dict[str, Any]) -> None:
        for callback in list(self._subscribers):
            callback(event)
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, timeout: float | None) -> None:
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def aclose(self) -> None:
        """Stop webhook delivery and release every pending long poll with no updates."""
        self._closed = True
        self._wake()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            await asyncio.gather(self._webhook_task, return_exceptions=True)
            self._webhook_task = None

    async def call(
        self, method: str, params: dict[str, Any], files: dict[str, FileTuple] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Answer one Bot API call as Telegram would.

        Args:
            method: the method name from the URL (case-insensitive, as in Telegram).
            params: wire-form parameters (strings; JSON for objects and arrays).
            files: multipart uploads by part name: (filename, content, mimetype).

        Returns:
            The HTTP status and the JSON envelope.

        Raises:
            SimulatedTimeout: an injected fault says the answer never arrives.
        """
        try:
            result = await self._dispatch(method, params, files or {})
        except ApiError as error:
            return error.code, error.envelope()
        return 200, {"ok": True, "result": result}

    async def _dispatch(
        self, method: str, params: dict[str, Any], files: dict[str, FileTuple]
    ) -> Any:
        canonical = self.spec.canonical(method)
        if canonical is None:
            raise ApiError(404, "Not Found")
        fields = self.spec.methods[canonical].fields
        raw = dict(params)
        for name in files:
            if name in fields and name not in raw:
                raw[name] = f"attach://{name}"
        try:
            decoded = self.spec.decode(canonical, raw)
        except ParameterError as error:
            self.calls.append((canonical, dict(raw)))
            raise ApiError(400, str(error)) from None
        if self.strict:
            self.violations.extend(
                f"{canonical}: unknown parameter {name!r}" for name in decoded.unknown
            )
            self.violations.extend(
                f"{canonical}: parameter {name!r} does not match its declared type"
                for name in decoded.mistyped
            )
        self.calls.append((canonical, decoded.params))
        if canonical == "getUpdates":
            return await self._handle(canonical, decoded.params, files)
        self._in_flight += 1
        self._last_activity = time.monotonic()
        try:
            return await self._handle(canonical, decoded.params, files)
        finally:
            self._in_flight -= 1
            self._last_activity = time.monotonic()

    async def _handle(
        self, canonical: str, params: dict[str, Any], files: dict[str, FileTuple]
    ) -> Any:
        handler = getattr(self, f"_api_{canonical}", None)
        if handler is None:
            self.violations.append(f"{canonical}: not implemented by the sandbox")
            raise bad_request(f"method {canonical} is not supported by the sandbox")
        faults = self.faults
        if faults.applies_to(canonical):
            if faults.latency:
                await asyncio.sleep(faults.latency)
            if faults.chats and _int_or_none(params.get("chat_id")) not in faults.chats:
                return await self._run(handler, params, files)
            roll = faults.rng.random
            if faults.rate_5xx and roll() < faults.rate_5xx:
                self.fault_counts["5xx"] += 1
                raise ApiError(500, "Internal Server Error")
            if faults.rate_429 and roll() < faults.rate_429:
                self.fault_counts["429"] += 1
                self.fault_log.append((self.now(), "429", canonical, params.get("chat_id")))
                raise ApiError(
                    429, f"Too Many Requests: retry after {faults.retry_after}", faults.retry_after
                )
            if faults.rate_timeout and roll() < faults.rate_timeout:
                performed = roll() < faults.timeout_after_delivery
                self.fault_counts["timeout_delivered" if performed else "timeout"] += 1
                if performed:
                    with contextlib.suppress(ApiError):
                        await self._run(handler, params, files)
                raise SimulatedTimeout(performed)
        return await self._run(handler, params, files)

    @staticmethod
    async def _run(handler: Callable[..., Any], params: dict[str, Any], files: Any) -> Any:
        result = handler(params, files)
        if inspect.isawaitable(result):
            result = await result
        return result

    # ----------------------------------------------------------------- updates

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        source = (payload.get("message") or {}) if kind == "callback_query" else payload
        chat = source.get("chat") or {}
        if chat.get("type") == "private":
            self._last_user_update[chat["id"]] = self.now()
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self._updates.append(update)
        self._wake()
        return update

    def pending_updates(self) -> int:
        """Return how many updates the bot has not confirmed yet."""
        return len(self._updates)

    def all_fetched(self) -> bool:
        """Return whether every update produced so far was handed to the bot."""
        return all(update["update_id"] <= self._delivered_upto for update in self._updates)

    async def wait_fetched(self, timeout: float = 5.0) -> None:
        """Wait until the bot has fetched (getUpdates or webhook) every update so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.all_fetched():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"bot did not fetch {self.pending_updates()} update(s)")
            await self._wait_change(remaining)

    async def settle(self, quiet: float = 0.05, timeout: float = 5.0) -> None:
        """Wait until the bot fetched every update and then made no Bot API call for a while.

        Args:
            quiet: seconds without any Bot API call in flight, counted from the last call or
                update delivery; raise it if handlers await slow non-Telegram work.
            timeout: seconds before giving up with ``TimeoutError``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Always let the bot run first: a quiet emulator may only mean that the bot is still
        # between calls, and a caller polling with settle() must not keep it from running.
        await asyncio.sleep(0)
        await self.wait_fetched(timeout)
        while True:
            idle = time.monotonic() - self._last_activity
            if idle >= quiet and self._in_flight == 0 and self.all_fetched():
                return
            if loop.time() >= deadline:
                raise TimeoutError("the bot kept calling the Bot API")
            await asyncio.sleep(max(quiet - idle, 0.005))

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self._updates = self._updates[offset:]
        else:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

    def _take(self, limit: int, allowed: frozenset[str]) -> list[dict[str, Any]]:
        batch = []
        for update in list(self._updates):
            kind = next(key for key in update if key != "update_id")
            if kind not in allowed:
                self._updates.remove(update)
                continue
            batch.append(update)
            if len(batch) >= limit:
                break
        return batch

    def _mark_delivered(self, batch: list[dict[str, Any]]) -> None:
        if batch:
            self._delivered_upto = max(self._delivered_upto, batch[-1]["update_id"])
            self._last_activity = time.monotonic()
            self._wake()

    @staticmethod
    def _allowed(value: Any) -> frozenset[str]:
        return frozenset(value) if value else DEFAULT_ALLOWED_UPDATES

    async def _api_getUpdates(self, p: dict[str, Any], files: Any) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_ACTIVE)
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an older long poll ends with 409
        if p.get("offset"):
            self._confirm(p["offset"])
        if "allowed_updates" in p:
            self._allowed_updates = self._allowed(p["allowed_updates"])
        limit = min(max(p.get("limit") or 100, 1), 100)
        timeout = max(p.get("timeout") or 0, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            batch = self._take(limit, self._allowed_updates)
            if batch:
                self._mark_delivered(batch)
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closed:
                return []
            await self._wait_change(remaining)
            if self._poll_generation != generation:
                raise ApiError(409, TERMINATED)

    def _api_setWebhook(self, p: dict[str, Any], files: Any) -> bool:
        url = p["url"]
        if not url:
            return self._api_deleteWebhook(p, files)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: HTTPS url must be provided for webhook")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {
            "url": url,
            "secret_token": p.get("secret_token"),
            "max_connections": p.get("max_connections") or 40,
            "allowed_updates": self._allowed(p.get("allowed_updates")),
            "last_error_date": None,
            "last_error_message": None,
        }
        self._poll_generation += 1
        self._wake()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_loop())
        return True

    def _api_deleteWebhook(self, p: dict[str, Any], files: Any) -> bool:
        if p.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        return True

    def _api_getWebhookInfo(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook is not None:
            info["url"] = self.webhook["url"]
            info["max_connections"] = self.webhook["max_connections"]
            info["allowed_updates"] = sorted(self.webhook["allowed_updates"])
            if self.webhook["last_error_date"]:
                info["last_error_date"] = self.webhook["last_error_date"]
                info["last_error_message"] = self.webhook["last_error_message"]
        return info

    async def _webhook_loop(self) -> None:
        if self.webhook_connections > 1:
            await self._webhook_loop_parallel()
            return
        async with httpx.AsyncClient(timeout=10.0) as client:
            while self.webhook is not None and not self._closed:
                hook = self.webhook
                batch = self._take(1, hook["allowed_updates"])
                if not batch:
                    await self._wait_change(None)
                    continue
                update = batch[0]
                if await self._post_update(client, hook, update):
                    self._mark_delivered([update])
                    self._confirm(update["update_id"] + 1)
                    self._wake()
                else:
                    await asyncio.sleep(self.webhook_retry_delay)

    async def _post_update(
        self, client: httpx.AsyncClient, hook: dict[str, Any], update: dict[str, Any]
    ) -> bool:
        """POST one update to the webhook; return whether the bot answered 2xx."""
        headers = {"Content-Type": "application/json"}
        if hook["secret_token"]:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
        try:
            response = await client.post(hook["url"], content=json.dumps(update), headers=headers)
            error = (
                None
                if 200 <= response.status_code < 300
                else f"Wrong response from the webhook: {response.status_code} "
                f"{response.reason_phrase}"
            )
        except httpx.HTTPError as exc:
            error = f"Connection failed: {exc.__class__.__name__}"
        if error is None and self.faults.webhook_answers_lost > 0:
            self.faults.webhook_answers_lost -= 1
            error = "Connection failed: the answer was lost"
        if error is not None:
            hook["last_error_date"] = int(self.now())
            hook["last_error_message"] = error
        return error is None

    async def _webhook_loop_parallel(self) -> None:
        """Deliver on up to ``webhook_connections`` connections at once, each update on a
        new connection (several workers behind one port each get some), one chat's
        updates one at a time and in order."""
        in_flight: set[int] = set()
        busy: set[Any] = set()
        tasks: set[asyncio.Task[None]] = set()

        async def deliver(client: httpx.AsyncClient, hook: dict[str, Any], update: dict) -> None:
            chat = _update_chat(update)
            try:
                while not await self._post_update(client, hook, update):
                    if self.webhook is not hook or self._closed:
                        return
                    await asyncio.sleep(self.webhook_retry_delay)
                self._updates = [u for u in self._updates if u is not update]
                self._mark_delivered([update])
            finally:
                in_flight.discard(update["update_id"])
                busy.discard(chat)
                self._wake()

        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
            try:
                while self.webhook is not None and not self._closed:
                    hook = self.webhook
                    picked = None
                    if len(in_flight) < self.webhook_connections:
                        for update in self._take(len(self._updates) or 1, hook["allowed_updates"]):
                            chat = _update_chat(update)
                            if update["update_id"] not in in_flight and chat not in busy:
                                picked = update
                                break
                    if picked is None:
                        await self._wait_change(None)
                        continue
                    in_flight.add(picked["update_id"])
                    busy.add(_update_chat(picked))
                    task = asyncio.get_running_loop().create_task(deliver(client, hook, picked))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            finally:
                for task in list(tasks):
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    # ----------------------------------------------------------------- bot identity

    def _api_getMe(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        return {
            **self.bot.to_dict(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _api_logOut(self, p: dict[str, Any], files: Any) -> bool:
        return True

    def _api_close(self, p: dict[str, Any], files: Any) -> bool:
        return True

    @staticmethod
    def _scope_key(scope: dict[str, Any] | None) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    def _api_setMyCommands(self, p: dict[str, Any], files: Any) -> bool:
        commands = p["commands"]
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            name = command.get("command", "")
            if not (1 <= len(name) <= 32) or not all(
                c.islower() or c.isdigit() or c == "_" for c in name
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not (1 <= len(command.get("description", "")) <= 256):
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        language = self._language(p)
        self.commands[(self._scope_key(p.get("scope")), language)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        self._emit({"type": "commands", "language_code": language})
        return True

    def _api_getMyCommands(self, p: dict[str, Any], files: Any) -> list[dict[str, Any]]:
        return self.commands.get((self._scope_key(p.get("scope")), self._language(p)), [])

    def _api_deleteMyCommands(self, p: dict[str, Any], files: Any) -> bool:
        self.commands.pop((self._scope_key(p.get("scope")), self._language(p)), None)
        return True

    @staticmethod
    def _language(p: dict[str, Any]) -> str:
        language = p.get("language_code") or ""
        if language and not (len(language) == 2 and language.isalpha()):
            raise bad_request("invalid language code specified")
        return language

    def _set_text_setting(self, store: dict[str, str], p: dict[str, Any], key: str, limit: int):
        value = p.get(key) or ""
        if len(value) > limit:
            raise bad_request(f"{key} is too long")
        store[self._language(p)] = value
        return True

    def _api_setMyDescription(self, p: dict[str, Any], files: Any) -> bool:
        return self._set_text_setting(self.descriptions, p, "description", 512)

    def _api_getMyDescription(self, p: dict[str, Any], files: Any) -> dict[str, str]:
        return {"description": self.descriptions.get(self._language(p), "")}

    def _api_setMyShortDescription(self, p: dict[str, Any], files: Any) -> bool:
        return self._set_text_setting(self.short_descriptions, p, "short_description", 120)

    def _api_getMyShortDescription(self, p: dict[str, Any], files: Any) -> dict[str, str]:
        return {"short_description": self.short_descriptions.get(self._language(p), "")}

    def _api_setMyName(self, p: dict[str, Any], files: Any) -> bool:
        return self._set_text_setting(self.names, p, "name", 64)

    def _api_getMyName(self, p: dict[str, Any], files: Any) -> dict[str, str]:
        return {"name": self.names.get(self._language(p)) or self.bot.first_name}

    def _api_setChatMenuButton(self, p: dict[str, Any], files: Any) -> bool:
        self.menu_buttons[p.get("chat_id")] = p.get("menu_button") or {"type": "default"}
        return True

    def _api_getChatMenuButton(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        chat_id = p.get("chat_id")
        return self.menu_buttons.get(chat_id) or self.menu_buttons.get(None) or {"type": "commands"}

    # ----------------------------------------------------------------- chats

    def _find_chat(self, chat_id: Any) -> SandboxChat:
        if isinstance(chat_id, str):
            if chat_id.lstrip("-").isdigit():
                chat_id = int(chat_id)
            else:
                name = chat_id.lstrip("@").lower()
                for chat in self.chats.values():
                    if chat.username and chat.username.lower() == name:
                        return chat
                raise bad_request("chat not found")
        chat = self.chats.get(chat_id)
        if chat is None:
            user = self.users.get(chat_id)
            if user is not None and not user.is_bot:
                raise forbidden("bot can't initiate conversation with a user")
            raise bad_request("chat not found")
        return chat

    def _writable_chat(self, chat_id: Any) -> SandboxChat:
        chat = self._find_chat(chat_id)
        self._check_access(chat, sending=True)
        return chat

    def _check_access(self, chat: SandboxChat, sending: bool) -> None:
        if chat.type == "private":
            user = self.users[chat.user_id or chat.id]
            if user.deactivated:
                raise forbidden("user is deactivated")
            if sending and user.blocked_bot:
                raise forbidden("bot was blocked by the user")
            return
        kind = "supergroup" if chat.type == "supergroup" else "group"
        if chat.bot_status == "kicked":
            raise forbidden(f"bot was kicked from the {kind} chat")
        if not chat.bot_is_member:
            raise forbidden(f"bot is not a member of the {kind} chat")

    def chat_summary(self, chat: SandboxChat) -> dict[str, Any]:
        """Return the short ``Chat`` object carried inside messages and updates."""
        if chat.type == "private":
            user = self.users[chat.id]
            data: dict[str, Any] = {"id": chat.id, "type": "private", "first_name": user.first_name}
            if user.last_name:
                data["last_name"] = user.last_name
            if user.username:
                data["username"] = user.username
            return data
        data = {"id": chat.id, "type": chat.type, "title": chat.title}
        if chat.username:
            data["username"] = chat.username
        if chat.is_forum:
            data["is_forum"] = True
        return data

    def _api_getChat(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        info = {
            **self.chat_summary(chat),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        if chat.pinned_message_id and chat.pinned_message_id in chat.messages:
            info["pinned_message"] = chat.messages[chat.pinned_message_id].data
        return info

    def chat_member(self, chat: SandboxChat, user: SandboxUser) -> dict[str, Any]:
        """Return the ``ChatMember`` object of ``user`` in ``chat``."""
        if user.id == self.bot.id:
            status, rights = chat.bot_status, chat.bot_rights
        elif chat.type == "private":
            status, rights = ("member" if user.id == chat.id else "left"), {}
        else:
            status = chat.members.get(user.id, "left")
            rights = dict.fromkeys(self._admin_right_names(), True)
        data: dict[str, Any] = {"status": status, "user": user.to_dict()}
        if status == "administrator":
            for name in self._admin_right_names():
                data[name] = bool(rights.get(name, name == "can_manage_chat"))
            data["can_be_edited"] = False
            data["is_anonymous"] = False
        elif status == "creator":
            data["is_anonymous"] = False
        elif status == "kicked":
            data["until_date"] = 0
        return data

    def _admin_right_names(self) -> list[str]:
        fields = self.spec.types.get("ChatMemberAdministrator", [])
        return [
            f["name"]
            for f in fields
            if f["types"] == ["Boolean"] and f["name"] not in ("can_be_edited", "is_anonymous")
        ]

    def _user(self, user_id: Any) -> SandboxUser:
        user = self.bot if user_id == self.bot.id else self.users.get(user_id)
        if user is None:
            raise bad_request("PARTICIPANT_ID_INVALID")
        return user

    def _api_getChatMember(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        return self.chat_member(chat, self._user(p["user_id"]))

    def _api_getChatAdministrators(self, p: dict[str, Any], files: Any) -> list[dict[str, Any]]:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        admins = [
            self.chat_member(chat, self.users[uid])
            for uid, status in chat.members.items()
            if status in ("creator", "administrator")
        ]
        if chat.bot_is_admin:
            admins.append(self.chat_member(chat, self.bot))
        return admins

    def _api_getChatMemberCount(self, p: dict[str, Any], files: Any) -> int:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        if chat.type == "private":
            return 2
        people = sum(
            1 for s in chat.members.values() if s in ("creator", "administrator", "member")
        )
        return people + (1 if chat.bot_is_member else 0)

    def _api_leaveChat(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._find_chat(p["chat_id"])
        if chat.type == "private":
            raise bad_request("chat member status can't be changed in private chats")
        self._check_access(chat, sending=False)
        self.set_bot_status(chat, "left", by=self.bot)
        return True

    def set_bot_status(
        self,
        chat: SandboxChat,
        status: str,
        by: SandboxUser,
        rights: dict[str, bool] | None = None,
    ) -> None:
        """Change the bot's membership in ``chat`` and send the bot a ``my_chat_member``."""
        old = self.chat_member(chat, self.bot)
        chat.bot_status = status
        if rights is not None:
            chat.bot_rights = dict(rights)
        new = self.chat_member(chat, self.bot)
        self._enqueue(
            "my_chat_member",
            {
                "chat": self.chat_summary(chat),
                "from": by.to_dict(),
                "date": int(self.now()),
                "old_chat_member": old,
                "new_chat_member": new,
            },
        )
        self._emit({"type": "member", "chat_id": chat.id, "status": status})

    def _group_for_admin(self, p: dict[str, Any], right: str, denied: str) -> SandboxChat:
        chat = self._find_chat(p["chat_id"])
        if chat.type == "private":
            raise bad_request("method is available for supergroup and channel chats only")
        self._check_access(chat, sending=False)
        if not chat.bot_can(right):
            raise bad_request(denied)
        return chat

    def _api_banChatMember(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._group_for_admin(
            p, "can_restrict_members", "not enough rights to restrict/unrestrict chat member"
        )
        user = self._user(p["user_id"])
        chat.members[user.id] = "kicked"
        if p.get("revoke_messages"):
            for stored in chat.messages.values():
                if stored.sender_id == user.id:
                    stored.deleted = True
        self._emit({"type": "member", "chat_id": chat.id, "user_id": user.id, "status": "kicked"})
        return True

    def _api_unbanChatMember(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._group_for_admin(
            p, "can_restrict_members", "not enough rights to restrict/unrestrict chat member"
        )
        user = self._user(p["user_id"])
        status = chat.members.get(user.id, "left")
        # Without only_if_banned Telegram guarantees the user is out of the chat afterwards.
        if status == "kicked" or not p.get("only_if_banned"):
            chat.members[user.id] = "left"
        return True

    # ----------------------------------------------------------------- topics

    def _forum(self, p: dict[str, Any]) -> SandboxChat:
        chat = self._writable_chat(p["chat_id"])
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        return chat

    def _topic(self, chat: SandboxChat, thread_id: int) -> Topic:
        topic = chat.topics.get(thread_id)
        if topic is None or topic.deleted:
            raise bad_request("TOPIC_ID_INVALID")
        return topic

    def _may_manage(self, chat: SandboxChat, topic: Topic) -> None:
        if not (chat.bot_can("can_manage_topics") or topic.creator_id == self.bot.id):
            raise bad_request("not enough rights to manage topics")

    def create_topic(
        self,
        chat: SandboxChat,
        name: str,
        creator: SandboxUser,
        icon_color: int = 7322096,
        icon_custom_emoji_id: str | None = None,
    ) -> tuple[Topic, StoredMessage]:
        """Create a forum topic and its ``forum_topic_created`` service message."""
        message_id = chat.allocate_message_id()
        topic = Topic(message_id, name, icon_color, icon_custom_emoji_id, creator_id=creator.id)
        chat.topics[message_id] = topic
        created: dict[str, Any] = {"name": name, "icon_color": icon_color}
        if icon_custom_emoji_id:
            created["icon_custom_emoji_id"] = icon_custom_emoji_id
        data = {
            "message_id": message_id,
            "from": creator.to_dict(),
            "chat": self.chat_summary(chat),
            "date": int(self.now()),
            "message_thread_id": message_id,
            "is_topic_message": True,
            "forum_topic_created": created,
        }
        stored = StoredMessage(data=data, sender_id=creator.id)
        chat.messages[message_id] = stored
        self._emit({"type": "topic", "chat_id": chat.id, "topic": topic.to_dict()})
        self._emit({"type": "message", "chat_id": chat.id, "message": data})
        return topic, stored

    def _api_createForumTopic(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        chat = self._forum(p)
        if not chat.bot_can("can_manage_topics"):
            raise bad_request("not enough rights to create a topic")
        name = p["name"]
        if not (1 <= len(name) <= 128):
            raise bad_request("TOPIC_NAME_INVALID")
        color = p.get("icon_color") or 7322096
        if color not in TOPIC_COLORS:
            raise bad_request("TOPIC_ICON_COLOR_INVALID")
        if self.caps.edits_count:
            self.check_caps(chat)  # a topic starts with a service message: it counts
        topic, _ = self.create_topic(chat, name, self.bot, color, p.get("icon_custom_emoji_id"))
        return topic.to_dict()

    def topic_service(
        self, chat: SandboxChat, topic: Topic, actor: SandboxUser, content: dict[str, Any]
    ) -> StoredMessage:
        """Store a topic service message (edited/closed/reopened) sent by ``actor``."""
        data = self._base_message(chat, actor, topic.thread_id, None)
        data.update(content)
        stored = StoredMessage(data=data, sender_id=actor.id)
        chat.messages[data["message_id"]] = stored
        self._emit({"type": "topic", "chat_id": chat.id, "topic": topic.to_dict()})
        self._emit({"type": "message", "chat_id": chat.id, "message": data})
        return stored

    def _api_editForumTopic(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p["message_thread_id"])
        self._may_manage(chat, topic)
        edited: dict[str, Any] = {}
        name = p.get("name")
        if name is not None:
            if not (1 <= len(name) <= 128):
                raise bad_request("TOPIC_NAME_INVALID")
            if name != topic.name:
                edited["name"] = name
        emoji = p.get("icon_custom_emoji_id")
        if emoji is not None and emoji != (topic.icon_custom_emoji_id or ""):
            edited["icon_custom_emoji_id"] = emoji
        if not edited:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.name = edited.get("name", topic.name)
        if "icon_custom_emoji_id" in edited:
            topic.icon_custom_emoji_id = edited["icon_custom_emoji_id"] or None
        self.topic_service(chat, topic, self.bot, {"forum_topic_edited": edited})
        return True

    def _set_topic_closed(self, p: dict[str, Any], closed: bool) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p["message_thread_id"])
        self._may_manage(chat, topic)
        if topic.closed == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        key = "forum_topic_closed" if closed else "forum_topic_reopened"
        self.topic_service(chat, topic, self.bot, {key: {}})
        return True

    def _api_closeForumTopic(self, p: dict[str, Any], files: Any) -> bool:
        return self._set_topic_closed(p, True)

    def _api_reopenForumTopic(self, p: dict[str, Any], files: Any) -> bool:
        return self._set_topic_closed(p, False)

    def delete_topic(self, chat: SandboxChat, topic: Topic) -> None:
        """Delete a topic with every message in it."""
        topic.deleted = True
        for stored in chat.messages.values():
            if stored.thread_id == topic.thread_id and not stored.deleted:
                stored.deleted = True
                self._emit({"type": "delete", "chat_id": chat.id, "message_id": stored.message_id})
        self._emit({"type": "topic", "chat_id": chat.id, "topic": topic.to_dict()})

    def _api_deleteForumTopic(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p["message_thread_id"])
        if not chat.bot_can("can_delete_messages"):
            raise bad_request("not enough rights to manage topics")
        self.delete_topic(chat, topic)
        return True

    def _api_unpinAllForumTopicMessages(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._forum(p)
        topic = self._topic(chat, p["message_thread_id"])
        for stored in chat.messages.values():
            if stored.thread_id == topic.thread_id:
                stored.pinned = False
        return True

    # ----------------------------------------------------------------- limits

    def check_caps(self, chat: SandboxChat, count: int = 1) -> None:
        """Raise 429 if sending ``count`` messages to ``chat`` now would exceed a cap."""
        caps = self.caps
        if not caps.enabled:
            return
        now = self.now()
        overall = self._overall_window
        while overall and overall[0] <= now - 1:
            overall.popleft()
        waits = []
        bulk = caps.reply_window <= 0 or (
            chat.type == "private"
            and now - self._last_user_update.get(chat.id, -math.inf) > caps.reply_window
        )
        if bulk and len(overall) + count > caps.overall_per_second:
            waits.append(overall[0] + 1 - now if overall else 1)
        bucket = None
        if chat.type == "private":
            tokens, last = self._private_buckets.get(chat.id, (float(caps.private_chat_burst), now))
            tokens = min(
                float(caps.private_chat_burst),
                tokens + (now - last) * caps.per_private_chat_per_second,
            )
            if tokens < count:
                waits.append((count - tokens) / caps.per_private_chat_per_second)
            bucket = tokens
        else:
            window = self._group_windows.setdefault(chat.id, collections.deque())
            span = caps.group_window
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) + count > caps.per_group_per_minute:
                waits.append(window[0] + span - now if window else span)
        if waits:
            retry = max(1, math.ceil(max(waits)))
            self.cap_429s += 1
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry)
        if bulk:
            overall.extend([now] * count)
            self.bulk_per_second[int(now)] += count
        if bucket is not None:
            self._private_buckets[chat.id] = (bucket - count, now)
        else:
            self._group_windows[chat.id].extend([now] * count)

    # ----------------------------------------------------------------- messages

    def _format(
        self,
        text: str | None,
        parse_mode: str | None,
        entities: list[dict[str, Any]] | None,
        caption: bool = False,
    ) -> tuple[str, list[dict[str, Any]]]:
        text = text or ""
        mode = (parse_mode or "").lower()
        if mode == "html":
            try:
                text, parsed = parse_html(text)
            except EntityParseError as error:
                raise bad_request(f"can't parse entities: {error}") from None
        elif mode in ("markdownv2", "markdown"):
            text, parsed = plain_markdown_v2(text), []
        elif mode:
            raise bad_request(f"unsupported parse_mode {parse_mode!r}")
        else:
            parsed = list(entities or [])
        text, parsed = strip_text(text, parsed)
        if caption:
            if len(text) > MAX_CAPTION:
                raise bad_request("message caption is too long")
        else:
            if not text:
                raise bad_request("message text is empty")
            if len(text) > MAX_TEXT:
                raise bad_request("message is too long")
        return text, parsed

    def _markup(
        self, markup: Any, chat: SandboxChat | None = None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Validate reply_markup; return (inline markup for the message, reply keyboard)."""
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request("can't parse inline keyboard markup JSON object")
            for row in rows:
                for button in row:
                    self._check_button(button)
            return ({"inline_keyboard": rows} if any(rows) else None), None
        if "keyboard" in markup or "remove_keyboard" in markup or "force_reply" in markup:
            return None, markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _check_button(button: Any) -> None:
        if not isinstance(button, dict) or not button.get("text"):
            raise bad_request("can't parse inline keyboard button: Text is empty")
        actions = [key for key in _BUTTON_ACTIONS if key in button]
        if not actions:
            raise bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the "
                "inline keyboard"
            )
        data = button.get("callback_data")
        if data is not None and not (1 <= len(str(data).encode("utf-8")) <= 64):
            raise bad_request("BUTTON_DATA_INVALID")
        url = button.get("url")
        if url is not None and not str(url).startswith(("http://", "https://", "tg://")):
            raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")

    def _thread(self, chat: SandboxChat, thread_id: int | None) -> int | None:
        if not thread_id:
            return None
        if chat.is_forum:
            topic = chat.topics.get(thread_id)
            if topic is None or topic.deleted:
                raise bad_request("message thread not found")
            if topic.closed and not (
                self.closed_topic_admin_bypass and chat.bot_can("can_manage_topics")
            ):
                raise bad_request("TOPIC_CLOSED")
            return thread_id
        root = chat.messages.get(thread_id)
        if root is None or root.deleted:
            raise bad_request("message thread not found")
        return thread_id

    def _reply_target(
        self, chat: SandboxChat, p: dict[str, Any]
    ) -> tuple[StoredMessage | None, dict[str, Any] | None]:
        reply = p.get("reply_parameters")
        if not reply:
            return None, None
        target_chat = chat
        if reply.get("chat_id") not in (None, chat.id):
            target_chat = self._find_chat(reply["chat_id"])
        target = target_chat.messages.get(reply.get("message_id"))
        if target is None or target.deleted:
            if reply.get("allow_sending_without_reply"):
                return None, None
            raise bad_request("message to be replied not found")
        quote = None
        if reply.get("quote"):
            quote = {"text": reply["quote"], "position": reply.get("quote_position", 0)}
        return target, quote

    def _base_message(
        self,
        chat: SandboxChat,
        sender: SandboxUser,
        thread_id: int | None,
        reply_to: StoredMessage | None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": chat.allocate_message_id(),
            "from": sender.to_dict(),
            "chat": self.chat_summary(chat),
            "date": int(self.now()),
        }
        if thread_id:
            data["message_thread_id"] = thread_id
            if chat.is_forum:
                data["is_topic_message"] = True
        root = reply_to
        if root is None and thread_id and chat.is_forum:
            root = chat.messages.get(thread_id)  # topic messages reply to the creation message
        if root is not None:
            quoted = {k: v for k, v in root.data.items() if k != "reply_to_message"}
            data["reply_to_message"] = quoted
        return data

    def store_message(
        self,
        chat: SandboxChat,
        sender: SandboxUser,
        content: dict[str, Any],
        *,
        thread_id: int | None = None,
        reply_to: StoredMessage | None = None,
        markup: dict[str, Any] | None = None,
        reply_keyboard: dict[str, Any] | None = None,
    ) -> StoredMessage:
        """Store a new message in ``chat`` and tell subscribers; return it."""
        if reply_to is not None and not thread_id and reply_to.thread_id and chat.is_forum:
            thread_id = reply_to.thread_id
        data = self._base_message(chat, sender, thread_id, reply_to)
        data.update(content)
        if markup:
            data["reply_markup"] = markup
        stored = StoredMessage(data=data, sender_id=sender.id, reply_keyboard=reply_keyboard)
        chat.messages[data["message_id"]] = stored
        if reply_keyboard is not None:
            if "keyboard" in reply_keyboard:
                chat.reply_keyboard = reply_keyboard
            elif "remove_keyboard" in reply_keyboard:
                chat.reply_keyboard = None
        self._emit({"type": "message", "chat_id": chat.id, "message": data})
        return stored

    def _prepare_send(
        self, p: dict[str, Any], count: int = 1
    ) -> tuple[SandboxChat, int | None, StoredMessage | None]:
        chat = self._writable_chat(p["chat_id"])
        if chat.type == "private" and p.get("message_thread_id"):
            raise bad_request("message thread not found")
        target, _ = self._reply_target(chat, p)
        thread_id = p.get("message_thread_id")
        if not thread_id and target is not None and chat.is_forum:
            thread_id = target.thread_id
        thread_id = self._thread(chat, thread_id)
        self.check_caps(chat, count)
        return chat, thread_id, target

    def _api_sendMessage(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        text, entities = self._format(p["text"], p.get("parse_mode"), p.get("entities"))
        markup, keyboard = self._markup(p.get("reply_markup"))
        chat, thread_id, target = self._prepare_send(p)
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        if p.get("link_preview_options"):
            content["link_preview_options"] = p["link_preview_options"]
        stored = self.store_message(
            chat,
            self.bot,
            content,
            thread_id=thread_id,
            reply_to=target,
            markup=markup,
            reply_keyboard=keyboard,
        )
        return stored.data

    # ----------------------------------------------------------------- files

    def add_file(
        self,
        kind: str,
        content: bytes,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        """Store uploaded bytes and return the file with fresh file ids and path."""
        self._file_counter += 1
        number = self._file_counter
        unique = f"AQAD{number:04d}{secrets.token_hex(4)}"
        file_id = f"{kind[:2].upper()}ACAgIAAxk{number:04d}{secrets.token_hex(8)}"
        extension = (
            file_name.rsplit(".", 1)[-1]
            if file_name and "." in file_name
            else (mimetypes.guess_extension(mime_type or "") or ".bin").lstrip(".")
        )
        if kind == "photo":
            extension = "jpg"
        path = f"{_FOLDERS.get(kind, 'documents')}/file_{number}.{extension}"
        stored = StoredFile(file_id, unique, content, path, file_name, mime_type)
        self.files[file_id] = stored
        self._files_by_path[path] = stored
        return stored

    def file_content(self, file_path: str) -> bytes | None:
        """Return the bytes behind a ``getFile`` path, or None if there is no such file."""
        stored = self._files_by_path.get(file_path)
        return stored.content if stored else None

    def _input_file(self, kind: str, value: Any, files: dict[str, FileTuple]) -> StoredFile:
        if isinstance(value, str) and value.startswith("attach://"):
            part = files.get(value[len("attach://") :])
            if part is None:
                raise bad_request(f"there is no {kind} in the request")
            name, content, mime = part
            if hasattr(content, "read"):
                content = content.read()
            return self.add_file(kind, bytes(content), name, mime)
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return self.add_file(kind, b"", value.rsplit("/", 1)[-1] or None, None)
        raise bad_request("wrong file identifier/HTTP URL specified")

    @staticmethod
    def media_object(kind: str, stored: StoredFile) -> Any:
        """Return the Telegram media object (PhotoSize list, Document...) for a stored file."""
        base = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }
        if kind == "photo":
            width, height = _image_size(stored.content)
            return [{**base, "width": width, "height": height}]
        if kind == "sticker":
            return {
                **base,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        extra: dict[str, Any] = {}
        if kind in ("video", "animation"):
            extra.update(width=640, height=360, duration=1)
        if kind in ("voice", "audio"):
            extra["duration"] = 1
        if stored.file_name and kind != "voice":
            extra["file_name"] = stored.file_name
        if stored.mime_type:
            extra["mime_type"] = stored.mime_type
        return {**base, **extra}

    def _media_content(
        self, kind: str, stored: StoredFile, caption: str, entities: list[dict[str, Any]]
    ) -> dict[str, Any]:
        content: dict[str, Any] = {kind: self.media_object(kind, stored)}
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
        return content

    def _send_media(self, kind: str, p: dict[str, Any], files: dict[str, FileTuple]):
        caption, entities = ("", [])
        if kind != "sticker":
            caption, entities = self._format(
                p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
            )
        markup, keyboard = self._markup(p.get("reply_markup"))
        chat, thread_id, target = self._prepare_send(p)
        stored_file = self._input_file(kind, p[kind], files)
        stored = self.store_message(
            chat,
            self.bot,
            self._media_content(kind, stored_file, caption, entities),
            thread_id=thread_id,
            reply_to=target,
            markup=markup,
            reply_keyboard=keyboard,
        )
        return stored.data

    def _api_sendPhoto(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        return self._send_media("photo", p, files)

    def _api_sendDocument(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        return self._send_media("document", p, files)

    def _api_sendVoice(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        return self._send_media("voice", p, files)

    def _api_sendVideo(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        return self._send_media("video", p, files)

    def _api_sendAnimation(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        return self._send_media("animation", p, files)

    def _api_sendAudio(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        return self._send_media("audio", p, files)

    def _api_sendSticker(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        return self._send_media("sticker", p, files)

    def _api_sendMediaGroup(self, p: dict[str, Any], files: Any) -> list[dict[str, Any]]:
        media = p["media"]
        if not isinstance(media, list) or not (2 <= len(media) <= 10):
            raise bad_request("wrong number of messages in the media group")
        prepared = []
        for item in media:
            kind = item.get("type")
            if kind not in ("photo", "video", "document", "audio"):
                raise bad_request(f"unsupported media type {kind!r} in the media group")
            caption, entities = self._format(
                item.get("caption"), item.get("parse_mode"), item.get("caption_entities"), True
            )
            prepared.append((kind, item.get("media"), caption, entities))
        chat, thread_id, target = self._prepare_send(p, count=len(prepared))
        group_id = str(secrets.randbits(62))
        messages = []
        for kind, reference, caption, entities in prepared:
            stored_file = self._input_file(kind, reference, files)
            content = self._media_content(kind, stored_file, caption, entities)
            content["media_group_id"] = group_id
            stored = self.store_message(
                chat, self.bot, content, thread_id=thread_id, reply_to=target
            )
            messages.append(stored.data)
        return messages

    def _api_sendChatAction(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._writable_chat(p["chat_id"])
        if p["action"] not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        thread_id = self._thread(chat, p.get("message_thread_id"))
        action = {"chat_id": chat.id, "action": p["action"], "thread_id": thread_id}
        self.chat_actions.append(action)
        self._emit({"type": "chat_action", **action})
        return True

    def _api_getFile(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        stored = self.files.get(p["file_id"])
        if stored is None:
            raise bad_request("invalid file_id")
        if len(stored.content) > 20 * 1024 * 1024:
            raise bad_request("file is too big")
        return stored.to_file()

    # ----------------------------------------------------------------- copy / forward

    def _source(self, p: dict[str, Any], message_id: int, what: str) -> StoredMessage:
        source_chat = self._find_chat(p["from_chat_id"])
        stored = source_chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise bad_request(f"message to {what} not found")
        return stored

    _COPY_KEYS = (
        "text",
        "entities",
        "caption",
        "caption_entities",
        "contact",
        "location",
        "venue",
        "poll",
        "dice",
        "link_preview_options",
        *MEDIA_KINDS,
    )

    def _copy_content(self, stored: StoredMessage, p: dict[str, Any]) -> dict[str, Any]:
        if stored.is_service:
            raise bad_request("message can't be copied")
        content = {k: v for k, v in stored.data.items() if k in self._COPY_KEYS}
        if "caption" in p and any(kind in content for kind in MEDIA_KINDS):
            caption, entities = self._format(
                p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
            )
            content.pop("caption", None)
            content.pop("caption_entities", None)
            if caption:
                content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return content

    def _api_copyMessage(self, p: dict[str, Any], files: Any) -> dict[str, int]:
        source = self._source(p, p["message_id"], "copy")
        content = self._copy_content(source, p)
        markup, keyboard = self._markup(p.get("reply_markup"))
        chat, thread_id, target = self._prepare_send(p)
        stored = self.store_message(
            chat,
            self.bot,
            content,
            thread_id=thread_id,
            reply_to=target,
            markup=markup,
            reply_keyboard=keyboard,
        )
        return {"message_id": stored.message_id}

    def _api_copyMessages(self, p: dict[str, Any], files: Any) -> list[dict[str, int]]:
        sources = []
        for message_id in sorted(p["message_ids"]):
            try:
                sources.append(self._source(p, message_id, "copy"))
            except ApiError:
                continue
        if not sources:
            raise bad_request("messages to copy not found")
        chat, thread_id, _ = self._prepare_send(p, count=len(sources))
        result = []
        # Telegram keeps album grouping: copies of one album form a new album.
        albums: dict[str, str] = {}
        for source in sources:
            content = self._copy_content(source, {})
            album = source.data.get("media_group_id")
            if album:
                content["media_group_id"] = albums.setdefault(album, str(secrets.randbits(62)))
            if p.get("remove_caption"):
                content.pop("caption", None)
                content.pop("caption_entities", None)
            stored = self.store_message(chat, self.bot, content, thread_id=thread_id)
            result.append({"message_id": stored.message_id})
        return result

    def _forward_origin(self, source: StoredMessage) -> dict[str, Any]:
        if "forward_origin" in source.data:
            return source.data["forward_origin"]
        chat = source.data["chat"]
        if chat["type"] == "channel":
            return {
                "type": "channel",
                "chat": chat,
                "message_id": source.message_id,
                "date": source.data["date"],
            }
        return {"type": "user", "sender_user": source.data["from"], "date": source.data["date"]}

    def _forward(self, p: dict[str, Any], source: StoredMessage, chat, thread_id) -> StoredMessage:
        if source.is_service:
            raise bad_request("message can't be forwarded")
        content = {k: v for k, v in source.data.items() if k in self._COPY_KEYS}
        content["forward_origin"] = self._forward_origin(source)
        return self.store_message(chat, self.bot, content, thread_id=thread_id)

    def _api_forwardMessage(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        source = self._source(p, p["message_id"], "forward")
        chat, thread_id, _ = self._prepare_send(p)
        return self._forward(p, source, chat, thread_id).data

    def _api_forwardMessages(self, p: dict[str, Any], files: Any) -> list[dict[str, int]]:
        sources = []
        for message_id in sorted(p["message_ids"]):
            try:
                sources.append(self._source(p, message_id, "forward"))
            except ApiError:
                continue
        if not sources:
            raise bad_request("messages to forward not found")
        chat, thread_id, _ = self._prepare_send(p, count=len(sources))
        return [
            {"message_id": self._forward(p, source, chat, thread_id).message_id}
            for source in sources
        ]

    # ----------------------------------------------------------------- edit / delete

    def _editable(self, p: dict[str, Any]) -> tuple[SandboxChat, StoredMessage]:
        if p.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        if "chat_id" not in p:
            raise bad_request("chat_id is empty")
        if "message_id" not in p:
            raise bad_request("message_id is empty")
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        stored = chat.messages.get(p["message_id"])
        if stored is None or stored.deleted:
            raise bad_request("message to edit not found")
        if stored.sender_id != self.bot.id or stored.is_service:
            raise bad_request("message can't be edited")
        return chat, stored

    def _apply_edit(
        self,
        chat: SandboxChat,
        stored: StoredMessage,
        changes: dict[str, Any],
        markup: dict[str, Any] | None,
    ) -> dict[str, Any]:
        data = stored.data
        same = all(data.get(k) == (v or None) for k, v in changes.items())
        if same and data.get("reply_markup") == markup:
            raise bad_request(NOT_MODIFIED)
        if self.caps.edits_count:
            self.check_caps(chat)
        for key, value in changes.items():
            if value:
                data[key] = value
            else:
                data.pop(key, None)
        if markup:
            data["reply_markup"] = markup
        else:
            data.pop("reply_markup", None)
        data["edit_date"] = int(self.now())
        stored.edit_count += 1
        self._emit({"type": "edit", "chat_id": chat.id, "message": data})
        return data

    def _api_editMessageText(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        text, entities = self._format(p["text"], p.get("parse_mode"), p.get("entities"))
        markup, _ = self._markup(p.get("reply_markup"))
        chat, stored = self._editable(p)
        if "text" not in stored.data:
            raise bad_request("there is no text in the message to edit")
        changes: dict[str, Any] = {"text": text, "entities": entities}
        if p.get("link_preview_options"):
            changes["link_preview_options"] = p["link_preview_options"]
        return self._apply_edit(chat, stored, changes, markup)

    def _api_editMessageCaption(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        caption, entities = self._format(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        markup, _ = self._markup(p.get("reply_markup"))
        chat, stored = self._editable(p)
        if not any(kind in stored.data for kind in MEDIA_KINDS):
            raise bad_request("there is no caption in the message to edit")
        return self._apply_edit(
            chat, stored, {"caption": caption, "caption_entities": entities}, markup
        )

    def _api_editMessageReplyMarkup(self, p: dict[str, Any], files: Any) -> dict[str, Any]:
        markup, _ = self._markup(p.get("reply_markup"))
        chat, stored = self._editable(p)
        return self._apply_edit(chat, stored, {}, markup)

    def _deletable(self, chat: SandboxChat, message_id: int) -> StoredMessage:
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise bad_request("message to delete not found")
        if "forum_topic_created" in stored.data or "group_chat_created" in stored.data:
            raise bad_request("message can't be deleted")
        own = stored.sender_id == self.bot.id
        if chat.type != "private" and not own:
            allowed = chat.bot_can("can_delete_messages") or (
                chat.type == "group" and chat.bot_is_admin
            )
            if not allowed:
                raise bad_request("message can't be deleted")
        if self.now() - stored.data["date"] > DELETE_WINDOW:
            raise bad_request("message can't be deleted for everyone")
        return stored

    def delete_message(self, chat: SandboxChat, stored: StoredMessage) -> None:
        """Mark a message deleted and tell subscribers."""
        stored.deleted = True
        if chat.pinned_message_id == stored.message_id:
            chat.pinned_message_id = None
        self._emit({"type": "delete", "chat_id": chat.id, "message_id": stored.message_id})

    def _api_deleteMessage(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        self.delete_message(chat, self._deletable(chat, p["message_id"]))
        return True

    def _api_deleteMessages(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        ids = p["message_ids"]
        if not isinstance(ids, list) or not (1 <= len(ids) <= 100):
            raise bad_request("message_ids is empty")
        for message_id in ids:
            try:
                stored = self._deletable(chat, message_id)
            except ApiError:
                continue
            self.delete_message(chat, stored)
        return True

    # ----------------------------------------------------------------- callbacks, pins, reactions

    def _api_answerCallbackQuery(self, p: dict[str, Any], files: Any) -> bool:
        query_id = p["callback_query_id"]
        query = self._queries.get(query_id)
        if (
            query is None
            or query["answered"]
            or self.now() - query["date"] > self.callback_answer_window
        ):
            raise bad_request(QUERY_TOO_OLD)
        text = p.get("text") or ""
        if len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        query["answered"] = True
        answer = {
            "text": text or None,
            "show_alert": bool(p.get("show_alert")),
            "url": p.get("url"),
            "cache_time": p.get("cache_time") or 0,
            "user_id": query["user_id"],
        }
        self.callback_answers[query_id] = answer
        self._emit({"type": "callback_answer", "query_id": query_id, **answer})
        return True

    def _api_pinChatMessage(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        if chat.type != "private" and not (
            chat.bot_can("can_pin_messages") or (chat.type == "group" and chat.bot_is_admin)
        ):
            raise bad_request("not enough rights to manage pinned messages in the chat")
        stored = chat.messages.get(p["message_id"])
        if stored is None or stored.deleted:
            raise bad_request("message to pin not found")
        stored.pinned = True
        chat.pinned_message_id = stored.message_id
        self._emit({"type": "pin", "chat_id": chat.id, "message_id": stored.message_id})
        return True

    def _api_unpinChatMessage(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        message_id = p.get("message_id") or chat.pinned_message_id
        stored = chat.messages.get(message_id) if message_id else None
        if stored is None or not stored.pinned:
            raise bad_request("message to unpin not found")
        stored.pinned = False
        if chat.pinned_message_id == message_id:
            chat.pinned_message_id = None
        return True

    def _api_unpinAllChatMessages(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        for stored in chat.messages.values():
            stored.pinned = False
        chat.pinned_message_id = None
        return True

    def _api_setMessageReaction(self, p: dict[str, Any], files: Any) -> bool:
        chat = self._find_chat(p["chat_id"])
        self._check_access(chat, sending=False)
        stored = chat.messages.get(p["message_id"])
        if stored is None or stored.deleted:
            raise bad_request("MESSAGE_ID_INVALID")
        reactions = p.get("reaction") or []
        if len(reactions) > 1:
            raise bad_request("REACTIONS_TOO_MANY")
        stored.reactions = list(reactions)
        self._emit(
            {
                "type": "reaction",
                "chat_id": chat.id,
                "message_id": stored.message_id,
                "reaction": stored.reactions,
            }
        )
        return True


def _image_size(content: bytes) -> tuple[int, int]:
    """Return (width, height) of a PNG or JPEG, or a plausible default."""
    if content[:8] == b"\x89PNG\r\n\x1a\n" and len(content) >= 24:
        return int.from_bytes(content[16:20], "big"), int.from_bytes(content[20:24], "big")
    if content[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(content):
            if content[i] != 0xFF:
                break
            marker = content[i + 1]
            length = int.from_bytes(content[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                height = int.from_bytes(content[i + 5 : i + 7], "big")
                width = int.from_bytes(content[i + 7 : i + 9], "big")
                return width, height
            i += 2 + length
    return 1280, 720


def _int_or_none(value: Any) -> int | None:
    """Return ``value`` as an int (chat ids arrive as ints or numeric strings), else None."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None
