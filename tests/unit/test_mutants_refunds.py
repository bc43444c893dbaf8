"""The refund flow's amount step without the bot: which typed amounts are taken (more than 0,
at most what is left, exactly what is left included) and the example amount it suggests.

Written to kill the mutants of ``acceptable_amount`` and ``_example`` in
``handlers/refund.py`` (``scripts/mutate.sh refunds``, docs/testing.md); the rest of that
file is Telegram plumbing, judged by the e2e tests.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.refund import _example, acceptable_amount

CENT = Decimal("0.01")


@pytest.mark.parametrize(
    ("typed", "left", "taken"),
    [
        ("248.54", "248.54", "248.54"),  # exactly what is left
        ("248.55", "248.54", None),  # one cent more
        ("0.01", "248.54", "0.01"),
        ("0", "248.54", None),
        ("-5", "248.54", None),
        ("¥88", "100", "88.00"),
        ("八十八元", "88", "88.00"),
        ("88.5块", "88.49", None),
        ("abc", "100", None),
        ("", "100", None),
        ("1", "0.99", None),
    ],
)
def test_a_typed_amount_is_taken_up_to_exactly_what_is_left(
    typed: str, left: str, taken: str | None
):
    result = acceptable_amount(typed, Decimal(left))
    assert result == (None if taken is None else Decimal(taken))


@given(left=st.integers(1, 10**7), typed=st.integers(0, 10**7 + 10))
def test_any_amount_in_cents_is_taken_exactly_when_it_fits(left: int, typed: int):
    maximum = Decimal(left) * CENT
    amount = Decimal(typed) * CENT
    result = acceptable_amount(f"{amount:f}", maximum)
    assert result == (amount if 0 < amount <= maximum else None)


@pytest.mark.parametrize(
    ("left", "example"),
    [
        ("497.08", "248.54"),
        ("100", "50.00"),
        ("0.03", "0.02"),  # half of 0.03 rounds half to even
        ("0.05", "0.02"),
        ("0.01", "0.01"),  # never below a cent
        ("0.02", "0.01"),
        ("1", "0.50"),
    ],
)
def test_the_example_is_about_half_of_what_is_left(left: str, example: str):
    assert _example({"max": left}) == example


@given(left=st.integers(1, 10**8))
def test_the_example_is_always_an_amount_the_user_may_type(left: int):
    maximum = Decimal(left) * CENT
    example = _example({"max": f"{maximum:f}"})
    assert acceptable_amount(example, maximum) == Decimal(example)
    assert Decimal(example) == max((maximum / 2).quantize(CENT), CENT)
    assert example == f"{Decimal(example).quantize(CENT):f}"
