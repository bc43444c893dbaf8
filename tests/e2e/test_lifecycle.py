"""Update pipeline and flow lifecycle (DESIGN section 3), driven as a user would."""

import time

import pytest

from handlers.common import FLOW_KEY, LANGUAGE_LABEL, STALE_TEXT, USE_BUTTONS
from tests.support.leaks import card_numbers_in


async def _survey_to_word_step(user):
    await user.send("/survey")
    assert user.last_message.text == "Step 1/3: pick a colour"
    await user.click("Red")
    assert user.last_message.text == "Step 2/3: type a word"


async def test_three_step_flow_completes(any_bot):
    alice = any_bot.user("Alice")
    await _survey_to_word_step(alice)
    await alice.send("kiwi")
    assert alice.last_message.text == "Step 3/3: red kiwi?"
    assert "Confirm" in alice.buttons and "🏠 Main menu" in alice.buttons
    await alice.click("Confirm")
    assert alice.last_message.text == "Thanks: red kiwi"
    # The ended flow's scratch is gone from user_data and from the database.
    await any_bot.app.update_persistence()
    assert not any_bot.app.user_data.get(alice.user_id)
    row = await any_bot.app.db.fetchone("SELECT COUNT(*) AS n FROM ptb_user_data")
    assert row["n"] == 0


async def test_starting_another_flow_ends_the_current_one(bot):
    alice = bot.user("Alice")
    await _survey_to_word_step(alice)
    await alice.send("/quiz")
    assert alice.last_message.text == "Quiz: what is the answer?"
    assert bot.app.user_data[alice.user_id][FLOW_KEY]["name"] == "quiz"
    # Typing now does not reach the survey's word step: it was ended. The quiz takes only
    # buttons, so the text is pointed at them (the quiz stays open).
    await alice.send("kiwi")
    assert alice.last_message.text == USE_BUTTONS
    assert "Step 3/3" not in " ".join(alice.texts)
    assert bot.app.user_data[alice.user_id][FLOW_KEY]["name"] == "quiz"


async def test_button_of_an_ended_flow_says_menu_expired(any_bot):
    alice = any_bot.user("Alice")
    await alice.send("/survey")
    first_menu = alice.last_message.message_id
    await alice.send("/cancel")
    assert alice.last_message.text == "Cancelled. Nothing was submitted."
    # The ended flow's buttons are gone; a press that still comes (an old client, a replay
    # after downtime) is explained.
    assert alice.shown(first_menu).buttons == []
    query = await alice.press_forged(first_menu, "survey:colour:blue")
    assert alice.answer_of(query) == STALE_TEXT
    # The stale message says so by itself: its old buttons are gone, a way on is there.
    assert alice.shown(first_menu).buttons == ["🏠 Main menu"]
    assert FLOW_KEY not in any_bot.app.user_data.get(alice.user_id, {})


async def test_button_from_an_earlier_run_of_the_same_flow_is_refused(bot):
    alice = bot.user("Alice")
    await alice.send("/survey")
    old_menu = alice.last_message.message_id
    await alice.send("/survey")  # a new run of the same flow
    assert alice.shown(old_menu).buttons == []  # the earlier run's step went quiet
    query = await alice.press_forged(old_menu, "survey:colour:red")
    assert alice.answer_of(query) == STALE_TEXT
    assert "Step 2/3" not in " ".join(alice.texts)


async def test_forged_button_data_does_nothing(any_bot):
    alice = any_bot.user("Alice")
    await alice.send("/survey")
    menu = alice.last_message.message_id
    query = await alice.press_forged(menu, "refund:confirm:999")
    assert alice.answer_of(query) == STALE_TEXT
    # The press is explained where it was made, with the flow its data names.
    assert alice.shown(menu).buttons == ["↩️ Refunds", "🏠 Main menu"]
    query = await alice.press_forged(menu, "lang:set:xx")
    assert alice.answer_of(query) == STALE_TEXT


async def test_button_older_than_its_expiry_is_refused(bot):
    alice = bot.user("Alice")
    bot.emu.advance(-2 * 24 * 3600)  # the menu was sent two days ago
    await alice.send("/survey")
    bot.emu.advance(2 * 24 * 3600)
    query = await alice.click("Red")
    assert alice.answer_of(query) == STALE_TEXT
    assert "Step 2/3" not in " ".join(alice.texts)


async def test_edited_message_never_advances_a_step(any_bot):
    alice = any_bot.user("Alice")
    hello = await alice.send("hello")
    await _survey_to_word_step(alice)
    count = len(alice.texts)
    await alice.edit(hello.message_id, "kiwi")
    assert len(alice.texts) == count
    assert alice.last_message.text == "Step 2/3: type a word"
    await alice.send("kiwi")
    assert alice.last_message.text == "Step 3/3: red kiwi?"


async def test_inactivity_ends_the_flow_politely_after_a_restart(make_bot):
    bot = await make_bot(flow_timeout=60)
    alice = bot.user("Alice")
    await _survey_to_word_step(alice)
    emu = bot.emu
    await bot.stop()
    # The flow record on disk says the last activity was long ago.
    bot2 = await make_bot(emu=emu, flow_timeout=0.5)
    alice.harness = bot2
    # The expiry job (every flow_timeout / 4) tells her without any message of hers.
    closed = "Your previous request was closed after 1 minute without"
    await bot2.wait_until(lambda: alice.last_message.text.startswith(closed), "the timeout")
    assert LANGUAGE_LABEL in alice.buttons  # the menu comes with it: a way forward
    await alice.send("kiwi")
    # The survey is over: the word is not its answer; she gets the main menu (how the
    # router reads a lone "kiwi" is not this test's business).
    assert "Step 3/3" not in alice.last_message.text and LANGUAGE_LABEL in alice.buttons


class Clock:
    """``time.time`` that a test moves forward by hand (the bot reads it for inactivity)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._real = time.time

    def __call__(self) -> float:
        return self._real() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


async def test_the_flow_timeout_counts_from_the_last_activity_not_from_the_start(make_bot, clock):
    bot = await make_bot(flow_timeout=60)
    alice = bot.user("Alice")
    await alice.send("/survey")
    clock.advance(50)
    await alice.click("Red")  # 50 s after the start, 50 s idle
    assert alice.last_message.text == "Step 2/3: type a word"
    clock.advance(50)
    await alice.send("kiwi")  # 100 s after the start, 50 s idle
    assert alice.last_message.text == "Step 3/3: red kiwi?"
    # Idle for longer than the timeout: the expiry job ends it (run now, not in 15 s).
    clock.advance(61)
    (job,) = bot.app.job_queue.get_jobs_by_name("expire-flows")
    await job.run(bot.app)
    await bot.settle()
    assert alice.last_message.text.startswith(
        "Your previous request was closed after 1 minute without"
    )
    assert FLOW_KEY not in bot.app.user_data.get(alice.user_id, {})


async def test_flows_run_in_private_chats_only_and_foreign_groups_are_left(bot):
    owner = bot.user("Owner")
    group = bot.emu.add_group("Random group", members=[owner.user_id])
    bot.emu.add_bot_to_group(group.id, by_user_id=owner.user_id)
    await bot.settle()
    assert ("leaveChat", {"chat_id": group.id}) in [
        (m, {"chat_id": p.get("chat_id")}) for m, p in bot.emu.calls
    ]
    assert bot.emu.bot_messages(group.id) == []


async def test_start_and_cancel_leave_a_running_flow(bot):
    alice = bot.user("Alice")
    await _survey_to_word_step(alice)
    await alice.send("/start")
    assert alice.last_message.text.startswith("Hello, Alice!")
    await alice.send("kiwi")
    # The survey is over: the word is not its answer; she gets the main menu (how the
    # router reads a lone "kiwi" is not this test's business).
    assert "Step 3/3" not in alice.last_message.text and LANGUAGE_LABEL in alice.buttons
    await alice.send("/cancel")
    assert alice.last_message.text == "There is nothing to cancel."


async def test_oversized_input_is_refused_and_the_step_kept(bot):
    alice = bot.user("Alice")
    await _survey_to_word_step(alice)
    await alice.send("x" * 4000)
    assert "too long" in alice.last_message.text
    await alice.send("kiwi")
    assert alice.last_message.text == "Step 3/3: red kiwi?"


async def test_card_number_is_deleted_and_never_stored(any_bot):
    alice = any_bot.user("Alice")
    await _survey_to_word_step(alice)
    sent = await alice.send("4111 1111 1111 1111")
    stored = any_bot.emu.message(alice.user_id, sent.message_id)
    assert stored.deleted
    assert "bank card number" in alice.last_message.text
    # Still in the word step; the card number reached neither scratch nor any table.
    assert "4111" not in str(any_bot.app.user_data[alice.user_id])
    await any_bot.app.update_persistence()
    for table in ("ptb_user_data", "users", "audit_log", "outbox"):
        rows = await any_bot.app.db.fetchall(f"SELECT * FROM {table}")
        assert "4111111111111111" not in str([tuple(r) for r in rows])
    await alice.send("kiwi")
    assert alice.last_message.text == "Step 3/3: red kiwi?"


async def test_edited_message_with_a_card_number_is_scrubbed_too(bot):
    alice = bot.user("Alice")
    await _survey_to_word_step(alice)
    sent = await alice.send("kiwi")
    await alice.edit(sent.message_id, "actually 4111-1111-1111-1111")
    assert bot.emu.message(alice.user_id, sent.message_id).deleted
    assert "bank card number" in alice.last_message.text
    # The edit did not change the answer already given.
    assert "Step 3/3: red kiwi?" in alice.texts
    # Nothing on disk holds the number, in the form it was typed or any other.
    await bot.app.update_persistence()
    blob = b"".join(p.read_bytes() for p in bot.db_path.parent.glob("bot.db*"))
    assert card_numbers_in(blob, ["4111111111111111"]) == []


async def test_a_button_under_a_bot_message_that_looks_sensitive_still_works(bot):
    """The sensitive-data guard reads only what the user wrote: a press carries the bot's own
    message, and a reference or amount in it can look like a code or a card number."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    alice = bot.user("Alice")
    await alice.send("/start")
    for text in ("Verification code 482913 was sent", "Reference 4111 1111 1111 1111"):
        shown = await bot.app.bot.send_message(
            alice.user_id,
            text,
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("🏠 Main menu", callback_data="menu:main")]]
            ),
        )
        query = await alice.click("🏠 Main menu", message_id=shown.message_id)
        assert query in bot.emu.callback_answers  # answered, not swallowed by the guard
        assert not bot.emu.message(alice.user_id, shown.message_id).deleted
        assert alice.last_message.text == "What can I help you with?"
        assert not any("I deleted your message" in t for t in alice.texts)
