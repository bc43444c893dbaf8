"""Nothing the database does can make the event loop wait (a long statement, a lock held
elsewhere) or lose a row (storage/db.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import Database

#: A query of a few hundred ms of SQLite work.
LONG_QUERY = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000000) "
    "SELECT COUNT(*) FROM n"
)
#: A write of 300,000 rows (k 100 to 300,099, v 'bulk').
BULK_INSERT = (
    "INSERT INTO t (k, v) SELECT x, 'bulk' FROM (WITH RECURSIVE n(x) AS "
    "(SELECT 100 UNION ALL SELECT x + 1 FROM n WHERE x < 300099) SELECT x FROM n)"
)


@pytest.fixture
async def plain(db_path: Path) -> Any:
    """An open database with one table ``t(k PRIMARY KEY, v)``."""
    db = await Database.open(db_path)
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        yield db
    finally:
        await db.close()


class Ticker:
    """Counts event-loop turns while it runs: the loop was free if it moved."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.001)

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


async def test_a_long_query_never_holds_the_event_loop(plain: Database) -> None:
    async with Ticker() as ticker:
        before = ticker.ticks
        row = await plain.fetchone(LONG_QUERY)
        assert row is not None and row[0] == 3_000_000
        assert ticker.ticks > before  # the loop kept turning: it ran on the thread


async def test_a_long_write_runs_off_the_loop_and_once(
    plain: Database,
) -> None:
    async with Ticker() as ticker:
        before = ticker.ticks
        await plain.write(BULK_INSERT)
        assert ticker.ticks > before
    row = await plain.fetchone("SELECT COUNT(*), MIN(k), MAX(k) FROM t WHERE v = 'bulk'")
    assert tuple(row) == (300_000, 100, 300_099)


async def test_a_long_statement_inside_a_transaction_keeps_the_transaction_whole(
    plain: Database,
) -> None:
    async with plain.transaction() as conn:
        await conn.execute("INSERT INTO t VALUES (1, 'first')")
        await plain.write(BULK_INSERT)
    row = await plain.fetchone("SELECT COUNT(*) FROM t")
    assert row[0] == 300_001
    assert (await plain.fetchone("SELECT v FROM t WHERE k = 1"))["v"] == "first"


async def test_a_write_never_waits_on_the_loop_for_a_lock_held_elsewhere(
    plain: Database, db_path: Path
) -> None:
    """Another process (here a plain connection) holds the write lock; it lets go only when the
    event loop runs its commit, so the write succeeds only if it waited off the loop."""
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (6, 'other')")
        asyncio.get_running_loop().call_later(0.2, other.execute, "COMMIT")
        async with Ticker() as ticker:
            before = ticker.ticks
            await plain.write("INSERT INTO t VALUES (7, 'ours')")
            assert ticker.ticks > before
    finally:
        other.close()
    rows = await plain.fetchall("SELECT k, v FROM t ORDER BY k")
    assert [tuple(r) for r in rows] == [(6, "other"), (7, "ours")]


async def test_a_closed_database_refuses_queries_and_writes(db_path: Path) -> None:
    db = await Database.open(db_path)
    await db.close()
    with pytest.raises(ValueError, match="closed"):
        await db.fetchone("SELECT 1")
    with pytest.raises(ValueError, match="closed"):
        await db.write("CREATE TABLE x (a)")


# Any mix of single writes, transactions and queries, run together: every committed row is
# there exactly once, and a failed transaction left none of its rows.
_op = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 10_000)),
    st.tuples(st.just("tx"), st.lists(st.integers(0, 10_000), min_size=1, max_size=4)),
    st.tuples(st.just("failing tx"), st.lists(st.integers(0, 10_000), min_size=1, max_size=3)),
    st.tuples(st.just("read"), st.just(0)),
)


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(_op, min_size=1, max_size=30))
def test_mixed_concurrent_work_keeps_every_row_once(ops: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_mixed(Path(tmp) / "mix.db", ops))


async def _mixed(path: Path, ops: list[tuple[str, Any]]) -> None:
    db = await Database.open(path)
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, tx INTEGER)")
        expected: set[tuple[int, int]] = set()
        used: set[int] = set()

        def fresh(key: int) -> int:
            while key in used:
                key += 10_001
            used.add(key)
            return key

        async def run(number: int, op: tuple[str, Any]) -> None:
            kind, arg = op
            if kind == "write":
                key = fresh(arg)
                await db.write("INSERT INTO t VALUES (?, ?)", (key, -number))
                expected.add((key, -number))
            elif kind == "read":
                await asyncio.sleep(0)
                await db.fetchall("SELECT k, tx FROM t")
            else:
                keys = [fresh(k) for k in arg]
                try:
                    async with db.transaction() as conn:
                        for key in keys:
                            await conn.execute("INSERT INTO t VALUES (?, ?)", (key, number))
                            await asyncio.sleep(0)
                        if kind == "failing tx":
                            raise RuntimeError("rolled back")
                except RuntimeError:
                    return
                expected.update((key, number) for key in keys)

        await asyncio.gather(*(run(n + 1, op) for n, op in enumerate(ops)))
        rows = await db.fetchall("SELECT k, tx FROM t")
        assert {tuple(r) for r in rows} == expected
        assert len(rows) == len(expected)
    finally:
        await db.close()
