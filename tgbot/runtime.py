"""Durable inbox and per-chat ordered concurrency for the PTB update pipeline.

* :class:`InboxQueue` is the Application's ``update_queue``. PTB's Updater confirms a batch of
  updates to Telegram (the offset of its next ``getUpdates``) right after putting the batch
  into this queue, and the webhook handler answers 200 right after ``put`` returns, so
  writing each update to SQLite inside ``put`` stores it before Telegram forgets it. An
  update_id seen before is dropped here: a handled update is never handled twice.
* :class:`ChatOrderedUpdateProcessor` runs different chats concurrently and one chat (or one
  forum topic) strictly in order. PTB's ``BaseUpdateProcessor.process_update`` takes its
  semaphore *before* ``do_process_update``; a per-chat lock inside it would let one flooding
  chat hold every slot while it waits on itself. So PTB's semaphore is made wide and the real
  limit is a second semaphore taken only *after* the chat's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram._utils.types import JSONDict, ODVInput
from telegram.ext import BaseUpdateProcessor
from telegram.request import BaseRequest, RequestData

from storage import InboxRepository

from .keyed_lock import KeyedLock
from .sensitive import clean, mask, might_be_sensitive

_LOGGER = logging.getLogger(__name__)

#: PTB's own semaphore must never be the limit (see module docstring).
_UNBOUNDED = 1_000_000


def chat_key(update: object) -> tuple[int, int | None] | None:
    """Return the ordering key of an update: its chat and forum topic, or its user."""
    if not isinstance(update, Update):
        return None
    message = update.effective_message
    chat = update.effective_chat
    if chat is not None:
        thread = None
        if message is not None and getattr(message, "is_topic_message", False):
            thread = message.message_thread_id
        return chat.id, thread
    user = update.effective_user
    if user is not None:
        return user.id, None
    return None


#: What the inbox keeps of a user: enough to handle the update again, nothing more.
_USER_KEYS = ("id", "is_bot", "first_name", "language_code")
_CHAT_KEYS = ("id", "type", "is_forum")
#: Of a file (photo, document, voice...): its id and the sizes PTB needs; never its name.
_FILE_KEYS = (
    "file_id",
    "file_unique_id",
    "width",
    "height",
    "duration",
    "length",
    "type",
    "is_animated",
    "is_video",
    "mime_type",
    "file_size",
)
_FILES = ("document", "video", "animation", "audio", "voice", "video_note", "sticker")
#: Fields copied as they are: ids, flags and the bot's own service data.
_MESSAGE_KEYS = (
    "message_id",
    "date",
    "edit_date",
    "message_thread_id",
    "is_topic_message",
    "media_group_id",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "group_chat_created",
    "supergroup_chat_created",
    "forum_topic_closed",
    "forum_topic_reopened",
    "reply_markup",  # staff's link buttons are judged again on a replay
)
_ENTITY_KEYS = ("type", "offset", "length", "url", "language", "custom_emoji_id")
_MEMBER_PERSONAL = ("user",)


def _pick(source: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: source[key] for key in keys if isinstance(source, dict) and key in source}


def _user(source: Any) -> dict[str, Any] | None:
    return _pick(source, _USER_KEYS) if isinstance(source, dict) else None


def _entities(entities: Any) -> list[dict[str, Any]]:
    kept = []
    for entity in entities if isinstance(entities, list) else ():
        item = _pick(entity, _ENTITY_KEYS)
        if isinstance(entity, dict) and "user" in entity:
            item["user"] = {**_user(entity["user"]), "first_name": ""}
        kept.append(item)
    return kept


def _text(message: dict[str, Any], out: dict[str, Any], key: str, entities_key: str) -> None:
    """Copy a text or caption masked (card numbers, passwords, codes), with its entities
    only if masking changed nothing (their offsets would be wrong)."""
    text = message.get(key)
    if not isinstance(text, str):
        return
    if might_be_sensitive(text) and (masked := mask(text)) != clean(text):
        out[key] = masked
        return
    out[key] = text
    if entities_key in message:
        out[entities_key] = _entities(message[entities_key])


def _message(message: Any) -> dict[str, Any] | None:
    """Return the inbox's projection of a message: ids, kinds, masked texts."""
    if not isinstance(message, dict):
        return None
    out = _pick(message, _MESSAGE_KEYS)
    out["chat"] = _pick(message.get("chat"), _CHAT_KEYS)
    for key in ("from", "left_chat_member"):
        if key in message:
            out[key] = _user(message[key])
    if "sender_chat" in message:
        out["sender_chat"] = _pick(message["sender_chat"], _CHAT_KEYS)
    if "new_chat_members" in message:
        out["new_chat_members"] = [_user(member) for member in message["new_chat_members"]]
    _text(message, out, "text", "entities")
    _text(message, out, "caption", "caption_entities")
    replied = message.get("reply_to_message")
    if isinstance(replied, dict):  # only which message: never its text (someone else's)
        out["reply_to_message"] = {
            "message_id": replied.get("message_id"),
            "date": replied.get("date", 0),
            "chat": _pick(replied.get("chat"), _CHAT_KEYS),
        }
    if "forward_origin" in message:  # that it was forwarded, not from whom
        origin = message["forward_origin"]
        out["forward_origin"] = {
            "type": "hidden_user",
            "sender_user_name": "",
            "date": origin.get("date", 0) if isinstance(origin, dict) else 0,
        }
    if isinstance(message.get("contact"), dict):  # whose card it is, never a phone number
        contact = message["contact"]
        out["contact"] = {"phone_number": "", "first_name": "", "user_id": contact.get("user_id")}
    if "location" in message:  # that it was a location (relays copy the original)
        out["location"] = {"latitude": 0.0, "longitude": 0.0}
    if isinstance(message.get("photo"), list):
        out["photo"] = [_pick(size, _FILE_KEYS) for size in message["photo"]]
    for kind in _FILES:
        if isinstance(message.get(kind), dict):
            out[kind] = _pick(message[kind], _FILE_KEYS)
    if isinstance(message.get("forum_topic_created"), dict):
        created = message["forum_topic_created"]
        out["forum_topic_created"] = {"name": "", "icon_color": created.get("icon_color", 0)}
    return out


def _member(member: Any) -> dict[str, Any]:
    if not isinstance(member, dict):
        return {}
    out = {k: v for k, v in member.items() if k not in _MEMBER_PERSONAL}
    out["user"] = _user(member.get("user"))
    return out


def inbox_projection(update: Update, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return what the durable inbox stores of an update: an allow-list of its fields (ids,
    kinds, the sender's first name and language, texts with card numbers, passwords and
    codes masked), enough to handle it again after a crash; never a phone number, a
    contact's name, a file name or the text of the message it replies to.

    ``raw`` is the update as Telegram sent it, when the transport kept it (polling does):
    projecting it saves re-serialising the parsed ``Update`` (``to_dict`` costs about as
    much as parsing it did). It is read, not changed.
    """
    payload = raw if raw is not None else update.to_dict()
    out: dict[str, Any] = {"update_id": payload["update_id"]}
    for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
        projected = _message(payload.get(kind))
        if projected is not None:
            out[kind] = projected
    query = payload.get("callback_query")
    if isinstance(query, dict):
        out["callback_query"] = {
            "id": query.get("id"),
            "from": _user(query.get("from")),
            "chat_instance": query.get("chat_instance", ""),
            **({"data": query["data"]} if "data" in query else {}),
        }
        pressed = query.get("message")
        if isinstance(pressed, dict):  # which message the button is under, not its text
            out["callback_query"]["message"] = {
                **_pick(pressed, ("message_id", "date", "message_thread_id", "is_topic_message")),
                "chat": _pick(pressed.get("chat"), _CHAT_KEYS),
            }
    for kind in ("my_chat_member", "chat_member"):
        change = payload.get(kind)
        if isinstance(change, dict):
            out[kind] = {
                "chat": _pick(change.get("chat"), _CHAT_KEYS),
                "from": _user(change.get("from")),
                "date": change.get("date", 0),
                "old_chat_member": _member(change.get("old_chat_member")),
                "new_chat_member": _member(change.get("new_chat_member")),
            }
    return out


class InboxQueue(asyncio.Queue):
    """The update queue that writes every update to the durable inbox before queueing it.

    Polling: the updates of one getUpdates answer are written together, in one statement,
    by :meth:`commit_batch`, which :class:`CommitBeforePoll` runs before the *next*
    getUpdates request goes out; that request is what confirms them to Telegram. They are
    queued for handling only once written. Webhook (and anything else): each ``put`` writes
    its update before returning, and PTB answers 200 only after it returns.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inbox: InboxRepository | None = None
        #: Set by :class:`CommitBeforePoll` when a getUpdates answer arrives: the ``put``
        #: calls that follow are that answer's updates.
        self.collecting = False
        self._batch: list[Update] = []
        #: The raw updates of the getUpdates answers not committed yet, by update_id.
        self._raw: dict[int, dict[str, Any]] = {}
        #: Updates queued for handling and not finished yet (the processors report).
        self.outstanding = 0
        #: Polling asks Telegram for more only while fewer than this many are outstanding.
        self.backlog = 256
        self._finished = asyncio.Event()

    def finished(self) -> None:
        """Record that a queued update was handled (or gave up); called by the processors."""
        self.outstanding = max(0, self.outstanding - 1)
        self._finished.set()

    async def wait_room(self, limit: int, longest: float = 60.0) -> None:
        """Wait until fewer than ``limit`` updates are queued or being handled (at most
        ``longest`` seconds: a handler stuck for good must not stop polling for good)."""
        deadline = asyncio.get_running_loop().time() + longest
        while self.outstanding >= limit:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                _LOGGER.warning("%d updates still being handled; fetching more", self.outstanding)
                return
            self._finished.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), remaining)

    async def _enqueue_update(self, update: Update) -> None:
        self.outstanding += 1
        await super().put(update)

    async def put(self, item: Any) -> None:
        """Store ``item`` if it is an update, drop it if its update_id was seen, else queue it."""
        if isinstance(item, Update) and self.inbox is not None:
            if self.collecting:
                # Written with the rest of its batch before the next getUpdates confirms it.
                self._batch.append(item)
                return
            is_new = await self.inbox.store(item.update_id, json.dumps(inbox_projection(item)))
            if not is_new:
                _LOGGER.info("Dropping update %s: already received", item.update_id)
                return
        if isinstance(item, Update):
            await self._enqueue_update(item)
        else:
            await super().put(item)

    async def commit_batch(self) -> None:
        """Write the updates of the last getUpdates answer in one statement, then queue the
        new ones. On failure they stay here (and unconfirmed) for the next attempt."""
        self.collecting = False
        if not self._batch:
            self._raw = {}
        elif self.inbox is not None:
            # Shielded: once written, the batch must be queued even if polling is cancelled
            # meanwhile (written again later, it would look like a duplicate and be dropped).
            await asyncio.shield(self._commit(self.inbox))

    async def _commit(self, inbox: InboxRepository) -> None:
        batch, raw = self._batch, self._raw
        items = [
            (update.update_id, json.dumps(inbox_projection(update, raw.get(update.update_id))))
            for update in batch
        ]
        new = set(await inbox.store_many(items))
        self._batch, self._raw = [], {}
        for update in batch:
            if update.update_id in new:
                await self._enqueue_update(update)
            else:
                _LOGGER.info("Dropping update %s: already received", update.update_id)

    def keep_raw(self, updates: list[Any]) -> None:
        """Remember the raw updates of a getUpdates answer for their inbox payloads."""
        for update in updates:
            if isinstance(update, dict) and isinstance(update.get("update_id"), int):
                self._raw[update["update_id"]] = update

    async def replay(self, items: list[Update]) -> None:
        """Queue updates that were stored but not finished before the last stop."""
        for item in items:
            await self._enqueue_update(item)


class CommitBeforePoll(BaseRequest):
    """The getUpdates transport: writes the previous answer's updates to the inbox before
    asking for more (asking with the next offset is what confirms them to Telegram).

    It asks for more only while fewer than ``queue.backlog`` updates wait to be handled:
    when the bot falls behind, the rest waits at Telegram (which keeps 24 hours of updates),
    not in memory, and a kill leaves about that many to replay.
    """

    def __init__(self, inner: BaseRequest, queue: InboxQueue) -> None:
        self._inner = inner
        self._queue = queue
        #: This process lost the poller lock (long polling on PostgreSQL): it never asks
        #: Telegram for updates again, another process polls now.
        self.fenced = False

    @property
    def read_timeout(self) -> float | None:
        """Return the wrapped transport's read timeout."""
        return self._inner.read_timeout

    async def initialize(self) -> None:
        """Initialize the wrapped transport."""
        await self._inner.initialize()

    async def shutdown(self) -> None:
        """Shut the wrapped transport down."""
        await self._inner.shutdown()

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
        """Commit the pending batch, wait for room, then make the request; its updates form
        the next batch."""
        await self._queue.commit_batch()
        await self._queue.wait_room(self._queue.backlog)
        if self.fenced:
            # Answered here with no updates, as Telegram answers an empty poll, so PTB's
            # stop (whose last getUpdates confirms what was fetched) asks nothing and
            # confirms nothing: Telegram keeps every unconfirmed update for the new poller,
            # whose inbox drops those stored here. The pause keeps a polling loop that has
            # not seen the stop yet from spinning.
            await asyncio.sleep(0.1)
            return 200, b'{"ok":true,"result":[]}'
        result = await self._inner.do_request(
            url,
            method,
            request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        self._queue.collecting = True
        return result

    def parse_json_payload(self, payload: bytes) -> JSONDict:
        """Parse the answer as the wrapped transport does, keeping the raw updates."""
        data = self._inner.parse_json_payload(payload)
        if isinstance(data, dict) and data.get("ok") and isinstance(data.get("result"), list):
            self._queue.keep_raw(data["result"])
        return data


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Process updates of different chats concurrently and of one chat in arrival order."""

    def __init__(
        self,
        max_concurrent: int,
        on_done: Callable[[object], Awaitable[None]] | None,
        on_finished: Callable[[], None] | None = None,
    ):
        super().__init__(_UNBOUNDED)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._limit = max_concurrent
        self._locks = KeyedLock()
        self._on_done = on_done
        self._on_finished = on_finished
        self._in_progress = 0
        self._idle = asyncio.Event()
        self._idle.set()
        #: Several workers (tgbot.cluster): handles each update in place of awaiting its
        #: coroutine, and marks it done itself.
        self.handle: Callable[[object, Awaitable[Any]], Awaitable[None]] | None = None

    @property
    def lock_count(self) -> int:
        """Return how many per-chat locks exist now (only chats with work in progress)."""
        return len(self._locks)

    @property
    def in_progress(self) -> int:
        """Return how many updates are queued here or being processed."""
        return self._in_progress

    async def wait_idle(self) -> None:
        """Wait until no update is queued here or being processed."""
        await self._idle.wait()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run ``coroutine`` after the chat's earlier updates, within the concurrency limit."""
        self._in_progress += 1
        self._idle.clear()
        key = chat_key(update)
        try:
            if key is None:
                async with self._slots:
                    if self.handle is not None:
                        await self.handle(update, coroutine)
                    else:
                        await coroutine
            else:
                await self._locks.acquire(key)
                try:
                    async with self._slots:
                        if self.handle is not None:
                            await self.handle(update, coroutine)
                        else:
                            await coroutine
                finally:
                    self._locks.release(key)
            if self._on_done is not None and self.handle is None:
                await self._on_done(update)
        finally:
            self._in_progress -= 1
            if self._in_progress == 0:
                self._idle.set()
            if self._on_finished is not None and isinstance(update, Update):
                self._on_finished()

    async def initialize(self) -> None:
        """Nothing to set up: locks are created on demand."""

    async def shutdown(self) -> None:
        """Nothing to free: locks are dropped as soon as they are unused."""


class SequentialUpdateProcessor(BaseUpdateProcessor):
    """PTB's one-at-a-time processing, with the inbox marked done after each update.

    Used when concurrency is switched off (``TGBOT_CONCURRENT_UPDATES=1``), e.g. to measure.
    """

    def __init__(
        self,
        on_done: Callable[[object], Awaitable[None]] | None,
        on_finished: Callable[[], None] | None = None,
    ):
        super().__init__(1)
        self._on_done = on_done
        self._on_finished = on_finished
        self._in_progress = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.lock_count = 0

    @property
    def in_progress(self) -> int:
        """Return how many updates are being processed."""
        return self._in_progress

    async def wait_idle(self) -> None:
        """Wait until no update is being processed."""
        await self._idle.wait()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Await ``coroutine`` and mark the update done."""
        self._in_progress += 1
        self._idle.clear()
        try:
            await coroutine
            if self._on_done is not None:
                await self._on_done(update)
        finally:
            self._in_progress -= 1
            if self._in_progress == 0:
                self._idle.set()
            if self._on_finished is not None and isinstance(update, Update):
                self._on_finished()

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""
