"""After the whole suite: every file the bot wrote (its databases with their WAL, the demo
wallet's own database, the logs of the session at every level, transcripts, the demo's files)
holds none of the secrets the tests typed into it (DESIGN 6, rules 4 and 8; "Prove it" of the
security review)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SESSION_LOG
from tests.support.generators import TYPED_SECRETS, remember
from tgbot.sensitive import clean


def _forms(secret: str) -> set[bytes]:
    """The ways a secret could be written to a file: as typed, JSON-escaped, cleaned."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms.add(clean(secret))
    return {form.encode() for form in forms if len(form) >= 6}


def _files(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.is_file() and not p.is_symlink()]


def test_the_scan_finds_a_secret_written_in_clear(tmp_path):
    # The scan itself works: a secret in a file is found, in each form.
    (tmp_path / "x.db-wal").write_bytes(json.dumps({"t": "卡 4111\u200b1111"}).encode())
    assert any(form in (tmp_path / "x.db-wal").read_bytes() for form in _forms("卡 4111\u200b1111"))


@pytest.mark.after_all
def test_no_secret_typed_during_the_suite_is_in_any_file_the_bot_wrote(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    remember("4111 1111 1111 1111")
    files = _files(base)
    assert any(p.name == SESSION_LOG for p in files)
    assert any(p.name.endswith(".db-wal") or p.name.endswith(".db") for p in files)
    assert any(p.name.endswith(".wallet.db") for p in files)  # the demo wallet's own files too
    needles = {form: secret for secret in TYPED_SECRETS for form in _forms(secret)}
    found = []
    for path in files:
        data = path.read_bytes()
        found.extend(
            f"{path.relative_to(base)}: {secret!r}"
            for form, secret in needles.items()
            if form in data
        )
    assert found == [], found
