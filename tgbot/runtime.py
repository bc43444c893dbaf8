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
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from storage import InboxRepository

from .keyed_lock import KeyedLock
from .sensitive import mask, might_be_sensitive

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


def scrubbed_payload(update: Update) -> dict[str, Any]:
    """Return the update as stored in the inbox: texts with card numbers, passwords and codes
    masked, so none is ever on disk in clear (a replay after a crash sees the masked text)."""
    payload = update.to_dict()
    query = payload.get("callback_query")
    # A button press carries the message the button is under: masked the same way.
    pressed = query.get("message") if isinstance(query, dict) else None
    for message in (payload.get("message"), payload.get("edited_message"), pressed):
        if not isinstance(message, dict):
            continue
        for key in ("text", "caption"):
            if isinstance(message.get(key), str) and might_be_sensitive(message[key]):
                masked = mask(message[key])
                if masked != message[key]:
                    message[key] = masked
                    message.pop("entities" if key == "text" else "caption_entities", None)
    return payload


class InboxQueue(asyncio.Queue):
    """The update queue that writes every update to the durable inbox before queueing it."""

    def __init__(self) -> None:
        super().__init__()
        self.inbox: InboxRepository | None = None

    async def put(self, item: Any) -> None:
        """Store ``item`` if it is an update, drop it if its update_id was seen, else queue it."""
        if isinstance(item, Update) and self.inbox is not None:
            is_new = await self.inbox.store(item.update_id, json.dumps(scrubbed_payload(item)))
            if not is_new:
                _LOGGER.info("Dropping update %s: already received", item.update_id)
                return
        await super().put(item)

    async def replay(self, items: list[Update]) -> None:
        """Queue updates that were stored but not finished before the last stop."""
        for item in items:
            await super().put(item)


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Process updates of different chats concurrently and of one chat in arrival order."""

    def __init__(self, max_concurrent: int, on_done: Callable[[object], Awaitable[None]] | None):
        super().__init__(_UNBOUNDED)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._limit = max_concurrent
        self._locks = KeyedLock()
        self._on_done = on_done
        self._in_progress = 0
        self._idle = asyncio.Event()
        self._idle.set()

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
                    await coroutine
            else:
                await self._locks.acquire(key)
                try:
                    async with self._slots:
                        await coroutine
                finally:
                    self._locks.release(key)
            if self._on_done is not None:
                await self._on_done(update)
        finally:
            self._in_progress -= 1
            if self._in_progress == 0:
                self._idle.set()

    async def initialize(self) -> None:
        """Nothing to set up: locks are created on demand."""

    async def shutdown(self) -> None:
        """Nothing to free: locks are dropped as soon as they are unused."""


class SequentialUpdateProcessor(BaseUpdateProcessor):
    """PTB's one-at-a-time processing, with the inbox marked done after each update.

    Used when concurrency is switched off (``TGBOT_CONCURRENT_UPDATES=1``), e.g. to measure.
    """

    def __init__(self, on_done: Callable[[object], Awaitable[None]] | None):
        super().__init__(1)
        self._on_done = on_done
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

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""
