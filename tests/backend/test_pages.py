"""The demo wallet's pages: reset link, secure card entry, SMS outbox (over real HTTP)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.backend.conftest import FakeClock
from tests.backend.test_demo import db_bytes
from tgbot.backend.demo import DemoWallet
from tgbot.backend.pages import serve_wallet_pages


@pytest.fixture
async def pages(demo: DemoWallet) -> AsyncIterator[httpx.AsyncClient]:
    """Yield a client of the wallet pages served on a free port."""
    server = await serve_wallet_pages(demo, "127.0.0.1", 0, sms_outbox=True)
    async with httpx.AsyncClient(base_url=server.url) as client:
        yield client
    await server.stop()


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def test_reset_link_sets_password_once_and_unlocks(demo: DemoWallet, pages):
    link = await demo.password_reset_link("U1002", "reset-1")
    form = await pages.get(path_of(link.url))
    assert (
        form.status_code == 200 and "重置密码" in form.text and "Reset your password" in form.text
    )
    assert form.headers["Cache-Control"] == "no-store"
    mismatch = await pages.post(path_of(link.url), data={"password": "abcdefgh1",
                                                         "confirm": "abcdefgh2"})  # fmt: skip
    assert mismatch.status_code == 400 and "do not match" in mismatch.text
    done = await pages.post(
        path_of(link.url), data={"password": "n3w-Secret", "confirm": "n3w-Secret"}
    )
    assert done.status_code == 200 and "Password reset" in done.text
    assert (await demo.get_account("U1002")).status == "active"
    used = await pages.get(path_of(link.url))
    assert used.status_code == 410 and "链接已使用" in used.text and "already used" in used.text


async def test_expired_and_unknown_reset_links_explain(demo: DemoWallet, pages, clock: FakeClock):
    link = await demo.password_reset_link("U1001", "reset-1")
    clock.advance(15 * 60 + 1)
    expired = await pages.get(path_of(link.url))
    assert expired.status_code == 410 and "已过期" in expired.text and "expired" in expired.text
    unknown = await pages.get("/wallet/reset/nope")
    assert unknown.status_code == 404 and "not valid" in unknown.text


async def test_freezing_blocks_an_issued_reset_link(demo: DemoWallet, pages):
    link = await demo.password_reset_link("U1001", "reset-1")
    await demo.freeze("U1001", "stolen_phone", "freeze-1")
    page = await pages.get(path_of(link.url))
    assert "frozen" in page.text
    post = await pages.post(
        path_of(link.url), data={"password": "n3w-Secret", "confirm": "n3w-Secret"}
    )
    assert post.status_code == 423


async def enter_card(demo: DemoWallet, pages, account_id: str, number: str, key: str):
    binding = await demo.start_binding(account_id, key)
    response = await pages.post(path_of(binding.secure_url), data={"card_number": number})
    return binding, response


async def test_card_page_keeps_only_bank_and_last4(demo: DemoWallet, pages, db_path: Path):
    binding = await demo.start_binding("U1004", "bind-1")
    form = await pages.get(path_of(binding.secure_url))
    assert form.status_code == 200 and "Card number" in form.text
    bad = await pages.post(path_of(binding.secure_url), data={"card_number": "6212260000000002"})
    assert bad.status_code == 400 and "not valid" in bad.text and "6212260000000002" not in bad.text
    ok = await pages.post(path_of(binding.secure_url), data={"card_number": "6212 2600 0000 0001"})
    assert ok.status_code == 200 and "0001" in ok.text
    again = await pages.get(path_of(binding.secure_url))
    assert again.status_code == 410
    state = await demo.get_binding("U1004", binding.id)
    assert state.status == "awaiting_deposit" and state.card is not None
    assert (state.card.bank, state.card.last4) == ("中国工商银行", "0001")
    assert b"6212260000000001" not in db_bytes(db_path)


async def test_a_card_bound_elsewhere_is_refused(demo: DemoWallet, pages):
    binding, page = await enter_card(demo, pages, "U1001", "4111 1111 1111 1111", "bind-1")
    assert "already" in page.text
    state = await demo.get_binding("U1001", binding.id)
    assert (state.status, state.reason) == ("failed", "already_bound")


async def test_the_bank_refuses_its_test_number(demo: DemoWallet, pages):
    binding, page = await enter_card(demo, pages, "U1001", "4000 0000 0000 0002", "bind-1")
    assert "declined" in page.text
    state = await demo.get_binding("U1001", binding.id)
    assert (state.status, state.reason) == ("failed", "bank_refused")


async def test_three_wrong_deposits_fail_the_binding(demo: DemoWallet, pages):
    binding, _ = await enter_card(demo, pages, "U1001", "6225880000000019", "bind-1")
    sms = (await pages.get("/wallet/sms", params={"phone": "+8613800138001"})).json()
    deposit = Decimal(re.search(r"¥(0\.\d\d)", sms["messages"][-1]["text"])[1])  # type: ignore[index]
    wrong = Decimal("1.00") - deposit if deposit != Decimal("0.50") else Decimal("0.51")
    tries = [await demo.confirm_deposit("U1001", binding.id, wrong) for _ in range(3)]
    assert [t.tries_left for t in tries] == [2, 1, 0]
    assert (tries[-1].status, tries[-1].reason) == ("failed", "too_many_tries")
    late = await demo.confirm_deposit("U1001", binding.id, deposit)
    assert late.status == "failed"
    assert "0019" not in [c.last4 for c in await demo.list_cards("U1001")]


async def test_binding_session_expires(demo: DemoWallet, pages, clock: FakeClock):
    binding = await demo.start_binding("U1001", "bind-1")
    clock.advance(15 * 60 + 1)
    page = await pages.get(path_of(binding.secure_url))
    assert page.status_code == 410 and "expired" in page.text
    assert (await demo.get_binding("U1001", binding.id)).reason == "expired"


async def test_sms_outbox_json(demo: DemoWallet, pages):
    await demo.send_code("U1003", "k1")
    data = (await pages.get("/wallet/sms", params={"phone": "14155550103"})).json()
    assert len(data["messages"]) == 1 and "246810" in data["messages"][0]["text"]
    everyone = (await pages.get("/wallet/sms")).json()
    assert len(everyone["messages"]) == 1


async def test_the_reset_page_states_its_password_rules_in_both_languages(demo: DemoWallet, pages):
    """The rules are on the page in both languages (a browser's own hint speaks only its
    UI language), and the wallet checks what the page says."""
    link = await demo.password_reset_link("U1001", "reset-rules")
    form = await pages.get(path_of(link.url))
    assert "8-64 位，且同时包含字母和数字" in form.text
    assert "8 to 64 characters, with at least one letter and one digit" in form.text
    assert "minlength" not in form.text
    for weak in ("short1", "onlyletters", "1234567890"):
        refused = await pages.post(path_of(link.url), data={"password": weak, "confirm": weak})
        assert refused.status_code == 400
        assert "新密码不符合要求" in refused.text and "does not meet the rules" in refused.text
    assert (await demo.get_account("U1001")).password_changed_at is None
    done = await pages.post(
        path_of(link.url), data={"password": "letters4and5", "confirm": "letters4and5"}
    )
    assert done.status_code == 200
    assert (await demo.get_account("U1001")).password_changed_at is not None
