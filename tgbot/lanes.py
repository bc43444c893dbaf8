"""Send lanes: Telegram's send budget shared by priority, as a PTB rate limiter.

Telegram allows about 30 messages a second overall, 20 a minute in one group and about one a
second in one chat. Every API call that sends goes through :class:`LaneRateLimiter`; the lane
is its priority: replies to users first, then relays, then notifications, then broadcasts.
A lane waits while a more urgent lane is waiting for the overall budget, so a broadcast can
never delay a support reply by more than one send. ``RetryAfter`` pauses only the chat it
concerns (or everything, when Telegram names no chat).

PTB's ``AIORateLimiter`` has the same buckets but no priorities and pauses *all* requests on
any ``RetryAfter``, which is why this project has its own limiter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from enum import IntEnum
from typing import Any

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter

from .keyed_lock import KeyedLock

_LOGGER = logging.getLogger(__name__)


class Lane(IntEnum):
    """Send priority; lower is more urgent."""

    REPLY = 0
    RELAY = 1
    NOTIFY = 2
    BROADCAST = 3


#: Methods that put something new in a chat and so count against Telegram's caps.
_LIMITED_PREFIXES = ("send", "copyMessage", "forwardMessage", "editMessage")


def _is_limited(endpoint: str) -> bool:
    # "typing…" puts no message in the chat: it must not make the reply after it wait.
    return endpoint.startswith(_LIMITED_PREFIXES) and endpoint != "sendChatAction"


def _chat_id(data: dict[str, Any]) -> int | None:
    chat_id = data.get("chat_id")
    if isinstance(chat_id, int):
        return chat_id
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return None


class TokenBucket:
    """A token bucket: ``rate`` tokens a second, holding at most ``capacity``."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, now: float) -> float:
        """Return seconds until one token is available (0 if one is now)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        """Spend one token."""
        self._refill(now)
        self.tokens -= 1

    def is_full(self, now: float) -> bool:
        """Return True if the bucket is full (it can be forgotten)."""
        self._refill(now)
        return self.tokens >= self.capacity


class LaneRateLimiter(BaseRateLimiter[dict]):
    """Rate-limit sends by lane priority, per group, per chat and overall.

    Args:
        overall_per_second: the whole bot's send rate.
        group_per_minute: sends a minute into one group or supergroup.
        chat_per_second: sends a second into one private chat (bursts of 3 allowed).
        reply_retries: times a reply (lane 0) is retried after ``RetryAfter``; other lanes
            raise it to the outbox, which reschedules the message.
        clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        overall_per_second: float = 25.0,
        group_per_minute: float = 20.0,
        chat_per_second: float = 1.0,
        reply_retries: int = 2,
        clock: Callable[[], float] = time.monotonic,
        broadcast_per_second: float | None = None,
    ) -> None:
        # broadcast_per_second: the broadcast lane's own cap (below the overall rate).
        self._clock = clock
        now = clock()
        self._overall = TokenBucket(overall_per_second, max(1.0, overall_per_second), now)
        self._group_rate = group_per_minute / 60.0
        self._group_capacity = max(1.0, group_per_minute / 4)
        self._chat_rate = chat_per_second
        self._chat_capacity = 3.0
        self._chats: dict[int, TokenBucket] = {}
        self._paused: dict[int | None, float] = {}
        self._waiting_overall = [0] * len(Lane)
        self._reply_retries = reply_retries
        self._chat_order = KeyedLock()
        # Broadcasts also keep to their own, lower rate, leaving room for support traffic.
        self._broadcast = (
            TokenBucket(broadcast_per_second, 1.0, now) if broadcast_per_second else None
        )

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""

    def paused_until(self, chat_id: int | None) -> float:
        """Return the clock time until which sends to ``chat_id`` are paused (0 if not)."""
        return max(self._paused.get(chat_id, 0.0), self._paused.get(None, 0.0))

    def pause(self, chat_id: int | None, seconds: float) -> None:
        """Pause sends to ``chat_id`` (or all sends, for None) for ``seconds``."""
        until = self._clock() + seconds
        self._paused[chat_id] = max(self._paused.get(chat_id, 0.0), until)

    def _chat_bucket(self, chat_id: int, now: float) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) > 10_000:
                # Full buckets carry no information: forget them so memory stays flat.
                self._chats = {k: b for k, b in self._chats.items() if not b.is_full(now)}
            if chat_id < 0:
                bucket = TokenBucket(self._group_rate, self._group_capacity, now)
            else:
                bucket = TokenBucket(self._chat_rate, self._chat_capacity, now)
            self._chats[chat_id] = bucket
        return bucket

    async def acquire(self, lane: Lane, chat_id: int | None, paid: bool = False) -> None:
        """Wait until ``lane`` may send one message to ``chat_id`` (``paid``: a paid
        broadcast, limited by its own rate only, not by the free overall budget)."""
        while True:
            now = self._clock()
            delay = self.paused_until(chat_id) - now
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if chat_id is not None:
                delay = self._chat_bucket(chat_id, now).wait_time(now)
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
            if lane is Lane.BROADCAST and self._broadcast is not None:
                delay = self._broadcast.wait_time(now)
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
            if paid:
                delay = 0.0
            elif any(self._waiting_overall[:lane]):
                delay = 1.0 / self._overall.rate
            else:
                delay = self._overall.wait_time(now)
            if delay <= 0:
                if not paid:
                    self._overall.take(now)
                if lane is Lane.BROADCAST and self._broadcast is not None:
                    self._broadcast.take(now)
                if chat_id is not None:
                    self._chat_bucket(chat_id, now).take(now)
                return
            self._waiting_overall[lane] += 1
            try:
                await asyncio.sleep(delay)
            finally:
                self._waiting_overall[lane] -= 1

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Wait for the lane's turn and send; on ``RetryAfter`` pause the chat concerned.

        Replies (lane 0) are retried a few times after ``RetryAfter``, 5xx and timeouts;
        other lanes raise to the outbox, which reschedules.
        """
        lane = Lane((rate_limit_args or {}).get("lane", Lane.REPLY))
        paid = bool((rate_limit_args or {}).get("paid")) and lane is Lane.BROADCAST
        chat_id = _chat_id(data)
        limited = _is_limited(endpoint)
        attempt = 0
        while True:
            if limited:
                # One chat's sends leave in the order they asked, whatever their wait.
                await self._chat_order.acquire(chat_id)
                try:
                    await self.acquire(lane, chat_id, paid)
                finally:
                    self._chat_order.release(chat_id)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = _seconds(exc.retry_after)
                self.pause(chat_id, seconds)
                _LOGGER.warning(
                    "Telegram asked to retry %s after %ss (lane %s)", endpoint, seconds, lane.name
                )
                if lane is not Lane.REPLY or attempt >= self._reply_retries or seconds > 30:
                    raise
            except BadRequest as exc:
                if _harmless(endpoint, exc, retried=attempt > 0):
                    _LOGGER.info("%s: %s (ignored)", endpoint, exc.message)
                    return True
                raise
            except Forbidden:
                raise
            except NetworkError as exc:
                # A reply the user is waiting for is worth a quick retry (5xx, timeouts); a
                # timed-out send may have arrived, so this can duplicate it, never lose it.
                if lane is not Lane.REPLY or attempt >= self._reply_retries:
                    raise
                _LOGGER.warning("Retrying %s after %s", endpoint, type(exc).__name__)
                await asyncio.sleep(0.2 * (attempt + 1))
            attempt += 1


def _harmless(endpoint: str, exc: BadRequest, *, retried: bool) -> bool:
    """Return True for errors that only mean "already done" or "too late to matter".

    A callback answer is cosmetic: after downtime Telegram replays presses too old to answer,
    and that must not fail the handler. A retried edit that reports "not modified" had
    arrived the first time.
    """
    text = exc.message.lower()
    if endpoint == "answerCallbackQuery" and "query is too old" in text:
        return True
    return retried and endpoint.startswith("editMessage") and "not modified" in text


def _seconds(value: Any) -> float:
    """Return a RetryAfter duration in seconds (PTB gives int or timedelta)."""
    return float(value.total_seconds() if hasattr(value, "total_seconds") else value)
