"""Health of the agents' groups: forum, the bot's rights, id migrations, round robin,
and alerts to the admins."""

from __future__ import annotations

import logging
import time
from typing import Any

from telegram import ChatMemberAdministrator
from telegram.constants import ChatType
from telegram.error import ChatMigrated, TelegramError

from storage import Repositories
from tgbot.config import Config
from tgbot.lanes import Lane
from tgbot.outbox import OutboxWorker
from tgbot.text import escape

from .texts import (
    GROUP_PROBLEM,
    NO_DELETE_RIGHTS,
    NO_TOPIC_RIGHTS,
    NON_AGENT,
    NOT_A_FORUM,
    NOT_ADMIN,
    UNREACHABLE,
    group_translator,
)

_LOGGER = logging.getLogger(__name__)


class GroupHealth:
    """The agents' groups: which are usable, where a ticket goes, what the admins are told.

    A part of :class:`services.desk.SupportDesk`; the state it uses is set up there.
    """

    _bot: Any
    _repos: Repositories
    _outbox: OutboxWorker
    _config: Config

    def group_tr(self, chat_id: int | None) -> Any:
        """Return the translator of an agents' group (its team's language)."""
        return group_translator(self._config, chat_id)

    def current_id(self, chat_id: int) -> int:
        """Return the group's id now (following migrations)."""
        while chat_id in self._moves:
            chat_id = self._moves[chat_id]
        return chat_id

    def is_agent_group(self, chat_id: int) -> bool:
        """Return True for a configured agents' group (by its current id)."""
        return chat_id in {self.current_id(c) for c in self._config.agent_chat_ids}

    def is_healthy(self, chat_id: int) -> bool:
        """Return True unless the last check found a problem with the group."""
        return self._health.get(chat_id) is None

    def next_of(self, pool: list[int]) -> int:
        """Return the next group of ``pool`` in round-robin order."""
        self._rr += 1
        return pool[self._rr % len(pool)]

    async def check_groups(self) -> dict[int, str | None]:
        """Check every agents' group (forum, bot admin with topic and delete rights) and
        report problems to the admins; return the problems by group."""
        tr = group_translator(self._config)
        for configured in self._config.agent_chat_ids:
            chat_id = self.current_id(configured)
            problem = None
            try:
                chat = await self._bot.get_chat(chat_id)
                member = await self._bot.get_chat_member(chat_id, self._bot.id)
                if chat.type != ChatType.SUPERGROUP or not chat.is_forum:
                    problem = NOT_A_FORUM
                elif not isinstance(member, ChatMemberAdministrator):
                    problem = NOT_ADMIN
                elif not member.can_manage_topics:
                    problem = NO_TOPIC_RIGHTS
                elif not member.can_delete_messages:
                    problem = NO_DELETE_RIGHTS
            except ChatMigrated as moved:
                await self._repos.tickets.record_group_move(chat_id, moved.new_chat_id)
                self._moves[chat_id] = moved.new_chat_id
                await self._repos.audit.record(
                    None, "group.moved", chat_id, {"new_chat_id": moved.new_chat_id}
                )
                return await self.check_groups()
            except TelegramError as exc:
                _LOGGER.warning("Agents' group %s unreachable: %s", chat_id, exc)
                problem = UNREACHABLE
            was = self._health.get(chat_id, "unknown")
            self._health[chat_id] = problem
            if problem and problem != was:
                await self._tell_admins(
                    tr.gettext(GROUP_PROBLEM).format(chat=chat_id, problem=tr.gettext(problem)),
                    f"group:{chat_id}:{problem}:{int(time.time() // 3600)}",
                )
            if problem is None and was is not None:
                await self._give_topics()
        return dict(self._health)

    async def _give_topics(self) -> None:
        """Create the topics of tickets that waited for a healthy group."""
        for ticket in await self._repos.tickets.waiting_for_topic():
            group = ticket.group_chat_id
            if group is None or not self.is_healthy(group):
                healthy = [
                    c
                    for c in map(self.current_id, self._config.agent_chat_ids)
                    if self.is_healthy(c)
                ]
                if not healthy:
                    return
                group = self.next_of(healthy)
                await self._repos.tickets.set_group(ticket.id, group)
                ticket = await self._repos.tickets.get(ticket.id)
            user = await self._repos.users.get(ticket.user_id)
            await self.request_topic(ticket, user.first_name if user else str(ticket.user_id))

    async def _tell_admins(self, text: str, dedupe_key: str) -> None:
        for admin_id in sorted(self._config.admin_ids):
            await self._outbox.enqueue(
                admin_id,
                "sendMessage",
                {"text": escape(text)},
                lane=Lane.NOTIFY,
                kind="admin_alert",
                dedupe_key=f"{dedupe_key}:{admin_id}",
            )

    async def report_non_agent(self, chat_id: int, user_id: int, name: str) -> None:
        """Tell the admins (once) that someone off the roster writes in an agents' group."""
        if (chat_id, user_id) in self._reported:
            return
        self._reported.add((chat_id, user_id))
        tr = group_translator(self._config)
        await self._tell_admins(
            tr.gettext(NON_AGENT).format(name=name, user_id=user_id, chat=chat_id),
            f"nonagent:{chat_id}:{user_id}:{int(time.time() // 86400)}",
        )
