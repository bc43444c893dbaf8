"""The emulator answers a real PTB Bot as Telegram does, in-process and over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

import httpx
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    ReplyParameters,
)
from telegram.error import BadRequest, Conflict, Forbidden, RetryAfter, TelegramError, TimedOut

from tests.sandbox.conftest import Wired, in_process_bot
from tgbot.sandbox.emulator import NOT_MODIFIED, QUERY_TOO_OLD, TelegramEmulator
from tgbot.sandbox.entities import parse_html
from tgbot.sandbox.models import Caps, Faults, SandboxError
from tgbot.sandbox.server import EmulatorServer

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000030806000000000000000000000049454e44ae426082"
)


@contextlib.contextmanager
def telegram_says(kind: type[TelegramError], description: str) -> Iterator[None]:
    """Expect PTB to raise ``kind`` for Telegram's exact ``description``."""
    with pytest.raises(kind) as error:
        yield
    assert error.value.message == TelegramError(description).message


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    """Return a one-row inline keyboard of (label, data) buttons."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in pairs]])


async def test_get_me_reports_the_bot_from_the_token(wired: Wired) -> None:
    me = await wired.bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "upay_support_bot", True)


async def test_edit_and_delete_give_telegrams_exact_errors(wired: Wired) -> None:
    emu, bot = wired.emu, wired.bot
    alice = emu.add_user("Alice", started=True)
    sent = await bot.send_message(alice.id, "Pick one", reply_markup=keyboard(("Yes", "q:yes")))
    with telegram_says(BadRequest, f"Bad Request: {NOT_MODIFIED}"):
        await bot.edit_message_text(
            "Pick one", alice.id, sent.message_id, reply_markup=keyboard(("Yes", "q:yes"))
        )

    edited = await bot.edit_message_text("Picked", alice.id, sent.message_id)
    assert edited.reply_markup is None  # an edit without markup drops the keyboard
    assert emu.message(alice.id, sent.message_id).edit_count == 1

    assert await bot.delete_message(alice.id, sent.message_id)
    with telegram_says(BadRequest, "Bad Request: message to delete not found"):
        await bot.delete_message(alice.id, sent.message_id)
    with telegram_says(BadRequest, "Bad Request: message to edit not found"):
        await bot.edit_message_text("x", alice.id, sent.message_id)
    assert emu.chat_messages(alice.id) == []


async def test_delete_after_48_hours_is_refused(wired: Wired) -> None:
    emu, bot = wired.emu, wired.bot
    alice = emu.add_user("Alice", started=True)
    old = await bot.send_message(alice.id, "old")
    emu.advance(48 * 3600 + 1)
    with telegram_says(BadRequest, "Bad Request: message can't be deleted for everyone"):
        await bot.delete_message(alice.id, old.message_id)
    fresh = await bot.send_message(alice.id, "fresh")
    assert await bot.delete_message(alice.id, fresh.message_id)


async def test_topic_lifecycle_and_thread_not_found(wired: Wired) -> None:
    emu, bot = wired.emu, wired.bot
    agent = emu.add_user("Agent")
    group = emu.add_forum_group(
        "Support CN",
        members=[agent.id],
        bot_is_admin=True,
        bot_rights={"can_manage_topics": True, "can_delete_messages": True},
    )
    topic = await bot.create_forum_topic(group.id, "Ticket #1 李雷")
    sent = await bot.send_message(group.id, "hello", message_thread_id=topic.message_thread_id)
    assert sent.is_topic_message and sent.message_thread_id == topic.message_thread_id

    await bot.close_forum_topic(group.id, topic.message_thread_id)
    with telegram_says(BadRequest, "Bad Request: TOPIC_CLOSED"):
        await bot.send_message(group.id, "x", message_thread_id=topic.message_thread_id)
    await bot.reopen_forum_topic(group.id, topic.message_thread_id)

    emu.user_send(agent.id, "on it", chat_id=group.id, thread_id=topic.message_thread_id)
    await bot.delete_forum_topic(group.id, topic.message_thread_id)
    with telegram_says(BadRequest, "Bad Request: message thread not found"):
        await bot.send_message(group.id, "x", message_thread_id=topic.message_thread_id)
    assert emu.topics(group.id)[topic.message_thread_id]["deleted"]
    assert emu.chat_messages(group.id, thread_id=topic.message_thread_id) == []

    with telegram_says(BadRequest, "Bad Request: TOPIC_NAME_INVALID"):
        await bot.create_forum_topic(group.id, "x" * 129)


async def test_topic_rights_are_enforced(emu: TelegramEmulator) -> None:
    group = emu.add_forum_group("No rights", bot_is_admin=True)
    async with in_process_bot(emu) as bot:
        with telegram_says(BadRequest, "Bad Request: not enough rights to create a topic"):
            await bot.create_forum_topic(group.id, "t")
        await bot.leave_chat(group.id)
        with telegram_says(Forbidden, "Forbidden: bot is not a member of the supergroup chat"):
            await bot.send_message(group.id, "x")


async def test_text_validation_errors(wired: Wired) -> None:
    emu, bot = wired.emu, wired.bot
    alice = emu.add_user("Alice", started=True)
    with telegram_says(
        BadRequest,
        'Bad Request: can\'t parse entities: Unsupported start tag "foo" at byte offset 3',
    ):
        await bot.send_message(alice.id, "你<foo>hi</foo>", parse_mode="HTML")
    with telegram_says(
        BadRequest,
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
    ):
        await bot.send_message(alice.id, "你<b>好", parse_mode="HTML")
    await bot.send_message(alice.id, "x" * 4096)
    with telegram_says(BadRequest, "Bad Request: message is too long"):
        await bot.send_message(alice.id, "x" * 4097)
    with telegram_says(BadRequest, "Bad Request: message text is empty"):
        await bot.send_message(alice.id, "  <b> </b> ", parse_mode="HTML")
    with telegram_says(BadRequest, "Bad Request: BUTTON_DATA_INVALID"):
        await bot.send_message(alice.id, "x", reply_markup=keyboard(("Go", "d" * 65)))
    with telegram_says(BadRequest, "Bad Request: chat not found"):
        await bot.send_message(-100999, "x")


def test_html_gives_plain_text_and_utf16_offsets() -> None:
    text, entities = parse_html(
        '😀 <b>你好</b> &lt;x&gt; <a href="https://u.pay/?a=1&amp;b=2">链接</a>'
        '<pre><code class="language-python">1 &amp; 2</code></pre>'
        "<blockquote expandable><i>q</i></blockquote>"
    )
    assert text == "😀 你好 <x> 链接1 & 2q"
    assert entities == [
        {"offset": 3, "length": 2, "type": "bold"},
        {"offset": 10, "length": 2, "type": "text_link", "url": "https://u.pay/?a=1&b=2"},
        {"offset": 12, "length": 5, "type": "pre", "language": "python"},
        {"offset": 17, "length": 1, "type": "expandable_blockquote"},
        {"offset": 17, "length": 1, "type": "italic"},
    ]


async def test_get_updates_confirms_by_offset_and_wakes_long_polls(emu: TelegramEmulator) -> None:
    alice = emu.add_user("Alice")
    emu.user_send(alice.id, "/start")
    emu.user_send(alice.id, "one")
    async with in_process_bot(emu) as bot:
        first = await bot.get_updates()
        assert [u.message.text for u in first] == ["/start", "one"]
        assert first[0].message.entities[0].type == "bot_command"
        assert len(await bot.get_updates()) == 2  # nothing confirmed yet
        assert await bot.get_updates(offset=first[-1].update_id + 1) == ()
        assert emu.pending_updates() == 0

        poll = asyncio.create_task(bot.get_updates(offset=first[-1].update_id + 1, timeout=5))
        await asyncio.sleep(0.05)
        assert not poll.done()
        emu.user_send(alice.id, "two")
        woke = await asyncio.wait_for(poll, 1)
        assert [u.message.text for u in woke] == ["two"]
        await emu.wait_fetched()


async def test_second_get_updates_terminates_the_first(emu: TelegramEmulator) -> None:
    async with in_process_bot(emu) as bot, in_process_bot(emu) as other:
        older = asyncio.create_task(bot.get_updates(timeout=5))
        await asyncio.sleep(0.05)
        newer = asyncio.create_task(other.get_updates())
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await older
        assert await newer == ()


async def test_strict_mode_reports_unknown_and_rejects_missing(wired: Wired) -> None:
    emu, bot = wired.emu, wired.bot
    alice = emu.add_user("Alice", started=True)
    await bot.send_message(alice.id, "hi", api_kwargs={"foo": 1})
    assert emu.violations == ["sendMessage: unknown parameter 'foo'"]
    assert await emu.call("sendMessage", {"chat_id": str(alice.id)}) == (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"},
    )
    status, answer = await emu.call("sendMessage", {"text": "x"})
    assert (status, answer["description"]) == (400, "Bad Request: chat_id is empty")
    status, answer = await emu.call("sendMessage", {"chat_id": "x1", "text": "x"})
    assert (status, answer["description"]) == (400, "Bad Request: chat not found")


async def test_rate_cap_answers_429_with_retry_after(emu: TelegramEmulator) -> None:
    emu.caps = Caps(enabled=True, private_chat_burst=3)
    alice = emu.add_user("Alice", started=True)
    async with in_process_bot(emu) as bot:
        for n in range(3):
            await bot.send_message(alice.id, f"burst {n}")
        with pytest.raises(RetryAfter) as error:
            await bot.send_message(alice.id, "one too many")
        assert error.value.retry_after.total_seconds() >= 1
        emu.advance(1.1)
        await bot.send_message(alice.id, "after waiting")
    assert len(emu.bot_messages(alice.id)) == 4


async def test_blocked_and_deactivated_users_are_forbidden(wired: Wired) -> None:
    emu, bot = wired.emu, wired.bot
    alice = emu.add_user("Alice", started=True)
    bob = emu.add_user("Bob", started=True)
    stranger = emu.add_user("Stranger")
    emu.block_bot(alice.id)
    emu.deactivate(bob.id)
    with telegram_says(Forbidden, "Forbidden: bot was blocked by the user"):
        await bot.send_message(alice.id, "x")
    with telegram_says(Forbidden, "Forbidden: user is deactivated"):
        await bot.send_message(bob.id, "x")
    with telegram_says(Forbidden, "Forbidden: bot can't initiate conversation with a user"):
        await bot.send_message(stranger.id, "x")
    updates = await bot.get_updates()
    assert updates[0].my_chat_member.new_chat_member.status == "kicked"


async def test_upload_get_file_download_and_copy(wired: Wired) -> None:
    emu, bot = wired.emu, wired.bot
    alice = emu.add_user("Alice", started=True)
    sent = await bot.send_photo(alice.id, PNG, caption="<b>Receipt</b>", parse_mode="HTML")
    assert (sent.photo[-1].width, sent.photo[-1].height) == (2, 3)
    assert sent.caption_entities[0].type == "bold"
    tg_file = await bot.get_file(sent.photo[-1].file_id)
    assert bytes(await tg_file.download_as_bytearray()) == PNG

    copied = await bot.copy_message(alice.id, alice.id, sent.message_id)
    copy = emu.message(alice.id, copied.message_id).data
    assert copy["caption"] == "Receipt"
    assert copy["caption_entities"] == [{"offset": 0, "length": 7, "type": "bold"}]
    assert copy["photo"][0]["file_id"] == sent.photo[-1].file_id

    user_doc = emu.user_send_document(alice.id, b"%PDF-1.4", file_name="statement.pdf")
    doc_file = await bot.get_file(user_doc["document"]["file_id"])
    assert bytes(await doc_file.download_as_bytearray()) == b"%PDF-1.4"


async def test_media_group_and_reply(wired: Wired) -> None:
    emu, bot = wired.emu, wired.bot
    alice = emu.add_user("Alice", started=True)
    question = emu.user_send(alice.id, "where is my refund?")
    album = await bot.send_media_group(
        alice.id,
        [InputMediaPhoto(PNG, caption="one"), InputMediaPhoto(PNG)],
        reply_parameters=ReplyParameters(question["message_id"]),
    )
    assert len({m.media_group_id for m in album}) == 1
    assert album[0].reply_to_message.text == "where is my refund?"
    with telegram_says(BadRequest, "Bad Request: message to be replied not found"):
        await bot.send_message(alice.id, "x", reply_parameters=ReplyParameters(999))


async def test_callback_query_answer_and_too_old(wired: Wired) -> None:
    emu, bot = wired.emu, wired.bot
    alice = emu.add_user("Alice", started=True)
    sent = await bot.send_message(alice.id, "Refund?", reply_markup=keyboard(("Yes", "rf:yes")))
    query_id = emu.press_button(alice.id, alice.id, sent.message_id, "Yes")
    (update,) = await bot.get_updates()
    assert update.callback_query.data == "rf:yes"
    assert update.callback_query.message.reply_markup.inline_keyboard[0][0].text == "Yes"
    with telegram_says(BadRequest, "Bad Request: MESSAGE_TOO_LONG"):
        await bot.answer_callback_query(query_id, "x" * 201)
    await bot.answer_callback_query(query_id, "Done", show_alert=True)
    assert emu.callback_answers[query_id]["text"] == "Done"
    with telegram_says(BadRequest, f"Bad Request: {QUERY_TOO_OLD}"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(SandboxError):
        emu.press_button(alice.id, alice.id, sent.message_id, "No")


async def test_commands_are_kept_per_scope_and_language(wired: Wired) -> None:
    from telegram import BotCommand, BotCommandScopeAllPrivateChats

    emu, bot = wired.emu, wired.bot
    li = emu.add_user("李雷", language_code="zh-hans")
    await bot.set_my_commands([BotCommand("start", "Start")])
    await bot.set_my_commands(
        [BotCommand("start", "开始")], scope=BotCommandScopeAllPrivateChats(), language_code="zh"
    )
    assert emu.my_commands(language_code="zh") == []
    assert emu.command_menu(li.id) == [{"command": "start", "description": "开始"}]
    commands = await bot.get_my_commands(BotCommandScopeAllPrivateChats(), language_code="zh")
    assert commands[0].description == "开始"


async def test_injected_timeout_may_still_deliver(emu: TelegramEmulator) -> None:
    alice = emu.add_user("Alice", started=True)
    emu.faults = Faults(rate_timeout=1.0, timeout_after_delivery=1.0, methods={"sendMessage"})
    async with in_process_bot(emu) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(alice.id, "did it arrive?")
        assert [m["text"] for m in emu.bot_messages(alice.id)] == ["did it arrive?"]
        emu.faults = Faults(rate_5xx=1.0)
        with pytest.raises(Exception, match="Internal Server Error"):
            await bot.send_message(alice.id, "x")


async def test_injected_429s_can_be_limited_to_some_chats(emu: TelegramEmulator) -> None:
    alice = emu.add_user("Alice", started=True)
    bob = emu.add_user("Bob", started=True)
    emu.faults = Faults(rate_429=1.0, retry_after=3, chats=frozenset({bob.id}))
    async with in_process_bot(emu) as bot:
        for n in range(3):
            await bot.send_message(alice.id, f"for alice {n}")
        with pytest.raises(RetryAfter) as error:
            await bot.send_message(bob.id, "for bob")
        assert error.value.retry_after.total_seconds() == 3
    assert len(emu.bot_messages(alice.id)) == 3 and emu.bot_messages(bob.id) == []
    assert [(kind, method, chat) for _, kind, method, chat in emu.fault_log] == [
        ("429", "sendMessage", bob.id)
    ]


async def test_http_accepts_json_and_rejects_wrong_token(emu: TelegramEmulator) -> None:
    server = EmulatorServer(emu)
    port = await server.start()
    alice = emu.add_user("Alice", started=True)
    try:
        async with httpx.AsyncClient() as client:
            root = f"http://127.0.0.1:{port}"
            answer = await client.post(
                f"{root}/bot{emu.token}/sendMessage",
                json={"chat_id": alice.id, "text": "json body"},
            )
            assert answer.json()["result"]["text"] == "json body"
            answer = await client.get(f"{root}/bot{emu.token}/getMe")
            assert answer.json()["result"]["id"] == 123456
            answer = await client.get(f"{root}/bot1:wrong/getMe")
            assert answer.status_code == 401
            assert answer.json()["description"] == "Unauthorized"
            answer = await client.get(f"{root}/bot{emu.token}/noSuchMethod")
            assert (answer.status_code, answer.json()["description"]) == (404, "Not Found")
    finally:
        await server.stop()


async def test_webhook_delivers_with_secret_token(emu: TelegramEmulator) -> None:
    received: list[tuple[str | None, dict]] = []
    arrived = asyncio.Event()

    class Hook(tornado.web.RequestHandler):
        def post(self) -> None:
            if not received:
                received.append((None, {}))
                self.set_status(500)  # first attempt fails; Telegram retries
                return
            secret = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token")
            received.append((secret, json.loads(self.request.body)))
            arrived.set()

    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    hook_server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/hook", Hook)]))
    hook_server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hook"
    emu.webhook_retry_delay = 0.01
    alice = emu.add_user("Alice")
    try:
        async with in_process_bot(emu) as bot:
            await bot.set_webhook(url, secret_token="s3cret")
            with pytest.raises(Conflict, match="can't use getUpdates method while webhook"):
                await bot.get_updates()
            emu.user_send(alice.id, "via webhook")
            await asyncio.wait_for(arrived.wait(), 2)
            await emu.wait_fetched()
            secret, update = received[-1]
            assert secret == "s3cret"
            assert update["message"]["text"] == "via webhook"
            info = await bot.get_webhook_info()
            assert info.url == url and info.pending_update_count == 0
            assert info.last_error_message.startswith("Wrong response from the webhook: 500")
            await bot.delete_webhook()
    finally:
        await emu.aclose()
        hook_server.stop()
        await hook_server.close_all_connections()


async def test_group_privacy_and_bot_membership_updates(emu: TelegramEmulator) -> None:
    owner = emu.add_user("Owner")
    group = emu.add_group("Chat", admins=[owner.id], bot_is_member=False)
    emu.add_bot_to_group(group.id, owner.id)
    emu.user_send(owner.id, "just talking", chat_id=group.id)
    emu.user_send(owner.id, "/help@upay_support_bot", chat_id=group.id)
    async with in_process_bot(emu) as bot:
        kinds = [
            (u.my_chat_member.new_chat_member.status if u.my_chat_member else u.message.text)
            for u in await bot.get_updates()
        ]
    assert kinds == ["member", "/help@upay_support_bot"]


async def test_user_actions_produce_real_update_shapes(emu: TelegramEmulator) -> None:
    li = emu.add_user(
        "李雷", language_code="zh-hans", username="lilei", phone_number="+8613800138000"
    )
    agent = emu.add_user("Agent")
    group = emu.add_forum_group(
        "Support CN", members=[agent.id], bot_is_admin=True, bot_rights={"can_manage_topics": True}
    )
    events: list[str] = []
    unsubscribe = emu.subscribe(lambda event: events.append(event["type"]))
    emu.user_send(li.id, "/start ref_42")
    emu.user_share_contact(li.id)
    emu.user_share_contact(li.id, contact_user_id=agent.id, phone_number="+1555", forwarded=True)
    edited = emu.user_send(li.id, "typo")
    emu.user_edit(li.id, li.id, edited["message_id"], "fixed")
    emu.user_send(li.id, "fwd", forward_from="Hidden Person")
    emu.user_send_media_group(li.id, [("photo", PNG, "a"), ("photo", PNG, None)])
    thread = emu.user_create_topic(agent.id, group.id, "Ticket")
    emu.user_send(agent.id, "in topic", chat_id=group.id, thread_id=thread)
    emu.user_send(agent.id, "in general", chat_id=group.id)
    unsubscribe()
    async with in_process_bot(emu) as bot:
        updates = await bot.get_updates()
    messages = [u.effective_message for u in updates]
    assert messages[0].text == "/start ref_42" and messages[0].from_user.language_code == "zh-hans"
    assert messages[1].contact.phone_number == "8613800138000"  # own number comes without "+"
    assert messages[1].contact.user_id == li.id and messages[1].forward_origin is None
    assert messages[2].contact.user_id == agent.id and messages[2].forward_origin.type == "user"
    assert updates[4].edited_message.text == "fixed"
    assert messages[5].forward_origin.sender_user_name == "Hidden Person"
    assert messages[6].media_group_id == messages[7].media_group_id is not None
    assert messages[8].forum_topic_created.name == "Ticket"
    assert messages[9].is_topic_message and messages[9].message_thread_id == thread
    assert messages[10].message_thread_id is None and not messages[10].is_topic_message
    assert events.count("message") == 10 and events.count("edit") == 1


async def test_group_delete_needs_rights(emu: TelegramEmulator) -> None:
    member = emu.add_user("Member")
    group = emu.add_group("Plain", members=[member.id])
    said = emu.user_send(member.id, "/help", chat_id=group.id)
    async with in_process_bot(emu) as bot:
        with telegram_says(BadRequest, "Bad Request: message can't be deleted"):
            await bot.delete_message(group.id, said["message_id"])
        own = await bot.send_message(group.id, "mine")
        assert await bot.delete_message(group.id, own.message_id)
        assert await bot.delete_messages(group.id, [own.message_id, 999])


async def test_http_timeout_fault_leaves_the_client_waiting(emu: TelegramEmulator) -> None:
    from telegram.request import HTTPXRequest

    alice = emu.add_user("Alice", started=True)
    emu.faults = Faults(rate_timeout=1.0, timeout_hold=0.3, methods={"sendMessage"})
    server = EmulatorServer(emu)
    await server.start()
    request = HTTPXRequest(read_timeout=0.1)
    try:
        async with Bot(emu.token, base_url=server.base_url, request=request) as bot:
            with pytest.raises(TimedOut):
                await bot.send_message(alice.id, "lost")
            emu.faults = Faults()
            await bot.send_message(alice.id, "delivered")
    finally:
        await server.stop()
    assert [m["text"] for m in emu.bot_messages(alice.id)] == ["delivered"]
