"""The queue refresher: waiting users see their place in the queue and the expected wait.

A scheduled job; it runs in every process that runs the bot (one per database: the
instance lock), every 30 seconds.
"""

from __future__ import annotations

from tgbot.context import BotContext
from tgbot.lanes import Lane

from .tickets import TICKET_OPENED, end_keyboard, queue_text
from .wording import translator_for


async def refresh_queue(context: BotContext) -> None:
    """Job: update each waiting user's queue position and wait when it moved a minute+."""
    app = context.application
    for ticket in await app.repos.tickets.open_tickets():
        if ticket.status != "open" or ticket.queue_message_id is None:
            continue
        context.tr = await translator_for(context, ticket.user_id)
        queue, eta = await queue_text(context, ticket)
        if ticket.queue_eta_minutes is not None and abs(eta - ticket.queue_eta_minutes) < 1:
            continue
        text = context._(TICKET_OPENED).format(code=ticket.code) + "\n\n" + queue
        async with app.repos.db.transaction():
            # Claimed or closed while this job went through the list: no queue line then.
            current = await app.repos.tickets.get(ticket.id)
            if current is None or current.status != "open":
                continue
            await app.outbox.enqueue(
                ticket.user_id,
                "editMessageText",
                {
                    "message_id": ticket.queue_message_id,
                    "text": text,
                    "reply_markup": end_keyboard(context).to_dict(),
                },
                lane=Lane.NOTIFY,
                kind="queue_update",
            )
            await app.repos.tickets.set_queue_message(ticket.id, ticket.queue_message_id, eta)
