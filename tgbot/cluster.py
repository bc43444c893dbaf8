"""Several workers on one PostgreSQL database, behind one webhook (docs/postgres.md).

Every worker is a whole bot: it receives webhook updates (the port is shared with
``SO_REUSEPORT`` on one host, or a load balancer spreads them over hosts), stores each one
in the inbox before answering 200 (insert-or-ignore: a retry that reaches another worker is
dropped there), and handles the updates it received. What a worker adds to that, here:

* **One chat at a time, in order, across workers**: an update is handled holding its chat's
  advisory lock (:class:`storage.postgres.ChatLocks`). Holding it, the worker first looks
  for the chat's earlier updates still unfinished in the inbox: another worker received
  them and is about to handle them, so it lets the lock go and tries again; if they are
  still there after ``order_grace`` seconds (their worker died or is far behind), it
  handles them itself, from the inbox, oldest first. A handled update is marked done before
  the lock is released, and an update found done is not handled again.
* **Conversation state read per update**: PTB's ConversationHandler keeps states in memory
  (python-telegram-bot issues #4452, #5225), so before each update the update's states are
  read from the database into every persistent ConversationHandler, and after it they are
  written through (with the user's data) while the chat is still held.
* **Duties that run once**: the worker that holds the ``duties`` lease runs the scheduled
  jobs, the broadcast feeder, the refund poller and the other once-per-deployment services,
  and sends the bulk lanes (so the bulk budget is spent once). It renews the lease every
  third of its time; when it dies, another worker takes the lease over once it expires. The
  holder also hands out the work a dead worker left: updates stored and never finished
  (older than ``recover_after``), and sends left in flight; and it runs the users' erasures,
  whichever worker recorded them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from telegram import Update
from telegram.ext import ConversationHandler

from storage.postgres import ChatLocks

from .runtime import chat_key

_LOGGER = logging.getLogger(__name__)

#: The lease of the once-per-deployment duties.
DUTIES = "duties"


class Cluster:
    """One worker's part in a deployment of several (see the module docstring).

    Args:
        app: the worker's WalletApplication.
        lease_ttl: seconds a duties lease lasts unless renewed (a dead holder's duties
            resume on another worker within about this long).
        recover_after: seconds after which an unfinished update is presumed abandoned by
            the worker that stored it (it died): the duties holder handles it.
        order_grace: seconds a worker waits for another to handle a chat's earlier update
            before handling it itself.
    """

    def __init__(
        self,
        app: Any,
        *,
        lease_ttl: float = 10.0,
        recover_after: float = 15.0,
        order_grace: float = 2.0,
    ) -> None:
        self.app = app
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ttl = lease_ttl
        self.recover_after = recover_after
        self.order_grace = order_grace
        self.locks: ChatLocks | None = None
        self.holds_duties = False
        self._lease_until = 0.0
        self._task: asyncio.Task | None = None
        self._gain: Callable[[], Awaitable[None]] | None = None
        self._lose: Callable[[], Awaitable[None]] | None = None
        self._conversations: list[ConversationHandler] | None = None
        #: How many updates this worker handled that another worker had received.
        self.adopted = 0
        #: Chats and users this worker holds now (it may write their persistence rows).
        self._held: Counter[int] = Counter()

    def may_write(self, id: int) -> bool:
        """Whether this worker holds the chat (or the user's chat) ``id`` right now."""
        return self._held[id] > 0

    @contextlib.contextmanager
    def _holding(self, *ids: int | None) -> Iterator[None]:
        held = [id for id in ids if id is not None]
        self._held.update(held)
        try:
            yield
        finally:
            self._held.subtract(held)
            for id in held:
                if self._held[id] <= 0:
                    del self._held[id]

    # -- per update ------------------------------------------------------------------

    async def handle(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Handle ``update`` (``coroutine`` is PTB's handling of it) as a worker must."""
        key = chat_key(update)
        if not isinstance(update, Update) or key is None:
            await coroutine
            await self._finish(update)
            return
        assert self.locks is not None, "the cluster is not open"
        loop = asyncio.get_running_loop()
        give_up_waiting = loop.time() + self.order_grace
        try:
            while True:
                async with self.locks.hold(*key):
                    with self._holding(*self._ids(update)):
                        if await self.app.repos.inbox.is_done(update.update_id):
                            return  # another worker handled it (this one was slow): not twice
                        earlier = await self._earlier(key, update.update_id)
                        if not earlier or loop.time() >= give_up_waiting:
                            for stored in earlier:
                                await self._handle_stored(stored)
                            await self._refresh_states(update)
                            _LOGGER.debug("Handling update %s of chat %s", update.update_id, key)
                            await coroutine
                            coroutine = None  # type: ignore[assignment]
                            await self._finish(update)
                            return
                # The chat's earlier update is another worker's: let it go first.
                await asyncio.sleep(0.005)
        finally:
            if coroutine is not None and hasattr(coroutine, "close"):
                coroutine.close()  # never awaited: handled elsewhere

    @staticmethod
    def _ids(update: Update) -> tuple[int | None, ...]:
        user, chat = update.effective_user, update.effective_chat
        return (user.id if user else None, chat.id if chat else None)

    async def _earlier(self, key: tuple[int, int | None], update_id: int) -> list[Update]:
        rows = await self.app.repos.inbox.pending_in_chat(key[0], update_id)
        earlier = []
        for _, payload, _ in rows:
            stored = Update.de_json(json.loads(payload), self.app.bot)
            if chat_key(stored) == key:  # the same forum topic (or none)
                earlier.append(stored)
        return earlier

    async def _handle_stored(self, update: Update) -> None:
        """Handle an update another worker stored (from the inbox's copy of it)."""
        self.adopted += 1
        _LOGGER.info("Handling update %s that another worker received", update.update_id)
        with self._holding(*self._ids(update)):
            await self._refresh_states(update)
            await self.app.process_update(update)
            await self._finish(update)

    async def _finish(self, update: object) -> None:
        """Write the update's states and data through, then mark it done (chat still held)."""
        if isinstance(update, Update) and update.effective_user is not None:
            # PTB marks an update's user for writing only when no handler raised
            # ApplicationHandlerStop, which every flow step does.
            self.app.mark_data_for_update_persistence(user_ids=update.effective_user.id)
        await self.app.update_persistence()
        if isinstance(update, Update):
            await self.app.repos.inbox.mark_done(update.update_id)

    def _persistent_conversations(self) -> list[ConversationHandler]:
        if self._conversations is None:
            found: list[ConversationHandler] = []
            stack = [h for group in self.app.handlers.values() for h in group]
            while stack:
                handler = stack.pop()
                if isinstance(handler, ConversationHandler):
                    if handler.persistent and handler not in found:
                        found.append(handler)
                    stack.extend(handler._child_conversations)
            self._conversations = found
        return self._conversations

    async def _refresh_states(self, update: Update) -> None:
        """Put the update's stored conversation states into the ConversationHandlers."""
        keyed = []
        for handler in self._persistent_conversations():
            try:
                keyed.append((handler, handler._get_key(update)))
            except RuntimeError:  # no chat or user where the handler keys by one
                continue
        await self._refresh_keys(keyed)

    async def _refresh_keys(self, keyed: list[tuple[ConversationHandler, Any]]) -> None:
        if not keyed:
            return
        states = await self.app.persistence.conversation_states(
            [(handler.name, key) for handler, key in keyed]
        )
        for handler, key in keyed:
            state = states.get((handler.name, key))
            if state is None:
                handler._conversations.data.pop(key, None)  # ended elsewhere; not a write
            else:
                handler._conversations.update_no_track({key: state})

    @asynccontextmanager
    async def user(self, user_id: int, chat_id: int) -> AsyncIterator[None]:
        """Hold a user's chat with their stored data and flow states loaded (for work outside
        an update, e.g. a job ending a flow); write them through at the end."""
        assert self.locks is not None, "the cluster is not open"
        async with self.locks.hold(chat_id):
            with self._holding(user_id, chat_id):
                await self._user_loaded(user_id, chat_id)
                yield
                self.app.mark_data_for_update_persistence(user_ids=user_id)
                await self.app.update_persistence()

    @asynccontextmanager
    async def chat(self, chat_id: int) -> AsyncIterator[None]:
        """Hold a chat, loading and writing nothing (for work that must not interleave with
        the chat's updates, e.g. an erasure's steps)."""
        assert self.locks is not None, "the cluster is not open"
        async with self.locks.hold(chat_id):
            yield

    async def _user_loaded(self, user_id: int, chat_id: int) -> None:
        await self.app.persistence.refresh_user_data(user_id, self.app.user_data[user_id])
        keyed = []
        for handler in self._persistent_conversations():
            key = tuple(
                part
                for part, used in ((chat_id, handler.per_chat), (user_id, handler.per_user))
                if used
            )
            if key and not handler.per_message:
                keyed.append((handler, key))
        await self._refresh_keys(keyed)

    async def stored_user_data(self) -> dict[int, dict[Any, Any]]:
        """Return every user's stored data (the other workers' users too)."""
        return await self.app.persistence.get_user_data()

    # -- duties ----------------------------------------------------------------------

    def open(self) -> None:
        """Make the chat locks (before the first update: the webhook serves before start)."""
        self.locks = ChatLocks(self.app.db)
        self.app.persistence.may_write = self.may_write

    async def start(
        self, gain: Callable[[], Awaitable[None]], lose: Callable[[], Awaitable[None]]
    ) -> None:
        """Start competing for the duties lease."""
        self._gain, self._lose = gain, lose
        await self._tick()  # the first worker takes the duties before it serves
        self._task = asyncio.create_task(self._run(), name="cluster-duties")

    async def stop(self) -> None:
        """Stop the duties and release their lease (another worker takes them at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.holds_duties:
            await self._drop_duties()
            with contextlib.suppress(Exception):
                await self.app.repos.leases.release(DUTIES, self.worker_id)

    async def close(self) -> None:
        """Close the chat locks' connection (after the last update was handled)."""
        if self.locks is not None:
            await self.locks.close()
            self.locks = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            await self._tick()
            if self.holds_duties:
                await self._recover()

    async def _tick(self) -> None:
        leases = self.app.repos.leases
        loop = asyncio.get_running_loop()
        try:
            if self.holds_duties:
                lease = await leases.renew(DUTIES, self.worker_id, self.lease_ttl)
            else:
                lease = await leases.acquire(DUTIES, self.worker_id, self.lease_ttl)
        except Exception:
            _LOGGER.exception("Could not renew the duties lease")
            # Keep the duties while the lease surely lasts; the database may come back.
            lease = True if self.holds_duties and loop.time() < self._lease_until - 1 else None
        if lease is not None and lease is not True:
            self._lease_until = loop.time() + self.lease_ttl
        if lease is not None and not self.holds_duties:
            _LOGGER.info("Worker %s holds the duties lease (token %s)", self.worker_id, lease.token)
            self.holds_duties = True
            assert self._gain is not None
            try:
                await self._gain()
            except Exception:
                _LOGGER.exception("Starting the duties failed")
        elif lease is None and self.holds_duties:
            _LOGGER.warning("Worker %s lost the duties lease", self.worker_id)
            await self._drop_duties()

    async def _drop_duties(self) -> None:
        self.holds_duties = False
        assert self._lose is not None
        try:
            await self._lose()
        except Exception:
            _LOGGER.exception("Stopping the duties failed")

    async def _recover(self) -> None:
        """Handle what other workers left: erasures, stored updates never finished, sends in
        flight."""
        try:
            # Erasures other workers recorded (or left when they died) run here.
            await self.app.privacy.adopt()
            await self.app.outbox.recover_in_flight(max(30.0, self.recover_after))
            stale = await self.app.repos.inbox.stale_pending(time.time() - self.recover_after)
            for _, payload in stale:
                update = Update.de_json(json.loads(payload), self.app.bot)
                _LOGGER.info("Handling update %s a stopped worker left", update.update_id)
                # Through this worker's own queue: the chat's order and lock as for any other.
                await self.app.update_queue.replay([update])
        except Exception:
            _LOGGER.exception("Recovering a stopped worker's work failed")
