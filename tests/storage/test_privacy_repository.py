"""PrivacyRepository: whose each stored update is, erasing a user, purging by age."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import BotDatabase, Database, Repositories, migrate
from storage.postgres import PostgresDatabase
from storage.repos.privacy import ERASURE_STEPS
from tests.storage.conftest import BACKENDS

ALICE, BOB, AGENT, GROUP = 7_100_000_001, 7_100_000_002, 7_100_000_003, -1_009_000_000_001
DAY = 86400.0

ids = st.integers(min_value=1, max_value=2**52)
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
)


def _update(kind: str, update_id: int, user_id: int, chat_id: int, thread_id: int | None) -> dict:
    """An update of ``kind`` as Telegram (and the inbox) has it."""
    message = {
        "message_id": 5,
        "date": 1,
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "from": {"id": user_id, "is_bot": False, "first_name": "X"},
        "text": "hello",
    }
    if thread_id is not None:
        message.update(message_thread_id=thread_id, is_topic_message=True)
    if kind == "callback_query":
        bot_message = {**message, "from": {"id": 1, "is_bot": True, "first_name": "Bot"}}
        body = {"id": "q", "from": message["from"], "chat_instance": "c", "message": bot_message}
        return {"update_id": update_id, "callback_query": body}
    if kind == "my_chat_member":
        member = {"status": "member", "user": message["from"]}
        body = {
            "chat": message["chat"],
            "from": message["from"],
            "date": 1,
            "old_chat_member": member,
            "new_chat_member": member,
        }
        return {"update_id": update_id, "my_chat_member": body}
    return {"update_id": update_id, kind: message}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["message", "edited_message", "callback_query", "my_chat_member"]),
    user_id=ids,
    chat_id=st.one_of(ids, ids.map(lambda i: -i)),
    thread_id=st.one_of(st.none(), st.integers(min_value=1, max_value=2**31)),
)
def test_a_stored_update_says_whose_it_is_whatever_its_kind(
    shared, kind, user_id, chat_id, thread_id
):
    async def scenario(db: BotDatabase) -> None:
        repos = Repositories(db)
        payload = _update(kind, 1, user_id, chat_id, thread_id)
        await repos.inbox.store(1, json.dumps(payload))
        row = await db.fetchone("SELECT user_id, chat_id, thread_id FROM inbox")
        topic = thread_id if kind != "my_chat_member" else None
        assert (row[0], row[1], row[2]) == (user_id, chat_id, topic)
        # Blanked, it belongs to nobody and says nothing; the id stays (never handled twice).
        assert await repos.privacy.forget_updates_of(user_id if chat_id < 0 else chat_id) == 1
        row = await db.fetchone("SELECT user_id, chat_id, thread_id, payload FROM inbox")
        assert tuple(row) == (None, None, None, '{"update_id":1}')

    _run(shared, scenario)


def test_a_payload_that_is_not_json_belongs_to_nobody(shared):
    async def scenario(db: BotDatabase) -> None:
        repos = Repositories(db)
        assert await repos.inbox.store(9, "not json")
        row = await db.fetchone("SELECT user_id, chat_id FROM inbox")
        assert (row[0], row[1]) == (None, None)

    _run(shared, scenario)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alice_texts=st.lists(texts, min_size=1, max_size=4),
    bob_texts=st.lists(texts, min_size=1, max_size=4),
    comment=texts,
    question=texts,
)
def test_erasing_a_user_leaves_nothing_of_theirs_and_everything_of_others(
    shared, alice_texts, bob_texts, comment, question
):
    async def scenario(db: BotDatabase) -> None:
        repos = Repositories(db)
        for user_id, typed in ((ALICE, alice_texts), (BOB, bob_texts)):
            await _history(repos, user_id, typed, comment, question)
        erasure, created = await repos.privacy.start_erasure(ALICE, "en")
        assert created and erasure.step == ERASURE_STEPS[0]
        again, created = await repos.privacy.start_erasure(ALICE, "en")
        assert (again.id, created) == (erasure.id, False)  # one erasure at a time per user
        before_bob = await repos.privacy.personal_data(BOB)
        # The scan below finds the user where they are (it would not pass by finding nothing).
        assert {"users.id", "inbox.user_id", "refunds.user_id"} <= set(await _rows_with(db, ALICE))

        counts = await repos.privacy.erase_user(ALICE, erasure.pseudonym)

        assert counts["profile"] == 1 and counts["tickets"] == 1 and counts["refunds"] == 1
        assert counts["messages"] == len(alice_texts) + 1  # and the agent's reply
        left = await repos.privacy.personal_data(ALICE)
        assert left.is_empty, left
        await repos.privacy.finish_erasure(erasure.id, counts)  # the job forgets whose it was
        assert await _rows_with(db, ALICE) == []
        # Kept for accountability, linked to nobody: the ticket (stars), the question's
        # outcome, the notice's delivery, the audit trail without targets and details.
        ticket = await db.fetchone("SELECT user_id, rating, rating_comment, context FROM tickets "
                                   "WHERE user_id < 0")  # fmt: skip
        assert tuple(ticket) == (erasure.pseudonym, 5, None, "{}")
        assert (await db.fetchone("SELECT COUNT(*) FROM answers WHERE question = ''"))[0] == 1
        delivered = await repos.broadcasts.counts(await _notice(repos))
        assert delivered == {"sent": 2}
        audit = await db.fetchall(
            _q(db, "SELECT action, target, details FROM audit_log WHERE actor_id = ? ORDER BY id"),
            (erasure.pseudonym,),
        )
        assert [(a[0], a[1], a[2]) for a in audit] == [
            ("refund.create", None, "{}"),
            ("card.unbind", None, "{}"),
        ]
        # The agent's own action stays theirs.
        agent = await db.fetchone(
            _q(db, "SELECT COUNT(*) FROM audit_log WHERE actor_id = ?"), (AGENT,)
        )
        assert agent[0] == 1
        # Bob's data is untouched.
        assert await repos.privacy.personal_data(BOB) == before_bob
        # Doing it again (a restart mid-way) erases nothing more.
        assert not any((await repos.privacy.erase_user(ALICE, erasure.pseudonym)).values())

    _run(shared, scenario)


async def _history(repos: Repositories, user_id: int, typed: list[str], comment, question):
    """Give a user a profile, a verification, a closed ticket with a rating and a comment, a
    refund, a question, a delivered notice, audit entries, stored updates and sends."""
    await repos.users.touch(user_id, f"name{user_id}", "en")
    await repos.users.set_wallet_account(user_id, f"U{user_id}")
    await repos.verifications.verified(user_id, f"U{user_id}")
    ticket, _ = await repos.tickets.create(
        user_id, f"T{user_id % 97}X", "en", context={"question": question}, group_chat_id=GROUP
    )
    await repos.tickets.set_topic(ticket.id, GROUP, ticket.id * 10)
    for n, text in enumerate(typed):
        await repos.tickets.add_message(
            ticket.id, "in", "text", sender_id=user_id, text=text, group_message_id=100 + n
        )
        update = _update("message", user_id % 1000 * 100 + n, user_id, user_id, None)
        update["message"]["text"] = text
        await repos.inbox.store(update["update_id"], json.dumps(update, ensure_ascii=False))
    await repos.tickets.add_message(ticket.id, "out", "text", sender_id=AGENT, text="reply")
    agent_update = _update("message", user_id % 1000 * 100 + 50, AGENT, GROUP, ticket.id * 10)
    await repos.inbox.store(agent_update["update_id"], json.dumps(agent_update))
    await repos.tickets.close(ticket.id, user_id)
    await repos.tickets.rate(ticket.id, 5)
    await repos.tickets.comment(ticket.id, comment)
    await repos.refunds.record(
        f"R{user_id}", user_id, f"U{user_id}", f"TX{user_id}", 5, "CNY", "late", "submitted"
    )
    await repos.answers.record(user_id, "en", question, "unmatched")
    notice = await _notice(repos)
    await repos.broadcasts.add_recipients(notice, "all", "en")
    await repos.broadcasts.delivered(notice, user_id, 77)
    await repos.audit.record(user_id, "refund.create", f"R{user_id}", {"tx": f"TX{user_id}"})
    await repos.audit.record(user_id, "card.unbind", f"U{user_id}", {"last4": "0017"})
    if user_id == ALICE:
        await repos.audit.record(AGENT, "ticket.claim", ticket.id)
    await repos.outbox.enqueue(0, user_id, "sendMessage", {"text": f"to {user_id}"})
    await repos.outbox.enqueue(
        1, GROUP, "sendMessage", {"text": "header"}, kind="ticket_header", ref=str(ticket.id)
    )


async def _notice(repos: Repositories) -> int:
    """Return the id of the notice every user gets (created the first time; an id a rolled
    back example used is not reused on PostgreSQL, whose sequences do not roll back)."""
    sent = await repos.broadcasts.recent(1)
    if sent:
        return sent[0].id
    return await repos.broadcasts.create(AGENT, "all", "zh", "en", None, status="running")


async def _rows_with(db: BotDatabase, user_id: int) -> list[str]:
    """Return ``table.column`` of every value anywhere that is, or contains, ``user_id``."""
    found = []
    if db.dialect == "sqlite":
        tables = await db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        columns = [
            (table, column[1])
            for (table,) in tables
            for column in await db.fetchall(f'PRAGMA table_xinfo("{table}")')
        ]
        contains = 'SELECT COUNT(*) FROM "{}" WHERE "{}" = ? OR instr(CAST("{}" AS TEXT), ?) > 0'
    else:
        columns = [
            (row[0], row[1])
            for row in await db.fetchall(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            )
        ]
        contains = (
            'SELECT COUNT(*) FROM "{}" WHERE "{}"::text = $1::bigint::text '
            'OR strpos("{}"::text, $2) > 0'
        )
    for table, name in columns:
        row = await db.fetchone(contains.format(table, name, name), (user_id, str(user_id)))
        if row[0]:
            found.append(f"{table}.{name}")
    return found


async def test_purges_forget_by_age_and_keep_what_is_younger(repos: Repositories, db) -> None:
    now = 1_800_000_000.0
    old, young = now - 100 * DAY, now - DAY
    privacy = repos.privacy
    for user_id, at in ((ALICE, old), (BOB, young)):
        await repos.users.touch(user_id, "n", "en", now=at)
        ticket, _ = await repos.tickets.create(user_id, f"T{user_id}", "en", now=at)
        await repos.tickets.set_topic(ticket.id, GROUP, ticket.id)
        await repos.tickets.add_message(ticket.id, "in", "text", text="hi", now=at)
        await repos.tickets.close(ticket.id, user_id, now=at)
        await repos.tickets.comment(ticket.id, "fine")
        await repos.answers.record(user_id, "en", "why?", "unmatched", now=at)
        await repos.refunds.record(f"R{user_id}", user_id, "U1", "TX", 1, "CNY", "r", "refunded",
                                   now=at)  # fmt: skip
        await repos.audit.record(user_id, "verify.ok", user_id, now=at)
        await repos.inbox.store(user_id % 100, json.dumps(_update("message", 1, user_id, user_id,
                                                                  None)), now=at)  # fmt: skip
        await repos.inbox.mark_done(user_id % 100, now=at)
        item = await repos.outbox.enqueue(0, user_id, "sendMessage", {"text": "x"}, now=at)
        await repos.outbox.mark_sent(item, {"message_id": 1}, now=at)
    await repos.refunds.record("R-open", ALICE, "U1", "TX", 1, "CNY", "r", "reviewing", now=old)
    await repos.verifications.verified(ALICE, "U1", now=old)
    await repos.verifications.verified(BOB, "U1", now=now - 60)

    assert await privacy.forget_update_contents(now - 24 * 3600) == 1
    assert await privacy.forget_sends(now - 48 * 3600) == 1
    topics = await privacy.forget_transcripts(now - 90 * DAY)
    assert [(t.chat_id, t.code) for t in topics] == [(GROUP, f"T{ALICE}")]
    assert await privacy.forget_questions(now - 30 * DAY) == 1
    assert await privacy.forget_refunds(now - 90 * DAY) == 1  # the settled old one only
    assert await privacy.forget_expired_verifications(now - 600, now) == 1
    assert await privacy.forget_audit(now - 30 * DAY) == 1
    assert await privacy.inactive_users(now - 30 * DAY, keep=[BOB]) == [ALICE]
    assert await privacy.inactive_users(now - 30 * DAY, keep=[ALICE]) == []

    alice, bob = await privacy.personal_data(ALICE), await privacy.personal_data(BOB)
    assert not alice.tickets and not alice.questions and not alice.actions and not alice.updates
    assert [r.id for r in alice.refunds] == ["R-open"]  # not settled: its status is still told
    assert alice.verification is None and alice.sends == []
    assert len(bob.tickets) == 1 and bob.tickets[0].ticket.rating_comment == "fine"
    assert bob.questions and bob.actions and bob.updates and bob.sends and bob.verification
    # The purged ticket stays, anonymous, for the statistics.
    row = await db.fetchone(_q(db, "SELECT user_id, closed_by, rating_comment FROM tickets "
                                   "WHERE code = ?"), (f"T{ALICE}",))  # fmt: skip
    assert tuple(row) == (0, 0, None)
    # Purging again finds nothing more.
    assert await privacy.forget_transcripts(now - 90 * DAY) == []
    assert await privacy.forget_update_contents(now - 24 * 3600) == 0


async def test_an_erasure_keeps_its_plan_and_ends_with_counts_only(repos: Repositories) -> None:
    privacy = repos.privacy
    erasure, _ = await privacy.start_erasure(ALICE, "zh_Hans")
    topic = (await privacy.user_topics(ALICE)) or []
    assert topic == []
    from storage.repos.privacy import TopicPost, UserTopic

    plan_topic = UserTopic(GROUP, 5, "TABC", "en")
    posts = [TopicPost(GROUP, 5, 11), TopicPost(GROUP, 5, 12)]
    await privacy.plan_topic_cleanup(erasure.id, [(plan_topic, "TABC · en")], posts)
    await privacy.plan_topic_cleanup(erasure.id, [(plan_topic, "TABC · en")], posts)  # again
    assert [p.message_id for p in await privacy.posts_to_delete(erasure.id)] == [11, 12]
    await privacy.post_outcome(erasure.id, GROUP, 11, "deleted")
    await privacy.post_outcome(erasure.id, GROUP, 12, "kept")
    assert await privacy.posts_to_delete(erasure.id) == []
    [(closing, name, kept)] = await privacy.topics_to_close(erasure.id)
    assert (closing.thread_id, name, kept) == (5, "TABC · en", 1)
    await privacy.topic_closed(erasure.id, GROUP, 5)
    assert await privacy.topics_to_close(erasure.id) == []
    counts = await privacy.cleanup_counts(erasure.id)
    assert counts == {"posts_deleted": 1, "posts_kept": 1, "topics_closed": 1}
    await privacy.finish_erasure(erasure.id, counts)
    done = await privacy.get_erasure(erasure.id)
    assert (done.user_id, done.language, done.step, done.counts) == (None, None, "compact", counts)
    assert [e.id for e in await privacy.unfinished_erasures()] == [erasure.id]  # to compact
    assert await privacy.compact()
    await privacy.set_step(erasure.id, "done")
    assert await privacy.unfinished_erasures() == []
    # The user may ask again later (a new erasure).
    _, created = await privacy.start_erasure(ALICE, "en")
    assert created


def _q(db: BotDatabase, sql: str) -> str:
    """The tests' own checks with ``?`` placeholders, numbered for PostgreSQL."""
    if db.dialect == "sqlite":
        return sql
    parts = sql.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


class _Rollback(Exception):
    """Ends an example: everything it wrote is rolled back."""


def _run(shared: tuple[asyncio.AbstractEventLoop, BotDatabase], scenario) -> None:
    """Run ``scenario(db)`` on a migrated database, in a transaction that is rolled back."""
    loop, db = shared

    async def isolated() -> None:
        try:
            async with db.transaction():
                await scenario(db)
                raise _Rollback
        except _Rollback:
            pass

    loop.run_until_complete(isolated())


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest):
    """One database of each backend for the generated examples (each rolls back): migrating
    per example is what would make them slow. Its own event loop: hypothesis runs the
    examples synchronously."""
    loop = asyncio.new_event_loop()
    folder = tempfile.TemporaryDirectory()
    url = None
    if request.param == "sqlite":
        db: BotDatabase = loop.run_until_complete(Database.open(Path(folder.name) / "bot.db"))
    else:
        server = request.getfixturevalue("postgres_server")
        url = loop.run_until_complete(server.new_schema("privacy"))
        db = loop.run_until_complete(PostgresDatabase.open(url))
    loop.run_until_complete(migrate(db))
    yield loop, db
    loop.run_until_complete(db.close())
    if url is not None:
        loop.run_until_complete(server.drop_schema(url))
    loop.close()
    folder.cleanup()
