"""The support desk: topics, relays both ways, closing, health of the agents' groups.

Every relayed message is a transcript line in the database before it is handed to the
durable outbox, and the outbox's hooks record where it landed (the message-id map that keeps
reply threading and agents' edits). A topic that was deleted or closed by hand is recreated
and the messages that bounced are relayed again. Relays into one group share Telegram's
20-a-minute budget; while texts wait for it, consecutive user texts are coalesced into one
message.

Long-lived: one desk per process (``app.desk``), started with the application; it keeps
in-memory state (album timers, the group health seen last, the text a later one may join),
so it runs in every process that runs the bot (one per database: the instance lock).

The parts, one responsibility each: :mod:`.groups` (group health and routing),
:mod:`.topics` (topics and header cards), :mod:`.relays` (messages both ways),
:mod:`.closing` (claim, close, rate, reopen, remind); :mod:`.texts` holds the words.
"""

from __future__ import annotations

import asyncio

from telegram import Bot

from storage import Repositories
from tgbot.config import Config
from tgbot.outbox import OutboxWorker

from .closing import Closing
from .groups import GroupHealth
from .relays import Relays
from .texts import describe_context, group_translator
from .topics import Topics

__all__ = ["SupportDesk", "describe_context", "group_translator"]


class SupportDesk(GroupHealth, Topics, Relays, Closing):
    """Ticket topics and relays; one per application (``app.desk``)."""

    def __init__(self, bot: Bot, repos: Repositories, outbox: OutboxWorker, config: Config):
        self._bot = bot
        self._repos = repos
        self._outbox = outbox
        self._config = config
        self._health: dict[int, str | None] = {}
        self._moves: dict[int, int] = {}
        self._rr = 0
        self._album_timers: dict[tuple[int, str], asyncio.TimerHandle] = {}
        self._reported: set[tuple[int, int]] = set()
        #: (ticket, message id) -> the message it replies to, until the relay is queued
        #: (negative ids: agents' messages).
        self._reply_hint: dict[tuple[int, int], int] = {}
        #: ticket -> its last queued user-text relay, which later texts may join.
        self._last_text: dict[int, int] = {}
        self._tasks: set[asyncio.Task] = set()
        outbox.on_sent("ticket_topic", self._topic_created)
        outbox.on_sent("ticket_header", self._header_posted)
        outbox.on_failed("ticket_topic", self._topic_failed)
        outbox.on_sent("relay_in", self._relayed_in)
        outbox.on_failed("relay_in", self._relay_in_failed)
        outbox.on_sent("relay_out", self._relayed_out)
        outbox.on_failed("relay_out", self._relay_out_failed)

    async def start(self) -> None:
        """Load group moves, check the groups, and relay whatever waited over a restart."""
        self._moves = await self._repos.tickets.group_moves()
        await self.check_groups()
        for ticket_id in await self._repos.tickets.tickets_with_unrelayed():
            ticket = await self._repos.tickets.get(ticket_id)
            if ticket is not None:
                await self.flush(ticket, "in")
                await self.flush(ticket, "out")
