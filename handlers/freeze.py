"""Freeze my account: for a stolen phone or payments the user did not make.

Speed matters more than a full check: after one confirmation, a linked account (or the
user's own shared contact) is frozen at once, then an urgent ticket puts a human on it.
Asking how to *unfreeze* an account, or saying the app freezes, never freezes anything.

```mermaid
stateDiagram-v2
    [*] --> confirm: menu, /freeze, the router (theft), urgent words inside another flow
    confirm --> frozen: linked account
    confirm --> contact: not linked
    contact --> frozen: own contact matches an account
    frozen --> [*]: urgent ticket opened
    confirm --> unconfirmed: the wallet did not confirm (looked up: not frozen)
    unconfirmed --> [*]: told so, urgent ticket "NOT CONFIRMED"
```
"""

from __future__ import annotations

import re
from enum import StrEnum

from telegram import InlineKeyboardButton, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler
from telegram.ext import filters as f

from services.tickets import URGENT_PRIORITY
from services.wording import add_menu_entry
from tgbot.backend.base import Account, NotFound, OutcomeUnknown, Unavailable
from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.text import escape

from .common import END, GuidedFlow, answer_button, flow_record, nav_rows, not_step_input, send_step
from .handoff import create_ticket
from .verify import (
    ANSWERED,
    NO_ACCOUNT,
    account_of_own_contact,
    contact_keyboard,
    contact_text,
    wallet_down,
)

LABEL = N_("🧊 Freeze my account")
DESCRIPTION = N_("stolen phone or payments you did not make: freeze it now")
CONFIRM = N_(
    "Freeze your U-Pay account now? Nobody, including you, can pay or transfer until support "
    "unfreezes it. Use this if your phone was stolen or you see payments you did not make."
)
YES_FREEZE = N_("🧊 Yes, freeze it now")
ASK_CONTACT = N_(
    "To find your account quickly, tap “📱 Share my phone number” below (your own number). "
    "Changed your mind? Tap “⬅️ Back”."
)
FROZEN = N_(
    "🧊 Your account {name} is frozen. No payments or transfers can be made from it.\n"
    "A support agent will contact you here as a priority to check recent activity and help "
    "you unfreeze it."
)
FREEZE_UNSURE = N_(
    "⚠️ I asked U-Pay to freeze your account {name}, but the service did not confirm that it "
    "is frozen. A support agent is being told right now, as a priority, to check and freeze "
    "it by hand. If you can, also change your password in the U-Pay app."
)

#: Urgent phrasing: theft or payments the user did not make. Typed while the user is in
#: another flow (whose step would otherwise take the text), it starts the freeze there;
#: outside a flow the learned router decides instead (``tgbot.answers.router``: measured on
#: the training data, these words never caught a theft message the router missed, and they
#: asked prevention questions such as "怎么防止账号被盗" to freeze the account).
URGENT = re.compile(
    r"(被盗|盗刷|手机丢了|手机被偷|冻结我的(账户|账号)|帮我冻结|有人盗用|不是我(付|支付|转)的|"
    r"stolen|freeze my (account|wallet)|unauthori[sz]ed (payment|transaction)s?|"
    r"someone (used|is using) my (account|card))",
    re.IGNORECASE,
)
#: Questions about an existing freeze (or an app that freezes): never a freeze request.
NOT_A_FREEZE = re.compile(
    r"(解冻|被冻结|冻结了|怎么冻结的|为什么冻结|钱被冻结|unfreeze|is frozen|was frozen|"
    r"got frozen|keeps? freezing|app (is )?freez|frozen app|screen freez)",
    re.IGNORECASE,
)

add_menu_entry("menu:freeze", LABEL, DESCRIPTION, order=30)


def wants_freeze(text: str) -> bool:
    """Return True for clear theft / unauthorized-payment phrasing (not unfreeze questions)."""
    return bool(URGENT.search(text)) and not NOT_A_FREEZE.search(text)


def _may_start(update: Update, context: BotContext) -> bool:
    """The menu button, /freeze and the router always start the freeze; urgent words typed
    only inside another flow (outside one, the router decides: see :data:`URGENT`)."""
    message = update.message
    if context.routed or message is None or not message.text or message.text.startswith("/"):
        return True
    return flow_record(context) is not None


class Freeze(StrEnum):
    """States of the freeze flow."""

    CONFIRM = "freeze:confirm"
    CONTACT = "freeze:contact"


async def freeze_start(update: Update, context: BotContext) -> object:
    """Ask to confirm the freeze."""
    await answer_button(update, context)
    keyboard = [
        [InlineKeyboardButton(context._(YES_FREEZE), callback_data="freeze:yes")],
        *nav_rows(context),
    ]
    await send_step(update, context, context._(CONFIRM), keyboard)
    return Freeze.CONFIRM


async def confirmed(update: Update, context: BotContext) -> object:
    """Freeze the linked account at once, or ask for the user's own contact."""
    await answer_button(update, context)
    linked = context.user_record.wallet_account_id if context.user_record else None
    if linked:
        try:
            account = await context.backend.get_account(linked)
        except NotFound:
            await send_step(update, context, context._(NO_ACCOUNT))
            await _urgent_ticket(update, context, {"found": "no"})
            return END
        except Unavailable as exc:
            await wallet_down(update, context, exc)
            return None
        return await _freeze(update, context, account)
    # The confirmation's buttons are spent; the reply keyboard has its own way back.
    await send_step(update, context, context._(CONFIRM))
    await context.bot.send_message(
        update.effective_chat.id, context._(ASK_CONTACT), reply_markup=contact_keyboard(context)
    )
    return Freeze.CONTACT


async def _urgent_ticket(update: Update, context: BotContext, info: dict) -> None:
    await create_ticket(update, context, priority=URGENT_PRIORITY, info={"flow": "freeze", **info})


async def contact_shared(update: Update, context: BotContext) -> object:
    """Find the account of the user's own number and freeze it."""
    account = await account_of_own_contact(update, context)
    if account is ANSWERED:
        return None
    if account is None:
        await update.message.reply_text(context._(NO_ACCOUNT))
        await _urgent_ticket(update, context, {"found": "no"})
        return END
    return await _freeze(update, context, account)


async def _freeze(update: Update, context: BotContext, account: Account) -> object:
    user_id = update.effective_user.id
    # The key names this freeze request (the update that confirmed it), never the account: a
    # freeze after support unfroze the account is a new request and must freeze it again.
    key = f"freeze:{user_id}:{update.update_id}"
    try:
        frozen: Account | None = await context.backend.freeze(account.id, "user_request", key)
    except OutcomeUnknown:
        frozen = await _look_up(context, account.id)
    except NotFound:
        await send_step(update, context, context._(NO_ACCOUNT))
        await _urgent_ticket(update, context, {"found": "no"})
        return END
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    if frozen is None or frozen.status != "frozen":
        # Never "your account is frozen" unless the wallet says so: a human checks at once.
        await context.repos.audit.record(user_id, "account.freeze_unconfirmed", account.id)
        text = context._(FREEZE_UNSURE).format(name=escape(account.display_name))
        await send_step(update, context, text)
        await _urgent_ticket(update, context, {"account": "NOT CONFIRMED"})
        return END
    await context.repos.audit.record(user_id, "account.freeze", account.id)
    await send_step(update, context, context._(FROZEN).format(name=escape(frozen.display_name)))
    await _urgent_ticket(update, context, {"account": "frozen"})
    return END


async def _look_up(context: BotContext, account_id: str) -> Account | None:
    """After a freeze whose answer was lost, ask the wallet how the account stands now."""
    try:
        return await context.backend.get_account(account_id)
    except Unavailable:
        return None


def freeze_flow() -> GuidedFlow:
    """Build the freeze flow (entries: menu, /freeze, urgent words typed in another flow;
    the router starts it for theft typed outside a flow)."""
    private_text = f.ChatType.PRIVATE & f.TEXT & ~f.COMMAND
    return GuidedFlow(
        name="freeze",
        entry_points=[
            CallbackQueryHandler(freeze_start, pattern=r"^menu:freeze$"),
            CommandHandler("freeze", freeze_start, filters=f.ChatType.PRIVATE),
            MessageHandler(private_text & f.Regex(URGENT) & ~f.Regex(NOT_A_FREEZE), freeze_start),
        ],
        states={
            Freeze.CONFIRM: [CallbackQueryHandler(confirmed, pattern=r"^freeze:yes$")],
            Freeze.CONTACT: [
                MessageHandler(f.CONTACT, contact_shared),
                # "⬅️ Back" ends it; anything else: the buttons again (freeze words restart).
                not_step_input(f.TEXT & ~f.COMMAND, contact_text),
            ],
        },
        allowed=_may_start,
        urgent=True,
        menu="menu:freeze",
        owns=("freeze",),
    )
