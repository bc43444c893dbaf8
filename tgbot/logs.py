"""Redaction of every log record, at every level, wherever it goes (DESIGN 6, rule 8).

:func:`protect` installs a log record factory, so each record is rewritten when it is made,
before any handler, filter or test capture sees it:

- the bot token and other secrets of the configuration (webhook secrets, the wallet API
  key) are replaced by ``<redacted>`` — PTB logs ``Set Bot API URL: .../bot<token>`` at
  DEBUG, httpx logs every request URL, tracebacks may show them;
- card numbers and disclosed passwords are masked (:func:`tgbot.sensitive.mask`);
- what users typed is left out unless ``TGBOT_DEBUG_USER_TEXT`` is on: the payloads of
  PTB's Bot API calls, and every structured argument (an update, a SQL call with its
  parameters...) of the DEBUG records of the libraries (PTB logs "Processing update ..." with
  the whole update, aiosqlite every statement with its values) become a short summary.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from .sensitive import clean, mask, might_be_sensitive

REDACTED = "<redacted>"
#: PTB's DEBUG records whose second argument is a Bot API payload (texts users typed).
_PAYLOAD_RECORDS = frozenset(
    {
        "Calling Bot API endpoint `%s` with parameters `%s`",
        "Call to Bot API endpoint `%s` finished with return value `%s`",
    }
)
_PAYLOAD_HIDDEN = "(payload not logged: TGBOT_DEBUG_USER_TEXT=true shows it)"
#: Loggers of this project: they never log what users typed (checked in review).
_OWN_LOGGERS = ("tgbot", "handlers", "storage", "tests")
#: Longest plain string argument of a library's DEBUG record kept as it is (URLs, names).
_SHORT = 200

_lock = threading.Lock()
_secrets: set[str] = set()
_state = {"user_text": False, "installed": False}


def protect(secrets: Iterable[str | None] = (), *, user_text: bool | None = None) -> None:
    """Redact ``secrets`` from every log record from now on (also URL-encoded); with
    ``user_text``, log Bot API payloads (masked) instead of leaving them out."""
    with _lock:
        for secret in secrets:
            if secret and len(secret) >= 6:
                _secrets.update({secret, quote(secret, safe="")})
        if user_text is not None:
            _state["user_text"] = user_text
        if not _state["installed"]:
            factory = logging.getLogRecordFactory()

            def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = factory(*args, **kwargs)
                redact_record(record)
                return record

            logging.setLogRecordFactory(redacting_factory)
            _state["installed"] = True


def redact(text: str) -> str:
    """Return ``text`` with the registered secrets replaced and card numbers and passwords
    masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    if might_be_sensitive(text):
        masked = mask(text, codes=False)
        if masked != clean(text):
            return masked
    return text


def _summary(value: Any) -> Any:
    """A library's DEBUG argument as logged without user text: numbers, short strings and
    names as they are; anything structured (an update, a payload) as its type only."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and len(value) <= _SHORT:
        return value
    return f"<{type(value).__name__}: not logged, TGBOT_DEBUG_USER_TEXT=true shows it>"


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite ``record`` in place: message formatted and redacted, exception text too."""
    args = record.args
    hide = not _state["user_text"]
    if hide and record.msg in _PAYLOAD_RECORDS and isinstance(args, tuple):
        args = (*args[:1], _PAYLOAD_HIDDEN, *args[2:])
    elif (
        hide
        and args
        and record.levelno <= logging.DEBUG
        and not record.name.startswith(_OWN_LOGGERS)
    ):
        if isinstance(args, tuple):
            args = tuple(_summary(arg) for arg in args)
        elif isinstance(args, dict):
            args = {key: _summary(value) for key, value in args.items()}
    try:
        message = str(record.msg) % args if args else str(record.msg)
    except (TypeError, ValueError, KeyError):
        message = f"{record.msg} {args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
