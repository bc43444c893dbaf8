"""The document as an oracle: it must be able to say no, or the checks built on it say
nothing. Wrong requests and answers of each kind are caught."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.backend.spec import (
    SpecCheckingTransport,
    SpecRequest,
    SpecResponse,
    request_errors,
    response_errors,
)

AUTH = {"Authorization": "Bearer k"}
ACCOUNT = {"id": "U1", "display_name": "x", "phone_masked": "+1 ****", "status": "active"}


def test_a_write_without_an_idempotency_key_is_caught():
    request = SpecRequest("POST", "/accounts/U1/freeze", headers=AUTH, body=b'{"reason": "x"}')
    assert request_errors(request)
    keyed = SpecRequest(
        "POST", "/accounts/U1/freeze", headers={**AUTH, "Idempotency-Key": "freeze:1:2"},
        body=b'{"reason": "x"}',
    )  # fmt: skip
    assert request_errors(keyed) == []


@pytest.mark.parametrize("missing", sorted(ACCOUNT))
def test_an_answer_missing_a_required_field_is_caught(missing):
    request = SpecRequest("GET", "/accounts/U1", headers=AUTH)
    body = {k: v for k, v in ACCOUNT.items() if k != missing}
    assert response_errors(request, SpecResponse(200, json.dumps(body).encode()))


@pytest.mark.parametrize("amount", [88, 88.5, -1, "", "88,00", "1e3", "¥88", "88.", " 88", None])
def test_an_amount_that_is_not_a_decimal_string_is_caught(amount):
    request = SpecRequest(
        "POST", "/accounts/U1/refunds", headers={**AUTH, "Idempotency-Key": "k"},
        body=json.dumps({"transaction_id": "TX1", "amount": amount, "reason": "r"}).encode(),
    )  # fmt: skip
    assert request_errors(request)


def test_an_undocumented_status_is_caught():
    request = SpecRequest("GET", "/accounts/U1", headers=AUTH)
    assert response_errors(request, SpecResponse(418, b'{"error": {"reason": "teapot"}}'))


async def test_the_checking_transport_records_what_breaks_the_document():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "U1"})  # Account without its required fields

    transport = SpecCheckingTransport("http://wallet.test/api/v1", httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://wallet.test/api/v1/accounts/U1")  # and no Authorization
        await client.get("http://wallet.test/api/v1/nowhere", headers=AUTH)
    assert any("Security" in v for v in transport.violations)
    assert any("display_name" in v for v in transport.violations)
    assert any("not in docs/wallet-api.yaml" in v for v in transport.violations)
