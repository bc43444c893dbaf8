"""Inline keyboards that turn into JSON without PTB's generic walk over every attribute.

Every step of a flow sends a keyboard (its choices, then "cancel", "talk to a human" and
"main menu"), and PTB writes it out with :meth:`telegram.TelegramObject.to_dict`: for each
button, every attribute of its class and its bases is looked up, checked for a nested object
and for a default value, and the empty ones dropped. That is about 20 µs a button, 160 µs for
the eight buttons of the refund reasons, on every send and edit (``bench.cost``).

:class:`Keyboard` is an :class:`~telegram.InlineKeyboardMarkup` (PTB and the rest of the bot
see no difference) whose :meth:`~Keyboard.to_dict` writes a button directly when all that is
set on it are strings (a label, translated as ``Markup``, and callback data or a link: every
button of the bot); any other button, or extra API arguments, are left to PTB's own
:meth:`to_dict`. The fields are read from the button class's own ``__slots__``, so a field a
later PTB adds is written too (or, when it is not a string, left to PTB). A property test
holds the result to PTB's.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

#: The Bot API fields of a button: the attributes its class declares.
_FIELDS: tuple[str, ...] = InlineKeyboardButton.__slots__
#: A private attribute (PTB writes some under another name) leaves every button to PTB.
_DIRECT = not any(name.startswith("_") for name in _FIELDS)


class Keyboard(InlineKeyboardMarkup):
    """An inline keyboard; made and used as :class:`~telegram.InlineKeyboardMarkup`."""

    __slots__ = ()

    def to_dict(self, recursive: bool = True) -> dict[str, Any]:
        """Return the keyboard as the Bot API's JSON object, as PTB's :meth:`to_dict` does."""
        if self.api_kwargs or not recursive or not self.inline_keyboard or not _DIRECT:
            return super().to_dict(recursive=recursive)
        return {"inline_keyboard": [[_button(b) for b in row] for row in self.inline_keyboard]}


def _button(button: InlineKeyboardButton) -> dict[str, Any]:
    """Return ``button`` as JSON: directly when every field set is a string."""
    if type(button) is not InlineKeyboardButton or button.api_kwargs:
        return button.to_dict()
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(button, name)
        if value is None:
            continue
        if not isinstance(value, str):  # str subclasses too: the catalogs' Markup labels
            return button.to_dict()
        out[name] = value
    return out
