"""/privacy, the data export and deletion, as users in both languages, on the real bot.

The wallet runs on its own database (through its HTTP API), so the bot's files hold only the
bot's own records: after a deletion, a scan of them (with the write-ahead log) and of the logs
must find nothing of the user.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import sqlite3
import time
from dataclasses import dataclass

import pytest

from handlers.common import STALE_TEXT
from storage.repos.privacy import ERASURE_DONE
from tests.e2e.privacy_support import (
    CODE,
    EN,
    RIGHTS,
    ZH,
    Persona,
    plain,
    scan_files,
    scan_rows,
    start_wallet,
)
from tests.harness import TOKEN, BotHarness, UserSession
from tgbot.cli import _RedactingFilter
from tgbot.i18n import LANGUAGES, translator
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps, Faults

PERSONAS = [pytest.param(EN, id="en"), pytest.param(ZH, id="zh")]
DAY = 86400.0


@dataclass
class World:
    """The bot with an agents' forum group, an agent and an admin, and the wallet's API."""

    bot: BotHarness
    emu: TelegramEmulator
    group_id: int
    agent_id: int
    admin_id: int

    async def agent_says(self, thread_id: int, text: str) -> None:
        self.emu.user_send(self.agent_id, text, chat_id=self.group_id, thread_id=thread_id)
        await self.bot.settle()

    def topic_of(self, code: str) -> int:
        for thread_id, topic in self.emu.topics(self.group_id).items():
            if topic["name"].startswith(code):
                return thread_id
        raise AssertionError(f"no topic for {code}")


@pytest.fixture
async def world(make_bot, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    api, wallet_db = await start_wallet(tmp_path / "wallet.db")
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    agent = emu.add_user("Agent Wang", language_code="zh-hans")
    admin = emu.add_user("Admin Zhao", language_code="en", started=True)
    group = emu.add_forum_group(
        "Agents", members=[agent.id], admins=[agent.id], bot_is_admin=True, bot_rights=RIGHTS
    )
    bot = await make_bot(
        emu=emu,
        agent_chats=((group.id, None),),
        admin_ids=frozenset({admin.id}),
        backend="http",
        backend_url=api.url,
        backend_api_key=api.api_key,
    )
    await bot.app.repos.agents.add(agent.id, "Wang", admin.id)
    yield World(bot, emu, group.id, agent.id, admin.id)
    await bot.close()
    await api.stop()
    await wallet_db.close()
    assert bot.violations == []
    assert api.violations == []


async def build_history(world: World, p: Persona) -> UserSession:
    """A customer asks a question, requests a refund (verifying), talks to support twice,
    rates the first conversation with a comment, and leaves the second one open."""
    bot = world.bot
    user = bot.user(p.name, p.language_code, phone_number=p.phone, user_id=p.user_id)
    await user.send("/start")
    await user.send(p.question)
    await user.send("/refund")
    await user.share_contact()
    await user.send(CODE)
    await user.click(user.last_message.buttons[0])  # the newest refundable payment
    await user.click(p.labels["other_reason"])
    await user.send(p.reason)
    await user.click(user.last_message.buttons[0])  # the whole amount
    await user.click(p.labels["confirm_refund"])
    assert await bot.app.repos.refunds.for_user(p.user_id)
    await user.send("/human")
    first = await bot.app.repos.tickets.open_for_user(p.user_id)
    await user.send(p.ticket_text)
    thread = world.topic_of(first.code)
    await world.agent_says(thread, p.agent_reply)
    assert user.last_message.text.endswith(f"\n{p.agent_reply}")  # signed by the team
    await world.agent_says(thread, "/close")
    await user.click("⭐⭐⭐⭐")
    await user.click(p.labels["comment"])  # a comment only when asked for
    await user.send(p.comment)
    await user.send("/human")
    await user.send(p.second_ticket_text)
    return user


async def wait_erased(bot: BotHarness) -> None:
    """Wait until the erasure job and everything it caused are done."""
    assert await bot.app.privacy.idle(timeout=20.0)
    await bot.settle()


def _document(emu: TelegramEmulator, user_id: int) -> tuple[dict, str]:
    message = next(m for m in reversed(emu.bot_messages(user_id)) if "document" in m)
    content = emu.files[message["document"]["file_id"]].content
    return message, content.decode()


def _db(bot: BotHarness) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{bot.db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _update_content(payload: dict) -> list[str]:
    """What of a stored update the export must show (texts, button data, shared phone)."""
    found = []
    query = payload.get("callback_query")
    if query:
        found.append(query.get("data", ""))
    for key in ("message", "edited_message"):
        message = payload.get(key) or {}
        for field in ("text", "caption"):
            if message.get(field):
                found.append(message[field])
        if message.get("contact"):
            found.append(message["contact"]["phone_number"])
    return found


@pytest.mark.parametrize("p", PERSONAS)
async def test_export_file_holds_every_stored_item_about_the_user(world, p):
    bot = world.bot
    user = await build_history(world, p)
    await user.send("/privacy")
    await user.click(p.labels["export"])  # verified minutes ago (the refund): no new code
    message, export = _document(world.emu, p.user_id)
    tr = translator("zh_Hans" if p is ZH else "en")
    assert message["document"]["file_name"].startswith("upay-my-data-")
    assert message["caption"].startswith(p.labels["export_caption"])
    # Labels in the user's language.
    for label in ("Profile", "Conversations with support", "Refund requests made here"):
        assert f"== {tr.gettext(label)} ==" in export

    with _db(bot) as db:
        user_row = db.execute("SELECT * FROM users WHERE id = ?", (p.user_id,)).fetchone()
        expected = [user_row["first_name"], user_row["wallet_account_id"], str(p.user_id)]
        verification = db.execute(
            "SELECT * FROM verifications WHERE user_id = ?", (p.user_id,)
        ).fetchone()
        expected.append(verification["account_id"])
        tickets = db.execute("SELECT * FROM tickets WHERE user_id = ?", (p.user_id,)).fetchall()
        assert len(tickets) == 2
        for ticket in tickets:
            expected.append(ticket["code"])
            expected += [str(v) for v in json.loads(ticket["context"]).values()]
            if ticket["rating_comment"]:
                expected.append(ticket["rating_comment"])
            lines = db.execute(
                "SELECT text FROM ticket_messages WHERE ticket_id = ? "
                "AND direction IN ('in', 'out') AND text IS NOT NULL",
                (ticket["id"],),
            ).fetchall()
            expected += [line["text"] for line in lines]
        refunds = db.execute("SELECT * FROM refunds WHERE user_id = ?", (p.user_id,)).fetchall()
        for refund in refunds:
            expected += [refund["id"], refund["transaction_id"], refund["reason"]]
        questions = db.execute(
            "SELECT question FROM answers WHERE user_id = ?", (p.user_id,)
        ).fetchall()
        expected += [q["question"] for q in questions]
        actions = db.execute(
            "SELECT * FROM audit_log WHERE actor_id = ? OR target = ?", (p.user_id, str(p.user_id))
        ).fetchall()
        codes = {str(t["id"]): t["code"] for t in tickets}
        targets = [a["target"] for a in actions if a["target"] not in (None, str(p.user_id))]
        expected += [codes.get(target, target) for target in targets]
        updates = db.execute("SELECT payload FROM inbox WHERE user_id = ?", (p.user_id,)).fetchall()
        for row in updates:
            expected += _update_content(json.loads(row["payload"]))
        sends = db.execute("SELECT params FROM outbox WHERE chat_id = ?", (p.user_id,)).fetchall()
        for row in sends:
            params = json.loads(row["params"])
            if params.get("text"):  # the bot's HTML, shown as plain text
                expected.append(html.unescape(plain(params["text"])))
    # The history is really there (so the comparison below compares something).
    assert {p.question, p.reason, p.comment} <= set(expected)
    assert p.ticket_text in expected or any(p.ticket_text[:10] in e for e in expected)
    assert len(updates) >= 10 and refunds and questions and actions
    missing = [item for item in expected if item and item not in export]
    assert missing == []
    # One line per action on record, per stored update, per message line.
    section = export.split(f"== {tr.gettext('Your actions on record')} ==")[1].split("==")[0]
    assert len([ln for ln in section.splitlines() if ln.startswith("[")]) == len(actions)
    # Nothing about other people: the agent's name and id, the admin, the group.
    # (The agent's work name is in the export only as the signature the user was shown on
    # the agent's replies, "Support · Wang": TGBOT_AGENT_LABEL.)
    label = tr.gettext("{team} · {name}").format(team=tr.gettext("Support"), name="Wang")
    shown = export.replace(label, "")
    for other in ("Wang", "Agent", str(world.agent_id), str(world.admin_id), str(world.group_id)):
        assert other not in shown
    assert p.agent_reply in export  # the reply the user got, from "Support"
    support = (
        tr.gettext("[{time}] {who}: {text}")
        .split("]")[1]
        .format(who=tr.gettext("Support"), text=p.agent_reply)
    )
    assert any(line.endswith(support) for line in export.splitlines())


async def test_export_and_delete_need_a_fresh_identity_check(world):
    bot = world.bot
    user = bot.user("Quinn", "en", phone_number=EN.phone, user_id=7_000_000_123)
    await user.send("/privacy")
    overview = user.last_message
    assert overview.buttons == ["📤 Export my data", "🗑 Delete my data", "🏠 Main menu"]
    await user.click("📤 Export my data")
    assert "check that it is you" in user.last_message.text  # the shared identity check
    assert not any("document" in m for m in world.emu.bot_messages(user.user_id))
    await user.share_contact()
    typed = await user.send(CODE)
    assert world.emu.message(user.user_id, typed.message_id).deleted
    _, export = _document(world.emu, user.user_id)
    assert "Quinn" in export and "U1003" in export
    # Verified a moment ago: deletion goes straight to the confirmation; a stale
    # verification asks for a new code first.
    bot.app.config = bot.app.config.replace(verification_max_age=0.001)
    await user.send("/privacy")
    await user.click("🗑 Delete my data")
    assert "6-digit code" in user.last_message.text
    assert await bot.app.repos.users.get(user.user_id) is not None


@pytest.mark.parametrize("p", PERSONAS)
async def test_deletion_erases_the_user_from_storage_files_logs_and_topics(world, p, caplog):
    bot, emu = world.bot, world.emu
    user = await build_history(world, p)
    tickets = [await bot.app.repos.tickets.get(i) for i in (1, 2)]
    refund = (await bot.app.repos.refunds.for_user(p.user_id))[0]
    relayed = []
    for ticket in tickets:
        relayed += [
            line.group_message_id
            for line in await bot.app.repos.tickets.transcript(ticket.id)
            if line.direction == "in" and line.group_message_id
        ]
    assert len(relayed) == 2
    threads = [world.topic_of(t.code) for t in tickets]
    assert all(p.name in emu.topics(world.group_id)[t]["name"] for t in threads)

    needles = [
        p.name,
        str(p.user_id),
        *p.texts,
        *p.phone_fragments,
        p.account_id,
        refund.id,
        refund.transaction_id,
    ]
    files = [bot.db_path, bot.db_path.with_name("bot.db-wal"), bot.db_path.with_name("bot.db-shm")]
    # Before: the scans find every one of them (so finding none afterwards means something),
    # but the phone number as shared: the inbox never keeps a contact's number (finding 8 of
    # the security review, tests/e2e/test_review_findings.py); the user typed it formatted.
    found = scan_files(files, needles)
    shared = {f for f in p.phone_fragments if f.isdigit()}
    assert {n for hits in found.values() for n in hits} == set(needles) - shared
    assert len(scan_rows(bot.db_path, p.user_id)) > 10

    await user.send("/privacy")
    await user.click(p.labels["delete"])
    confirm = plain(user.last_message.text)
    tr = translator("zh_Hans" if p is ZH else "en")
    assert confirm.startswith(
        plain(tr.gettext("🗑 <b>Delete your data?</b> This permanently deletes:"))
    )
    expected_lines = [
        tr.gettext("• your profile: name and language setting"),
        tr.gettext("• the link to your U-Pay account {account}").format(
            account="…" + p.account_id[-4:]
        ),
        tr.ngettext("• {count} refund reference", "• {count} refund references", 1).format(
            count="1"
        ),
        tr.ngettext("• {count} question you typed", "• {count} questions you typed", 1).format(
            count="1"
        ),
        tr.gettext("Your open conversation {code} will be closed first.").format(
            code=tickets[1].code
        ),
    ]
    for line in expected_lines:
        assert line in confirm
    await user.click(p.labels["yes_delete"])
    await wait_erased(bot)

    # The user is told, with a way forward.
    assert user.last_message.text.startswith(p.labels["done"])
    assert user.last_message.button_data == ["menu:main"]
    # The agents' topics: the bot's posts of the user's messages and the header cards are
    # deleted (within 48 hours), the names carry no first name, each says why and is closed.
    for message_id in relayed:
        assert emu.message(world.group_id, message_id).deleted
    for ticket, thread in zip(tickets, threads, strict=True):
        topic = emu.topics(world.group_id)[thread]
        assert topic["name"] == f"{ticket.code} · {LANGUAGES[ticket.language]}"
        assert topic["closed"]
        texts = [m.get("text", "") for m in emu.bot_messages(world.group_id, thread)]
        assert any(t.startswith("🗑 " + p.labels["erased_topic"]) for t in texts)
        assert not any(p.name in t for t in texts)
    # Storage: the open ticket was closed first; the records kept for accountability link
    # to nobody; the erasure keeps counts only, and is audited without content.
    with _db(bot) as db:
        rows = db.execute("SELECT user_id, status, rating, rating_comment, context FROM tickets")
        rows = rows.fetchall()
        assert [(r["status"], r["rating"]) for r in rows] == [("closed", 4), ("closed", None)]
        assert all(r["user_id"] < 0 and r["rating_comment"] is None for r in rows)
        assert all(r["context"] == "{}" for r in rows)
        erasure = db.execute("SELECT * FROM erasures").fetchone()
        assert erasure["user_id"] is None and erasure["step"] == ERASURE_DONE
        counts = json.loads(erasure["counts"])
        assert counts["tickets"] == 2 and counts["refunds"] == 1 and counts["profile"] == 1
        assert counts["posts_deleted"] == 4 and counts["posts_kept"] == 0  # 2 relays, 2 headers
        audit = db.execute(
            "SELECT details FROM audit_log WHERE action = 'privacy.erased'"
        ).fetchone()
        assert json.loads(audit["details"])["reason"] == "request"
        assert (
            db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'refund.create'").fetchone()[
                0
            ]
            == 1
        )
    assert scan_files(files, needles) == {}
    assert scan_rows(bot.db_path, p.user_id) == []
    # The logs (INFO, filtered as in production) never carried them either.
    production = _RedactingFilter()
    logged = "\n".join(
        r.getMessage()
        for r in caplog.records
        if production.filter(r) and not r.name.startswith("tgbot.sandbox")
    )
    assert "Erasure 1: done" in logged
    assert [n for n in needles if n in logged] == []

    # Writing again starts from scratch.
    await user.send("/start")
    again = await bot.app.repos.users.get(p.user_id)
    assert again is not None and again.wallet_account_id is None


async def test_messages_older_than_48_hours_stay_and_the_topic_says_so(world):
    bot, emu = world.bot, world.emu
    user = bot.user("Ottoline", "en", phone_number=EN.phone, user_id=7_555_000_111)
    await user.send("/start link_demo_alice")  # linked and verified from the wallet app
    await user.send("/human")
    ticket = await bot.app.repos.tickets.open_for_user(user.user_id)
    await user.send("First message, from two days ago")
    thread = world.topic_of(ticket.code)
    emu.advance(49 * 3600)
    await user.send("A fresh message")
    lines = [
        line for line in await bot.app.repos.tickets.transcript(ticket.id) if line.direction == "in"
    ]
    await user.send("/privacy")
    await user.click("🗑 Delete my data")
    await user.click("🗑 Yes, delete my data")
    await wait_erased(bot)
    old, fresh = (emu.message(world.group_id, line.group_message_id) for line in lines)
    assert not old.deleted and fresh.deleted
    notices = [
        m["text"] for m in emu.bot_messages(world.group_id, thread) if "🗑" in m.get("text", "")
    ]
    assert len(notices) == 1
    notice = notices[0]
    # The header card and the first message are too old to delete.
    assert notice.startswith("🗑 Data deleted at the user's request. 2 messages here that carry")
    assert emu.topics(world.group_id)[thread] == {
        "name": f"{ticket.code} · English",
        "closed": True,
        "deleted": False,
    }
    with _db(bot) as db:
        counts = json.loads(db.execute("SELECT counts FROM erasures").fetchone()[0])
    assert (counts["posts_deleted"], counts["posts_kept"]) == (1, 2)


async def test_while_the_deletion_runs_the_user_is_answered_and_nothing_is_recorded(world):
    bot, emu = world.bot, world.emu
    user = bot.user("Pim", "zh-hans", phone_number=ZH.phone, user_id=7_555_000_222)
    await user.send("/start link_demo_lilei")
    await user.send("/human")
    for n in range(3):
        await user.send(f"消息{n}")
    await user.send("/privacy")
    await user.click("🗑 删除我的数据")
    emu.faults = Faults(latency=0.4, methods=frozenset({"deleteMessage"}))
    await user.click("🗑 确定删除")
    assert user.last_message.text.startswith("🗑 正在删除您的数据")
    assert bot.app.privacy.erasing(user.user_id) == "zh_Hans"
    await user.send("/start")
    assert user.last_message.text == "正在删除您的数据，完成后会通知您。"
    query = await user.click("menu:main")
    assert user.answer_of(query) == "正在删除您的数据，完成后会通知您。"
    emu.faults = Faults()
    await wait_erased(bot)
    assert user.last_message.text.startswith("✅ 您在本客服对话中的数据已删除")
    assert await bot.app.repos.users.get(user.user_id) is None
    assert scan_rows(bot.db_path, user.user_id) == []


@pytest.mark.parametrize("p", PERSONAS)
async def test_privacy_page_shows_the_retention_settings_in_the_users_language(make_bot, p):
    bot = await make_bot(
        retention_updates_hours=6,
        retention_sent_hours=36,
        retention_transcript_days=45,
        retention_question_days=14,
        retention_refund_days=120,
        retention_audit_days=400,
        retention_profile_days=1000,
    )
    user = bot.user(p.name, p.language_code)
    await user.send("/privacy")
    text = plain(user.last_message.text)
    if p is EN:
        figures = [
            "6 hours",
            "36 hours",
            "45 days",
            "14 days",
            "120 days",
            "400 days",
            "1,000 days",
        ]
        assert "Who can see it" in text
    else:
        figures = ["6小时", "36小时", "45天", "14天", "120天", "400天", "1,000天"]
        assert "谁能看到" in text
    for figure in figures:
        assert figure in text
    await user.send("/help")
    assert "/privacy" in user.last_message.text
    code = "zh" if p is ZH else "en"
    commands = {
        c["command"]: c["description"]
        for c in bot.emu.my_commands({"type": "all_private_chats"}, code)
    }
    assert commands["privacy"] == ("隐私与个人数据" if p is ZH else "Privacy and my data")


async def test_forged_or_stale_buttons_never_start_a_deletion(world):
    bot = world.bot
    user = bot.user("Ruth", "en", phone_number=EN.phone, user_id=7_555_000_333)
    await user.send("/start link_demo_alice")
    await user.send("/privacy")
    overview = user.last_message.message_id
    query = await user.press_forged(overview, "privacy:erase")  # skipping the confirmation
    assert user.answer_of(query) == STALE_TEXT
    await user.send("/start")  # the flow ended; its buttons are stale now
    query = await user.press_forged(overview, "privacy:delete")
    assert user.answer_of(query) == STALE_TEXT
    assert await bot.app.repos.privacy.erasure_of(user.user_id) is None
    assert (await bot.app.repos.users.get(user.user_id)).wallet_account_id == "U1003"


async def test_retention_purge_forgets_by_age_and_renames_old_topics(world):
    bot, emu = world.bot, world.emu
    app = bot.app
    user = bot.user("Sigrun", "en", phone_number=EN.phone, user_id=7_555_000_444)
    await user.send("/start link_demo_alice")
    await user.send(EN.question)
    await user.send("/human")
    ticket = await app.repos.tickets.open_for_user(user.user_id)
    await user.send(EN.ticket_text)
    await user.send("/end")
    await user.click("✖️ Yes, end it")  # nobody had answered: ending is confirmed
    thread = world.topic_of(ticket.code)
    now = time.time()
    for staff in (world.agent_id, world.admin_id):  # staff who also wrote to the bot
        await app.repos.users.touch(staff, "Staff", "en", now=now)

    # Two days on: handled updates keep no contents, sent messages are gone; the rest stays.
    counts = await app.privacy.purge(now=now + 2 * DAY)
    assert counts["updates"] >= 5 and counts["sent"] >= 3
    assert counts["transcripts"] == 0 and counts["profiles"] == 0
    data = await app.repos.privacy.personal_data(user.user_id)
    assert data.updates == [] and data.sends == [] and data.tickets[0].lines
    assert data.questions[0].question == EN.question
    # A quarter later: the transcript and the question are gone, the topic loses the name.
    counts = await app.privacy.purge(now=now + 91 * DAY)
    assert counts["transcripts"] == 1 and counts["questions"] == 1
    await bot.settle()
    assert emu.topics(world.group_id)[thread]["name"] == f"{ticket.code} · English"
    data = await app.repos.privacy.personal_data(user.user_id)
    assert data.tickets == [] and data.questions == [] and data.profile is not None
    # Two years of silence: the profile and account link go too (audited, counts only).
    counts = await app.privacy.purge(now=now + 731 * DAY)
    assert counts["profiles"] == 1
    assert (await app.repos.privacy.personal_data(user.user_id)).is_empty
    assert scan_rows(bot.db_path, user.user_id) == []
    erased = [e for e in await app.repos.audit.recent() if e.action == "privacy.erased"]
    assert erased[0].details["reason"] == "inactive" and erased[0].details["profile"] == 1
    # Staff are never purged as inactive.
    assert await app.repos.users.get(world.agent_id) is not None
    assert await app.repos.users.get(world.admin_id) is not None


async def test_after_a_stop_mid_deletion_the_user_is_held_back_from_the_first_update(
    world, make_bot
):
    bot, emu = world.bot, world.emu
    user = bot.user("Tamsin", "en", phone_number=EN.phone, user_id=7_555_000_555)
    await user.send("/start link_demo_alice")
    await user.send("/human")
    for n in range(4):
        await user.send(f"Tamsin's note {n}")
    await user.send("/privacy")
    await user.click("🗑 Delete my data")
    emu.faults = Faults(latency=2.0, methods=frozenset({"deleteMessage"}))
    await user.click("🗑 Yes, delete my data")
    deadline = time.monotonic() + 10
    # Committed, as another connection sees it: the bot's own connection also sees the step
    # inside the erasure's transaction, which a stop during it rolls back.
    while await _erasure_step(bot) != "delete_posts":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await bot.stop()  # mid-way (Telegram slow to delete), as on Ctrl-C
    assert await _erasure_step(bot) == "delete_posts"
    # Written while the bot is down: handled first thing after the restart.
    emu.user_send(user.user_id, "/start")
    again = await make_bot(
        emu=emu,
        agent_chats=((world.group_id, None),),
        admin_ids=frozenset({world.admin_id}),
        backend="http",
        backend_url=bot.config().backend_url,
        backend_api_key=bot.config().backend_api_key,
    )
    user.harness = again
    await again.settle()
    assert user.last_message.text == "Your data is being deleted. I will tell you when it is done."
    emu.faults = Faults()
    await wait_erased(again)
    assert user.last_message.text.startswith("✅ Your data has been deleted")
    assert await again.app.repos.users.get(user.user_id) is None
    assert scan_rows(again.db_path, user.user_id) == []


async def _erasure_step(bot: BotHarness) -> str:
    conn = sqlite3.connect(f"file:{bot.db_path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT step FROM erasures").fetchone()[0]
    finally:
        conn.close()


async def test_telegram_down_during_the_deletion_it_is_retried_until_it_completes(world, caplog):
    bot, emu = world.bot, world.emu
    user = bot.user("Ulla", "en", phone_number=EN.phone, user_id=7_555_000_666)
    await user.send("/start link_demo_alice")
    await user.send("/human")
    for n in range(3):
        await user.send(f"Ulla's message {n}")
    ticket = await bot.app.repos.tickets.open_for_user(user.user_id)
    relayed = [
        line.group_message_id
        for line in await bot.app.repos.tickets.transcript(ticket.id)
        if line.direction == "in"
    ]
    await user.send("/privacy")
    await user.click("🗑 Delete my data")
    # Telegram answers 500 to every deletion for a while.
    emu.faults = Faults(rate_5xx=1.0, methods=frozenset({"deleteMessage"}))
    await user.click("🗑 Yes, delete my data")
    deadline = time.monotonic() + 20
    while not any("step delete_posts failed" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert not any(emu.message(world.group_id, m).deleted for m in relayed)
    emu.faults = Faults()  # Telegram is back
    assert await bot.app.privacy.idle(timeout=30.0)
    await bot.settle()
    assert emu.fault_counts["5xx"] >= 2
    assert all(emu.message(world.group_id, m).deleted for m in relayed)
    topic = emu.topics(world.group_id)[world.topic_of(ticket.code)]
    assert topic["closed"] and "Ulla" not in topic["name"]
    assert user.last_message.text.startswith("✅ Your data has been deleted")
    assert scan_rows(bot.db_path, user.user_id) == []
