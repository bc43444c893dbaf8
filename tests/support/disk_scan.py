"""The scan after the whole suite: does any file the bot wrote hold a secret a test typed?

Used by ``tests/test_secrets_on_disk.py`` (a run in one process) and by ``tests/conftest.py``
on pytest-xdist's controller (a run on several workers: the scan waits for every worker).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tgbot.sensitive import clean

#: The session's log, every record at every level (the scan reads it as one of the files).
SESSION_LOG = "session.log"


def forms(secret: str) -> set[bytes]:
    """The ways a secret could be written to a file: as typed, JSON-escaped, cleaned."""
    shapes = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    shapes.add(clean(secret))
    return {shape.encode() for shape in shapes if len(shape) >= 6}


def files_under(base: Path) -> list[Path]:
    """Every regular file under ``base``."""
    return [p for p in base.rglob("*") if p.is_file() and not p.is_symlink()]


def scan(base: Path, secrets: Iterable[str]) -> list[str]:
    """Return "<file>: <secret>" for each secret found in a file under ``base``; raise
    AssertionError when the files are not what the suite writes (the scan would prove
    nothing): the session's log, the bot's databases, the demo wallet's."""
    files = files_under(base)
    assert any(p.name == SESSION_LOG for p in files), f"no {SESSION_LOG} under {base}"
    assert any(p.name.endswith((".db-wal", ".db")) for p in files), f"no database under {base}"
    assert any(p.name.endswith(".wallet.db") for p in files), f"no wallet database under {base}"
    needles = {form: secret for secret in secrets for form in forms(secret)}
    found = []
    for path in files:
        data = path.read_bytes()
        found.extend(
            f"{path.relative_to(base)}: {secret!r}"
            for form, secret in needles.items()
            if form in data
        )
    return found
