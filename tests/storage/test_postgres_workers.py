"""What several workers on one PostgreSQL database build on, each worker being its own
pool of connections (as a process would be): an update stored once, an outbox row sent by
one worker, one chat handled by one worker at a time, a duty held by one worker."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest

from storage import Repositories, migrate
from storage.postgres import ChatLockLost, ChatLocks, PostgresDatabase

WORKERS = 3


@pytest.fixture
async def workers(postgres_url: str) -> AsyncIterator[list[PostgresDatabase]]:
    """Three workers on one freshly migrated schema, each with its own pool."""
    pools = [await PostgresDatabase.open(postgres_url, max_size=4) for _ in range(WORKERS)]
    await migrate(pools[0])
    yield pools
    for db in pools:
        await db.close()


def _update(update_id: int) -> str:
    chat = {"id": 1000 + update_id % 7, "type": "private"}
    return json.dumps({"update_id": update_id, "message": {"chat": chat, "text": "hi"}})


async def test_an_update_delivered_to_every_worker_is_new_to_exactly_one(workers) -> None:
    ids = list(range(1, 301))
    new: Counter[int] = Counter()

    async def receive(db: PostgresDatabase, seed: int) -> None:
        inbox = Repositories(db).inbox
        order = ids[:]
        random.Random(seed).shuffle(order)
        for update_id in order:
            if await inbox.store(update_id, _update(update_id)):
                new[update_id] += 1

    async def receive_batches(db: PostgresDatabase) -> None:
        inbox = Repositories(db).inbox
        for start in range(0, len(ids), 25):
            batch = [(i, _update(i)) for i in ids[start : start + 25]]
            new.update(await inbox.store_many(batch))

    await asyncio.gather(
        *(receive(db, seed) for seed, db in enumerate(workers)), receive_batches(workers[0])
    )
    assert new == Counter(dict.fromkeys(ids, 1))


async def test_outbox_rows_claimed_by_racing_workers_go_to_exactly_one(workers) -> None:
    outbox = Repositories(workers[0]).outbox
    items = [
        {"lane": i % 3, "chat_id": 100 + i % 40, "method": "sendMessage", "params": {"n": i}}
        for i in range(600)
    ]
    assert await outbox.enqueue_many(items, now=0.0) == 600
    claimed: list[int] = []

    async def sender(db: PostgresDatabase) -> None:
        repo = Repositories(db).outbox
        while batch := await repo.claim_due(now=1.0, limit=17):
            claimed.extend(item.id for item in batch)
            await asyncio.sleep(0)  # let the others claim meanwhile

    # Two senders per worker, all claiming at once.
    await asyncio.gather(*(sender(db) for db in workers for _ in range(2)))
    assert len(claimed) == 600 and len(set(claimed)) == 600
    counts = await outbox.counts()
    assert counts["sending"] == 600 and counts["pending"] == 0


async def test_one_chat_is_handled_by_one_worker_at_a_time(workers) -> None:
    locks = [ChatLocks(db, max_wait_step=0.01) for db in workers]
    inside: Counter[int] = Counter()
    overlaps: list[int] = []
    handled: Counter[int] = Counter()

    async def handle(lock: ChatLocks, chat_id: int) -> None:
        async with lock.hold(chat_id):
            inside[chat_id] += 1
            if inside[chat_id] > 1:
                overlaps.append(chat_id)
            await asyncio.sleep(0.003)  # the update's work, across awaits
            inside[chat_id] -= 1
            handled[chat_id] += 1

    try:
        # 3 workers x 2 chats x 15 updates, all at once.
        await asyncio.gather(
            *(handle(lock, chat_id) for lock in locks for chat_id in (1, 2) for _ in range(15))
        )
        assert overlaps == []
        assert handled == {1: 45, 2: 45}
        assert [lock.tracked for lock in locks] == [0, 0, 0]  # nothing accumulates
        assert await _advisory_locks(workers[0]) == 0
    finally:
        for lock in locks:
            await lock.close()


async def test_different_chats_are_handled_in_parallel(workers) -> None:
    a, b = ChatLocks(workers[0]), ChatLocks(workers[1])
    try:
        async with a.hold(1), a.hold(-100123, thread_id=7):
            # Another chat, or another topic of the same group, is not held up.
            async with asyncio.timeout(2):
                async with b.hold(2), b.hold(-100123, thread_id=8):
                    assert (a.held, b.held) == (2, 2)
    finally:
        await a.close()
        await b.close()


async def test_a_dead_workers_chats_are_free_at_once(workers, postgres_server) -> None:
    a, b = ChatLocks(workers[0]), ChatLocks(workers[1])
    got: list[str] = []
    try:
        with pytest.raises(ChatLockLost):
            async with a.hold(1):
                waiter = asyncio.create_task(_hold_and_note(b, 1, got))
                await asyncio.sleep(0.1)
                assert got == []  # B waits for A
                # A's process dies: PostgreSQL ends its session, and its locks with it.
                admin = await asyncpg.connect(postgres_server.url())
                try:
                    killed = await admin.fetchval(
                        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'tgbot-locks' AND pid IN (SELECT pid FROM "
                        "pg_locks WHERE locktype = 'advisory' AND granted AND objid = $1)",
                        a.key(1) & 0xFFFFFFFF,
                    )
                finally:
                    await admin.close()
                assert killed == 1
                async with asyncio.timeout(5):
                    await waiter
                assert got == ["B"]
        # A, handling on, learns on leaving that its lock is gone (it may not have order).
    finally:
        await a.close()
        await b.close()


async def _hold_and_note(locks: ChatLocks, chat_id: int, got: list[str]) -> None:
    async with locks.hold(chat_id):
        got.append("B")


async def _advisory_locks(db: PostgresDatabase) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'") or 0)


async def test_of_workers_racing_for_a_duty_exactly_one_holds_it(workers) -> None:
    async def try_to_hold(db: PostgresDatabase, name: str) -> bool:
        return await Repositories(db).leases.acquire("refund_poller", name, 5.0) is not None

    results = await asyncio.gather(
        *(try_to_hold(db, f"w{i}-{j}") for i, db in enumerate(workers) for j in range(4))
    )
    assert results.count(True) == 1
    holder = await Repositories(workers[1]).leases.current("refund_poller")
    assert holder is not None and holder.token == 1
    # The server's clock: it expires ttl seconds after it was taken.
    assert holder.expires_at - holder.acquired_at == pytest.approx(5.0)


async def test_a_duty_is_taken_over_once_its_holder_stops_renewing(workers) -> None:
    first, second = Repositories(workers[0]).leases, Repositories(workers[1]).leases
    assert await first.acquire("broadcast_feeder", "a", 0.3) is not None
    assert await second.acquire("broadcast_feeder", "b", 0.3) is None
    # "a" dies (no renewal): "b" keeps trying, as a standby does, and takes it over.
    async with asyncio.timeout(5):
        # A standby polls the lease: there is no event to wait on across processes.
        while (taken := await second.acquire("broadcast_feeder", "b", 0.3)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert taken.holder == "b" and taken.token == 2
    assert await first.renew("broadcast_feeder", "a", 0.3) is None


async def test_a_worker_reads_the_conversation_state_another_worker_wrote(workers) -> None:
    from storage import DatabasePersistence

    one, two = DatabasePersistence(workers[0]), DatabasePersistence(workers[1])
    other = DatabasePersistence(workers[2], refresh_from_database=True)
    await one.update_conversation("refund", (42, 42), "refund:choose_tx")
    await one.update_user_data(42, {"tx": "T1"})
    keys = [("refund", (42, 42)), ("language", (42, 42))]
    assert await two.conversation_states(keys) == {("refund", (42, 42)): "refund:choose_tx"}
    await two.update_conversation("refund", (42, 42), "refund:confirm")
    assert await one.conversation_states(keys) == {("refund", (42, 42)): "refund:confirm"}
    user_data: dict = {"stale": True}
    await other.refresh_user_data(42, user_data)
    assert user_data == {"tx": "T1"}
    await one.update_conversation("refund", (42, 42), None)  # ended on worker one
    assert await two.conversation_states(keys) == {}


async def test_whole_chat_claims_never_give_one_chat_to_two_workers(workers) -> None:
    outbox = Repositories(workers[0]).outbox
    items = [
        {"lane": 1, "chat_id": 100 + i % 10, "method": "sendMessage", "params": {"n": i}}
        for i in range(200)
    ]
    assert await outbox.enqueue_many(items, now=0.0) == 200
    holders: dict[int, int] = {}  # chat -> sender holding a claim of it
    order: dict[int, list[int]] = {}

    async def sender(index: int, db: PostgresDatabase) -> None:
        repo = Repositories(db).outbox
        while batch := await repo.claim_due(now=1.0, limit=7, whole_chats=True):
            for item in batch:
                assert holders.setdefault(item.chat_id, index) == index  # nobody else has it
            await asyncio.sleep(0)
            for chat in {item.chat_id for item in batch}:
                del holders[chat]  # its rows stay "sending" until marked: still ours
                for item in (item for item in batch if item.chat_id == chat):
                    order.setdefault(chat, []).append(item.id)
                    await repo.mark_sent(item.id, {})

    await asyncio.gather(*(sender(i, db) for i, db in enumerate(workers * 2)))
    assert sum(len(ids) for ids in order.values()) == 200
    assert all(ids == sorted(ids) for ids in order.values())  # each chat in order
