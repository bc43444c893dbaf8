"""The demo wallet on an event loop of its own, in a thread of its own, for ``bench.cost``.

In ``tgbot demo`` the demo wallet runs on the bot's event loop, so a CPU figure of the
process counts the wallet's Python and its SQLite thread as the bot's. A real wallet is
another service. :class:`ThreadWallet` keeps the same wallet (the same file, the same code)
but runs it on its own loop: every call the bot makes crosses to that loop and the answer
crosses back (two thread hand-offs, about what a database round trip costs the bot), and
all of the wallet's own work is on threads whose CPU clocks :meth:`ThreadWallet.cpu_seconds`
reads, so the bot's share is the process's CPU minus that.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any


class ThreadWallet:
    """A :class:`~tgbot.backend.demo.DemoWallet` on its own loop; its coroutine methods are
    called from the bot's loop as if over a (very fast) network."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wallet-loop")
        self._wallet: Any = None
        self._db: Any = None

    async def start(self) -> ThreadWallet:
        """Start the wallet's thread and open the wallet there."""
        self._thread.start()
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._open(), self._loop))
        return self

    async def _open(self) -> None:
        from tgbot.backend.demo import DemoWallet
        from tgbot.backend.demo_store import WalletStore, open_wallet_database

        self._db = await open_wallet_database(self._path)
        self._wallet = DemoWallet(WalletStore(self._db), public_url="http://127.0.0.1:1")

    async def stop(self) -> None:
        """Close the wallet's database and stop its thread."""
        if self._db is not None:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._db.close(), self._loop)
            )
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()

    def cpu_seconds(self) -> float:
        """Return the CPU seconds of the wallet's loop thread and its SQLite thread so far."""
        threads = [self._thread]
        if self._db is not None:
            threads.append(self._db.worker_thread)
        return sum(
            time.clock_gettime(time.pthread_getcpuclockid(t.ident))
            for t in threads
            if t.ident is not None and t.is_alive()
        )

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._wallet, name)
        if not asyncio.iscoroutinefunction(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            future = asyncio.run_coroutine_threadsafe(target(*args, **kwargs), self._loop)
            return await asyncio.wrap_future(future)

        return call
