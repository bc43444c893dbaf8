"""Send lanes: Telegram's limits as Telegram states them, as a PTB rate limiter.

What Telegram says (Bot FAQ "My bot is hitting limits"; its Bot API maintainer in
tdlib/telegram-bot-api#648 and #636, tdlib/td#1834 and #2592): there is no global limit on
the messages a bot sends. In one chat, about one message a second, short bursts tolerated;
edits count like sends. In one group, 20 messages a minute (creating a topic sends a message,
so it counts). Bulk notifications to many users: about 30 a second (paid broadcasts,
``allow_paid_broadcast``, up to 1000). ``answerCallbackQuery`` has no limit.

So :class:`LaneRateLimiter` limits:

* every call that puts something in a chat, per chat: private chats a token bucket (a burst,
  then ``chat_per_second``), groups both a small burst and at most ``group_per_minute`` in any
  sliding minute;
* only the bulk lanes (notifications the user did not trigger, broadcasts) also by one shared
  **bulk budget** of ``bulk_per_second``; paid broadcasts by their own ``paid_per_second``.
  A reply to a user's own update never waits for the bulk budget, so a broadcast cannot
  delay it; among bulk lanes notifications go before broadcasts;
* adaptively: a ``RetryAfter`` pauses only the chat it names for its ``retry_after``; 429s
  in several different chats within a short window mean the real bulk limit is lower than
  assumed, so the bulk budget is cut multiplicatively and grows back additively
  (:class:`AdaptiveRate`, AIMD), finding the real limit instead of assuming one.

PTB's ``AIORateLimiter`` has one overall bucket for every send and pauses *all* requests on
any ``RetryAfter``, which is why this project has its own limiter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter

from .keyed_lock import KeyedLock

_LOGGER = logging.getLogger(__name__)


class Lane(IntEnum):
    """Send priority; lower is more urgent."""

    REPLY = 0  # an answer to the user's own update
    RELAY = 1  # agent <-> user relays, ticket topics
    NOTIFY = 2  # notices the user did not trigger (refund status, flow timeout, admin alerts)
    BROADCAST = 3  # security notices to every user


#: Lanes that share the bulk budget (Telegram's ~30/s for notifications to many users).
BULK_LANES = frozenset({Lane.NOTIFY, Lane.BROADCAST})

#: Methods that put something new (or changed) in a chat and so count against its limit:
#: sends, copies, forwards, message edits, and creating a topic (it sends the topic's first
#: service message; tdlib/td#2592). Editing, closing or reopening a topic are not stated to
#: count: a 429 for them would pause the group like any other.
_LIMITED_PREFIXES = (
    "send",
    "copyMessage",
    "forwardMessage",
    "editMessage",
    "createForumTopic",
)


def is_limited(endpoint: str) -> bool:
    """Return True if ``endpoint`` counts against a chat's message limit ("typing…" puts no
    message in the chat: it must not make the reply after it wait)."""
    return endpoint.startswith(_LIMITED_PREFIXES) and endpoint != "sendChatAction"


def _chat_id(data: dict[str, Any]) -> int | None:
    chat_id = data.get("chat_id")
    if isinstance(chat_id, int):
        return chat_id
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return None


#: Seconds of margin against Telegram's clock: a grant reaches Telegram a few ms later, and
#: not always in the order the sends were granted, so a send granted exactly at a limit's
#: edge could arrive just before it. Every budget below keeps this margin.
GUARD = 0.03


class TokenBucket:
    """A token bucket: ``rate`` tokens a second, holding at most ``capacity``.

    A send needs one token plus ``guard`` seconds' worth (``margin``) in the bucket, so it is
    granted that much after the bucket's edge; the margin is not spent, so the long-run rate
    stays ``rate``.
    """

    __slots__ = ("capacity", "margin", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float, now: float, guard: float = GUARD) -> None:
        self.rate = rate
        self.margin = min(guard * rate, 1.0)
        self.capacity = max(capacity, 1.0 + self.margin)
        self.tokens = self.capacity
        self.stamp = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, now: float) -> float:
        """Return seconds until one token (and the margin) is available (0 if now)."""
        self._refill(now)
        need = 1.0 + self.margin
        return 0.0 if self.tokens >= need - 1e-9 else (need - self.tokens) / self.rate

    def take(self, now: float) -> None:
        """Spend one token."""
        self._refill(now)
        self.tokens -= 1

    def set_rate(self, rate: float, now: float) -> None:
        """Change the rate from now on (tokens earned so far keep the old rate)."""
        if rate != self.rate:
            self._refill(now)
            self.rate = rate

    def is_idle(self, now: float) -> bool:
        """Return True if the bucket is full (it carries no information and can be dropped)."""
        self._refill(now)
        return self.tokens >= self.capacity


class WindowBudget:
    """At most ``limit`` sends in any ``window`` seconds, spaced by a token bucket that allows
    a burst of ``burst`` (a bucket alone would let burst + a window's refill through in one
    window; a window alone would let the whole limit through at once)."""

    __slots__ = ("bucket", "guard", "limit", "sent", "window")

    def __init__(
        self, limit: float, window: float, burst: float, now: float, guard: float = GUARD
    ) -> None:
        self.limit = max(1, int(limit + 1e-9))
        self.window = window
        self.guard = guard
        self.bucket = TokenBucket(limit / window, max(1.0, min(burst, limit)), now, guard)
        self.sent: deque[float] = deque()

    def set_rate(self, limit: float, now: float) -> None:
        """Change the limit (sends per window) from now on."""
        self.limit = max(1, int(limit + 1e-9))
        self.bucket.set_rate(limit / self.window, now)

    def wait_time(self, now: float) -> float:
        """Return seconds until one more send keeps to both limits."""
        span = self.window + self.guard
        while self.sent and self.sent[0] <= now - span:
            self.sent.popleft()
        window_wait = 0.0
        if len(self.sent) >= self.limit:
            # A hair past the oldest send's expiry, so float rounding cannot let it count.
            window_wait = self.sent[len(self.sent) - self.limit] + span - now + 1e-6
        return max(window_wait, self.bucket.wait_time(now))

    def take(self, now: float) -> None:
        """Record one send."""
        self.bucket.take(now)
        self.sent.append(now)

    def is_idle(self, now: float) -> bool:
        """Return True if nothing was sent within the window (it can be dropped)."""
        return (
            not self.sent or self.sent[-1] <= now - self.window - self.guard
        ) and self.bucket.is_idle(now)


@dataclass(frozen=True)
class AimdSettings:
    """How the bulk budget adapts to 429s.

    Attributes:
        window: seconds in which 429s are counted (and the least time between two cuts).
        distinct_chats: 429s from at least this many different chats within ``window`` cut
            the budget (one chat's 429s are that chat's own limit, not the bulk budget's).
        decrease: the budget is multiplied by this on a cut.
        increase: messages a second added back every ``increase_every`` seconds without a cut.
        increase_every: seconds between additive increases.
        floor: the budget never goes below this many messages a second.
    """

    window: float = 10.0
    distinct_chats: int = 3
    decrease: float = 0.5
    increase: float = 1.0
    increase_every: float = 5.0
    floor: float = 1.0


class AdaptiveRate:
    """The bulk budget's current rate: multiplicative decrease on 429s across chats,
    additive increase back up to the configured ceiling (AIMD)."""

    def __init__(self, ceiling: float, settings: AimdSettings, now: float) -> None:
        self.ceiling = ceiling
        self.settings = settings
        self.rate = ceiling
        self._recent: deque[tuple[float, int | None]] = deque()
        self._last_cut = -float("inf")
        self._last_change = now
        #: Every cut and increase as (clock time, new rate), for logs and tests.
        self.history: deque[tuple[float, float]] = deque(maxlen=200)

    def on_retry_after(self, chat_id: int | None, now: float) -> bool:
        """Record a 429; return True if it cut the budget."""
        window = self.settings.window
        self.current(now)  # increases due so far apply before a cut
        self._recent.append((now, chat_id))
        while self._recent and self._recent[0][0] <= now - window:
            self._recent.popleft()
        chats = {chat for _, chat in self._recent}
        if len(chats) < self.settings.distinct_chats or now - self._last_cut < window:
            return False
        self.rate = max(self.settings.floor, self.rate * self.settings.decrease)
        self._last_cut = self._last_change = now
        self._recent.clear()
        self.history.append((now, self.rate))
        return True

    def current(self, now: float) -> float:
        """Return the rate now, after any additive increases that are due."""
        if self.rate < self.ceiling:
            steps = int((now - self._last_change) // self.settings.increase_every)
            if steps > 0:
                self.rate = min(self.ceiling, self.rate + steps * self.settings.increase)
                self._last_change += steps * self.settings.increase_every
                self.history.append((now, self.rate))
        else:
            self._last_change = now
        return self.rate


class LaneRateLimiter(BaseRateLimiter[dict]):
    """Rate-limit sends per chat, per group, and (bulk lanes only) by the adaptive bulk budget.

    Args:
        bulk_per_second: the bulk budget's ceiling (notifications and free broadcasts).
        group_per_minute: sends into one group or supergroup in any sliding ``group_window``
            (a burst of a quarter of it allowed).
        group_window: seconds of that window: 60 (tests shrink it).
        chat_per_second: sends a second into one private chat, after a burst of ``chat_burst``.
        chat_burst: sends a private chat may get at once.
        paid_per_second: paid broadcasts' own budget (``allow_paid_broadcast``).
        broadcast_per_second: the broadcast lane's own cap within its budget (None: none).
        reply_retries: times a reply (lane 0) is retried after ``RetryAfter``; other lanes
            raise it to the outbox, which reschedules the message.
        aimd: how the bulk budget adapts to 429s.
        clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        bulk_per_second: float = 30.0,
        group_per_minute: float = 20.0,
        chat_per_second: float = 1.0,
        *,
        chat_burst: float = 3.0,
        paid_per_second: float = 1000.0,
        group_window: float = 60.0,
        broadcast_per_second: float | None = None,
        reply_retries: int = 2,
        aimd: AimdSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        now = clock()
        self.bulk = AdaptiveRate(bulk_per_second, aimd or AimdSettings(), now)
        # No burst: bulk sends are spaced 1/rate apart, and no second holds more than the
        # budget.
        self._bulk_budget = WindowBudget(bulk_per_second, 1.0, 1.0, now)
        self._paid_budget = WindowBudget(paid_per_second, 1.0, 1.0, now)
        self._broadcast = (
            TokenBucket(broadcast_per_second, 1.0, now) if broadcast_per_second else None
        )
        self._group_per_minute = group_per_minute
        self._group_window = group_window
        self._chat_rate = chat_per_second
        self._chat_burst = max(1.0, chat_burst)
        self._chats: dict[int, TokenBucket | WindowBudget] = {}
        self._paused: dict[int | None, float] = {}
        self._waiting_bulk = [0] * len(Lane)
        self._reply_retries = reply_retries
        self._chat_order = KeyedLock()
        #: Sends granted per lane, and 429s seen, for tests and benchmarks.
        self.granted = [0] * len(Lane)
        self.retry_afters = 0

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""

    @property
    def bulk_rate(self) -> float:
        """Return the bulk budget now (messages a second)."""
        return self.bulk.current(self._clock())

    def paused_until(self, chat_id: int | None, lane: Lane = Lane.REPLY) -> float:
        """Return the clock time until which ``lane``'s sends to ``chat_id`` wait (0 if not).

        A 429 that names no chat pauses the bulk lanes only.
        """
        until = self._paused.get(chat_id, 0.0) if chat_id is not None else 0.0
        if lane in BULK_LANES:
            until = max(until, self._paused.get(None, 0.0))
        return until

    def pause(self, chat_id: int | None, seconds: float) -> None:
        """Pause sends to ``chat_id`` (None: the bulk lanes) for ``seconds``."""
        until = self._clock() + seconds
        self._paused[chat_id] = max(self._paused.get(chat_id, 0.0), until)
        if len(self._paused) > 1000:
            now = self._clock()
            self._paused = {k: v for k, v in self._paused.items() if v > now}

    def _chat_budget(self, chat_id: int, now: float) -> TokenBucket | WindowBudget:
        budget = self._chats.get(chat_id)
        if budget is None:
            if len(self._chats) > 10_000:
                # Idle budgets carry no information: forget them so memory stays flat.
                self._chats = {k: b for k, b in self._chats.items() if not b.is_idle(now)}
            if chat_id < 0:
                budget = WindowBudget(
                    self._group_per_minute, self._group_window, self._group_per_minute / 4, now
                )
            else:
                budget = TokenBucket(self._chat_rate, self._chat_burst, now)
            self._chats[chat_id] = budget
        return budget

    def _bulk_wait(self, lane: Lane, now: float) -> float:
        """Return how long ``lane`` must wait for the bulk budget (notifications first)."""
        budget = self._bulk_budget
        rate = self.bulk.current(now)
        budget.set_rate(rate, now)
        if any(self._waiting_bulk[:lane]):
            # A more urgent bulk lane is waiting: let it have the next turn.
            return max(budget.wait_time(now), 1.0 / rate)
        return budget.wait_time(now)

    def chat_delay(self, lane: Lane, chat_id: int | None) -> float:
        """Return how long a send of ``lane`` to ``chat_id`` would wait for that chat now (a
        pause after a 429, the chat's or group's budget; nothing is spent). The outbox
        defers such a message instead of holding its batch, and the other chats in it,
        behind one chat; the bulk budget's pacing is not included (waiting for it is the
        bulk lanes' job)."""
        now = self._clock()
        delay = self.paused_until(chat_id, lane) - now
        if chat_id is not None:
            delay = max(delay, self._chat_budget(chat_id, now).wait_time(now))
        return max(0.0, delay)

    async def acquire(self, lane: Lane, chat_id: int | None, paid: bool = False) -> None:
        """Wait until ``lane`` may send one message to ``chat_id`` (``paid``: a paid
        broadcast, held by the paid budget instead of the bulk budget)."""
        bulk = lane in BULK_LANES
        while True:
            now = self._clock()
            delay = self.paused_until(chat_id, lane) - now
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if chat_id is not None:
                delay = self._chat_budget(chat_id, now).wait_time(now)
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
            if lane is Lane.BROADCAST and self._broadcast is not None:
                delay = self._broadcast.wait_time(now)
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
            if bulk and paid:
                delay = self._paid_budget.wait_time(now)
            elif bulk:
                delay = self._bulk_wait(lane, now)
            else:
                delay = 0.0
            if delay <= 0:
                if bulk:
                    (self._paid_budget if paid else self._bulk_budget).take(now)
                if lane is Lane.BROADCAST and self._broadcast is not None:
                    self._broadcast.take(now)
                if chat_id is not None:
                    self._chat_budget(chat_id, now).take(now)
                self.granted[lane] += 1
                return
            self._waiting_bulk[lane] += 1
            try:
                await asyncio.sleep(delay)
            finally:
                self._waiting_bulk[lane] -= 1

    def on_retry_after(self, chat_id: int | None, seconds: float) -> None:
        """Pause the chat a 429 named; cut the bulk budget if 429s come from several chats."""
        self.retry_afters += 1
        self.pause(chat_id, seconds)
        now = self._clock()
        if self.bulk.on_retry_after(chat_id, now):
            # Start the lower rate from an empty bucket, not with a token saved up.
            self._bulk_budget.bucket.tokens = min(self._bulk_budget.bucket.tokens, 0.0)
            _LOGGER.warning(
                "429s from several chats: bulk budget cut to %.1f messages a second",
                self.bulk.rate,
            )

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Wait for the chat's (and, for bulk lanes, the bulk budget's) turn and send.

        Replies (lane 0) are retried a few times after ``RetryAfter``, 5xx and timeouts;
        other lanes raise to the outbox, which reschedules.
        """
        lane = Lane((rate_limit_args or {}).get("lane", Lane.REPLY))
        paid = bool((rate_limit_args or {}).get("paid")) and lane is Lane.BROADCAST
        chat_id = _chat_id(data)
        limited = is_limited(endpoint)
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
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = _seconds(exc.retry_after)
                self.on_retry_after(chat_id, seconds)
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
            else:
                return _edit_done(endpoint, result)
            attempt += 1


def _edit_done(endpoint: str, result: Any) -> Any:
    """Return ``True`` for an edit's echoed message, else ``result``.

    Telegram answers an edit with the whole edited message; PTB would build a ``Message``
    from it (its text, entities, keyboard: a third of a button step's CPU on the bot's
    messages). The bot never reads it back: it already knows the chat and message id.
    ``True`` is what Telegram itself answers for an inline message's edit, so every edit
    method is typed ``Message | bool`` and callers handle it.
    """
    if endpoint.startswith("editMessage") and isinstance(result, dict):
        return True
    return result


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
