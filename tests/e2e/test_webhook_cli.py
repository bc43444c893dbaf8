"""Webhook mode (updates stored before Telegram is told OK) and the maintenance CLI."""

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from storage import latest_version
from tgbot.sandbox.models import Faults

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_webhook_updates_are_stored_before_the_200(make_bot):
    bot = await make_bot(webhook_port=_free_port())
    assert bot.emu.webhook["url"].endswith("/hook")
    alice = bot.user("Alice")

    # The first delivery finds the database failing: the webhook must not answer 200,
    # so Telegram delivers again and nothing is lost.
    inbox = bot.app.repos.inbox
    real_store = inbox.store
    failures = []

    async def failing_once(update_id, payload, now=None):
        if not failures:
            failures.append(update_id)
            raise sqlite3.OperationalError("disk I/O error")
        return await real_store(update_id, payload, now)

    inbox.store = failing_once
    await alice.send("/start")
    assert failures, "the store was not called before answering"
    assert alice.texts == [alice.texts[0]] and alice.texts[0].startswith("Hello, Alice!")
    assert await inbox.is_done(failures[0])
    info = bot.emu.webhook
    assert info.get("secret_token") == "s3cret-token"


async def test_an_update_telegram_delivers_twice_is_handled_once(make_bot):
    """The bot answered the webhook, the answer was lost on the way, and Telegram delivers
    the same update (same update_id) again: it is dropped, not handled a second time."""
    bot = await make_bot(webhook_port=_free_port())
    alice = bot.user("Alice")
    bot.emu.faults = Faults(webhook_answers_lost=1)
    await alice.send("/start")
    assert bot.emu.faults.webhook_answers_lost == 0  # the update was delivered a second time
    # A later message of the same chat is handled after anything queued before it: once its
    # answer is there, a second greeting would have come before it.
    await alice.send("/help")
    assert len(alice.texts) == 2, alice.texts
    assert alice.texts[0].startswith("Hello, Alice!")
    assert alice.texts[1].startswith("What I can do")


def _cli(*args, db: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {"TGBOT_DB_PATH": str(db), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "tgbot", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_and_backup_commands(tmp_path):
    db = tmp_path / "bot.db"
    done = _cli("migrate", db=db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"database {db}: schema version 0 -> {latest_version()}"
    again = _cli("migrate", db=db, cwd=tmp_path)
    assert f"{latest_version()} -> {latest_version()}" in again.stdout

    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO users (id, first_name, created_at, last_seen_at) VALUES (1, 'A', 0, 0)"
        )
    copy = tmp_path / "copy.db"
    backup = _cli("backup", str(copy), db=db, cwd=tmp_path)
    assert backup.returncode == 0, backup.stderr
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT first_name FROM users").fetchall() == [("A",)]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == latest_version()
    refused = _cli("backup", str(copy), db=db, cwd=tmp_path)
    assert refused.returncode == 2 and "already exists" in refused.stderr


def test_run_without_token_says_so(tmp_path):
    done = _cli("run", db=tmp_path / "bot.db", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "config error: TGBOT_TOKEN: required to run against Telegram"
