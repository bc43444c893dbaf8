"""Faithfulness: the emulator checked against the Bot API spec (``api.json``, Bot API 10.0).

For every Bot API method the bot calls (found by scanning the bot's code, not listed by hand)
and every other method the emulator implements:

* leaving out any required parameter gives 400 with Telegram's "Bad Request: ..." text;
* a valid call returns a result whose shape is the spec's declared return type (checked by a
  recursive validator over the spec's ``types``: required fields present, no undeclared
  fields, value types matching, ``subtypes`` resolved by their discriminating field).

The updates the emulator produces are checked against ``Update`` the same way, and the
Telegram behaviours of DESIGN section 8 not covered by ``test_emulator.py`` get a test each.
The spec is read straight from the JSON file, not through ``tgbot.sandbox.spec``, so a bug in
the emulator's own spec loader cannot hide a mismatch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import telegram

from tests.sandbox.conftest import in_process_bot
from tgbot.sandbox.emulator import NOT_MODIFIED, TelegramEmulator
from tgbot.sandbox.models import Caps, SandboxChat, SandboxUser
from tgbot.sandbox.spec import PACKAGED_SPEC

REPO = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = json.loads(PACKAGED_SPEC.read_text(encoding="utf-8"))
METHODS: dict[str, dict[str, Any]] = SPEC["methods"]
TYPES: dict[str, dict[str, Any]] = SPEC["types"]

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000030806000000000000000000000049454e44ae426082"
)

# --------------------------------------------------------------------------------------------
# Which Bot API methods the bot calls, derived from its code.

#: What PTB's Application/Updater and the bot's startup call on their own (getMe from
#: ``Bot.initialize``; the rest from polling, webhooks, the command menu and group checks).
APPLICATION_METHODS = frozenset(
    {
        "getMe",
        "getUpdates",
        "deleteWebhook",
        "setWebhook",
        "setMyCommands",
        "getChat",
        "getChatMember",
        "leaveChat",
    }
)

#: A floor the code scan must reach, so a broken scan cannot silently test nothing.
MINIMUM_METHODS = APPLICATION_METHODS | {
    "sendMessage",
    "copyMessage",
    "copyMessages",
    "createForumTopic",
    "closeForumTopic",
    "reopenForumTopic",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "answerCallbackQuery",
    "deleteMessage",
}

#: PTB shortcut methods (on Message, CallbackQuery, Chat...) and the Bot API method they call.
SHORTCUTS = {
    "reply_text": "sendMessage",
    "reply_html": "sendMessage",
    "reply_markdown": "sendMessage",
    "reply_markdown_v2": "sendMessage",
    "reply_photo": "sendPhoto",
    "reply_document": "sendDocument",
    "reply_voice": "sendVoice",
    "reply_video": "sendVideo",
    "reply_audio": "sendAudio",
    "reply_sticker": "sendSticker",
    "reply_animation": "sendAnimation",
    "reply_media_group": "sendMediaGroup",
    "reply_chat_action": "sendChatAction",
    "reply_copy": "copyMessage",
    "answer": "answerCallbackQuery",
    "delete": "deleteMessage",
    "copy": "copyMessage",
    "forward": "forwardMessage",
    "pin": "pinChatMessage",
    "unpin": "unpinChatMessage",
    "set_reaction": "setMessageReaction",
    "edit_text": "editMessageText",
    "edit_caption": "editMessageCaption",
    "edit_reply_markup": "editMessageReplyMarkup",
    "edit_message_text": "editMessageText",
    "edit_message_caption": "editMessageCaption",
    "edit_message_reply_markup": "editMessageReplyMarkup",
    "delete_message": "deleteMessage",
    "get_member": "getChatMember",
    "leave": "leaveChat",
}
#: Receivers a shortcut call must be made on (``query.answer()``, ``message.delete()``...),
#: so ``repos.tickets.delete(...)`` is not mistaken for ``deleteMessage``.
_SHORTCUT_RECEIVER = re.compile(r"message|msg|query|sent|edited|reply|chat|bot", re.IGNORECASE)
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\.\s*([a-z][a-z0-9_]*)\s*\(")
_STRING = re.compile(r"""["']([a-z]+[A-Z][A-Za-z]*)["']""")


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def methods_in_source(text: str) -> set[str]:
    """Return the Bot API methods a piece of Python source calls.

    Finds PTB calls (``bot.send_message(``, ``query.answer(``, ``message.reply_text(``...)
    and method names passed as strings (``"copyMessages"`` for the outbox).
    """
    found = {name for name in _STRING.findall(text) if name in METHODS}
    for receiver, name in _CALL.findall(text):
        camel = _camel(name)
        # One-word names (close) are Bot API methods only when called on a bot.
        if camel in METHODS and ("_" in name or "bot" in receiver.lower()):
            found.add(camel)
        elif name in SHORTCUTS and _SHORTCUT_RECEIVER.search(receiver):
            found.add(SHORTCUTS[name])
    return found


def bot_code_files() -> list[Path]:
    """Return the bot's own Python files: tgbot/ (not the sandbox), handlers/ and services/."""
    files = [p for p in sorted((REPO / "tgbot").rglob("*.py")) if "sandbox" not in p.parts]
    return (
        files
        + sorted((REPO / "handlers").rglob("*.py"))
        + sorted((REPO / "services").rglob("*.py"))
    )


def ptb_framework_files() -> list[Path]:
    """Return PTB's Updater and Application sources (they poll and set webhooks)."""
    ext = Path(telegram.__file__).parent / "ext"
    return [ext / "_updater.py", ext / "_application.py"]


def methods_the_bot_calls() -> set[str]:
    """Return every Bot API method the bot's code and PTB's Application call."""
    found: set[str] = set()
    for path in [*bot_code_files(), *ptb_framework_files()]:
        found |= methods_in_source(path.read_text(encoding="utf-8"))
    # Bot.initialize() calls getMe; the command menu and group checks are in the bot's code.
    return found | {"getMe"}


BOT_METHODS = methods_the_bot_calls()


def test_method_scan_finds_at_least_the_known_methods() -> None:
    assert MINIMUM_METHODS <= BOT_METHODS, sorted(MINIMUM_METHODS - BOT_METHODS)
    assert set(METHODS) >= BOT_METHODS


def test_method_scan_reads_ptb_calls_and_outbox_names() -> None:
    source = """
        await context.bot.send_message(chat.id, text)
        await update.effective_message.reply_text("hi")
        await query.answer()
        await query.message.edit_reply_markup(reply_markup=None)
        await self._repos.tickets.delete(ticket_id)
        await self._storage.db.close()
        await context.app.desk.close(ticket)
        await outbox.enqueue(user_id, "copyMessages", params)
        prefixes = ("send", "editMessage")
    """
    assert methods_in_source(source) == {
        "sendMessage",
        "answerCallbackQuery",
        "editMessageReplyMarkup",
        "copyMessages",
    }


# --------------------------------------------------------------------------------------------
# A validator of values against the spec's types.

_PINNED_STRING = re.compile(r'always "([a-z_]+)"|must be ([a-z_]+)$')


def _pinned_value(type_name: str, field_spec: dict[str, Any]) -> tuple[bool, Any]:
    """Return (True, value) when the spec fixes a field's value ('always "kicked"', 'Always 0')."""
    description = field_spec.get("description", "")
    if description.startswith("Always 0"):
        return True, 0
    if TYPES[type_name].get("subtype_of") and field_spec["types"] == ["String"]:
        match = _PINNED_STRING.search(description)
        if match and field_spec["name"] in ("type", "status", "source"):
            return True, match.group(1) or match.group(2)
    return False, None


_PRIMITIVES: dict[str, Callable[[Any], bool]] = {
    "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "Float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "String": lambda v: isinstance(v, str),
    "Boolean": lambda v: isinstance(v, bool),
    "True": lambda v: v is True,
    "InputFile": lambda v: isinstance(v, str),
}


def shape_errors(value: Any, types: Sequence[str], path: str = "result") -> list[str]:
    """Return how ``value`` fails to be any of ``types`` (empty when it is one of them)."""
    best: list[str] | None = None
    for type_name in types:
        errors = _type_errors(value, type_name, path)
        if not errors:
            return []
        if best is None or len(errors) < len(best):
            best = errors
    return best if best is not None else [f"{path}: no type declared"]


def _type_errors(value: Any, type_name: str, path: str) -> list[str]:
    if type_name.startswith("Array of "):
        if not isinstance(value, list):
            return [f"{path}: expected {type_name}, got {type(value).__name__}"]
        inner = type_name.removeprefix("Array of ")
        return [
            e for i, item in enumerate(value) for e in _type_errors(item, inner, f"{path}[{i}]")
        ]
    check = _PRIMITIVES.get(type_name)
    if check is not None:
        return [] if check(value) else [f"{path}: expected {type_name}, got {value!r:.80}"]
    return _object_errors(value, type_name, path)


def _object_errors(value: Any, type_name: str, path: str) -> list[str]:
    body = TYPES.get(type_name)
    if body is None:
        return [f"{path}: the spec has no type {type_name}"]
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name} object, got {value!r:.80}"]
    if body.get("subtypes"):
        return _variant_errors(value, type_name, body["subtypes"], path)
    declared = {f["name"]: f for f in body.get("fields", [])}
    errors = [
        f"{path}: {type_name} lacks required field {name!r}"
        for name, spec in declared.items()
        if spec["required"] and name not in value
    ]
    for name, item in value.items():
        spec = declared.get(name)
        where = f"{path}.{name}"
        if spec is None:
            errors.append(f"{where}: {type_name} has no field {name!r}")
        elif item is None:
            errors.append(f"{where}: null (Telegram leaves absent fields out)")
        else:
            errors.extend(shape_errors(item, spec["types"], where))
            pinned, expected = _pinned_value(type_name, spec)
            if pinned and item != expected:
                errors.append(f"{where}: {type_name} always has {expected!r}, got {item!r}")
    if type_name == "Message" and isinstance(value.get("date"), int) and value["date"] <= 0:
        errors.append(f"{path}.date: a Message's date is always positive")
    return errors


def _variant_errors(
    value: dict[str, Any], type_name: str, subtypes: list[str], path: str
) -> list[str]:
    """Check ``value`` against the variant of ``type_name`` its discriminating field names."""
    candidates = []
    for sub in subtypes:
        pins = [
            (f["name"], expected)
            for f in TYPES[sub].get("fields", [])
            for pinned, expected in [_pinned_value(sub, f)]
            if pinned and isinstance(expected, str)
        ]
        if all(value.get(name) == expected for name, expected in pins):
            candidates.append(sub)
    if not candidates:
        return [f"{path}: {value!r:.120} is none of {type_name}'s variants {subtypes}"]
    best: list[str] | None = None
    for sub in candidates:
        errors = _object_errors(value, sub, path)
        if not errors:
            return []
        if best is None or len(errors) < len(best):
            best = errors
    return best or []


def assert_shape(value: Any, types: Sequence[str], what: str) -> None:
    """Fail with every mismatch between ``value`` and the spec's ``types``."""
    errors = shape_errors(json.loads(json.dumps(value)), types)
    assert not errors, f"{what} does not match {list(types)}:\n" + "\n".join(errors)


def test_validator_catches_wrong_shapes() -> None:
    user = {"id": 1, "is_bot": False, "first_name": "A"}
    assert shape_errors(user, ["User"]) == []
    assert shape_errors({**user, "id": "1"}, ["User"]) == ["result.id: expected Integer, got '1'"]
    assert shape_errors({"id": 1, "is_bot": False}, ["User"]) == [
        "result: User lacks required field 'first_name'"
    ]
    assert shape_errors({**user, "nick": "x"}, ["User"]) == [
        "result.nick: User has no field 'nick'"
    ]
    assert shape_errors({**user, "last_name": None}, ["User"])
    assert shape_errors(True, ["Boolean"]) == [] and shape_errors(1, ["Boolean"])
    assert shape_errors(2.5, ["Float"]) == [] and shape_errors(2.5, ["Integer"])
    assert shape_errors([[1]], ["Array of Array of Integer"]) == []
    assert shape_errors([["x"]], ["Array of Array of Integer"])
    assert shape_errors({"status": "left", "user": user}, ["ChatMember"]) == []
    assert shape_errors({"status": "kicked", "user": user}, ["ChatMember"])  # no until_date
    assert shape_errors({"status": "boss", "user": user}, ["ChatMember"])
    assert shape_errors({"type": "emoji", "emoji": "👍"}, ["ReactionType"]) == []
    assert shape_errors({"type": "hidden_user", "date": 1}, ["MessageOrigin"])
    assert shape_errors({"type": "all_private_chats"}, ["BotCommandScope"]) == []
    chat = {"id": 1, "type": "private"}
    assert (
        shape_errors({"chat": chat, "message_id": 1, "date": 0}, ["MaybeInaccessibleMessage"]) == []
    )
    assert shape_errors({"chat": chat, "message_id": 1, "date": 5, "text": "x"}, ["Message"]) == []
    assert shape_errors({"chat": chat, "message_id": 1, "date": 0, "text": "x"}, ["Message"])
    assert shape_errors({}, ["ForumTopicClosed"]) == [] and shape_errors(
        {"x": 1}, ["ForumTopicClosed"]
    )
    assert shape_errors(True, ["Message", "Boolean"]) == []


# --------------------------------------------------------------------------------------------
# A small Telegram with everything the methods need: a user who started the bot, a forum
# group where the bot is an admin with topic rights, and messages to copy, edit and delete.


@dataclass
class World:
    """The people, chats and messages valid calls refer to."""

    emu: TelegramEmulator
    alice: SandboxUser
    agent: SandboxUser
    group: SandboxChat
    topic: int
    closed_topic: int
    bot_text: int
    bot_photo: int
    user_text: int
    user_photo: int
    user_album: list[int]
    topic_message: int
    photo_file_id: str
    document_file_id: str
    query_id: str


def wire(params: dict[str, Any]) -> dict[str, str]:
    """Encode parameters as they arrive over HTTP (strings; JSON for objects and arrays)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}


async def ok(emu: TelegramEmulator, method: str, **params: Any) -> Any:
    """Call ``method`` and return its result, failing on an error answer."""
    status, answer = await emu.call(method, wire(params))
    assert status == 200 and answer["ok"], (method, answer)
    return answer["result"]


async def error(emu: TelegramEmulator, method: str, **params: Any) -> tuple[int, str]:
    """Call ``method``, expecting an error; return (status, description)."""
    status, answer = await emu.call(method, wire(params))
    assert not answer["ok"], (method, answer)
    assert answer["error_code"] == status
    return status, answer["description"]


async def drain(emu: TelegramEmulator) -> list[dict[str, Any]]:
    """Fetch and confirm every pending update."""
    updates = await ok(emu, "getUpdates")
    if updates:
        await ok(emu, "getUpdates", offset=updates[-1]["update_id"] + 1)
    return updates


async def make_world(emu: TelegramEmulator) -> World:
    alice = emu.add_user("Alice", username="alice", phone_number="+15550001", started=True)
    agent = emu.add_user("Agent", language_code="zh-hans")
    owner = emu.add_user("Owner")
    group = emu.add_forum_group(
        "Agents",
        members=[agent.id],
        admins=[owner.id],
        bot_is_admin=True,
        bot_rights={
            "can_manage_topics": True,
            "can_delete_messages": True,
            "can_pin_messages": True,
            "can_restrict_members": True,
        },
    )
    topic, _ = emu.create_topic(group, "Ticket #1 李雷", emu.bot)
    closed, _ = emu.create_topic(group, "Ticket #0", emu.bot)
    closed.closed = True
    keyboard = {"inline_keyboard": [[{"text": "Yes", "callback_data": "q:yes"}]]}
    bot_text = await ok(emu, "sendMessage", chat_id=alice.id, text="Pick", reply_markup=keyboard)
    user_doc = emu.user_send_document(alice.id, b"%PDF-1.4", file_name="statement.pdf")
    user_text = emu.user_send(alice.id, "where is my refund?")
    user_photo = emu.user_send_photo(alice.id, PNG, caption="receipt")
    photo_file_id = user_photo["photo"][-1]["file_id"]
    bot_photo = await ok(emu, "sendPhoto", chat_id=alice.id, photo=photo_file_id, caption="c")
    album = emu.user_send_media_group(alice.id, [("photo", PNG, "one"), ("photo", PNG, None)])
    in_topic = emu.user_send(agent.id, "on it", chat_id=group.id, thread_id=topic.thread_id)
    query_id = emu.press_button(alice.id, alice.id, bot_text["message_id"], "Yes")
    await drain(emu)
    return World(
        emu=emu,
        alice=alice,
        agent=agent,
        group=group,
        topic=topic.thread_id,
        closed_topic=closed.thread_id,
        bot_text=bot_text["message_id"],
        bot_photo=bot_photo["message_id"],
        user_text=user_text["message_id"],
        user_photo=user_photo["message_id"],
        user_album=[m["message_id"] for m in album],
        topic_message=in_topic["message_id"],
        photo_file_id=photo_file_id,
        document_file_id=user_doc["document"]["file_id"],
        query_id=query_id,
    )


# --------------------------------------------------------------------------------------------
# One or more valid calls per method.


@dataclass
class Call:
    """A valid call: wire parameters plus multipart uploads by part name."""

    params: dict[str, Any]
    files: dict[str, tuple[str | None, bytes, str | None]] = field(default_factory=dict)


Builder = Callable[[World], Awaitable[Call] | Call]
CASES: dict[str, dict[str, Builder]] = {}


def case(method: str, name: str = "") -> Callable[[Builder], Builder]:
    """Register a valid call of ``method`` (several per method may exist, by ``name``)."""

    def register(builder: Builder) -> Builder:
        CASES.setdefault(method, {})[name or method] = builder
        return builder

    return register


async def build(builder: Builder, world: World) -> Call:
    made = builder(world)
    return await made if isinstance(made, Awaitable) else made


INLINE = {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}

# -- bot identity, updates, webhooks, commands

case("getMe")(lambda w: Call({}))
case("logOut")(lambda w: Call({}))
case("close")(lambda w: Call({}))
case("deleteWebhook")(lambda w: Call({"drop_pending_updates": False}))
case("getWebhookInfo")(lambda w: Call({}))
# Connection refused at once: nothing leaves the machine.
case("setWebhook")(lambda w: Call({"url": "http://127.0.0.1:9/hook", "secret_token": "s3cret"}))


@case("getUpdates")
def _get_updates(w: World) -> Call:
    w.emu.user_send(w.alice.id, "/start ref_1")
    w.emu.user_share_contact(w.alice.id)
    w.emu.user_press(w.alice.id, w.alice.id, w.bot_text, "q:yes")
    return Call({"offset": 0, "limit": 100, "timeout": 0, "allowed_updates": []})


COMMANDS = [{"command": "start", "description": "开始"}]
SCOPE = {"type": "chat", "chat_id": 0}
case("setMyCommands")(
    lambda w: Call({"commands": COMMANDS, "scope": {**SCOPE, "chat_id": w.alice.id}})
)


@case("getMyCommands")
async def _get_my_commands(w: World) -> Call:
    await ok(w.emu, "setMyCommands", commands=COMMANDS, language_code="zh")
    return Call({"language_code": "zh"})


case("deleteMyCommands")(lambda w: Call({"scope": {"type": "all_private_chats"}}))
case("setMyDescription")(lambda w: Call({"description": "钱包客服", "language_code": "zh"}))
case("getMyDescription")(lambda w: Call({"language_code": "zh"}))
case("setMyShortDescription")(lambda w: Call({"short_description": "Support"}))
case("getMyShortDescription")(lambda w: Call({}))
case("setMyName")(lambda w: Call({"name": "UPay 客服", "language_code": "zh"}))
case("getMyName")(lambda w: Call({}))
case("setChatMenuButton")(lambda w: Call({"menu_button": {"type": "commands"}}))
case("getChatMenuButton")(lambda w: Call({"chat_id": w.alice.id}))

# -- chats and members

case("getChat", "getChat-group")(lambda w: Call({"chat_id": w.group.id}))
case("getChat", "getChat-private")(lambda w: Call({"chat_id": w.alice.id}))
case("getChatMember", "getChatMember-bot-admin")(
    lambda w: Call({"chat_id": w.group.id, "user_id": w.emu.bot.id})
)
case("getChatMember", "getChatMember-member")(
    lambda w: Call({"chat_id": w.group.id, "user_id": w.agent.id})
)
case("getChatMember", "getChatMember-left")(
    lambda w: Call({"chat_id": w.group.id, "user_id": w.alice.id})
)
case("getChatMember", "getChatMember-private")(
    lambda w: Call({"chat_id": w.alice.id, "user_id": w.alice.id})
)
case("getChatAdministrators")(lambda w: Call({"chat_id": w.group.id}))
case("getChatMemberCount")(lambda w: Call({"chat_id": w.group.id}))
case("leaveChat")(lambda w: Call({"chat_id": w.group.id}))
case("banChatMember")(lambda w: Call({"chat_id": w.group.id, "user_id": w.agent.id}))
case("unbanChatMember")(
    lambda w: Call({"chat_id": w.group.id, "user_id": w.agent.id, "only_if_banned": True})
)

# -- forum topics

case("createForumTopic")(
    lambda w: Call({"chat_id": w.group.id, "name": "Ticket #2 李雷", "icon_color": 7322096})
)
case("editForumTopic")(
    lambda w: Call({"chat_id": w.group.id, "message_thread_id": w.topic, "name": "Ticket #1 ✅"})
)
case("closeForumTopic")(lambda w: Call({"chat_id": w.group.id, "message_thread_id": w.topic}))
case("reopenForumTopic")(
    lambda w: Call({"chat_id": w.group.id, "message_thread_id": w.closed_topic})
)
case("deleteForumTopic")(lambda w: Call({"chat_id": w.group.id, "message_thread_id": w.topic}))
case("unpinAllForumTopicMessages")(
    lambda w: Call({"chat_id": w.group.id, "message_thread_id": w.topic})
)

# -- sending

case("sendMessage", "sendMessage-private")(
    lambda w: Call(
        {
            "chat_id": w.alice.id,
            "text": '<b>你好</b> <a href="https://u.pay/">link</a>',
            "parse_mode": "HTML",
            "reply_markup": INLINE,
            "link_preview_options": {"is_disabled": True},
            "reply_parameters": {"message_id": w.user_text},
        }
    )
)
case("sendMessage", "sendMessage-topic")(
    lambda w: Call({"chat_id": w.group.id, "message_thread_id": w.topic, "text": "Claimed"})
)
case("sendMessage", "sendMessage-reply-keyboard")(
    lambda w: Call(
        {
            "chat_id": w.alice.id,
            "text": "Share your number",
            "reply_markup": {
                "keyboard": [[{"text": "📱 Share", "request_contact": True}]],
                "one_time_keyboard": True,
                "resize_keyboard": True,
            },
        }
    )
)
case("sendPhoto", "sendPhoto-upload")(
    lambda w: Call(
        {"chat_id": w.alice.id, "caption": "<i>QR</i>", "parse_mode": "HTML"},
        {"photo": ("qr.png", PNG, "image/png")},
    )
)
case("sendPhoto", "sendPhoto-file-id")(
    lambda w: Call({"chat_id": w.group.id, "message_thread_id": w.topic, "photo": w.photo_file_id})
)
case("sendDocument", "sendDocument-upload")(
    lambda w: Call(
        {"chat_id": w.alice.id, "caption": "Statement"},
        {"document": ("statement.pdf", b"%PDF-1.4", "application/pdf")},
    )
)
case("sendDocument", "sendDocument-file-id")(
    lambda w: Call({"chat_id": w.group.id, "document": w.document_file_id})
)
case("sendVoice")(
    lambda w: Call({"chat_id": w.alice.id}, {"voice": ("v.ogg", b"OggS", "audio/ogg")})
)
case("sendVideo")(
    lambda w: Call({"chat_id": w.alice.id}, {"video": ("v.mp4", b"\0\0\0 ftyp", "video/mp4")})
)
case("sendAnimation")(
    lambda w: Call({"chat_id": w.alice.id}, {"animation": ("a.gif", b"GIF89a", "image/gif")})
)
case("sendAudio")(
    lambda w: Call({"chat_id": w.alice.id}, {"audio": ("a.mp3", b"ID3", "audio/mpeg")})
)
case("sendSticker")(
    lambda w: Call({"chat_id": w.alice.id}, {"sticker": ("s.webp", b"RIFF", "image/webp")})
)
case("sendMediaGroup")(
    lambda w: Call(
        {
            "chat_id": w.group.id,
            "message_thread_id": w.topic,
            "media": [
                {"type": "photo", "media": w.photo_file_id, "caption": "one"},
                {"type": "photo", "media": "attach://second"},
            ],
        },
        {"second": ("2.png", PNG, "image/png")},
    )
)
case("sendChatAction")(lambda w: Call({"chat_id": w.alice.id, "action": "typing"}))
case("getFile")(lambda w: Call({"file_id": w.document_file_id}))

# -- copy and forward (the relay between a user and a ticket's topic)

case("copyMessage", "copyMessage-user-to-topic")(
    lambda w: Call(
        {
            "chat_id": w.group.id,
            "message_thread_id": w.topic,
            "from_chat_id": w.alice.id,
            "message_id": w.user_photo,
        }
    )
)
case("copyMessage", "copyMessage-topic-to-user")(
    lambda w: Call(
        {
            "chat_id": w.alice.id,
            "from_chat_id": w.group.id,
            "message_id": w.topic_message,
            "reply_markup": INLINE,
        }
    )
)
case("copyMessages")(
    lambda w: Call(
        {
            "chat_id": w.group.id,
            "message_thread_id": w.topic,
            "from_chat_id": w.alice.id,
            "message_ids": w.user_album,
        }
    )
)
case("forwardMessage")(
    lambda w: Call(
        {
            "chat_id": w.group.id,
            "message_thread_id": w.topic,
            "from_chat_id": w.alice.id,
            "message_id": w.user_text,
        }
    )
)
case("forwardMessages")(
    lambda w: Call({"chat_id": w.group.id, "from_chat_id": w.alice.id, "message_ids": w.user_album})
)

# -- editing and deleting

case("editMessageText")(
    lambda w: Call(
        {
            "chat_id": w.alice.id,
            "message_id": w.bot_text,
            "text": "<b>Picked</b>",
            "parse_mode": "HTML",
            "reply_markup": INLINE,
        }
    )
)
case("editMessageCaption")(
    lambda w: Call({"chat_id": w.alice.id, "message_id": w.bot_photo, "caption": "new caption"})
)
case("editMessageReplyMarkup")(lambda w: Call({"chat_id": w.alice.id, "message_id": w.bot_text}))
case("deleteMessage", "deleteMessage-private")(
    lambda w: Call({"chat_id": w.alice.id, "message_id": w.bot_text})
)
case("deleteMessage", "deleteMessage-group")(
    lambda w: Call({"chat_id": w.group.id, "message_id": w.topic_message})
)
case("deleteMessages")(
    lambda w: Call({"chat_id": w.alice.id, "message_ids": [w.bot_text, w.bot_photo, 9999]})
)

# -- callbacks, pins, reactions

case("answerCallbackQuery")(
    lambda w: Call({"callback_query_id": w.query_id, "text": "Done", "show_alert": True})
)
case("pinChatMessage")(lambda w: Call({"chat_id": w.group.id, "message_id": w.topic_message}))


@case("unpinChatMessage")
async def _unpin(w: World) -> Call:
    await ok(w.emu, "pinChatMessage", chat_id=w.alice.id, message_id=w.bot_text)
    return Call({"chat_id": w.alice.id})


case("unpinAllChatMessages")(lambda w: Call({"chat_id": w.alice.id}))
case("setMessageReaction")(
    lambda w: Call(
        {
            "chat_id": w.alice.id,
            "message_id": w.user_text,
            "reaction": [{"type": "emoji", "emoji": "👍"}],
        }
    )
)

ALL_CASES = [(method, name) for method, named in CASES.items() for name in named]
IMPLEMENTED = sorted(
    name.removeprefix("_api_") for name in dir(TelegramEmulator) if name.startswith("_api_")
)


def test_every_method_the_bot_calls_has_a_valid_call() -> None:
    assert set(CASES) >= BOT_METHODS, sorted(BOT_METHODS - set(CASES))


def test_every_method_the_emulator_implements_has_a_valid_call() -> None:
    assert set(IMPLEMENTED) <= set(CASES), sorted(set(IMPLEMENTED) - set(CASES))
    assert set(CASES) <= set(METHODS), sorted(set(CASES) - set(METHODS))


# --------------------------------------------------------------------------------------------
# (a) required parameters, (b) result shapes.

#: Telegram's wording for a few missing parameters; the others read "<name> is empty".
TELEGRAM_MISSING = {
    "text": "message text is empty",
    "callback_query_id": "query_id is empty",
    **{kind: f"there is no {kind} in the request" for kind in ("photo", "document", "voice")},
    **{kind: f"there is no {kind} in the request" for kind in ("video", "sticker")},
}


def required(method: str) -> list[str]:
    """Return the required parameters of ``method`` as the spec declares them."""
    return [f["name"] for f in METHODS[method].get("fields", []) if f["required"]]


def message_count(emu: TelegramEmulator) -> int:
    return sum(len(chat.messages) for chat in emu.chats.values())


REQUIRED_CASES = [(method, name) for method in CASES for name in required(method)]


@pytest.mark.parametrize(("method", "missing"), REQUIRED_CASES, ids=lambda v: v)
async def test_missing_required_parameter_is_a_bad_request(
    emu: TelegramEmulator, method: str, missing: str
) -> None:
    world = await make_world(emu)
    call = await build(next(iter(CASES[method].values())), world)
    assert missing in call.params or missing in call.files, "the valid call must include it"
    params = {k: v for k, v in call.params.items() if k != missing}
    files = {k: v for k, v in call.files.items() if k != missing}
    before = message_count(emu)
    status, answer = await emu.call(method, wire(params), files)
    assert status == 400
    expected = TELEGRAM_MISSING.get(missing, f"{missing} is empty")
    assert answer == {"ok": False, "error_code": 400, "description": f"Bad Request: {expected}"}
    assert message_count(emu) == before  # nothing happened
    assert not [v for v in emu.violations if "not implemented" in v]


@pytest.mark.parametrize(("method", "name"), ALL_CASES, ids=[n for _, n in ALL_CASES])
async def test_valid_call_returns_the_declared_shape(
    emu: TelegramEmulator, method: str, name: str
) -> None:
    world = await make_world(emu)
    call = await build(CASES[method][name], world)
    status, answer = await emu.call(method, wire(call.params), call.files)
    assert (status, answer["ok"]) == (200, True), answer
    assert set(answer) == {"ok", "result"}
    returns = METHODS[method]["returns"]
    assert_shape(answer["result"], returns, f"{name} result")
    if returns == ["Boolean"]:
        assert answer["result"] is True  # "Returns True on success"
    assert emu.violations == []
    # What the call left in the chats (service messages too) is what later replies quote.
    for chat in emu.chats.values():
        for stored in chat.messages.values():
            assert_shape(stored.data, ["Message"], f"stored message {stored.message_id}")


async def test_results_match_what_was_asked(emu: TelegramEmulator) -> None:
    """Spot checks beyond shape: the result describes the call that was made."""
    w = await make_world(emu)
    sent = await ok(emu, "sendMessage", chat_id=w.group.id, message_thread_id=w.topic, text="x")
    assert sent["chat"]["id"] == w.group.id and sent["chat"]["is_forum"] is True
    assert sent["message_thread_id"] == w.topic and sent["is_topic_message"] is True
    assert sent["from"] == {
        "id": emu.bot.id,
        "is_bot": True,
        "first_name": emu.bot.first_name,
        "username": emu.bot.username,
    }
    assert sent["reply_to_message"]["forum_topic_created"]["name"] == "Ticket #1 李雷"
    copies = await ok(
        emu, "copyMessages", chat_id=w.alice.id, from_chat_id=w.alice.id, message_ids=w.user_album
    )
    assert [set(c) for c in copies] == [{"message_id"}] * 2
    assert copies[0]["message_id"] < copies[1]["message_id"]
    topic = await ok(emu, "createForumTopic", chat_id=w.group.id, name="T")
    assert topic["message_thread_id"] in emu.topics(w.group.id)
    member = await ok(emu, "getChatMember", chat_id=w.group.id, user_id=emu.bot.id)
    assert member["status"] == "administrator" and member["can_manage_topics"] is True
    assert member["user"]["id"] == emu.bot.id


# --------------------------------------------------------------------------------------------
# Updates the emulator produces, against ``Update``.


def assert_update(update: dict[str, Any]) -> str:
    """Check an update's shape and that it carries exactly one payload; return its kind."""
    assert_shape(update, ["Update"], f"update {update.get('update_id')}")
    kinds = [key for key in update if key != "update_id"]
    assert len(kinds) == 1, kinds
    return kinds[0]


async def test_updates_match_the_spec(emu: TelegramEmulator) -> None:
    w = await make_world(emu)
    owner = emu.add_user("Owner 2")
    plain = emu.add_group("Plain", admins=[owner.id], bot_is_member=False)
    emu.user_send(w.alice.id, "/start ref_42")
    emu.user_send(w.alice.id, "hi", reply_to=w.bot_text)
    said = emu.user_send(w.alice.id, "typo")
    emu.user_edit(w.alice.id, w.alice.id, said["message_id"], "/help")
    emu.user_share_contact(w.alice.id)
    emu.user_share_contact(
        w.alice.id, contact_user_id=w.agent.id, phone_number="+86138", forwarded=True
    )
    emu.user_send_photo(w.alice.id, PNG, caption="receipt")
    emu.user_send_document(w.alice.id, b"%PDF-1.4", file_name="bill.pdf", caption="bill")
    emu.user_send_voice(w.alice.id)
    emu.user_send_sticker(w.alice.id)
    emu.user_send_media_group(w.alice.id, [("photo", PNG, "a"), ("document", b"x", None)])
    emu.user_send(w.alice.id, "fwd", forward_from="Hidden Person")
    emu.user_send(w.alice.id, "fwd", forward_from=w.agent.id)
    emu.user_send(
        w.alice.id,
        "fwd",
        forward_from={"type": "chat", "sender_chat": emu.chat_summary(w.group)},
    )
    emu.press_button(w.alice.id, w.alice.id, w.bot_text, "Yes")
    emu.user_delete(w.alice.id, w.alice.id, w.bot_photo)
    emu.user_press(w.alice.id, w.alice.id, w.bot_photo, "stale")  # an InaccessibleMessage
    thread = emu.user_create_topic(w.agent.id, w.group.id, "Agent topic")
    emu.user_send(w.agent.id, "in topic", chat_id=w.group.id, thread_id=thread)
    emu.user_send_photo(w.agent.id, PNG, chat_id=w.group.id, thread_id=thread)
    emu.user_send(w.agent.id, "in General", chat_id=w.group.id)
    emu.user_close_topic(w.group.id, thread)
    emu.user_reopen_topic(w.group.id, thread)
    emu.add_bot_to_group(plain.id, owner.id)
    emu.add_bot_to_group(plain.id, owner.id, admin=True, rights={"can_delete_messages": True})
    emu.remove_bot_from_group(plain.id, owner.id)
    emu.block_bot(w.alice.id)
    emu.unblock_bot(w.alice.id)
    await ok(emu, "leaveChat", chat_id=w.group.id)

    updates = await drain(emu)
    kinds = [assert_update(update) for update in updates]
    assert [u["update_id"] for u in updates] == sorted({u["update_id"] for u in updates})
    assert set(kinds) == {"message", "edited_message", "callback_query", "my_chat_member"}
    messages = [u["message"] for u in updates if "message" in u]
    for key in ("contact", "photo", "document", "voice", "sticker", "forward_origin"):
        assert any(key in m for m in messages), key
    for key in ("forum_topic_created", "forum_topic_closed", "forum_topic_reopened"):
        assert any(key in m for m in messages), key
    assert len({m.get("media_group_id") for m in messages} - {None}) == 1
    assert {m["forward_origin"]["type"] for m in messages if "forward_origin" in m} == {
        "user",
        "hidden_user",
        "chat",
    }
    queries = [u["callback_query"] for u in updates if "callback_query" in u]
    assert [q["message"]["date"] == 0 for q in queries] == [False, True]
    statuses = [
        u["my_chat_member"]["new_chat_member"]["status"] for u in updates if "my_chat_member" in u
    ]
    assert statuses == ["member", "administrator", "left", "kicked", "member", "left"]


async def test_updates_pass_through_ptb_without_unknown_fields(emu: TelegramEmulator) -> None:
    """PTB files fields it does not know under api_kwargs: there should be none."""
    w = await make_world(emu)
    emu.user_send(w.alice.id, "/start")
    emu.user_share_contact(w.alice.id)
    emu.press_button(w.alice.id, w.alice.id, w.bot_text, "Yes")
    emu.user_send_media_group(w.alice.id, [("photo", PNG, "a"), ("photo", PNG, None)])
    emu.block_bot(w.alice.id)
    async with in_process_bot(emu) as bot:
        updates = await bot.get_updates()
    assert len(updates) == 6

    def unknown(obj: Any, path: str) -> Iterable[str]:
        if isinstance(obj, telegram.TelegramObject):
            if obj.api_kwargs:
                yield f"{path}: {sorted(obj.api_kwargs)}"
            for key, value in obj._get_attrs(recursive=False).items():
                yield from unknown(value, f"{path}.{key}")
        elif isinstance(obj, tuple | list):
            for i, item in enumerate(obj):
                yield from unknown(item, f"{path}[{i}]")

    leftovers = [entry for u in updates for entry in unknown(u, f"update {u.update_id}")]
    assert leftovers == []


# --------------------------------------------------------------------------------------------
# DESIGN section 8 behaviours not already covered by test_emulator.py.


async def test_not_modified_for_caption_and_markup_edits(emu: TelegramEmulator) -> None:
    w = await make_world(emu)
    not_modified = (400, f"Bad Request: {NOT_MODIFIED}")
    assert (
        await error(
            emu, "editMessageCaption", chat_id=w.alice.id, message_id=w.bot_photo, caption="c"
        )
        == not_modified
    )
    keyboard = {"inline_keyboard": [[{"text": "Yes", "callback_data": "q:yes"}]]}
    assert (
        await error(
            emu,
            "editMessageReplyMarkup",
            chat_id=w.alice.id,
            message_id=w.bot_text,
            reply_markup=keyboard,
        )
        == not_modified
    )
    # HTML that renders to the same text and entities is "not modified" too.
    await ok(
        emu,
        "editMessageText",
        chat_id=w.alice.id,
        message_id=w.bot_text,
        text="<b>B</b>",
        parse_mode="HTML",
    )
    assert (
        await error(
            emu,
            "editMessageText",
            chat_id=w.alice.id,
            message_id=w.bot_text,
            text="<b>B</b>",
            parse_mode="HTML",
        )
        == not_modified
    )


async def test_delete_not_found_for_unknown_ids_and_deleted_topics(emu: TelegramEmulator) -> None:
    w = await make_world(emu)
    gone = (400, "Bad Request: message to delete not found")
    assert await error(emu, "deleteMessage", chat_id=w.alice.id, message_id=424242) == gone
    await ok(emu, "deleteForumTopic", chat_id=w.group.id, message_thread_id=w.topic)
    assert await error(emu, "deleteMessage", chat_id=w.group.id, message_id=w.topic_message) == gone


async def test_thread_not_found_for_every_relay_method(emu: TelegramEmulator) -> None:
    w = await make_world(emu)
    await ok(emu, "deleteForumTopic", chat_id=w.group.id, message_thread_id=w.topic)
    missing = (400, "Bad Request: message thread not found")
    for thread in (w.topic, 987654):
        where = {"chat_id": w.group.id, "message_thread_id": thread}
        assert await error(emu, "sendMessage", **where, text="x") == missing
        assert (
            await error(
                emu, "copyMessage", **where, from_chat_id=w.alice.id, message_id=w.user_text
            )
            == missing
        )
        assert (
            await error(
                emu, "copyMessages", **where, from_chat_id=w.alice.id, message_ids=w.user_album
            )
            == missing
        )
        assert await error(emu, "sendPhoto", **where, photo=w.photo_file_id) == missing
    assert (
        await error(emu, "sendMessage", chat_id=w.alice.id, message_thread_id=5, text="x")
        == missing
    )


async def test_cant_parse_entities_and_too_long_on_edits(emu: TelegramEmulator) -> None:
    w = await make_world(emu)
    target = {"chat_id": w.alice.id, "message_id": w.bot_text}
    status, text = await error(emu, "editMessageText", **target, text="<b>x", parse_mode="HTML")
    assert status == 400 and text.startswith("Bad Request: can't parse entities: ")
    status, text = await error(
        emu,
        "sendPhoto",
        chat_id=w.alice.id,
        photo=w.photo_file_id,
        caption="<x>",
        parse_mode="HTML",
    )
    assert status == 400 and text.startswith("Bad Request: can't parse entities: ")
    assert await error(emu, "editMessageText", **target, text="x" * 4097) == (
        400,
        "Bad Request: message is too long",
    )
    # Length counts after entity parsing: 4096 visible characters in tags are fine.
    await ok(emu, "editMessageText", **target, text=f"<b>{'y' * 4096}</b>", parse_mode="HTML")
    assert await error(
        emu, "editMessageCaption", chat_id=w.alice.id, message_id=w.bot_photo, caption="c" * 1025
    ) == (400, "Bad Request: message caption is too long")


async def test_blocked_user_refuses_every_kind_of_send(
    emu: TelegramEmulator,
) -> None:
    w = await make_world(emu)
    emu.block_bot(w.alice.id)
    blocked = (403, "Forbidden: bot was blocked by the user")
    to_alice = {"chat_id": w.alice.id, "from_chat_id": w.group.id}
    assert await error(emu, "copyMessage", **to_alice, message_id=w.topic_message) == blocked
    assert await error(emu, "copyMessages", **to_alice, message_ids=[w.topic_message]) == blocked
    assert await error(emu, "sendPhoto", chat_id=w.alice.id, photo=w.photo_file_id) == blocked
    assert await error(emu, "sendChatAction", chat_id=w.alice.id, action="typing") == blocked
    assert await error(emu, "sendMessage", chat_id=str(w.alice.id), text="x") == blocked
    assert emu.bot_messages(w.alice.id)[-1]["message_id"] == w.bot_photo  # nothing arrived


async def test_48_hour_delete_window_in_groups_and_bulk_deletes(emu: TelegramEmulator) -> None:
    w = await make_world(emu)
    emu.advance(48 * 3600 - 60)
    assert await ok(emu, "deleteMessage", chat_id=w.group.id, message_id=w.topic_message) is True
    emu.advance(120)
    assert await error(emu, "deleteMessage", chat_id=w.alice.id, message_id=w.user_text) == (
        400,
        "Bad Request: message can't be deleted for everyone",
    )
    # deleteMessages skips what it cannot delete and still answers True.
    fresh = await ok(emu, "sendMessage", chat_id=w.alice.id, text="fresh")
    ids = [w.bot_text, fresh["message_id"]]
    assert await ok(emu, "deleteMessages", chat_id=w.alice.id, message_ids=ids) is True
    assert emu.message(w.alice.id, fresh["message_id"]).deleted
    assert not emu.message(w.alice.id, w.bot_text).deleted


async def test_tight_caps_give_429_with_retry_after(emu: TelegramEmulator) -> None:
    w = await make_world(emu)
    emu.caps = Caps(enabled=True, per_group_per_minute=2, overall_per_second=1000)
    where = {"chat_id": w.group.id, "message_thread_id": w.topic}
    await ok(emu, "sendMessage", **where, text="1")
    await ok(emu, "copyMessage", **where, from_chat_id=w.alice.id, message_id=w.user_text)
    status, answer = await emu.call("sendMessage", wire({**where, "text": "3"}))
    retry = answer["parameters"]["retry_after"]
    assert status == 429 and isinstance(retry, int) and 1 <= retry <= 60
    assert answer["description"] == f"Too Many Requests: retry after {retry}"
    assert_shape(answer["parameters"], ["ResponseParameters"], "429 parameters")
    # An album counts as one message per item against the cap.
    album = {**where, "from_chat_id": w.alice.id, "message_ids": w.user_album}
    assert (await emu.call("copyMessages", wire(album)))[0] == 429
    emu.advance(retry)
    await ok(emu, "sendMessage", **where, text="after the wait")

    # Alice last wrote over a minute ago: messages to her are bulk, like Bob's.
    emu.advance(61)
    emu.caps = Caps(enabled=True, overall_per_second=2, private_chat_burst=100)
    other = emu.add_user("Bob", started=True)
    await ok(emu, "sendMessage", chat_id=w.alice.id, text="a")
    await ok(emu, "sendMessage", chat_id=other.id, text="b")
    status, answer = await emu.call("sendMessage", wire({"chat_id": w.alice.id, "text": "c"}))
    assert status == 429 and answer["parameters"]["retry_after"] >= 1


async def test_only_bulk_sends_count_against_the_overall_cap(emu: TelegramEmulator) -> None:
    """Telegram's ~30/s is for bulk notifications: answers to users who just wrote, and
    messages into groups, are limited per chat only."""
    emu.caps = Caps(enabled=True, overall_per_second=3, per_group_per_minute=1000)
    writers = [emu.add_user(f"W{n}", started=True) for n in range(10)]
    silent = [emu.add_user(f"S{n}", started=True) for n in range(4)]
    group = emu.add_group("Team")
    for user in writers:
        emu.user_send(user.id, "hello")
    for user in writers:
        await ok(emu, "sendMessage", chat_id=user.id, text="answer")
    for n in range(5):
        await ok(emu, "sendMessage", chat_id=group.id, text=f"g{n}")
    for user in silent[:3]:
        await ok(emu, "sendMessage", chat_id=user.id, text="notice")
    status, answer = await emu.call("sendMessage", wire({"chat_id": silent[3].id, "text": "n"}))
    assert status == 429 and answer["description"].startswith("Too Many Requests")
    assert sum(emu.bulk_per_second.values()) == 3
    # Once the user's last update is older than the reply window, a message is bulk again.
    emu.advance(emu.caps.reply_window + 1)
    for user in writers[:3]:
        await ok(emu, "sendMessage", chat_id=user.id, text="later")
    assert (await emu.call("sendMessage", wire({"chat_id": writers[3].id, "text": "x"})))[0] == 429
    # reply_window=0: every send counts (the stricter model).
    emu.advance(2)
    emu.caps = Caps(enabled=True, overall_per_second=2, reply_window=0)
    emu.user_send(writers[5].id, "hi")
    await ok(emu, "sendMessage", chat_id=writers[5].id, text="1")
    await ok(emu, "sendMessage", chat_id=group.id, text="2")
    assert (await emu.call("sendMessage", wire({"chat_id": writers[5].id, "text": "3"})))[0] == 429


async def test_edits_and_topic_creation_count_against_the_chat_caps(
    emu: TelegramEmulator,
) -> None:
    w = await make_world(emu)
    emu.caps = Caps(enabled=True, private_chat_burst=2, per_private_chat_per_second=1)
    sent = await ok(emu, "sendMessage", chat_id=w.alice.id, text="v0")
    await ok(emu, "editMessageText", chat_id=w.alice.id, message_id=sent["message_id"], text="v1")
    status, answer = await emu.call(
        "editMessageText",
        wire({"chat_id": w.alice.id, "message_id": sent["message_id"], "text": "v2"}),
    )
    assert status == 429 and answer["parameters"]["retry_after"] >= 1
    # An edit that changes nothing is refused as such before any cap is spent.
    assert await error(
        emu, "editMessageText", chat_id=w.alice.id, message_id=sent["message_id"], text="v1"
    ) == (400, f"Bad Request: {NOT_MODIFIED}")
    emu.caps = Caps(enabled=True, per_group_per_minute=2, group_window=5.0)
    await ok(emu, "sendMessage", chat_id=w.group.id, message_thread_id=w.topic, text="1")
    await ok(emu, "createForumTopic", chat_id=w.group.id, name="Ticket #2")
    status, answer = await emu.call(
        "createForumTopic", wire({"chat_id": w.group.id, "name": "Ticket #3"})
    )
    assert status == 429 and 1 <= answer["parameters"]["retry_after"] <= 5
    emu.advance(5)
    await ok(emu, "createForumTopic", chat_id=w.group.id, name="Ticket #3")


async def test_disabled_caps_never_give_429(emu: TelegramEmulator) -> None:
    w = await make_world(emu)
    emu.caps = Caps(
        enabled=False, overall_per_second=1, per_group_per_minute=1, private_chat_burst=1
    )
    for n in range(40):
        await ok(emu, "sendMessage", chat_id=w.alice.id, text=f"p{n}")
        await ok(emu, "sendMessage", chat_id=w.group.id, message_thread_id=w.topic, text=f"g{n}")
    assert len(emu.bot_messages(w.alice.id)) >= 40


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
async def test_unknown_parameters_are_ignored_and_reported_only_in_strict_mode(
    strict: bool,
) -> None:
    emu = TelegramEmulator(strict=strict, caps=Caps(enabled=False))
    try:
        alice = emu.add_user("Alice", started=True)
        sent = await ok(emu, "sendMessage", chat_id=alice.id, text="hi", colour="red")
        assert sent["text"] == "hi" and "colour" not in sent
        await ok(emu, "getMe", verbose="1")
        # A value Telegram cannot read counts as absent; strict mode reports it as well.
        await ok(emu, "sendMessage", chat_id=alice.id, text="yo", disable_notification="maybe")
        expected = [
            "sendMessage: unknown parameter 'colour'",
            "getMe: unknown parameter 'verbose'",
            "sendMessage: parameter 'disable_notification' does not match its declared type",
        ]
        assert emu.violations == (expected if strict else [])
    finally:
        await emu.aclose()


async def test_method_names_are_case_insensitive_and_unknown_ones_404(
    emu: TelegramEmulator,
) -> None:
    alice = emu.add_user("Alice", started=True)
    assert (await ok(emu, "SENDMESSAGE", chat_id=alice.id, text="hi"))["text"] == "hi"
    assert await error(emu, "sendMessages", chat_id=alice.id) == (404, "Not Found")
