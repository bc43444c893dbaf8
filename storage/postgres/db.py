"""The bot's records in PostgreSQL: an asyncpg pool with the SQLite Database's contract."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from storage.base import redact_url
from storage.errors import AlreadyRunning, StorageError

_LOGGER = logging.getLogger(__name__)

# The task that owns an open transaction and its connection. Only that task joins it (a
# task it starts inherits the variable but must not share the connection: asyncpg runs one
# statement at a time per connection).
_owner: contextvars.ContextVar[tuple[asyncio.Task[Any], asyncpg.Connection] | None] = (
    contextvars.ContextVar("storage_pg_transaction_owner", default=None)
)

#: Errors that mean the server could not be reached or refused us (not a bug in a query).
CONNECT_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


#: Seconds a new poller waits for the previous one to finish the updates it had fetched
#: (it lost the lock but still runs) before it starts anyway.
DRAIN_WAIT = 30.0


def _instance_name() -> str:
    """Return the application_name of the instance locks' connections: which process on
    which host holds them (operators and a waiting standby read it in pg_stat_activity)."""
    return f"tgbot-instance {socket.gethostname()}:{os.getpid()}"[:63]


async def _try_lock(conn: asyncpg.Connection, key: int) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))


def rowcount(status: str) -> int:
    """Return the number of rows a command touched, from its status (``"UPDATE 3"``)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def lock_key(*parts: object) -> int:
    """Return a stable signed 64-bit advisory lock key for ``parts`` (the same in every
    process and on every host, unlike ``hash()``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database (and schema) of the bot.

    The same contract as :class:`storage.db.Database`: ``transaction()`` groups repository
    calls (nested: a savepoint), and inside it every read and write of the owning task goes
    through the transaction's connection. Unlike SQLite, transactions of different tasks
    (and processes) run concurrently at READ COMMITTED: see :class:`storage.base.BotDatabase`.

    The schema is the connection's ``search_path`` (a URL may set it:
    ``postgresql://host/db?search_path=bot``); several bots can share one database in
    separate schemas, and every advisory lock key here is scoped to the database and schema.
    """

    dialect = "postgresql"

    def __init__(self, url: str, pool: asyncpg.Pool, scope: str) -> None:
        self.url = url
        self._pool = pool
        self._scope = scope
        self._closed = False
        self._instance: asyncpg.Connection | None = None
        self._work: asyncpg.Connection | None = None
        self._trace: Callable[[str], None] | None = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def path(self) -> str:
        """Where the database is, for messages (the URL without its password)."""
        return redact_url(self.url)

    @property
    def scope(self) -> str:
        """``database/schema`` this object works in (advisory lock keys include it)."""
        return self._scope

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> PostgresDatabase:
        """Connect a pool to ``url``; raise StorageError (password hidden) if that fails."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                server_settings={"application_name": "tgbot"},
            )
        except CONNECT_ERRORS as exc:
            raise StorageError(f"Cannot open database {redact_url(url)}: {exc}") from exc
        try:
            row = await pool.fetchrow("SELECT current_database(), current_schema()")
            if row is None or row[1] is None:
                raise StorageError(
                    f"Database {redact_url(url)} has no schema to work in: create the "
                    "schema named by search_path (or use the default public schema)"
                )
        except BaseException:
            await pool.close()
            raise
        return cls(url, pool, f"{row[0]}/{row[1]}")

    async def close(self) -> None:
        """Release the instance lock (if held) and close every connection."""
        if self._closed:
            return
        self._closed = True
        await self.release_instance()
        try:
            # Waits for borrowed connections to come back: a transaction still running.
            await asyncio.wait_for(self._pool.close(), 10)
        except TimeoutError:
            self._pool.terminate()

    def key(self, *parts: object) -> int:
        """Return the advisory lock key of ``parts`` in this database and schema."""
        return lock_key(self._scope, *parts)

    # -- connections -----------------------------------------------------------------

    def _own(self) -> asyncpg.Connection | None:
        owner = _owner.get()
        if owner is not None and owner[0] is asyncio.current_task():
            return owner[1]
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """Run a transaction: COMMIT on success, ROLLBACK on error; nested: a SAVEPOINT."""
        conn = self._own()
        if conn is not None:
            async with conn.transaction():
                yield conn
            return
        task = asyncio.current_task()
        assert task is not None, "transactions run inside a task"
        async with self._pool.acquire() as conn:
            token = _owner.set((task, conn))
            try:
                async with conn.transaction():
                    yield conn
            finally:
                _owner.reset(token)

    @property
    def in_transaction(self) -> bool:
        """Whether the calling task runs inside one of its transactions."""
        return self._own() is not None

    async def set_trace(self, callback: Callable[[str], None] | None) -> None:
        """Call ``callback(sql)`` for every statement run through this object (benchmarks and
        tests count them); None: stop. Like SQLite's trace, but only this object's own
        statements: transaction control, locks and migrations are not reported."""
        self._trace = callback

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> asyncpg.Record | None:
        """Run a query and return its first row, or None."""
        if self._trace is not None:
            self._trace(sql)
        conn = self._own()
        if conn is not None:
            return await conn.fetchrow(sql, *params)
        return await self._pool.fetchrow(sql, *params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        """Run a query and return all rows."""
        if self._trace is not None:
            self._trace(sql)
        conn = self._own()
        if conn is not None:
            return await conn.fetch(sql, *params)
        return await self._pool.fetch(sql, *params)

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run a query and return the first column of its first row (None if no row)."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement (its own transaction unless inside one); return rows touched."""
        if self._trace is not None:
            self._trace(sql)
        conn = self._own()
        if conn is not None:
            return rowcount(await conn.execute(sql, *params))
        return rowcount(await self._pool.execute(sql, *params))

    async def write(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        """Run one writing statement (its own transaction unless inside one); return its
        RETURNING rows."""
        return await self.fetchall(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows``, all in one transaction."""
        if self._trace is not None:
            self._trace(sql)
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    def acquire(self) -> Any:
        """Borrow a pool connection for work that spans transactions (``async with``)."""
        return self._pool.acquire()

    async def connect(
        self, application_name: str = "tgbot-locks", timeout: float = 60
    ) -> asyncpg.Connection:
        """Open a dedicated connection (not from the pool), e.g. to hold session locks."""
        try:
            return await asyncpg.connect(
                self.url,
                timeout=timeout,
                server_settings={"application_name": application_name},
            )
        except CONNECT_ERRORS as exc:
            raise StorageError(f"Cannot open database {self.path}: {exc}") from exc

    # -- one running instance --------------------------------------------------------

    async def lock_instance(self, drain: float = 0.0) -> None:
        """Take the one-instance lock of this database and schema, or raise AlreadyRunning.

        Two session advisory locks, each on a dedicated connection: PostgreSQL drops them
        when the process dies (its connections close), so a crash never leaves a stale lock.
        ``instance`` says who polls Telegram (the poller; :meth:`wait_instance` makes a
        standby); ``instance-work`` is held until the process has finished its work, so a
        poller that lost ``instance`` (its connection cut) and still finishes the updates it
        had fetched keeps the next one from starting on them. Several workers in webhook mode
        share the database without either (leases and chat locks, ``tgbot.cluster``).

        Args:
            drain: seconds to wait for a previous holder still finishing its work; past them
                (a process that lost ``instance`` cannot poll any more) start anyway. 0:
                refuse while it works (``tgbot migrate``).
        """
        if self._instance is not None:
            return
        conn = await self.connect(_instance_name(), timeout=10)
        try:
            if not await _try_lock(conn, self.key("instance")):
                holder = await self._holder(conn, "instance")
                raise AlreadyRunning(
                    f"Another instance is already running on {self.path} ({self._scope}; {holder})"
                )
            work = await self._take_work_lock(drain)
            if work is None and not drain:
                raise AlreadyRunning(
                    f"The previous instance on {self.path} is still finishing its work "
                    f"({self._scope}; {await self._holder(conn, 'instance-work')})"
                )
            if work is None:
                _LOGGER.warning(
                    "The previous instance on %s still works after %.0f s (%s); it lost the "
                    "lock, so it cannot poll: starting anyway",
                    self.path,
                    drain,
                    await self._holder(conn, "instance-work"),
                )
        except BaseException:
            await conn.close()
            raise
        self._instance, self._work = conn, work

    async def wait_instance(
        self,
        retry: float,
        stop: asyncio.Event,
        *,
        waiting: Callable[[str], None],
        drain: float = DRAIN_WAIT,
    ) -> bool:
        """Take the one-instance lock, waiting as a standby while another process holds it.

        Tries every ``retry`` seconds (also while the server cannot be reached); calls
        ``waiting(why)`` when it starts to wait and whenever the reason changes (another
        holder, the server down). Once it holds ``instance``, it waits up to ``drain`` seconds
        for the previous holder to finish its work (``instance-work``). Returns True when
        held, False if ``stop`` was set first.
        """
        said = None
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                attempt = asyncio.ensure_future(self.lock_instance(drain))
                # A stop ends the wait at once, also a connection attempt or the drain.
                await asyncio.wait({attempt, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not attempt.done():
                    attempt.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await attempt
                    break
                try:
                    attempt.result()
                    if stop.is_set():
                        await self.release_instance()
                        break
                    return True
                except AlreadyRunning as exc:
                    why = str(exc)
                except StorageError as exc:
                    why = f"cannot reach the database: {exc}"
                except CONNECT_ERRORS as exc:
                    why = f"cannot reach the database: {type(exc).__name__}: {exc}"
                if why != said:
                    said = why
                    waiting(why)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stopped), retry)
        finally:
            stopped.cancel()
        return False

    async def _take_work_lock(self, wait: float) -> asyncpg.Connection | None:
        """Take ``instance-work`` at once if free, else within ``wait`` seconds (the previous
        holder finishing); None if it was still held."""
        work = await self.connect(_instance_name(), timeout=10)
        try:
            deadline = asyncio.get_running_loop().time() + wait
            said = False
            while not await _try_lock(work, self.key("instance-work")):
                if wait and not said:
                    said = True
                    _LOGGER.info(
                        "Holding the poller lock; waiting up to %.0f s for the previous poller "
                        "to finish the updates it had fetched (%s)",
                        wait,
                        await self._holder(work, "instance-work"),
                    )
                if asyncio.get_running_loop().time() >= deadline:
                    await work.close()
                    return None
                await asyncio.sleep(0.05)
        except BaseException:
            await work.close()
            raise
        return work

    async def _holder(self, conn: asyncpg.Connection, name: str) -> str:
        holder = await conn.fetchval(
            "SELECT string_agg('server process ' || a.pid::text || ' (' || "
            "a.application_name || ') on ' || COALESCE(host(a.client_addr), 'local socket'), "
            "', ') FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
            self.key(name),
        )
        return holder or "server process unknown"

    def on_instance_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` as soon as the held ``instance`` lock's connection ends other than
        by :meth:`release_instance` (the server restarted, the backend was terminated, the
        network closed it): the lock is gone, and another process may take it."""
        conn = self._instance
        assert conn is not None, "the instance lock is not held"

        def ended(closed: object) -> None:
            if self._instance is closed:
                callback()

        conn.add_termination_listener(ended)

    async def check_instance(self, timeout: float) -> bool:
        """Return whether the ``instance`` lock is still held: its session answers within
        ``timeout`` seconds (a session holds its advisory locks until it ends)."""
        conn = self._instance
        if conn is None or conn.is_closed():
            return False
        try:
            return await conn.fetchval("SELECT 1", timeout=timeout) == 1
        except (*CONNECT_ERRORS, asyncpg.InterfaceError):
            return False

    async def release_instance(self) -> None:
        """Release the one-instance lock; safe to call when not held."""
        conn, self._instance = self._instance, None
        work, self._work = self._work, None
        for held in (conn, work):
            if held is not None:
                # The session ends, and its advisory locks with it.
                with contextlib.suppress(*CONNECT_ERRORS):
                    await held.close(timeout=5)

    # -- maintenance -----------------------------------------------------------------

    async def vacuum(self, tables: Sequence[str]) -> None:
        """VACUUM ``tables`` (names from code, never from input): dead rows left by deletes
        and updates are removed from the tables and their indexes."""
        async with self.acquire() as conn:
            for table in tables:
                await conn.execute(f'VACUUM "{table}"')
