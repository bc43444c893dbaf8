"""PostgreSQL's own behaviour: migrations, opening, the one-instance lock, transactions."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

import storage.postgres.migrations as pg_migrations
from storage import AlreadyRunning, Repositories, StorageError, migrate, open_database
from storage.migrations import Migration
from storage.postgres import PostgresDatabase, latest_version, redact_url, schema_version

EXPECTED_TABLES = {
    "users",
    "audit_log",
    "inbox",
    "outbox",
    "ptb_user_data",
    "ptb_chat_data",
    "ptb_documents",
    "ptb_conversations",
    "tickets",
    "ticket_messages",
    "broadcasts",
    "broadcast_recipients",
    "refunds",
    "answers",
    "erasures",
    "leases",
    "schema_migrations",
}


async def tables(db: PostgresDatabase) -> set[str]:
    rows = await db.fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )
    return {row[0] for row in rows}


# -- migrations ----------------------------------------------------------------------


async def test_migrate_from_empty_creates_every_table_and_again_changes_nothing(
    postgres_url: str,
) -> None:
    db = await open_database(postgres_url)
    assert isinstance(db, PostgresDatabase)
    try:
        assert await schema_version(db) == 0
        assert await migrate(db) == (0, latest_version())
        assert await tables(db) >= EXPECTED_TABLES
        assert not {t for t in await tables(db) if t.startswith("demo_")}  # the wallet's own
        assert await schema_version(db) == latest_version()
        before = await tables(db)
        assert await migrate(db) == (latest_version(), latest_version())
        assert await tables(db) == before
    finally:
        await db.close()


async def test_workers_starting_together_migrate_once(postgres_url: str) -> None:
    workers = [await PostgresDatabase.open(postgres_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(db) for db in workers))
        latest = latest_version()
        assert sorted(results) == [(0, latest), (latest, latest), (latest, latest)]
    finally:
        for db in workers:
            await db.close()


async def test_migrate_refuses_a_schema_from_newer_code(postgres_db: PostgresDatabase) -> None:
    newer = latest_version() + 1
    await postgres_db.execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')", (newer,)
    )
    with pytest.raises(StorageError, match=rf"schema version {newer}.*only knows up to"):
        await migrate(postgres_db)


async def test_failed_migration_leaves_previous_version_intact(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = (
        Migration(1, "0001_a.sql", "CREATE TABLE a (x integer);"),
        Migration(2, "0002_b.sql", "CREATE TABLE b (x integer); INSERT INTO nowhere VALUES (1);"),
    )
    monkeypatch.setattr(pg_migrations, "load_migrations", lambda: steps)
    db = await PostgresDatabase.open(postgres_url)
    try:
        with pytest.raises(StorageError, match=r"0002_b\.sql failed"):
            await migrate(db)
        assert await schema_version(db) == 1
        assert await tables(db) == {"a", "schema_migrations"}  # b rolled back with its step
    finally:
        await db.close()


def test_packaged_postgres_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in pg_migrations.load_migrations()]
    assert versions == list(range(1, latest_version() + 1))


# -- opening ----------------------------------------------------------------------------


async def test_an_unreachable_database_is_a_clear_error_without_the_password(
    postgres_server,
) -> None:
    url = postgres_server.url("no_such_database").replace("postgres@", "postgres:s3cr3t-pw@")
    with pytest.raises(StorageError, match="Cannot open database") as exc:
        await open_database(url)
    assert "s3cr3t-pw" not in str(exc.value)
    assert "postgres:***@" in str(exc.value)
    assert redact_url("postgresql://u:p@h/db") == "postgresql://u:***@h/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


async def test_a_schema_that_does_not_exist_is_a_clear_error(postgres_server) -> None:
    with pytest.raises(StorageError, match="no schema to work in"):
        await open_database(postgres_server.url(schema="never_created"))


# -- one running instance ---------------------------------------------------------------


async def test_a_second_instance_on_the_same_schema_is_refused(postgres_server) -> None:
    first_url, other_url = await postgres_server.new_schema(), await postgres_server.new_schema()
    first, second, other = (
        await PostgresDatabase.open(first_url),
        await PostgresDatabase.open(first_url),
        await PostgresDatabase.open(other_url),
    )
    try:
        await first.lock_instance()
        with pytest.raises(AlreadyRunning, match="Another instance is already running"):
            await second.lock_instance()
        await other.lock_instance()  # another bot's schema in the same database
        await first.close()  # a stop (or a crash: the session ends) frees it
        await second.lock_instance()
    finally:
        for db in (first, second, other):
            await db.close()
        for url in (first_url, other_url):
            await postgres_server.drop_schema(url)


async def test_a_standby_waits_for_the_lock_and_takes_it_when_freed(postgres_server) -> None:
    """``wait_instance``: says who holds the lock, tries every ``retry`` seconds, takes it
    once the holder's session ends; a stop ends the wait at once, holding nothing."""
    url = await postgres_server.new_schema()
    poller, standby, other = [await PostgresDatabase.open(url) for _ in range(3)]
    try:
        await poller.lock_instance()
        said: list[str] = []
        told = asyncio.Event()

        def waiting_because(why: str) -> None:
            said.append(why)
            told.set()

        stop = asyncio.Event()
        waiting = asyncio.create_task(standby.wait_instance(0.05, stop, waiting=waiting_because))
        await asyncio.wait_for(told.wait(), 5)
        assert "Another instance is already running" in said[0]
        assert f"tgbot-instance {socket.gethostname()}:{os.getpid()}" in said[0]  # the holder
        # Still waiting after several tries; it said so once (the reason did not change).
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done and len(said) == 1
        await poller.close()
        assert await asyncio.wait_for(waiting, 5) is True
        with pytest.raises(AlreadyRunning):
            await other.lock_instance()  # the standby holds it now
        assert await standby.check_instance(timeout=1)

        # A stopped standby returns False at once and holds nothing.
        stop = asyncio.Event()
        tried = asyncio.Event()
        stopped = asyncio.create_task(
            other.wait_instance(10.0, stop, waiting=lambda why: tried.set())
        )
        await asyncio.wait_for(tried.wait(), 5)
        stop.set()
        assert await asyncio.wait_for(stopped, 2) is False
        assert other._instance is None and other._work is None
    finally:
        for db in (poller, standby, other):
            await db.close()
        await postgres_server.drop_schema(url)


async def test_a_poller_whose_lock_session_ends_learns_it_and_its_work_holds_the_next(
    postgres_server,
) -> None:
    """The lock's session terminated (a server restart, a network cut): the holder is told at
    once and its check fails; a standby takes ``instance`` but starts only once the old
    holder has finished its work (``instance-work``), and ``tgbot migrate``'s lock refuses
    meanwhile."""
    url = await postgres_server.new_schema()
    poller, standby, migrator = [await PostgresDatabase.open(url) for _ in range(3)]
    try:
        await poller.lock_instance()
        lost = asyncio.Event()
        poller.on_instance_lost(lost.set)
        assert await poller.check_instance(timeout=1)
        backend = await poller.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = $1",
            (poller.key("instance"),),
        )
        await poller.fetchval("SELECT pg_terminate_backend($1)", (backend,))
        await asyncio.wait_for(lost.wait(), 5)
        assert not await poller.check_instance(timeout=1)

        # The old holder still finishes its work: the next one waits for it.
        taking = asyncio.create_task(
            standby.wait_instance(0.05, asyncio.Event(), waiting=lambda why: None, drain=30)
        )
        done, _ = await asyncio.wait({taking}, timeout=0.3)
        assert not done
        with pytest.raises(AlreadyRunning):
            await migrator.lock_instance()
        await poller.release_instance()  # its work is done
        assert await asyncio.wait_for(taking, 5) is True

        # Past the drain time a new holder starts anyway (the old one cannot poll).
        await standby.release_instance()
        await poller.lock_instance()
        await poller._instance.close()  # lost `instance`, still working
        await migrator.lock_instance(drain=0.2)
        assert migrator._work is None  # started without the old holder's work lock
    finally:
        for db in (poller, standby, migrator):
            await db.close()
        await postgres_server.drop_schema(url)


# -- transactions -----------------------------------------------------------------------


async def test_uncommitted_writes_are_not_seen_by_other_tasks(postgres_db) -> None:
    repos = Repositories(postgres_db)
    inside, seen = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with postgres_db.transaction():
            await repos.users.touch(1, "Ann", "en", now=1.0)
            assert await repos.users.get(1) is not None  # its own write, in its transaction
            inside.set()
            await seen.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    assert await repos.users.get(1) is None  # not committed yet
    seen.set()
    await task
    assert await repos.users.get(1) is not None


async def test_a_task_started_inside_a_transaction_does_not_join_it(postgres_db) -> None:
    repos = Repositories(postgres_db)
    async with postgres_db.transaction():
        await repos.users.touch(1, "Ann", "en", now=1.0)
        # A child task inherits the context but gets its own connection (one statement at
        # a time per connection): it sees only what is committed.
        assert await asyncio.create_task(repos.users.get(1)) is None
    assert await asyncio.create_task(repos.users.get(1)) is not None


async def test_transactions_of_different_tasks_run_at_once(postgres_db) -> None:
    repos = Repositories(postgres_db)
    both_inside = asyncio.Barrier(2)

    async def write(user_id: int) -> None:
        async with postgres_db.transaction():
            await repos.users.touch(user_id, "u", "en", now=1.0)
            await asyncio.wait_for(both_inside.wait(), 5)  # SQLite would deadlock here

    await asyncio.gather(write(1), write(2))
    assert await repos.users.count() == 2


async def test_a_guard_read_in_a_transaction_holds_until_it_ends(postgres_db) -> None:
    """A status read to guard a write (the handoff's queue line, the broadcast feeder's
    running check) stays true until the transaction ends: a concurrent claim waits."""
    repos = Repositories(postgres_db)
    ticket, _ = await repos.tickets.create(7, "TAAA", "en", now=1.0)
    checked, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def guarded() -> None:
        async with postgres_db.transaction():
            current = await repos.tickets.get(ticket.id)
            assert current is not None and current.status == "open"
            checked.set()
            await release.wait()
            order.append("queued while open")

    async def claim() -> None:
        await checked.wait()
        assert await repos.tickets.claim(ticket.id, 99)
        order.append("claimed")

    task = asyncio.gather(guarded(), claim())
    await checked.wait()
    await asyncio.sleep(0.2)  # give the claim every chance to overtake (it must not)
    assert order == []
    release.set()
    await task
    assert order == ["queued while open", "claimed"]


async def test_a_ticket_for_a_user_who_has_one_keeps_the_transaction_usable(
    postgres_db,
) -> None:
    """A conflict inside a caller's transaction must not abort it (PostgreSQL aborts a
    transaction on any error; the repository avoids raising one)."""
    repos = Repositories(postgres_db)
    async with postgres_db.transaction():
        first, created = await repos.tickets.create(7, "TAAA", "en", now=1.0)
        again, created_again = await repos.tickets.create(7, "TBBB", "en", now=2.0)
        await repos.audit.record(7, "ticket.open", first.id, now=2.0)  # still usable
        with pytest.raises(StorageError, match="taken"):
            await repos.tickets.create(8, "TAAA", "en", now=3.0)  # the code collided
    assert created and not created_again and again.id == first.id
    assert len(await repos.audit.recent()) == 1


async def test_reopening_while_another_ticket_is_open_keeps_the_transaction(postgres_db):
    repos = Repositories(postgres_db)
    old, _ = await repos.tickets.create(7, "TAAA", "en", now=1.0)
    await repos.tickets.close(old.id, 7, now=2.0)
    await repos.tickets.create(7, "TBBB", "en", now=3.0)
    async with postgres_db.transaction():
        assert not await repos.tickets.reopen(old.id)  # the unique index says no
        await repos.audit.record(7, "still.usable", now=4.0)
    assert [entry.action for entry in await repos.audit.recent()] == ["still.usable"]


async def test_after_compaction_no_row_version_holds_what_was_erased(postgres_db) -> None:
    """compact() VACUUMs: the erased rows' old versions are gone from the table, live or
    dead (what a reader with an old snapshot, or a page dump, could otherwise find). What
    VACUUM does not do, and the docstring says: zero the page's freed space."""
    repos = Repositories(postgres_db)
    for user_id in range(1, 6):
        await repos.users.touch(user_id, f"Secretname{user_id}", "en", now=1.0)
    erasure, _ = await repos.privacy.start_erasure(3, "en")
    await repos.privacy.erase_user(3, erasure.pseudonym)

    async def versions_with_the_name() -> int:
        await postgres_db.execute("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public")
        return await postgres_db.fetchval(
            "SELECT COUNT(*) FROM public.heap_page_items(public.get_raw_page('users', 0)) "
            "WHERE position('Secretname3'::bytea IN t_data) > 0"
        )

    assert await versions_with_the_name() == 1  # the deleted row's dead version
    assert await repos.privacy.compact()
    assert await versions_with_the_name() == 0
    assert await repos.users.count() == 4
