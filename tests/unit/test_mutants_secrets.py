"""Secret detection and masking pinned at their edges: each boundary of a rule (a network's
first digits, group sizes, the length of a disclosed password) is checked on both sides, and
masking is checked character for character.

Written to kill the mutants of ``tgbot/sensitive.py`` that the property tests let live
(``scripts/mutate.sh secrets``, docs/testing.md).
"""

from __future__ import annotations

import pytest

from tgbot.sensitive import (
    _typed_grouping,
    find_card_numbers,
    is_card,
    looks_like_password,
    luhn_ok,
    mask,
    might_be_sensitive,
    network_prefix,
)


@pytest.mark.parametrize(
    ("digits", "card_like"),
    [
        *((f"3{d}", d in "0456789") for d in "0123456789"),
        ("2199", False),
        ("2200", True),
        ("2204", True),
        ("2205", False),
        ("2220", False),
        ("2221", True),
        ("2720", True),
        ("2721", False),
        ("220", False),  # too short to tell Mir from an order number of 2020s
        ("81", True),
        ("82", True),
        ("83", False),
        ("8600", True),
        ("86001234", True),
        ("8601", False),
        ("9792", True),
        ("9860", True),
        ("97921234", True),
        ("9791", False),
        ("9000", False),
        ("1234", False),
        ("7000", False),
    ],
)
def test_network_prefixes_on_both_sides_of_each_range(digits, card_like):
    assert network_prefix(digits) is card_like


def _luhn_valid(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def test_a_card_has_at_most_nineteen_digits():
    assert is_card(_luhn_valid("4" + "0" * 17))  # 19 digits
    assert not is_card(_luhn_valid("4" + "0" * 18))  # 20 digits


@pytest.mark.parametrize(
    ("sizes", "typed"),
    [
        ([4, 4, 4], True),
        ([8], True),
        ([9], False),
        ([4, 6], True),
        ([6, 3], True),
        ([7, 3], False),
        ([3, 4, 4], False),
        ([4, 2], False),
    ],
)
def test_groupings_people_type(sizes, typed):
    assert _typed_grouping(sizes) is typed


@pytest.mark.parametrize(
    ("text", "cards"),
    [
        ("41111111 11111111", ["4111111111111111"]),
        ("411111111 1111111", []),
        ("12-34 4111111111111111", ["4111111111111111"]),
        ("12-34-56 4111111111111111", ["4111111111111111"]),
        ("4111\u034f111111111111 ok", ["4111111111111111"]),  # an invisible joiner inside
    ],
)
def test_cards_found_after_groups_that_cannot_start_one(text, cards):
    assert find_card_numbers(text) == cards


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4111111111111111", "4111 **** **** 1111"),
        (
            "order 42: 4111 1111 1111 1111 exp 12/26",
            "order **: 4111 **** **** 1111 exp **/**",
        ),
        (
            "a 4111111111111111 b 5555555555554444 c9",
            "a 4111 **** **** 1111 b 5555 **** **** 4444 c*",
        ),
        ("my password is hunter22 ok", "my password is ****** ok"),
        ("密码是abc123", "密码是 ******"),
        ("my password is wrong", "my password is wrong"),
        ("验证码 482913", "验证码 ******"),
        ("482913", "******"),
        ("no secrets here", "no secrets here"),
    ],
)
def test_masking_character_for_character(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize(
    ("text", "disclosed"),
    [
        ("password is ab.", False),
        ("password is abX.", True),
        ("password is ab", False),
        ("password is abc", True),
        ("password abc", False),
        ("password hello", False),
        ("my pin abc", False),
        ("my pin 1234", True),
        ("password пароль1", False),
        ("password ab1", False),
        ("password ab12", True),
    ],
)
def test_password_disclosure_at_its_edges(text, disclosed):
    assert looks_like_password(text) is disclosed


@pytest.mark.parametrize(
    ("text", "maybe"),
    [
        ("1234", True),
        ("123", False),
        ("１２３４", True),
        ("１２３", False),
        ("p\u200bin", True),
        ("ｏｔｐ", True),
        ("你好", False),
    ],
)
def test_the_cheap_filter_at_four_digits_and_hidden_keywords(text, maybe):
    assert might_be_sensitive(text) is maybe


def test_a_luhn_valid_unionpay_card_wins_over_its_longer_window_with_the_cvv_glued():
    # 6212345678901232 passes Luhn; with its CVV glued on, the 19 digits are a 62 number too
    # (UnionPay counts without Luhn), but the Luhn-valid 16 digits are the card.
    assert luhn_ok("6212345678901232")
    assert not luhn_ok("6212345678901232123")
    assert find_card_numbers("6212345678901232123") == ["6212345678901232"]
    assert mask("6212345678901232123") == "6212 **** **** 1232***"


@pytest.mark.parametrize(
    ("text", "cards"),
    [
        ("12 4111111111111111", ["4111111111111111"]),  # the group after a start with no card
        ("4111111111111111 5555555555554444", ["4111111111111111", "5555555555554444"]),
        ("4111 1111 1111 1111 5555555555554444", ["4111111111111111", "5555555555554444"]),
    ],
)
def test_a_card_right_after_a_group_is_found(text, cards):
    assert find_card_numbers(text) == cards
