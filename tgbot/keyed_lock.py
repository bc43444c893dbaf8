"""Per-key asyncio locks that do not accumulate."""

from __future__ import annotations

import asyncio
from typing import Any


class KeyedLock:
    """FIFO locks per key that exist only while someone holds or waits for them.

    The table never grows with the number of keys ever seen, only with the keys in use.
    """

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """Return the number of keys in use."""
        return len(self._locks)

    async def acquire(self, key: Any) -> None:
        """Wait for the lock of ``key`` (waiters are served in arrival order)."""
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._forget(key)
            raise

    def release(self, key: Any) -> None:
        """Release the lock of ``key``."""
        lock, _ = self._locks[key]
        lock.release()
        self._forget(key)

    def _forget(self, key: Any) -> None:
        lock, users = self._locks[key]
        if users <= 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)
