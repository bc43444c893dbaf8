"""Application assembly: ``build_application(config)`` wires PTB, storage and handlers.

The application owns the lifecycle of everything stateful: :meth:`WalletApplication.initialize`
takes the single-instance lock, opens the database and migrates it *before* PTB loads the
persistence; :meth:`~WalletApplication.shutdown` closes it after PTB's last persistence write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import urlparse, urlsplit

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults, PersistenceInput
from telegram.request import BaseRequest, HTTPXRequest

import handlers
from handlers import cards, password
from handlers.core import expire_flows
from handlers.menu import set_command_menus
from services import jobs
from services.broadcaster import Broadcaster
from services.desk import SupportDesk
from services.queue import refresh_queue
from services.refunds import poll_refunds
from storage import (
    BotDatabase,
    Database,
    InstanceLock,
    Repositories,
    SQLitePersistence,
    migrate,
    open_database,
)
from storage.batch import GroupCommit

from .cluster import Cluster
from .config import Config
from .context import BotContext
from .heap import freeze_heap
from .lanes import LaneRateLimiter
from .logs import protect
from .outbox import OutboxWorker
from .privacy import PrivacyService
from .runtime import (
    ChatOrderedUpdateProcessor,
    CommitBeforePoll,
    InboxQueue,
    SequentialUpdateProcessor,
)

_LOGGER = logging.getLogger(__name__)


class _Storage:
    """Holder for the database, opened by the application's ``initialize``."""

    def __init__(self) -> None:
        self.db: BotDatabase | None = None
        self.repos: Repositories | None = None
        #: The demo wallet's own SQLite file (the demo backend only).
        self.wallet_db: Database | None = None

    def database(self) -> BotDatabase:
        if self.db is None:
            raise RuntimeError("the database is not open yet")
        return self.db


#: Seconds after start-up before a stop signal that came during it is delivered.
_AFTER_STARTUP = 0.05

#: Long polling on PostgreSQL: seconds between checks that the poller lock's session still
#: answers, and how long an answer may take. A connection that closes is noticed at once; a
#: silent one (a network cut) within the sum, long before the server drops a silent client
#: (TCP keepalive: hours by default) and with it the lock.
POLLER_CHECK = 2.0
POLLER_CHECK_TIMEOUT = 5.0

#: Exit code of a poller that lost its lock and stopped (a standby polls now).
LOST_POLLER_LOCK = 4


class WalletApplication(Application):
    """PTB's Application plus the support bot's storage, outbox and flow registry."""

    def __init__(self, *, config: Config, storage: _Storage, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self._storage = storage
        self._lock = InstanceLock(config.db_path)
        self.flows: dict[str, Any] = {}
        self.outbox: OutboxWorker | None = None
        self.desk: SupportDesk | None = None
        self.broadcaster: Broadcaster | None = None
        self.privacy: PrivacyService | None = None
        self.refund_poll_lock = asyncio.Lock()  # the poll job and the wallet's webhook
        self.backend: Any = None
        #: Serve the demo wallet's pages (reset link, secure card entry) from this process;
        #: ``tgbot run`` turns it on, the sandbox demo mounts them on its own server.
        self.serve_wallet_pages = False
        #: Freeze the heap once started (:func:`tgbot.heap.freeze_heap`): ``tgbot run`` turns it
        #: on; tests and benchmarks that start many bots in one process leave it off.
        self.freeze_heap_when_started = False
        self._wallet_pages: Any = None
        self._refund_events: Any = None
        self.refund_events_port: int | None = None
        #: A stop signal (Ctrl-C, SIGTERM) came while starting; see :meth:`_raise_system_exit`.
        self._stop_requested = False
        #: Set once start-up has ended (waiters resume after the heap's freeze, when on).
        self.started = asyncio.Event()
        self._done_marks: GroupCommit[int] = GroupCommit(self._write_done_marks)
        #: Several workers on PostgreSQL (webhook mode): this worker's part; None for one
        #: process (SQLite, or polling).
        self.cluster: Cluster | None = None
        if config.database_url and config.webhook_url:
            self.cluster = Cluster(
                self, lease_ttl=config.lease_ttl, recover_after=config.recover_after
            )
        self._duty_jobs: list[Any] = []
        #: Long polling on PostgreSQL: one process polls (it holds the poller lock), others
        #: wait as standbys until it is free (docs/postgres.md).
        self.poller_lock = bool(config.database_url and not config.webhook_url)
        #: The getUpdates transport (build_application sets it): fenced when the lock is lost.
        self.polling_transport: CommitBeforePoll | None = None
        #: Set by a stop signal (a waiting standby ends its wait at once).
        self._stop_event = asyncio.Event()
        self._standby_waiting = False
        #: This process held the poller lock and lost it: it stopped polling.
        self.poller_lock_lost = False
        self._poller_watch: asyncio.Task | None = None
        self._fence_task: asyncio.Task | None = None

    @property
    def db(self) -> BotDatabase:
        """Return the open database."""
        return self._storage.database()

    @property
    def repos(self) -> Repositories:
        """Return the repositories facade."""
        assert self._storage.repos is not None, "the database is not open yet"
        return self._storage.repos

    async def initialize(self) -> None:
        """Lock, open and migrate the database, then let PTB load persistence and the bot."""
        if self._initialized:
            return
        try:
            db = await self._open_database()
            if db is None:  # a standby stopped while it waited: nothing was started
                await self._close_storage()
                self.stop_running()
                return
            before, after = await migrate(db)
            if before != after:
                _LOGGER.info("Database migrated from version %s to %s", before, after)
            self._storage.repos = Repositories(db)
            if self.cluster is not None:
                self.cluster.open()
            self.backend = _make_backend(self.config, await self._wallet_database())
            assert isinstance(self.update_queue, InboxQueue)
            self.update_queue.inbox = self.repos.inbox
            self.outbox = OutboxWorker(self.bot, self.repos)
            self.outbox.whole_chats = self.cluster is not None
            self.desk = SupportDesk(self.bot, self.repos, self.outbox, self.config)
            self.broadcaster = Broadcaster(self, self.repos, self.outbox)
            self.privacy = PrivacyService(self, self.repos)
            await self.privacy.load()  # the privacy gate knows whom to hold back at once
            await super().initialize()
            if self.cluster is None:
                # Several workers: a live worker's unfinished updates are its own; those of
                # a dead one are handed out by the duties holder (tgbot.cluster).
                await self._replay_inbox()
        except BaseException:
            await self._close_storage()
            raise
        if self._stop_requested or self.poller_lock_lost:
            # Stopped while initializing: PTB's run_polling/run_webhook return right after
            # initialize (without starting the updater) when this is set.
            self.stop_running()

    def _raise_system_exit(self) -> None:
        """Stop on SIGINT/SIGTERM (PTB's signal handler in run_polling/run_webhook); a signal
        that comes during start-up takes effect once start-up is complete.

        PTB raises SystemExit from the handler, which abandons whatever ``run_until_complete``
        was waiting for: an ``initialize``, ``updater.start_polling`` or ``start`` cut halfway
        keeps running beside ``stop`` and ``shutdown`` (a service started after it was
        stopped, a database closed under a query, an updater lock never released). So during
        start-up the signal is only noted; a second one stops at once, as before.
        """
        if self.started.is_set() or self._stop_requested:
            raise SystemExit
        self._stop_requested = True
        self._stop_event.set()
        if self._standby_waiting:
            _LOGGER.info("Standby stopping (it never polled)")
            return
        _LOGGER.info("Stopping as soon as start-up is complete (a second signal stops at once)")

    def _stop_after_startup(self) -> None:
        """Mark start-up complete, and deliver a stop signal that came during it, once
        ``run_until_complete(start())`` has returned.

        Not at once: finishing ``start`` schedules run_until_complete's own stop callback,
        and a SystemExit raised before that callback ran (a signal handled in the same loop
        iteration) would leave it behind to stop the loop under PTB's next
        ``run_until_complete`` ("Event loop stopped before Future completed", then aiosqlite's
        "Event loop is closed"). A timer comes after it: asyncio runs the ready queue
        before a zero-delay timer, but uvloop (``tgbot run``'s loop) may run libuv's timers
        first, so the timer waits a moment (the stop callback is already ready; while
        ``run_until_complete`` has returned and ``run_forever`` has not begun, no timer runs).
        """
        asyncio.get_running_loop().call_later(_AFTER_STARTUP, self._startup_done)

    def _startup_done(self) -> None:
        self.started.set()
        if self._stop_requested:
            raise SystemExit
        if self.freeze_heap_when_started:
            _LOGGER.info("Started: %d objects left out of garbage collection", freeze_heap())
        if self.poller_lock_lost:  # lost during start-up: the transport asked nothing since
            self._fence_task = asyncio.create_task(self._fence(), name="poller-fence")

    async def _open_database(self) -> BotDatabase | None:
        """Open the bot's database (PostgreSQL if a URL is configured, else the SQLite file)
        holding its one-instance lock: on SQLite a second instance refuses to start; on
        PostgreSQL with long polling it waits as a standby until the lock is free (None: it
        was stopped while waiting)."""
        if self.config.database_url:
            db = await open_database(self.config.database_url)
            self._storage.db = db
            # Polling: one consumer (webhook: the workers share the database).
            if self.poller_lock and not await self._take_poller_lock(db):
                return None
            return db
        self._lock.acquire()
        db = await Database.open(self.config.db_path)
        self._storage.db = db
        return db

    async def _take_poller_lock(self, db: Any) -> bool:
        """Hold the poller lock, waiting as a standby while another process polls; watch it
        from then on. Return False if stopped while waiting."""
        retry = self.config.standby_retry

        def waiting(why: str) -> None:
            _LOGGER.info(
                "Standby: not polling, touching nothing; trying the poller lock every %g s. %s",
                retry,
                why,
            )

        self._standby_waiting = True
        try:
            if not await db.wait_instance(retry, self._stop_event, waiting=waiting):
                return False
        finally:
            self._standby_waiting = False
        _LOGGER.info("Holding the poller lock on %s: this process polls Telegram", db.path)
        db.on_instance_lost(self._lose_poller_lock)
        self._poller_watch = asyncio.create_task(self._watch_poller_lock(db), name="poller-lock")
        return True

    async def _watch_poller_lock(self, db: Any) -> None:
        """Check every POLLER_CHECK seconds that the poller lock's session still answers."""
        while not self.poller_lock_lost:
            await asyncio.sleep(POLLER_CHECK)
            if not await db.check_instance(timeout=POLLER_CHECK_TIMEOUT):
                self._lose_poller_lock()

    def _lose_poller_lock(self) -> None:
        """Stop polling at once: the lock is gone, and a standby may be polling already."""
        if self.poller_lock_lost:
            return
        self.poller_lock_lost = True
        if self.polling_transport is not None:
            self.polling_transport.fenced = True  # not one more getUpdates from here
        _LOGGER.error(
            "Lost the poller lock (its database connection ended or stopped answering): "
            "stopping, so that a standby polls instead"
        )
        if self.started.is_set():
            self._fence_task = asyncio.create_task(self._fence(), name="poller-fence")
        # Still starting: the end of initialize, or of start-up, sees the flag and stops.

    async def _fence(self) -> None:
        if self.updater is not None and self.updater.running:
            await self.updater.stop()
        self.stop_running()

    async def _wallet_database(self) -> Database | None:
        """Open the demo wallet's own database (``Config.demo_wallet_file``, never the bot's);
        None for a real wallet."""
        if self.config.backend != "demo":
            return None  # the http backend has no database
        from tgbot.backend.demo_store import open_wallet_database

        wallet = await open_wallet_database(self.config.demo_wallet_file)
        self._storage.wallet_db = wallet
        return wallet

    async def _replay_inbox(self) -> None:
        pending = await self.repos.inbox.pending()
        if not pending:
            return
        updates = [Update.de_json(json.loads(payload), self.bot) for _, payload in pending]
        _LOGGER.info("Handling %d updates received before the last stop", len(updates))
        await self.update_queue.replay(updates)  # type: ignore[attr-defined]

    async def start(self) -> None:
        """Start PTB, the outbox worker and the housekeeping jobs (with several workers,
        the once-per-deployment ones only while this worker holds the duties lease)."""
        if self._stop_requested:  # stopped while the updater was starting: start nothing
            self._stop_after_startup()
            return
        await super().start()
        assert self.outbox is not None
        await self.outbox.start(bulk=self.cluster is None)
        await self._publish_commands()
        assert self.desk is not None and self.broadcaster is not None
        await self.desk.start()
        if self.cluster is None:
            await self._start_duties()
        else:
            self.broadcaster.shared = True
            await self.cluster.start(self._start_duties, self._stop_duties)
        self._stop_after_startup()

    async def _start_duties(self) -> None:
        """Start what runs once per deployment: the broadcast feeder, resumed erasures, the
        wallet's webhook and pages, the scheduled jobs (the refund poller among them), and
        with several workers the bulk send lanes and the card-binding watch."""
        assert self.broadcaster is not None and self.privacy is not None
        assert self.outbox is not None
        if self.cluster is not None:
            await self.outbox.start_bulk()
        await self.broadcaster.start()
        if self.cluster is not None:
            # Resume what another worker's stop (or death) interrupted.
            await self.privacy.load()
        await self.privacy.start()  # erasures a stop interrupted resume
        if self.config.refund_webhook_secret:
            from .context import BotContext
            from .wallet_events import serve_refund_events

            self._refund_events, port = await serve_refund_events(
                self.config.refund_webhook_secret,
                self.config.refund_webhook_listen,
                self.config.refund_webhook_port,
                lambda: poll_refunds(BotContext(self)),
            )
            self.refund_events_port = port
        if self.serve_wallet_pages and self.config.backend == "demo":
            from tgbot.backend.pages import serve_wallet_pages

            url = urlparse(self.config.wallet_public_url)
            self._wallet_pages = await serve_wallet_pages(
                self.backend, url.hostname or "127.0.0.1", url.port or 80
            )
            _LOGGER.info("Demo wallet pages at %s", self.config.wallet_public_url)
        if self.job_queue is not None:
            queue = self.job_queue
            self._duty_jobs = [
                queue.run_repeating(
                    expire_flows,
                    interval=min(30.0, self.config.flow_timeout / 4),
                    first=1.0,
                    name="expire-flows",
                ),
                queue.run_repeating(
                    jobs.prune_inbox, interval=3600.0, first=60.0, name="prune-inbox"
                ),
                queue.run_repeating(
                    jobs.check_groups, interval=600.0, first=600.0, name="check-agent-groups"
                ),
                queue.run_repeating(
                    jobs.remind_unclaimed, interval=60.0, first=60.0, name="remind-unclaimed"
                ),
                queue.run_repeating(refresh_queue, interval=30.0, first=30.0, name="refresh-queue"),
                queue.run_repeating(
                    jobs.purge,
                    interval=self.config.retention_purge_interval,
                    first=30.0,
                    name="purge",
                ),
                queue.run_repeating(
                    poll_refunds,
                    interval=self.config.refund_poll_interval,
                    first=min(5.0, self.config.refund_poll_interval),
                    name="poll-refunds",
                ),
                # Reset links sent (from the audit log): the "password changed" notice.
                queue.run_repeating(
                    password.watch_passwords,
                    interval=password.PASSWORD_POLL_SECONDS,
                    first=password.PASSWORD_POLL_SECONDS,
                    name="watch-passwords",
                ),
            ]
            if self.cluster is not None:
                # Several workers: users on the secure card page are watched from the
                # database here, not by the worker that opened the page (it may die).
                self._duty_jobs.append(
                    queue.run_repeating(
                        cards.watch_bindings,
                        interval=cards.BINDING_POLL_SECONDS,
                        first=cards.BINDING_POLL_SECONDS,
                        name="watch-bindings",
                    )
                )

    async def _stop_duties(self) -> None:
        """Stop what :meth:`_start_duties` started (a broadcast, an erasure resume at the
        next start, on whichever worker holds the duties then)."""
        for job in self._duty_jobs:
            job.schedule_removal()
        self._duty_jobs = []
        if self._wallet_pages is not None:
            await self._wallet_pages.stop()
            self._wallet_pages = None
        if self._refund_events is not None:
            self._refund_events.stop()
            await self._refund_events.close_all_connections()
            self._refund_events = None
        if self.broadcaster is not None:
            await self.broadcaster.stop()  # a broadcast resumes at the next start
        if self.privacy is not None:
            await self.privacy.stop()  # an erasure resumes at the next start
        if self.cluster is not None and self.outbox is not None:
            await self.outbox.stop_bulk()

    async def _publish_commands(self) -> None:
        """Publish the per-language command menus (cosmetic: a failure only logs)."""
        try:
            await set_command_menus(self)
        except TelegramError as exc:
            _LOGGER.warning("Could not set the command menus: %s", exc)

    async def stop(self) -> None:
        """Stop the duties and the outbox worker, then PTB (which writes persistence one
        last time); with several workers, the chat locks go last."""
        if self.cluster is not None:
            await self.cluster.stop()  # the duties lease is released for another worker
        else:
            await self._stop_duties()
        if self.outbox is not None:
            await self.outbox.stop()
        await super().stop()
        if self.cluster is not None:
            await self.cluster.close()

    async def shutdown(self) -> None:
        """Let PTB shut down, then close the database and release the lock."""
        try:
            await super().shutdown()
        finally:
            await self._close_storage()

    async def _close_storage(self) -> None:
        if self._poller_watch is not None:
            self._poller_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller_watch
            self._poller_watch = None
        if self.backend is not None:
            await self.backend.close()
            self.backend = None
        if self._storage.db is not None:
            await self._storage.db.close()
            self._storage.db = None
            self._storage.repos = None
        if self._storage.wallet_db is not None:
            await self._storage.wallet_db.close()
            self._storage.wallet_db = None
        self._lock.release()

    async def handled_up_to(self, update_id: int) -> bool:
        """Whether every update received so far, up to ``update_id``, has been handled (for
        tests, the sandbox and benchmarks waiting for the bot to settle)."""
        return (
            (update_id == 0 or await self.repos.inbox.is_done(update_id))
            and await self.repos.inbox.count_pending() == 0
            and self.update_processor.in_progress == 0  # type: ignore[attr-defined]
        )

    async def mark_update_done(self, update: object) -> None:
        """Record that an update was handled (it will not be handled again).

        Updates finishing together share one write (group commit); each caller returns
        only once its own mark is written, so the at-least-once window is unchanged.
        """
        if isinstance(update, Update) and self._storage.repos is not None:
            await self._done_marks.add(update.update_id)

    async def _write_done_marks(self, update_ids: list[int]) -> None:
        await self.repos.inbox.mark_done_many(update_ids)


def _make_backend(config: Config, db: Database | None) -> Any:
    """Create the wallet backend the configuration names."""
    from tgbot.backend import create_backend
    from tgbot.backend.demo import DEMO_PHONES

    if config.backend == "http":
        return create_backend(
            "http",
            base_url=config.backend_url,
            api_key=config.backend_api_key,
            api_key_file=config.backend_api_key_file,
            max_in_flight=config.backend_max_in_flight,
        )
    code = config.demo_fixed_code
    return create_backend(
        "demo",
        db=db,
        public_url=config.wallet_public_url,
        fixed_codes=dict.fromkeys(DEMO_PHONES, code) if code else {},
    )


def protect_config_secrets(config: Config) -> None:
    """Keep the configuration's secrets out of every log record (:mod:`tgbot.logs`)."""
    protect(
        (
            config.token,
            config.webhook_secret,
            config.refund_webhook_secret,
            config.backend_api_key,
            urlsplit(config.database_url).password if config.database_url else None,
        ),
        user_text=config.debug_user_text,
    )


def build_application(
    config: Config,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    extra_flows: list | None = None,
) -> WalletApplication:
    """Build the bot's Application from ``config``.

    Args:
        config: the configuration.
        request: transport for API calls (the sandbox passes its in-process one).
        get_updates_request: transport for getUpdates (defaults to ``request``).
        extra_flows: additional guided flows (tests use this).
    """
    if not config.token:
        raise ValueError("TGBOT_TOKEN is required")
    protect_config_secrets(config)
    storage = _Storage()
    app_ref: dict[str, WalletApplication] = {}

    async def on_done(update: object) -> None:
        await app_ref["app"].mark_update_done(update)

    queue = InboxQueue()
    several_workers = bool(config.database_url and config.webhook_url)
    if config.concurrent_updates > 1 or several_workers:
        processor: Any = ChatOrderedUpdateProcessor(
            config.concurrent_updates, on_done, queue.finished
        )
    else:
        processor = SequentialUpdateProcessor(on_done, queue.finished)
    # getUpdates goes through CommitBeforePoll: a batch is written before the next poll
    # confirms it, and no more is fetched while four times the concurrency waits (the
    # builder's own default for this transport, wrapped).
    queue.backlog = max(100, 4 * config.concurrent_updates)
    polling_transport = CommitBeforePoll(
        get_updates_request or request or HTTPXRequest(connection_pool_size=1), queue
    )
    builder = (
        ApplicationBuilder()
        .application_class(WalletApplication, {"config": config, "storage": storage})
        .token(config.token)
        .base_url(config.api_base_url)
        .base_file_url(config.api_file_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=config.zone))
        .update_queue(queue)
        .get_updates_request(polling_transport)
        .concurrent_updates(processor)
        .context_types(ContextTypes(context=BotContext))
        .rate_limiter(
            LaneRateLimiter(
                bulk_per_second=config.rate_bulk_per_second,
                group_per_minute=config.rate_group_per_minute,
                chat_per_second=config.rate_chat_per_second,
                chat_burst=config.rate_chat_burst,
                paid_per_second=config.rate_paid_per_second,
                group_window=config.rate_group_window,
                broadcast_per_second=config.broadcast_rate,
            )
        )
        .persistence(
            SQLitePersistence(
                storage.database,
                update_interval=config.persistence_interval,
                store_data=PersistenceInput(bot_data=False, chat_data=False, callback_data=False),
                # Other workers write these rows too: re-read the user's before each update.
                refresh_from_database=several_workers,
            )
        )
    )
    if request is not None:
        builder = builder.request(request)
    app: WalletApplication = builder.build()  # type: ignore[assignment]
    app_ref["app"] = app
    app.polling_transport = polling_transport
    if app.cluster is not None:
        processor.handle = app.cluster.handle
    handlers.register(app, extra_flows)
    return app
