"""Findings 1, 5, 11 and 12 of the security review, at the unit level (configuration, the
wallet's pages and webhook, logging). End-to-end proofs: ``tests/e2e/test_review_findings.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgbot.app import build_application
from tgbot.backend.demo import DemoWallet
from tgbot.backend.pages import serve_wallet_pages
from tgbot.config import Config, ConfigError, load_config
from tgbot.wallet_events import PATH, serve_refund_events, sign

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "987654:AAFakeTokenForTheLogTest_x1y2z3"
REDACTED = "<redacted>"  # tgbot.logs.REDACTED (spelled out: the test runs on old code too)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tgbot", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- 1: webhook secret


def test_f01_webhook_mode_without_a_secret_does_not_start(tmp_path):
    with pytest.raises(ConfigError, match="TGBOT_WEBHOOK_SECRET: required with TGBOT_WEBHOOK_URL"):
        load_config(env={"TGBOT_WEBHOOK_URL": "https://bot.example/hook"})
    done = _cli(
        "run",
        TGBOT_TOKEN="123456:ABC",
        TGBOT_WEBHOOK_URL="https://bot.example/hook",
        TGBOT_DB_PATH=str(tmp_path / "bot.db"),
    )
    assert done.returncode == 2
    assert done.stderr.startswith("config error: TGBOT_WEBHOOK_SECRET: required")
    assert not (tmp_path / "bot.db").exists()  # refused before anything started


@pytest.mark.parametrize("secret", ["has space", "ümlaut", "x" * 257, "semi;colon"])
def test_f01_webhook_secret_must_be_what_telegram_accepts(secret):
    env = {"TGBOT_WEBHOOK_URL": "https://bot.example/hook", "TGBOT_WEBHOOK_SECRET": secret}
    with pytest.raises(ConfigError, match="TGBOT_WEBHOOK_SECRET"):
        load_config(env=env)


# ---------------------------------------------------------------------- 5: demo wallet


async def test_f05_wallet_pages_of_tgbot_run_have_no_sms_outbox(tmp_path):
    from tgbot.backend.demo_store import WalletStore, open_wallet_database

    db = await open_wallet_database(tmp_path / "wallet.db")
    wallet = DemoWallet(WalletStore(db), public_url="http://127.0.0.1:1")
    await wallet.seed()
    await wallet.send_code("U1001", "sms-1")
    assert await wallet.sms_outbox()  # a live code exists: the page would show it
    server = await serve_wallet_pages(wallet, "127.0.0.1", 0)  # what `tgbot run` serves
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/wallet/sms")).status_code == 404
            assert (await client.get("/wallet/sms?phone=+8613800138001")).status_code == 404
    finally:
        await server.stop()
        await db.close()


def test_f05_tgbot_run_refuses_the_demo_wallet_unless_told(tmp_path):
    done = _cli("run", TGBOT_TOKEN="123456:ABC", TGBOT_DB_PATH=str(tmp_path / "bot.db"))
    assert done.returncode == 2
    assert done.stderr.strip().startswith(
        "config error: TGBOT_BACKEND: tgbot run needs a real wallet"
    )
    assert "TGBOT_RUN_DEMO_WALLET=true" in done.stderr
    assert load_config(env={"TGBOT_RUN_DEMO_WALLET": "true"}).run_demo_wallet


# ---------------------------------------------------------------------- 11: refund webhook


@given(st.text(max_size=20))
def test_f11_timestamps_are_ascii_digits_only(raw):
    from tgbot.wallet_events import parse_timestamp

    parsed = parse_timestamp(raw)
    assert parsed is None or (raw.isascii() and raw.isdigit() and parsed == int(raw))


async def test_f11_unicode_digits_and_replays_are_refused_without_a_500():
    calls = []

    async def on_event() -> None:
        calls.append(1)

    server, port = await serve_refund_events("s3cret", "127.0.0.1", 0, on_event)
    url = f"http://127.0.0.1:{port}{PATH}"
    body = b'{"refund_id": "RF1", "status": "approved"}'
    try:
        async with httpx.AsyncClient() as client:
            # HTTP headers arrive as Latin-1: "²" and "¹³" are digits to str.isdigit().
            for stamp in ("²", "¹³", "1e9", "-5", "1 2", "9" * 40):
                odd = await client.post(
                    url,
                    content=body,
                    headers={
                        "X-UPay-Timestamp": stamp.encode("latin-1"),
                        "X-UPay-Signature": sign("s3cret", stamp, body),
                    },
                )
                assert odd.status_code == 401, stamp
            stamp = str(int(time.time()))
            headers = {"X-UPay-Timestamp": stamp, "X-UPay-Signature": sign("s3cret", stamp, body)}
            first = await client.post(url, content=body, headers=headers)
            replay = await client.post(url, content=body, headers=headers)
            assert (first.status_code, replay.status_code) == (204, 401)
            # A new call (a new timestamp, so a new signature) is accepted again.
            later = str(int(time.time()) + 1)
            again = await client.post(
                url,
                content=body,
                headers={
                    "X-UPay-Timestamp": later,
                    "X-UPay-Signature": sign("s3cret", later, body),
                },
            )
            assert again.status_code == 204
    finally:
        server.stop()
        await server.close_all_connections()
    assert calls == [1, 1]


def test_f11_signature_is_the_documented_hmac():
    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k", "1700000000", b"{}") == "sha256=" + expected


# ---------------------------------------------------------------------- 12: token in logs


def test_f12_the_token_is_redacted_from_every_record_at_every_level(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    build_application(Config(token=TOKEN, db_path=tmp_path / "bot.db"))
    logger = logging.getLogger("tgbot.test")
    logger.debug("GET https://api.telegram.org/bot%s/getMe", TOKEN)
    logger.info("url-encoded %s", TOKEN.replace(":", "%3A"))
    try:
        raise RuntimeError(f"cannot reach https://api.telegram.org/bot{TOKEN}/getUpdates")
    except RuntimeError:
        logger.exception("request failed")
    assert any("Set Bot API URL" in r.getMessage() for r in caplog.records)  # PTB, DEBUG
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text
    assert caplog.text.count(REDACTED) >= 4


def test_f12_card_numbers_and_bot_api_payloads_stay_out_of_logs(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    build_application(Config(token=TOKEN, db_path=tmp_path / "bot.db", debug_user_text=False))
    logging.getLogger("tgbot.test").warning("user wrote 4111 1111 1111 1111 exp 12/26")
    logging.getLogger("telegram.Bot").debug(
        "Call to Bot API endpoint `%s` finished with return value `%s`",
        "getUpdates",
        [{"message": {"text": "my code is 482913", "contact": {"phone_number": "8613800138001"}}}],
    )
    assert "4111 **** **** 1111" in caplog.text and "4111 1111 1111 1111" not in caplog.text
    assert "482913" not in caplog.text and "8613800138001" not in caplog.text
    assert "TGBOT_DEBUG_USER_TEXT=true shows it" in caplog.text
