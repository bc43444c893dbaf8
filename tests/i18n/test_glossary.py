"""The Chinese catalog speaks one language: the glossary of docs/translating.md holds in
every entry, names and numbers sit in Chinese sentences without Western spaces, and the
facts several messages state come from one place (tgbot/facts.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tgbot import i18n_tools as tools

DOC = Path(__file__).resolve().parents[2] / "docs" / "translating.md"
CJK = r"[\u4e00-\u9fff]"


def glossary() -> list[tuple[list[str], str, list[str]]]:
    """Return the rows of the glossary table: (English terms, Chinese term, never)."""
    text = DOC.read_text("utf-8")
    table = text.split("<!-- glossary -->", 1)[1].split("<!-- /glossary -->", 1)[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        english, chinese, never = (cell.strip() for cell in line.strip("|").split("|"))
        terms = [re.sub(r"\s*\(.*\)$", "", t).strip() for t in english.split(",")]
        rows.append((terms, chinese, [n.strip() for n in never.split(",") if n.strip()]))
    return rows


@pytest.fixture(scope="module")
def zh():
    """The Chinese catalog's entries: (msgid, msgstr) with plural forms joined."""
    catalog = tools.read_catalog(tools.catalog_path("zh_Hans"), "zh_Hans")
    entries = []
    for message in catalog:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else " ".join(message.id)
        msgstr = message.string if isinstance(message.string, str) else " ".join(message.string)
        entries.append((msgid, msgstr))
    return entries


def test_the_glossary_is_there():
    rows = glossary()
    assert len(rows) >= 15
    assert (["U-Pay"], "U钱包", ["U 钱包", "U-Pay", "优付"]) in rows


def test_each_glossary_term_is_translated_with_its_chinese_term(zh):
    problems = []
    for terms, chinese, _never in glossary():
        for term in terms:
            # A word of the text: not a /command, a {placeholder} or part of a longer word.
            pattern = re.compile(rf"(?<![\w/{{-]){re.escape(term)}(?![\w}}-])", re.IGNORECASE)
            for msgid, msgstr in zh:
                if pattern.search(msgid) and chinese not in msgstr:
                    problems.append(f"{term!r} -> {chinese!r} missing in {msgstr!r}")
    assert problems == []


def test_no_chinese_entry_uses_a_word_the_glossary_rules_out(zh):
    problems = [
        f"{word!r} in {msgstr!r}"
        for _terms, _chinese, never in glossary()
        for word in never
        for _msgid, msgstr in zh
        if word in msgstr
    ]
    assert problems == []


def test_no_western_spaces_between_chinese_and_names_or_numbers(zh):
    spaced = re.compile(rf"{CJK} +(\{{\w+\}}|\d)|(\{{\w+\}}|\d) +{CJK}")
    problems = [msgstr for _msgid, msgstr in zh if spaced.search(msgstr)]
    assert problems == []


#: Facts more than one message states (processing times, refund timelines, the card's test
#: deposit): written only in tgbot/facts.py, which the other messages take them from.
FACT = re.compile(
    r"1\s*[–-]\s*[37] business days|\b(2|24) hours\b|withdrawals?[^.]*2 business days|"
    r"less than 1\.00|test deposit \(less|few minutes to a day",
    re.IGNORECASE,
)


def test_facts_are_stated_in_one_place():
    code = tools.extract_catalog()
    outside = [
        message.id
        for message in code
        if message.id
        and FACT.search(message.id if isinstance(message.id, str) else message.id[0])
        and not all(path == "tgbot/facts.py" for path, _ in message.locations)
    ]
    assert outside == []
    inside = [m for m in code if any(p == "tgbot/facts.py" for p, _ in m.locations)]
    assert len(inside) >= 5


COUNTED = re.compile(
    r"\{\w+\} (try|tries|minute|minutes|user|users|day|days|second|seconds|hour|hours)\b"
)


def test_counted_words_go_through_ngettext():
    code = tools.extract_catalog()
    singular_only = [
        message.id
        for message in code
        if message.id and isinstance(message.id, str) and COUNTED.search(message.id)
    ]
    assert singular_only == []  # "1 tries left" cannot happen
