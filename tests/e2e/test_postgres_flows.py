"""The acceptance flows with the bot's records in PostgreSQL (``TGBOT_DATABASE_URL``).

The same end-to-end tests as on SQLite, imported from their modules, run here with every
bot of a test on a fresh schema of the session's PostgreSQL server (the ``bot_database_url``
fixture below is all that changes): start, refund, human handoff and broadcasts, restarts
and the races their guards are for. Then the real CLI with ``TGBOT_DATABASE_URL`` set: a
flow across a graceful stop and a kill -9, one instance per schema, the demo wallet in its
own SQLite file, no password in the log. (The 30-second broadcast to thousands with 429s
passes here too; it is left out of this module to keep CI short.)
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest

# Start: greeting, menu and language in both languages, remembered across a restart.
from tests.e2e.test_broadcast import (  # noqa: F401
    test_a_cancel_while_the_feeder_picks_a_batch_sends_nothing_more,
    test_a_pause_and_resume_while_the_feeder_reads_loses_nobody,
    test_broadcast_resumes_after_a_stop_mid_way_without_skipping,
    test_pause_resume_cancel_and_recall,
    test_support_replies_flow_while_a_broadcast_runs,
    test_two_admins_one_creates_the_other_approves,
)
from tests.e2e.test_front_door import (  # noqa: F401
    test_chinese_user_gets_a_native_greeting_menu_and_help,
    test_english_user_gets_an_english_greeting_menu_and_help,
    test_garbage_emoji_and_non_text_get_a_clear_answer,
    test_language_choice_is_remembered_across_restarts,
)
from tests.e2e.test_handoff import (  # noqa: F401
    _open,
    desk,
    test_after_a_close_a_new_question_is_a_new_question_and_not_solved_reopens,
    test_album_arrives_as_one_album,
    test_claim_transfer_close_and_rating,
    test_group_cap_coalesces_consecutive_user_texts,
    test_menu_button_opens_a_ticket_with_topic_header_and_queue_info,
    test_no_queue_position_for_a_ticket_claimed_since_the_job_read_the_queue,
    test_no_unclaimed_reminder_for_a_ticket_claimed_since_the_list_was_read,
    test_one_open_ticket_per_user,
    test_other_flows_escalate_with_context_and_priority,
    test_relays_survive_restart_and_telegram_errors,
    test_text_relays_both_ways_and_agents_stay_anonymous,
    test_the_reopen_button_works_within_the_window_only,
)
from tests.e2e.test_lookup_refund import (  # noqa: F401
    test_refund_in_chinese_from_the_detail_with_other_reason,
    test_refund_partial_amount_with_bad_inputs_then_confirm_once,
    test_refund_status_changes_are_notified_once_even_across_restarts,
    test_signed_refund_webhook_triggers_the_notification,
    test_two_polls_at_once_never_tell_an_older_status_after_a_newer_one,
)
from tests.e2e.test_process import ProcessBot, _texts, server  # noqa: F401
from tests.support.waiting import wait_until
from tgbot.sandbox.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bot_database_url(postgres_url: str) -> str:
    """Every bot of a test here keeps its records in a fresh PostgreSQL schema."""
    return postgres_url


async def test_two_flushes_at_once_relay_a_line_once(desk) -> None:  # noqa: F811
    """The handoff's own race on PostgreSQL, where transactions really run at once: two
    flushes of one ticket check and queue the same line; the check locks the line."""
    alice = desk.bot.user("Alice")
    await alice.send("/start")
    ticket, _ = await _open(desk, alice)
    app = desk.bot.app
    ticket = await app.repos.tickets.get(ticket.id)
    await app.repos.tickets.add_message(ticket.id, "in", "text", text="waiting text")
    outbox = app.outbox
    enqueue = outbox.enqueue

    async def slow_enqueue(*args, **kwargs):
        await asyncio.sleep(0.1)  # a busy database: the other flush runs meanwhile
        return await enqueue(*args, **kwargs)

    outbox.enqueue = slow_enqueue
    try:
        await asyncio.gather(app.desk.flush(ticket, "in"), app.desk.flush(ticket, "in"))
    finally:
        outbox.enqueue = enqueue
    relayed = await app.db.fetchall(
        "SELECT params::text FROM outbox WHERE kind = 'relay_in' "
        "AND params::text LIKE '%waiting text%'"
    )
    assert len(relayed) == 1 and relayed[0][0].count("waiting text") == 1
    lines = [m for m in await app.repos.tickets.transcript(ticket.id) if m.text]
    assert all(m.outbox_id for m in lines if m.text.startswith("waiting"))


async def test_a_notice_delivered_while_its_broadcast_is_cancelled_does_not_deadlock(
    make_bot,
) -> None:
    """The on-sent hook of a notice and a cancel run at once on PostgreSQL: both lock the
    broadcast and its recipient, so they must do it in the same order (broadcast first) or
    each waits for the other until PostgreSQL aborts one ("deadlock detected")."""
    bot = await make_bot()
    app = bot.app
    repos = app.repos
    await app.broadcaster.stop()  # this test plays the feeder's part
    await repos.users.touch(501, "Ann", "en")
    broadcast_id = await repos.broadcasts.create(1, "all", None, "Hi", None, status="running")
    await repos.broadcasts.add_recipients(broadcast_id, "all", "en")
    await repos.broadcasts.mark(broadcast_id, [501], "queued")
    sent = await repos.outbox.enqueue(
        3, 501, "sendMessage", {"chat_id": 501, "text": "Hi"}, kind="broadcast",
        ref=str(broadcast_id),
    )  # fmt: skip
    await repos.outbox.mark_sending([sent])
    item = await repos.outbox.get(sent)
    assert item is not None

    async def waiting_for_a_lock() -> int:
        return await repos.db.fetchval(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )

    async def deliver() -> None:
        # What the outbox worker does once Telegram accepted the notice.
        async with repos.db.transaction():
            await repos.outbox.mark_sent(sent, {"message_id": 77})
            await app.broadcaster._sent(item, SimpleNamespace(message_id=77))

    # Someone holds the broadcast row; the cancel queues for it, then the delivery does.
    holder_locked, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with repos.db.transaction():
            await repos.broadcasts.get(broadcast_id)  # FOR UPDATE inside a transaction
            holder_locked.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holder_locked.wait()
    cancel = asyncio.create_task(app.broadcaster.cancel(broadcast_id))
    await _until(waiting_for_a_lock, 1)
    delivery = asyncio.create_task(deliver())
    await _until(waiting_for_a_lock, 2)
    release.set()
    await holder
    assert await asyncio.wait_for(cancel, 30)
    await asyncio.wait_for(delivery, 30)
    assert (await repos.broadcasts.get(broadcast_id)).status == "cancelled"
    recipient = await repos.db.fetchone(
        "SELECT status, message_id FROM broadcast_recipients WHERE broadcast_id = $1",
        (broadcast_id,),
    )
    assert tuple(recipient) == ("sent", 77)  # it was delivered: a cancel cannot undo that
    assert (await repos.outbox.get(sent)).status == "sent"


async def _until(read, expected: int, timeout: float = 10.0) -> None:
    """Wait until ``await read()`` returns ``expected``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (value := await read()) != expected:
        assert loop.time() < deadline, f"still {value}, waiting for {expected}"
        await asyncio.sleep(0.01)


# -- the real CLI with TGBOT_DATABASE_URL ---------------------------------------------


def _with_password(url: str) -> str:
    # The test server trusts local connections; the password is there to be kept secret.
    return url.replace("postgres@", "postgres:pw-s3cr3t-42@")


async def test_tgbot_run_keeps_the_flow_in_postgres_across_stop_and_kill_9(
    server: EmulatorServer,  # noqa: F811
    children,
    tmp_path,
    postgres_url: str,
) -> None:
    url = _with_password(postgres_url)
    emu = server.emulator
    bot = ProcessBot(
        server,
        children,
        tmp_path / "bot.db",
        tmp_path / "bot.log",
        TGBOT_DATABASE_URL=url,
        TGBOT_DEMO_WALLET_DB_PATH=str(tmp_path / "wallet.db"),
    )
    alice = emu.add_user("Alice", language_code="en")
    await bot.start()
    emu.user_send(alice.id, "/survey")
    await wait_until(lambda: "Step 1/3: pick a colour" in _texts(emu, alice.id), what="step 1")
    menu = emu.bot_messages(alice.id)[-1]["message_id"]

    # A second instance on the same schema waits as a standby (docs/postgres.md), says who
    # polls (without the password), and a stop ends its wait.
    second = ProcessBot(
        server, children, tmp_path / "other.db", tmp_path / "two.log", TGBOT_DATABASE_URL=url
    )
    await second.start("tgbot", "run")
    await wait_until(
        lambda: "Standby: not polling" in (tmp_path / "two.log").read_text(), 60, "the standby"
    )
    second.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.proc.wait(), 30) == 0
    refusal = (tmp_path / "two.log").read_text()
    assert "Another instance is already running" in refusal and "Traceback" not in refusal

    # Graceful stop mid-flow, a new process; then a kill -9 a second after the last update.
    assert await bot.interrupt() == 0
    await bot.start()
    emu.press_button(alice.id, alice.id, menu, "Red")
    await wait_until(lambda: "Step 2/3: type a word" in _texts(emu, alice.id), what="step 2")
    await asyncio.sleep(1.5)
    await bot.kill()
    await bot.start()
    emu.user_send(alice.id, "kiwi")
    await wait_until(lambda: "Step 3/3: red kiwi?" in _texts(emu, alice.id), what="step 3")
    assert await bot.interrupt() == 0

    # The bot's records are in PostgreSQL; the SQLite file holds only the demo wallet's.
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM inbox WHERE done_at IS NOT NULL") == 3
        assert await conn.fetchval("SELECT COUNT(*) FROM users WHERE id = $1", alice.id) == 1
    finally:
        await conn.close()
    with sqlite3.connect(tmp_path / "wallet.db") as wallet:
        tables = {
            row[0] for row in wallet.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        assert "demo_accounts" in tables  # the wallet's own file, migrated at start
        assert {t for t in tables if not t.startswith(("demo_", "sqlite_"))} == set()
    wallet.close()
    log = (tmp_path / "bot.log").read_text() + refusal
    assert "pw-s3cr3t-42" not in log and "Traceback" not in log


def test_migrate_command_on_postgres(postgres_url: str, tmp_path) -> None:
    url = _with_password(postgres_url)
    env = {"PATH": "/usr/bin:/bin", "TGBOT_DATABASE_URL": url}

    def migrate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tgbot", "migrate"],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    from storage.postgres import latest_version

    done = migrate()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"schema version 0 -> {latest_version()}")
    assert "pw-s3cr3t-42" not in done.stdout and "postgres:***@" in done.stdout
    again = migrate()
    assert again.stdout.strip().endswith(f"{latest_version()} -> {latest_version()}")
    refused = subprocess.run(
        [sys.executable, "-m", "tgbot", "backup", "copy.db"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "pg_dump" in refused.stderr
    assert not (tmp_path / "copy.db").exists()
