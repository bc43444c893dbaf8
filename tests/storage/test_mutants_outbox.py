"""The outbox's bookkeeping pinned where the repository tests leave it loose: the time every
transition records (pruning reads it), the defaults of ``due`` and ``claim_due``, deferring,
and what is written to disk.

Written to kill the mutants of ``storage/repos/outbox.py`` that the repository tests let live
(``scripts/mutate.sh outbox``, docs/testing.md). SQLite only: that is the file mutated.
"""

from __future__ import annotations

import time

import pytest

from storage import Database, Repositories


@pytest.fixture
def repos(sqlite_db: Database) -> Repositories:
    return Repositories(sqlite_db)


async def _raw(repos: Repositories, id: int, column: str):
    row = await repos.db.fetchone(f"SELECT {column} FROM outbox WHERE id = ?", (id,))
    assert row is not None
    return row[0]


async def test_every_transition_records_its_time_and_pruning_reads_it(repos: Repositories):
    ids = [
        await repos.outbox.enqueue(0, chat, "sendMessage", {"text": "a"}, now=0.0)
        for chat in range(7)
    ]
    a, b, c, d, e, f, g = ids
    assert await repos.outbox.mark_sending([a, b, c, d], now=1.0) == 4
    assert [await _raw(repos, id, "updated_at") for id in (a, b, c, d, e)] == [1.0] * 4 + [0.0]
    assert await repos.outbox.reset_ids([d], now=2.0) == 1
    await repos.outbox.mark_sent(a, {"message_id": 1}, now=3.0)
    await repos.outbox.reschedule(b, next_attempt_at=50.0, error="RetryAfter", now=4.0)
    await repos.outbox.mark_failed(c, "Forbidden", now=5.0)
    assert await repos.outbox.cancel([e], now=6.0) == 1
    await repos.outbox.enqueue(3, 99, "sendMessage", {}, kind="broadcast", ref="b1", now=0.0)
    assert await repos.outbox.cancel_pending("broadcast", "b1", now=7.0) == 1
    await repos.outbox.mark_sending([f], now=1.0)
    assert await repos.outbox.append_text(g, "more", "r2", now=8.0)
    assert await repos.outbox.reset_in_flight(now=9.0) == 1  # f
    updated = [await _raw(repos, id, "updated_at") for id in ids]
    assert updated == [3.0, 4.0, 5.0, 2.0, 6.0, 9.0, 8.0]
    # Sent and cancelled calls go when finished before the cut, not by when they were queued.
    assert await repos.outbox.prune_sent(older_than=6.5) == 2  # a (3.0) and e (6.0)
    assert await repos.outbox.get(a) is None and await repos.outbox.get(e) is None
    assert await repos.outbox.prune_sent(older_than=7.5) == 1  # the broadcast's (7.0)


async def test_transitions_without_a_time_use_the_clock(repos: Repositories):
    before = time.time()
    a = await repos.outbox.enqueue(0, 1, "sendMessage", {}, now=0.0)
    b = await repos.outbox.enqueue(0, 2, "sendMessage", {"text": "a"}, now=0.0)
    assert await repos.outbox.enqueue_many(
        [{"lane": 0, "chat_id": 3, "method": "sendMessage", "params": {}}]
    )
    await repos.outbox.mark_sending([a])
    await repos.outbox.cancel_pending("none")  # touches nothing
    assert await repos.outbox.append_text(b, "x", "r")
    assert before - 1 <= await _raw(repos, a, "updated_at") <= time.time() + 1
    assert before - 1 <= await _raw(repos, b, "updated_at") <= time.time() + 1
    for column in ("next_attempt_at", "created_at", "updated_at"):  # the enqueue_many one
        assert before - 1 <= await _raw(repos, b + 1, column) <= time.time() + 1


async def test_due_and_claim_due_default_to_now_and_a_hundred(repos: Repositories):
    items = [{"lane": 2, "chat_id": n, "method": "sendMessage", "params": {}} for n in range(101)]
    assert await repos.outbox.enqueue_many(items) == 101
    assert len(await repos.outbox.due()) == 100
    assert len(await repos.outbox.claim_due()) == 100
    assert len(await repos.outbox.claim_due()) == 1


async def test_enqueue_many_of_nothing_or_only_duplicates_adds_nothing(repos: Repositories):
    assert await repos.outbox.enqueue_many([]) == 0
    items = [{"lane": 3, "chat_id": 9, "method": "sendMessage", "params": {}}]
    assert await repos.outbox.enqueue_many(items, now=5.0) == 1
    (queued,) = await repos.outbox.due(now=5.0)
    assert (queued.created_at, queued.next_attempt_at) == (5.0, 5.0)
    item = {"lane": 3, "chat_id": 1, "method": "sendMessage", "params": {}, "dedupe_key": "k"}
    assert await repos.outbox.enqueue_many([item]) == 1
    assert await repos.outbox.enqueue_many([item]) == 0


async def test_defer_puts_a_claimed_call_back_without_counting_an_attempt(repos: Repositories):
    id = await repos.outbox.enqueue(1, 5, "sendMessage", {"text": "a"}, now=0.0)
    other = await repos.outbox.enqueue(1, 6, "sendMessage", {"text": "b"}, now=0.0)
    assert [item.id for item in await repos.outbox.claim_due(now=1.0)] == [id, other]
    await repos.outbox.defer(id, next_attempt_at=30.0, now=2.0)
    deferred = await repos.outbox.get(id)
    assert deferred is not None
    assert (deferred.status, deferred.attempts, deferred.next_attempt_at) == ("pending", 0, 30.0)
    assert await _raw(repos, id, "updated_at") == 2.0
    assert (await repos.outbox.get(other)).status == "sending"  # type: ignore[union-attr]
    assert await repos.outbox.due(now=29.0) == []
    assert [item.id for item in await repos.outbox.due(now=30.0)] == [id]
    await repos.outbox.defer(id, next_attempt_at=40.0)
    assert time.time() - 5 <= await _raw(repos, id, "updated_at") <= time.time() + 1


async def test_text_is_stored_as_written_and_no_result_as_null(repos: Repositories):
    id = await repos.outbox.enqueue(0, 1, "sendMessage", {"text": "你好"}, now=0.0)
    assert await repos.outbox.enqueue_many(
        [{"lane": 0, "chat_id": 2, "method": "sendMessage", "params": {"text": "再见"}}]
    )
    assert await _raw(repos, id, "params") == '{"text": "你好"}'
    assert await _raw(repos, id + 1, "params") == '{"text": "再见"}'
    await repos.outbox.mark_sent(id, {"text": "已发送"})
    assert await _raw(repos, id, "result") == '{"text": "已发送"}'
    await repos.outbox.mark_sent(id + 1)
    assert await _raw(repos, id + 1, "result") is None
