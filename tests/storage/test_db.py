"""The connection, transactions, migrations and backups."""

import asyncio
import sqlite3
from pathlib import Path

import pytest

from storage import Database, Repositories, StorageError, latest_version, migrate
from storage import migrations as migrations_module
from storage.migrations import Migration, split_statements

EXPECTED_TABLES = {
    "users",
    "audit_log",
    "inbox",
    "outbox",
    "ptb_user_data",
    "ptb_chat_data",
    "ptb_documents",
    "ptb_conversations",
}


async def tables(db: Database) -> set[str]:
    rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows}


async def user_version(db: Database) -> int:
    row = await db.fetchone("PRAGMA user_version")
    assert row is not None
    return row[0]


async def test_open_configures_connection(sqlite_db: Database) -> None:
    db = sqlite_db
    assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await db.fetchone("PRAGMA busy_timeout"))[0] == 5000
    assert (await db.fetchone("PRAGMA synchronous"))[0] == 1  # NORMAL


async def test_migrate_from_empty_creates_every_table(db_path: Path) -> None:
    db = await Database.open(db_path)
    try:
        assert await migrate(db) == (0, latest_version())
        assert await tables(db) >= EXPECTED_TABLES
        assert await user_version(db) == latest_version()
    finally:
        await db.close()


async def test_migrate_again_changes_nothing(sqlite_db: Database) -> None:
    db = sqlite_db
    before = await tables(db)
    assert await migrate(db) == (latest_version(), latest_version())
    assert await tables(db) == before


async def test_migrate_refuses_database_from_newer_code(sqlite_db: Database) -> None:
    db = sqlite_db
    newer = latest_version() + 1
    await db.fetchone(f"PRAGMA user_version = {newer}")
    with pytest.raises(StorageError, match=rf"schema version {newer}.*only knows up to") as exc:
        await migrate(db)
    assert str(db.path) in str(exc.value)
    assert await user_version(db) == newer


async def test_failed_migration_leaves_previous_version_intact(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = (
        Migration(1, "0001_a.sql", "CREATE TABLE a (x INTEGER);"),
        Migration(2, "0002_b.sql", "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);"),
    )
    monkeypatch.setattr(migrations_module, "load_migrations", lambda: steps)
    db = await Database.open(db_path)
    try:
        with pytest.raises(StorageError, match=r"0002_b\.sql failed"):
            await migrate(db)
        assert await user_version(db) == 1
        assert await tables(db) == {"a"}  # b was rolled back with the failed step
    finally:
        await db.close()


def test_packaged_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in migrations_module.load_migrations()]
    assert versions == list(range(1, latest_version() + 1))


def test_split_statements_keeps_semicolons_in_strings_and_triggers() -> None:
    script = """
        CREATE TABLE t (x TEXT); -- comment; with semicolon
        INSERT INTO t VALUES ('a;b');
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = x || ';'; END;
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert "'a;b'" in statements[1]
    assert statements[2].endswith("END;")


async def test_transaction_rolls_back_on_error(sqlite_db: Database) -> None:
    db = sqlite_db
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO audit_log (at, action) VALUES (1, 'x')")
            raise RuntimeError("boom")
    assert (await db.fetchone("SELECT COUNT(*) FROM audit_log"))[0] == 0


async def test_nested_transaction_groups_repository_calls(repos: Repositories) -> None:
    db = repos.db
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await repos.users.touch(1, "Ann", "en", now=1.0)
            await repos.audit.record(99, "user.touch", target=1, now=1.0)
            raise RuntimeError("boom")
    assert await repos.users.get(1) is None
    assert await repos.audit.recent() == []

    async with db.transaction():
        await repos.users.touch(1, "Ann", "en", now=1.0)
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await repos.audit.record(99, "inner", now=1.0)
                raise RuntimeError("inner only")
    assert await repos.users.get(1) is not None
    assert await repos.audit.recent() == []


async def test_transactions_run_one_at_a_time(sqlite_db: Database) -> None:
    db = sqlite_db
    inside = 0
    overlap = False

    async def write(i: int) -> None:
        nonlocal inside, overlap
        async with db.transaction() as conn:
            inside += 1
            overlap = overlap or inside > 1
            await asyncio.sleep(0.01)
            await conn.execute("INSERT INTO audit_log (at, action) VALUES (?, 'x')", (i,))
            inside -= 1

    await asyncio.gather(*(write(i) for i in range(5)))
    assert not overlap
    assert (await db.fetchone("SELECT COUNT(*) FROM audit_log"))[0] == 5


async def test_a_write_never_lands_in_another_tasks_transaction(sqlite_db: Database) -> None:
    """A single write goes straight to the connection's queue when no transaction is open,
    and waits while one is: issued at any moment around transactions that roll back, every
    write stays and nothing of the transactions does."""
    db = sqlite_db

    async def doomed(i: int) -> None:
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO audit_log (at, action) VALUES (?, 'doomed')", (i,))
                await asyncio.sleep(0)  # other tasks issue their writes while it is open
                await conn.execute("INSERT INTO audit_log (at, action) VALUES (?, 'doomed')", (i,))
                raise RuntimeError("roll back")

    async def single(i: int) -> None:
        for _ in range(i % 5):
            await asyncio.sleep(0)
        await db.write("INSERT INTO audit_log (at, action) VALUES (?, 'single')", (i,))

    await asyncio.gather(*(doomed(i) for i in range(20)), *(single(i) for i in range(200)))
    rows = await db.fetchall("SELECT action, COUNT(*) FROM audit_log GROUP BY action")
    assert {row[0]: row[1] for row in rows} == {"single": 200}


async def test_write_all_writes_every_statement_or_none(sqlite_db: Database) -> None:
    """Several statements in one job: all land, or a failing one takes the others back (and
    the connection is left with no transaction open); inside a task's own transaction they
    join it; around other tasks' transactions that roll back, none of theirs stays."""
    db = sqlite_db
    ok = "INSERT INTO audit_log (at, action) VALUES (?, ?) RETURNING action"
    rows = await db.write_all([(ok, (1, "a")), (ok, (2, "b"))])
    assert [[tuple(r) for r in part] for part in rows] == [[("a",)], [("b",)]]
    with pytest.raises(sqlite3.IntegrityError):
        await db.write_all([(ok, (3, "c")), ("INSERT INTO audit_log (at) VALUES (4)", ())])
    assert not db._conn.in_transaction
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.write_all([(ok, (5, "inside")), (ok, (6, "inside"))])
            raise RuntimeError("roll back")

    async def doomed(i: int) -> None:
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO audit_log (at, action) VALUES (?, 'doomed')", (i,))
                await asyncio.sleep(0)
                raise RuntimeError("roll back")

    async def pair(i: int) -> None:
        for _ in range(i % 3):
            await asyncio.sleep(0)
        await db.write_all([(ok, (i, "pair")), (ok, (i, "pair"))])

    await asyncio.gather(*(doomed(i) for i in range(10)), *(pair(i) for i in range(50)))
    counts = await db.fetchall("SELECT action, COUNT(*) FROM audit_log GROUP BY action")
    assert {row[0]: row[1] for row in counts} == {"a": 1, "b": 1, "pair": 100}


async def test_reads_are_never_torn_by_another_tasks_writes(sqlite_db: Database) -> None:
    """A read runs as one job: another task's UPDATE on the shared connection cannot land
    between its execute and its fetch (SQLite leaves such rows undefined: a broadcast once
    read a NULL status and finished with recipients still queued)."""
    db = sqlite_db
    async with db.transaction() as conn:
        await conn.execute("CREATE TABLE flip (id INTEGER PRIMARY KEY, status TEXT NOT NULL)")
        await conn.execute("CREATE INDEX flip_status ON flip (status)")
        await conn.executemany(
            "INSERT INTO flip (id, status) VALUES (?, ?)",
            [(i, ("pending", "queued", "sent")[i % 3]) for i in range(3000)],
        )
    stop = False

    async def writer() -> None:
        statuses = ("pending", "queued", "sent")
        n = 0
        while not stop:
            n += 1
            async with db.transaction() as conn:
                await conn.execute(
                    "UPDATE flip SET status = ? WHERE id % 7 = ?", (statuses[n % 3], n % 7)
                )
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    try:
        for _ in range(300):
            rows = await db.fetchall("SELECT status, COUNT(*) AS n FROM flip GROUP BY status")
            counts = {row["status"]: row["n"] for row in rows}
            assert set(counts) <= {"pending", "queued", "sent"}, counts
            assert sum(counts.values()) == 3000, counts
            one = await db.fetchone("SELECT status FROM flip WHERE id = 5")
            assert one is not None and one["status"] in ("pending", "queued", "sent")
    finally:
        stop = True
        await task


async def test_backup_is_a_readable_copy_with_the_same_rows(
    sqlite_db: Database, tmp_path: Path
) -> None:
    repos = Repositories(sqlite_db)
    await repos.users.touch(1, "Ann", "en", now=1.0)
    await repos.outbox.enqueue(0, 1, "sendMessage", {"text": "hi"}, now=1.0)
    dest = tmp_path / "backups" / "copy.db"
    dest.parent.mkdir()
    await repos.db.backup(dest)

    with sqlite3.connect(dest) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT id, first_name FROM users").fetchall() == [(1, "Ann")]
        assert copy.execute("SELECT method FROM outbox").fetchall() == [("sendMessage",)]
        assert copy.execute("PRAGMA user_version").fetchone()[0] == latest_version()
    copy.close()
    assert list(dest.parent.iterdir()) == [dest]  # no temporary file left behind

    restored = await Database.open(dest)
    try:
        user = await Repositories(restored).users.get(1)
        assert user is not None and user.first_name == "Ann"
    finally:
        await restored.close()


async def test_unopenable_path_gives_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "bot.db"
    with pytest.raises(StorageError, match="Cannot open database"):
        await Database.open(missing)


async def test_a_transaction_on_one_database_does_not_own_another(tmp_path: Path) -> None:
    # The bot's database and the demo wallet's are two files: a task inside a transaction of
    # one must not join another task's open transaction on the other (a write there would
    # be rolled back with that task's work).
    bot_db = await Database.open(tmp_path / "bot.db")
    wallet_db = await Database.open(tmp_path / "wallet.db")
    try:
        await wallet_db.write("CREATE TABLE t (x INTEGER)")
        holding = asyncio.Event()
        in_bot_transaction = asyncio.Event()
        release = asyncio.Event()

        async def other_task_rolls_back() -> None:
            with pytest.raises(RuntimeError):
                async with wallet_db.transaction() as conn:
                    await conn.execute("INSERT INTO t VALUES (1)")
                    holding.set()
                    await release.wait()
                    raise RuntimeError("rolled back")

        async def writes_inside_bot_transaction() -> None:
            await holding.wait()
            async with bot_db.transaction():
                in_bot_transaction.set()
                # Sent to the wallet's connection before the other task can roll back.
                await wallet_db.write("INSERT INTO t VALUES (2)")

        other = asyncio.create_task(other_task_rolls_back())
        writer = asyncio.create_task(writes_inside_bot_transaction())
        await in_bot_transaction.wait()
        release.set()
        await asyncio.gather(other, writer)
        assert [row[0] for row in await wallet_db.fetchall("SELECT x FROM t")] == [2]
    finally:
        await bot_db.close()
        await wallet_db.close()


async def test_the_bots_database_holds_no_demo_wallet_table(sqlite_db: Database) -> None:
    assert {t for t in await tables(sqlite_db) if t.startswith("demo_")} == set()


@pytest.mark.parametrize("demo_in_use", [True, False])
async def test_migrating_an_older_database_drops_the_demo_wallet_and_keeps_the_bots_rows(
    db_path: Path, demo_in_use: bool
) -> None:
    # Databases migrated before 0011 have the demo wallet's tables, with demo data: they
    # go (the demo wallet seeds its own file afresh), the bot's records stay. The refund
    # feed's cursor goes with the demo wallet that issued it; a real wallet's stays.
    db = await Database.open(db_path)
    try:
        await migrations_module.apply_migrations(db, migrations_module.load_migrations()[:10])
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO settings VALUES ('refunds.feed_cursor', '57')")
            if demo_in_use:
                await conn.execute("INSERT INTO demo_meta VALUES ('card_pepper', 'p')")
            await conn.execute(
                "INSERT INTO users (id, first_name, telegram_language, wallet_account_id, "
                "created_at, last_seen_at) VALUES (7, 'Li', 'zh', 'U1001', 1, 1)"
            )
            await conn.execute(
                "INSERT INTO demo_accounts (id, display_name, phone, created_at, updated_at) "
                "VALUES ('U1001', '李雷', '+8613800138001', 1, 1)"
            )
            await conn.execute(
                "INSERT INTO demo_transactions (id, account_id, created_at, amount, currency, "
                "merchant, status) VALUES ('T1', 'U1001', 1, '9.90', 'CNY', 'Shop', 'success')"
            )
            await conn.execute(
                "INSERT INTO demo_refunds (id, account_id, transaction_id, amount, currency, "
                "reason, status, created_at, updated_at) "
                "VALUES ('R1', 'U1001', 'T1', '9.90', 'CNY', 'x', 'submitted', 1, 1)"
            )
            await conn.execute(
                "INSERT INTO demo_refund_changes (refund_id, status, changed_at) "
                "VALUES ('R1', 'submitted', 1)"
            )
        assert "demo_refund_changes" in await tables(db)
        assert await migrate(db) == (10, latest_version())
        assert {t for t in await tables(db) if t.startswith("demo_")} == set()
        row = await db.fetchone("SELECT wallet_account_id FROM users WHERE id = 7")
        assert row is not None and row[0] == "U1001"
        cursor = await Repositories(db).settings.get("refunds.feed_cursor")
        assert cursor == (None if demo_in_use else "57")
    finally:
        await db.close()
