"""Long polling on PostgreSQL with standbys (issue 22): one process polls, holding the poller
lock; the others wait and touch nothing; a killed poller is replaced within seconds with no
update lost; a poller whose lock connection is cut stops polling before a standby starts."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time

import asyncpg

from storage.postgres.db import lock_key
from tests.e2e.test_process import ProcessBot, _texts, server  # noqa: F401
from tests.support.processes import socket_owner
from tests.support.waiting import wait_until
from tgbot.sandbox.server import EmulatorServer

USERS = 10
MESSAGES = 6


class PollLog:
    """Which process made each Bot API request, and when (resolved as the request arrives,
    while the asking connection is open)."""

    def __init__(self, emulator_server: EmulatorServer) -> None:
        self.server = emulator_server
        self.pids: set[int] = set()
        #: (monotonic time, method in lower case, pid or None) of every request.
        self.requests: list[tuple[float, str, int | None]] = []
        emulator_server.on_request = self._seen

    def _seen(self, method: str, address: object) -> None:
        if isinstance(address, tuple):
            pid = socket_owner(address[1], self.server.port or 0, self.pids)
            self.requests.append((time.monotonic(), method.lower(), pid))

    @property
    def polls(self) -> list[tuple[float, int | None]]:
        """(time, pid) of every getUpdates."""
        return [(at, pid) for at, method, pid in self.requests if method == "getupdates"]

    def by(self, pid: int, since: float = 0.0) -> list[float]:
        """Times of ``pid``'s getUpdates since ``since``."""
        return [at for at, who in self.polls if who == pid and at >= since]

    def any_by(self, pid: int) -> list[str]:
        """Every Bot API method ``pid`` called."""
        return [method for _, method, who in self.requests if who == pid]


def _env(postgres_url: str, retry: float) -> dict[str, str]:
    return {
        "TGBOT_DATABASE_URL": postgres_url,
        "TGBOT_STANDBY_RETRY": str(retry),
        "TGBOT_LOG_LEVEL": "INFO",
        "SLOW_SECONDS": "0.2",
    }


def _bot(srv, children, tmp_path, name: str, env: dict[str, str]) -> ProcessBot:
    return ProcessBot(
        srv, children, tmp_path / f"{name}.wallet.db", tmp_path / f"{name}.log", **env
    )


async def _started_as(bot: ProcessBot, text: str) -> None:
    await wait_until(lambda: text in bot.log_path.read_text(), 90, f"{bot.log_path.name}: {text}")


async def _launch(bot: ProcessBot, log: PollLog, text: str, *command: str) -> None:
    """Start ``bot`` (``command``: what it runs, the test bot by default), attribute its
    Bot API requests to it in ``log``, and wait until its log says ``text``."""
    await bot.start(*command)
    assert bot.proc is not None
    log.pids.add(bot.proc.pid)
    await _started_as(bot, text)


async def _write(emu, user, gap: float) -> None:
    """One user writes ``/slow 1`` .. ``/slow N``, a message every ``gap`` seconds."""
    for n in range(1, MESSAGES + 1):
        emu.user_send(user.id, f"/slow {n}")
        await asyncio.sleep(gap)
    done = [f"slow {n} done" for n in range(1, MESSAGES + 1)]
    await wait_until(lambda: all(d in _texts(emu, user.id) for d in done), 60, "every answer")


async def test_a_standby_takes_over_a_killed_poller_and_loses_nothing(
    server: EmulatorServer,  # noqa: F811
    postgres_url: str,  # before children: the bots are killed before the schema is dropped
    children,
    tmp_path,
) -> None:
    emu = server.emulator
    log = PollLog(server)
    env = _env(postgres_url, 1.0)  # the default retry: the takeover measured is the default's
    poller = _bot(server, children, tmp_path, "poller", env)
    standby = _bot(server, children, tmp_path, "standby", env)
    await _launch(poller, log, "Application started")
    assert "Holding the poller lock" in poller.log_path.read_text()
    await _launch(standby, log, "Standby: not polling")
    # The standby names the holder: the poller's host and process id.
    assert re.search(rf"tgbot-instance \S+:{poller.proc.pid}\)", standby.log_path.read_text())

    # A third instance, `tgbot run` itself, waits too; SIGTERM ends its wait at once.
    third = _bot(server, children, tmp_path, "third", env)
    await _launch(third, log, "Standby: not polling", "tgbot", "run")
    third.proc.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    code = await asyncio.wait_for(third.proc.wait(), 10)
    third_stop = time.monotonic() - stopping
    assert code == 0
    third_log = third.log_path.read_text()
    assert "Standby stopping (it never polled)" in third_log and "Traceback" not in third_log
    assert "Application started" not in third_log
    assert log.any_by(third.proc.pid) == []  # it never asked Telegram anything

    users = [emu.add_user(f"User{i}", language_code="en") for i in range(USERS)]
    writers = [asyncio.create_task(_write(emu, user, 0.1)) for user in users]
    conn = await asyncpg.connect(postgres_url)
    try:
        expected = USERS * MESSAGES
        await wait_until(
            lambda: sum(len(emu.bot_messages(u.id)) for u in users) >= expected // 3,
            60,
            "answers to build up",
        )
        # Until now exactly one process polled: the poller. The standby asked Telegram nothing.
        assert log.by(poller.proc.pid)
        assert {pid for _, pid in log.polls} <= {poller.proc.pid, None}
        assert log.any_by(standby.proc.pid) == []
        await poller.kill()
        killed_at = time.monotonic()
        in_flight = await conn.fetchval("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL")
        answered = sum(len(emu.bot_messages(u.id)) for u in users)
        await wait_until(
            lambda: sum(len(emu.bot_messages(u.id)) for u in users) > answered,
            30,
            "the first answer after the kill",
        )
        first_answer = time.monotonic() - killed_at
        assert log.by(standby.proc.pid)
        takeover = log.by(standby.proc.pid)[0] - killed_at
        await asyncio.gather(*writers)  # every user got every answer (else a wait times out)
        await emu.settle(quiet=0.5, timeout=30)
        for user in users:
            texts = _texts(emu, user.id)
            wanted = [f"slow {n} done" for n in range(1, MESSAGES + 1)]
            slows = [t for t in texts if re.fullmatch(r"slow \d+ done", t)]
            assert sorted(set(slows), key=slows.index) == wanted, (user.id, texts)  # in order
        sent = sum(len(_texts(emu, user.id)) for user in users)
        assert sent - expected <= in_flight  # duplicates: at most the updates in flight
        assert await conn.fetchval("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL") == 0
        standby_log = standby.log_path.read_text()
        assert "Traceback" not in standby_log
        assert "Holding the poller lock" in standby_log
        # After the kill only the standby polls.
        assert {pid for at, pid in log.polls if at > killed_at} <= {standby.proc.pid, None}
        print(
            f"takeover {takeover:.2f}s (kill -9 to the standby's first getUpdates), "
            f"first answer after {first_answer:.2f}s, "
            f"in flight at the kill {in_flight}, duplicates {sent - expected}, "
            f"standby stopped by SIGTERM in {third_stop:.2f}s, "
            f"getUpdates of no known process {sum(pid is None for _, pid in log.polls)}"
        )
    finally:
        await conn.close()


async def test_a_poller_whose_lock_connection_is_cut_stops_and_the_standby_takes_over(
    server: EmulatorServer,  # noqa: F811
    postgres_url: str,  # before children: the bots are killed before the schema is dropped
    children,
    tmp_path,
) -> None:
    emu = server.emulator
    log = PollLog(server)
    env = _env(postgres_url, 0.5)
    poller = _bot(server, children, tmp_path, "poller", env)
    standby = _bot(server, children, tmp_path, "standby", env)
    await _launch(poller, log, "Application started")
    await _launch(standby, log, "Standby: not polling")

    alice = emu.add_user("Alice", language_code="en")
    emu.user_send(alice.id, "/slow 1")
    await wait_until(lambda: "slow 1 done" in _texts(emu, alice.id), 30, "the poller's answer")

    # `tgbot migrate` refuses while a bot runs.
    migrate = await children.spawn(
        sys.executable, "-m", "tgbot", "migrate",
        env={**__import__("os").environ, "TGBOT_DATABASE_URL": postgres_url,
             "TGBOT_TOKEN": "123:T"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await migrate.communicate()
    assert migrate.returncode == 3, err
    assert b"Another instance is already running" in err

    # Cut the poller's lock connection (as a PostgreSQL restart or a network cut would).
    conn = await asyncpg.connect(postgres_url)
    try:
        scope = "/".join(await conn.fetchrow("SELECT current_database(), current_schema()"))
        backend = await conn.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = $1",
            lock_key(scope, "instance"),
        )
        assert backend is not None
        cut_at = time.monotonic()
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", backend)
        emu.user_send(alice.id, "/slow 2")  # while the poller stops and the standby starts
        code = await asyncio.wait_for(poller.proc.wait(), 30)
        stopped = time.monotonic() - cut_at
        assert code == 4
        poller_log = poller.log_path.read_text()
        assert "Lost the poller lock" in poller_log
        assert "Traceback" not in poller_log
        await wait_until(lambda: log.by(standby.proc.pid), 30, "the standby to poll")
        standby_polls = log.by(standby.proc.pid)[0] - cut_at
        # Never two at once: the poller asked nothing once the standby began to poll.
        assert not log.by(poller.proc.pid, since=log.by(standby.proc.pid)[0])
        await wait_until(lambda: "slow 2 done" in _texts(emu, alice.id), 30, "the answer")
        emu.user_send(alice.id, "/slow 3")
        await wait_until(lambda: "slow 3 done" in _texts(emu, alice.id), 30, "the answer")
        assert _texts(emu, alice.id) == ["slow 1 done", "slow 2 done", "slow 3 done"]
        print(
            f"fenced poller exited in {stopped:.2f}s; the standby polled after {standby_polls:.2f}s"
        )
    finally:
        await conn.close()
