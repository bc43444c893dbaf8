"""Self-service answers: free text the flows and menus did not take goes to the learned router
(``tgbot.answers.router``), which says what it is about; the user is answered in their
language, whichever language they typed in.

* A clear question gets its article (buttons that start the matching flow, a human, the main
  menu, and "Did this solve it?"); "No" offers a human, and the question goes into the
  ticket.
* A clear intent acts: theft or "freeze it now" starts the freeze (confirm first); "I want a
  refund" starts the refund flow and "check the payment on the 3rd" the lookup, each with
  the date, amount or merchant already searched; "talk to a person" and complaints open a
  ticket with the message; a greeting gets a greeting and the main menu.
* Possible theft that is not clear asks first: freeze it now, or the other topic?
* An unclear question gets the 2-3 closest topics, a human and the menu.
* Out of scope (the weather, a joke) goes on to the fallback's "did not understand" and menu.

Every question and what became of it is stored for the admin stats (answered / helpful /
escalated).

```mermaid
stateDiagram-v2
    [*] --> article: clear question
    [*] --> flow: clear intent (freeze / refund / refund status / lookup)
    [*] --> ticket: talk to a person / complaint
    [*] --> menu: greeting
    [*] --> safety: maybe theft
    [*] --> candidates: unclear
    [*] --> fallback: out of scope
    safety --> flow: freeze
    safety --> article: the other topic
    candidates --> article: pick one
    article --> [*]: Yes (helpful) / a flow's button / main menu
    article --> offer: No
    offer --> ticket: talk to a human (question carried)
    article --> ticket: talk to a human (question carried)
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading

from markupsafe import Markup
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, MessageHandler
from telegram.ext import filters as f

from services.wording import HUMAN_LABEL
from storage.repos.answers import ANSWERED, CANDIDATES, AnswerRecord
from tgbot import facts
from tgbot.answers import HOURS_ALWAYS, HOURS_RANGE, Article, get_article
from tgbot.answers.articles import FREEZE, FREEZE_LABEL
from tgbot.answers.router import Decision, Router, default_router, router_ready
from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.keyboard import Keyboard
from tgbot.text import escape, truncate

from . import freeze, lookup, refund
from .common import CONTINUE, answer_expired, main_menu_markup, main_menu_row, nav_button
from .handoff import create_ticket

_LOGGER = logging.getLogger(__name__)

DID_IT_HELP = N_("Did this solve it?")
YES_LABEL = N_("👍 Yes, solved")
NO_LABEL = N_("👎 No")
THANKS = N_("Thank you! Glad it helped.")
NOTED = N_("Thank you, your answer is already noted.")
SORRY = N_(
    "Sorry that did not solve it. An agent can take it from here, and I will pass on your "
    "question:\n<i>{question}</i>"
)
CANDIDATES_TEXT = N_("I found a few answers that may fit. Which one do you mean?")
SAFETY_ASK = N_(
    "If someone else is using your account, or you see payments you did not make, freeze "
    "it now: nobody can pay from it until support unfreezes it. Or did you mean the topic "
    "below?"
)

#: A question is stored (and shown back) up to this many characters.
QUESTION_LIMIT = 500
#: Text with a letter or a Chinese character in it; anything else goes to the fallback.
_WORDY = re.compile(r"[^\W\d_]")


def _hours(context: BotContext) -> str:
    hours = context.config.business_hours
    if hours is None:
        return context._(HOURS_ALWAYS)
    start, end = hours
    return context._(HOURS_RANGE).format(
        start=f"{start // 60:02d}:{start % 60:02d}",
        end=f"{end // 60:02d}:{end % 60:02d}",
        zone=context.tr.zone_name(context.config.zone),
    )


def article_text(context: BotContext, article: Article) -> str:
    """Return an article in the user's language: title, body, and the feedback question."""
    body = context._(article.body)
    if "{" in article.body:  # the facts stated in several places, and the opening hours
        body = body.format(hours=_hours(context), **facts.values(context.tr))
    text = Markup(f"<b>{context._(article.title)}</b>\n\n{body}")  # all from the catalogs
    if article.kind == "article":
        text += "\n\n" + context._(DID_IT_HELP)
    return text


def article_keyboard(
    context: BotContext,
    article: Article,
    answer_id: int,
    *,
    feedback: bool = True,
    freeze_button: bool = False,
) -> InlineKeyboardMarkup:
    """Return an article's buttons: Yes / No, its flows (and the freeze, when the router
    found theft possible), a human (with the question), menu."""
    rows: list[list[InlineKeyboardButton]] = []
    if feedback and article.kind == "article":
        rows.append(
            [
                InlineKeyboardButton(context._(YES_LABEL), callback_data=f"ans:yes:{answer_id}"),
                InlineKeyboardButton(context._(NO_LABEL), callback_data=f"ans:no:{answer_id}"),
            ]
        )
    actions = [nav_button(context, a.label, a.data) for a in article.actions]
    if freeze_button and all(a.data != FREEZE for a in article.actions):
        actions.append(nav_button(context, FREEZE_LABEL, FREEZE))
    rows.extend(actions[i : i + 2] for i in range(0, len(actions), 2))
    rows.append(_human_and_menu(context, answer_id))
    return Keyboard(rows)


def _human_and_menu(context: BotContext, answer_id: int) -> list[InlineKeyboardButton]:
    return [
        InlineKeyboardButton(context._(HUMAN_LABEL), callback_data=f"ans:human:{answer_id}"),
        *main_menu_row(context),
    ]


async def _router() -> Router:
    """Return the router without blocking the event loop while it trains."""
    if router_ready():
        return default_router()
    return await asyncio.to_thread(default_router)


#: Topics whose flow starts at once, with the step that starts it.
FLOW_STARTS = {
    "account_stolen": ("freeze", freeze.freeze_start),
    "refund_request": ("refund", refund.from_search),
    "refund_status": ("refund", refund.my_refunds),
    "lookup": ("lookup", lookup.from_search),
}


async def answer_question(update: Update, context: BotContext) -> object:
    """Route free text: act on a clear intent, answer a clear question, ask about possible
    theft, offer candidates, or leave out-of-scope text to the fallback."""
    message = update.effective_message
    text = (message.text or "").strip()
    if not _WORDY.search(text):
        return CONTINUE  # emoji, digits, punctuation: the fallback answers
    router = await _router()
    decision: Decision = await asyncio.to_thread(router.decide, text)
    if decision.kind == "none":
        return CONTINUE  # out of scope: not forced onto an article
    question = truncate(text, QUESTION_LIMIT)
    if decision.kind == "answer":
        return await act(update, context, decision.best, question, decision.freeze_button)
    repo = context.repos.answers
    answer_id = await repo.record(update.effective_user.id, context.lang, question, CANDIDATES)
    rows = [
        [
            InlineKeyboardButton(
                context._(get_article(key).title), callback_data=f"ans:pick:{answer_id}:{key}"
            )
        ]
        for key in decision.topics
        if key != "account_stolen" or decision.kind != "safety"
    ]
    freeze_row = [InlineKeyboardButton(context._(FREEZE_LABEL), callback_data=FREEZE)]
    if decision.kind == "safety":
        rows.insert(0, freeze_row)
    elif decision.freeze_button:  # theft possible, not likely: the freeze after the topics
        rows.append(freeze_row)
    rows.append(_human_and_menu(context, answer_id))
    text = SAFETY_ASK if decision.kind == "safety" else CANDIDATES_TEXT
    await message.reply_text(context._(text), reply_markup=Keyboard(rows))
    return None


async def act(
    update: Update, context: BotContext, topic: str, question: str, freeze_button: bool = False
) -> object:
    """Do what a clear topic asks for: start its flow, open a ticket, greet, or answer (with
    the freeze button too when ``freeze_button``)."""
    article = get_article(topic)
    assert article is not None, topic
    user_id = update.effective_user.id
    repo = context.repos.answers
    answer_id = await repo.record(user_id, context.lang, question, ANSWERED, topic)
    if topic in FLOW_STARTS:
        name, step = FLOW_STARTS[topic]
        context.routed = True
        await context.application.flows[name].enter(update, context, step)
        return None
    if topic == "human" or article.kind == "complaint":
        if article.kind == "complaint":
            await update.effective_message.reply_text(context._(article.body))
        key = "complaint" if article.kind == "complaint" else "question"
        ticket = await create_ticket(update, context, info={key: question})
        await repo.escalated(answer_id, user_id, ticket.id)
        return None
    if article.kind == "greeting":
        await update.effective_message.reply_text(
            context._(article.body), reply_markup=main_menu_markup(context)
        )
        return None
    keyboard = article_keyboard(context, article, answer_id, freeze_button=freeze_button)
    await update.effective_message.reply_text(article_text(context, article), reply_markup=keyboard)
    return None


async def _own_answer(update: Update, context: BotContext) -> AnswerRecord | None:
    """Return the question a pressed button refers to, if it is the presser's own."""
    answer_id = int(update.callback_query.data.split(":")[2])
    record = await context.repos.answers.get(answer_id)
    if record is None or record.user_id != update.effective_user.id:
        await answer_expired(update, context)
        return None
    return record


async def pick_candidate(update: Update, context: BotContext) -> None:
    """Show the article the user picked among the candidates."""
    record = await _own_answer(update, context)
    article = get_article(update.callback_query.data.split(":")[3])
    if record is None or article is None:
        if record is not None:
            await answer_expired(update, context)
        return
    query = update.callback_query
    await context.repos.answers.choose(record.id, record.user_id, article.key)
    await query.answer()
    if article.kind == "complaint":
        await query.edit_message_text(context._(article.body))
        ticket = await create_ticket(update, context, info={"complaint": record.question})
        await context.repos.answers.escalated(record.id, record.user_id, ticket.id)
        return
    # The list offered the freeze and the user chose this topic instead: the article's own
    # buttons only.
    keyboard = article_keyboard(context, article, record.id)
    await query.edit_message_text(article_text(context, article), reply_markup=keyboard)


def _has_freeze(message: object) -> bool:
    """Return True when a message's buttons include the freeze (it stays when Yes / No go)."""
    markup = message.reply_markup if isinstance(message, Message) else None
    rows = markup.inline_keyboard if markup else ()
    return any(button.callback_data == FREEZE for row in rows for button in row)


async def feedback(update: Update, context: BotContext) -> None:
    """Record "Did this solve it?"; on "No", offer a human who gets the question."""
    record = await _own_answer(update, context)
    if record is None:
        return
    query = update.callback_query
    helpful = query.data.split(":")[1] == "yes"
    article = get_article(record.article or "")
    if not await context.repos.answers.feedback(record.id, record.user_id, helpful):
        await query.answer(context._(NOTED))
        return
    await query.answer(context._(THANKS) if helpful else None)
    if article is not None and isinstance(query.message, Message):
        keyboard = article_keyboard(
            context, article, record.id, feedback=False, freeze_button=_has_freeze(query.message)
        )
        with contextlib.suppress(BadRequest):  # the buttons stay, only Yes / No go
            await query.message.edit_reply_markup(reply_markup=keyboard)
    if not helpful:
        await context.bot.send_message(
            update.effective_chat.id,
            context._(SORRY).format(question=escape(truncate(record.question, 300))),
            reply_markup=Keyboard([_human_and_menu(context, record.id)]),
        )


async def to_human(update: Update, context: BotContext) -> None:
    """Open a ticket that carries the question (and the article shown, if any)."""
    record = await _own_answer(update, context)
    if record is None:
        return
    await update.callback_query.answer()
    info = {"question": record.question}
    if record.article:
        info["article"] = record.article
    ticket = await create_ticket(update, context, info=info)
    await context.repos.answers.escalated(record.id, record.user_id, ticket.id)


def _train_gently() -> None:
    """Train the router at a lower CPU priority, on one core: serving updates comes first."""
    with contextlib.suppress(AttributeError, OSError):  # Linux: the nice value of a thread
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        default_router()


def warm_up() -> None:
    """Train the router in a background thread (once per process), so the first question
    does not wait for it."""
    if not router_ready():
        # Not a daemon: a process stopped during the first seconds waits for the training
        # to end instead of tearing the interpreter down under native code (an abort).
        threading.Thread(target=_train_gently, name="answers-router").start()


def router_handlers() -> list:
    """Return the free-text answer rule and the answers' buttons (after the more specific
    router rules of the handoff and freeze)."""
    warm_up()
    private_text = f.ChatType.PRIVATE & f.UpdateType.MESSAGE & f.TEXT & ~f.COMMAND
    return [
        MessageHandler(private_text, answer_question),
        CallbackQueryHandler(pick_candidate, pattern=r"^ans:pick:\d{1,12}:[a-z_]{1,30}$"),
        CallbackQueryHandler(feedback, pattern=r"^ans:(yes|no):\d{1,12}$"),
        CallbackQueryHandler(to_human, pattern=r"^ans:human:\d{1,12}$"),
    ]
