"""A newcomer's first start: `tgbot demo` and `tgbot run` print nothing alarming, and the demo
page is served only once the demo wallet is seeded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest

from tests.harness import TOKEN
from tgbot.sandbox.emulator import TelegramEmulator
from tgbot.sandbox.models import Caps
from tgbot.sandbox.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _spawn(children, *args: str, env: dict[str, str], cwd: Path):
    """Start ``tgbot ARGS`` through the ``children`` fixture (killed when the test ends)."""
    return await children.spawn(
        sys.executable, "-m", "tgbot", *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TGBOT_")}


async def _stop(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    """Ctrl-C, then the output (if it does not stop, the fixture kills it after the test)."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    return await asyncio.wait_for(proc.communicate(), 30)


def _seeded_accounts(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM demo_accounts").fetchone()[0]
        except sqlite3.OperationalError:  # not migrated yet
            return 0


async def test_demo_prints_only_its_address_and_serves_the_page_once_seeded(tmp_path, children):
    proc = await _spawn(children, "demo", "--port", "0", env=_clean_env(), cwd=tmp_path)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        text = line.decode()
        assert text.startswith("Demo running: open http://127.0.0.1:"), text
        url = text.split("open ", 1)[1].split()[0]
        async with httpx.AsyncClient(timeout=30) as client:
            page = await client.get(url)
            seeded = _seeded_accounts(tmp_path / "tgbot-demo.wallet.db")
            wallet = (await client.get(url + "demo/api/wallet")).json()
        assert page.status_code == 200
        assert "<html" in page.text.lower()
        assert seeded == 5  # the page came after the demo wallet was seeded
        assert len(wallet["accounts"]) == 5
        # Nothing on stderr while it runs: no warnings, no log lines.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(proc.stderr.readline(), 1.0)
    finally:
        _, err = await _stop(proc)
    assert proc.returncode == 0
    # Stopped after it was up: it says so, and nothing else.
    assert err.decode().strip() == "Stopping the demo...", err.decode()
    # The demo's own files sit in the working directory; its log went to a file.
    files = {p.name for p in tmp_path.iterdir()}
    assert {"tgbot-demo.db", "tgbot-demo.wallet.db", "tgbot-demo.log"} <= files
    with sqlite3.connect(tmp_path / "tgbot-demo.db") as conn:  # the bot's records only
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    conn.close()
    assert "users" in names and not [name for name in names if name.startswith("demo_")]
    log = (tmp_path / "tgbot-demo.log").read_text()
    assert "Demo wallet seeded" in log


async def test_second_demo_on_the_same_port_says_the_port_is_taken(tmp_path, children):
    first = await _spawn(children, "demo", "--port", "0", env=_clean_env(), cwd=tmp_path)
    try:
        line = (await asyncio.wait_for(first.stdout.readline(), 60)).decode()
        port = line.split("open ", 1)[1].split()[0].rstrip("/").rsplit(":", 1)[1]
        other = tmp_path / "other"
        other.mkdir()
        second = await _spawn(children, "demo", "--port", port, env=_clean_env(), cwd=other)
        _, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 1
        assert err.decode().strip() == (
            f"error: port {port} on 127.0.0.1 is already in use (another `tgbot demo`?): "
            "stop it, or pick another port with --port"
        )
        assert "Traceback" not in err.decode()
    finally:
        await _stop(first)


async def test_tgbot_run_logs_no_warnings_at_start(tmp_path, children):
    emu = TelegramEmulator(TOKEN, strict=True, caps=Caps(enabled=False))
    server = EmulatorServer(emu)
    await server.start()
    env = {
        **_clean_env(),
        "TGBOT_TOKEN": TOKEN,
        "TGBOT_API_BASE_URL": server.base_url,
        "TGBOT_DB_PATH": str(tmp_path / "bot.db"),
        "TGBOT_RUN_DEMO_WALLET": "true",
        # The demo wallet's pages on a free port (8766 may be taken by another run).
        "TGBOT_WALLET_PUBLIC_URL": f"http://127.0.0.1:{_free_port()}",
    }
    proc = await _spawn(children, "run", env=env, cwd=tmp_path)
    try:
        alice = emu.add_user("Alice", language_code="en")
        emu.user_send(alice.id, "/start")
        for _ in range(600):
            if emu.bot_messages(alice.id):
                break
            await asyncio.sleep(0.05)
        assert emu.bot_messages(alice.id), "no answer to /start"
    finally:
        try:
            _, err = await _stop(proc)
        finally:
            await server.stop()
    assert proc.returncode == 0
    lines = err.decode().splitlines()
    assert any("Application started" in line for line in lines)
    # Only INFO records: no warnings (PTB's per_message reminder), errors or tracebacks.
    assert all(" INFO " in line for line in lines), lines
