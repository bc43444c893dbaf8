"""Three workers on one PostgreSQL database behind one webhook port; one is killed -9 under
load (issue 22): no update lost, duplicates at most those in flight, every chat in order,
the once-per-deployment duties resumed by another worker within the lease time."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time

import asyncpg

from tests.e2e.test_process import ProcessBot, _free_port, _texts, server  # noqa: F401
from tests.support.processes import alive, child_pids
from tests.support.waiting import wait_until
from tgbot.sandbox.server import EmulatorServer

USERS = 24
BURST = 4
LEASE_TTL = 3.0
FLOW_TIMEOUT = 20.0


def _worker_env(postgres_url: str, port: int) -> dict[str, str]:
    return {
        "TGBOT_DATABASE_URL": postgres_url,
        "TGBOT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
        "TGBOT_WEBHOOK_PORT": str(port),
        "TGBOT_WEBHOOK_SECRET": "workers-test-secret",
        "TGBOT_LEASE_TTL": str(LEASE_TTL),
        "TGBOT_RECOVER_AFTER": "4",
        "TGBOT_FLOW_TIMEOUT": str(FLOW_TIMEOUT),
        "SLOW_SECONDS": "0.05",
    }


async def _walk(emu, user, word: str) -> None:
    """One user's session: the survey through three workers, then a burst of commands."""
    emu.user_send(user.id, "/survey")
    await wait_until(lambda: "Step 1/3: pick a colour" in _texts(emu, user.id), 60, "step 1")
    menu = emu.bot_messages(user.id)[-1]["message_id"]
    emu.press_button(user.id, user.id, menu, "Red")
    await wait_until(lambda: "Step 2/3: type a word" in _texts(emu, user.id), 60, "step 2")
    emu.user_send(user.id, word)
    await wait_until(lambda: f"Step 3/3: red {word}?" in _texts(emu, user.id), 60, "step 3")
    for n in range(1, BURST + 1):  # without waiting: several in flight for one chat
        emu.user_send(user.id, f"/slow {n}")
    done = [f"slow {n} done" for n in range(1, BURST + 1)]
    await wait_until(lambda: all(d in _texts(emu, user.id) for d in done), 60, "the burst")


async def _what_happened(
    conn: asyncpg.Connection, emu, stuck, workers, leader, killed_wall: float
) -> str:
    """What a failed walk needs to be understood after the run's files are gone: each stuck
    user's answers and stored updates, and what the workers logged besides routine jobs."""
    lines = [f"killed {leader.log_path.name} at {killed_wall:.3f}, now {time.time():.3f}"]
    for user in stuck:
        rows = await conn.fetch(
            "SELECT update_id, received_at, done_at, left(payload, 40) AS kind FROM inbox "
            "WHERE chat_id = $1 "
            "ORDER BY update_id",
            user.id,
        )
        states = await conn.fetch(
            "SELECT name, key, state, updated_at FROM ptb_conversations WHERE key LIKE $1",
            f"%{user.id}%",
        )
        lines += [
            f"user {user.id}: answers {_texts(emu, user.id)}",
            *(f"  inbox {dict(row)}" for row in rows),
            *(f"  state {dict(row)}" for row in states),
        ]
    for worker in workers:
        logged = [
            line
            for line in worker.log_path.read_text().splitlines()
            if "apscheduler" not in line and "Application started" not in line
        ]
        lines += [f"{worker.log_path.name}:", *logged[-60:]]
    return "\n".join(lines)


async def _holder(conn: asyncpg.Connection) -> tuple[str, int] | None:
    row = await conn.fetchrow(
        "SELECT holder, token FROM leases WHERE name = 'duties' "
        "AND expires_at > extract(epoch FROM clock_timestamp())"
    )
    return (row["holder"], row["token"]) if row else None


async def test_three_workers_lose_nothing_when_one_is_killed(
    server: EmulatorServer,  # noqa: F811
    postgres_url: str,  # before children: the workers are killed before the schema is dropped
    children,
    tmp_path,
) -> None:
    emu = server.emulator
    emu.webhook_connections = 8  # as Telegram: several connections, each to any worker
    port = _free_port()
    env = _worker_env(postgres_url, port)
    workers = [
        ProcessBot(server, children, tmp_path / f"wallet{i}.db", tmp_path / f"w{i}.log", **env)
        for i in range(3)
    ]
    for worker in workers:
        await worker.start()
    conn = await asyncpg.connect(postgres_url)
    try:
        for worker in workers:
            await wait_until(
                lambda w=worker: "Application started" in w.log_path.read_text(),
                60,
                "a worker to start",
            )
        deadline = time.monotonic() + 60
        while (holder := await _holder(conn)) is None:
            assert time.monotonic() < deadline, "no worker took the duties"
            await asyncio.sleep(0.05)
        by_pid = {worker.proc.pid: worker for worker in workers}
        leader = by_pid[int(holder[0].split(":")[1])]

        # A user left mid-flow: only the duties holder's job ends it, after FLOW_TIMEOUT.
        idler = emu.add_user("Idler", language_code="en")
        emu.user_send(idler.id, "/survey")
        await wait_until(lambda: "Step 1/3: pick a colour" in _texts(emu, idler.id), 60, "idler")

        users = [emu.add_user(f"User{i}", language_code="en") for i in range(USERS)]
        walks = [asyncio.create_task(_walk(emu, user, f"w{i}")) for i, user in enumerate(users)]
        # Kill the duties holder once a third of the answers are out.
        expected = USERS * (3 + BURST)
        await wait_until(
            lambda: sum(len(emu.bot_messages(u.id)) for u in users) >= expected // 3,
            60,
            "load to build up",
        )
        await leader.kill()
        killed_at, killed_wall = time.monotonic(), time.time()
        in_flight = await conn.fetchval("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL")

        # The duties move to another worker within the lease time (plus one renewal step).
        async def taken_over() -> bool:
            current = await _holder(conn)
            return current is not None and current[0] != holder[0]

        while not await taken_over():
            assert time.monotonic() - killed_at < 2 * LEASE_TTL + 2, "duties not taken over"
            await asyncio.sleep(0.05)
        takeover = time.monotonic() - killed_at
        assert takeover <= LEASE_TTL + LEASE_TTL / 3 + 2

        try:
            await asyncio.gather(*walks)  # every user got every answer (else a wait times out)
        except AssertionError as exc:
            stuck = [u for u, w in zip(users, walks, strict=True) if w.done() and w.exception()]
            raise AssertionError(
                f"{exc}\n{await _what_happened(conn, emu, stuck, workers, leader, killed_wall)}"
            ) from exc

        for i, user in enumerate(users):
            texts = _texts(emu, user.id)
            # In order: each step after the one before, and the burst in the order sent.
            steps = [
                "Step 1/3: pick a colour",
                "Step 2/3: type a word",
                f"Step 3/3: red w{i}?",
                *[f"slow {n} done" for n in range(1, BURST + 1)],
            ]
            firsts = [texts.index(step) for step in steps if step in texts]
            assert firsts == sorted(firsts), (user.id, texts)
            slows = [t for t in texts if re.fullmatch(r"slow \d+ done", t)]
            assert sorted(set(slows), key=slows.index) == steps[3:], (user.id, texts)
        # What the killed worker stored and never finished is handled by the duties holder.
        deadline = time.monotonic() + 60
        while await conn.fetchval("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL"):
            assert time.monotonic() < deadline, "updates left unfinished"
            await asyncio.sleep(0.1)
        await server.emulator.settle(quiet=0.5, timeout=30)
        # Duplicates: only answers to updates the killed worker had in flight.
        sent = sum(len(_texts(emu, user.id)) for user in users)
        distinct = sum(len(set(_texts(emu, user.id))) for user in users)
        assert sent - distinct <= in_flight

        # The scheduled job runs on the new holder: the idle flow ends.
        await wait_until(
            lambda: len(emu.bot_messages(idler.id)) >= 2, FLOW_TIMEOUT + 30, "the idle flow's end"
        )
        logs = "".join(w.log_path.read_text() for w in workers)
        assert "Traceback" not in logs
        print(
            f"takeover {takeover:.1f}s, in flight at kill {in_flight}, duplicates {sent - distinct}"
        )
    finally:
        await conn.close()


def test_several_workers_on_sqlite_are_refused_in_one_line(tmp_path) -> None:
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "TGBOT_TOKEN": "123456:TEST",
        "TGBOT_DB_PATH": str(tmp_path / "bot.db"),
        "TGBOT_WEBHOOK_URL": "https://bot.example/hook",
        "TGBOT_WEBHOOK_SECRET": "workers-test-secret",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tgbot", "run", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --workers: several workers need PostgreSQL (TGBOT_DATABASE_URL); a SQLite "
        "file serves one process"
    ]
    assert not (tmp_path / "bot.db").exists()  # refused before opening anything


async def test_supervisor_serves_stops_on_ctrl_c_and_restarts_a_killed_worker(
    server: EmulatorServer,  # noqa: F811
    postgres_url: str,  # before children: the workers are killed before the schema is dropped
    children,
    tmp_path,
) -> None:
    """``tgbot run --workers 2``: a user is served; each worker killed -9 in turn is started
    again and the bot answers from the new ones; Ctrl-C stops the supervisor and its
    workers, none left."""
    emu = server.emulator
    emu.webhook_connections = 8
    port = _free_port()
    env = {**_worker_env(postgres_url, port), "TGBOT_LOG_LEVEL": "INFO"}
    del env["SLOW_SECONDS"]
    supervisor = ProcessBot(server, children, tmp_path / "wallet.db", tmp_path / "run.log", **env)
    await supervisor.start("tgbot", "run", "--workers", "2")
    assert supervisor.proc is not None
    log = supervisor.log_path

    def started() -> int:
        return log.read_text().count("Application started")

    await wait_until(lambda: started() == 2, 90, "two workers to start")
    originals = child_pids(supervisor.proc.pid)
    assert len(originals) == 2

    alice = emu.add_user("Alice", language_code="en")
    emu.user_send(alice.id, "/start")
    await wait_until(lambda: len(_texts(emu, alice.id)) == 1, 60, "the greeting")
    assert _texts(emu, alice.id)[0].startswith("Hello, Alice!")

    async def all_handled() -> None:
        # A reply goes out before its update is marked done: a kill in between repeats the
        # reply (at least once, docs/postgres.md). Kill only once nothing is in flight.
        conn = await asyncpg.connect(postgres_url)
        try:
            deadline = time.monotonic() + 60
            while await conn.fetchval("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL"):
                assert time.monotonic() < deadline, "updates left unfinished"
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    # Kill each original worker in turn; the supervisor starts another each time.
    workers = set(originals)
    for n, victim in enumerate(sorted(originals), start=1):
        await all_handled()
        os.kill(victim, signal.SIGKILL)
        await wait_until(lambda v=victim: not alive(v), 30, "the killed worker to be reaped")
        await wait_until(
            lambda known=workers: len(child_pids(supervisor.proc.pid) - known) == 1,
            30,
            "a new worker",
        )
        workers = child_pids(supervisor.proc.pid)
        await wait_until(lambda n=n: started() == 2 + n, 90, "the new worker to start")
    assert workers.isdisjoint(originals) and len(workers) == 2
    # Only started-again workers are left: they answer (and know where Alice is).
    emu.user_send(alice.id, "/help")
    await wait_until(lambda: len(_texts(emu, alice.id)) == 2, 60, "the help")
    assert _texts(emu, alice.id)[1].startswith("What I can do")
    bob = emu.add_user("Bob", language_code="en")
    emu.user_send(bob.id, "/start")
    await wait_until(lambda: len(_texts(emu, bob.id)) == 1, 60, "Bob's greeting")
    assert _texts(emu, bob.id)[0].startswith("Hello, Bob!")

    # Ctrl-C in the terminal: SIGINT to the whole foreground group, supervisor and workers.
    os.killpg(supervisor.proc.pid, signal.SIGINT)
    try:
        code = await asyncio.wait_for(supervisor.proc.wait(), 90)
    except TimeoutError:
        running = {pid for pid in workers if alive(pid)}
        tail = log.read_text()[-4000:]
        message = f"running 90 s after Ctrl-C ({running}); the log ends:\n{tail}"
        raise AssertionError(message) from None
    assert code == 0
    assert not any(alive(pid) for pid in workers), "a worker outlived the supervisor"
    text = log.read_text()
    assert "Traceback" not in text
    assert text.count("exited with -9; starting it again") == 2
    await server.emulator.settle(quiet=0.5, timeout=30)
    assert len(_texts(emu, alice.id)) == 2 and len(_texts(emu, bob.id)) == 1  # none twice
