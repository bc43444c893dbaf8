"""The single long-lived SQLite connection the application owns."""

from __future__ import annotations

import asyncio
import contextvars
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from storage.errors import StorageError

Params = Sequence[Any] | dict[str, Any]


class Database:
    """One aiosqlite connection with serialized write transactions.

    Reads (``fetchone``/``fetchall``) run without the lock, each as one job on the
    connection's thread (never split around another task's statement). They share the
    one connection, so a read issued while another task's transaction is open sees
    that transaction's uncommitted rows; repositories only read what they may act on,
    so this is acceptable and keeps reads cheap.
    """

    dialect = "sqlite"

    def __init__(self, path: Path, conn: aiosqlite.Connection) -> None:
        self.path = path
        self._conn = conn
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
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = aiosqlite.Row
            # Set first: switching to WAL itself may have to wait for a lock.
            await conn.execute("PRAGMA busy_timeout=5000")
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
        except BaseException:
            await conn.close()
            raise
        return cls(path, conn)

    async def close(self) -> None:
        """Close the connection, waiting for a running transaction to finish."""
        async with self._lock:
            self._closed = True
            await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a write transaction: BEGIN IMMEDIATE, COMMIT on success, ROLLBACK on error.

        Only one transaction runs at a time. Calling this again inside a running
        transaction of the same task nests through a SAVEPOINT, so a caller can
        group several repository calls into one atomic unit.
        """
        if self._in_own_transaction():
            async with self._savepoint():
                yield self._conn
            return
        async with self._lock:
            token = self._owner.set(asyncio.current_task())
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

        One job on the connection's thread instead of three (BEGIN, the statement, COMMIT):
        a single statement is atomic in autocommit mode. It takes the same lock as
        :meth:`transaction`, so it never lands inside another task's open transaction; inside
        the calling task's own transaction it simply joins it.
        """
        if self._in_own_transaction():
            return list(await self._conn.execute_fetchall(sql, params))  # it joins it
        return list(await self._outside_transactions(self._conn.execute_fetchall, sql, params))

    async def write_all(self, statements: Sequence[tuple[str, Params]]) -> list[list[Any]]:
        """Run several writing statements as one transaction; return each one's RETURNING
        rows. All of them are written or none.

        One job on the connection's thread (BEGIN, the statements, COMMIT) instead of one per
        statement, with the same locking as :meth:`write`; inside the calling task's own
        transaction the statements simply join it. A later statement may depend on an
        earlier one's outcome through SQL (``changes()``: rows the previous one changed).
        """
        if self._in_own_transaction():
            return [list(await self._conn.execute_fetchall(sql, p)) for sql, p in statements]
        # aiosqlite keeps both private (its job queue, the sqlite3 connection); stable since
        # 0.17, and the lock file pins the version.
        return await self._outside_transactions(
            self._conn._execute, _run_all, self._conn._conn, statements
        )

    def _in_own_transaction(self) -> bool:
        task = asyncio.current_task()
        return task is not None and self._owner.get() is task

    async def _outside_transactions(self, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run one job on the connection's thread, never inside another task's transaction.

        With no transaction open no lock is needed: the job is queued on the connection's
        thread at once (before this call first yields), so a transaction begun after it
        queues its BEGIN behind it. Waiting for the lock there cost each of many concurrent
        writes a hand-off of the lock (a loop iteration) on top of its thread round trip.
        """
        if not self._lock.locked():
            return await call(*args)
        async with self._lock:
            return await call(*args)

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
        """
        return list(await self._conn.execute_fetchall(sql, params))

    @property
    def worker_thread(self) -> threading.Thread:
        """Return the thread aiosqlite runs this connection's statements on (benchmarks read
        its CPU clock to tell the database's share apart)."""
        return self._conn._thread  # aiosqlite keeps it private; stable since 0.17

    async def set_trace(self, callback: Callable[[str], None] | None) -> None:
        """Call ``callback(sql)`` for every statement run (benchmarks count them); None: stop."""
        await self._conn.set_trace_callback(callback)

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


def _run_all(conn: sqlite3.Connection, statements: Sequence[tuple[str, Params]]) -> list[list]:
    """On the connection's thread: the statements in one transaction (rolled back on error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = [conn.execute(sql, params).fetchall() for sql, params in statements]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (disk full)
            conn.execute("ROLLBACK")
        raise
    return rows


def _probe(path: Path) -> None:
    sqlite3.connect(path).close()
