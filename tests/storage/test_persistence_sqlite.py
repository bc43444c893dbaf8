"""What DatabasePersistence promises beyond the shared contract, and a real Application
(on SQLite and on PostgreSQL wherever the ``db`` fixture is used)."""

import asyncio
import json
import sqlite3
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest, RequestData

from storage import (
    BotDatabase,
    Database,
    DatabasePersistence,
    SQLitePersistence,
    StorageError,
    migrate,
)
from storage.postgres import PostgresDatabase
from storage.repos.state import STATEMENTS, Write, plan

USER_ID = 42


async def conversation_rows(db: Database) -> list[tuple[str, str, str]]:
    rows = await db.fetchall("SELECT name, key, state FROM ptb_conversations")
    return [(row[0], row[1], row[2]) for row in rows]


async def test_ended_conversation_deletes_its_row(db: Database) -> None:
    p = SQLitePersistence(db)
    await p.update_conversation("refund", (USER_ID, USER_ID), "refund:choose_tx")
    assert await conversation_rows(db) == [("refund", "[42,42]", '"refund:choose_tx"')]
    await p.update_conversation("refund", (USER_ID, USER_ID), None)
    assert await conversation_rows(db) == []


async def test_empty_user_data_costs_no_row(db: Database) -> None:
    p = SQLitePersistence(db)
    await p.update_user_data(1, {})
    await p.update_chat_data(2, {})
    assert (await db.fetchone("SELECT COUNT(*) FROM ptb_user_data"))[0] == 0
    assert (await db.fetchone("SELECT COUNT(*) FROM ptb_chat_data"))[0] == 0


async def test_unserializable_value_fails_and_keeps_previous_data(db: Database) -> None:
    p = SQLitePersistence(db)
    await p.update_user_data(1, {"step": 1})
    with pytest.raises(TypeError, match="Cannot persist a value of type object"):
        await p.update_user_data(1, {"step": 2, "bad": object()})
    assert await SQLitePersistence(db).get_user_data() == {1: {"step": 1}}


async def test_unchanged_bot_data_is_not_rewritten(db: Database) -> None:
    p = SQLitePersistence(db)
    await p.update_bot_data({"a": 1})
    first = await db.fetchone("SELECT updated_at FROM ptb_documents WHERE name = 'bot_data'")
    await asyncio.sleep(0.01)
    await p.update_bot_data({"a": 1})
    again = await db.fetchone("SELECT updated_at FROM ptb_documents WHERE name = 'bot_data'")
    assert first[0] == again[0]


async def test_states_of_one_update_are_read_again_on_demand(db: BotDatabase) -> None:
    """What a worker does before handling an update another worker may have moved on."""
    writer, reader = SQLitePersistence(db), SQLitePersistence(db)
    await writer.update_conversation("refund", (USER_ID, USER_ID), "refund:choose_tx")
    await writer.update_conversation("refund", (-100, 5, USER_ID), ("nested", 1))
    await writer.update_conversation("language", (7, 7), "language:choose")
    keys = [("refund", (USER_ID, USER_ID)), ("refund", (-100, 5, USER_ID)), ("refund", (7, 7))]
    assert await reader.conversation_states(keys) == {
        ("refund", (USER_ID, USER_ID)): "refund:choose_tx",
        ("refund", (-100, 5, USER_ID)): ("nested", 1),
    }
    await writer.update_conversation("refund", (USER_ID, USER_ID), None)
    assert await reader.conversation_states(keys[:1]) == {}
    assert await reader.conversation_states([]) == {}


async def test_refresh_from_database_reads_what_another_instance_wrote(db: BotDatabase) -> None:
    writer = SQLitePersistence(db)
    reader = SQLitePersistence(db, refresh_from_database=True)
    await writer.update_user_data(1, {"step": 2})
    await writer.update_chat_data(1, {"topic": 9})
    user_data: dict[Any, Any] = {"step": 1, "gone": True}
    chat_data: dict[Any, Any] = {}
    await reader.refresh_user_data(1, user_data)
    await reader.refresh_chat_data(1, chat_data)
    assert (user_data, chat_data) == ({"step": 2}, {"topic": 9})
    await writer.drop_user_data(1)
    await reader.refresh_user_data(1, user_data)
    assert user_data == {}


@pytest.mark.parametrize("interval", [0, -1, float("nan"), float("inf")])
def test_update_interval_must_be_positive(db_path: Path, interval: float) -> None:
    with pytest.raises(ValueError, match="update_interval"):
        SQLitePersistence(lambda: pytest.fail("not opened"), update_interval=interval)


def test_default_update_interval_keeps_states_within_a_second() -> None:
    p = SQLitePersistence(lambda: pytest.fail("not opened"))
    assert 0 < p.update_interval <= 0.5


async def test_database_can_be_supplied_later(db: Database) -> None:
    holder: dict[str, Database] = {}
    p = SQLitePersistence(lambda: holder["db"])
    holder["db"] = db
    await p.update_bot_data({"ready": True})
    assert await p.get_bot_data() == {"ready": True}


async def test_reopened_database_is_picked_up(db_path: Path) -> None:
    holder: dict[str, Database] = {}

    async def open_db() -> Database:
        holder["db"] = await Database.open(db_path)
        await migrate(holder["db"])
        return holder["db"]

    p = SQLitePersistence(lambda: holder["db"])
    await open_db()
    await p.update_user_data(1, {"step": 1})
    await holder["db"].close()  # application shutdown
    await open_db()  # initialize again
    try:
        assert await p.get_user_data() == {1: {"step": 1}}
    finally:
        await holder["db"].close()


async def test_async_opener_runs_once_inside_application_initialize(db_path: Path) -> None:
    opened: list[Database] = []

    async def open_db() -> Database:
        database = await Database.open(db_path)
        await migrate(database)
        opened.append(database)
        return database

    app = build_app(SQLitePersistence(open_db))
    try:
        await app.initialize()  # loads persistence, before any post_init would run
        await app.shutdown()
        assert len(opened) == 1
    finally:
        for database in opened:
            await database.close()


async def test_opener_returning_nothing_is_a_clear_error() -> None:
    p = SQLitePersistence(lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(StorageError, match=r"open Database before Application\.initialize"):
        await p.get_user_data()


# -- a real Application -------------------------------------------------------------


class OfflineRequest(BaseRequest):
    """Answers the Bot API without a network: getMe only, which initialize() needs."""

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    @property
    def read_timeout(self) -> float:
        """Return a short default read timeout."""
        return 1.0

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, **_: Any
    ) -> tuple[int, bytes]:
        """Answer getMe; any other call is a test bug."""
        if url.endswith("/getMe"):
            me = {"id": 1, "is_bot": True, "first_name": "Support", "username": "support_bot"}
            return 200, json.dumps({"ok": True, "result": me}).encode()
        return 400, json.dumps({"ok": False, "description": f"unexpected {url}"}).encode()


class Demo(StrEnum):
    ASK_NAME = "demo:ask_name"
    CONFIRM = "demo:confirm"


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Demo:
    """Ask for a name."""
    return Demo.ASK_NAME


async def remember_name(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Demo:
    """Keep the name in the flow's scratch and ask to confirm."""
    assert context.user_data is not None and update.message is not None
    context.user_data["name"] = update.message.text
    return Demo.CONFIRM


async def confirm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Check the restored scratch, then end the flow and drop it."""
    assert context.user_data is not None
    context.user_data["confirmed_name"] = context.user_data.get("name")
    context.bot_data["confirmed"] = context.user_data.pop("confirmed_name")
    context.user_data.clear()
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """End the flow and drop its scratch."""
    assert context.user_data is not None
    context.user_data.clear()
    return ConversationHandler.END


def build_app(db: BotDatabase | SQLitePersistence) -> Application:
    persistence = db if isinstance(db, SQLitePersistence) else SQLitePersistence(db)
    app = (
        ApplicationBuilder()
        .token("1:x")
        .request(OfflineRequest())
        .get_updates_request(OfflineRequest())
        .updater(None)
        .persistence(persistence)
        .build()
    )
    app.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("start", start)],
            states={
                Demo.ASK_NAME: [MessageHandler(filters.TEXT & ~filters.COMMAND, remember_name)],
                Demo.CONFIRM: [MessageHandler(filters.Regex("^yes$"), confirm)],
            },
            fallbacks=[CommandHandler("cancel", cancel)],
            name="demo",
            persistent=True,
        )
    )
    return app


def message(app: Application, update_id: int, text: str) -> Update:
    data: dict[str, Any] = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": USER_ID, "type": "private", "first_name": "Ann"},
            "from": {"id": USER_ID, "is_bot": False, "first_name": "Ann"},
            "text": text,
        },
    }
    if text.startswith("/"):
        data["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return Update.de_json(data, app.bot)


async def on_disk(db: BotDatabase, sql: str) -> list[tuple[Any, ...]]:
    """Read through a separate connection: only committed data is visible."""
    if isinstance(db, PostgresDatabase):
        conn = await asyncpg.connect(db.url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()
    assert isinstance(db, Database)
    conn = sqlite3.connect(db.path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def eventually_on_disk(db: BotDatabase, sql: str, expected: list[Any]) -> None:
    """Wait up to one second (the design's promise) for ``sql`` to return ``expected``."""
    # Polling a file written by another component: there is no event to wait on.
    deadline = time.monotonic() + 1.0
    for _ in range(100):
        rows = await on_disk(db, sql)
        if rows == expected or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    assert rows == expected


STATE_SQL = "SELECT name, key, state FROM ptb_conversations"
USER_DATA_SQL = "SELECT user_id, data FROM ptb_user_data"


async def test_conversation_state_reaches_disk_within_a_second_and_survives_restart(
    db: BotDatabase,
) -> None:
    app = build_app(db)
    await app.initialize()
    await app.start()
    try:
        await app.process_update(message(app, 1, "/start"))
        # No stop(): the periodic persistence run alone must put the state on disk.
        await eventually_on_disk(db, STATE_SQL, [("demo", "[42,42]", '"demo:ask_name"')])

        await app.process_update(message(app, 2, "Ann Lee"))
        await eventually_on_disk(db, STATE_SQL, [("demo", "[42,42]", '"demo:confirm"')])
        await eventually_on_disk(db, USER_DATA_SQL, [(USER_ID, '{"name":"Ann Lee"}')])
    finally:
        await app.stop()
        await app.shutdown()

    # A restarted bot resumes the flow with its scratch.
    app = build_app(db)
    await app.initialize()
    await app.start()
    try:
        await app.process_update(message(app, 3, "yes"))
        assert app.bot_data["confirmed"] == "Ann Lee"
        # The ended flow leaves nothing behind: no state row, no scratch row.
        await eventually_on_disk(db, STATE_SQL, [])
        await eventually_on_disk(db, USER_DATA_SQL, [])
    finally:
        await app.stop()
        await app.shutdown()


async def test_cancelled_conversation_row_is_deleted(db: BotDatabase) -> None:
    app = build_app(db)
    await app.initialize()
    await app.start()
    try:
        await app.process_update(message(app, 1, "/start"))
        await eventually_on_disk(db, STATE_SQL, [("demo", "[42,42]", '"demo:ask_name"')])
        await app.process_update(message(app, 2, "/cancel"))
        await eventually_on_disk(db, STATE_SQL, [])
    finally:
        await app.stop()
        await app.shutdown()


async def test_unchanged_user_data_and_states_are_not_written_again(db: Database) -> None:
    """PTB hands over every user and conversation an update touched; only changes are
    written (most updates change nothing)."""
    statements: list[str] = []
    p = SQLitePersistence(db)
    await p.get_user_data()
    await p.get_conversations("refund")
    await db.set_trace(statements.append)
    try:
        await p.update_user_data(1, {})  # no row, none needed
        await p.update_user_data(2, {"step": 1})
        await p.update_user_data(2, {"step": 1})
        await p.update_conversation("refund", (2, 2), "refund:reason")
        await p.update_conversation("refund", (2, 2), "refund:reason")
        await p.update_conversation("refund", (3, 3), None)  # never stored
        writes = [s for s in statements if s.startswith(("INSERT", "DELETE", "UPDATE"))]
        assert len(writes) == 2
        await p.update_user_data(2, {"step": 2})
        await p.update_user_data(2, {})
        await p.update_conversation("refund", (2, 2), None)
        writes = [s for s in statements if s.startswith(("INSERT", "DELETE", "UPDATE"))]
        assert len(writes) == 5
    finally:
        await db.set_trace(None)
    # What a fresh process loads is what was last handed over.
    fresh = SQLitePersistence(db)
    assert await fresh.get_user_data() == {}
    assert await fresh.get_conversations("refund") == {}
    await fresh.update_user_data(2, {"step": 3})
    assert await SQLitePersistence(db).get_user_data() == {2: {"step": 3}}


async def test_a_fresh_process_does_not_rewrite_what_it_loaded(db: Database) -> None:
    await SQLitePersistence(db).update_user_data(5, {"flow": "refund"})
    await SQLitePersistence(db).update_conversation("refund", (5, 5), "refund:amount")
    statements: list[str] = []
    p = SQLitePersistence(db)
    data = await p.get_user_data()
    states = await p.get_conversations("refund")
    await db.set_trace(statements.append)
    try:
        await p.update_user_data(5, data[5])
        await p.update_conversation("refund", (5, 5), states[(5, 5)])
    finally:
        await db.set_trace(None)
    assert [s for s in statements if s.startswith(("INSERT", "DELETE"))] == []


async def test_a_persistence_run_of_many_users_is_one_transaction(db: BotDatabase) -> None:
    """PTB starts a run's writes all at once; they go to the database together (a few
    statements, not one per user), and each call returns once its own row is stored."""
    p = DatabasePersistence(db)
    await p.update_user_data(700, {"flow": "old"})
    await p.update_conversation("refund", (700, 700), "refund:reason")
    statements: list[str] = []
    await db.set_trace(statements.append)
    try:
        await asyncio.gather(
            *(p.update_user_data(i, {"step": i}) for i in range(100)),
            *(p.update_conversation("refund", (i, i), f"refund:{i}") for i in range(100)),
            p.drop_user_data(700),
            p.update_conversation("refund", (700, 700), None),
        )
    finally:
        await db.set_trace(None)
    if db.dialect == "sqlite":  # (SQLite's trace shows each row's statement and the BEGIN)
        writes = [s for s in statements if s.startswith(("INSERT", "DELETE", "UPDATE"))]
        assert len(writes) == 202
        assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
        assert statements.count("BEGIN IMMEDIATE") == 1
    fresh = DatabasePersistence(db)
    assert await fresh.get_user_data() == {i: {"step": i} for i in range(100)}
    assert await fresh.get_conversations("refund") == {(i, i): f"refund:{i}" for i in range(100)}


async def test_a_failed_run_fails_every_call_in_it_and_keeps_nothing_half_written(
    sqlite_db: Database,
) -> None:
    p = DatabasePersistence(sqlite_db)
    await p.update_user_data(1, {"step": 1})
    await sqlite_db.fetchall("DROP TABLE ptb_conversations")
    results = await asyncio.gather(
        p.update_user_data(1, {"step": 2}),
        p.update_conversation("refund", (1, 1), "refund:reason"),
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) for r in results), results
    # The run is one transaction: user 1's new data did not land without the state.
    assert await DatabasePersistence(sqlite_db).get_user_data() == {1: {"step": 1}}
    # And the next run writes it (the cache did not record the failed write as done).
    await p.update_user_data(1, {"step": 2})
    assert await DatabasePersistence(sqlite_db).get_user_data() == {1: {"step": 2}}


_writes = st.lists(
    st.builds(
        Write,
        kind=st.sampled_from(["user", "chat", "conversation"]),
        key=st.integers(0, 3),
        data=st.one_of(st.none(), st.text(max_size=3)),
    ).map(lambda w: w._replace(key=("flow", str(w.key))) if w.kind == "conversation" else w),
    max_size=30,
)


@given(writes=_writes)
def test_a_planned_run_leaves_what_the_writes_one_by_one_would(writes: list[Write]) -> None:
    """Grouped by statement, a run may apply its writes in another order; the last write of
    each key wins either way."""
    one_by_one: dict[tuple[str, object], str] = {}
    for w in writes:
        if w.data is None:
            one_by_one.pop((w.kind, w.key), None)
        else:
            one_by_one[w.kind, w.key] = w.data
    planned: dict[tuple[str, object], str] = {}
    groups = plan(writes, now=1.0)
    for (action, kind), rows in sorted(groups.items(), reverse=True):  # deletes last
        for row in rows:
            key = row[0] if kind != "conversation" else (row[0], row[1])
            if action == "delete":
                planned.pop((kind, key), None)
            else:
                assert row[-1] == 1.0
                planned[kind, key] = row[-2]
    assert planned == one_by_one
    assert set(STATEMENTS) >= set(groups)


@given(
    st.lists(st.one_of(st.integers(), st.text(), st.booleans()), min_size=0, max_size=4).map(tuple)
)
def test_a_conversation_key_is_stored_as_its_json(key: tuple) -> None:
    """Keys of ints take a shortcut past json.dumps; every key (chat ids beyond 2**53,
    negative group ids, strings, booleans) is stored as exactly the JSON it was before, so
    rows written by earlier versions are still found."""
    from storage.persistence import _key_json

    assert _key_json(key) == json.dumps(list(key), separators=(",", ":"))
