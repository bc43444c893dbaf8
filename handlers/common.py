"""Shared steps of every flow: the main menu registry, navigation buttons and the guided-flow
lifecycle (one flow per user, timeouts, stale buttons).

A guided flow is a persistent PTB ``ConversationHandler`` (:class:`GuidedFlow`). On top of
PTB it guarantees, for every flow:

* a user is in at most one flow: entering a flow ends the one they were in;
* flows run in private chats only, and an edited message never advances a step;
* a button works only on a message the *current* run of the flow sent (a button from an
  ended or earlier run says it belongs to an earlier step and offers its flow again);
* inactivity ends a flow politely, also after a restart: the last-activity time lives in the
  flow record in ``user_data`` (persisted within a second), not only in PTB's timeout job;
* when a flow ends its scratch data is dropped, so ``user_data`` holds only running flows.

The flow record is ``user_data["flow"] = {"name", "last", "msgs"}``; a flow's own scratch goes
in ``user_data`` next to it (via :func:`scratch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
)
from telegram.ext import filters as f
from telegram.warnings import PTBUserWarning

from services.wording import HUMAN_LABEL, MAIN_MENU_LABEL, MENU
from tgbot.context import BotContext
from tgbot.i18n import N_, Translator
from tgbot.keyboard import Keyboard

_LOGGER = logging.getLogger(__name__)

END = ConversationHandler.END
FLOW_KEY = "flow"
SCRATCH_KEY = "scratch"

MAIN_MENU = "menu:main"
#: A numeric id in a callback pattern: ASCII digits that always fit SQLite's 64-bit INTEGER
#: (forged button data with a longer number is not matched, so it answers "expired").
CALLBACK_ID = r"[0-9]{1,18}"
BACK_LABEL = N_("⬅️ Back")
CANCEL_LABEL = N_("✖️ Cancel")

Callback = Callable[[Update, BotContext], Awaitable[object]]


GREETING = N_("Hello, {name}! I am the official U-Pay support assistant. What can I help you with?")
MENU_PROMPT = N_("What can I help you with?")
#: The same in every language: someone who cannot read the current one still finds it.
LANGUAGE_LABEL = "🌐 语言 / Language"


def main_menu_markup(context: BotContext) -> InlineKeyboardMarkup:
    """Return the main menu keyboard in the user's language: registered flows, two a row."""
    buttons = [nav_button(context, e.label, e.data) for e in MENU]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([InlineKeyboardButton(LANGUAGE_LABEL, callback_data="lang:menu")])
    return Keyboard(rows)


async def show_main_menu(
    update: Update, context: BotContext, text: str | None = None, *, edit: bool = False
) -> None:
    """Show the main menu (with ``text`` above it, or the short prompt): in the pressed
    message when ``edit`` (navigation in place), else as a new message."""
    chat = update.effective_chat
    if chat is None:
        return
    text = text or context._(MENU_PROMPT)
    query = update.callback_query
    if edit and query is not None and isinstance(query.message, Message):
        try:
            await query.message.edit_text(text, reply_markup=main_menu_markup(context))
            return
        except BadRequest as exc:
            if "not modified" in str(exc):
                return
            # Too old to edit (48 h) or deleted: a new message below does the job.
    await context.bot.send_message(chat.id, text, reply_markup=main_menu_markup(context))


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
        chat = update.effective_chat
        private = chat is not None and chat.type == ChatType.PRIVATE
        try:
            async with typing_while_slow(context, chat.id if private else 0):
                answered = await callback(update, context)
            if answered is CONTINUE:
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


def nav_button(context: BotContext, label: str, data: str) -> InlineKeyboardButton:
    """Return the button ``label`` (translated) sending ``data``, made once per language;
    for the fixed buttons of every step (``data`` constant, or the cache would grow). PTB's
    buttons cannot be changed once made, so one serves every message."""
    return _nav_button(context.tr, label, data)


@functools.cache
def _nav_button(tr: Translator, label: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(tr.gettext(label), callback_data=data)


def main_menu_row(context: BotContext) -> list[InlineKeyboardButton]:
    """Return a keyboard row with the "main menu" button."""
    return [nav_button(context, MAIN_MENU_LABEL, MAIN_MENU)]


def human_button(context: BotContext) -> InlineKeyboardButton:
    """Return the "talk to a human" button (works from any step; the flow's context goes
    into the ticket)."""
    return nav_button(context, HUMAN_LABEL, "menu:human")


def nav_rows(context: BotContext, back: str | None = None) -> list[list[InlineKeyboardButton]]:
    """Return the standard way-forward rows of a flow step: optional back and cancel, then a
    human and the main menu."""
    row = []
    if back:
        row.append(nav_button(context, BACK_LABEL, back))
    row.append(nav_button(context, CANCEL_LABEL, "flow:cancel"))
    return [row, [human_button(context), *main_menu_row(context)]]


async def send_step(
    update: Update,
    context: BotContext,
    text: str,
    keyboard: Sequence[Sequence[InlineKeyboardButton]] | None = None,
    *,
    edit: bool | None = None,
    keep: bool = False,
    fresh: bool = False,
) -> int:
    """Show a flow step and return its message id.

    Navigation happens in place: a press on a menu or a flow step edits that message
    (``edit=None``: when the pressed message is one to navigate, see :func:`navigable`;
    ``True``: always; ``False``: never), and a step that follows a deleted typed message (a
    code) edits the step above it. Content a button sits under (a help article, a notice)
    stays; the step comes below it. A step sent
    as a new message makes the flow's earlier step messages inert (their keyboards are
    removed), unless ``keep`` (e.g. "the wallet is down": the step above stays pressable).
    With ``fresh``, an edit that would change nothing is sent anew instead (the user must
    see that their message was answered). The message is recorded as belonging to the
    running flow, so its buttons work.
    """
    if context.step_prefix:
        text = f"{context.step_prefix}\n\n{text}"
        context.step_prefix = None
    markup = Keyboard(keyboard) if keyboard else None
    chat = update.effective_chat
    assert chat is not None
    query = update.callback_query
    target: int | None = None
    if edit is None and query is not None and isinstance(query.message, Message):
        edit = navigable(context, query.message)
    if edit and query is not None and isinstance(query.message, Message):
        target = query.message.message_id
    elif edit is not False and context.edit_target is not None:
        target = context.edit_target
    context.edit_target = None
    message_id: int | None = None
    if target is not None:
        try:
            await context.bot.edit_message_text(
                text, chat_id=chat.id, message_id=target, reply_markup=markup
            )
            message_id = target
        except BadRequest as exc:
            if "not modified" in str(exc) and not fresh:
                message_id = target
            # Else too old to edit or deleted: sent anew below.
    record = flow_record(context)
    if message_id is None:
        sent = await context.bot.send_message(chat.id, text, reply_markup=markup)
        message_id = sent.message_id
        if not keep:
            stale = list(record["msgs"]) if record is not None else []
            if query is not None and isinstance(query.message, Message):
                stale.append(query.message.message_id)
            await make_inert(context, chat.id, [m for m in stale if m != message_id])
    if record is not None:
        if keep:
            # Keep the list short: only recent step messages can still be pressed.
            msgs = [m for m in record["msgs"] if m != message_id][-9:]
            record["msgs"] = [*msgs, message_id]
        else:
            record["msgs"] = [message_id]
    return message_id


async def retire_steps(context: BotContext, chat_id: int, keep: Sequence[int] = ()) -> None:
    """Take the buttons off the step messages of a flow this update ended (kept: those a
    new step was shown in)."""
    stale = [m for m in context.left_steps if m not in keep]
    context.left_steps = set()
    await make_inert(context, chat_id, stale)


def navigable(context: BotContext, message: Message) -> bool:
    """Return True for a message the user navigates in (edited in place by the next step):
    a step of the running flow or of the flow this update just left, or a main menu."""
    record = flow_record(context)
    if record is not None and message.message_id in record["msgs"]:
        return True
    if message.message_id in context.left_steps:
        return True
    markup = message.reply_markup
    return markup is not None and any(
        button.callback_data == "lang:menu" for row in markup.inline_keyboard for button in row
    )


async def make_inert(context: BotContext, chat_id: int, message_ids: Sequence[int]) -> None:
    """Remove the keyboards of messages a flow has moved on from (no live stale buttons)."""
    for message_id in dict.fromkeys(message_ids):
        with contextlib.suppress(BadRequest):  # already without buttons, deleted, too old
            await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)


def clear_flow_data(application: Any, user_id: int) -> None:
    """Drop a user's flow record and scratch (an emptied ``user_data`` row is deleted)."""
    data = application.user_data.get(user_id)
    if data:
        data.clear()
        application.mark_data_for_update_persistence(user_ids=user_id)


@contextlib.asynccontextmanager
async def user_in_sync(application: Any, user_id: int) -> AsyncIterator[None]:
    """Hold a user's private chat with their flow as stored, for work outside their updates
    (a job): several workers share the database (``application.cluster``), and another may
    have moved the user on. Nothing to do for one process."""
    cluster = getattr(application, "cluster", None)
    if cluster is None:
        yield
        return
    async with cluster.user(user_id, user_id):
        yield


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


#: Returned by a step that decides the update is not for the flow after all (e.g. a new
#: question typed where a comment was optional): the flow ends and later stages answer it.
LET_GO = "flow:let-go"


class NotStepInput(MessageHandler):
    """A text handler that is *not* the step's own input (a "please use the buttons" reply),
    so words that start another flow ("my phone was stolen") still do at this step."""


def not_step_input(filters: Any, callback: Callback) -> NotStepInput:
    """Return a :class:`NotStepInput` text handler."""
    return NotStepInput(filters, callback)


class GuidedFlow(ConversationHandler):
    """A persistent guided flow with this project's lifecycle rules (see module docstring)."""

    def __init__(
        self,
        name: str,
        entry_points: Sequence[BaseHandler],
        states: dict[object, Sequence[BaseHandler]],
        fallbacks: Sequence[BaseHandler] = (),
        allowed: Callable[[Update, BotContext], bool] | None = None,
        *,
        menu: str | None = None,
        owns: Sequence[str] = (),
        escalate: bool = True,
        urgent: bool = False,
    ) -> None:
        """Args:
        menu: the main-menu button that starts the flow (offered again on a stale press).
        owns: callback-data namespaces of its buttons (``"cards"`` for ``"cards:add"``).
        escalate: whether "转人工" / "agent" typed at a step reaches a human (not while an
            admin types a notice whose text may be anything).
        urgent: whether the flow's typed entry words (the freeze's theft words) win over
            another flow's step that takes typed text, as asking for a human does; they
            still yield to a step with ``escalate=False`` (an admin typing a notice).
        """
        # Who may start the flow (e.g. admins); others get what an unknown command gets.
        self._allowed = allowed
        self.menu = menu
        self.owns = tuple(owns)
        self.escalate = escalate
        self.urgent = urgent
        #: Every guided flow of the application (set by ``handlers.register``).
        self.peers: list[GuidedFlow] = []
        states = {
            # Text typed at a step that takes only buttons: "please use the buttons above".
            state: [*handlers, not_step_input(f.TEXT & ~f.COMMAND, use_buttons)]
            for state, handlers in states.items()
        }
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
        """Take only private-chat updates that are not edits; then PTB's rules apply, except
        that typed text never starts this flow while another flow's current step takes that
        text as its own input; an ``urgent`` flow's words (theft) yield only to a step that
        does not escalate (an admin typing a notice)."""
        if not isinstance(update, Update) or update.edited_message is not None:
            return None
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return None
        if self._outside_and_not_entering(update):
            return None
        result = super().check_update(update)
        if (
            result is not None
            and update.message is not None
            and result[2] in self.entry_points
            and isinstance(result[2], MessageHandler)
            and any(
                peer.takes_as_input(update) and not (self.urgent and peer.escalate)
                for peer in self.peers
                if peer is not self
            )
        ):
            return None
        return result

    def _outside_and_not_entering(self, update: Update) -> bool:
        """Return True if the update's user is not in this flow and none of its entry points
        takes the update: PTB's ``check_update`` would return None too. Every update is
        offered to each flow in turn, and PTB's way to that answer costs about 10 µs a flow
        (most updates belong to at most one of them); the entry points' own checks decide
        here, in PTB's order."""
        user = update.effective_user  # (the chat is known: a private one)
        if user is None:
            return False  # PTB's own early answer applies
        # The flow's key, as PTB's _get_key makes it for per_chat and per_user; PTB stores
        # no None state (None means "stay"; END removes the key).
        if (update.effective_chat.id, user.id) in self._conversations:
            return False  # in this flow (or a step still running): PTB decides
        for entry_point in self.entry_points:
            check = entry_point.check_update(update)
            if check is not None and check is not False:
                return False
        return True

    def takes_as_input(self, update: Update) -> bool:
        """Return True if this flow's current step for the update's user takes its text as
        the step's own input (not as a "please use the buttons" reply)."""
        key = self._get_key(update)
        state = self._conversations.get(key)
        if state is None:
            return False
        for handler in self.states.get(state, []):
            if isinstance(handler, NotStepInput):
                continue
            if isinstance(handler, MessageHandler) and handler.check_update(update):
                return True
        return False

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
                    # Its step messages may be navigated on into the new flow's first step.
                    context.left_steps = set(record.get("msgs", ()))
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
                async with typing_while_slow(context, chat_id):
                    state = await callback(update, context)
            except ApplicationHandlerStop:
                raise
            except Exception as exc:
                # The step stays where it was; the user gets the apology and can retry.
                await report_error(update, context, exc)
                raise ApplicationHandlerStop(None) from None
            # Steps of a flow this one replaced, not navigated on in place: no live buttons.
            await retire_steps(context, chat_id, keep=record.get("msgs", ()))
            if state == LET_GO:
                # Not for this flow after all: it ends and later stages answer the update.
                clear_flow_data(context.application, user_id)
                return END
            if state == END:
                clear_flow_data(context.application, user_id)
            # The flow answered: later stages (commands, router, fallback) must not.
            raise ApplicationHandlerStop(state)

        return tracked


#: Seconds a step may take before the user sees "typing…" (Telegram shows it for 5 s).
TYPING_AFTER = 0.8
TYPING_EVERY = 4.5


@contextlib.asynccontextmanager
async def typing_while_slow(context: BotContext, chat_id: int):
    """Show Telegram's "typing…" in the chat while a step is slow (a wallet call, a 429)."""
    if chat_id <= 0:
        yield
        return

    async def show() -> None:
        while True:
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
            await asyncio.sleep(TYPING_EVERY)

    # Most steps end well before TYPING_AFTER: a timer, not a task, until one does not.
    task: asyncio.Task | None = None

    def slow() -> None:
        nonlocal task
        task = asyncio.create_task(show(), name=f"typing-{chat_id}")

    timer = asyncio.get_running_loop().call_later(TYPING_AFTER, slow)
    try:
        yield
    finally:
        timer.cancel()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# TRANSLATORS: callback answer (max 200)
STALE_TEXT = N_("This button belongs to an earlier step and no longer works.")
STALE_OFFER = N_(
    "That button belonged to an earlier step that is no longer open. Start again from the "
    "buttons below."
)
CANCELLED = N_("Cancelled. Nothing was submitted.")
USE_BUTTONS = N_(
    "Please use the buttons above to continue. To do something else, tap “✖️ Cancel”; to "
    "reach a person, tap “🙋 Talk to a human”."
)


async def cancel_flow(update: Update, context: BotContext) -> object:
    """End the running flow from its "✖️ Cancel" button: the step becomes the main menu."""
    await answer_button(update, context)
    text = f"{context._(CANCELLED)}\n\n{context._(MENU_PROMPT)}"
    await show_main_menu(update, context, text, edit=True)
    return END


async def use_buttons(update: Update, context: BotContext) -> object:
    """Text typed at a step that takes only buttons: point at the buttons, keep the step."""
    keyboard = [
        [InlineKeyboardButton(context._(CANCEL_LABEL), callback_data="flow:cancel")],
        [human_button(context), *main_menu_row(context)],
    ]
    await send_step(update, context, context._(USE_BUTTONS), keyboard, keep=True)
    return None


def flow_of_button(application: Any, data: str) -> str | None:
    """Return the main-menu button of the flow a button's data belongs to, if known."""
    namespace = data.split(":", 1)[0]
    if namespace == "menu":
        return data if any(entry.data == data for entry in MENU) else None
    for flow in getattr(application, "flows", {}).values():
        if namespace in getattr(flow, "owns", ()) and getattr(flow, "menu", None):
            return flow.menu
    return None


async def answer_expired(update: Update, context: BotContext) -> None:
    """Explain a stale button and offer the flow it belonged to (and the main menu), on the
    stale message itself (its old buttons go)."""
    query = update.callback_query
    if query is None:
        return
    # Answering a query older than Telegram keeps them fails; the offer below still helps.
    if not context.answered:
        context.answered = True
        with contextlib.suppress(BadRequest):
            await query.answer(context._(STALE_TEXT))
    menu = flow_of_button(context.application, query.data or "")
    rows = []
    for entry in MENU:
        if entry.data == menu:
            rows.append([InlineKeyboardButton(context._(entry.label), callback_data=entry.data)])
    rows.append(main_menu_row(context))
    markup = Keyboard(rows)
    if isinstance(query.message, Message):
        try:
            await query.message.edit_reply_markup(reply_markup=markup)
            return
        except BadRequest as exc:
            if "not modified" in str(exc):
                return
    chat = update.effective_chat
    if chat is not None:
        await context.bot.send_message(chat.id, context._(STALE_OFFER), reply_markup=markup)
