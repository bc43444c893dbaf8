"""Users, audit log, inbox and outbox repositories."""

import dataclasses

import pytest

from storage import OutboxItem, Repositories, User

# -- users --------------------------------------------------------------------------


async def test_touch_creates_then_refreshes_user(repos: Repositories) -> None:
    created = await repos.users.touch(7, "Ann", "zh-hans", now=100.0)
    assert created == User(7, "Ann", "zh-hans", None, None, False, 100.0, 100.0)

    refreshed = await repos.users.touch(7, "Annie", None, now=200.0)
    # The name follows Telegram; a missing language_code keeps the known one.
    assert refreshed == dataclasses.replace(created, first_name="Annie", last_seen_at=200.0)
    assert await repos.users.get(7) == refreshed


async def test_user_who_writes_again_is_no_longer_blocked(repos: Repositories) -> None:
    await repos.users.touch(7, "Ann", "en", now=1.0)
    assert await repos.users.set_blocked(7, True)
    assert (await repos.users.get(7)).blocked  # type: ignore[union-attr]
    user = await repos.users.touch(7, "Ann", "en", now=2.0)
    assert not user.blocked


async def test_settings_are_stored_and_unknown_users_reported(repos: Repositories) -> None:
    await repos.users.touch(7, "Ann", "en", now=1.0)
    assert await repos.users.set_language(7, "zh_Hans")
    assert await repos.users.set_wallet_account(7, "acct-42")
    user = await repos.users.get(7)
    assert user is not None
    assert (user.language, user.wallet_account_id) == ("zh_Hans", "acct-42")

    assert await repos.users.set_wallet_account(7, None)
    assert (await repos.users.get(7)).wallet_account_id is None  # type: ignore[union-attr]
    assert await repos.users.get(8) is None
    assert not await repos.users.set_language(8, "en")


async def test_count_by_language_and_blocked(repos: Repositories) -> None:
    for uid, lang in [(1, "en"), (2, "en"), (3, "zh_Hans"), (4, None)]:
        await repos.users.touch(uid, f"u{uid}", None, now=1.0)
        if lang:
            await repos.users.set_language(uid, lang)
    await repos.users.set_blocked(2, True)

    assert await repos.users.count() == 3
    assert await repos.users.count(include_blocked=True) == 4
    assert await repos.users.count(language="en") == 1
    assert await repos.users.count(language="en", include_blocked=True) == 2
    assert await repos.users.count(language="zh_Hans") == 1


async def test_iter_ids_streams_in_id_order_across_batches(repos: Repositories) -> None:
    ids = [5, 1, 900, 42, 7, 3, 100]
    for uid in ids:
        await repos.users.touch(uid, "u", None, now=1.0)
        await repos.users.set_language(uid, "en" if uid % 2 else "zh_Hans")
    await repos.users.set_blocked(7, True)

    assert [uid async for uid in repos.users.iter_ids(batch=2)] == [1, 3, 5, 42, 100, 900]
    assert [uid async for uid in repos.users.iter_ids(language="en", batch=2)] == [1, 3, 5]
    assert [
        uid async for uid in repos.users.iter_ids(language="en", batch=3, include_blocked=True)
    ] == [1, 3, 5, 7]
    assert [uid async for uid in repos.users.iter_ids(language="fr")] == []


async def test_iter_ids_sees_users_added_during_iteration(repos: Repositories) -> None:
    for uid in (1, 2, 3):
        await repos.users.touch(uid, "u", None, now=1.0)
    seen = []
    async for uid in repos.users.iter_ids(batch=2):
        seen.append(uid)
        if uid == 1:
            await repos.users.touch(10, "late", None, now=2.0)
    assert seen == [1, 2, 3, 10]


# -- audit --------------------------------------------------------------------------


async def test_audit_recent_is_newest_first(repos: Repositories) -> None:
    first = await repos.audit.record(5, "agent.add", target=9, now=1.0)
    second = await repos.audit.record(
        5, "broadcast.start", details={"language": "en", "recipients": 3}, now=2.0
    )
    entries = await repos.audit.recent()
    assert [e.id for e in entries] == [second, first]
    assert entries[0].details == {"language": "en", "recipients": 3}
    assert entries[1].target == "9"
    assert (entries[1].at, entries[1].actor_id, entries[1].details) == (1.0, 5, {})
    assert [e.id for e in await repos.audit.recent(limit=1)] == [second]


async def test_audit_since_gives_the_named_actions_from_a_time_oldest_first(
    repos: Repositories,
) -> None:
    await repos.audit.record(5, "password.reset_link", "A1", {"until": 90.0}, now=1.0)
    link = await repos.audit.record(5, "password.reset_link", "A1", {"until": 99.0}, now=10.0)
    await repos.audit.record(5, "agent.add", target=9, now=11.0)
    changed = await repos.audit.record(5, "password.changed", "A1", now=12.0)
    entries = await repos.audit.since(("password.reset_link", "password.changed"), 5.0)
    assert [e.id for e in entries] == [link, changed]
    assert entries[0].details == {"until": 99.0} and entries[0].target == "A1"
    assert await repos.audit.since(("password.changed",), 12.5) == []
    assert await repos.audit.since((), 0.0) == []


# -- inbox --------------------------------------------------------------------------


async def test_inbox_stores_each_update_once(repos: Repositories) -> None:
    assert await repos.inbox.store(10, '{"update_id": 10}')
    assert not await repos.inbox.store(10, '{"update_id": 10, "again": true}')
    assert await repos.inbox.pending() == [(10, '{"update_id": 10}')]


async def test_inbox_store_many_reports_only_new_ids(repos: Repositories) -> None:
    await repos.inbox.store(11, "b")
    assert await repos.inbox.store_many([(12, "c"), (11, "b"), (10, "a")]) == [12, 10]
    assert await repos.inbox.pending() == [(10, "a"), (11, "b"), (12, "c")]
    assert await repos.inbox.count_pending() == 3


async def test_inbox_done_updates_leave_pending(repos: Repositories) -> None:
    await repos.inbox.store_many([(1, "a"), (2, "b")])
    assert not await repos.inbox.is_done(1)
    await repos.inbox.mark_done(1, now=50.0)
    assert await repos.inbox.is_done(1)
    assert not await repos.inbox.is_done(3)
    assert await repos.inbox.pending() == [(2, "b")]
    assert await repos.inbox.count_pending() == 1


async def test_inbox_store_many_counts_an_id_repeated_in_one_batch_once(
    repos: Repositories,
) -> None:
    assert await repos.inbox.store_many([(1, "a"), (1, "again"), (2, "b")]) == [1, 2]
    assert await repos.inbox.pending() == [(1, "a"), (2, "b")]
    assert await repos.inbox.store_many([]) == []


async def test_inbox_mark_done_many_marks_each_once(repos: Repositories) -> None:
    await repos.inbox.store_many([(1, "a"), (2, "b"), (3, "c"), (4, "d")], now=1.0)
    await repos.inbox.mark_done_many([1, 3], now=10.0)
    assert await repos.inbox.pending() == [(2, "b"), (4, "d")]
    # Marked again later (a replay), 3 keeps its first done time; 2 is new; 99 unknown.
    await repos.inbox.mark_done_many([2, 3, 99], now=30.0)
    await repos.inbox.mark_done_many([], now=30.0)
    assert await repos.inbox.pending() == [(4, "d")]
    assert all([await repos.inbox.is_done(i) for i in (1, 2, 3)])
    assert not await repos.inbox.is_done(99)
    assert await repos.inbox.prune(older_than=20.0) == 2  # 1 and 3 (done at 10), not 2


async def test_inbox_prune_keeps_pending_recent_and_newest(repos: Repositories) -> None:
    await repos.inbox.store_many([(1, "a"), (2, "b"), (3, "c"), (4, "d")], now=1.0)
    for update_id, done_at in [(1, 10.0), (3, 30.0), (4, 10.0)]:
        await repos.inbox.mark_done(update_id, now=done_at)

    assert await repos.inbox.prune(older_than=20.0) == 1  # only 1: 4 is the newest
    assert await repos.inbox.pending() == [(2, "b")]
    assert await repos.inbox.is_done(3)
    assert await repos.inbox.is_done(4)
    assert await repos.inbox.max_update_id() == 4
    assert not await repos.inbox.store(4, "d")  # dedupe of the newest still works


# -- outbox -------------------------------------------------------------------------


async def test_enqueue_and_get_round_trip(repos: Repositories) -> None:
    oid = await repos.outbox.enqueue(
        1, -100, "sendMessage", {"text": "你好"}, thread_id=5, kind="relay", ref="t1", now=10.0
    )
    assert await repos.outbox.get(oid) == OutboxItem(
        id=oid,
        lane=1,
        chat_id=-100,
        thread_id=5,
        method="sendMessage",
        params={"text": "你好"},
        kind="relay",
        ref="t1",
        status="pending",
        attempts=0,
        next_attempt_at=10.0,
        created_at=10.0,
        last_error=None,
        result=None,
    )
    assert await repos.outbox.get(oid + 1) is None


async def test_enqueue_with_same_dedupe_key_returns_existing_id(repos: Repositories) -> None:
    first = await repos.outbox.enqueue(0, 1, "sendMessage", {"text": "a"}, dedupe_key="k")
    second = await repos.outbox.enqueue(0, 1, "sendMessage", {"text": "b"}, dedupe_key="k")
    assert first == second
    assert (await repos.outbox.counts())["pending"] == 1
    assert (await repos.outbox.get(first)).params == {"text": "a"}  # type: ignore[union-attr]


async def test_enqueue_many_adds_in_one_go_and_skips_duplicates(repos: Repositories) -> None:
    await repos.outbox.enqueue(3, 1, "sendMessage", {}, dedupe_key="b1:1")
    items = [
        {"lane": 3, "chat_id": uid, "method": "sendMessage", "params": {"text": "notice"},
         "kind": "broadcast", "ref": "b1", "dedupe_key": f"b1:{uid}"}
        for uid in (1, 2, 3)
    ]  # fmt: skip
    assert await repos.outbox.enqueue_many(items) == 2
    assert (await repos.outbox.counts(kind="broadcast", ref="b1"))["pending"] == 2
    with pytest.raises(TypeError, match="chatid"):
        await repos.outbox.enqueue_many([{"lane": 0, "chatid": 1, "method": "x", "params": {}}])


async def test_due_orders_by_lane_then_id_and_respects_time(repos: Repositories) -> None:
    broadcast = await repos.outbox.enqueue(3, 1, "sendMessage", {}, now=0.0)
    reply = await repos.outbox.enqueue(0, 2, "sendMessage", {}, now=0.0)
    relay_a = await repos.outbox.enqueue(1, 3, "sendMessage", {}, now=0.0)
    later = await repos.outbox.enqueue(0, 4, "sendMessage", {}, not_before=50.0, now=0.0)
    relay_b = await repos.outbox.enqueue(1, 5, "sendMessage", {}, now=0.0)

    assert [i.id for i in await repos.outbox.due(now=10.0)] == [reply, relay_a, relay_b, broadcast]
    assert [i.id for i in await repos.outbox.due(now=10.0, limit=2)] == [reply, relay_a]
    assert [i.id for i in await repos.outbox.due(now=60.0)][:2] == [reply, later]
    assert [i.id for i in await repos.outbox.due(now=10.0, exclude_chats={2, 5})] == [
        relay_a,
        broadcast,
    ]


async def test_due_uses_its_index(repos: Repositories, backend: str) -> None:
    if backend == "sqlite":
        rows = await repos.db.fetchall(
            "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE status = 'pending' "
            "AND next_attempt_at <= 1 ORDER BY lane, id LIMIT 100"
        )
        plan = " ".join(row[3] for row in rows)
        assert "outbox_due" in plan
        assert "TEMP B-TREE" not in plan  # no sort of the whole backlog
        return
    # PostgreSQL plans by statistics: on an empty table a scan is cheapest, so the planner
    # is asked to avoid one; what is checked is that the index serves the order.
    async with repos.db.transaction():
        await repos.db.fetchall("SET LOCAL enable_seqscan = off")
        rows = await repos.db.fetchall(
            "EXPLAIN SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= 1 "
            "AND chat_id <> ALL('{}'::bigint[]) ORDER BY lane, id LIMIT 100"
        )
    plan = " ".join(row[0] for row in rows)
    assert "outbox_due" in plan
    assert "Sort" not in plan  # no sort of the whole backlog


async def test_send_lifecycle(repos: Repositories) -> None:
    a = await repos.outbox.enqueue(0, 1, "sendMessage", {}, now=0.0)
    b = await repos.outbox.enqueue(0, 2, "sendMessage", {}, now=0.0)
    c = await repos.outbox.enqueue(0, 3, "sendMessage", {}, now=0.0)

    assert await repos.outbox.mark_sending([a, b, c]) == 3
    assert await repos.outbox.due(now=1.0) == []  # in flight is not due again
    await repos.outbox.mark_sent(a, {"message_id": 77})
    await repos.outbox.reschedule(b, next_attempt_at=30.0, error="RetryAfter 30")
    await repos.outbox.mark_failed(c, "Forbidden: bot was blocked by the user")

    sent, retry, failed = [await repos.outbox.get(i) for i in (a, b, c)]
    assert (sent.status, sent.result, sent.attempts) == ("sent", {"message_id": 77}, 0)
    assert (retry.status, retry.attempts, retry.next_attempt_at) == ("pending", 1, 30.0)
    assert retry.last_error == "RetryAfter 30"
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert await repos.outbox.next_due_at() == 30.0
    assert [i.id for i in await repos.outbox.due(now=30.0)] == [b]
    assert await repos.outbox.counts() == {
        "pending": 1, "sending": 0, "sent": 1, "failed": 1, "cancelled": 0,
    }  # fmt: skip


async def test_claim_due_takes_what_it_returns_in_one_step(repos: Repositories) -> None:
    """The worker claims and reads together: a line coalesced into a text before the claim
    is in what gets sent, one after it is refused (a new message carries it), and a call
    cancelled before the claim is never sent."""
    relay = await repos.outbox.enqueue(1, 7, "sendMessage", {"text": "a"}, now=0.0)
    cancelled = await repos.outbox.enqueue(3, 8, "sendMessage", {"text": "bc"}, now=0.0)
    reply = await repos.outbox.enqueue(0, 9, "sendMessage", {"text": "r"}, now=0.0)
    later = await repos.outbox.enqueue(0, 9, "sendMessage", {"text": "x"}, now=0.0, not_before=50)
    assert await repos.outbox.append_text(relay, "b", "2")
    assert await repos.outbox.cancel([cancelled]) == 1

    claimed = await repos.outbox.claim_due(now=1.0, exclude_chats={5})
    assert [item.id for item in claimed] == [reply, relay]  # by lane, then id
    assert claimed[1].params["text"] == "a\nb" and claimed[1].status == "sending"
    assert not await repos.outbox.append_text(relay, "c", "3")  # too late: being sent
    assert (await repos.outbox.get(relay)).params["text"] == "a\nb"
    assert await repos.outbox.claim_due(now=1.0) == []  # nothing claimed twice
    assert [item.id for item in await repos.outbox.claim_due(now=60.0, limit=5)] == [later]
    assert (await repos.outbox.get(cancelled)).status == "cancelled"


async def test_reset_in_flight_requeues_sends_interrupted_by_a_crash(
    repos: Repositories,
) -> None:
    a = await repos.outbox.enqueue(0, 1, "sendMessage", {}, now=0.0)
    b = await repos.outbox.enqueue(0, 2, "sendMessage", {}, now=0.0)
    await repos.outbox.mark_sending([a, b])
    await repos.outbox.mark_sent(a)
    assert await repos.outbox.reset_in_flight() == 1
    assert [i.id for i in await repos.outbox.due(now=1.0)] == [b]
    assert await repos.outbox.reset_in_flight() == 0


async def test_reset_ids_returns_held_back_sends_without_an_attempt(
    repos: Repositories,
) -> None:
    first = await repos.outbox.enqueue(0, 1, "sendMessage", {"text": "1"}, now=0.0)
    second = await repos.outbox.enqueue(0, 1, "sendMessage", {"text": "2"}, now=0.0)
    await repos.outbox.mark_sending([first, second])
    await repos.outbox.reschedule(first, next_attempt_at=5.0, error="RetryAfter 5")
    assert await repos.outbox.reset_ids([first, second]) == 1  # first is no longer in flight
    held = await repos.outbox.get(second)
    assert held is not None and (held.status, held.attempts) == ("pending", 0)
    # The chat keeps its order: the rescheduled first message still goes first.
    assert [i.id for i in await repos.outbox.due(now=5.0)] == [first, second]


async def test_cancel_only_touches_pending(repos: Repositories) -> None:
    a = await repos.outbox.enqueue(3, 1, "sendMessage", {}, kind="broadcast", ref="b1")
    b = await repos.outbox.enqueue(3, 2, "sendMessage", {}, kind="broadcast", ref="b1")
    c = await repos.outbox.enqueue(3, 3, "sendMessage", {}, kind="broadcast", ref="b2")
    await repos.outbox.mark_sending([a])
    assert await repos.outbox.cancel([a, b]) == 1
    assert (await repos.outbox.get(a)).status == "sending"  # type: ignore[union-attr]
    assert (await repos.outbox.get(b)).status == "cancelled"  # type: ignore[union-attr]
    assert await repos.outbox.cancel_pending("broadcast", "b2") == 1
    assert (await repos.outbox.get(c)).status == "cancelled"  # type: ignore[union-attr]
    assert await repos.outbox.next_due_at() is None


async def test_next_due_at_can_skip_paused_chats(repos: Repositories) -> None:
    await repos.outbox.enqueue(0, 1, "sendMessage", {}, not_before=5.0, now=0.0)
    await repos.outbox.enqueue(0, 2, "sendMessage", {}, not_before=9.0, now=0.0)
    assert await repos.outbox.next_due_at() == 5.0
    assert await repos.outbox.next_due_at(exclude_chats={1}) == 9.0


async def test_due_claim_and_next_due_look_only_at_the_lanes_asked_for(
    repos: Repositories,
) -> None:
    reply = await repos.outbox.enqueue(0, 1, "sendMessage", {}, now=0.0)
    relay = await repos.outbox.enqueue(1, 2, "sendMessage", {}, not_before=4.0, now=0.0)
    notice = await repos.outbox.enqueue(2, 3, "sendMessage", {}, not_before=6.0, now=0.0)
    bulk = await repos.outbox.enqueue(3, 4, "sendMessage", {}, not_before=2.0, now=0.0)

    assert [i.id for i in await repos.outbox.due(now=10.0, lanes=(1, 2))] == [relay, notice]
    assert [i.id for i in await repos.outbox.due(now=10.0, lanes=(3, 3))] == [bulk]
    assert [i.id for i in await repos.outbox.due(now=10.0)] == [reply, relay, notice, bulk]
    assert await repos.outbox.next_due_at(lanes=(1, 3)) == 2.0
    assert await repos.outbox.next_due_at(lanes=(1, 2)) == 4.0
    assert await repos.outbox.next_due_at(exclude_chats={2}, lanes=(1, 2)) == 6.0
    assert await repos.outbox.next_due_at(lanes=(4, 9)) is None

    claimed = await repos.outbox.claim_due(now=10.0, lanes=(2, 3))
    assert [i.id for i in claimed] == [notice, bulk]
    assert {i.status for i in claimed} == {"sending"}
    assert (await repos.outbox.get(reply)).status == "pending"  # type: ignore[union-attr]
    assert [i.id for i in await repos.outbox.claim_due(now=10.0, lanes=(0, 1))] == [reply, relay]


async def test_defer_puts_a_claimed_send_back_without_an_attempt(repos: Repositories) -> None:
    first = await repos.outbox.enqueue(2, 7, "sendMessage", {"text": "1"}, now=0.0)
    second = await repos.outbox.enqueue(2, 8, "sendMessage", {"text": "2"}, now=0.0)
    assert [i.id for i in await repos.outbox.claim_due(now=1.0)] == [first, second]
    await repos.outbox.defer(first, next_attempt_at=3.0, now=1.0)
    deferred = await repos.outbox.get(first)
    assert deferred is not None
    assert (deferred.status, deferred.attempts, deferred.next_attempt_at) == ("pending", 0, 3.0)
    assert deferred.last_error is None
    assert await repos.outbox.due(now=2.0) == []  # not before its time (second is in flight)
    assert await repos.outbox.next_due_at() == 3.0
    assert [i.id for i in await repos.outbox.claim_due(now=3.0)] == [first]


async def test_prune_sent_removes_old_finished_rows_only(repos: Repositories) -> None:
    old = await repos.outbox.enqueue(0, 1, "sendMessage", {}, dedupe_key="old", now=0.0)
    new = await repos.outbox.enqueue(0, 2, "sendMessage", {}, now=0.0)
    waiting = await repos.outbox.enqueue(0, 3, "sendMessage", {}, now=0.0)
    await repos.outbox.mark_sending([old, new])
    await repos.outbox.mark_sent(old, now=10.0)
    await repos.outbox.mark_sent(new, now=100.0)

    assert await repos.outbox.prune_sent(older_than=50.0) == 1
    assert await repos.outbox.get(old) is None
    assert await repos.outbox.get(new) is not None
    assert await repos.outbox.get(waiting) is not None
    # A pruned row's dedupe key is free again.
    assert await repos.outbox.enqueue(0, 1, "sendMessage", {}, dedupe_key="old") != old


async def test_due_finds_urgent_sends_behind_a_large_backlog(repos: Repositories) -> None:
    items = [
        {"lane": 3, "chat_id": i, "method": "sendMessage", "params": {}, "not_before": 100.0}
        for i in range(20_000)
    ]
    await repos.outbox.enqueue_many(items, now=0.0)
    urgent = await repos.outbox.enqueue(0, 1, "sendMessage", {}, now=0.0)
    assert [i.id for i in await repos.outbox.due(now=1.0)] == [urgent]
    assert len(await repos.outbox.due(now=200.0, limit=100, exclude_chats=set(range(50)))) == 100


async def test_refund_status_only_moves_forward(repos: Repositories) -> None:
    """A slow poll reporting an older status cannot move a refund back (nor notify again)."""
    from decimal import Decimal

    await repos.refunds.record("R1", 7, "U1", "T1", Decimal("5"), "CNY", "why", "submitted")
    await repos.refunds.record("R2", 7, "U1", "T2", Decimal("5"), "CNY", "why", "pending")
    assert await repos.refunds.advance("R1", "reviewing")
    assert not await repos.refunds.advance("R1", "reviewing")  # the same: nothing to tell
    assert await repos.refunds.advance("R1", "refunded")
    assert not await repos.refunds.advance("R1", "approved")  # older: ignored
    assert (await repos.refunds.get("R1")).status == "refunded"
    assert await repos.refunds.advance("R2", "reviewing")  # a wallet's own first status
    assert not await repos.refunds.advance("R404", "approved")  # unknown refund


async def test_broadcast_audience_snapshot_in_chunks_is_the_whole_audience_once(
    repos: Repositories,
) -> None:
    languages = ["zh-hans", "en-US", None, "de", "zh"]
    for n in range(23):
        await repos.users.touch(1000 + n * 7, f"U{n}", languages[n % len(languages)], now=1.0)
    await repos.users.set_blocked(1000, True)
    await repos.users.set_language(1007, "zh_Hans")  # chosen over Telegram's "en-US"
    everyone = await repos.broadcasts.create(1, "all", "zh", "en", None)
    assert await repos.broadcasts.add_recipients(everyone, "all", "en", chunk=4) == 22
    # Running it again (a snapshot cut short by a crash) adds nobody twice.
    assert await repos.broadcasts.add_recipients(everyone, "all", "en", chunk=5) == 0
    assert (await repos.broadcasts.get(everyone)).total == 22
    chinese = await repos.broadcasts.create(1, "zh_Hans", "zh", "en", None)
    added = await repos.broadcasts.add_recipients(chinese, "zh_Hans", "en", chunk=3)
    mark = "?" if repos.db.dialect == "sqlite" else "$1"
    rows = await repos.db.fetchall(
        f"SELECT user_id, language FROM broadcast_recipients WHERE broadcast_id = {mark}",
        (chinese,),
    )
    expected = {1007} | {1000 + n * 7 for n in range(1, 23) if n % 5 in (0, 4)}
    assert added == len(expected) and {row[0] for row in rows} == expected
    assert {row[1] for row in rows} == {"zh_Hans"}
    # A broadcast rejected while its audience was being snapshot keeps no recipients; a
    # started one keeps them.
    await repos.broadcasts.set_status(chinese, "rejected")
    assert await repos.broadcasts.drop_unstarted_recipients(chinese) == len(expected)
    await repos.broadcasts.set_status(everyone, "running")
    assert await repos.broadcasts.drop_unstarted_recipients(everyone) == 0


async def test_broadcast_queued_and_unsent_follow_the_recipients(repos: Repositories) -> None:
    for user_id in (1, 2, 3):
        await repos.users.touch(user_id, f"U{user_id}", "en", now=1.0)
    notice = await repos.broadcasts.create(9, "all", None, "Hi", None)
    other = await repos.broadcasts.create(9, "all", None, "Other", None)
    assert await repos.broadcasts.add_recipients(notice, "all", "en") == 3
    assert await repos.broadcasts.add_recipients(other, "all", "en") == 3
    assert (
        await repos.broadcasts.count_queued(notice),
        await repos.broadcasts.has_unsent(notice),
    ) == (0, True)
    await repos.broadcasts.mark(notice, [1, 2], "queued", only_from=("pending",))
    await repos.broadcasts.mark(other, [1, 2, 3], "queued")
    assert await repos.broadcasts.count_queued(notice) == 2
    await repos.broadcasts.delivered(notice, 1, 501)
    await repos.broadcasts.mark(notice, [3], "failed")
    assert (
        await repos.broadcasts.count_queued(notice),
        await repos.broadcasts.has_unsent(notice),
    ) == (1, True)
    await repos.broadcasts.delivered(notice, 2, 502)
    assert (
        await repos.broadcasts.count_queued(notice),
        await repos.broadcasts.has_unsent(notice),
    ) == (0, False)
    assert await repos.broadcasts.counts(notice) == {"sent": 2, "failed": 1}
    assert await repos.broadcasts.has_unsent(other)  # another broadcast's recipients apart
    assert await repos.broadcasts.count_queued(404) == 0
    assert not await repos.broadcasts.has_unsent(404)


# -- tickets ------------------------------------------------------------------------


async def test_ticket_header_card_and_agents_html_are_kept(repos: Repositories) -> None:
    ticket, created = await repos.tickets.create(7, "TH1", "en", now=1.0)
    assert created and ticket.header_message_id is None and ticket.is_open
    await repos.tickets.set_header_message(ticket.id, 4321)
    assert (await repos.tickets.get(ticket.id)).header_message_id == 4321  # type: ignore[union-attr]
    reply = await repos.tickets.add_message(
        ticket.id,
        "out",
        "text",
        sender_id=99,
        text="See the guide",
        html='See <a href="https://help.example/x">the guide</a>',
    )
    note = await repos.tickets.add_message(ticket.id, "in", "text", sender_id=7, text="thanks")
    assert reply is not None and note is not None
    stored = await repos.tickets.get_message(reply)
    assert stored is not None and stored.text == "See the guide"
    assert stored.html == 'See <a href="https://help.example/x">the guide</a>'
    assert [m.html for m in await repos.tickets.transcript(ticket.id)] == [stored.html, None]
    await repos.tickets.set_header_message(ticket.id, None)
    assert (await repos.tickets.get(ticket.id)).header_message_id is None  # type: ignore[union-attr]


async def test_json_keeps_the_order_it_was_written_in(repos: Repositories) -> None:
    # Agents read a ticket's context in the order the flow wrote it (the header card).
    ticket, _ = await repos.tickets.create(7, "TAAA", "en", context={"flow": "refund", "tx": "T1"})
    assert list(ticket.context) == ["flow", "tx"]
    item = await repos.outbox.enqueue(0, 7, "sendMessage", {"text": "a", "chat_id": 7})
    assert list((await repos.outbox.get(item)).params) == ["text", "chat_id"]  # type: ignore[union-attr]


async def test_a_refund_and_its_audit_entry_are_written_together_once(repos: Repositories) -> None:
    """With its audit details the refund's "refund.create" entry is written with it, and
    only when the refund is new: a replayed confirm logs nothing twice."""
    from decimal import Decimal

    details = {"tx": "T1", "amount": "5.50", "note": "退款"}
    args = ("R1", 7, "U1", "T1", Decimal("5.50"), "CNY", "why", "submitted")
    assert await repos.refunds.record(*args, now=10.0, audit=details)
    assert not await repos.refunds.record(*args, now=11.0, audit=details)
    assert await repos.refunds.record("R2", 7, "U1", "T2", Decimal("1"), "CNY", "x", "submitted")
    entries = await repos.audit.recent()
    assert [(e.actor_id, e.action, e.target, e.details, e.at) for e in entries] == [
        (7, "refund.create", "R1", details, 10.0)
    ]
    assert (await repos.refunds.get("R1")).created_at == 10.0
