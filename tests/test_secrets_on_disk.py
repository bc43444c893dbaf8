"""After the whole suite: every file the bot wrote (its databases with their WAL, the demo
wallet's own database, the logs of the session at every level, transcripts, the demo's files)
holds none of the secrets the tests typed into it (DESIGN 6, rules 4 and 8; "Prove it" of the
security review).

On several workers (pytest-xdist, README's test command) no test runs after every other
worker's, so there the scan is run by the controller once every worker has finished, over
every worker's files and secrets (``tests/conftest.py``); this test runs in a run of one
process.
"""

from __future__ import annotations

import json

import pytest

from tests.support.disk_scan import forms, scan
from tests.support.generators import TYPED_SECRETS, remember


def test_the_scan_finds_a_secret_written_in_clear(tmp_path):
    # The scan itself works: a secret in a file is found, in each form, and only there.
    secret = "卡 4111\u200b1111"
    for name in ("session.log", "bot.db", "x.wallet.db"):
        (tmp_path / name).write_bytes(b"nothing")
    assert scan(tmp_path, [secret]) == []
    (tmp_path / "x.db-wal").write_bytes(json.dumps({"t": secret}).encode())
    assert scan(tmp_path, [secret]) == [f"x.db-wal: {secret!r}"]
    assert any(form in (tmp_path / "x.db-wal").read_bytes() for form in forms(secret))


def test_the_scan_refuses_a_directory_without_the_suites_files(tmp_path):
    (tmp_path / "bot.db").write_bytes(b"")
    with pytest.raises(AssertionError, match=r"session\.log"):
        scan(tmp_path, ["4111 1111 1111 1111"])


@pytest.mark.after_all
def test_no_secret_typed_during_the_suite_is_in_any_file_the_bot_wrote(tmp_path_factory):
    remember("4111 1111 1111 1111")
    assert scan(tmp_path_factory.getbasetemp(), TYPED_SECRETS) == []
