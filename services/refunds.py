"""The refund poller: users are told when a refund they asked for changes status.

A scheduled job (and the target of the wallet's webhook). It runs in every process that runs
the bot (one per database: the instance lock); its cursor is persisted and each change is
queued once (a dedupe key), so a restart neither misses nor repeats a change.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from tgbot import facts
from tgbot.backend.base import NotEligible, NotFound, RefundChange, Transaction, Unavailable
from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.lanes import Lane
from tgbot.text import escape, truncate

from .wording import destination, translator_for, tx_title

_LOGGER = logging.getLogger(__name__)


NOTIFY = {
    # Only for refunds made outside the bot: one made here was confirmed in the chat.
    "submitted": N_(
        "🧾 A refund of {amount} for your payment to {merchant} was requested on your U-Pay "
        "account (reference {id}). If you did not ask for it, tap /human."
    ),
    "reviewing": N_(
        "🔎 Your refund of {amount} for {merchant} is being reviewed (reference {id}). "
        "{refund_review}"
    ),
    "approved": N_(
        "✅ Your refund of {amount} for {merchant} was approved (reference {id}). It goes back "
        "to {destination}. {refund_arrival}"
    ),
    "rejected": N_(
        "❌ Your refund of {amount} for {merchant} was rejected (reference {id}). Tap /human if "
        "you want an agent to look at it."
    ),
    "refunded": N_(
        "💰 Your refund of {amount} for {merchant} is done (reference {id}): the money went "
        "back to {destination}."
    ),
}


NOTICE_IN_TICKET = N_("🔔 An automatic update from U-Pay (not from the agent you are talking to):")


REASON_LIMIT = 200


async def _payments_of(backend: Any, account_id: str, tx_ids: list[str]) -> dict[str, Transaction]:
    """Return the payments refunds were made for (to name their merchant and where the
    money goes back); those the wallet cannot give now are left out."""
    found: dict[str, Transaction] = {}
    for tx_id in dict.fromkeys(tx_ids):
        try:
            found[tx_id] = await backend.get_transaction(account_id, tx_id)
        except (NotFound, Unavailable):
            continue
    return found


async def poll_refunds(context: BotContext) -> int:
    """Job: tell users about status changes of their refunds; return how many were queued.

    The wallet's change feed lists every status change of every account's refunds; the
    cursor is persisted, and each (refund, status) is queued once (a dedupe key), so a
    restart neither misses nor repeats a change. Refunds made outside the bot are told to
    the user linked to their account.
    """
    app = context.application
    # The job and the wallet's webhook both poll: one at a time, so a slow answer about an
    # older status never lands after a newer one.
    async with app.refund_poll_lock:
        return await _poll_refunds(context)


async def _poll_refunds(context: BotContext) -> int:
    app = context.application
    repos = app.repos
    cursor = await repos.settings.get(FEED_CURSOR)
    queued = 0
    for _ in range(FEED_MAX_PAGES):  # a backlog is read over several polls, not in one go
        try:
            page = await app.backend.refund_changes(cursor, FEED_PAGE_SIZE)
        except NotEligible as exc:  # cursor_expired / invalid_cursor: start from 24 h ago
            _LOGGER.warning("Refund feed refused the cursor (%s); starting again", exc.reason)
            await repos.settings.delete(FEED_CURSOR)
            return queued
        except Unavailable:
            _LOGGER.warning("Refund poll: the wallet is unavailable; trying again later")
            return queued
        for change in page.changes:
            told = await _tell_change(context, change)
            if told is None:  # not recorded by its flow yet: read it again next time
                if cursor is not None:
                    await repos.settings.set(FEED_CURSOR, cursor)
                return queued
            queued += told
            cursor = change.cursor
        cursor = page.next_cursor or cursor
        if cursor is not None:
            await repos.settings.set(FEED_CURSOR, cursor)
        if not page.has_more:
            break
    return queued


async def _tell_change(context: BotContext, change: RefundChange) -> int | None:
    """Queue the notice of one change for the user(s) it concerns; return how many were
    queued, or None to hold the feed here (a refund its flow is about to record)."""
    app = context.application
    repos = app.repos
    refund = change.refund
    record = await repos.refunds.get(refund.id)
    if record is None:
        if (
            change.status == "submitted"
            and change.changed_at > datetime.now(UTC) - UNRECORDED_GRACE
        ):
            # Created a moment ago, maybe through the bot and not recorded by its flow yet.
            return None
        linked = await repos.users.linked_to(refund.account_id)
        if not linked:
            return 0  # nobody here is linked to this account
        # Made outside the bot (the app, an agent): the linked user is told of it too.
        await repos.refunds.record(
            refund.id, linked[0], refund.account_id, refund.transaction_id, refund.amount,
            refund.currency, truncate(refund.reason, REASON_LIMIT), OUTSIDE_STATUS,
        )  # fmt: skip
        record = await repos.refunds.get(refund.id)
        assert record is not None
    if change.status not in NOTIFY or not await repos.refunds.advance(refund.id, change.status):
        return 0
    context.tr = await translator_for(context, record.user_id)
    tx = (await _payments_of(app.backend, refund.account_id, [refund.transaction_id])).get(
        refund.transaction_id
    )
    text = context._(NOTIFY[change.status]).format(
        id=escape(refund.id),
        amount=context.tr.money(refund.amount, refund.currency),
        merchant=tx_title(context, tx) if tx else escape(refund.transaction_id),
        destination=destination(context, tx),
        **facts.values(context.tr),
    )
    if await repos.tickets.open_for_user(record.user_id) is not None:
        # The user is talking to an agent: say this is not the agent's message.
        text = f"{context._(NOTICE_IN_TICKET)}\n{text}"
    await app.outbox.enqueue(
        record.user_id,
        "sendMessage",
        {"text": text},
        lane=Lane.NOTIFY,
        kind="refund_status",
        dedupe_key=f"refund:{refund.id}:{change.status}",
    )
    return 1


#: How long a refund the wallet reports may stay unknown to the bot before it counts as
#: made outside the bot: its flow records it right after creating.
UNRECORDED_GRACE = timedelta(seconds=30)


#: The status recorded for a refund first seen in the feed (before any status was told).
OUTSIDE_STATUS = "seen"


#: Where the refund poller got to in the wallet's change feed (persisted: a restart neither
#: misses nor repeats a change).
FEED_CURSOR = "refunds.feed_cursor"


FEED_PAGE_SIZE = 100


FEED_MAX_PAGES = 20
