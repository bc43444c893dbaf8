"""Translation catalogs: complete, in sync with the code, safe to send; and each check proven
to catch its problem on a small bad catalog.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from tgbot import i18n_tools as tools
from tgbot.i18n import LANGUAGES, pick_language, translator
from tgbot.text import CALLBACK_ANSWER_LIMIT, MESSAGE_LIMIT

CHECKS = [tools.check_babel, tools.check_complete, tools.check_placeholders, tools.check_html]


@pytest.fixture(scope="module")
def code() -> Catalog:
    """Return the messages of the code as it is now (extracted in memory)."""
    return tools.extract_catalog()


def real_catalog(lang: str) -> Catalog:
    return tools.read_catalog(tools.catalog_path(lang), lang)


def small_catalog(lang: str, *entries: tuple) -> Catalog:
    """Return a catalog of ``lang`` with (msgid, msgstr[, flags[, comments]]) entries."""
    catalog = tools.new_catalog(lang)
    for msgid, msgstr, *rest in entries:
        flags = rest[0] if rest else ()
        comments = rest[1] if len(rest) > 1 else ()
        catalog.add(msgid, msgstr, flags=flags, auto_comments=comments)
    return catalog


def texts(problems: list[tools.Problem]) -> str:
    return "\n".join(str(problem) for problem in problems)


# -- the real catalogs ---------------------------------------------------------------------


def test_code_messages_are_extracted(code):
    ids = {message.id for message in code if message.id}
    # N_() at module level and a constant later shown with context._() are both extracted.
    assert "🏠 Main menu" in ids
    assert "This button belongs to an earlier step and no longer works." in ids
    # The developer sandbox and the tests are not.
    assert not any(
        "tgbot/sandbox" in f or f.startswith("tests/") for m in code for f, _ in m.locations
    )


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_real_catalog_passes(lang, check):
    catalog = real_catalog(lang)
    assert check(catalog, lang) == [], texts(check(catalog, lang))


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_real_catalog_has_every_message_of_the_code(lang, code):
    problems = tools.check_in_sync(code, real_catalog(lang), lang)
    assert problems == [], texts(problems)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_real_catalog_fits_telegram_limits(lang, code):
    problems = tools.check_lengths(real_catalog(lang), lang, tools.length_limits(code))
    assert problems == [], texts(problems)


def test_code_translates_only_literals_or_names():
    """No gettext call gets an expression with literals inside (extractors disagree on it)."""
    problems = tools.check_gettext_calls(tools.mapped_python_files())
    assert problems == [], texts(problems)


def test_gettext_call_check_catches_literals_inside_the_message(tmp_path):
    source = tmp_path / "flow.py"
    source.write_text(
        "def f(context, data, n):\n"
        "    context._(REASONS[data['reason']])\n"  # Babel 2.18 extracted 'reason'
        "    context._(NAMES.get(n, NAMES['success']))\n"
        "    context._(CREDIT if n == 'credit' else DEBIT)\n"
        "    context._(f'{n} left')\n"
        "    context._(label)\n"
        "    context._(module.LABEL)\n"
        "    context._('Literal')\n"
        "    gettext(N_('🔗 Read more'))\n"
        "    ngettext('{n} try', '{n} tries', n)\n",
        encoding="utf-8",
    )
    problems = tools.check_gettext_calls([source], tmp_path)
    assert [p.where for p in problems] == ["flow.py:2", "flow.py:3", "flow.py:4", "flow.py:5"]


def test_mapped_files_are_the_extracted_code():
    names = {str(path.relative_to(tools.ROOT)) for path in tools.mapped_python_files()}
    assert "handlers/refund.py" in names
    assert "tgbot/i18n.py" in names
    assert not any(name.startswith(("tgbot/sandbox/", "tests/")) for name in names)


def test_template_is_up_to_date(code):
    template = tools.read_catalog(tools.TEMPLATE_FILE)
    problems = tools.check_in_sync(code, template, "messages.pot")
    assert problems == [], texts(problems)


def test_check_command_passes(capsys):
    assert tools.run_i18n("check") == 0
    assert "OK" in capsys.readouterr().out


def test_english_catalog_is_the_msgids():
    for message in real_catalog("en"):
        if message.id:
            assert message.string == message.id


def test_catalogs_have_the_right_plural_forms():
    assert real_catalog("zh_Hans").num_plurals == 1
    assert real_catalog("en").num_plurals == 2


# -- each check catches its problem --------------------------------------------------------


def test_untranslated_entry_is_caught():
    catalog = small_catalog("zh_Hans", ("Main menu", ""), ("Back", "返回"))
    assert "untranslated: 'Main menu'" in texts(tools.check_complete(catalog, "zh"))
    plural = small_catalog("en", (("{n} card", "{n} cards"), ("{n} card", "")))
    assert "untranslated" in texts(tools.check_complete(plural, "en"))


def test_fuzzy_entry_is_caught():
    catalog = small_catalog("zh_Hans", ("Main menu", "主菜单", ["fuzzy"]))
    assert "fuzzy: 'Main menu'" in texts(tools.check_complete(catalog, "zh"))


def test_fuzzy_header_is_caught():
    catalog = small_catalog("zh_Hans", ("Main menu", "主菜单"))
    catalog.fuzzy = True
    assert "header is marked fuzzy" in texts(tools.check_complete(catalog, "zh"))


def test_wrong_number_of_plural_forms_is_caught():
    catalog = small_catalog("en", (("{n} card", "{n} cards"), ("{n} cards",)))
    assert "Wrong number of plural forms" in texts(tools.check_babel(catalog, "en"))


def test_message_missing_from_catalog_and_stale_entry_are_caught():
    code = small_catalog(None, ("Main menu", ""), ("New text", ""))
    catalog = small_catalog("zh_Hans", ("Main menu", "主菜单"), ("Old text", "旧文本"))
    found = texts(tools.check_in_sync(code, catalog, "zh"))
    assert "missing: 'New text'" in found
    assert "stale: 'Old text'" in found
    assert "Main menu" not in found


def test_message_that_became_plural_is_caught():
    code = small_catalog(None, (("{n} card", "{n} cards"), ("", "")))
    catalog = small_catalog("zh_Hans", ("{n} card", "{n} 张卡"))
    assert "plural forms changed" in texts(tools.check_in_sync(code, catalog, "zh"))


@pytest.mark.parametrize(
    "msgstr",
    ["你好，{nom}！", "你好！", "你好，{name}！{name} {extra}", "你好，{name！"],
    ids=["renamed", "dropped", "added", "broken"],
)
def test_placeholder_mismatch_is_caught(msgstr):
    catalog = small_catalog("zh_Hans", ("Hello, {name}!", msgstr))
    assert "placeholders of msgstr differ" in texts(tools.check_placeholders(catalog, "zh"))


def test_matching_placeholders_pass_in_any_order():
    catalog = small_catalog(
        "zh_Hans", ("Refund {amount} for {order}?", "为订单 {order} 退款 {amount}？")
    )
    assert tools.check_placeholders(catalog, "zh") == []


def test_plural_placeholders_are_checked_per_form():
    msgid = ("One card", "{n} cards")
    good = small_catalog("en", (msgid, ("One card", "{n} cards")))
    assert tools.check_placeholders(good, "en") == []
    bad = small_catalog("en", (msgid, ("One card", "{count} cards")))
    assert "msgstr[1]" in texts(tools.check_placeholders(bad, "en"))
    zh_bad = small_catalog("zh_Hans", (msgid, ("一张卡",)))
    assert "msgstr[0]" in texts(tools.check_placeholders(zh_bad, "zh"))
    zh_good = small_catalog("zh_Hans", (msgid, ("{n} 张卡",)))
    assert tools.check_placeholders(zh_good, "zh") == []


@pytest.mark.parametrize(
    ("msgid", "msgstr", "expected"),
    [
        ("<b>Refund</b> sent", "<b>退款</b>已提交", None),
        ("<b>Refund</b> sent", "<b>退款已提交", "missing </b>"),
        ("<b>Refund</b> sent", "<i>退款</i>已提交", "unexpected </i> <i>"),
        ('<a href="{url}">Open</a>', '<a href="https://evil.example">打开</a>', "missing"),
        ("<code>{id}</code>", "<code>{id}</code><code></code>", "unexpected </code> <code>"),
        ("Limit: 5000", "限额 < 5000", "bare <"),
        ("Fees and limits", "费用 & 限额", "bare &"),
        ("Fees &amp; limits", "费用 &amp; 限额", None),
    ],
)
def test_html_tag_mismatch_is_caught(msgid, msgstr, expected):
    found = texts(tools.check_html(small_catalog("zh_Hans", (msgid, msgstr)), "zh"))
    if expected is None:
        assert found == ""
    else:
        assert expected in found


def test_message_over_telegram_limit_is_caught():
    catalog = small_catalog("zh_Hans", ("Long", "长" * (MESSAGE_LIMIT + 1)), ("Ok", "好" * 4096))
    found = texts(tools.check_lengths(catalog, "zh"))
    assert f"too long: {MESSAGE_LIMIT + 1} characters" in found
    assert "'Ok'" not in found


def test_callback_answer_over_200_is_caught():
    text = "菜" * (CALLBACK_ANSWER_LIMIT + 1)
    marked = small_catalog("zh_Hans", ("Menu expired", text, (), [tools.CALLBACK_ANSWER_COMMENT]))
    assert "the limit is 200" in texts(tools.check_lengths(marked, "zh"))
    # The limit may also come from the code's template (the .po comment may lag behind).
    code = small_catalog(None, ("Menu expired", "", (), [tools.CALLBACK_ANSWER_COMMENT]))
    plain = small_catalog("zh_Hans", ("Menu expired", text))
    assert tools.check_lengths(plain, "zh") == []
    assert "the limit is 200" in texts(tools.check_lengths(plain, "zh", tools.length_limits(code)))


# -- extraction and the commands on a small project ----------------------------------------

HANDLER = """
from tgbot.i18n import N_

EXPIRED = N_("Menu expired")
LABEL = N_("Back")


async def on_press(update, context):
    # TRANSLATORS: shown after a refund was submitted.
    await update.message.reply_text(context._("Refund submitted"))
    await update.message.reply_text(context.ngettext("{n} card", "{n} cards", 2).format(n=2))
    await update.callback_query.answer(context._(EXPIRED))
    await update.callback_query.answer(text=context._("Done {n}").format(n=1))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "babel.cfg").write_text(tools.MAPPING_FILE.read_text(encoding="utf-8"))
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "flow.py").write_text(HANDLER, encoding="utf-8")
    (tmp_path / "tgbot" / "sandbox").mkdir(parents=True)
    (tmp_path / "tgbot" / "sandbox" / "emu.py").write_text('_("Sandbox only")\n')
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text('_("Test only")\n')
    return tmp_path


def test_extraction_finds_context_gettext_and_module_labels(project):
    catalog = tools.extract_catalog(project, project / "babel.cfg")
    assert {m.id for m in catalog if m.id} == {
        "Menu expired",
        "Back",
        "Refund submitted",
        ("{n} card", "{n} cards"),
        "Done {n}",
    }
    assert catalog.get("Refund submitted").auto_comments == [
        "TRANSLATORS: shown after a refund was submitted."
    ]
    # Locations carry no line numbers in the written file, so moving code makes no diff.
    assert b"#: handlers/flow.py\n" in tools.render_catalog(catalog)


def test_callback_answers_get_their_limit_comment(project):
    catalog = tools.extract_catalog(project, project / "babel.cfg")
    limits = tools.length_limits(catalog)
    assert limits[("Menu expired", None)] == CALLBACK_ANSWER_LIMIT
    assert limits[("Done {n}", None)] == CALLBACK_ANSWER_LIMIT
    assert ("Refund submitted", None) not in limits


def test_update_creates_catalogs_and_compile_refuses_incomplete_ones(project, capsys):
    locales = project / "locales"
    template = tools.extract(project, locales)
    for lang in LANGUAGES:
        tools.merge(template, lang, locales)
    zh = tools.read_catalog(tools.catalog_path("zh_Hans", locales), "zh_Hans")
    en = tools.read_catalog(tools.catalog_path("en", locales), "en")
    assert zh.plural_forms == "nplurals=1; plural=0;"
    assert en.plural_forms == "nplurals=2; plural=(n != 1);"
    assert en.get("Back").string == "Back"
    # Chinese is untranslated: nothing is compiled, every entry is reported.
    problems = tools.compile_catalogs(locales)
    assert len(problems) == len(template)
    assert not tools.catalog_path("zh_Hans", locales).with_suffix(".mo").exists()
    # Translated, it compiles; a second update changes nothing.
    for message in zh:
        if message.id:
            message.string = (
                ("译文 {n}" if "{n}" in str(message.id) else "译文")
                if isinstance(message.id, str)
                else ("{n} 张卡",)
            )
    tools.write_catalog(tools.catalog_path("zh_Hans", locales), zh)
    assert tools.compile_catalogs(locales) == []
    assert tools.catalog_path("zh_Hans", locales).with_suffix(".mo").exists()
    capsys.readouterr()
    tools.merge(tools.extract(project, locales), "zh_Hans", locales)
    assert "0 new, 0 removed, 0 fuzzy, 0 untranslated (unchanged)" in capsys.readouterr().out


def test_unknown_action_fails(capsys):
    assert tools.run_i18n("translate") == 2
    assert "unknown action" in capsys.readouterr().err


# -- language choice and formatting --------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "telegram", "expected"),
    [
        (None, "zh", "zh_Hans"),
        (None, "zh-hans", "zh_Hans"),
        (None, "zh-TW", "zh_Hans"),
        (None, "zh_CN", "zh_Hans"),
        (None, "en-GB", "en"),
        (None, "en", "en"),
        (None, "fr", "en"),
        (None, None, "en"),
        ("en", "zh-hans", "en"),
        ("zh_Hans", "en-US", "zh_Hans"),
        ("xx", "zh", "zh_Hans"),
    ],
)
def test_pick_language(chosen, telegram, expected):
    assert pick_language(chosen, telegram, "en") == expected


def test_unknown_telegram_language_gets_the_configured_default():
    assert pick_language(None, "fr", "zh_Hans") == "zh_Hans"


def test_translator_speaks_chinese():
    assert translator("zh_Hans").gettext("🏠 Main menu") == "🏠 主菜单"
    assert translator("en").gettext("🏠 Main menu") == "🏠 Main menu"


def test_money_is_formatted_for_the_locale():
    assert translator("zh_Hans").money(Decimal("88"), "CNY") == "¥88.00"
    assert translator("en").money(Decimal("88"), "CNY") == "CN¥88.00"
    assert translator("en").money(Decimal("1234.5"), "USD") == "$1,234.50"
