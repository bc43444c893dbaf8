"""State the emulator keeps: users, chats, topics, messages, files, caps and faults."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """A Bot API error answer: HTTP status, Telegram's description, optional retry_after."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        """Keep the status, description and optional retry_after for the envelope."""
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def envelope(self) -> dict[str, Any]:
        """Return the JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(text: str) -> ApiError:
    """Return a 400 error with ``Bad Request: <text>``."""
    return ApiError(400, f"Bad Request: {text}")


def forbidden(text: str) -> ApiError:
    """Return a 403 error with ``Forbidden: <text>``."""
    return ApiError(403, f"Forbidden: {text}")


class SimulatedTimeout(Exception):
    """An injected fault: the call gets no answer; ``performed`` says if it took effect."""

    def __init__(self, performed: bool) -> None:
        """Remember whether the action was carried out before the answer was lost."""
        super().__init__("simulated timeout")
        self.performed = performed


class SandboxError(Exception):
    """A user action the Telegram app would not allow (e.g. writing into a closed topic)."""


@dataclass
class Caps:
    """Telegram's flood limits; over a cap the call gets 429 with retry_after.

    Telegram's statements: about one message a second in one chat (short bursts tolerated,
    edits count), 20 a minute in one group (creating a topic counts), and about 30 a second
    for *bulk* notifications to many users; no global limit otherwise. Which sends Telegram
    counts as bulk is not documented; the emulator's model: a message into a private chat
    whose user sent the bot an update within ``reply_window`` seconds answers that user and
    is not bulk; any other message into a private chat is. ``reply_window=0`` counts every
    send, group ones included, against ``overall_per_second`` (the old, stricter model).

    Attributes:
        overall_per_second: bulk messages in any one second.
        per_group_per_minute: messages into one group in any sliding ``group_window``.
        group_window: seconds of that window (60: Telegram's minute; tests shrink it).
        per_private_chat_per_second: the refill rate of a private chat's burst.
        private_chat_burst: messages a private chat may get at once.
        reply_window: see above.
        edits_count: edits (and topic creation) count like sends.
        enabled: False switches every cap off.
    """

    overall_per_second: int = 30
    per_group_per_minute: int = 20
    per_private_chat_per_second: float = 1.0
    private_chat_burst: int = 3
    group_window: float = 60.0
    reply_window: float = 60.0
    edits_count: bool = True
    enabled: bool = True


@dataclass
class Faults:
    """Faults injected into Bot API calls; tests may change them at any time.

    Attributes:
        latency: seconds added to every affected call.
        rate_429: fraction of calls answered 429 Too Many Requests.
        rate_5xx: fraction of calls answered 500 Internal Server Error.
        rate_timeout: fraction of calls that never get an answer.
        timeout_after_delivery: fraction of those timed-out calls that still took effect.
        timeout_hold: seconds the HTTP server holds a timed-out call before dropping it.
        retry_after: the retry_after value of injected 429 answers.
        webhook_answers_lost: how many of the next webhook deliveries lose the bot's answer
            on the way back (the bot got and answered the update; Telegram saw no answer
            and delivers the same update again, as it does).
        methods: affected methods; empty means every method except getUpdates.
        chats: chats whose calls get the injected errors (429, 5xx, timeouts); empty means
            every chat. Latency is added regardless.
        rng: the random source, seeded for repeatable runs.
    """

    latency: float = 0.0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_timeout: float = 0.0
    timeout_after_delivery: float = 0.0
    timeout_hold: float = 30.0
    retry_after: int = 1
    webhook_answers_lost: int = 0
    methods: frozenset[str] = frozenset()
    chats: frozenset[int] = frozenset()
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def applies_to(self, method: str) -> bool:
        """Return whether faults are injected into ``method``."""
        if self.methods:
            return method in self.methods
        return method != "getUpdates"


@dataclass
class SandboxUser:
    """A Telegram account: a person (or another bot) the tests act as."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    phone_number: str | None = None
    is_bot: bool = False
    blocked_bot: bool = False
    deactivated: bool = False
    started: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the Telegram ``User`` object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass
class Topic:
    """A forum topic; its thread id is the id of its creation service message."""

    thread_id: int
    name: str
    icon_color: int = 7322096
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    deleted: bool = False
    creator_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the Telegram ``ForumTopic`` object."""
        data: dict[str, Any] = {
            "message_thread_id": self.thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            data["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return data


@dataclass
class StoredMessage:
    """A message as the chat shows it now, with what Telegram keeps about it."""

    data: dict[str, Any]
    sender_id: int
    deleted: bool = False
    edit_count: int = 0
    reply_keyboard: dict[str, Any] | None = None
    reactions: list[dict[str, Any]] = field(default_factory=list)
    pinned: bool = False

    @property
    def message_id(self) -> int:
        """Return the message id."""
        return self.data["message_id"]

    @property
    def thread_id(self) -> int | None:
        """Return the forum topic or reply thread the message belongs to."""
        return self.data.get("message_thread_id")

    @property
    def is_service(self) -> bool:
        """Return whether this is a service message (topic created, member joined...)."""
        return any(key in self.data for key in SERVICE_KEYS)


SERVICE_KEYS = (
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "new_chat_members",
    "left_chat_member",
    "group_chat_created",
    "pinned_message",
)


@dataclass
class SandboxChat:
    """A chat: private (id == user id), group, or (forum) supergroup."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    is_forum: bool = False
    user_id: int | None = None
    members: dict[int, str] = field(default_factory=dict)
    bot_status: str = "member"
    bot_rights: dict[str, bool] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    reply_keyboard: dict[str, Any] | None = None
    pinned_message_id: int | None = None

    def allocate_message_id(self) -> int:
        """Return the next message id of this chat."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    @property
    def bot_is_member(self) -> bool:
        """Return whether the bot is currently in the chat."""
        return self.bot_status in ("member", "administrator", "creator")

    @property
    def bot_is_admin(self) -> bool:
        """Return whether the bot is an administrator of the chat."""
        return self.bot_status in ("administrator", "creator")

    def bot_can(self, right: str) -> bool:
        """Return whether the bot holds administrator ``right`` here."""
        return self.bot_status == "creator" or (
            self.bot_status == "administrator" and self.bot_rights.get(right, False)
        )


@dataclass
class StoredFile:
    """An uploaded file: what getFile and the file URL give back."""

    file_id: str
    file_unique_id: str
    content: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None

    def to_file(self) -> dict[str, Any]:
        """Return the Telegram ``File`` object."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.content),
            "file_path": self.file_path,
        }
