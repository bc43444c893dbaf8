"""Text safety helpers and sensitive-data detection."""

import pytest

from tgbot.sensitive import classify, find_card_numbers, luhn_ok, mask
from tgbot.text import escape, normalize_input, split_text, truncate


def test_escape_user_text():
    assert escape("<b>Tom & Jerry</b>") == "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"


def test_normalize_full_width_digits_and_spaces():
    assert normalize_input("８８\u3000元  ") == "88 元"
    assert normalize_input("ＡＢＣ１２３") == "ABC123"


def test_split_text_respects_limit_and_boundaries():
    paragraph = "word " * 300
    text = "\n\n".join([paragraph] * 5)
    chunks = split_text(text, 4096)
    assert all(len(chunk) <= 4096 for chunk in chunks)
    assert "".join(chunks).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace(
        "\n", ""
    )
    assert split_text("short") == ["short"]
    assert [len(c) for c in split_text("x" * 9000, 4096)] == [4096, 4096, 808]


def test_truncate():
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abc", 4) == "abc"


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "6222-0212-3456-7890-128",
        "４１１１１１１１１１１１１１１１",
    ],
)
def test_card_numbers_are_found(number):
    assert find_card_numbers(f"my card is {number} thanks")


@pytest.mark.parametrize(
    "text", ["卡号4111111111111111谢谢", "4111111111111111ok", "卡：4111 1111 1111 1111"]
)
def test_card_numbers_next_to_chinese_or_after_them_are_found(text):
    assert find_card_numbers(text) == ["4111111111111111"]


def test_identifiers_with_a_letter_prefix_are_not_cards():
    # A demo refund reference whose digits pass Luhn (13 digits); users paste these to agents.
    assert luhn_ok("2026112202901")
    assert find_card_numbers("my refund RF2026112202901F is late") == []
    assert classify("RF2026112202901F") is None


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("wallet order 2026112212000003 failed", "2026112212000003"),  # a date: 20…
        ("at 1795328196005", "1795328196005"),  # a millisecond timestamp: 1…
    ],
)
def test_luhn_valid_order_numbers_and_timestamps_are_not_cards(text, number):
    assert luhn_ok(number)  # they would pass the checksum: the network prefix decides
    assert find_card_numbers(text) == []
    assert classify(text) is None


@pytest.mark.parametrize(
    "number", ["2221000000000009", "378200000000000", "6222000000000000004", "8171000000000006"]
)
def test_cards_of_every_network_prefix_are_found(number):
    assert luhn_ok(number)
    assert find_card_numbers(f"卡号 {number}") == [number]


def test_non_luhn_digit_runs_are_not_cards():
    assert luhn_ok("4111111111111112") is False
    assert find_card_numbers("ref 4111111111111112") == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("4111 1111 1111 1111", "card"),
        ("我的密码是abc12345", "password"),
        ("password: hunter22", "password"),
        ("验证码 482913", "code"),
        ("482913", "code"),
        ("order 20260101123456789 failed", None),
        ("I paid 88 yuan", None),
        ("退款 88 元", None),
    ],
)
def test_classify(text, kind):
    assert classify(text) == kind


def test_expected_code_is_not_flagged():
    assert classify("482913", code_expected=True) is None


def test_mask_hides_everything_sensitive():
    masked = mask("card 4111111111111111, 验证码 482913, password is secret1")
    assert "4111111111111111" not in masked
    assert "4111 **** **** 1111" in masked
    assert "482913" not in masked
    assert "secret1" not in masked


@pytest.mark.parametrize(
    "text",
    [
        "my password is wrong",
        "password is incorrect",
        "我的密码是错的吗",
        "密码错误了",
        "pin is locked",
    ],
)
def test_talking_about_a_password_is_not_disclosing_it(text):
    assert classify(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111",
        "４１１１１１１１１１１１１１１１",
        "验证码 482913",
        "482913",
        "password: hunter22",
        "我的密码是abc12345",
        "pin is 9876",
    ],
)
def test_cheap_check_never_misses_what_mask_would_change(text):
    from tgbot.sensitive import might_be_sensitive

    assert mask(text) != text
    assert might_be_sensitive(text)


def test_cheap_check_catches_spaced_single_digits():
    from tgbot.sensitive import might_be_sensitive

    spaced = " ".join("4111111111111111")
    assert mask(spaced) != spaced and might_be_sensitive(spaced)
    assert not might_be_sensitive("hello, where is my refund?")
