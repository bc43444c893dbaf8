"""Configuration: a dataclass from ``TGBOT_*`` environment variables and an optional TOML file.

A bad value stops start-up with one line that names the variable (:class:`ConfigError`).
Environment variables win over the file, so a deployment can override one setting.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SUPPORTED_LANGUAGES = ("zh_Hans", "en")
ENV_PREFIX = "TGBOT_"


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name}: must be greater than 0, got {raw!r}")
    return value


def _positive_int(name: str, raw: str) -> int:
    value = _int(name, raw)
    if value < 1:
        raise ConfigError(f"{name}: must be at least 1, got {raw!r}")
    return value


def _int_set(name: str, raw: str) -> frozenset[int]:
    return frozenset(_int(name, part) for part in raw.replace(";", ",").split(",") if part.strip())


def _agent_chats(name: str, raw: str) -> tuple[tuple[int, str | None], ...]:
    chats = []
    for part in raw.replace(";", ",").split(","):
        if not part.strip():
            continue
        chat, _, lang = part.strip().partition(":")
        chats.append((_int(name, chat), _language(name, lang) if lang.strip() else None))
    return tuple(chats)


def _hours(name: str, raw: str) -> tuple[int, int] | None:
    value = raw.strip()
    if not value:
        return None
    try:
        start, end = value.split("-")
        sh, sm = (int(x) for x in start.split(":"))
        eh, em = (int(x) for x in end.split(":"))
        if not (0 <= sh < 24 and 0 <= sm < 60 and 0 <= eh <= 24 and 0 <= em < 60):
            raise ValueError
    except ValueError:
        raise ConfigError(f"{name}: expected opening hours like 09:00-21:00, got {raw!r}") from None
    return sh * 60 + sm, eh * 60 + em


def _domains(name: str, raw: str) -> tuple[str, ...]:
    domains = tuple(d.strip().lower().lstrip(".") for d in raw.split(",") if d.strip())
    for domain in domains:
        if "/" in domain or " " in domain or "." not in domain:
            raise ConfigError(f"{name}: expected domain names like upay.com, got {domain!r}")
    return domains


def _backend(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"demo", "http"}:
        raise ConfigError(f"{name}: expected demo or http, got {raw!r}")
    return value


def _fixed_code(name: str, raw: str) -> str | None:
    value = raw.strip()
    if value and not (value.isdigit() and len(value) == 6):
        raise ConfigError(f"{name}: expected 6 digits (or empty for random codes)")
    return value or None


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _agent_label(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"name", "team", "off"}:
        raise ConfigError(f"{name}: expected name, team or off, got {raw!r}")
    return value


def _url(name: str, raw: str) -> str:
    parsed = urlparse(raw.strip())
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ConfigError(f"{name}: expected an http(s) URL, got {raw!r}")
    return raw.strip()


def _optional_url(name: str, raw: str) -> str | None:
    return _url(name, raw) if raw.strip() else None


def _language(name: str, raw: str) -> str:
    value = raw.strip().replace("-", "_")
    for lang in SUPPORTED_LANGUAGES:
        if value.lower() == lang.lower() or (
            lang == "zh_Hans" and value.lower() in {"zh", "zh_cn"}
        ):
            return lang
    raise ConfigError(f"{name}: expected one of {', '.join(SUPPORTED_LANGUAGES)}, got {raw!r}")


def _timezone(name: str, raw: str) -> str:
    try:
        ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}: unknown time zone {raw!r}") from None
    return raw.strip()


def _token(name: str, raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    bot_id, sep, secret = value.partition(":")
    if not sep or not bot_id.isdigit() or not secret:
        raise ConfigError(f"{name}: expected a bot token like 123456:ABC..., got a malformed value")
    return value


def _webhook_secret(name: str, raw: str) -> str | None:
    value = raw.strip()
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    if value and (len(value) > 256 or not set(value) <= allowed):
        raise ConfigError(
            f"{name}: expected 1-256 characters A-Z, a-z, 0-9, _ or - (Telegram's rule)"
        )
    return value or None


def _str(name: str, raw: str) -> str:
    return raw.strip()


def _optional_str(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _path(name: str, raw: str) -> Path:
    if not raw.strip():
        raise ConfigError(f"{name}: must not be empty")
    return Path(raw.strip()).expanduser()


def _database_url(name: str, raw: str) -> str | None:
    value = raw.strip()
    if value and not value.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"{name}: expected a postgresql:// URL (unset: the SQLite file of TGBOT_DB_PATH)"
        )
    return value or None


def _log_level(name: str, raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{name}: expected DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return value


@dataclass(frozen=True)
class Config:
    """Everything the bot needs to start; see README for each ``TGBOT_*`` variable."""

    token: str | None = None
    api_base_url: str = "https://api.telegram.org/bot"
    api_file_url: str = "https://api.telegram.org/file/bot"
    db_path: Path = Path("tgbot.db")
    #: The bot's records in PostgreSQL (``postgresql://user:password@host/db``); None: in the
    #: SQLite file ``db_path``.
    database_url: str | None = None
    #: The demo wallet's own SQLite file (``:memory:``: none); None: ``<db_path>.wallet.db``
    #: beside the bot's (see :meth:`demo_wallet_file`). Never the bot's own database.
    demo_wallet_db_path: Path | None = None
    admin_ids: frozenset[int] = frozenset()
    #: Agents' forum supergroups, each with the language its team handles (None: any).
    agent_chats: tuple[tuple[int, str | None], ...] = ()
    default_language: str = "en"
    timezone: str = "Asia/Shanghai"
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str | None = None
    #: Seconds of inactivity after which a guided flow ends politely.
    flow_timeout: float = 900.0
    #: Seconds after which any inline button is stale (it says so and offers its flow).
    button_ttl: float = 24 * 3600.0
    #: Updates processed at once (different chats); 1 switches to PTB's sequential processing.
    concurrent_updates: int = 64
    #: Seconds between persistence writes (conversation state on disk within a second).
    persistence_interval: float = 0.5
    #: Several workers (PostgreSQL, webhook): seconds the duties lease lasts unless renewed
    #: (a dead holder's duties resume elsewhere within about this long), and seconds after
    #: which an update a worker stored and never finished is handled by another.
    lease_ttl: float = 10.0
    recover_after: float = 15.0
    #: Long polling on PostgreSQL: seconds between a standby's tries of the poller lock
    #: (it takes over within about this long after the poller dies).
    standby_retry: float = 1.0
    #: Telegram's limits (tgbot/lanes.py). The bulk budget is shared by notifications the
    #: user did not trigger and free broadcasts only; replies are limited per chat.
    rate_bulk_per_second: float = 30.0
    rate_group_per_minute: float = 20.0
    rate_chat_per_second: float = 1.0
    rate_chat_burst: float = 3.0
    #: Seconds of the group window (Telegram's minute; tests shrink it, no variable).
    rate_group_window: float = 60.0
    #: Paid broadcasts' own budget (allow_paid_broadcast: up to 1000 a second).
    rate_paid_per_second: float = 1000.0
    log_level: str = "INFO"
    #: Log users' message text (never on in production: DESIGN section 6, rule 8).
    debug_user_text: bool = False
    #: Opening hours of human support in the configured time zone (minutes since midnight);
    #: None means always open.
    business_hours: tuple[int, int] | None = None
    #: Domains agents and admins may link to in messages to users.
    link_allowlist: tuple[str, ...] = ("upay.com",)
    #: Seconds after a close in which the user may reopen the ticket (the "🔄 Not solved"
    #: button, or writing "not solved"); anything else they write is a new question.
    reopen_window: float = 3600.0
    #: How agents' replies are signed for the user: "name" ("客服 · Wang", the roster
    #: name), "team" ("客服" only) or "off" (no label).
    agent_label: str = "name"
    #: Seconds after which an unclaimed ticket triggers a reminder in its topic.
    unclaimed_reminder: float = 600.0
    #: Wallet backend: "demo" (self-contained, the default) or "http" (a real wallet's API).
    backend: str = "demo"
    backend_url: str | None = None
    backend_api_key: str | None = None
    #: A file holding the wallet API key, re-read after a 401 (a rotated key); wins over
    #: ``backend_api_key``.
    backend_api_key_file: Path | None = None
    #: Requests sent to the wallet at once (more wait their turn, at most the request
    #: timeout): bounds a burst's load on the wallet and keeps the HTTP client's pool small.
    backend_max_in_flight: int = 16
    #: Where the demo wallet's own pages (reset link, secure card entry) are served.
    wallet_public_url: str = "http://127.0.0.1:8766"
    #: Seconds a verification stays good for sensitive actions (reset, unlock, cards).
    verification_max_age: float = 600.0
    #: Shared secret of the wallet's HMAC-signed refund webhook (None: polling only).
    refund_webhook_secret: str | None = None
    refund_webhook_listen: str = "127.0.0.1"
    refund_webhook_port: int = 8767
    #: Broadcast messages a second, within the bulk budget (or the paid one): below the
    #: ~30/s bulk budget, leaving room for other notifications.
    broadcast_rate: float = 20.0
    #: Let broadcasts use Telegram's paid broadcasts (allow_paid_broadcast, up to 1000/s).
    paid_broadcast: bool = False
    #: Seconds between polls of the wallet for refund status changes.
    refund_poll_interval: float = 60.0
    #: One-time code of every demo phone (like test numbers of common auth services).
    demo_fixed_code: str | None = "246810"
    #: Retention: how long each kind of record keeps personal content (shown by /privacy).
    #: Stored updates, hours after they were handled (then only the update id stays).
    retention_updates_hours: int = 24
    #: Messages the bot sent (the outbox), hours after sending; Telegram lets a bot delete
    #: its messages for 48 hours, which needs their ids.
    retention_sent_hours: int = 48
    #: Ticket transcripts, context and rating comments, days after the ticket closed.
    retention_transcript_days: int = 90
    #: Questions typed to the self-service router, days after they were asked.
    retention_question_days: int = 30
    #: Refund references, days after the refund's last status (refunded or rejected).
    retention_refund_days: int = 180
    #: Audit log entries, days.
    retention_audit_days: int = 365
    #: Profile, language and account link of a user who stopped writing, days.
    retention_profile_days: int = 730
    #: Seconds between retention purges.
    retention_purge_interval: float = 3600.0
    #: Let ``tgbot run`` use the demo wallet (its fixed codes and pages are for trying the bot,
    #: never for real users; ``tgbot demo`` needs no such switch).
    run_demo_wallet: bool = False
    demo: bool = field(default=False, compare=False)

    @property
    def agent_chat_ids(self) -> tuple[int, ...]:
        """Return the ids of the agents' groups."""
        return tuple(chat_id for chat_id, _ in self.agent_chats)

    @property
    def zone(self) -> ZoneInfo:
        """Return the configured time zone."""
        return ZoneInfo(self.timezone)

    @property
    def demo_wallet_file(self) -> Path:
        """Return where the demo wallet keeps its own database (:func:`demo_wallet_beside`
        unless ``demo_wallet_db_path`` says otherwise)."""
        return self.demo_wallet_db_path or demo_wallet_beside(self.db_path)

    def replace(self, **changes: Any) -> Config:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


# variable suffix -> (field name, parser)
_FIELDS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "TOKEN": ("token", _token),
    "API_BASE_URL": ("api_base_url", _url),
    "API_FILE_URL": ("api_file_url", _url),
    "DB_PATH": ("db_path", _path),
    "DATABASE_URL": ("database_url", _database_url),
    "DEMO_WALLET_DB_PATH": ("demo_wallet_db_path", _path),
    "ADMIN_IDS": ("admin_ids", _int_set),
    "AGENT_CHAT_ID": ("agent_chats", _agent_chats),
    "BUSINESS_HOURS": ("business_hours", _hours),
    "LINK_ALLOWLIST": ("link_allowlist", _domains),
    "REOPEN_WINDOW": ("reopen_window", _positive_float),
    "AGENT_LABEL": ("agent_label", _agent_label),
    "UNCLAIMED_REMINDER": ("unclaimed_reminder", _positive_float),
    "DEFAULT_LANGUAGE": ("default_language", _language),
    "TIMEZONE": ("timezone", _timezone),
    "WEBHOOK_URL": ("webhook_url", _optional_url),
    "WEBHOOK_LISTEN": ("webhook_listen", _str),
    "WEBHOOK_PORT": ("webhook_port", _positive_int),
    "WEBHOOK_SECRET": ("webhook_secret", _webhook_secret),
    "FLOW_TIMEOUT": ("flow_timeout", _positive_float),
    "BUTTON_TTL": ("button_ttl", _positive_float),
    "CONCURRENT_UPDATES": ("concurrent_updates", _positive_int),
    "PERSISTENCE_INTERVAL": ("persistence_interval", _positive_float),
    "LEASE_TTL": ("lease_ttl", _positive_float),
    "RECOVER_AFTER": ("recover_after", _positive_float),
    "STANDBY_RETRY": ("standby_retry", _positive_float),
    "RATE_BULK_PER_SECOND": ("rate_bulk_per_second", _positive_float),
    "RATE_GROUP_PER_MINUTE": ("rate_group_per_minute", _positive_float),
    "RATE_CHAT_PER_SECOND": ("rate_chat_per_second", _positive_float),
    "RATE_CHAT_BURST": ("rate_chat_burst", _positive_float),
    "RATE_PAID_PER_SECOND": ("rate_paid_per_second", _positive_float),
    "LOG_LEVEL": ("log_level", _log_level),
    "BACKEND": ("backend", _backend),
    "BACKEND_URL": ("backend_url", _optional_url),
    "BACKEND_API_KEY": ("backend_api_key", _optional_str),
    "BACKEND_API_KEY_FILE": ("backend_api_key_file", _path),
    "BACKEND_MAX_IN_FLIGHT": ("backend_max_in_flight", _positive_int),
    "WALLET_PUBLIC_URL": ("wallet_public_url", _url),
    "VERIFICATION_MAX_AGE": ("verification_max_age", _positive_float),
    "DEMO_FIXED_CODE": ("demo_fixed_code", _fixed_code),
    "REFUND_POLL_INTERVAL": ("refund_poll_interval", _positive_float),
    "BROADCAST_RATE": ("broadcast_rate", _positive_float),
    "REFUND_WEBHOOK_SECRET": ("refund_webhook_secret", _optional_str),
    "REFUND_WEBHOOK_LISTEN": ("refund_webhook_listen", _str),
    "REFUND_WEBHOOK_PORT": ("refund_webhook_port", _positive_int),
    "PAID_BROADCAST": ("paid_broadcast", _bool),
    "DEBUG_USER_TEXT": ("debug_user_text", _bool),
    "RETENTION_UPDATES_HOURS": ("retention_updates_hours", _positive_int),
    "RETENTION_SENT_HOURS": ("retention_sent_hours", _positive_int),
    "RETENTION_TRANSCRIPT_DAYS": ("retention_transcript_days", _positive_int),
    "RETENTION_QUESTION_DAYS": ("retention_question_days", _positive_int),
    "RETENTION_REFUND_DAYS": ("retention_refund_days", _positive_int),
    "RETENTION_AUDIT_DAYS": ("retention_audit_days", _positive_int),
    "RETENTION_PROFILE_DAYS": ("retention_profile_days", _positive_int),
    "RETENTION_PURGE_INTERVAL": ("retention_purge_interval", _positive_float),
    "RUN_DEMO_WALLET": ("run_demo_wallet", _bool),
}


#: Old variable suffix -> the one that replaced it (the new name wins when both are set).
#: TGBOT_RATE_OVERALL_PER_SECOND was a budget for every send; Telegram has none, and the only
#: shared budget left is the bulk one, so the old name sets that.
_ALIASES: dict[str, str] = {"RATE_OVERALL_PER_SECOND": "RATE_BULK_PER_SECOND"}


def _file_values(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"--config: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config: {path} is not valid TOML ({exc})") from None
    values: dict[str, str] = {}
    for key, value in data.items():
        suffix = key.upper()
        if suffix.startswith(ENV_PREFIX):
            suffix = suffix[len(ENV_PREFIX) :]
        if suffix not in _FIELDS and suffix not in _ALIASES:
            raise ConfigError(f"--config: unknown setting {key!r} in {path}")
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        values[suffix] = str(value)
    return values


def load_config(
    env: Mapping[str, str] | None = None, config_file: str | Path | None = None, **overrides: Any
) -> Config:
    """Build a :class:`Config` from a TOML file, then ``TGBOT_*`` variables, then ``overrides``.

    Raises:
        ConfigError: naming the first bad variable.
    """
    env = os.environ if env is None else env
    raw: dict[str, tuple[str, str]] = {}
    if config_file:
        for suffix, value in _file_values(Path(config_file)).items():
            raw[suffix] = (f"{suffix.lower()} in {config_file}", value)
    for suffix in (*_FIELDS, *_ALIASES):
        name = ENV_PREFIX + suffix
        if name in env:
            raw[suffix] = (name, env[name])
    for old, new in _ALIASES.items():
        if old in raw:
            raw.setdefault(new, raw.pop(old))
    kwargs: dict[str, Any] = {}
    for suffix, (source, value) in raw.items():
        field_name, parser = _FIELDS[suffix]
        kwargs[field_name] = parser(source, value)
    if "api_base_url" in kwargs and "api_file_url" not in kwargs:
        kwargs["api_file_url"] = _derive_file_url(kwargs["api_base_url"])
    kwargs.update(overrides)
    config = Config(**kwargs)
    if config.backend == "http" and not config.backend_url:
        raise ConfigError("TGBOT_BACKEND_URL: required when TGBOT_BACKEND=http")
    if config.retention_transcript_days * 86400 <= config.reopen_window:
        raise ConfigError(
            "TGBOT_RETENTION_TRANSCRIPT_DAYS: must be longer than TGBOT_REOPEN_WINDOW "
            "(a reopened ticket needs its transcript)"
        )
    problem = webhook_problem(config)
    if problem:
        raise ConfigError(problem)
    return config


def demo_wallet_beside(db_path: Path) -> Path:
    """Return the demo wallet's own file beside the bot's database ``db_path``:
    ``tgbot.db`` -> ``tgbot.wallet.db`` (an in-memory bot: an in-memory wallet)."""
    if str(db_path) == ":memory:":
        return db_path
    return db_path.with_name(f"{db_path.stem}.wallet{db_path.suffix or '.db'}")


def webhook_problem(config: Config) -> str | None:
    """Return why webhook mode may not start, or None: without a secret, anyone who can
    reach the port could post updates "from" an admin."""
    if config.webhook_url and not config.webhook_secret:
        return (
            "TGBOT_WEBHOOK_SECRET: required with TGBOT_WEBHOOK_URL (Telegram then sends it "
            "with every update and the bot refuses requests without it)"
        )
    return None


def demo_wallet_problem(config: Config) -> str | None:
    """Return why ``tgbot run`` may not use the configured backend, or None."""
    if config.backend == "demo" and not config.run_demo_wallet:
        return (
            "TGBOT_BACKEND: tgbot run needs a real wallet (TGBOT_BACKEND=http and "
            "TGBOT_BACKEND_URL); the demo wallet is for `tgbot demo`, or set "
            "TGBOT_RUN_DEMO_WALLET=true to run this bot on it anyway"
        )
    return None


def _derive_file_url(base_url: str) -> str:
    """Guess a Bot API server's file URL from its method URL (``.../bot`` -> ``.../file/bot``)."""
    if base_url.endswith("/bot"):
        return base_url[: -len("bot")] + "file/bot"
    return base_url.rstrip("/") + "/file/bot"
