"""The demo page's server side: static files, JSON endpoints that act as people, a live feed.

Everything here is mounted on the emulator's own tornado Application (same port as the Bot
API). Endpoints, all JSON:

* ``GET  /demo/api/state``: people, chats with their messages, topics, reply keyboards, faults
* ``GET  /demo/api/messages?chat_id=&thread_id=``: one chat's (or topic's) messages
* ``POST /demo/api/send``: ``{user_id, text, chat_id?, thread_id?}``
* ``POST /demo/api/press``: ``{user_id, chat_id, message_id, data}`` (a button that is there)
* ``POST /demo/api/reply_button``: ``{user_id, label}`` (a reply-keyboard button)
* ``POST /demo/api/contact``: ``{user_id}`` (share my own contact)
* ``POST /demo/api/upload``: multipart ``user_id, chat_id?, thread_id?, caption?, file``
* ``POST /demo/api/topic``: ``{user_id, chat_id, name}`` (create a forum topic)
* ``GET|POST /demo/api/faults``: see :mod:`tgbot.sandbox.faults_api`
* ``GET  /demo/api/file/<file_id>``: a file's bytes (photos in bubbles)
* ``GET  /demo/api/wallet``: the demo wallet's SMS outbox (newest first) and its accounts
* ``WS   /demo/ws``: every visible change, as the emulator reports it

POSTs must carry the ``X-Demo: 1`` header: a browser sends a custom header cross-site only
after a CORS preflight, which this server never grants, so other sites cannot drive it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tornado.web
import tornado.websocket

from tgbot.sandbox.faults_api import FaultsError, apply_faults, faults_state
from tgbot.sandbox.models import SandboxError

if TYPE_CHECKING:
    from tgbot.sandbox.demo import DemoWorld
    from tgbot.sandbox.emulator import TelegramEmulator

_LOGGER = logging.getLogger(__name__)
WEB_DIR = Path(__file__).with_name("web")
MAX_UPLOAD = 20 * 1024 * 1024


class ApiInputError(ValueError):
    """A malformed request to a demo endpoint (answered 400 with the message)."""


class _DemoHandler(tornado.web.RequestHandler):
    """Base: the emulator and the seeded world; JSON in, JSON out."""

    emu: TelegramEmulator
    world: DemoWorld

    def initialize(self, emu: TelegramEmulator, world: DemoWorld) -> None:
        """Receive the emulator and the seeded world."""
        self.emu = emu
        self.world = world

    def set_default_headers(self) -> None:
        """Keep browsers from caching or sniffing the answers."""
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def reply(self, data: Any, status: int = 200) -> None:
        """Answer with JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False))

    def prepare(self) -> None:
        """Refuse POSTs without the custom header (see the module docstring)."""
        if self.request.method == "POST" and self.request.headers.get("X-Demo") != "1":
            self.reply({"error": "missing X-Demo header"}, 403)

    def body(self) -> dict[str, Any]:
        """Return the JSON object posted."""
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise ApiInputError("invalid JSON") from None
        if not isinstance(data, dict):
            raise ApiInputError("expected a JSON object")
        return data

    def user_id(self, data: dict[str, Any]) -> int:
        """Return the acting user's id: a seeded or emulator-known person."""
        user_id = _int(data, "user_id")
        user = self.emu.users.get(user_id)
        if user is None or user.is_bot:
            raise ApiInputError(f"no user {user_id}")
        return user_id

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Answer errors in JSON, without a traceback."""
        self.reply({"error": self._reason}, status_code)

    async def _guarded(self, action: Any) -> None:
        try:
            result = action()
        except (ApiInputError, SandboxError, FaultsError) as error:
            self.reply({"error": str(error)}, 400)
            return
        self.reply({"ok": True, "result": result})


def _int(data: dict[str, Any], name: str, required: bool = True) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ApiInputError(f"{name} is required")
        return None
    if isinstance(value, bool):
        raise ApiInputError(f"{name}: expected an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiInputError(f"{name}: expected an integer") from None


def _chat_state(emu: TelegramEmulator, chat_id: int) -> dict[str, Any]:
    chat = emu.chats[chat_id]
    state: dict[str, Any] = {
        "id": chat.id,
        "type": chat.type,
        "title": chat.title,
        "is_forum": chat.is_forum,
        "messages": emu.chat_messages(chat.id),
        "reply_keyboard": chat.reply_keyboard,
    }
    if chat.is_forum:
        state["topics"] = [
            {**topic.to_dict(), "closed": topic.closed, "deleted": topic.deleted}
            for topic in chat.topics.values()
        ]
    return state


def demo_state(emu: TelegramEmulator, world: DemoWorld) -> dict[str, Any]:
    """Return everything the page shows at load: people, chats, topics, faults."""
    people = []
    for person in world.people:
        user = emu.users[person.user_id]
        people.append(
            {
                "id": person.user_id,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "language_code": user.language_code,
                "phone_number": user.phone_number,
                "role": person.role,
                "blocked": user.blocked_bot,
            }
        )
    chat_ids = [p.user_id for p in world.people if p.user_id in emu.chats]
    chat_ids.append(world.agents_group.id)
    return {
        "bot": emu.bot.to_dict(),
        "people": people,
        "agents_group_id": world.agents_group.id,
        "chats": {str(cid): _chat_state(emu, cid) for cid in chat_ids},
        "faults": faults_state(emu, [p.user_id for p in world.people]),
    }


class StateHandler(_DemoHandler):
    """``GET /demo/api/state``."""

    def get(self) -> None:
        """Return the page's initial state."""
        self.reply(demo_state(self.emu, self.world))


class MessagesHandler(_DemoHandler):
    """``GET /demo/api/messages?chat_id=&thread_id=``."""

    def get(self) -> None:
        """Return one chat's visible messages, optionally of one topic."""
        try:
            chat_id = _int({"chat_id": self.get_query_argument("chat_id", None)}, "chat_id")
            thread = _int({"t": self.get_query_argument("thread_id", None)}, "t", required=False)
        except ApiInputError as error:
            self.reply({"error": str(error)}, 400)
            return
        assert chat_id is not None
        self.reply({"messages": self.emu.chat_messages(chat_id, thread)})


class SendHandler(_DemoHandler):
    """``POST /demo/api/send``: type a message as a person."""

    async def post(self) -> None:
        """Send text as the user (into a group topic when ``chat_id``/``thread_id`` say so)."""

        def act() -> dict[str, Any]:
            data = self.body()
            text = data.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ApiInputError("text is required")
            if len(text) > 4096:
                raise ApiInputError("text is longer than Telegram allows (4096)")
            return self.emu.user_send(
                self.user_id(data),
                text,
                chat_id=_int(data, "chat_id", required=False),
                thread_id=_int(data, "thread_id", required=False),
            )

        await self._guarded(act)


class PressHandler(_DemoHandler):
    """``POST /demo/api/press``: press an inline button that is on the message."""

    async def post(self) -> None:
        """Send the callback query of the button with this data; return the query id."""

        def act() -> str:
            data = self.body()
            user_id = self.user_id(data)
            chat_id = _int(data, "chat_id")
            message_id = _int(data, "message_id")
            callback_data = data.get("data")
            if not isinstance(callback_data, str) or not callback_data:
                raise ApiInputError("data is required")
            assert chat_id is not None and message_id is not None
            chat = self.emu.chats.get(chat_id)
            stored = chat.messages.get(message_id) if chat else None
            if stored is None or stored.deleted:
                raise ApiInputError(f"no message {message_id} in chat {chat_id}")
            rows = stored.data.get("reply_markup", {}).get("inline_keyboard", [])
            if not any(b.get("callback_data") == callback_data for row in rows for b in row):
                raise ApiInputError("no such button on that message (it may have changed)")
            return self.emu.user_press(user_id, chat_id, message_id, callback_data)

        await self._guarded(act)


class ReplyButtonHandler(_DemoHandler):
    """``POST /demo/api/reply_button``: tap a reply-keyboard button (maybe share contact)."""

    async def post(self) -> None:
        """Tap the reply-keyboard button labelled ``label``."""

        def act() -> dict[str, Any]:
            data = self.body()
            label = data.get("label")
            if not isinstance(label, str):
                raise ApiInputError("label is required")
            chat_id = _int(data, "chat_id", required=False)
            return self.emu.press_reply_button(self.user_id(data), label, chat_id=chat_id)

        await self._guarded(act)


class ContactHandler(_DemoHandler):
    """``POST /demo/api/contact``: share my own contact card."""

    async def post(self) -> None:
        """Share the user's own contact, as the "share my contact" button does."""

        def act() -> dict[str, Any]:
            data = self.body()
            return self.emu.user_share_contact(self.user_id(data))

        await self._guarded(act)


class UploadHandler(_DemoHandler):
    """``POST /demo/api/upload``: send a photo (images) or a file (anything else)."""

    async def post(self) -> None:
        """Send the uploaded file as a photo or document, with an optional caption."""

        def act() -> dict[str, Any]:
            args = {k: self.get_body_argument(k, None) for k in ("user_id", "chat_id", "thread_id")}
            user_id = self.user_id(args)
            parts = self.request.files.get("file")
            if not parts:
                raise ApiInputError("file is required")
            part = parts[0]
            if len(part.body) > MAX_UPLOAD:
                raise ApiInputError("file is larger than 20 MB")
            caption = (self.get_body_argument("caption", "") or "").strip() or None
            if caption and len(caption) > 1024:
                raise ApiInputError("caption is longer than Telegram allows (1024)")
            where = {
                "chat_id": _int(args, "chat_id", required=False),
                "thread_id": _int(args, "thread_id", required=False),
            }
            mime = part.content_type or mimetypes.guess_type(part.filename or "")[0] or ""
            as_photo = self.get_body_argument("as", "auto") != "document" and mime in (
                "image/jpeg",
                "image/png",
                "image/gif",
                "image/webp",
            )
            if as_photo:
                return self.emu.user_send_photo(user_id, part.body, caption=caption, **where)
            return self.emu.user_send_document(
                user_id,
                part.body,
                file_name=part.filename or "file.bin",
                mime_type=mime or "application/octet-stream",
                caption=caption,
                **where,
            )

        await self._guarded(act)


class TopicHandler(_DemoHandler):
    """``POST /demo/api/topic``: create a forum topic as a group member."""

    async def post(self) -> None:
        """Create a topic named ``name`` in ``chat_id``; return its thread id."""

        def act() -> int:
            data = self.body()
            name = data.get("name")
            if not isinstance(name, str) or not 1 <= len(name.strip()) <= 128:
                raise ApiInputError("name: 1 to 128 characters")
            chat_id = _int(data, "chat_id")
            assert chat_id is not None
            if chat_id not in self.emu.chats:
                raise ApiInputError(f"no chat {chat_id}")
            return self.emu.user_create_topic(self.user_id(data), chat_id, name.strip())

        await self._guarded(act)


class FaultsHandler(_DemoHandler):
    """``GET|POST /demo/api/faults``: read or change injected faults and caps."""

    def get(self) -> None:
        """Return the current faults, caps and blocked users."""
        self.reply(faults_state(self.emu, [p.user_id for p in self.world.people]))

    async def post(self) -> None:
        """Apply the settings posted (others unchanged); return the new state."""
        try:
            apply_faults(self.emu, self.body())
        except (ApiInputError, FaultsError) as error:
            self.reply({"error": str(error)}, 400)
            return
        state = faults_state(self.emu, [p.user_id for p in self.world.people])
        LiveFeed.broadcast(self.emu, {"type": "faults", "faults": state})
        self.reply(state)


class FileHandler(_DemoHandler):
    """``GET /demo/api/file/<file_id>``: a stored file's bytes."""

    def get(self, file_id: str) -> None:
        """Send the file with its type (images show inline; others download)."""
        stored = self.emu.files.get(file_id)
        if stored is None:
            self.reply({"error": "no such file"}, 404)
            return
        mime = stored.mime_type or mimetypes.guess_type(stored.file_path)[0]
        if stored.file_path.startswith("photos/"):
            mime = _sniff_image(stored.content) or mime
        self.set_header("Content-Type", mime or "application/octet-stream")
        if not (mime or "").startswith("image/"):
            name = (stored.file_name or "file").replace('"', "")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(stored.content)


@dataclass
class WalletRef:
    """Where the page finds the bot's wallet backend (set once the bot is initialized).

    ``ready`` is set once the bot runs and the demo wallet is seeded: the page waits for it,
    so nobody sees a page whose wallet is still empty.
    """

    def __init__(self, *, ready: bool = False) -> None:
        self.backend: Any = None
        self.ready = asyncio.Event()
        if ready:
            self.ready.set()


class WalletHandler(_DemoHandler):
    """``GET /demo/api/wallet``: the demo wallet's SMS outbox and accounts, for the page."""

    def initialize(  # type: ignore[override]
        self, emu: TelegramEmulator, world: DemoWorld, wallet: WalletRef
    ) -> None:
        """Receive the emulator, the world and the reference to the backend."""
        super().initialize(emu, world)
        self.wallet = wallet

    async def get(self) -> None:
        """Return ``{available, sms: [...] newest first, accounts, fixed_code, ...}``."""
        backend = self.wallet.backend
        if backend is None or not hasattr(backend, "sms_outbox"):
            self.reply({"available": False, "sms": [], "accounts": []})
            return
        self.reply(await wallet_state(backend))


async def wallet_state(backend: Any) -> dict[str, Any]:
    """Return what the wallet panel shows, from a :class:`~tgbot.backend.demo.DemoWallet`."""
    from tgbot.backend.base import NotFound
    from tgbot.backend.demo import DEMO_PEOPLE, NO_ACCOUNT_PHONE

    sms = await backend.sms_outbox()
    accounts = []
    for person in DEMO_PEOPLE:
        try:
            account = await backend.get_account(person.id)
        except NotFound:
            continue
        accounts.append(
            {
                "id": account.id,
                "name": account.display_name,
                "phone": person.phone,
                "status": account.status,
                "reason": (
                    person.frozen_reason if account.status == "frozen" else account.locked_reason
                ),
                "link_token": person.link_token,
                "fixed_code": backend.fixed_codes.get(person.phone),
            }
        )
    codes = {a["fixed_code"] for a in accounts}
    return {
        "available": True,
        "public_url": backend.public_url,
        "fixed_code": codes.pop() if len(codes) == 1 else None,
        "no_account_phone": NO_ACCOUNT_PHONE,
        "accounts": accounts,
        "sms": [
            {
                "id": m.id,
                "phone": m.phone,
                "text": m.text,
                "sent_at": m.sent_at.timestamp(),
            }
            for m in reversed(sms)
        ],
    }


def _sniff_image(content: bytes) -> str | None:
    if content.startswith(b"\x89PNG"):
        return "image/png"
    if content.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


class LiveFeed(tornado.websocket.WebSocketHandler):
    """``/demo/ws``: every change the emulator reports, as JSON, to each open page."""

    _feeds: dict[int, set[LiveFeed]] = {}  # noqa: RUF012 - per emulator, shared on purpose

    def initialize(self, emu: TelegramEmulator, world: DemoWorld) -> None:
        """Receive the emulator."""
        self.emu = emu
        self.world = world
        self._unsubscribe: Any = None

    def open(self, *args: str, **kwargs: str) -> None:
        """Start forwarding the emulator's events."""
        self._unsubscribe = self.emu.subscribe(self._forward)
        self._feeds.setdefault(id(self.emu), set()).add(self)

    def on_message(self, message: str | bytes) -> None:
        """Ignore: the page acts through the JSON endpoints."""

    def on_close(self) -> None:
        """Stop forwarding."""
        self._detach()

    def _detach(self) -> None:
        if self._unsubscribe is not None:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            unsubscribe()
        self._feeds.get(id(self.emu), set()).discard(self)

    def _forward(self, event: dict[str, Any]) -> None:
        chat_id = event.get("chat_id")
        if chat_id is not None and chat_id in self.emu.chats:
            event = {**event, "reply_keyboard": self.emu.chats[chat_id].reply_keyboard}
        if event.get("type") == "topic" and chat_id in self.emu.chats:
            thread_id = event["topic"]["message_thread_id"]
            topic = self.emu.chats[chat_id].topics.get(thread_id)
            if topic is not None:
                event["topic"] = {
                    **event["topic"],
                    "closed": topic.closed,
                    "deleted": topic.deleted,
                }
        if event.get("type") == "member":
            event = {**event, "faults": faults_state(self.emu, self._people())}
        self.send(event)

    def _people(self) -> list[int]:
        return [p.user_id for p in self.world.people]

    def send(self, event: dict[str, Any]) -> None:
        """Send one event; a page that went away is dropped quietly."""
        try:
            future = self.write_message(json.dumps(event, ensure_ascii=False))
        except tornado.websocket.WebSocketClosedError:
            self._detach()
            return
        future.add_done_callback(_consume)

    @classmethod
    def broadcast(cls, emu: TelegramEmulator, event: dict[str, Any]) -> None:
        """Send ``event`` to every page watching ``emu``."""
        for feed in list(cls._feeds.get(id(emu), ())):
            feed.send(event)

    @classmethod
    def close_all(cls, emu: TelegramEmulator) -> None:
        """Close every page's feed of ``emu`` (at shutdown)."""
        for feed in list(cls._feeds.pop(id(emu), ())):
            feed._detach()
            feed.close(1001, "demo stopping")


def _consume(future: Any) -> None:
    if not future.cancelled():
        future.exception()


class PageHandler(tornado.web.RequestHandler):
    """``/``: the page itself, once the demo is ready."""

    def initialize(self, wallet: WalletRef) -> None:
        """Receive the reference whose ``ready`` the page waits for."""
        self.wallet = wallet

    async def get(self) -> None:
        """Send index.html (after the bot started and the demo wallet is seeded)."""
        await self.wallet.ready.wait()
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish((WEB_DIR / "index.html").read_bytes())


def web_handlers(
    emu: TelegramEmulator, world: DemoWorld, wallet: WalletRef | None = None
) -> list[tuple[Any, ...]]:
    """Return the page's URL specs for ``EmulatorServer(extra_handlers=...)``.

    ``wallet.backend`` is read at each request: set it once the bot's backend exists.
    """
    ctx = {"emu": emu, "world": world}
    wallet = wallet or WalletRef(ready=True)
    wallet_ctx = {**ctx, "wallet": wallet}
    return [
        (r"/", PageHandler, {"wallet": wallet}),
        (r"/demo/static/(.*)", tornado.web.StaticFileHandler, {"path": str(WEB_DIR)}),
        (r"/demo/api/state", StateHandler, ctx),
        (r"/demo/api/messages", MessagesHandler, ctx),
        (r"/demo/api/send", SendHandler, ctx),
        (r"/demo/api/press", PressHandler, ctx),
        (r"/demo/api/reply_button", ReplyButtonHandler, ctx),
        (r"/demo/api/contact", ContactHandler, ctx),
        (r"/demo/api/upload", UploadHandler, ctx),
        (r"/demo/api/topic", TopicHandler, ctx),
        (r"/demo/api/faults", FaultsHandler, ctx),
        (r"/demo/api/file/([A-Za-z0-9_-]+)", FileHandler, ctx),
        (r"/demo/api/wallet", WalletHandler, wallet_ctx),
        (r"/demo/ws", LiveFeed, ctx),
    ]
