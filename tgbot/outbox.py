"""The durable outbox worker: sends stored messages through the send lanes, retrying.

Messages the bot must not lose (relays, notifications, broadcasts) are written to the
``outbox`` table first (``Repositories.outbox.enqueue``) and sent from here. A send that timed
out may have been delivered, so the guarantee is "none lost, duplicates at most the messages
in flight at a crash". One chat's messages keep their order: when one is rescheduled, the
chat's later messages wait for it.

After a send, a hook registered for the message's ``kind`` may record the result (the
handoff flow maps relayed message ids this way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from storage import OutboxItem, Repositories

from .lanes import Lane, LaneRateLimiter, is_limited

_LOGGER = logging.getLogger(__name__)

SentHook = Callable[[OutboxItem, Any], Awaitable[None]]
FailedHook = Callable[[OutboxItem, Exception], Awaitable[None]]

MAX_ATTEMPTS = 8
_BATCH = 50
_CONCURRENT_CHATS = 8
#: A message whose chat must wait longer than this (its budget spent, or paused after a 429)
#: goes back to pending until then, instead of holding its batch (and the other chats in it)
#: back: a group that had its 20 messages this minute waits up to a minute.
_LONGEST_INLINE_WAIT = 0.05
#: The worker's claim loops, as (lowest, highest) lane: relays never wait behind a batch of
#: bulk sends that is waiting for the bulk budget.
_LOOPS = ((int(Lane.REPLY), int(Lane.RELAY)), (int(Lane.NOTIFY), int(Lane.BROADCAST)))


def _result_summary(result: Any) -> dict[str, Any]:
    """Return what is worth keeping of a send's result (the message id, where there is one)."""
    if hasattr(result, "message_id"):
        return {"message_id": result.message_id}
    if isinstance(result, tuple | list):
        return {"message_ids": [getattr(r, "message_id", None) for r in result]}
    return {"result": result if isinstance(result, bool | int | str) else None}


def backoff(attempts: int) -> float:
    """Return seconds before retry number ``attempts`` (exponential, jittered, at most 5 min)."""
    return min(300.0, 2.0 ** min(attempts, 8)) * (0.75 + random.random() / 2)


class OutboxWorker:
    """Send due outbox messages, oldest first within a lane, most urgent lane first.

    Two loops claim and send: one for replies and relays, one for the bulk lanes
    (notifications, broadcasts), so a batch of broadcast sends waiting for the bulk budget
    never holds an agent's reply back. A chat's messages within one loop keep their order.
    """

    def __init__(
        self, bot: Bot, repos: Repositories, poll_interval: float = 1.0, retry_scale: float = 1.0
    ) -> None:
        self._bot = bot
        #: Multiplies every retry delay (tests shrink it; 1.0 in production).
        self.retry_scale = retry_scale
        self._repos = repos
        self._poll_interval = poll_interval
        self._wakes = [asyncio.Event() for _ in _LOOPS]
        self._tasks: list[asyncio.Task] = []
        self._blocked: dict[int, float] = {}
        self._sent_hooks: dict[str, SentHook] = {}
        self._failed_hooks: dict[str, FailedHook] = {}
        self._busy = 0
        self._stopping = False
        self._halted = [False for _ in _LOOPS]
        #: Several workers: claim whole chats (one chat's sends never in two workers).
        self.whole_chats = False

    def on_sent(self, kind: str, hook: SentHook) -> None:
        """Call ``hook(item, result)`` after each message of ``kind`` is sent."""
        self._sent_hooks[kind] = hook

    def on_failed(self, kind: str, hook: FailedHook) -> None:
        """Call ``hook(item, error)`` when a message of ``kind`` fails for good."""
        self._failed_hooks[kind] = hook

    async def enqueue(
        self,
        chat_id: int,
        method: str,
        params: dict[str, Any],
        *,
        lane: Lane = Lane.NOTIFY,
        thread_id: int | None = None,
        kind: str | None = None,
        ref: str | None = None,
        dedupe_key: str | None = None,
    ) -> int:
        """Store a message to send and wake the worker; returns the outbox id."""
        params = {"chat_id": chat_id, **params}
        if thread_id is not None:
            params["message_thread_id"] = thread_id
        item_id = await self._repos.outbox.enqueue(
            int(lane),
            chat_id,
            method,
            params,
            thread_id=thread_id,
            kind=kind,
            ref=ref,
            dedupe_key=dedupe_key,
        )
        self.wake()
        return item_id

    def wake(self) -> None:
        """Look for due messages now instead of at the next poll."""
        for event in self._wakes:
            event.set()

    async def start(self, *, bulk: bool = True) -> None:
        """Requeue messages that were in flight at the last stop and start sending.

        Args:
            bulk: also send the bulk lanes (notifications, broadcasts). Several workers:
                only the one holding the duties lease does (:meth:`start_bulk`), so the
                bulk budget is spent once; every worker sends replies and relays, and then
                nothing is requeued at start (the claims of live workers are theirs).
        """
        requeued = await self._repos.outbox.reset_in_flight() if bulk else 0
        if requeued:
            _LOGGER.info(
                "Outbox: %d messages in flight at the last stop will be sent again", requeued
            )
        self._stopping = False
        self._tasks = [self._spawn(0)]
        if bulk:
            self._tasks.append(self._spawn(1))

    def _spawn(self, index: int) -> asyncio.Task:
        self._halted[index] = False
        return asyncio.create_task(self._run(index, _LOOPS[index]), name=f"outbox-worker-{index}")

    async def start_bulk(self) -> None:
        """Send the bulk lanes too (this worker took the duties lease); bulk messages a
        previous holder left in flight are sent again."""
        if any(task.get_name() == "outbox-worker-1" for task in self._tasks):
            return
        requeued = await self._repos.outbox.reset_in_flight(lanes=_LOOPS[1])
        if requeued:
            _LOGGER.info("Outbox: %d bulk messages left in flight will be sent again", requeued)
        self._tasks.append(self._spawn(1))

    async def stop_bulk(self) -> None:
        """Stop sending the bulk lanes after the messages being sent now."""
        self._halted[1] = True
        self._wakes[1].set()
        for task in [t for t in self._tasks if t.get_name() == "outbox-worker-1"]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._tasks.remove(task)

    async def recover_in_flight(self, older_than: float) -> int:
        """Send again replies and relays claimed more than ``older_than`` seconds ago and
        still in flight: a worker died while sending them (several workers)."""
        requeued = await self._repos.outbox.reset_in_flight(
            lanes=_LOOPS[0], claimed_before=time.time() - older_than
        )
        if requeued:
            _LOGGER.info("Outbox: %d messages a stopped worker had in flight sent again", requeued)
            self.wake()
        return requeued

    async def stop(self) -> None:
        """Stop after the messages being sent now."""
        self._stopping = True
        self.wake()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def idle(self, timeout: float = 10.0, include_scheduled: bool = False) -> bool:
        """Wait until nothing is due (or, with ``include_scheduled``, nothing is left to send
        at all, retries included); return False on timeout. For tests and the sandbox."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._busy:
                if include_scheduled:
                    counts = await self._repos.outbox.counts()
                    if not counts.get("pending") and not counts.get("sending"):
                        return True
                elif not await self._repos.outbox.due(limit=1, exclude_chats=self._blocked_chats()):
                    return True
                self.wake()
            await asyncio.sleep(0.01)
        return False

    def _blocked_chats(self) -> set[int]:
        now = time.time()
        self._blocked = {chat: until for chat, until in self._blocked.items() if until > now}
        return set(self._blocked)

    async def _run(self, index: int, lanes: tuple[int, int]) -> None:
        while not self._stopping and not self._halted[index]:
            try:
                # Cleared before claiming: a wake during the claim is not lost.
                self._wakes[index].clear()
                items = await self._repos.outbox.claim_due(
                    limit=_BATCH,
                    exclude_chats=self._blocked_chats(),
                    lanes=lanes,
                    whole_chats=self.whole_chats,
                )
                if items:
                    self._busy += 1
                    try:
                        await self._send_batch(items)
                    finally:
                        self._busy -= 1
                    continue
                await self._sleep_until_due(index, lanes)
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.exception("Outbox worker error; retrying in a second")
                await asyncio.sleep(1.0)

    async def _sleep_until_due(self, index: int, lanes: tuple[int, int]) -> None:
        next_due = await self._repos.outbox.next_due_at(lanes=lanes)
        timeout = self._poll_interval
        if next_due is not None:
            timeout = min(timeout, max(0.0, next_due - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakes[index].wait(), timeout=timeout)

    async def _send_batch(self, items: list[OutboxItem]) -> None:
        by_chat: dict[int, list[OutboxItem]] = {}
        for item in items:
            by_chat.setdefault(item.chat_id, []).append(item)
        limit = asyncio.Semaphore(_CONCURRENT_CHATS)

        async def send_chat(chat_items: list[OutboxItem]) -> None:
            async with limit:
                for index, item in enumerate(chat_items):
                    if not await self._send_one(item):
                        # Keep the chat's order: the rest wait for the rescheduled one.
                        rest = chat_items[index + 1 :]
                        if rest:
                            await self._repos.outbox.reset_ids([i.id for i in rest])
                        return

        await asyncio.gather(*(send_chat(chat_items) for chat_items in by_chat.values()))

    async def _send_one(self, item: OutboxItem) -> bool:
        """Send one message; return False if the chat must wait (item rescheduled)."""
        # Paid broadcasts (allow_paid_broadcast) are outside the free 30/s budget.
        paid = bool(item.params.get("allow_paid_broadcast"))
        limiter = getattr(self._bot, "rate_limiter", None)
        if isinstance(limiter, LaneRateLimiter) and is_limited(item.method):
            # E.g. a group that had its 20 messages this minute: the message waits pending
            # (a relay line can still be coalesced into it) and the batch moves on.
            wait = limiter.chat_delay(Lane(item.lane), item.chat_id)
            if wait > _LONGEST_INLINE_WAIT:
                self._blocked[item.chat_id] = time.time() + wait
                await self._repos.outbox.defer(item.id, time.time() + wait)
                return False
        try:
            # The Bot API method by name (PTB warns on do_api_request for methods it knows).
            send = getattr(self._bot, item.method)
            result = await send(**item.params, rate_limit_args={"lane": item.lane, "paid": paid})
        except RetryAfter as exc:
            seconds = exc.retry_after
            seconds = float(getattr(seconds, "total_seconds", lambda: seconds)())
            delay = seconds * self.retry_scale
            await self._reschedule(item, time.time() + delay, f"RetryAfter {seconds}s")
            return False
        except (Forbidden, BadRequest) as exc:  # before NetworkError: BadRequest is one
            await self._fail(item, exc)
            return True
        except (TimedOut, NetworkError) as exc:
            # TimedOut may have been delivered; a retry can duplicate, never lose.
            if item.attempts + 1 >= MAX_ATTEMPTS:
                await self._fail(item, exc)
                return True
            delay = backoff(item.attempts) * self.retry_scale
            await self._reschedule(item, time.time() + delay, type(exc).__name__)
            return False
        except TelegramError as exc:  # e.g. ChatMigrated, Conflict: sending again cannot help
            await self._fail(item, exc)
            return True
        except Exception as exc:
            # A call PTB refuses (our bug): record it as failed instead of leaving it "sending"
            # for ever and breaking the batch the other chats' messages are in.
            _LOGGER.exception("Outbox message %s (%s) cannot be sent", item.id, item.method)
            await self._fail(item, exc)
            return True
        # The hook's records (a delivered notice, a relayed message's id) commit together
        # with "sent": a crash can never leave one without the other.
        async with self._repos.db.transaction():
            await self._repos.outbox.mark_sent(item.id, _result_summary(result))
            await self._run_hook(self._sent_hooks.get(item.kind or ""), item, result)
        return True

    async def _run_hook(self, hook: Any, item: OutboxItem, outcome: Any) -> None:
        """Run a hook in its own savepoint: its failure undoes only its own writes.

        Hooks run inside the outbox's write transaction, so they only touch the database
        (anything that calls Telegram is scheduled, not awaited).
        """
        if hook is None:
            return
        try:
            async with self._repos.db.transaction():
                await hook(item, outcome)
        except Exception:
            _LOGGER.exception("Outbox hook for %s failed (message %s)", item.kind, item.id)

    async def _reschedule(self, item: OutboxItem, at: float, error: str) -> None:
        self._blocked[item.chat_id] = at
        await self._repos.outbox.reschedule(item.id, at, error)

    async def _fail(self, item: OutboxItem, exc: Exception) -> None:
        _LOGGER.warning("Outbox message %s to chat %s failed: %s", item.id, item.chat_id, exc)
        async with self._repos.db.transaction():
            await self._repos.outbox.mark_failed(item.id, str(exc))
            await self._run_hook(self._failed_hooks.get(item.kind or ""), item, exc)
