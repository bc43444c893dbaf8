"""The broadcaster: feeds running broadcasts into the outbox and reports their progress.

Long-lived: one per process (``app.broadcaster``), started with the application; a broadcast
resumes after a restart where it stopped (its recipients' states are in the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import Forbidden, TelegramError

from storage import Broadcast, OutboxItem, Repositories
from tgbot.i18n import N_, translator
from tgbot.keyboard import Keyboard
from tgbot.lanes import Lane
from tgbot.outbox import OutboxWorker

_LOGGER = logging.getLogger(__name__)


#: Recipients queued in the outbox at a time (memory and table flat in the audience size).
WINDOW = 200


PROGRESS_EVERY = 5.0


class Broadcaster:
    """Feeds running broadcasts into the outbox's broadcast lane and reports progress."""

    def __init__(self, application: Any, repos: Repositories, outbox: OutboxWorker) -> None:
        self._app = application
        self._repos = repos
        self._outbox = outbox
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._last_progress: dict[int, float] = {}
        self._recalled: dict[int, bool] = {}  # broadcast id -> recalled (read once, kept)
        #: Several workers share the database: a recall may come from another process, so
        #: "not recalled" is never kept (read again for each delivered notice).
        self.shared = False
        outbox.on_sent("broadcast", self._sent)
        outbox.on_failed("broadcast", self._failed)

    async def start(self) -> None:
        """Resume running broadcasts (after a crash too) and wait for new ones."""
        self._task = asyncio.create_task(self._run(), name="broadcaster")

    async def stop(self) -> None:
        """Stop feeding (a broadcast resumes at the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Look at the broadcasts now."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                busy = False
                for broadcast in await self._repos.broadcasts.with_status("running"):
                    busy |= await self._feed(broadcast)
                if not busy:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                else:
                    await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.exception("Broadcaster error; retrying in a second")
                await asyncio.sleep(1.0)

    async def _feed(self, broadcast: Broadcast) -> bool:
        """Keep up to WINDOW recipients queued; finish when nobody is left. True if busy."""
        # Index lookups only: a full count of 100,000 recipients five times a second kept
        # the database thread busy (and every reply's database work waiting behind it).
        queued = await self._repos.broadcasts.count_queued(broadcast.id)
        batch: list[tuple[int, str]] = []
        if queued < WINDOW:
            # Pick and queue in one transaction that first re-reads the status: a pause or a
            # cancel committed meanwhile must not be followed by a batch of sends.
            async with self._repos.db.transaction():
                current = await self._repos.broadcasts.get(broadcast.id)
                if current is None or current.status != "running":
                    return False
                batch = await self._repos.broadcasts.next_pending(broadcast.id, WINDOW - queued)
                if batch:
                    # The re-read row: a pause and resume meanwhile changed the round.
                    items = [self._item(current, uid, language) for uid, language in batch]
                    await self._repos.outbox.enqueue_many(items)
                    await self._repos.broadcasts.mark(
                        broadcast.id, [user_id for user_id, _ in batch], "queued"
                    )
            if batch:
                self._outbox.wake()
        if not batch and not await self._repos.broadcasts.has_unsent(broadcast.id):
            if await self._repos.broadcasts.set_status(
                broadcast.id, "done", expect=("running",), finished_at=time.time()
            ):
                counts = await self._repos.broadcasts.counts(broadcast.id)
                await self._repos.audit.record(None, "broadcast.done", broadcast.id, counts)
            await self.report(broadcast.id, force=True)
            return False
        await self.report(broadcast.id)
        return True

    def _item(self, broadcast: Broadcast, user_id: int, language: str) -> dict[str, Any]:
        text = broadcast.text_zh if language == "zh_Hans" else broadcast.text_en
        text = text or broadcast.text_en or broadcast.text_zh or ""
        params: dict[str, Any] = {"chat_id": user_id, "text": text}
        if broadcast.link_url:
            label = translator(language).gettext(N_("🔗 Read more"))
            params["reply_markup"] = {
                "inline_keyboard": [[{"text": label, "url": broadcast.link_url}]]
            }
        if self._app.config.paid_broadcast:
            params["allow_paid_broadcast"] = True
        return {
            "lane": int(Lane.BROADCAST),
            "chat_id": user_id,
            "method": "sendMessage",
            "params": params,
            "kind": "broadcast",
            "ref": str(broadcast.id),
            # The round changes on resume: recipients put back by a pause are queued anew.
            "dedupe_key": f"broadcast:{broadcast.id}:{broadcast.round}:{user_id}",
        }

    async def _sent(self, item: OutboxItem, result: Any) -> None:
        broadcast_id = int(item.ref or 0)
        message_id = getattr(result, "message_id", None)
        recalled = self._recalled.get(broadcast_id) if message_id is not None else False
        if recalled is None:
            # Read before the recipient is written: the broadcast first, then its recipients,
            # as a cancel or a pause locks them (on PostgreSQL the opposite order deadlocks).
            # Inside the hook's transaction this read locks the broadcast (PostgreSQL): a
            # recall committing meanwhile, in any worker, is either seen here or sees this
            # delivery in the sent messages it deletes.
            broadcast = await self._repos.broadcasts.get(broadcast_id)
            recalled = bool(broadcast and broadcast.recalled_at)
            if recalled or not self.shared:  # one process: only its own cancel recalls
                self._recalled[broadcast_id] = recalled
        await self._repos.broadcasts.delivered(broadcast_id, item.chat_id, message_id)
        if recalled:
            # In flight when the recall read the sent messages: delete this one too.
            await self._repos.outbox.enqueue_many(
                self._deletes(broadcast_id, [(item.chat_id, message_id)])
            )
            self._outbox.wake()

    @staticmethod
    def _deletes(broadcast_id: int, sent: list[tuple[int, int]]) -> list[dict[str, Any]]:
        return [
            {
                "lane": int(Lane.BROADCAST),
                "chat_id": user_id,
                "method": "deleteMessage",
                "params": {"chat_id": user_id, "message_id": message_id},
                "kind": "broadcast_recall",
                "ref": str(broadcast_id),
                "dedupe_key": f"recall:{broadcast_id}:{user_id}",
            }
            for user_id, message_id in sent
        ]

    async def _failed(self, item: OutboxItem, error: Exception) -> None:
        broadcast_id = int(item.ref or 0)
        if isinstance(error, Forbidden):
            # Blocked or deactivated: skipped from now on, until they /start again.
            await self._repos.users.set_blocked(item.chat_id, True)
            await self._repos.broadcasts.mark(broadcast_id, [item.chat_id], "blocked")
        else:
            await self._repos.broadcasts.mark(broadcast_id, [item.chat_id], "failed")

    async def pause(self, broadcast_id: int) -> bool:
        """Stop sending; queued messages go back to pending."""
        async with self._repos.db.transaction():  # no send is claimed halfway through
            if not await self._repos.broadcasts.set_status(
                broadcast_id, "paused", expect=("running",)
            ):
                return False
            await self._repos.outbox.cancel_pending("broadcast", str(broadcast_id))
            await self._repos.broadcasts.reset_queued(broadcast_id)
        await self.report(broadcast_id, force=True)
        return True

    async def resume(self, broadcast_id: int) -> bool:
        """Go on sending where it stopped."""
        broadcast = await self._repos.broadcasts.get(broadcast_id)
        if broadcast is None or not await self._repos.broadcasts.set_status(
            broadcast_id, "running", expect=("paused",), round=broadcast.round + 1
        ):
            return False
        self.wake()
        await self.report(broadcast_id, force=True)
        return True

    async def cancel(self, broadcast_id: int, *, recall: bool = False) -> bool:
        """Stop for good; nobody else gets it. With ``recall``, also mark it recalled in the
        same transaction, so every send still in flight deletes itself once delivered."""
        try:
            async with self._repos.db.transaction():  # no send is claimed halfway through
                stopped = await self._repos.broadcasts.set_status(
                    broadcast_id,
                    "cancelled",
                    expect=("running", "paused", "awaiting_approval"),
                    finished_at=time.time(),
                )
                if stopped:
                    await self._repos.outbox.cancel_pending("broadcast", str(broadcast_id))
                    await self._repos.broadcasts.cancel_pending(broadcast_id)
                if recall:
                    await self._repos.broadcasts.mark_recalled(broadcast_id)
                    # Before the commit: no on-sent hook runs between it and this line.
                    self._recalled[broadcast_id] = True
        except BaseException:
            if recall:
                self._recalled.pop(broadcast_id, None)  # rolled back: read it again
            raise
        if stopped:
            await self.report(broadcast_id, force=True)
        return stopped

    async def recall(self, broadcast_id: int) -> int:
        """Delete a sent broadcast from users' chats (Telegram allows 48 hours)."""
        await self.cancel(broadcast_id, recall=True)
        count, after = 0, 0
        while True:
            batch = await self._repos.broadcasts.sent_messages(broadcast_id, after, 500)
            if not batch:
                return count
            await self._repos.outbox.enqueue_many(self._deletes(broadcast_id, batch))
            self._outbox.wake()
            count += len(batch)
            after = batch[-1][0]

    async def start_broadcast(self, broadcast_id: int, approved_by: int | None) -> int | None:
        """Snapshot the audience and start sending; return the recipient count, or None if
        it was no longer waiting to start (rejected or cancelled meanwhile)."""
        broadcast = await self._repos.broadcasts.get(broadcast_id)
        if broadcast is None or broadcast.status not in ("draft", "awaiting_approval"):
            return None
        # The audience is snapshot first, in short writes (see add_recipients), while the
        # broadcast still waits: the feeder never sees it running with half its recipients.
        await self._repos.broadcasts.add_recipients(
            broadcast_id, broadcast.audience, self._app.config.default_language
        )
        async with self._repos.db.transaction():
            if not await self._repos.broadcasts.set_status(
                broadcast_id,
                "running",
                expect=("draft", "awaiting_approval"),
                started_at=time.time(),
                approved_by=approved_by,
            ):
                await self._repos.broadcasts.drop_unstarted_recipients(broadcast_id)
                return None
            total = (await self._repos.broadcasts.get(broadcast_id)).total
        await self._repos.audit.record(
            approved_by or broadcast.created_by, "broadcast.start", broadcast_id, {"total": total}
        )
        self.wake()
        return total

    async def report(self, broadcast_id: int, force: bool = False) -> None:
        """Edit the admin's progress message (at most every few seconds unless forced)."""
        now = time.monotonic()
        if not force and now - self._last_progress.get(broadcast_id, 0) < PROGRESS_EVERY:
            return
        self._last_progress[broadcast_id] = now
        broadcast = await self._repos.broadcasts.get(broadcast_id)
        if broadcast is None or broadcast.progress_message_id is None:
            return
        text, markup = await progress_view(self._app, broadcast)
        try:
            await self._app.bot.edit_message_text(
                text,
                chat_id=broadcast.progress_chat_id,
                message_id=broadcast.progress_message_id,
                reply_markup=markup,
            )
        except TelegramError as exc:
            if "not modified" not in str(exc).lower():
                _LOGGER.info("Could not update broadcast progress: %s", exc)


async def progress_view(app: Any, broadcast: Broadcast) -> tuple[str, InlineKeyboardMarkup]:
    """Return the progress text and buttons of a broadcast, in the default language."""
    tr = translator(app.config.default_language)
    counts = await app.repos.broadcasts.counts(broadcast.id)
    remaining = counts.get("pending", 0) + counts.get("queued", 0)
    eta = ""
    if broadcast.status == "running" and remaining:
        eta = tr.gettext(ETA).format(
            minutes=max(1, round(remaining / app.config.broadcast_rate / 60))
        )
    status_name = STATUS_NAMES.get(broadcast.status, STATUS_NAMES["running"])
    text = tr.gettext(PROGRESS).format(
        id=broadcast.id,
        status=tr.gettext(status_name),
        sent=counts.get("sent", 0),
        failed=counts.get("failed", 0),
        blocked=counts.get("blocked", 0),
        remaining=remaining,
        total=broadcast.total,
        eta=eta,
    )
    row = []
    if broadcast.status == "running":
        row.append(
            InlineKeyboardButton(tr.gettext(PAUSE_LABEL), callback_data=f"bc:pause:{broadcast.id}")
        )
    if broadcast.status == "paused":
        row.append(
            InlineKeyboardButton(
                tr.gettext(RESUME_LABEL), callback_data=f"bc:resume:{broadcast.id}"
            )
        )
    if broadcast.status in ("running", "paused"):
        row.append(
            InlineKeyboardButton(
                tr.gettext(CANCEL_LABEL), callback_data=f"bc:cancel:{broadcast.id}"
            )
        )
    if broadcast.status in ("done", "cancelled", "running", "paused") and not broadcast.recalled_at:
        row.append(
            InlineKeyboardButton(
                tr.gettext(RECALL_LABEL), callback_data=f"bc:recall:{broadcast.id}"
            )
        )
    return text, Keyboard([row] if row else [])


PROGRESS = N_(
    "📣 Broadcast #{id}: {status}\n"
    "Sent {sent}, failed {failed}, blocked {blocked}, remaining {remaining} of {total}.{eta}"
)


ETA = N_(" About {minutes} min left.")


STATUS_NAMES = {
    "running": N_("sending"),
    "paused": N_("paused"),
    "cancelled": N_("cancelled"),
    "done": N_("finished"),
    "awaiting_approval": N_("waiting for approval"),
}


PAUSE_LABEL = N_("⏸ Pause")


RESUME_LABEL = N_("▶️ Resume")


CANCEL_LABEL = N_("⏹ Cancel")


RECALL_LABEL = N_("🗑 Recall")
