"""The demo's JSON endpoints and ``tgbot demo`` as a command, without a browser."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import settled
from tgbot.sandbox.demo import DemoHandle
from tgbot.sandbox.faults_api import FaultsError, apply_faults, faults_state

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {"X-Demo": "1"}
LI_LEI, ALICE = 10001, 10003


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST JSON to a demo endpoint."""
    return await client.post(path, json=body, headers=HEADERS)


@pytest.fixture
async def client(demo: DemoHandle):
    """An HTTP client on the demo's port."""
    async with httpx.AsyncClient(base_url=demo.server.root_url, trust_env=False) as http:
        yield http


async def test_state_lists_people_group_and_faults(demo: DemoHandle, client) -> None:
    """The page's initial state has the seeded people, the forum group and the faults."""
    state = (await client.get("/demo/api/state")).json()
    names = {p["first_name"]: p["language_code"] for p in state["people"]}
    assert names["李雷"] == "zh-hans" and names["Alice"] == "en" and names["Bob"] == "en-GB"
    roles = {p["role"] for p in state["people"]}
    assert roles == {"user", "agent", "admin"}
    group = state["chats"][str(state["agents_group_id"])]
    assert group["is_forum"] and group["title"] == "U钱包客服 · Agents"
    chat = demo.emu.chats[state["agents_group_id"]]
    assert chat.bot_can("can_manage_topics") and chat.bot_can("can_delete_messages")
    assert state["faults"]["caps"]["enabled"] is False  # the fixture turned them off


async def test_send_and_press_reach_the_bot(demo: DemoHandle, client) -> None:
    """A message and a button press made through the API are answered by the real bot."""
    response = await post(client, "/demo/api/send", {"user_id": LI_LEI, "text": "/start"})
    assert response.status_code == 200
    await settled(demo)
    greeting = demo.emu.last_bot_message(LI_LEI)
    assert "李雷" in greeting["text"]
    messages = (await client.get("/demo/api/messages", params={"chat_id": LI_LEI})).json()
    assert [m["message_id"] for m in messages["messages"]][-1] == greeting["message_id"]

    press = {"user_id": LI_LEI, "chat_id": LI_LEI, "message_id": greeting["message_id"]}
    forged = await post(client, "/demo/api/press", {**press, "data": "refund:show:999"})
    assert forged.status_code == 400  # only buttons that are there can be pressed here
    pressed = await post(client, "/demo/api/press", {**press, "data": "lang:menu"})
    assert pressed.status_code == 200
    await settled(demo)
    assert demo.emu.buttons(demo.emu.last_bot_message(LI_LEI)) == [["中文"], ["English"]]


async def test_posts_need_the_demo_header_and_valid_input(client) -> None:
    """Other sites cannot drive the page's API; bad input gets a clear 400."""
    bare = await client.post("/demo/api/send", json={"user_id": LI_LEI, "text": "hi"})
    assert bare.status_code == 403
    assert (await post(client, "/demo/api/send", {"user_id": 1, "text": "hi"})).status_code == 400
    empty = await post(client, "/demo/api/send", {"user_id": LI_LEI, "text": " "})
    assert empty.status_code == 400 and "text" in empty.json()["error"]
    bad = await post(client, "/demo/api/faults", {"rate_429": 2})
    assert bad.status_code == 400 and "rate_429" in bad.json()["error"]


async def test_upload_contact_and_topic(demo: DemoHandle, client) -> None:
    """Files become photos or documents; contacts are the user's own; agents make topics."""
    from tgbot.sandbox.client import TINY_PNG

    photo = await client.post(
        "/demo/api/upload",
        data={"user_id": str(ALICE)},
        files={"file": ("shot.png", TINY_PNG, "image/png")},
        headers=HEADERS,
    )
    assert "photo" in photo.json()["result"]
    doc = await client.post(
        "/demo/api/upload",
        data={"user_id": str(ALICE), "caption": "statement"},
        files={"file": ("statement.pdf", b"%PDF-1.4", "application/pdf")},
        headers=HEADERS,
    )
    document = doc.json()["result"]
    assert document["document"]["file_name"] == "statement.pdf"
    assert document["caption"] == "statement"
    served = await client.get(f"/demo/api/file/{document['document']['file_id']}")
    assert served.content == b"%PDF-1.4"

    contact = (await post(client, "/demo/api/contact", {"user_id": ALICE})).json()["result"]
    assert contact["contact"]["user_id"] == ALICE

    group_id = demo.world.agents_group.id
    agent = demo.world.agent.user_id
    topic = await post(
        client, "/demo/api/topic", {"user_id": agent, "chat_id": group_id, "name": "VIP"}
    )
    thread_id = topic.json()["result"]
    sent = await post(
        client,
        "/demo/api/send",
        {"user_id": agent, "chat_id": group_id, "thread_id": thread_id, "text": "在的"},
    )
    assert sent.json()["result"]["message_thread_id"] == thread_id
    await settled(demo)


async def test_faults_endpoint_round_trips(demo: DemoHandle, client) -> None:
    """``/demo/api/faults`` writes ``emu.faults``/``emu.caps``/blocked users and reads them."""
    emu = demo.emu
    answer = await post(
        client,
        "/demo/api/faults",
        {
            "rate_429": 0.1,
            "rate_5xx": 0.05,
            "rate_timeout": 0.05,
            "timeout_after_delivery": 0.5,
            "latency": 0.01,
            "caps": {"enabled": True, "per_group_per_minute": 20},
            "blocked": [ALICE],
        },
    )
    assert answer.status_code == 200
    assert (emu.faults.rate_429, emu.faults.rate_5xx, emu.caps.enabled) == (0.1, 0.05, True)
    assert emu.users[ALICE].blocked_bot
    emu.faults.retry_after = 7
    state = (await client.get("/demo/api/faults")).json()
    assert state["retry_after"] == 7 and state["blocked"] == [ALICE]
    await post(client, "/demo/api/faults", {"blocked": [], "rate_429": 0, "rate_5xx": 0})
    assert not emu.users[ALICE].blocked_bot
    await settled(demo)


async def test_apply_faults_validates_before_changing_anything(demo: DemoHandle) -> None:
    """A bad setting changes nothing and names itself."""
    emu = demo.emu
    with pytest.raises(FaultsError, match=r"caps\.private_chat_burst"):
        apply_faults(emu, {"rate_429": 0.5, "caps": {"private_chat_burst": 0}})
    with pytest.raises(FaultsError, match="unknown setting"):
        apply_faults(emu, {"rate_4299": 0.5})
    with pytest.raises(FaultsError, match="methods"):
        apply_faults(emu, {"methods": ["sendMesage"]})
    assert emu.faults.rate_429 == 0
    apply_faults(emu, {"methods": ["sendmessage"]})
    assert faults_state(emu)["methods"] == ["sendMessage"]


async def test_demo_command_serves_the_page_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, children
) -> None:
    """``tgbot demo`` prints the address, serves the bot, and exits 0 on SIGINT, DB closed."""
    db = tmp_path / "demo.db"
    proc = await children.spawn(
        sys.executable,
        "-m",
        "tgbot",
        "demo",
        "--port",
        "0",
        "--db",
        str(db),
        cwd=ROOT,
        env={**os.environ, "TGBOT_TOKEN": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("Demo running: open http://127.0.0.1:")
        url = line.split("open ", 1)[1].split()[0]
        async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
            assert "<title>" in (await http.get("/")).text
            await http.post(
                "/demo/api/send", json={"user_id": ALICE, "text": "/start"}, headers=HEADERS
            )
            for _ in range(100):
                messages = (await http.get("/demo/api/messages", params={"chat_id": ALICE})).json()
                if len(messages["messages"]) > 1:
                    break
                await asyncio.sleep(0.1)
            assert "Alice" in messages["messages"][-1]["text"]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # if it does not stop, the fixture kills it
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert b"Traceback" not in stderr
    assert _closed_cleanly(db)


def _closed_cleanly(db: Path) -> bool:
    """Return whether the database is unlocked and intact."""
    from storage import InstanceLock

    lock = InstanceLock(db)
    lock.acquire()  # raises if the demo still held it
    lock.release()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
