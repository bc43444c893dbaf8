"""Housekeeping jobs the application schedules (PTB's job queue).

Each runs in every process that runs the bot (one per database: the instance lock), on the
interval the assembly gives it. The refund poller (:mod:`services.refunds`) and the queue
refresher (:mod:`services.queue`) are scheduled jobs too; the flow-timeout sweep belongs to
the flows' lifecycle (``handlers.core.expire_flows``).
"""

from __future__ import annotations

import time

from tgbot.context import BotContext

#: Done inbox rows are kept this long (Telegram re-sends at most 24 h of backlog).
INBOX_RETENTION = 3 * 24 * 3600.0


async def check_groups(context: BotContext) -> None:
    """Re-check the agents' groups (rights can be taken away at any time)."""
    await context.application.desk.check_groups()


async def remind_unclaimed(context: BotContext) -> None:
    """Remind agents of tickets nobody claimed in time."""
    await context.application.desk.remind_unclaimed()


async def prune_inbox(context: BotContext) -> None:
    """Forget handled updates older than Telegram's replay window."""
    app = context.application
    await app.repos.inbox.prune(time.time() - INBOX_RETENTION)


async def purge(context: BotContext) -> None:
    """Forget what is older than the retention settings (privacy)."""
    await context.application.privacy.purge()
