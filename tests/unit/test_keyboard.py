"""The keyboard's own JSON is PTB's: generated keyboards of every kind of button (plain
strings, nested objects, a ``pay`` flag, extra API arguments, a subclass) give exactly what
PTB's :meth:`~telegram.TelegramObject.to_dict` gives, and what goes over the wire after
``json.dumps`` is the same text up to the order of keys."""

from __future__ import annotations

import ast
import enum
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from telegram import (
    CallbackGame,
    CopyTextButton,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LoginUrl,
    SwitchInlineQueryChosenChat,
    WebAppInfo,
)

from tgbot.keyboard import Keyboard


class _Style(enum.StrEnum):
    """A string enum, as PTB's constants are."""

    X = "x"


#: Any text Telegram users or catalogs could put in a label or data: emoji, CJK, empty; as
#: ``str``, as the catalogs' ``Markup`` and as a string enum (str subclasses both).
TEXTS = st.one_of(st.text(max_size=20), st.text(max_size=20).map(Markup), st.just(_Style.X))


#: A value for each field of a button: strings where the Bot API has strings, objects where
#: it has objects.
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "url": TEXTS,
    "callback_data": TEXTS,
    "switch_inline_query": TEXTS,
    "switch_inline_query_current_chat": TEXTS,
    "callback_game": st.just(CallbackGame()),
    "pay": st.booleans(),
    "login_url": TEXTS.map(LoginUrl),
    "web_app": TEXTS.map(WebAppInfo),
    "switch_inline_query_chosen_chat": st.builds(
        SwitchInlineQueryChosenChat, query=TEXTS, allow_user_chats=st.booleans()
    ),
    "copy_text": TEXTS.map(CopyTextButton),
    "style": TEXTS,
    "icon_custom_emoji_id": TEXTS,
}


class _Button(InlineKeyboardButton):
    """A subclass (PTB's own writing is kept for it)."""

    __slots__ = ()


@st.composite
def buttons(draw: st.DrawFn) -> InlineKeyboardButton:
    """A button with a label and any set of fields; now and then extra API arguments."""
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=3))
    kwargs = {name: draw(FIELDS[name]) for name in names}
    api_kwargs = draw(st.none() | st.dictionaries(st.sampled_from(["x", "y"]), TEXTS))
    cls = draw(st.sampled_from([InlineKeyboardButton, InlineKeyboardButton, _Button]))
    return cls(draw(TEXTS), **kwargs, api_kwargs=api_kwargs)


#: Rows of buttons as the bot builds them (most plain, some empty rows, some empty keyboards).
ROWS = st.lists(st.lists(buttons(), max_size=4), max_size=6)


@settings(max_examples=400, deadline=None)
@given(rows=ROWS, api_kwargs=st.none() | st.dictionaries(st.just("z"), TEXTS))
def test_keyboard_writes_what_ptb_writes(rows: list[list[InlineKeyboardButton]], api_kwargs):
    ours = Keyboard(rows, api_kwargs=api_kwargs)
    theirs = InlineKeyboardMarkup(rows, api_kwargs=api_kwargs)
    assert ours.to_dict() == theirs.to_dict()
    assert json.loads(json.dumps(ours.to_dict())) == json.loads(json.dumps(theirs.to_dict()))
    assert ours.to_dict(recursive=False) == theirs.to_dict(recursive=False)
    assert ours == theirs and theirs == ours


@given(label=st.text(max_size=20), data=st.text(max_size=20), markup=st.booleans())
def test_the_bots_buttons_are_written_directly(label: str, data: str, markup: bool):
    """The bot's own buttons (a label, translated as ``Markup``, and callback data or a
    link) take the short way: they come out as exactly the two fields, and PTB's to_dict is
    not asked."""
    label = Markup(label) if markup else label
    keyboard = Keyboard(
        [[InlineKeyboardButton(label, callback_data=data)], [InlineKeyboardButton(label, url=data)]]
    )
    calls = []
    original = InlineKeyboardButton.to_dict

    def spy(self: InlineKeyboardButton, recursive: bool = True) -> dict[str, Any]:
        calls.append(self)
        return original(self, recursive)

    InlineKeyboardButton.to_dict = spy  # type: ignore[method-assign]
    try:
        written = keyboard.to_dict()
    finally:
        InlineKeyboardButton.to_dict = original  # type: ignore[method-assign]
    rows = [[{"text": label, "callback_data": data}], [{"text": label, "url": data}]]
    assert written == {"inline_keyboard": rows}
    assert calls == []


def test_the_bot_makes_its_keyboards_as_keyboard():
    """Every inline keyboard the bot makes is a :class:`Keyboard` (a new
    ``InlineKeyboardMarkup(...)`` would quietly take PTB's slow way again)."""
    repo = Path(__file__).resolve().parents[2]
    found = []
    for package in ("tgbot", "handlers", "services"):
        for path in sorted((repo / package).rglob("*.py")):
            if path.name == "keyboard.py" or "sandbox" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and _called(node) == "InlineKeyboardMarkup":
                    found.append(f"{path.relative_to(repo)}:{node.lineno}")
    assert found == []


def _called(call: ast.Call) -> str | None:
    """Return the name a call is made by (``f(...)`` or ``module.f(...)``)."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None
