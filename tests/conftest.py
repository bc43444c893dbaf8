"""Shared fixtures: the real bot on the Bot API emulator, one fresh database per test."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from hypothesis import HealthCheck, settings

from tests.harness import BotHarness
from tests.support.disk_scan import SESSION_LOG, scan
from tests.support.generators import TYPED_SECRETS, remember
from tests.support.leaks import card_numbers_in
from tests.support.postgres import PostgresServer, find_bindir, find_in_schema, missing_reason
from tests.support.processes import ChildProcesses
from tests.support.survey import quiz_flow, support_handlers, survey_flow
from tgbot.answers.router import default_router

# Property-based tests: a fixed seed and a bounded number of examples by default (CI runs
# exactly this), more examples with random seeds locally: TGBOT_HYPOTHESIS_EXAMPLES=5000.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=100,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=int(os.environ.get("TGBOT_HYPOTHESIS_EXAMPLES") or 100),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("deep" if os.environ.get("TGBOT_HYPOTHESIS_EXAMPLES") else "ci")

#: Card numbers the tests type into chats (Luhn-valid test numbers).
TEST_CARDS = ("4111111111111111", "4242424242424242", "5555555555554444")
remember(*TEST_CARDS, *(" ".join(n[i : i + 4] for i in range(0, 16, 4)) for n in TEST_CARDS))


@pytest.fixture(scope="session", autouse=True)
def session_log(tmp_path_factory):
    """Write every log record of the session, DEBUG included, to a file among the files the
    bot wrote, so the scan after the whole suite covers the logs too."""
    path = tmp_path_factory.getbasetemp() / SESSION_LOG
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # aiosqlite logs two records per statement: half the volume, and only statements (their
    # values are summarized by tgbot.logs anyway, which tests/unit/test_review_findings.py
    # proves at DEBUG).
    quiet = logging.getLogger("aiosqlite")
    quiet_level = quiet.level
    quiet.setLevel(logging.INFO)
    yield path
    quiet.setLevel(quiet_level)
    root.setLevel(level)
    root.removeHandler(handler)
    handler.close()


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (started by the first test that
    needs it); tests skip, saying why, only where no PostgreSQL binaries exist."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    bindir = find_bindir()
    assert bindir is not None
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture
async def postgres_url(postgres_server):
    """The URL of a fresh, empty schema on the session's PostgreSQL server."""
    url = await postgres_server.new_schema()
    yield url
    await postgres_server.drop_schema(url)


#: On pytest-xdist's controller: the secrets every worker's tests typed, and whether any worker
#: left a test marked ``after_all`` to it (the scan runs only then, as the test would).
_WORKER_SECRETS = pytest.StashKey[set[str]]()
_SCAN_LEFT = pytest.StashKey[bool]()


def pytest_collection_modifyitems(config, items):
    """Run the tests marked ``after_all`` (the scan of what the bot wrote) last. On pytest-xdist's
    workers (README's ``-n 2``) no test runs after every other worker's: there the test is
    deselected and the controller runs the scan once they have all finished
    (:func:`pytest_sessionfinish`)."""
    after = [item for item in items if item.get_closest_marker("after_all") is not None]
    if hasattr(config, "workerinput"):
        items[:] = [item for item in items if item not in after]
        config.hook.pytest_deselected(items=after)
        config.stash[_SCAN_LEFT] = bool(after)
        return
    items.sort(key=lambda item: item in after)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist's controller: keep what each worker sent at its end."""
    output = node.workeroutput
    node.config.stash.setdefault(_WORKER_SECRETS, set()).update(output.get("typed_secrets", ()))
    if output.get("scan_left"):
        node.config.stash[_SCAN_LEFT] = True


def pytest_sessionfinish(session):
    """On a worker, send the secrets its tests typed to the controller; on the controller, once
    every worker has finished, scan every file under the run's base directory (each worker's
    is below it) for every worker's secrets: the after-all scan of a run on several workers."""
    config = session.config
    if hasattr(config, "workeroutput"):
        config.workeroutput["typed_secrets"] = sorted(TYPED_SECRETS)
        config.workeroutput["scan_left"] = config.stash.get(_SCAN_LEFT, False)
        return
    if not config.stash.get(_SCAN_LEFT, False) or session.exitstatus not in (0, 1):
        return  # one process (the test scans), no scan selected, or interrupted
    secrets = config.stash.get(_WORKER_SECRETS, set()) | TYPED_SECRETS
    base = config._tmp_path_factory.getbasetemp()  # pytest-xdist's own way to its workers' dirs
    try:
        found = scan(base, secrets)
    except AssertionError as exc:
        found = [f"nothing the suite writes was found: {exc}"]
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    report = config.pluginmanager.get_plugin("terminalreporter")
    if report is not None:
        verdict = "FOUND SECRETS" if found else "none found"
        report.write_line("")
        report.write_line(
            f"after every worker: scanned {base} for {len(secrets)} typed secrets: {verdict}",
            red=bool(found),
        )
        for line in found:
            report.write_line(f"  {line}", red=True)


#: Rates high enough that tests never wait for the send lanes, replies, bulk sends and relays
#: into groups alike (the tests of the lanes and of coalescing set their own).
FAST = {
    "rate_bulk_per_second": 10_000.0,
    "rate_chat_per_second": 10_000.0,
    "rate_group_per_minute": 600_000.0,
}


@pytest.fixture
async def children():
    """Start child processes that are killed (their whole process group) when the test ends."""
    procs = ChildProcesses()
    try:
        yield procs
    finally:
        await procs.aclose()


@pytest.fixture
def bot_database_url():
    """Where a test's bots keep their records: None for the SQLite file in the test's
    directory; a module overrides it to run its bots on PostgreSQL (test_postgres_flows)."""
    return None


@pytest.fixture
async def make_bot(tmp_path, bot_database_url):
    """Return a factory of started bots on one database (tests may restart them)."""
    harnesses: list[BotHarness] = []
    # The question router loads once per process (seconds on a busy machine): before
    # the first bot, so no test's first question waits for it past the harness's timeout.
    await asyncio.to_thread(default_router)

    async def factory(
        *, http: bool = False, emu=None, webhook_port: int | None = None, **config
    ) -> BotHarness:
        harness = BotHarness(
            tmp_path / "bot.db",
            emu,
            database_url=bot_database_url,
            http=http,
            webhook_port=webhook_port,
            extra_flows=[survey_flow, quiz_flow],
            extra_handlers=[support_handlers],
            **{**FAST, **config},
        )
        harnesses.append(harness)
        return await harness.start()

    yield factory
    for harness in harnesses:
        await harness.close()
    # Whatever the test typed, no test card number is ever on disk in clear (DESIGN 6.4), in
    # any form it was typed in (spaces, dashes, dots, invisible or full-width characters):
    # not in the bot's database, nor in the demo wallet's own file (where cards are bound).
    files = [*tmp_path.glob("bot.db*"), *tmp_path.glob("bot.wallet.db*")]
    blob = b"".join(p.read_bytes() for p in files)
    assert card_numbers_in(blob, TEST_CARDS) == [], "card number stored in clear"
    if bot_database_url:
        forms = [
            form
            for number in TEST_CARDS
            for form in (number, " ".join(number[i : i + 4] for i in range(0, 16, 4)))
        ]
        assert await find_in_schema(bot_database_url, forms) == []


@pytest.fixture
async def bot(make_bot):
    """The bot (with the test flows) on an in-process emulator."""
    harness = await make_bot()
    yield harness
    await harness.close()
    assert harness.violations == []


@pytest.fixture(params=["in-process", "http"])
async def any_bot(request, make_bot):
    """The bot over the in-process transport and over HTTP on 127.0.0.1."""
    harness = await make_bot(http=request.param == "http")
    yield harness
    await harness.close()
    assert harness.violations == []
