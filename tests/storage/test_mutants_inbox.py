"""The inbox's bookkeeping pinned where the repository tests leave it loose: the times it
records, "the first time only", the edges of pruning and the empty cases.

Written to kill the mutants of ``storage/repos/inbox.py`` that the repository tests let live
(``scripts/mutate.sh inbox``, docs/testing.md). SQLite only: that is the file mutated, and
the PostgreSQL inbox (``storage/postgres/repos/inbox.py``) has no ``mark_done_many`` yet.
"""

from __future__ import annotations

import time

import pytest

from storage import Database, Repositories


@pytest.fixture
def repos(sqlite_db: Database) -> Repositories:
    return Repositories(sqlite_db)


async def _times(repos: Repositories, update_id: int) -> tuple[float, float | None]:
    row = await repos.db.fetchone(
        "SELECT received_at, done_at FROM inbox WHERE update_id = ?", (update_id,)
    )
    assert row is not None
    return (row[0], row[1])


async def test_an_update_records_when_it_came_and_when_it_was_first_done(repos: Repositories):
    assert await repos.inbox.store(1, "a", now=5.0)
    assert await repos.inbox.store_many([(2, "b"), (3, "c")], now=6.0) == [2, 3]
    before = time.time()
    assert await repos.inbox.store(4, "d")
    assert await repos.inbox.store_many([(5, "e")]) == [5]
    assert [await _times(repos, i) for i in (1, 2, 3)] == [(5.0, None), (6.0, None), (6.0, None)]
    for update_id in (4, 5):
        received, _ = await _times(repos, update_id)
        assert before - 1 <= received <= time.time() + 1

    await repos.inbox.mark_done(1, now=50.0)
    await repos.inbox.mark_done(1, now=90.0)  # handled again after a crash: the first stays
    await repos.inbox.mark_done_many([2, 3], now=60.0)
    await repos.inbox.mark_done_many([2, 3, 4], now=95.0)
    assert [(await _times(repos, i))[1] for i in (1, 2, 3, 4)] == [50.0, 60.0, 60.0, 95.0]
    before = time.time()
    await repos.inbox.mark_done(5)
    _, done = await _times(repos, 5)
    assert done is not None and before - 1 <= done <= time.time() + 1
    assert await repos.inbox.count_pending() == 0


async def test_an_empty_inbox(repos: Repositories):
    assert await repos.inbox.store_many([]) == []
    assert await repos.inbox.pending() == []
    assert await repos.inbox.count_pending() == 0
    assert await repos.inbox.max_update_id() is None
    assert await repos.inbox.prune(older_than=1e12) == 0


async def test_pending_is_oldest_first_whatever_the_order_stored(repos: Repositories):
    assert await repos.inbox.store_many([(30, "c"), (10, "a")]) == [30, 10]
    assert await repos.inbox.store(20, "b")
    assert await repos.inbox.pending() == [(10, "a"), (20, "b"), (30, "c")]
    assert await repos.inbox.max_update_id() == 30


async def test_prune_takes_only_updates_done_strictly_before_the_cut(repos: Repositories):
    await repos.inbox.store_many([(1, "a"), (2, "b"), (3, "c"), (4, "d")], now=1.0)
    await repos.inbox.mark_done_many([1, 2], now=10.0)
    await repos.inbox.mark_done(3, now=20.0)
    await repos.inbox.mark_done(4, now=5.0)  # the newest: kept whatever its age
    assert await repos.inbox.prune(older_than=20.0) == 2
    assert await repos.inbox.is_done(3)
    assert not await repos.inbox.is_done(1)
    assert await repos.inbox.max_update_id() == 4
    assert await repos.inbox.prune(older_than=20.0) == 0
