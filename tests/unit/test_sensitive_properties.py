"""Finding 2 of the security review, proved with generated inputs: card numbers in any
format people type them, passwords and codes are caught and masked; the ordinary numbers
people write (amounts, dates, phone numbers, the bot's own ids, order numbers) are not."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.support.generators import (
    card_texts,
    code_texts,
    ordinary_texts,
    password_talk,
    password_texts,
)
from tgbot.sensitive import classify, clean, find_card_numbers, mask, might_be_sensitive


def _digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", clean(text))


@given(card_texts())
@example(("my card 4111 1111 1111 1111 12/26", "4111111111111111"))
@example(("4111111111111111 123", "4111111111111111"))
@example(("4111.1111.1111.1111", "4111111111111111"))
@example(("4111/1111/1111/1111", "4111111111111111"))
@example(("4111_1111_1111_1111", "4111111111111111"))
@example(("4111 - 1111 - 1111 - 1111", "4111111111111111"))
@example(("4111\u200b1111\u200b1111\u200b1111", "4111111111111111"))
@example(("6212345678901234567", "6212345678901234567"))  # UnionPay, fails Luhn
@example(("card4111111111111111exp", "4111111111111111"))
@example(("卡号6222021234567890128谢谢", "6222021234567890128"))
def test_f02_card_numbers_in_any_format_are_caught_and_masked(case):
    text, digits = case
    assert classify(text) == "card", text
    assert might_be_sensitive(text)
    masked = mask(text)
    # Agents and logs get the first and last four digits, nothing more of any number.
    shown = _digits(masked)
    assert len(shown) == 8 and shown[:4] == digits[:4], masked
    assert f"{digits[:4]} **** **** " in masked


@given(password_texts())
@example(("password hunter22", "hunter22"))
@example(("my pin 1234", "1234"))
def test_f02_passwords_and_pins_written_out_are_caught_and_masked(case):
    text, value = case
    assert classify(text) == "password", text
    assert might_be_sensitive(text)
    assert value not in mask(text)


@given(code_texts())
@example(("4 8 2 9 1 3", "482913"))
@example(("验证码 482 913", "482913"))
def test_f02_codes_with_spaces_between_digits_are_caught(case):
    text, code = case
    assert classify(text) == "code", text
    assert classify(text, code_expected=True) != "code"
    assert code not in _digits(mask(text))


@given(ordinary_texts())
@example("I paid ¥1,234.56 on 2026-03-05 14:30")
@example("25.12.2026 - 05.01.2027")
@example("12/25/2026 - 01/05/2027")
@example("订单号 231102-123456789012345，金额 ¥88.00")
@example("4200001234202611221234567890 88.00")
@example("+86 138 0013 8001")
@example("TX20261102123456 and RF20261102654321")
def test_f02_ordinary_numbers_are_not_taken_for_secrets(text):
    assert classify(text) is None, (text, find_card_numbers(text))


@given(password_talk())
def test_f02_talking_about_a_password_is_not_disclosing_it(text):
    assert classify(text) is None, text


@given(st.text(max_size=200))
def test_f02_cheap_check_never_misses_what_mask_would_change(text):
    if mask(text) != clean(text).strip() and classify(text) is not None:
        assert might_be_sensitive(text)


@pytest.mark.parametrize(
    "text",
    [
        "my card is 4111 1111 1111 1111 12/26 and cvv 123",
        "4111-1111-1111-1111 exp 09/27",
    ],
)
def test_f02_card_with_expiry_and_cvv_reaches_agents_without_them(text):
    masked = mask(text)
    assert "4111 **** **** 1111" in masked
    assert not re.search(r"[0-9]{2}/[0-9]{2}|123", masked.replace("4111 **** **** 1111", ""))
