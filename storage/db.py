"""The single long-lived SQLite connection the application owns."""

from __future__ import annotations

import asyncio
import contextvars
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

from storage.errors import StorageError

Params = Sequence[Any] | dict[str, Any]

#: How long a statement run in place (on the event loop's thread) may take before SQLite stops
#: it and it runs again on the connection's thread, in seconds.
INLINE_BUDGET = 0.001
#: SQLite calls the budget check every this many virtual-machine instructions.
_PROGRESS_STEPS = 1000
#: Rows changed between two checkpoints of the write-ahead log. SQLite's automatic checkpoint is
#: off: it runs inside whichever statement commits, a statement run in place included, and copies
#: and syncs up to thousands of pages there.
CHECKPOINT_EVERY = 1000
#: Why a statement run in place gives way: a lock held by another connection (it would have to
#: wait), the budget spent, or a write sent to the read-only connection.
_GIVE_WAY = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_READONLY}
)
#: How long a statement on the thread waits for a lock another connection holds, in seconds.
BUSY_TIMEOUT = 5.0


class _Budget:
    """SQLite progress handler for statements run in place: stops one at :data:`INLINE_BUDGET`.

    Set on a connection only while it runs statements in place (SQLite calls it every
    ``_PROGRESS_STEPS`` instructions, counted over all of a cached statement's runs, so the
    check is on the clock, not on a count).
    """

    __slots__ = ("deadline",)

    def __init__(self) -> None:
        self.deadline = 0.0

    def __call__(self) -> bool:
        return time.perf_counter() > self.deadline

    def run(self, conn: sqlite3.Connection, sql: str, params: Params) -> list[Any] | None:
        """Run one statement on ``conn`` here and now; None: it has to run elsewhere.

        A statement stopped or refused here had no effect: it ran outside any transaction
        (callers make sure), so SQLite rolled it back whole.
        """
        self.deadline = time.perf_counter() + INLINE_BUDGET
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _GIVE_WAY:
                return None
            raise


class _Connection(aiosqlite.Connection):
    """aiosqlite's connection that runs a short write in place when its thread is idle.

    A trip to the connection's thread costs the event loop more than most statements cost
    SQLite (a one-row write takes microseconds; the hand-off, the wake-up and the future tens
    of them). :meth:`run_inline` runs a statement on the calling (event loop) thread only when
    nothing is queued for or running on the thread, so it never overtakes an earlier
    statement, and when no transaction is open, so a transaction's statements all stay on the
    thread. It never waits: in place the connection has no busy timeout and a
    :class:`_Budget`; a busy or stopped statement runs again on the thread, with the busy
    timeout and no budget. Everything else (transactions, cursors, backups) goes to the thread
    as in aiosqlite.

    The two modes switch on the thread, around its jobs: a job starts in the thread's mode, and
    the last one queued, ending outside a transaction, hands back. The counters are each
    written by one thread only (jobs submitted by the loop, finished by the worker), so the
    loop sees the worker idle exactly when they are equal.
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, 64)
        self._submitted = 0
        self._finished = 0
        self._inline = False
        self._budget = _Budget()
        self._changes_at_checkpoint = 0
        self._checkpoint: asyncio.Task[Any] | None = None

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        self._submitted += 1
        return await super()._execute(self._on_thread, partial(fn, *args, **kwargs))

    def _on_thread(self, job: Callable[[], Any]) -> Any:
        """Run ``job`` on the worker thread in the thread's mode; hand back when idle after it."""
        conn = self._conn
        try:
            if self._inline:
                conn.set_progress_handler(None, 0)
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
                self._inline = False
            return job()
        finally:
            try:
                if not conn.in_transaction:
                    if conn.total_changes - self._changes_at_checkpoint >= CHECKPOINT_EVERY:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                        self._changes_at_checkpoint = conn.total_changes
                    if self._submitted == self._finished + 1:
                        conn.execute("PRAGMA busy_timeout=0")
                        conn.set_progress_handler(self._budget, _PROGRESS_STEPS)
                        self._inline = True
            except sqlite3.Error:
                # The job closed the connection, or the checkpoint failed (the next job tries
                # again): either way the job's own outcome stands, and statements stay on the
                # thread until a job hands back.
                pass
            finally:
                self._finished += 1

    def run_inline(self, sql: str, params: Params) -> list[Any] | None:
        """Run one statement in place and return its rows; None: it has to go to the thread."""
        conn = self._connection
        if (
            conn is None
            or not self._inline
            or self._submitted != self._finished
            or conn.in_transaction
        ):
            return None
        rows = self._budget.run(conn, sql, params)
        if conn.total_changes - self._changes_at_checkpoint >= CHECKPOINT_EVERY:
            self._schedule_checkpoint()
        return rows

    def _schedule_checkpoint(self) -> None:
        """Have the thread checkpoint (it does after any of its jobs, when due)."""
        if self._checkpoint is None:
            self._checkpoint = asyncio.get_running_loop().create_task(self._execute(_nothing))
            self._checkpoint.add_done_callback(self._checkpointed)

    def _checkpointed(self, task: asyncio.Task[Any]) -> None:
        self._checkpoint = None
        if not task.cancelled():
            task.exception()  # the connection closed meanwhile: nothing left to checkpoint


def _nothing() -> None:
    """A job for the thread whose point is what the thread does after every job."""


def _open_reader(path: Path) -> sqlite3.Connection:
    """Open the read-only connection queries run on in place (see :meth:`Database.fetchall`)."""
    reader = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    try:
        reader.row_factory = aiosqlite.Row
        reader.execute("PRAGMA query_only=1")
    except BaseException:
        reader.close()
        raise
    return reader


class Database:
    """One aiosqlite connection with serialized write transactions, and one for reads.

    Queries (``fetchone``/``fetchall``) run in place on a second, read-only connection: in WAL
    mode a reader never waits for the writer, and each query sees what was committed when it
    started. Inside a task's own transaction they run on the transaction's connection instead,
    where they see its uncommitted rows. Writes outside a transaction run in place too when the
    connection's thread is idle (see :class:`_Connection`).
    """

    dialect = "sqlite"

    def __init__(
        self, path: Path, conn: _Connection, reader: sqlite3.Connection | None = None
    ) -> None:
        self.path = path
        self._conn = conn
        # None for ":memory:", where a second connection would open another, empty database.
        self._reader = reader
        self._reader_budget = _Budget()
        if reader is not None:
            reader.set_progress_handler(self._reader_budget, _PROGRESS_STEPS)
        self._lock = asyncio.Lock()
        # The task that currently owns this database's write transaction. A nested
        # ``transaction()`` in the same task joins it through a SAVEPOINT instead of
        # deadlocking on the lock. One per database: a task inside a transaction of one
        # (the bot's) owns nothing of another (the demo wallet's own file).
        self._owner: contextvars.ContextVar[asyncio.Task[Any] | None] = contextvars.ContextVar(
            f"storage_transaction_owner_{id(self)}", default=None
        )
        self._savepoints = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @classmethod
    async def open(cls, path: str | Path) -> Database:
        """Open (creating if needed) the database file and configure the connection."""
        path = Path(path)
        # Probe first: when aiosqlite.connect() itself fails, its worker thread is
        # left to report to the event loop later, which fails once the loop is closed.
        try:
            await asyncio.to_thread(_probe, path)
        except sqlite3.Error as exc:
            raise StorageError(f"Cannot open database {path}: {exc}") from exc
        conn = await _Connection(
            # The timeout is the busy timeout, set first: switching to WAL itself may have to
            # wait for a lock. Statements run in place on the event loop's thread as well.
            partial(
                sqlite3.connect,
                path,
                timeout=BUSY_TIMEOUT,
                isolation_level=None,
                check_same_thread=False,
            )
        )
        try:
            conn.row_factory = aiosqlite.Row
            # Checkpoints are the connection's own (see CHECKPOINT_EVERY).
            await conn.execute("PRAGMA wal_autocheckpoint=0")
            mode = await conn.execute_fetchall("PRAGMA journal_mode=WAL")
            # In-memory databases cannot use WAL; anything else silently not in WAL
            # would lose the concurrent-reader guarantee the design relies on.
            if str(path) != ":memory:" and next(iter(mode))[0].lower() != "wal":
                raise StorageError(f"Could not switch {path} to WAL journal mode")
            await conn.execute("PRAGMA foreign_keys=ON")
            # NORMAL is durable across application crashes in WAL mode; only an OS
            # crash or power loss can drop the last transactions.
            await conn.execute("PRAGMA synchronous=NORMAL")
            # Deleted and overwritten content is zeroed, not left in free space: what a user
            # asked to delete (or retention purged) cannot be read back from the file.
            await conn.execute("PRAGMA secure_delete=ON")
            reader = (
                None if str(path) == ":memory:" else await asyncio.to_thread(_open_reader, path)
            )
        except BaseException:
            await conn.close()
            raise
        return cls(path, conn, reader)

    async def close(self) -> None:
        """Close the connections, waiting for a running transaction to finish."""
        async with self._lock:
            self._closed = True
            if self._reader is not None:
                self._reader.close()
                self._reader = None  # queries now fail as the closed connection's do
            await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a write transaction: BEGIN IMMEDIATE, COMMIT on success, ROLLBACK on error.

        Only one transaction runs at a time. Calling this again inside a running
        transaction of the same task nests through a SAVEPOINT, so a caller can
        group several repository calls into one atomic unit.
        """
        task = asyncio.current_task()
        if task is not None and self._owner.get() is task:
            async with self._savepoint():
                yield self._conn
            return
        async with self._lock:
            token = self._owner.set(task)
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    # SQLite may already have rolled back (e.g. disk full); a second
                    # ROLLBACK would raise and hide the original error.
                    if self._conn.in_transaction:
                        await self._conn.execute("ROLLBACK")
                    raise
                await self._conn.execute("COMMIT")
            finally:
                self._owner.reset(token)

    async def write(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        """Run one writing statement as its own transaction; return its RETURNING rows.

        One statement instead of three (BEGIN, the statement, COMMIT): a single statement is
        atomic in autocommit mode. It takes the same lock as :meth:`transaction`, so it never
        lands inside another task's open transaction; inside the calling task's own
        transaction it simply joins it. With the connection's thread idle and no transaction
        open it runs in place (see :class:`_Connection`).
        """
        task = asyncio.current_task()
        if (task is not None and self._owner.get() is task) or not self._lock.locked():
            # Inside the caller's own transaction it joins it. With no transaction open, no
            # lock is needed: the statement runs in place or is queued on the connection's
            # thread at once (before this call first yields), so a transaction begun after it
            # queues its BEGIN behind it. Waiting for the lock there cost each of many
            # concurrent writes a hand-off of the lock (a loop iteration).
            rows = self._conn.run_inline(sql, params)
            if rows is not None:
                return rows
            return list(await self._conn.execute_fetchall(sql, params))
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, params))

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[None]:
        self._savepoints += 1
        name = f"sp_{self._savepoints}"
        await self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self._conn.execute(f"ROLLBACK TO {name}")
            await self._conn.execute(f"RELEASE {name}")
            raise
        await self._conn.execute(f"RELEASE {name}")

    async def checkpoint(self) -> bool:
        """Fold the write-ahead log into the database file and truncate it (it keeps older
        copies of pages, deleted content included); False if a reader kept it from finishing."""
        async with self._lock:
            rows = await self._conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
        return next(iter(rows))[0] == 0

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        """Run a query and return its first row, or None (queries here select a few rows)."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        """Run a query and return all rows.

        Executing and fetching are one job on the connection's thread. As two jobs (a cursor's
        ``execute`` then ``fetchall``) another task's UPDATE could run between them on this
        same connection, and SQLite leaves the rows of a statement whose table changed midway
        undefined: a GROUP BY status once came back with a NULL status, and a broadcast was
        marked done with recipients still queued.

        Outside the calling task's own transaction the query runs in place on the read-only
        connection (a query that would write, or runs past :data:`INLINE_BUDGET`, has no effect
        there and goes to the connection's thread).
        """
        if self._reader is not None:
            task = asyncio.current_task()
            if task is None or self._owner.get() is not task:
                rows = self._reader_budget.run(self._reader, sql, params)
                if rows is not None:
                    return rows
        rows = self._conn.run_inline(sql, params)
        if rows is not None:
            return rows
        return list(await self._conn.execute_fetchall(sql, params))

    @property
    def worker_thread(self) -> threading.Thread:
        """Return the thread aiosqlite runs this connection's statements on (benchmarks read
        its CPU clock to tell the database's share apart)."""
        return self._conn._thread  # aiosqlite keeps it private; stable since 0.17

    async def set_trace(self, callback: Callable[[str], None] | None) -> None:
        """Call ``callback(sql)`` for every statement run (benchmarks count them); None: stop."""
        await self._conn.set_trace_callback(callback)
        if self._reader is not None:
            self._reader.set_trace_callback(callback)

    async def backup(self, dest: str | Path) -> None:
        """Copy the committed database into ``dest`` with SQLite's online backup API.

        The copy is written next to ``dest`` and renamed into place, so ``dest``
        is either the previous file or a complete backup, never a partial one.
        A second connection is used, so the copy is a committed snapshot and
        writers are not blocked while it runs.
        """
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.unlink(missing_ok=True)
        source = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            # The target is used from aiosqlite's worker thread, not this one.
            target = sqlite3.connect(tmp, check_same_thread=False)
            try:
                await source.backup(target)
            finally:
                target.close()
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            await source.close()
        os.replace(tmp, dest)


def _probe(path: Path) -> None:
    sqlite3.connect(path).close()
