"""Tickets' routing and life cycle in the repository: the ticket of a forum topic is found by
its group *and* topic, one open ticket per user, who may claim, close and reopen, and the
message-id maps that thread agents' replies and edits.

Written to kill the mutants of ``storage/repos/tickets.py`` (``scripts/mutate.sh tickets``,
docs/testing.md): the desk is otherwise tested end to end, far too slowly to run once per
mutant. SQLite only: that is the file mutated.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from storage import Database, Repositories
from storage.repos.tickets import TicketRepository

GROUP_A, GROUP_B = -1001, -1002


@pytest.fixture
def repos(sqlite_db: Database) -> Repositories:
    return Repositories(sqlite_db)


def _near_now(value: float | None) -> bool:
    return value is not None and time.time() - 5 <= value <= time.time() + 1


async def test_a_topic_is_found_by_its_group_and_its_id_never_by_the_id_alone(
    repos: Repositories,
):
    t = repos.tickets
    first, _ = await t.create(7, "TA", "en", now=1.0)
    second, _ = await t.create(8, "TB", "en", now=2.0)
    await t.set_topic(first.id, GROUP_A, 55)
    await t.set_topic(second.id, GROUP_B, 55)  # the same topic id in another agents' group
    found_a, found_b = await t.by_topic(GROUP_A, 55), await t.by_topic(GROUP_B, 55)
    assert found_a is not None and found_b is not None
    assert (found_a.id, found_a.user_id) == (first.id, 7)
    assert (found_b.id, found_b.user_id) == (second.id, 8)
    assert await t.by_topic(GROUP_A, 56) is None
    assert await t.by_topic(-1003, 55) is None


async def test_a_recreated_topic_id_belongs_to_the_newest_ticket(repos: Repositories):
    t = repos.tickets
    old, _ = await t.create(7, "TA", "en", now=1.0)
    await t.set_topic(old.id, GROUP_A, 55)
    await t.close(old.id, None, now=2.0)
    new, _ = await t.create(8, "TB", "en", now=3.0)
    await t.set_topic(new.id, GROUP_A, 55)
    found = await t.by_topic(GROUP_A, 55)
    assert found is not None and found.id == new.id


async def test_setting_a_topic_records_it_and_counts_recreations(repos: Repositories):
    t = repos.tickets
    ticket, _ = await t.create(7, "TA", "en", group_chat_id=GROUP_A, now=1.0)
    other, _ = await t.create(8, "TB", "en", group_chat_id=GROUP_A, now=1.0)
    assert (ticket.group_chat_id, ticket.thread_id, ticket.topic_generation) == (GROUP_A, None, 0)
    await t.set_topic(ticket.id, GROUP_A, 55)
    got = await t.get(ticket.id)
    assert got is not None and (got.group_chat_id, got.thread_id, got.topic_generation) == (
        GROUP_A,
        55,
        0,
    )
    await t.set_topic(ticket.id, GROUP_B, None)  # lost: to be recreated, one generation on
    got = await t.get(ticket.id)
    assert got is not None and (got.group_chat_id, got.thread_id, got.topic_generation) == (
        GROUP_B,
        None,
        1,
    )
    await t.set_topic(ticket.id, GROUP_B, 77)
    got = await t.get(ticket.id)
    assert got is not None and (got.thread_id, got.topic_generation) == (77, 1)
    untouched = await t.get(other.id)
    assert untouched is not None and (untouched.thread_id, untouched.topic_generation) == (None, 0)


async def test_a_ticket_is_created_with_what_it_was_given(repos: Repositories):
    t = repos.tickets
    ticket, created = await t.create(
        7, "TA", "zh-hans", priority=2, context={"flow": "退款", "tx": "T1"}, now=5.0
    )
    assert created and ticket == await t.get(ticket.id)
    assert (ticket.code, ticket.user_id, ticket.language, ticket.priority) == (
        "TA",
        7,
        "zh-hans",
        2,
    )
    assert (ticket.status, ticket.created_at, ticket.group_chat_id) == ("open", 5.0, None)
    assert ticket.context == {"flow": "退款", "tx": "T1"} and ticket.is_open
    assert ticket.user_blocked is False and ticket.claimed_by is None
    row = await repos.db.fetchone("SELECT context FROM tickets WHERE id = ?", (ticket.id,))
    assert "退款" in row[0]  # kept readable (ensure_ascii off)
    plain, _ = await t.create(8, "TB", "en")
    assert plain.context == {} and plain.priority == 0 and _near_now(plain.created_at)
    assert await t.get(10**6) is None


async def test_one_open_ticket_per_user(repos: Repositories):
    t = repos.tickets
    first, created = await t.create(7, "TA", "en", now=1.0)
    again, created_again = await t.create(7, "TB", "en", now=2.0)
    assert created and not created_again and again.id == first.id
    with pytest.raises(sqlite3.IntegrityError):  # a code collision is not "already open"
        await t.create(8, "TA", "en")
    await t.close(first.id, None, now=3.0)
    third, created = await t.create(7, "TC", "en", now=4.0)
    assert created and third.id != first.id


async def test_open_and_last_closed_ticket_of_a_user(repos: Repositories):
    t = repos.tickets
    assert await t.open_for_user(7) is None and await t.last_closed_for_user(7) is None
    a, _ = await t.create(7, "TA", "en", now=1.0)
    await t.create(8, "TX", "en", now=1.0)
    found = await t.open_for_user(7)
    assert found is not None and found.id == a.id
    assert await t.last_closed_for_user(7) is None
    await t.close(a.id, 99, now=10.0)
    assert await t.open_for_user(7) is None
    b, _ = await t.create(7, "TB", "en", now=11.0)
    await t.close(b.id, 99, now=20.0)
    c, _ = await t.create(7, "TC", "en", now=21.0)
    last = await t.last_closed_for_user(7)
    assert last is not None and last.id == b.id and (last.closed_at, last.closed_by) == (20.0, 99)
    found = await t.open_for_user(7)
    assert found is not None and found.id == c.id


async def test_a_fresh_repository_finds_tickets_made_by_another(sqlite_db: Database):
    maker, reader = TicketRepository(sqlite_db), TicketRepository(sqlite_db)
    ticket, _ = await maker.create(7, "TA", "en", now=1.0)
    assert await reader.open_for_user(8) is None  # loads the users who had a ticket
    found = await reader.open_for_user(7)
    assert found is not None and found.id == ticket.id
    await maker.close(ticket.id, None, now=2.0)
    last = await reader.last_closed_for_user(7)
    assert last is not None and last.id == ticket.id
    # A ticket the reader itself creates after loading is found too.
    mine, _ = await reader.create(9, "TB", "en", now=3.0)
    found = await reader.open_for_user(9)
    assert found is not None and found.id == mine.id


async def test_claiming_is_for_one_agent_until_transferred_or_closed(repos: Repositories):
    t = repos.tickets
    ticket, _ = await t.create(7, "TA", "en", now=1.0)
    other, _ = await t.create(8, "TB", "en", now=1.0)
    assert await t.claim(ticket.id, 100, now=5.0)
    got = await t.get(ticket.id)
    assert got is not None and (got.status, got.claimed_by, got.claimed_at) == ("claimed", 100, 5.0)
    assert await t.claim(ticket.id, 100, now=6.0)  # the same agent again: still theirs
    assert not await t.claim(ticket.id, 200, now=7.0)  # someone else has it
    got = await t.get(ticket.id)
    assert got is not None and (got.claimed_by, got.claimed_at) == (100, 6.0)
    assert await t.transfer(ticket.id, 200, now=8.0)
    got = await t.get(ticket.id)
    assert got is not None and (got.status, got.claimed_by, got.claimed_at) == ("claimed", 200, 8.0)
    untouched = await t.get(other.id)
    assert untouched is not None and (untouched.status, untouched.claimed_by) == ("open", None)
    assert await t.transfer(other.id, 300)  # an open ticket may be handed over too
    got = await t.get(other.id)
    assert got is not None and got.claimed_by == 300 and _near_now(got.claimed_at)
    assert await t.claim(ticket.id, 200)
    assert _near_now((await t.get(ticket.id)).claimed_at)  # type: ignore[union-attr]
    assert await t.close(ticket.id, 200, now=9.0)
    assert not await t.close(ticket.id, 300, now=10.0)  # already closed: the first close stays
    got = await t.get(ticket.id)
    assert got is not None and (got.status, got.closed_at, got.closed_by) == ("closed", 9.0, 200)
    assert not got.is_open
    assert not await t.claim(ticket.id, 200) and not await t.transfer(ticket.id, 300)
    assert not await t.claim(10**6, 1) and not await t.transfer(10**6, 1)
    assert await t.close(other.id, None)
    got = await t.get(other.id)
    assert got is not None and got.closed_by is None and _near_now(got.closed_at)


async def test_reopening_gives_the_ticket_back_to_its_agent_and_forgets_the_close(
    repos: Repositories,
):
    t = repos.tickets
    claimed, _ = await t.create(7, "TA", "en", now=1.0)
    unclaimed, _ = await t.create(8, "TB", "en", now=1.0)
    await t.claim(claimed.id, 100, now=2.0)
    for ticket in (claimed, unclaimed):
        await t.close(ticket.id, 100, now=3.0)
        assert await t.rate(ticket.id, 4) and await t.comment(ticket.id, "ok")
        assert await t.reopen(ticket.id)
    again, fresh = await t.get(claimed.id), await t.get(unclaimed.id)
    assert again is not None and fresh is not None
    assert (again.status, again.claimed_by, fresh.status) == ("claimed", 100, "open")
    for ticket in (again, fresh):
        assert (ticket.closed_at, ticket.closed_by, ticket.rating, ticket.rating_comment) == (
            None,
            None,
            None,
            None,
        )
    # The user opened another ticket since: the old one stays closed.
    await t.close(fresh.id, None, now=4.0)
    newer, _ = await t.create(8, "TC", "en", now=5.0)
    assert not await t.reopen(fresh.id)
    assert (await t.get(fresh.id)).status == "closed"  # type: ignore[union-attr]
    assert not await t.reopen(10**6) and not await t.rate(10**6, 3)
    assert newer.is_open


async def test_the_small_fields_of_a_ticket(repos: Repositories):
    t = repos.tickets
    ticket, _ = await t.create(7, "TA", "en", now=1.0)
    other, _ = await t.create(8, "TB", "en", now=1.0)
    await t.first_response(ticket.id, now=10.0)
    await t.first_response(ticket.id, now=20.0)  # only the first one counts
    await t.set_queue_message(ticket.id, 321, 15)
    await t.mark_user_blocked(ticket.id)
    await t.set_header_message(ticket.id, 654)
    got = await t.get(ticket.id)
    assert got is not None
    assert (got.first_response_at, got.queue_message_id, got.queue_eta_minutes) == (10.0, 321, 15)
    assert got.user_blocked is True and got.header_message_id == 654
    await t.mark_user_blocked(ticket.id, False)
    await t.set_queue_message(ticket.id, None, None)
    got = await t.get(ticket.id)
    assert got is not None and got.user_blocked is False
    assert (got.queue_message_id, got.queue_eta_minutes) == (None, None)
    await t.first_response(other.id)
    got = await t.get(other.id)
    assert got is not None and _near_now(got.first_response_at) and got.header_message_id is None


async def test_reminders_go_once_and_only_for_unclaimed_open_tickets(repos: Repositories):
    t = repos.tickets
    old, _ = await t.create(7, "TA", "en", now=10.0)
    older, _ = await t.create(8, "TB", "en", now=5.0)
    claimed, _ = await t.create(9, "TC", "en", now=1.0)
    await t.create(10, "TD", "en", now=50.0)
    await t.claim(claimed.id, 100)
    assert [x.id for x in await t.unclaimed_before(20.0)] == [older.id, old.id]
    assert [x.id for x in await t.unclaimed_before(10.0)] == [older.id]
    assert await t.mark_reminded(old.id, now=30.0)
    assert not await t.mark_reminded(old.id, now=31.0)
    assert not await t.mark_reminded(claimed.id)
    assert (await t.get(old.id)).reminded_at == 30.0  # type: ignore[union-attr]
    assert [x.id for x in await t.unclaimed_before(20.0)] == [older.id]
    assert await t.mark_reminded(older.id)
    assert _near_now((await t.get(older.id)).reminded_at)  # type: ignore[union-attr]


async def test_queue_position_counts_who_goes_first(repos: Repositories):
    t = repos.tickets
    a, _ = await t.create(1, "TA", "en", now=10.0)
    b, _ = await t.create(2, "TB", "en", now=10.0)  # the same time: the lower id first
    c, _ = await t.create(3, "TC", "en", now=5.0)
    urgent, _ = await t.create(4, "TD", "en", priority=1, now=20.0)
    taken, _ = await t.create(5, "TE", "en", now=1.0)
    await t.claim(taken.id, 100)
    positions = [await t.queue_position(x) for x in (urgent, c, a, b)]
    assert positions == [1, 2, 3, 4]


async def test_median_handling_time_of_the_last_closed_tickets(repos: Repositories):
    t = repos.tickets
    assert await t.median_handling_seconds() is None
    durations = [(10.0, None, 40.0), (0.0, 5.0, 15.0), (0.0, None, 100.0), (0.0, None, 1000.0)]
    for number, (created, claimed, closed) in enumerate(durations):
        ticket, _ = await t.create(number, f"T{number}", "en", now=created)
        if claimed is not None:
            await t.claim(ticket.id, 100, now=claimed)
        await t.close(ticket.id, None, now=closed)
    await t.create(99, "TOPEN", "en", now=0.0)
    # 30 (created to closed), 10 (claimed to closed), 100, 1000.
    assert await t.median_handling_seconds() == 65.0
    assert await t.median_handling_seconds(last=2) == 550.0  # the two closed last
    assert await t.median_handling_seconds(last=1) == 1000.0


async def test_tickets_waiting_for_a_topic_and_routing_to_a_group(repos: Repositories):
    t = repos.tickets
    a, _ = await t.create(1, "TA", "en", now=1.0)
    b, _ = await t.create(2, "TB", "en", group_chat_id=GROUP_A, now=1.0)
    c, _ = await t.create(3, "TC", "en", now=1.0)
    await t.set_topic(c.id, GROUP_A, 5)
    closed, _ = await t.create(4, "TD", "en", now=1.0)
    await t.close(closed.id, None)
    assert [x.id for x in await t.waiting_for_topic()] == [a.id, b.id]
    await t.set_group(a.id, GROUP_B)
    got = await t.get(a.id)
    assert got is not None and (got.group_chat_id, got.thread_id) == (GROUP_B, None)
    assert (await t.get(b.id)).group_chat_id == GROUP_A  # type: ignore[union-attr]
    assert [x.id for x in await t.open_tickets()] == [a.id, b.id, c.id]


async def test_open_tickets_are_oldest_first(repos: Repositories):
    t = repos.tickets
    late, _ = await t.create(1, "TA", "en", now=9.0)
    early, _ = await t.create(2, "TB", "en", now=3.0)
    assert [x.id for x in await t.open_tickets()] == [early.id, late.id]


async def test_a_group_move_takes_its_tickets_along(repos: Repositories):
    t = repos.tickets
    moved, _ = await t.create(1, "TA", "en", group_chat_id=GROUP_A, now=1.0)
    stays, _ = await t.create(2, "TB", "en", group_chat_id=GROUP_B, now=1.0)
    await t.set_topic(moved.id, GROUP_A, 55)
    assert await t.group_moves() == {}
    await t.record_group_move(GROUP_A, -1009)
    await t.record_group_move(-5, -6)
    assert await t.group_moves() == {GROUP_A: -1009, -5: -6}
    assert (await t.get(moved.id)).group_chat_id == -1009  # type: ignore[union-attr]
    assert (await t.get(stays.id)).group_chat_id == GROUP_B  # type: ignore[union-attr]
    found = await t.by_topic(-1009, 55)
    assert found is not None and found.id == moved.id
    await t.record_group_move(GROUP_A, -1010)  # recorded again: the newest id wins
    assert (await t.group_moves())[GROUP_A] == -1010
    row = await repos.db.fetchone(
        "SELECT moved_at FROM agent_group_moves WHERE old_chat_id = ?", (GROUP_A,)
    )
    assert _near_now(row[0])


async def test_transcript_lines_and_the_message_id_maps(repos: Repositories):
    t = repos.tickets
    ticket, _ = await t.create(7, "TA", "en", now=1.0)
    other, _ = await t.create(8, "TB", "en", now=1.0)
    first = await t.add_message(
        ticket.id,
        "in",
        "photo",
        sender_id=7,
        text="look",
        user_message_id=11,
        media_group_id="album",
        now=2.0,
    )
    reply = await t.add_message(
        ticket.id, "out", "text", sender_id=100, html="<b>hi</b>", group_message_id=21, now=3.0
    )
    await t.add_message(other.id, "in", "text", user_message_id=11, group_message_id=21, now=4.0)
    assert first is not None and reply is not None
    line = await t.get_message(first)
    assert line is not None
    assert (line.ticket_id, line.direction, line.kind, line.sender_id, line.text) == (
        ticket.id,
        "in",
        "photo",
        7,
        "look",
    )
    assert (line.user_message_id, line.group_message_id, line.media_group_id) == (11, None, "album")
    assert (line.created_at, line.sent_at, line.outbox_id) == (2.0, None, None)
    assert (await t.get_message(reply)).html == "<b>hi</b>"  # type: ignore[union-attr]
    assert await t.get_message(10**6) is None
    # Maps are per ticket: the other ticket's 11 and 21 are not this one's.
    by_user = await t.by_user_message(ticket.id, 11)
    by_group = await t.by_group_message(ticket.id, 21)
    assert by_user is not None and by_user.id == first
    assert by_group is not None and by_group.id == reply
    assert await t.by_user_message(ticket.id, 21) is None
    assert await t.by_group_message(ticket.id, 11) is None
    # Where a relayed line landed; a later relay of the same line keeps what it knew.
    await t.relayed(first, group_message_id=31, now=5.0)
    await t.relayed(reply, user_message_id=41, now=6.0)
    await t.relayed(first, now=7.0)
    line = await t.get_message(first)
    assert line is not None and (line.user_message_id, line.group_message_id, line.sent_at) == (
        11,
        31,
        7.0,
    )
    assert (await t.by_group_message(ticket.id, 31)).id == first  # type: ignore[union-attr]
    assert (await t.by_user_message(ticket.id, 41)).id == reply  # type: ignore[union-attr]
    assert [m.id for m in await t.transcript(ticket.id)] == [first, reply]
    late = await t.add_message(ticket.id, "note", "text", text="n")
    assert late is not None
    await t.relayed(late)
    stored = await t.get_message(late)
    assert stored is not None and _near_now(stored.created_at) and _near_now(stored.sent_at)


async def test_the_first_line_of_a_mapped_message_is_found(repos: Repositories):
    t = repos.tickets
    ticket, _ = await t.create(7, "TA", "en", now=1.0)
    first = await t.add_message(ticket.id, "in", "text", user_message_id=11, group_message_id=21)
    await t.add_message(ticket.id, "in", "text", user_message_id=11, group_message_id=21)
    assert (await t.by_user_message(ticket.id, 11)).id == first  # type: ignore[union-attr]
    assert (await t.by_group_message(ticket.id, 21)).id == first  # type: ignore[union-attr]


async def test_a_line_for_a_closed_ticket_is_dropped_only_when_asked(repos: Repositories):
    t = repos.tickets
    ticket, _ = await t.create(7, "TA", "en", now=1.0)
    assert await t.add_message(ticket.id, "out", "text", text="a", only_open=True) is not None
    await t.close(ticket.id, None)
    assert await t.add_message(ticket.id, "out", "text", text="b", only_open=True) is None
    kept = await t.add_message(ticket.id, "system", "text", text="closed")
    assert kept is not None
    assert [m.text for m in await t.transcript(ticket.id)] == ["a", "closed"]


async def test_unrelayed_lines_and_their_outbox(repos: Repositories):
    t = repos.tickets
    ticket, _ = await t.create(7, "TA", "en", now=1.0)
    other, _ = await t.create(8, "TB", "en", now=1.0)
    closed, _ = await t.create(9, "TC", "en", now=1.0)
    a = await t.add_message(ticket.id, "in", "text", text="a")
    b = await t.add_message(ticket.id, "in", "text", text="b")
    out = await t.add_message(ticket.id, "out", "text", text="c")
    note = await t.add_message(other.id, "note", "text", text="n")
    await t.add_message(closed.id, "in", "text", text="late")
    await t.close(closed.id, None)
    assert a and b and out and note
    assert [m.id for m in await t.unrelayed(ticket.id)] == [a, b]
    assert [m.id for m in await t.unrelayed(ticket.id, "out")] == [out]
    assert await t.tickets_with_unrelayed() == [ticket.id]  # notes and closed tickets are not
    assert await t.still_unrelayed([a, b, a])
    await t.set_outbox([a], 500)
    assert (await t.get_message(a)).outbox_id == 500  # type: ignore[union-attr]
    assert (await t.get_message(b)).outbox_id is None  # type: ignore[union-attr]
    assert not await t.still_unrelayed([a, b])
    assert await t.still_unrelayed([b])
    assert [m.id for m in await t.unrelayed(ticket.id)] == [b]
    await t.relayed(b, group_message_id=9)
    assert not await t.still_unrelayed([b])
    assert await t.unrelayed(ticket.id) == []
    await t.set_outbox([out], 501)
    assert await t.tickets_with_unrelayed() == []
    await t.set_outbox([a, out], None)  # bounced: to be relayed again
    assert [m.id for m in await t.unrelayed(ticket.id)] == [a]
    assert await t.tickets_with_unrelayed() == [ticket.id]


async def test_relay_lag_is_of_relayed_user_messages_since_a_time(repos: Repositories):
    t = repos.tickets
    ticket, _ = await t.create(7, "TA", "en", now=1.0)
    old = await t.add_message(ticket.id, "in", "text", now=5.0)
    slow = await t.add_message(ticket.id, "in", "text", now=10.0)
    fast = await t.add_message(ticket.id, "in", "text", now=20.0)
    out = await t.add_message(ticket.id, "out", "text", now=20.0)
    await t.add_message(ticket.id, "in", "text", now=30.0)  # not relayed yet
    for line, sent in ((old, 6.0), (slow, 14.0), (fast, 20.5), (out, 99.0)):
        assert line is not None
        await t.relayed(line, now=sent)
    assert await t.relay_lag(10.0) == [4.0, 0.5]


async def test_the_agent_roster(repos: Repositories):
    agents = repos.agents
    assert await agents.add(100, "Zoe", None, now=1.0)
    assert await agents.add(200, "Ann", 100, now=2.0)
    assert await agents.add(300, "Ann", 100)
    assert not await agents.add(100, "Zoé", 200, now=3.0)  # renamed, not new
    zoe = await agents.get(100)
    assert zoe is not None and (zoe.name, zoe.added_by, zoe.added_at) == ("Zoé", None, 1.0)
    assert _near_now((await agents.get(300)).added_at)  # type: ignore[union-attr]
    assert [a.user_id for a in await agents.all()] == [200, 300, 100]
    assert await agents.online_count(since=0.0) == 0
    await agents.touch(100, now=50.0)
    await agents.touch(200, now=40.0)
    await agents.touch(300)
    assert (await agents.get(100)).last_active_at == 50.0  # type: ignore[union-attr]
    assert _near_now((await agents.get(300)).last_active_at)  # type: ignore[union-attr]
    assert await agents.online_count(since=50.0) == 2
    assert await agents.online_count(since=40.0) == 3
    assert await agents.remove(200) and not await agents.remove(200)
    assert await agents.get(200) is None
    assert [a.user_id for a in await agents.all()] == [300, 100]


async def test_median_handling_time_counts_instant_closes_and_drops_clock_skew(
    repos: Repositories,
):
    t = repos.tickets
    # Closed the instant it was made (0 s), in 0.5 s, and "before" it was made (a clock that
    # went back: left out), 9 s.
    for number, (created, closed) in enumerate([(10.0, 10.0), (20.0, 20.5), (30.0, 25.0)]):
        ticket, _ = await t.create(number, f"T{number}", "en", now=created)
        await t.close(ticket.id, None, now=closed)
    assert await t.median_handling_seconds() == 0.25
    ticket, _ = await t.create(9, "T9", "en", now=40.0)
    await t.close(ticket.id, None, now=49.0)
    assert await t.median_handling_seconds() == 0.5


async def test_median_handling_time_reads_the_last_twenty_by_default(repos: Repositories):
    t = repos.tickets
    # 21 tickets: the oldest took 1000 s; of the 20 after it, ten took 10 s and ten 20 s. Their
    # median is 15 s; with the oldest read as well it would be 20 s.
    durations = [1000.0] + [10.0] * 10 + [20.0] * 10
    for number, seconds in enumerate(durations):
        ticket, _ = await t.create(number, f"T{number}", "en", now=float(number * 2000))
        await t.close(ticket.id, None, now=number * 2000 + seconds)
    assert await t.median_handling_seconds() == 15.0  # the last 20: 10 x 10 s, 10 x 20 s
    assert await t.median_handling_seconds(last=21) == 20.0
