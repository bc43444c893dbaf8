"""Command line: ``tgbot run | migrate | backup``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from telegram import Update

from storage import AlreadyRunning, Database, InstanceLock, StorageError, migrate, open_database
from storage.base import redact_url

from .config import Config, ConfigError, demo_wallet_problem, load_config, webhook_problem
from .heap import tune_collector

_LOGGER = logging.getLogger("tgbot")


class _RedactingFilter(logging.Filter):
    """Keep httpx's request lines out of the log below DEBUG (noise; the token in their URL
    is redacted anyway, see :mod:`tgbot.logs`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(("httpx", "httpcore"))


_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, *, log_file: Path | None = None) -> None:
    """Log at ``level``; third-party request logs only at DEBUG.

    With ``log_file`` (the demo), records go to that file and only warnings and errors to
    stderr, so the console shows the page's address and what needs attention.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers[0].setLevel(logging.WARNING)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=getattr(logging, level), format=_FORMAT, handlers=handlers)
    if level != "DEBUG":
        for handler in handlers:
            handler.addFilter(_RedactingFilter())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tgbot", description="U-Pay support bot")
    parser.add_argument("--config", help="TOML file with settings (TGBOT_* variables win)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run the bot (long polling; webhook if TGBOT_WEBHOOK_URL is set)"
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the webhook port (PostgreSQL and webhook mode only)",
    )
    sub.add_parser("migrate", help="apply database migrations and exit")
    backup = sub.add_parser("backup", help="copy the database with SQLite's online backup")
    backup.add_argument("dest", help="file to write")
    demo = sub.add_parser("demo", help="sandbox Telegram + demo wallet + web page (no token)")
    demo.add_argument("--host", default="127.0.0.1", help="address of the web page")
    demo.add_argument("--port", type=int, default=8765, help="port of the web page (0: any)")
    demo.add_argument("--db", default="tgbot-demo.db", help="demo database (not the real one)")
    i18n = sub.add_parser("i18n", help="translation catalogs: extract, update, compile, check")
    i18n.add_argument("action", choices=["extract", "update", "compile", "check"])
    answers = sub.add_parser(
        "answers", help="the question router: build embeddings, tune thresholds, evaluate"
    )
    answers.add_argument("action", choices=["build", "tune", "eval"])
    answers.add_argument("file", nargs="?", help="labelled TSV (eval)")
    return parser


def workers_problem(config: Config, workers: int) -> str | None:
    """Return why ``tgbot run --workers N`` may not start, or None."""
    if workers < 1:
        return "--workers: must be at least 1"
    if workers == 1:
        return None
    if not config.database_url:
        return (
            "--workers: several workers need PostgreSQL (TGBOT_DATABASE_URL); a SQLite "
            "file serves one process"
        )
    if not config.webhook_url:
        return (
            "--workers: several workers need webhook mode (TGBOT_WEBHOOK_URL); long polling "
            "has one consumer"
        )
    return None


def run_workers(config: Config, workers: int, argv: list[str]) -> int:
    """Run ``workers`` bot processes on the shared webhook port until interrupted; a worker
    that dies is started again. Return the exit code."""
    from .workers import supervise

    if not config.token:
        print("config error: TGBOT_TOKEN: required to run against Telegram", file=sys.stderr)
        return 2
    problem = webhook_problem(config) or demo_wallet_problem(config)
    if problem:
        print(f"config error: {problem}", file=sys.stderr)
        return 2
    return supervise(workers, argv)


def run_bot(config: Config) -> int:
    """Run the bot until interrupted; return the exit code."""
    from .app import build_application

    if not config.token:
        print("config error: TGBOT_TOKEN: required to run against Telegram", file=sys.stderr)
        return 2
    problem = webhook_problem(config) or demo_wallet_problem(config)
    if problem:
        print(f"config error: {problem}", file=sys.stderr)
        return 2
    _use_uvloop()
    tune_collector()
    app = build_application(config)
    app.serve_wallet_pages = config.backend == "demo"
    app.freeze_heap_when_started = True
    return serve(app, config)


def serve(app: Any, config: Config) -> int:
    """Run a built application (webhook if configured, else long polling) until stopped;
    return the exit code."""
    try:
        if config.webhook_url and config.database_url:
            # Several workers may serve this port (tgbot run --workers N, or separate
            # processes): each binds it with SO_REUSEPORT and the kernel spreads the
            # connections. Stored before acknowledged, as below.
            from .workers import shared_port

            app.run_webhook(
                url_path=urlparse(config.webhook_url).path.lstrip("/"),
                webhook_url=config.webhook_url,
                secret_token=config.webhook_secret,
                allowed_updates=Update.ALL_TYPES,
                unix=shared_port(config.webhook_listen, config.webhook_port),
            )
        elif config.webhook_url:
            # PTB's webhook handler awaits update_queue.put() before answering 200, and our
            # queue stores the update in the inbox inside put(): stored before acknowledged.
            app.run_webhook(
                listen=config.webhook_listen,
                port=config.webhook_port,
                url_path=urlparse(config.webhook_url).path.lstrip("/"),
                webhook_url=config.webhook_url,
                secret_token=config.webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
    except AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    if getattr(app, "poller_lock_lost", False):
        from .app import LOST_POLLER_LOCK

        print(
            "error: lost the poller lock (its PostgreSQL connection ended): stopped polling; "
            "a standby polls now (start this one again to make it a standby)",
            file=sys.stderr,
        )
        return LOST_POLLER_LOCK
    return 0


def _use_uvloop() -> None:
    """Run PTB's event loop on uvloop where it is installed (not on Windows): measured at
    about 10% less CPU per update than asyncio's own loop (docs/performance.md)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _migrate(config: Config) -> tuple[int, int]:
    if config.database_url:
        db = await open_database(config.database_url)
        try:
            await db.lock_instance()  # type: ignore[attr-defined]  # not under a running bot
            return await migrate(db)
        finally:
            await db.close()
    lock = InstanceLock(config.db_path)
    lock.acquire()
    try:
        db = await Database.open(config.db_path)
        try:
            return await migrate(db)
        finally:
            await db.close()
    finally:
        lock.release()


async def _backup(config: Config, dest: Path) -> None:
    db = await Database.open(config.db_path)
    try:
        await db.backup(dest)
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tgbot`` command."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(config_file=args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    from .app import protect_config_secrets

    protect_config_secrets(config)  # before the first record: no secret is ever logged
    log_file = None
    if args.command == "demo" and "TGBOT_LOG_LEVEL" not in os.environ:
        log_file = Path(args.db).with_suffix(".log")  # the demo's console stays quiet
    setup_logging(config.log_level, log_file=log_file)
    try:
        if args.command == "demo":
            from .sandbox.demo import run_demo

            return run_demo(config, host=args.host, port=args.port, db_path=Path(args.db))
        if args.command == "answers":
            from .answers.tools import run_answers

            return run_answers(args.action, args.file)
        if args.command == "i18n":
            from .i18n_tools import run_i18n

            return run_i18n(args.action)
        if args.command == "run":
            problem = workers_problem(config, args.workers)
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                return 2
            if args.workers > 1:
                child_args = ["--config", args.config] if args.config else []
                return run_workers(config, args.workers, [*child_args, "run"])
            return run_bot(config)
        if args.command == "migrate":
            before, after = asyncio.run(_migrate(config))
            where = redact_url(config.database_url) if config.database_url else config.db_path
            print(f"database {where}: schema version {before} -> {after}")
            return 0
        if args.command == "backup" and config.database_url:
            print(
                "error: tgbot backup copies the SQLite file; back up PostgreSQL with its own "
                "tools (pg_dump, or the server's continuous archiving)",
                file=sys.stderr,
            )
            return 2
        if args.command == "backup":
            dest = Path(args.dest)
            if dest.exists():
                print(f"error: {dest} already exists", file=sys.stderr)
                return 2
            asyncio.run(_backup(config, dest))
            print(f"backup of {config.db_path} written to {dest}")
            return 0
    except AlreadyRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 2
