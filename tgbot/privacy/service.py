"""Erasing a user's data at their request (a job that survives restarts) and retention purges.

An erasure is a row in ``erasures`` that says which step it reached; every step can run again
after a crash without doing harm (Telegram's "already deleted", "not modified" answers count
as done), so a restart resumes it where it stood:

1. ``close``: close the user's open ticket, cancel sends not made yet, end their menus.
2. ``collect``: once nothing to or about them is in flight, note which of the bot's posts in
   the agents' topics carry their data (their relayed messages, the header cards) and which
   topics are theirs, before the records that say so go.
3. ``erase``: erase everything personal in storage in one transaction (see
   ``PrivacyRepository.erase_user``); records kept for accountability become anonymous.
4. ``delete_posts``: delete those posts (Telegram allows it for 48 hours; older ones stay).
5. ``close_topics``: rename each topic without the user's name, say "data deleted at the
   user's request" in it, and close it.
6. ``notify``: blank what the user sent meanwhile and tell them it is done.
7. ``finish``: the job keeps only counts and times; audited without content.
8. ``compact``: the database's write-ahead log is folded in and truncated, so no older copy
   of a deleted page stays on disk.

While an erasure runs, nothing from the user is recorded (the handlers' privacy gate answers
"being deleted" instead). Logs name the erasure, never the user.

Several workers (``application.cluster``): the gate asks the database (the erasure's row,
through a unique index on its user), read while the worker holds the user's chat; erasures
run on the worker that holds the duties lease, which picks up every unfinished one at each
renewal step (those other workers recorded, and those a worker left when it died), and the
steps that end the user's menus and erase their records hold the user's chat, so no update
of theirs is half-handled across them (a worker that read the data before the erasure could
otherwise write it back after).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from telegram import InlineKeyboardButton
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from storage import Repositories
from storage.repos.privacy import ERASURE_DONE, Erasure, UserTopic
from tgbot.i18n import LANGUAGES, N_, translator
from tgbot.keyboard import Keyboard
from tgbot.lanes import Lane

_LOGGER = logging.getLogger(__name__)

DONE = N_(
    "✅ Your data has been deleted from this support chat. If you write again, I will start "
    "from scratch. Your U-Pay account itself is not affected."
)
MAIN_MENU_LABEL = N_("🏠 Main menu")
TOPIC_ERASED = N_(
    "🗑 Data deleted at the user's request. The bot removed the messages with the user's data "
    "from this topic; the ticket's details and transcript are gone from its records."
)

#: Steps from which the user is served as anyone new (the gate no longer answers them).
_SERVED_AGAIN = frozenset({"notify", "finish"})

#: Seconds between looks at a step that waits for something (a send in flight).
WAIT = 0.2
#: Longest pause between retries of a step that failed (Telegram or storage trouble).
MAX_BACKOFF = 60.0


class _NotYet(Exception):
    """The step waits for something else to happen first; try it again shortly."""


def topic_name(topic: UserTopic) -> str:
    """Return a ticket topic's name without the user's first name (the language by its own
    name, as when the topic was created)."""
    return f"{topic.code} · {LANGUAGES.get(topic.language, topic.language)}"


class PrivacyService:
    """Runs users' erasures (resumed after a restart) and the retention purge."""

    def __init__(self, application: Any, repos: Repositories) -> None:
        self._app = application
        self._repos = repos
        #: user id -> language of users whose erasure runs (the gate answers them).
        self._erasing: dict[int, str] = {}
        self._tasks: dict[int, asyncio.Task] = {}
        self._resume: list[Erasure] = []
        self._stopping = False

    @property
    def _bot(self) -> Any:
        return self._app.bot

    @property
    def _config(self) -> Any:
        return self._app.config

    # ------------------------------------------------------------------ lifecycle

    async def load(self) -> None:
        """Learn whose erasures a stop (or a crash) interrupted, before any update is handled:
        the gate must answer those users from the first update on (a replayed one too)."""
        self._resume = await self._repos.privacy.unfinished_erasures()
        for erasure in self._resume:
            if erasure.user_id is not None and erasure.step != "finish":
                self._erasing[erasure.user_id] = erasure.language or self._config.default_language

    async def start(self) -> None:
        """Resume every erasure a stop (or a crash) interrupted."""
        self._stopping = False
        for erasure in self._resume:
            if erasure.id in self._tasks:
                continue  # several workers: requested here while the duties were starting
            _LOGGER.info("Resuming erasure %s at step %s", erasure.id, erasure.step)
            self._spawn(erasure.id)
        self._resume = []

    async def stop(self) -> None:
        """Stop running erasures between steps (they resume at the next start)."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def idle(self, timeout: float = 10.0) -> bool:
        """Wait until no erasure runs; False on timeout (for tests and the sandbox)."""
        deadline = time.monotonic() + timeout
        while self._tasks:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def erasing(self, user_id: int) -> str | None:
        """Return the language of a user whose data is being erased by this process (or
        whose erasure it found unfinished at its start), else None."""
        return self._erasing.get(user_id)

    async def gate_language(self, user_id: int) -> str | None:
        """Return the language of a user whose data is being erased, else None: for the
        gate. One process knows its own erasures; with several workers, any of them may run
        it, so the database says (until the step that tells the user it is done)."""
        if self._cluster is None:
            return self.erasing(user_id)
        erasure = await self._repos.privacy.erasure_of(user_id)
        if erasure is None or erasure.step in _SERVED_AGAIN:
            return None
        return erasure.language or self._config.default_language

    async def request_erasure(self, user_id: int, language: str) -> Erasure:
        """Start erasing a user's data (or return the erasure already running)."""
        erasure, created = await self._repos.privacy.start_erasure(user_id, language)
        self._erasing[user_id] = erasure.language or language
        if created:
            await self._repos.audit.record(
                None, "privacy.erasure_requested", f"erasure:{erasure.id}"
            )
            _LOGGER.info("Erasure %s requested", erasure.id)
        # Several workers: the duties holder runs it (see :meth:`adopt`).
        runs_here = self._cluster is None or self._cluster.holds_duties
        if runs_here and erasure.id not in self._tasks:
            self._spawn(erasure.id)
        return erasure

    async def adopt(self) -> None:
        """Run every unfinished erasure not running here yet (several workers: called on the
        duties holder at each renewal step, so an erasure another worker recorded, or left
        when it died, runs within a step)."""
        if self._stopping:
            return
        for erasure in await self._repos.privacy.unfinished_erasures():
            if erasure.id not in self._tasks:
                _LOGGER.info("Running erasure %s from step %s", erasure.id, erasure.step)
                self._spawn(erasure.id)

    @property
    def _cluster(self) -> Any:
        return getattr(self._app, "cluster", None)

    @contextlib.asynccontextmanager
    async def _holding(self, user_id: int) -> AsyncIterator[None]:
        """Hold the user's chat while a step changes what their updates read (several
        workers; one process handles updates and steps in one loop, a step never waits)."""
        if self._cluster is None:
            yield
            return
        async with self._cluster.chat(user_id):
            yield

    def _spawn(self, erasure_id: int) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(erasure_id), name=f"erasure-{erasure_id}"
        )
        self._tasks[erasure_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(erasure_id, None))

    async def _run(self, erasure_id: int) -> None:
        backoff = 1.0
        while not self._stopping:
            erasure = await self._repos.privacy.get_erasure(erasure_id)
            if erasure is None or erasure.step == ERASURE_DONE:
                return
            try:
                await getattr(self, f"_{erasure.step}")(erasure)
                backoff = 1.0
            except _NotYet:
                await asyncio.sleep(WAIT)
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                retry = exc.retry_after
                await asyncio.sleep(
                    retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
                )
            except Exception as exc:
                # Telegram or the database in trouble: the step is tried again, later.
                level = logging.WARNING if isinstance(exc, NetworkError) else logging.ERROR
                _LOGGER.log(
                    level,
                    "Erasure %s: step %s failed (%s); retrying in %.0f s",
                    erasure_id,
                    erasure.step,
                    type(exc).__name__,
                    backoff,
                    exc_info=level == logging.ERROR,
                )
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)

    # ------------------------------------------------------------------ steps

    async def _close(self, erasure: Erasure) -> None:
        user_id = self._user(erasure)
        tickets = self._repos.tickets
        async with self._holding(user_id):
            ticket = await tickets.open_for_user(user_id)
            if ticket is not None and await tickets.close(ticket.id, None):
                await self._repos.audit.record(
                    None, "ticket.close", ticket.id, {"by_user": False, "reason": "erasure"}
                )
            await self._repos.privacy.cancel_pending_sends(user_id)
            self._forget_in_memory(user_id)
            await self._repos.privacy.set_step(erasure.id, "collect")

    async def _collect(self, erasure: Erasure) -> None:
        user_id = self._user(erasure)
        privacy = self._repos.privacy
        # A send rescheduled after a 429 went back to pending: cancel again each look.
        await privacy.cancel_pending_sends(user_id)
        if await privacy.sends_in_flight(user_id):
            raise _NotYet  # a relay landing now must be in the list of posts to delete
        topics = await privacy.user_topics(user_id)
        posts = await privacy.topic_posts(user_id)
        async with self._repos.db.transaction():
            await privacy.plan_topic_cleanup(
                erasure.id, [(t, topic_name(t)) for t in topics], posts
            )
            await privacy.set_step(erasure.id, "erase")

    async def _erase(self, erasure: Erasure) -> None:
        user_id = self._user(erasure)
        privacy = self._repos.privacy
        async with self._holding(user_id):
            async with self._repos.db.transaction():
                counts = await privacy.erase_user(user_id, erasure.pseudonym)
                await privacy.set_step(erasure.id, "delete_posts", counts)
            self._forget_in_memory(user_id)
        _LOGGER.info("Erasure %s: storage erased", erasure.id)

    async def _delete_posts(self, erasure: Erasure) -> None:
        privacy = self._repos.privacy
        for post in await privacy.posts_to_delete(erasure.id):
            try:
                await self._bot.delete_message(post.chat_id, post.message_id)
                outcome = "deleted"
            except BadRequest as exc:
                # "message to delete not found": gone already (a repeat after a crash, or an
                # agent deleted it); "can't be deleted for everyone": older than 48 hours.
                outcome = "deleted" if "not found" in exc.message.lower() else "kept"
            except Forbidden:
                outcome = "kept"  # the bot is no longer in that group
            await privacy.post_outcome(erasure.id, post.chat_id, post.message_id, outcome)
        await privacy.set_step(erasure.id, "close_topics")

    async def _close_topics(self, erasure: Erasure) -> None:
        privacy = self._repos.privacy
        for topic, name, kept in await privacy.topics_to_close(erasure.id):
            tr = translator(self._group_language(topic.chat_id))
            if kept:
                text = tr.ngettext(
                    "🗑 Data deleted at the user's request. {kept} message here that carries the "
                    "user's data is older than Telegram lets a bot delete (48 hours) and stays in "
                    "this topic; the ticket's details and transcript are gone from the bot's "
                    "records. Please do not copy it elsewhere.",
                    "🗑 Data deleted at the user's request. {kept} messages here that carry the "
                    "user's data are older than Telegram lets a bot delete (48 hours) and stay in "
                    "this topic; the ticket's details and transcript are gone from the bot's "
                    "records. Please do not copy them elsewhere.",
                    kept,
                ).format(kept=tr.number(kept))
            else:
                text = tr.gettext(TOPIC_ERASED)
            chat, thread = topic.chat_id, topic.thread_id
            try:
                await _unless_unchanged(self._bot.edit_forum_topic(chat, thread, name=name))
                # Only open topics take messages (unless Telegram lets admins post anyway).
                await _unless_unchanged(self._bot.reopen_forum_topic(chat, thread))
                await self._bot.send_message(chat, text, message_thread_id=thread)
                await _unless_unchanged(self._bot.close_forum_topic(chat, thread))
            except BadRequest as exc:
                # The topic was deleted, or the bot lost its rights: nothing more to do there.
                _LOGGER.warning("Erasure %s: a topic could not be closed: %s", erasure.id, exc)
            except Forbidden as exc:
                _LOGGER.warning("Erasure %s: the agents' group is unreachable: %s", erasure.id, exc)
            await privacy.topic_closed(erasure.id, chat, thread)
        await privacy.set_step(erasure.id, "notify")

    async def _notify(self, erasure: Erasure) -> None:
        user_id = self._user(erasure)
        # From here on the user is served as anyone new; what they sent meanwhile goes.
        self._erasing.pop(user_id, None)
        await self._repos.privacy.forget_updates_of(user_id)
        tr = translator(erasure.language if erasure.language in LANGUAGES else "en")
        keyboard = Keyboard(
            [[InlineKeyboardButton(tr.gettext(MAIN_MENU_LABEL), callback_data="menu:main")]]
        )
        with contextlib.suppress(Forbidden, BadRequest):  # blocked the bot, or left
            await self._bot.send_message(user_id, tr.gettext(DONE), reply_markup=keyboard)
        await self._repos.privacy.set_step(erasure.id, "finish")

    async def _finish(self, erasure: Erasure) -> None:
        privacy = self._repos.privacy
        counts = {**erasure.counts, **await privacy.cleanup_counts(erasure.id)}
        async with self._repos.db.transaction():
            await privacy.finish_erasure(erasure.id, counts)
            await self._repos.audit.record(
                None,
                "privacy.erased",
                f"erasure:{erasure.id}",
                {"reason": erasure.reason, **counts},
            )
        _LOGGER.info("Erasure %s: done", erasure.id)

    async def _compact(self, erasure: Erasure) -> None:
        if not await self._repos.privacy.compact():
            raise _NotYet
        await self._repos.privacy.set_step(erasure.id, ERASURE_DONE)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _user(erasure: Erasure) -> int:
        assert erasure.user_id is not None, f"erasure {erasure.id} has no user any more"
        return erasure.user_id

    def _group_language(self, chat_id: int) -> str:
        return dict(self._config.agent_chats).get(chat_id) or self._config.default_language

    def _forget_in_memory(self, user_id: int) -> None:
        """End the user's menus and drop their conversation data held in memory (PTB would
        otherwise write it back)."""
        app = self._app
        for flow in getattr(app, "flows", {}).values():
            end_for = getattr(flow, "end_for", None)
            if end_for is not None:
                end_for((user_id, user_id))
        app.drop_user_data(user_id)
        app.drop_chat_data(user_id)

    # ------------------------------------------------------------------ retention

    async def purge(self, now: float | None = None) -> dict[str, int]:
        """Forget what is older than the retention settings; return how much of each kind."""
        now = time.time() if now is None else now
        config = self._config
        privacy = self._repos.privacy
        hour, day = 3600.0, 86400.0
        counts = {
            "updates": await privacy.forget_update_contents(
                now - config.retention_updates_hours * hour
            ),
            "sent": await privacy.forget_sends(now - config.retention_sent_hours * hour),
        }
        topics = await privacy.forget_transcripts(now - config.retention_transcript_days * day)
        counts["transcripts"] = len(topics)
        counts["questions"] = await privacy.forget_questions(
            now - config.retention_question_days * day
        )
        counts["refunds"] = await privacy.forget_refunds(now - config.retention_refund_days * day)
        counts["verifications"] = await privacy.forget_expired_verifications(
            now - config.verification_max_age, now
        )
        counts["audit"] = await privacy.forget_audit(now - config.retention_audit_days * day)
        inactive, more_topics = await self._forget_inactive(
            now - config.retention_profile_days * day, now
        )
        counts["profiles"] = inactive
        await self._rename_topics([*topics, *more_topics])
        await privacy.compact()
        if any(counts.values()):
            _LOGGER.info("Retention purge: %s", counts)
        return counts

    async def _forget_inactive(self, seen_before: float, now: float) -> tuple[int, list[UserTopic]]:
        """Erase the storage of users who stopped writing (staff are kept)."""
        privacy = self._repos.privacy
        staff = set(self._config.admin_ids) | {a.user_id for a in await self._repos.agents.all()}
        erased = 0
        topics: list[UserTopic] = []
        while True:
            users = await privacy.inactive_users(seen_before, keep=staff)
            if not users:
                return erased, topics
            for user_id in users:
                async with self._repos.db.transaction():
                    erasure, created = await privacy.start_erasure(user_id, None, "inactive", now)
                    if not created:
                        continue
                    topics.extend(await privacy.user_topics(user_id))
                    counts = await privacy.erase_user(user_id, erasure.pseudonym)
                    await privacy.finish_erasure(erasure.id, counts, now)
                    await privacy.set_step(erasure.id, ERASURE_DONE)
                    await self._repos.audit.record(
                        None,
                        "privacy.erased",
                        f"erasure:{erasure.id}",
                        {"reason": "inactive", **counts},
                    )
                self._forget_in_memory(user_id)
                erased += 1

    async def _rename_topics(self, topics: list[UserTopic]) -> None:
        """Take users' names out of the topics of tickets whose data was purged."""
        outbox = self._app.outbox
        for topic in topics:
            await outbox.enqueue(
                topic.chat_id,
                "editForumTopic",
                {"name": topic_name(topic)},
                thread_id=topic.thread_id,
                lane=Lane.NOTIFY,
                kind="privacy_topic",
                dedupe_key=f"privacy:topic:{topic.chat_id}:{topic.thread_id}",
            )


async def _unless_unchanged(call: Any) -> None:
    """Await a topic call; "not modified" (a repeat after a crash) counts as done."""
    try:
        await call
    except BadRequest as exc:
        if "not_modified" not in exc.message.lower().replace(" ", "_"):
            raise
