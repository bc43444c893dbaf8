"""Group commit: many callers' small writes in one statement, each caller still waiting
for its own write to be on disk."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Collect items from concurrent callers and write them with one ``flush(items)`` call.

    :meth:`add` returns once a flush containing the item has completed (or raises what that
    flush raised), so a caller's guarantee is the same as writing alone; callers that arrive
    while a flush runs go into the next one. With one caller at a time it is a plain write.
    """

    def __init__(self, flush: Callable[[list[T]], Awaitable[None]]) -> None:
        self._flush = flush
        self._pending: list[T] = []
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def add(self, item: T) -> None:
        """Queue ``item`` for the next flush and wait until that flush is done."""
        self._pending.append(item)
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        waiter = self._waiter
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="group-commit")
        # A cancelled caller must not cancel the flush its neighbours wait for.
        await asyncio.shield(waiter)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                waiter, self._waiter = self._waiter, None
                assert waiter is not None
                try:
                    await self._flush(batch)
                except asyncio.CancelledError:
                    waiter.cancel()
                    raise
                except Exception as exc:
                    if not waiter.done():
                        waiter.set_exception(exc)
                        waiter.exception()  # retrieved here: a caller may have gone away
                else:
                    if not waiter.done():
                        waiter.set_result(None)
        finally:
            self._task = None
            waiter = self._waiter
            if self._pending and waiter is not None and not waiter.done():
                # Only when cancelled mid-flight: nobody will flush these any more.
                self._waiter = None
                waiter.set_exception(RuntimeError("group commit stopped"))
                waiter.exception()
                self._pending = []
