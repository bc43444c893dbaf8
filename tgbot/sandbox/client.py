"""Acting as people in the emulated Telegram, and reading what they see.

Tests (and the demo web page) use these methods of ``TelegramEmulator``: create users
and groups, send messages and press buttons as a user would in the Telegram app (each
action stores the message and queues the update the bot receives), then read chats.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from tgbot.sandbox.entities import command_entities
from tgbot.sandbox.models import SandboxChat, SandboxError, SandboxUser, StoredMessage, Topic

if TYPE_CHECKING:
    from tgbot.sandbox.emulator import TelegramEmulator

# A 1x1 PNG: what user_send_photo uploads unless given other bytes.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001"
    "0d0a2db40000000049454e44ae426082"
)


class ClientActions:
    """User-side actions and observations, mixed into ``TelegramEmulator``."""

    # ----------------------------------------------------------------- setup

    def add_user(
        self: TelegramEmulator,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        phone_number: str | None = None,
        user_id: int | None = None,
        started: bool = False,
    ) -> SandboxUser:
        """Create a Telegram account; ``started`` means it already has a chat with the bot."""
        if user_id is None:
            user_id = self._next_user_id
            self._next_user_id += 1
        user = SandboxUser(
            id=user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            phone_number=phone_number,
        )
        self.users[user_id] = user
        if started:
            self._private_chat(user)
        return user

    def _private_chat(self: TelegramEmulator, user: SandboxUser) -> SandboxChat:
        chat = self.chats.get(user.id)
        if chat is None:
            chat = SandboxChat(id=user.id, type="private", user_id=user.id)
            self.chats[user.id] = chat
        user.started = True
        return chat

    def add_group(
        self: TelegramEmulator,
        title: str,
        *,
        members: list[int] | None = None,
        admins: list[int] | None = None,
        bot_is_admin: bool = False,
        bot_rights: dict[str, bool] | None = None,
        forum: bool = False,
        supergroup: bool = True,
        username: str | None = None,
        bot_is_member: bool = True,
    ) -> SandboxChat:
        """Create a group (a supergroup unless told otherwise) that already has the bot in it."""
        if forum and not supergroup:
            raise SandboxError("only supergroups can be forums")
        number = self._next_group_id
        self._next_group_id += 1
        chat_id = -(1_000_000_000_000 + number) if supergroup else -(4_000_000_000 + number)
        chat = SandboxChat(
            id=chat_id,
            type="supergroup" if supergroup else "group",
            title=title,
            username=username,
            is_forum=forum,
        )
        for user_id in members or []:
            chat.members[user_id] = "member"
        for user_id in admins or []:
            chat.members[user_id] = "administrator"
        if not bot_is_member:
            chat.bot_status = "left"
        elif bot_is_admin:
            chat.bot_status = "administrator"
            chat.bot_rights = {"can_manage_chat": True, **(bot_rights or {})}
        self.chats[chat_id] = chat
        return chat

    def add_forum_group(self: TelegramEmulator, title: str, **options: Any) -> SandboxChat:
        """Create a forum supergroup (topics enabled); options as for ``add_group``."""
        return self.add_group(title, forum=True, supergroup=True, **options)

    def add_bot_to_group(
        self: TelegramEmulator,
        chat_id: int,
        by_user_id: int,
        *,
        admin: bool = False,
        rights: dict[str, bool] | None = None,
    ) -> None:
        """Add (or promote) the bot in a group as ``by_user_id``; the bot gets my_chat_member."""
        chat = self.chats[chat_id]
        status = "administrator" if admin else "member"
        granted = {"can_manage_chat": True, **(rights or {})} if admin else {}
        self.set_bot_status(chat, status, self.users[by_user_id], granted)

    def remove_bot_from_group(self: TelegramEmulator, chat_id: int, by_user_id: int) -> None:
        """Remove the bot from a group as ``by_user_id``; the bot gets my_chat_member."""
        self.set_bot_status(self.chats[chat_id], "left", self.users[by_user_id], {})

    def block_bot(self: TelegramEmulator, user_id: int) -> None:
        """Block the bot as ``user_id``: sends fail with 403, the bot gets my_chat_member."""
        user = self.users[user_id]
        if user.blocked_bot:
            return
        chat = self._private_chat(user)
        old = self.chat_member(chat, self.bot)
        user.blocked_bot = True
        self._private_member_update(chat, user, old, {**old, "status": "kicked", "until_date": 0})

    def unblock_bot(self: TelegramEmulator, user_id: int) -> None:
        """Unblock the bot as ``user_id``; the bot gets my_chat_member."""
        user = self.users[user_id]
        if not user.blocked_bot:
            return
        chat = self._private_chat(user)
        user.blocked_bot = False
        old = {"status": "kicked", "user": self.bot.to_dict(), "until_date": 0}
        self._private_member_update(chat, user, old, self.chat_member(chat, self.bot))

    def _private_member_update(
        self: TelegramEmulator,
        chat: SandboxChat,
        user: SandboxUser,
        old: dict[str, Any],
        new: dict[str, Any],
    ) -> None:
        self._enqueue(
            "my_chat_member",
            {
                "chat": self.chat_summary(chat),
                "from": user.to_dict(),
                "date": int(self.now()),
                "old_chat_member": old,
                "new_chat_member": new,
            },
        )
        self._emit({"type": "member", "chat_id": chat.id, "status": new["status"]})

    def deactivate(self: TelegramEmulator, user_id: int) -> None:
        """Delete the account ``user_id``; sending to it fails with 403 user is deactivated."""
        self.users[user_id].deactivated = True

    # ----------------------------------------------------------------- acting as a user

    def _chat_for(self: TelegramEmulator, user: SandboxUser, chat_id: int | None) -> SandboxChat:
        if user.deactivated:
            raise SandboxError(f"user {user.id} is deactivated")
        if chat_id is None or chat_id == user.id:
            chat = self._private_chat(user)
            if user.blocked_bot:
                # Writing to a bot one has blocked unblocks it in the Telegram apps.
                self.unblock_bot(user.id)
            return chat
        chat = self.chats.get(chat_id)
        if chat is None:
            raise SandboxError(f"no chat {chat_id}")
        if chat.members.get(user.id) not in ("creator", "administrator", "member"):
            raise SandboxError(f"user {user.id} is not a member of chat {chat_id}")
        return chat

    def _user_thread(
        self: TelegramEmulator, chat: SandboxChat, user: SandboxUser, thread_id: int | None
    ) -> int | None:
        if not thread_id:
            return None
        topic = chat.topics.get(thread_id)
        if chat.is_forum and (topic is None or topic.deleted):
            raise SandboxError(f"no topic {thread_id} in chat {chat.id}")
        if (
            topic is not None
            and topic.closed
            and chat.members.get(user.id)
            not in (
                "creator",
                "administrator",
            )
        ):
            raise SandboxError(f"topic {thread_id} is closed")
        return thread_id

    def _user_message(
        self: TelegramEmulator,
        user_id: int,
        content: dict[str, Any],
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
        forward_from: int | str | dict[str, Any] | None = None,
        update: bool = True,
    ) -> dict[str, Any]:
        user = self.users[user_id]
        chat = self._chat_for(user, chat_id)
        thread = self._user_thread(chat, user, thread_id)
        target: StoredMessage | None = None
        if reply_to is not None:
            target = chat.messages.get(reply_to)
            if target is None or target.deleted:
                raise SandboxError(f"no message {reply_to} to reply to")
        if forward_from is not None:
            content = {**content, "forward_origin": self._origin(forward_from)}
        stored = self.store_message(chat, user, content, thread_id=thread, reply_to=target)
        if update and self._bot_sees(chat, stored):
            self._enqueue("message", stored.data)
        return stored.data

    def _origin(self: TelegramEmulator, source: int | str | dict[str, Any]) -> dict[str, Any]:
        date = int(self.now()) - 60
        if isinstance(source, dict):
            return {"date": date, **source}
        if isinstance(source, int):
            return {"type": "user", "sender_user": self.users[source].to_dict(), "date": date}
        return {"type": "hidden_user", "sender_user_name": source, "date": date}

    def _bot_sees(self: TelegramEmulator, chat: SandboxChat, stored: StoredMessage) -> bool:
        if chat.type == "private":
            return True
        if not chat.bot_is_member:
            return False
        if not self.privacy_mode or chat.bot_is_admin or stored.is_service:
            return True
        data = stored.data
        text = data.get("text") or data.get("caption") or ""
        replied = data.get("reply_to_message", {})
        is_topic_root = "forum_topic_created" in replied
        return (
            text.startswith("/")
            or f"@{self.bot.username}".lower() in text.lower()
            or (not is_topic_root and replied.get("from", {}).get("id") == self.bot.id)
        )

    def user_send(
        self: TelegramEmulator,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
        forward_from: int | str | dict[str, Any] | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Send ``text`` as ``user_id`` (to the bot's private chat unless ``chat_id``).

        Args:
            user_id: the sender.
            text: the text; commands get ``bot_command`` entities.
            chat_id: a group the user is in; the private chat with the bot by default.
            thread_id: a forum topic (None is the General topic).
            reply_to: id of a message in the same chat to reply to.
            forward_from: make it a forwarded message: a user id, a hidden sender's name,
                or a ``MessageOrigin`` dict.
            entities: more entities, as Telegram would give them (``url``, ``text_link``
                from a client's formatting...), UTF-16 offsets.
        """
        content: dict[str, Any] = {"text": text}
        entities = [
            *(command_entities(text) if forward_from is None else []),
            *(entities or []),
        ]
        if entities:
            content["entities"] = entities
        return self._user_message(
            user_id,
            content,
            chat_id=chat_id,
            thread_id=thread_id,
            reply_to=reply_to,
            forward_from=forward_from,
        )

    def _user_media(
        self: TelegramEmulator,
        kind: str,
        user_id: int,
        content: bytes,
        caption: str | None,
        file_name: str | None,
        mime_type: str | None,
        extra: dict[str, Any] | None = None,
        **where: Any,
    ) -> dict[str, Any]:
        stored = self.add_file(kind, content, file_name, mime_type)
        body: dict[str, Any] = {kind: self.media_object(kind, stored)}
        if caption:
            body["caption"] = caption
        body.update(extra or {})
        return self._user_message(user_id, body, **where)

    def user_send_photo(
        self: TelegramEmulator,
        user_id: int,
        content: bytes = TINY_PNG,
        *,
        caption: str | None = None,
        **where: Any,
    ) -> dict[str, Any]:
        """Send a photo as ``user_id``; ``where`` takes chat_id, thread_id, reply_to."""
        return self._user_media("photo", user_id, content, caption, None, None, **where)

    def user_send_document(
        self: TelegramEmulator,
        user_id: int,
        content: bytes,
        *,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        **where: Any,
    ) -> dict[str, Any]:
        """Send a file as ``user_id``; ``where`` takes chat_id, thread_id, reply_to."""
        return self._user_media(
            "document", user_id, content, caption, file_name, mime_type, **where
        )

    def user_send_voice(
        self: TelegramEmulator, user_id: int, content: bytes = b"OggS", **where: Any
    ) -> dict[str, Any]:
        """Send a voice note as ``user_id``."""
        return self._user_media("voice", user_id, content, None, None, "audio/ogg", **where)

    def user_send_sticker(self: TelegramEmulator, user_id: int, **where: Any) -> dict[str, Any]:
        """Send a sticker as ``user_id``."""
        return self._user_media("sticker", user_id, b"RIFF", None, None, "image/webp", {}, **where)

    def user_send_media_group(
        self: TelegramEmulator,
        user_id: int,
        items: list[tuple[str, bytes, str | None]],
        **where: Any,
    ) -> list[dict[str, Any]]:
        """Send an album as ``user_id``: (kind, bytes, caption) items sharing a media_group_id."""
        group_id = str(secrets.randbits(62))
        messages = []
        for kind, content, caption in items:
            file_name = "document.bin" if kind == "document" else None
            messages.append(
                self._user_media(
                    kind,
                    user_id,
                    content,
                    caption,
                    file_name,
                    None,
                    {"media_group_id": group_id},
                    **where,
                )
            )
        return messages

    def user_share_contact(
        self: TelegramEmulator,
        user_id: int,
        phone_number: str | None = None,
        *,
        contact_user_id: int | None = None,
        forwarded: bool = False,
        **where: Any,
    ) -> dict[str, Any]:
        """Share a contact card as ``user_id`` (their own by default, as the button does).

        Args:
            user_id: the sender.
            phone_number: the number on the card; the contact's own number by default.
                Telegram sends a user's own number without the leading "+".
            contact_user_id: whose card it is; the sender's own by default.
            forwarded: the card is forwarded from elsewhere (a bot should not trust it).
            where: chat_id, thread_id, reply_to.
        """
        owner = self.users[contact_user_id or user_id]
        number = phone_number or (owner.phone_number or "").lstrip("+")
        if not number:
            raise SandboxError(f"user {owner.id} has no phone number")
        contact: dict[str, Any] = {
            "phone_number": number,
            "first_name": owner.first_name,
            "user_id": owner.id,
        }
        if owner.last_name:
            contact["last_name"] = owner.last_name
        origin = owner.id if forwarded else None
        return self._user_message(user_id, {"contact": contact}, forward_from=origin, **where)

    def user_edit(
        self: TelegramEmulator,
        user_id: int,
        chat_id: int,
        message_id: int,
        new_text: str,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Edit a user's own text message (``entities`` as in :meth:`user_send`); the bot
        gets ``edited_message``."""
        chat = self.chats[chat_id]
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted or stored.sender_id != user_id:
            raise SandboxError(f"user {user_id} cannot edit message {message_id}")
        if "text" not in stored.data:
            raise SandboxError("only text messages can be edited here")
        stored.data["text"] = new_text
        entities = [*command_entities(new_text), *(entities or [])]
        if entities:
            stored.data["entities"] = entities
        else:
            stored.data.pop("entities", None)
        stored.data["edit_date"] = int(self.now())
        stored.edit_count += 1
        self._emit({"type": "edit", "chat_id": chat.id, "message": stored.data})
        if self._bot_sees(chat, stored):
            self._enqueue("edited_message", stored.data)
        return stored.data

    def user_delete(self: TelegramEmulator, user_id: int, chat_id: int, message_id: int) -> None:
        """Delete a message as a user; bots get no update for that, as in Telegram."""
        chat = self.chats[chat_id]
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise SandboxError(f"no message {message_id}")
        self.delete_message(chat, stored)

    def user_press(
        self: TelegramEmulator, user_id: int, chat_id: int, message_id: int, data: str
    ) -> str:
        """Send a callback query as if ``user_id`` pressed a button with ``data``; return its id.

        The button is not looked up: a modified client can send any data, so bots must not
        trust it. Use ``press_button`` to press a button that is really there.
        """
        user = self.users[user_id]
        chat = self.chats[chat_id]
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            message: dict[str, Any] = {
                "chat": self.chat_summary(chat),
                "message_id": message_id,
                "date": 0,
            }
        else:
            message = stored.data
        query_id = str(secrets.randbits(63))
        self._queries[query_id] = {
            "user_id": user.id,
            "date": self.now(),
            "answered": False,
        }
        self._enqueue(
            "callback_query",
            {
                "id": query_id,
                "from": user.to_dict(),
                "message": message,
                "chat_instance": str((chat.id * 2654435761) % (2**63)),
                "data": data,
            },
        )
        return query_id

    def press_button(
        self: TelegramEmulator, user_id: int, chat_id: int, message_id: int, label_or_data: str
    ) -> str:
        """Press the inline button whose text or callback_data matches; return the query id."""
        stored = self.chats[chat_id].messages.get(message_id)
        if stored is None or stored.deleted:
            raise SandboxError(f"no message {message_id} in chat {chat_id}")
        for row in stored.data.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                if label_or_data in (button.get("text"), button.get("callback_data")):
                    if "callback_data" not in button:
                        raise SandboxError(f"button {label_or_data!r} is not a callback button")
                    return self.user_press(user_id, chat_id, message_id, button["callback_data"])
        raise SandboxError(f"no button {label_or_data!r} on message {message_id}")

    def press_reply_button(
        self: TelegramEmulator, user_id: int, label: str, chat_id: int | None = None
    ) -> dict[str, Any]:
        """Tap a reply-keyboard button as ``user_id``: sends its text, or shares the contact."""
        chat = self._chat_for(self.users[user_id], chat_id)
        keyboard = chat.reply_keyboard
        for row in (keyboard or {}).get("keyboard", []):
            for button in row:
                text = button if isinstance(button, str) else button.get("text")
                if text != label:
                    continue
                if keyboard and keyboard.get("one_time_keyboard"):
                    chat.reply_keyboard = None
                if isinstance(button, dict) and button.get("request_contact"):
                    return self.user_share_contact(user_id, chat_id=chat_id)
                return self.user_send(user_id, label, chat_id=chat_id)
        raise SandboxError(f"no reply keyboard button {label!r} in chat {chat.id}")

    def user_create_topic(self: TelegramEmulator, user_id: int, chat_id: int, name: str) -> int:
        """Create a forum topic as ``user_id``; return its thread id."""
        chat = self.chats[chat_id]
        user = self.users[user_id]
        topic, stored = self.create_topic(chat, name, user)
        if self._bot_sees(chat, stored):
            self._enqueue("message", stored.data)
        return topic.thread_id

    def _user_topic(self: TelegramEmulator, chat_id: int, thread_id: int) -> Topic:
        topic = self.chats[chat_id].topics.get(thread_id)
        if topic is None or topic.deleted:
            raise SandboxError(f"no topic {thread_id} in chat {chat_id}")
        return topic

    def _admin(self: TelegramEmulator, chat: SandboxChat, by_user_id: int | None) -> SandboxUser:
        if by_user_id is not None:
            return self.users[by_user_id]
        for user_id, status in chat.members.items():
            if status in ("creator", "administrator"):
                return self.users[user_id]
        return SandboxUser(id=777000, first_name="Telegram")

    def user_close_topic(
        self: TelegramEmulator, chat_id: int, thread_id: int, by_user_id: int | None = None
    ) -> None:
        """Close a topic as an admin; the bot sees the ``forum_topic_closed`` message."""
        self._user_set_closed(chat_id, thread_id, True, by_user_id)

    def user_reopen_topic(
        self: TelegramEmulator, chat_id: int, thread_id: int, by_user_id: int | None = None
    ) -> None:
        """Reopen a topic as an admin; the bot sees the ``forum_topic_reopened`` message."""
        self._user_set_closed(chat_id, thread_id, False, by_user_id)

    def _user_set_closed(
        self: TelegramEmulator, chat_id: int, thread_id: int, closed: bool, by: int | None
    ) -> None:
        chat = self.chats[chat_id]
        topic = self._user_topic(chat_id, thread_id)
        if topic.closed == closed:
            return
        topic.closed = closed
        key = "forum_topic_closed" if closed else "forum_topic_reopened"
        stored = self.topic_service(chat, topic, self._admin(chat, by), {key: {}})
        if self._bot_sees(chat, stored):
            self._enqueue("message", stored.data)

    def user_delete_topic(self: TelegramEmulator, chat_id: int, thread_id: int) -> None:
        """Delete a topic as an admin; bots get no update, later sends fail."""
        self.delete_topic(self.chats[chat_id], self._user_topic(chat_id, thread_id))

    # ----------------------------------------------------------------- observing

    def message(self: TelegramEmulator, chat_id: int, message_id: int) -> StoredMessage:
        """Return the stored message (with deleted flag and edit count)."""
        return self.chats[chat_id].messages[message_id]

    def chat_messages(
        self: TelegramEmulator,
        chat_id: int,
        thread_id: int | None = None,
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """Return a chat's messages in order, the bot's and the users'; optionally one topic."""
        chat = self.chats.get(chat_id)
        if chat is None:
            return []
        return [
            stored.data
            for stored in sorted(chat.messages.values(), key=lambda s: s.message_id)
            if (include_deleted or not stored.deleted)
            and (thread_id is None or stored.thread_id == thread_id)
        ]

    def bot_messages(
        self: TelegramEmulator, chat_id: int, thread_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Return the bot's visible messages in a chat, oldest first."""
        return [
            data
            for data in self.chat_messages(chat_id, thread_id)
            if data.get("from", {}).get("id") == self.bot.id
        ]

    def last_bot_message(self: TelegramEmulator, chat_id: int) -> dict[str, Any]:
        """Return the bot's latest visible message in a chat."""
        messages = self.bot_messages(chat_id)
        if not messages:
            raise SandboxError(f"the bot has sent nothing visible to chat {chat_id}")
        return messages[-1]

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[list[str]]:
        """Return the inline button labels of a message, row by row."""
        rows = message.get("reply_markup", {}).get("inline_keyboard", [])
        return [[button["text"] for button in row] for row in rows]

    def reply_keyboard(self: TelegramEmulator, chat_id: int) -> list[list[str]] | None:
        """Return the reply keyboard the user currently sees in a chat, or None."""
        keyboard = self.chats[chat_id].reply_keyboard
        if keyboard is None:
            return None
        return [
            [b if isinstance(b, str) else b["text"] for b in row] for row in keyboard["keyboard"]
        ]

    def my_commands(
        self: TelegramEmulator,
        scope: dict[str, Any] | None = None,
        language_code: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return the commands set for exactly this scope and language pair."""
        return self.commands.get((self._scope_key(scope), language_code or ""), [])

    def command_menu(
        self: TelegramEmulator, user_id: int, chat_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Return the command menu ``user_id`` sees, resolved like the Telegram apps do."""
        user = self.users[user_id]
        language = (user.language_code or "").split("-")[0]
        if chat_id is None or chat_id == user_id:
            scopes = [
                {"type": "chat", "chat_id": user_id},
                {"type": "all_private_chats"},
                {"type": "default"},
            ]
        else:
            chat = self.chats[chat_id]
            admin = chat.members.get(user_id) in ("creator", "administrator")
            scopes = [
                {"type": "chat_member", "chat_id": chat_id, "user_id": user_id},
                *([{"type": "chat_administrators", "chat_id": chat_id}] if admin else []),
                {"type": "chat", "chat_id": chat_id},
                *([{"type": "all_chat_administrators"}] if admin else []),
                {"type": "all_group_chats"},
                {"type": "default"},
            ]
        for scope in scopes:
            for code in (language, ""):
                key = (self._scope_key(scope), code)
                if key in self.commands:
                    return self.commands[key]
        return []

    def topics(self: TelegramEmulator, chat_id: int) -> dict[int, dict[str, Any]]:
        """Return a forum's topics by thread id: name, closed, deleted."""
        return {
            thread_id: {"name": t.name, "closed": t.closed, "deleted": t.deleted}
            for thread_id, t in self.chats[chat_id].topics.items()
        }
