"""The disk scan of the tests' teardown finds a card number in any typed form."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.leaks import card_numbers_in

CARD = "4111111111111111"
SEPARATORS = (" ", "-", ".", "/", "\u00a0", "\u200b", "\u2013", "\uff0d", "  ", " - ")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.sampled_from(("", *SEPARATORS)), min_size=15, max_size=15),
    full_width=st.booleans(),
    as_json=st.booleans(),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_every_typed_form_is_found(gaps, full_width, as_json, before, after):
    typed = CARD[0] + "".join(gap + digit for gap, digit in zip(gaps, CARD[1:], strict=True))
    if full_width:
        typed = typed.translate(FULL_WIDTH)
    text = f"{before}|{typed}|{after}"
    stored = json.dumps({"text": text}) if as_json else text
    assert card_numbers_in(stored.encode(), [CARD]) == [CARD]


def test_masked_and_other_numbers_are_not_reported():
    stored = json.dumps({"text": "card 4111 **** **** 1111, order 4111111111111112"}).encode()
    assert card_numbers_in(stored, [CARD]) == []
