"""A deletion interrupted by kill -9 completes after a restart (``tgbot run`` as a process)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.e2e.privacy_support import EN, RIGHTS, ZH, Persona, scan_files, scan_rows, start_wallet
from tests.e2e.test_process import ProcessBot
from tests.harness import TOKEN
from tests.support.waiting import wait_until
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps, Faults
from tgbot.sandbox.server import EmulatorServer

MESSAGES = 8
LINKS = {"en": "link_demo_alice", "zh-hans": "link_demo_lilei"}


@pytest.fixture
async def server():
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    srv = EmulatorServer(emu)
    await srv.start()
    yield srv
    await srv.stop()


def _erasure(db_path) -> dict | None:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM erasures").fetchone()
        return dict(row) if row else None
    except sqlite3.OperationalError:  # not migrated yet, or busy
        return None
    finally:
        conn.close()


def _texts(emu, chat_id, thread_id=None) -> list[str]:
    return [m.get("text", "") for m in emu.bot_messages(chat_id, thread_id)]


def _last_with_button(emu, user_id, label) -> int:
    for message in reversed(emu.bot_messages(user_id)):
        for row in message.get("reply_markup", {}).get("inline_keyboard", []):
            if any(button["text"] == label for button in row):
                return message["message_id"]
    raise AssertionError(f"no button {label!r}")


@pytest.mark.parametrize("p", [pytest.param(EN, id="en"), pytest.param(ZH, id="zh")])
async def test_kill_9_during_a_deletion_then_restart_completes_it(
    server, children, tmp_path, p: Persona
):
    emu = server.emulator
    api, wallet_db = await start_wallet(tmp_path / "wallet.db")
    group = emu.add_forum_group("Agents", bot_is_admin=True, bot_rights=RIGHTS)
    db_path = tmp_path / "bot.db"
    log_path = tmp_path / "bot.log"
    bot = ProcessBot(
        server,
        children,
        db_path,
        log_path,
        TGBOT_BACKEND="http",
        TGBOT_BACKEND_URL=api.url,
        TGBOT_BACKEND_API_KEY=api.api_key,
        TGBOT_AGENT_CHAT_ID=str(group.id),
        TGBOT_RATE_GROUP_PER_MINUTE="10000",
    )
    try:
        await bot.start("tgbot", "run")
        user = emu.add_user(
            p.name, language_code=p.language_code, phone_number=p.phone, user_id=p.user_id
        )
        uid = user.id
        emu.user_send(uid, f"/start {LINKS[p.language_code]}")  # linked and verified
        await wait_until(lambda: len(_texts(emu, uid)) >= 1, what="linked")
        emu.user_send(uid, "/human")
        await wait_until(lambda: emu.topics(group.id), what="the ticket's topic")
        thread = next(iter(emu.topics(group.id)))
        for n in range(MESSAGES):
            emu.user_send(uid, f"{p.ticket_text} #{n}")
            await wait_until(
                lambda n=n: any(t.endswith(f" #{n}") for t in _texts(emu, group.id, thread)),
                what=f"message {n} relayed to the topic",
            )
        relayed = [
            m["message_id"]
            for m in emu.bot_messages(group.id, thread)
            if m.get("text", "").startswith(p.ticket_text)
        ]
        assert len(relayed) == MESSAGES

        emu.user_send(uid, "/privacy")
        await wait_until(lambda: _has_button(emu, uid, p.labels["delete"]), what="/privacy")
        emu.press_button(
            uid, uid, _last_with_button(emu, uid, p.labels["delete"]), p.labels["delete"]
        )
        await wait_until(lambda: _has_button(emu, uid, p.labels["yes_delete"]), what="confirm")
        # Telegram slow to delete: the kill lands while the bot deletes the topic's messages.
        emu.faults = Faults(latency=0.5, methods=frozenset({"deleteMessage"}))
        yes = _last_with_button(emu, uid, p.labels["yes_delete"])
        emu.press_button(uid, uid, yes, p.labels["yes_delete"])
        await wait_until(
            lambda: sum(method == "deleteMessage" for method, _ in emu.calls) >= 3,
            what="deletions under way",
        )
        await bot.kill()

        erasure = _erasure(db_path)
        assert erasure is not None and erasure["step"] == "delete_posts"
        assert erasure["user_id"] == uid  # the job still knows whose data it is erasing
        deleted = [emu.message(group.id, m).deleted for m in relayed]
        assert 0 < sum(deleted) < MESSAGES, deleted  # really mid-way
        assert not any(t.startswith(p.labels["done"]) for t in _texts(emu, uid))

        emu.faults = Faults()
        await bot.start("tgbot", "run")
        await wait_until(
            lambda: (_erasure(db_path) or {}).get("step") == "done", what="the erasure done"
        )
        await wait_until(
            lambda: any(t.startswith(p.labels["done"]) for t in _texts(emu, uid)),
            what="the user told",
        )
        assert all(emu.message(group.id, m).deleted for m in relayed)
        topic = emu.topics(group.id)[thread]
        assert topic["closed"] and p.name not in topic["name"]
        assert any(
            t.startswith("🗑 " + p.labels["erased_topic"]) for t in _texts(emu, group.id, thread)
        )
        erasure = _erasure(db_path)
        assert erasure["user_id"] is None and erasure["language"] is None
        counts = json.loads(erasure["counts"])
        assert counts["posts_deleted"] == MESSAGES + 1  # the relays and the header card
        assert counts["messages"] == MESSAGES and counts["tickets"] == 1

        needles = [p.name, str(uid), p.ticket_text, *p.phone_fragments, p.account_id]
        files = [db_path, tmp_path / "bot.db-wal", tmp_path / "bot.db-shm"]
        assert scan_files(files, needles) == {}
        assert scan_rows(db_path, uid) == []
        assert await bot.interrupt() == 0
        log = log_path.read_text()
        assert "Resuming erasure 1 at step delete_posts" in log
        assert "Traceback" not in log
        assert [n for n in needles if n in log] == []
    finally:
        if bot.proc is not None and bot.proc.returncode is None:
            await bot.kill()
        await api.stop()
        await wallet_db.close()


def _has_button(emu, user_id, label) -> bool:
    try:
        _last_with_button(emu, user_id, label)
    except AssertionError:
        return False
    return True
