"""Shared steps of every flow: the main menu registry, navigation buttons and the guided-flow
lifecycle (one flow per user, timeouts, stale buttons).

A guided flow is a persistent PTB ``ConversationHandler`` (:class:`GuidedFlow`). On top of
PTB it guarantees, for every flow:

* a user is in at most one flow: entering a flow ends the one they were in;
* flows run in private chats only, and an edited message never advances a step;
* a button works only on a message the *current* run of the flow sent (a button from an
  ended or earlier run answers "this menu has expired");
* inactivity ends a flow politely, also after a restart: the last-activity time lives in the
  flow record in ``user_data`` (persisted within a second), not only in PTB's timeout job;
* when a flow ends its scratch data is dropped, so ``user_data`` holds only running flows.

The flow record is ``user_data["flow"] = {"name", "last", "msgs"}``; a flow's own scratch goes
in ``user_data`` next to it (via :func:`scratch`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    ConversationHandler,
    TypeHandler,
)
from telegram.warnings import PTBUserWarning

from tgbot.context import BotContext
from tgbot.i18n import N_, Translator, pick_language, translator
from tgbot.text import check_callback_data

_LOGGER = logging.getLogger(__name__)

END = ConversationHandler.END
FLOW_KEY = "flow"
SCRATCH_KEY = "scratch"

MAIN_MENU = "menu:main"
#: A numeric id in a callback pattern: ASCII digits that always fit SQLite's 64-bit INTEGER
#: (forged button data with a longer number is not matched, so it answers "expired").
CALLBACK_ID = r"[0-9]{1,18}"
#: Shared button labels, translated where shown.
MAIN_MENU_LABEL = N_("🏠 Main menu")
BACK_LABEL = N_("⬅️ Back")
CANCEL_LABEL = N_("✖️ Cancel")
HUMAN_LABEL = N_("🙋 Talk to a human")

Callback = Callable[[Update, BotContext], Awaitable[object]]


@dataclass(frozen=True)
class MenuEntry:
    """A main-menu button that starts a flow; flows add theirs with :func:`add_menu_entry`."""

    data: str
    label: str
    description: str
    order: int


MENU: list[MenuEntry] = []


def add_menu_entry(data: str, label: str, description: str, order: int) -> None:
    """Register a main-menu button; ``label`` and ``description`` (shown by /help) are marked
    with ``N_``; ``order`` sorts the menu."""
    check_callback_data(data)
    if all(entry.data != data for entry in MENU):
        MENU.append(MenuEntry(data, label, description, order))
        MENU.sort(key=lambda entry: entry.order)


GREETING = N_("Hello, {name}! I am the official U-Pay support assistant. What can I help you with?")
MENU_PROMPT = N_("What can I help you with?")
LANGUAGE_LABEL = N_("🌐 Language")


def main_menu_markup(context: BotContext) -> InlineKeyboardMarkup:
    """Return the main menu keyboard in the user's language: registered flows, two a row."""
    buttons = [InlineKeyboardButton(context._(e.label), callback_data=e.data) for e in MENU]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([InlineKeyboardButton(context._(LANGUAGE_LABEL), callback_data="lang:menu")])
    return InlineKeyboardMarkup(rows)


async def show_main_menu(update: Update, context: BotContext, text: str | None = None) -> None:
    """Send the main menu (with ``text`` above it, or the short prompt)."""
    chat = update.effective_chat
    if chat is None:
        return
    await context.bot.send_message(
        chat.id, text or context._(MENU_PROMPT), reply_markup=main_menu_markup(context)
    )


#: Returned by a handler wrapped with :func:`final` that decided the update is not its own
#: (e.g. an admin command from a non-admin): later stages then answer as if it never ran.
CONTINUE = object()


def final(handlers: list[BaseHandler]) -> list[BaseHandler]:
    """Make each handler stop the pipeline after it answers (no later stage answers too),
    unless it returns :data:`CONTINUE`."""
    for handler in handlers:
        handler.callback = _stop_after(handler.callback)
    return handlers


def _stop_after(callback: Callback) -> Callback:
    @functools.wraps(callback)
    async def stopping(update: Update, context: BotContext) -> object:
        try:
            if await callback(update, context) is CONTINUE:
                return None
        except ApplicationHandlerStop:
            raise
        except Exception as exc:
            await report_error(update, context, exc)
        raise ApplicationHandlerStop

    return stopping


async def report_error(update: Update, context: BotContext, exc: Exception) -> None:
    """Hand ``exc`` to the error handler and stop: the user gets one apology, not also the
    fallback's "I did not understand" (PTB would go on to later groups)."""
    await context.application.process_error(update, exc)


async def translator_for(context: Any, user_id: int) -> Translator:
    """Return the translator of a user from their stored record (for jobs and errors)."""
    user = await context.application.repos.users.get(user_id)
    return translator(
        pick_language(
            user.language if user else None,
            user.telegram_language if user else None,
            context.application.config.default_language,
        )
    )


async def answer_button(update: Update, context: BotContext, text: str | None = None) -> None:
    """Answer the pressed button, once per update (a second answer is refused by Telegram)."""
    if update.callback_query is None or context.answered:
        return
    context.answered = True
    await update.callback_query.answer(text)


def flow_record(context: BotContext) -> dict[str, Any] | None:
    """Return the user's running flow record, or None."""
    if context.user_data is None:
        return None
    return context.user_data.get(FLOW_KEY)


def expect_numbers(context: BotContext, kind: str | None) -> None:
    """Tell the sensitive-data guard this step asks for a number (``"code"``, ``"amount"``,
    ``"query"``), so a lone 4-8 digit number typed now is not taken for a leaked code;
    ``None`` when the step is over."""
    record = flow_record(context)
    if record is None:
        return
    if kind is None:
        record.pop("expects", None)
    else:
        record["expects"] = kind


def scratch(context: BotContext) -> dict[str, Any]:
    """Return the running flow's scratch dict (dropped when the flow ends)."""
    assert context.user_data is not None
    return context.user_data.setdefault(SCRATCH_KEY, {})


def main_menu_row(context: BotContext) -> list[InlineKeyboardButton]:
    """Return a keyboard row with the "main menu" button."""
    return [InlineKeyboardButton(context._(MAIN_MENU_LABEL), callback_data=MAIN_MENU)]


def nav_rows(context: BotContext, back: str | None = None) -> list[list[InlineKeyboardButton]]:
    """Return the standard way-forward rows: optional back, cancel and main menu."""
    row = []
    if back:
        row.append(InlineKeyboardButton(context._(BACK_LABEL), callback_data=back))
    row.append(InlineKeyboardButton(context._(CANCEL_LABEL), callback_data="flow:cancel"))
    return [row, main_menu_row(context)]


async def send_step(
    update: Update,
    context: BotContext,
    text: str,
    keyboard: Sequence[Sequence[InlineKeyboardButton]] | None = None,
    *,
    edit: bool = True,
) -> Message:
    """Show a flow step: edit the pressed message when answering a button, else send anew.

    The message is recorded as belonging to the running flow, so its buttons work.
    """
    markup = InlineKeyboardMarkup(keyboard) if keyboard else None
    query = update.callback_query
    message: Message | None = None
    if edit and query is not None and isinstance(query.message, Message):
        try:
            edited = await query.edit_message_text(text, reply_markup=markup)
            message = edited if isinstance(edited, Message) else query.message
        except BadRequest as exc:
            if "not modified" not in str(exc):
                raise
            message = query.message
    if message is None:
        chat = update.effective_chat
        assert chat is not None
        message = await context.bot.send_message(chat.id, text, reply_markup=markup)
    record = flow_record(context)
    if record is not None and message.message_id not in record["msgs"]:
        # Keep the list short: only recent step messages can still be pressed.
        record["msgs"] = [*record["msgs"][-9:], message.message_id]
    return message


def clear_flow_data(application: Any, user_id: int) -> None:
    """Drop a user's flow record and scratch (an emptied ``user_data`` row is deleted)."""
    data = application.user_data.get(user_id)
    if data:
        data.clear()
        application.mark_data_for_update_persistence(user_ids=user_id)


def end_flow_of(application: Any, user_id: int, chat_id: int | None = None) -> str | None:
    """End a user's running flow, if any, dropping its scratch; return its name."""
    record = (application.user_data.get(user_id) or {}).get(FLOW_KEY)
    if record is None:
        return None
    flow = application.flows.get(record["name"])
    if flow is not None:
        flow.end_for((chat_id if chat_id is not None else user_id, user_id))
    clear_flow_data(application, user_id)
    return record["name"]


def is_expired(record: dict[str, Any], timeout: float, now: float | None = None) -> bool:
    """Return True if a flow record saw no activity for ``timeout`` seconds."""
    return (now if now is not None else time.time()) - record["last"] > timeout


class GuidedFlow(ConversationHandler):
    """A persistent guided flow with this project's lifecycle rules (see module docstring)."""

    def __init__(
        self,
        name: str,
        entry_points: Sequence[BaseHandler],
        states: dict[object, Sequence[BaseHandler]],
        fallbacks: Sequence[BaseHandler] = (),
        allowed: Callable[[Update, BotContext], bool] | None = None,
    ) -> None:
        # Who may start the flow (e.g. admins); others get what an unknown command gets.
        self._allowed = allowed
        for handler in entry_points:
            handler.callback = self._track(name, handler.callback, entry=True)
        for handlers in states.values():
            for handler in handlers:
                handler.callback = self._track(name, handler.callback, entry=False)
        # Every flow's "✖️ Cancel" button (from nav_rows) ends it.
        fallbacks = [*fallbacks, CallbackQueryHandler(cancel_flow, pattern=r"^flow:cancel$")]
        for handler in fallbacks:
            handler.callback = self._track(name, handler.callback, entry=False)
        with warnings.catch_warnings():
            # Expected, decided: a flow mixes typed steps and button steps, so it is tracked
            # per chat and user, not per message (per_message=True would ignore typed
            # answers). Buttons are checked against the flow's state and their own expiry
            # instead (see module docstring), so PTB's reminder is noise at every start.
            warnings.filterwarnings(
                "ignore", message="If 'per_message=False'", category=PTBUserWarning
            )
            super().__init__(
                entry_points=list(entry_points),
                states={state: list(handlers) for state, handlers in states.items()},
                fallbacks=list(fallbacks),
                name=name,
                persistent=True,
                per_chat=True,
                per_user=True,
                allow_reentry=True,
            )

    def check_update(self, update: object) -> Any:
        """Take only private-chat updates that are not edits; then PTB's rules apply."""
        if not isinstance(update, Update) or update.edited_message is not None:
            return None
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return None
        return super().check_update(update)

    async def enter(self, update: Update, context: BotContext, callback: Callback) -> None:
        """Start this flow with ``callback`` as its entry step, from outside its entry points
        (the free-text router acting on a clear intent); same lifecycle as an entry point.

        Raises ``ApplicationHandlerStop`` like a flow's own step (later stages must not
        answer too).
        """
        handler = TypeHandler(Update, self._track(str(self.name), callback, entry=True))
        key = (update.effective_chat.id, update.effective_user.id)
        await self.handle_update(update, context.application, (None, key, handler, None), context)

    def end_for(self, key: tuple[int, int]) -> None:
        """End this flow for a (chat, user) key from outside the flow.

        PTB has no public call for this; ``_update_state(END)`` is what its own timeout uses.
        """
        self._update_state(self.END, key)

    def state_of(self, key: tuple[int, int]) -> object:
        """Return the state this flow is in for a (chat, user) key (None: not running)."""
        return self._conversations.get(key)

    def move_to(self, state: object, key: tuple[int, int]) -> None:
        """Move this flow to ``state`` for a (chat, user) key from outside an update (a job
        that saw the wallet change); persisted like any state change."""
        self._update_state(state, key)

    def _track(self, name: str, callback: Callback, *, entry: bool) -> Callback:

        @functools.wraps(callback)
        async def tracked(update: Update, context: BotContext) -> object:
            assert context.user_data is not None and update.effective_user is not None
            chat_id = update.effective_chat.id if update.effective_chat else 0
            user_id = update.effective_user.id
            record = flow_record(context)
            query = update.callback_query
            if entry and self._allowed is not None and not self._allowed(update, context):
                return END  # not stopped: later stages answer as for an unknown command
            if entry:
                if record is not None:
                    end_flow_of(context.application, user_id, chat_id)
                context.user_data[FLOW_KEY] = record = {
                    "name": name,
                    "last": time.time(),
                    "msgs": [],
                }
            elif record is None or record["name"] != name:
                # The flow was ended elsewhere (timeout, another flow); this is stale.
                await answer_expired(update, context)
                self.end_for((chat_id, user_id))
                return END
            elif (
                query is not None
                and query.message
                and query.message.message_id not in record["msgs"]
            ):
                await answer_expired(update, context)
                return None
            record["last"] = time.time()
            try:
                state = await callback(update, context)
            except ApplicationHandlerStop:
                raise
            except Exception as exc:
                # The step stays where it was; the user gets the apology and can retry.
                await report_error(update, context, exc)
                raise ApplicationHandlerStop(None) from None
            if state == END:
                clear_flow_data(context.application, user_id)
            # The flow answered: later stages (commands, router, fallback) must not.
            raise ApplicationHandlerStop(state)

        return tracked


EXPIRED_TEXT = N_("This menu has expired. Here is a fresh one.")
CANCELLED = N_("Cancelled. Nothing was submitted.")


async def cancel_flow(update: Update, context: BotContext) -> object:
    """End the running flow from its "✖️ Cancel" button."""
    await update.callback_query.answer()
    await send_step(update, context, context._(CANCELLED))
    await show_main_menu(update, context)
    return END


async def answer_expired(update: Update, context: BotContext) -> None:
    """Tell the user a pressed button is stale and offer the main menu."""
    query = update.callback_query
    if query is None:
        return
    # Answering a query older than Telegram keeps them fails; the menu below still helps.
    with contextlib.suppress(BadRequest):
        await query.answer(context._(EXPIRED_TEXT))
    if isinstance(query.message, Message):
        with contextlib.suppress(BadRequest):
            await query.message.edit_reply_markup(reply_markup=None)
    await show_main_menu(update, context)
