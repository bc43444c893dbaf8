"""Password reset and account unlock.

The user verifies who they are, then gets a one-time reset link to the wallet's own page (the
bot never asks for or accepts a password), or unlocks an account locked by wrong passwords.
A frozen account is explained and handed to a human.

```mermaid
stateDiagram-v2
    [*] --> verify: menu / /password
    verify --> choose: verified (or fresh)
    choose --> [*]: reset link sent
    choose --> [*]: unlocked
    choose --> [*]: frozen -> human
```
"""

from __future__ import annotations

from enum import StrEnum

from telegram import InlineKeyboardButton, Update
from telegram.ext import CallbackQueryHandler, CommandHandler
from telegram.ext import filters as f

from tgbot.backend.base import Frozen, Locked, NotEligible, NotFound, Unavailable
from tgbot.context import BotContext
from tgbot.i18n import N_

from .common import (
    END,
    GuidedFlow,
    add_menu_entry,
    answer_button,
    main_menu_row,
    nav_rows,
    send_step,
)
from .verify import account_gone, human_rows, require_verified, verify_states, wallet_down

LABEL = N_("🔑 Password / unlock")
DESCRIPTION = N_("reset a forgotten password or unlock your account")
STATUS_ACTIVE = N_(
    "Your account {name} is active. If you forgot your password, I can send you a one-time "
    "link to set a new one on the U-Pay page."
)
STATUS_LOCKED = N_(
    "Your account {name} is locked because the password was entered wrongly too many times. "
    "You can unlock it now, or set a new password."
)
STATUS_FROZEN = N_(
    "Your account {name} is frozen for your protection. Only a support agent can unfreeze it."
)
RESET_LABEL = N_("🔗 Send me a reset link")
UNLOCK_LABEL = N_("🔓 Unlock my account")
OPEN_LINK_LABEL = N_("🔗 Open the reset page")
LINK_SENT = N_(
    "Here is your one-time link to set a new password. It works once, for 15 minutes.\n"
    "⚠️ Never share this link. Nobody from U-Pay will ever ask for it, for your password or "
    "for a code."
)
UNLOCKED = N_("🔓 Your account is unlocked. You can log in again with your password.")
NOT_LOCKED = N_("Your account is not locked, so there is nothing to unlock.")
LOCKED_REFUSED = N_(
    "The wallet does not allow this while your account is locked. A human agent can help you."
)

add_menu_entry("menu:password", LABEL, DESCRIPTION, order=10)


class Password(StrEnum):
    """States of the password flow (besides the shared identity check)."""

    CHOOSE = "password:choose"


async def password_start(update: Update, context: BotContext) -> object:
    """Start: check who the user is, then show the account's state."""
    await answer_button(update, context)
    return await require_verified(update, context, show_status)


async def show_status(update: Update, context: BotContext, account_id: str) -> object:
    """Explain the account's state and offer what fits it."""
    try:
        account = await context.backend.get_account(account_id)
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    name = account.display_name
    if account.status == "frozen":
        await send_step(
            update,
            context,
            context._(STATUS_FROZEN).format(name=name),
            human_rows(context),
            edit=False,
        )
        return END
    rows = []
    if account.status == "locked":
        text = STATUS_LOCKED
        rows.append(
            [InlineKeyboardButton(context._(UNLOCK_LABEL), callback_data="password:unlock")]
        )
    else:
        text = STATUS_ACTIVE
    rows.append([InlineKeyboardButton(context._(RESET_LABEL), callback_data="password:reset")])
    await send_step(
        update, context, context._(text).format(name=name), [*rows, *nav_rows(context)], edit=False
    )
    return Password.CHOOSE


async def send_reset_link(update: Update, context: BotContext) -> object:
    """Send the one-time reset link (after a fresh verification)."""
    await answer_button(update, context)
    return await require_verified(update, context, _reset_link)


async def _reset_link(update: Update, context: BotContext, account_id: str) -> object:
    user_id = update.effective_user.id
    try:
        link = await context.backend.password_reset_link(
            account_id, f"reset:{user_id}:{update.update_id}"
        )
    except Frozen:
        await send_step(
            update, context, context._(STATUS_FROZEN).format(name=""), human_rows(context)
        )
        return END
    except Locked as exc:
        return await _locked_refused(update, context, exc)
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    await context.repos.audit.record(user_id, "password.reset_link", account_id)
    keyboard = [
        [InlineKeyboardButton(context._(OPEN_LINK_LABEL), url=link.url)],
        main_menu_row(context),
    ]
    await send_step(update, context, context._(LINK_SENT), keyboard)
    return END


async def unlock(update: Update, context: BotContext) -> object:
    """Unlock the account (after a fresh verification)."""
    await answer_button(update, context)
    return await require_verified(update, context, _unlock)


async def _unlock(update: Update, context: BotContext, account_id: str) -> object:
    user_id = update.effective_user.id
    try:
        await context.backend.unlock(account_id, f"unlock:{user_id}:{update.update_id}")
    except NotEligible:
        await send_step(update, context, context._(NOT_LOCKED), [main_menu_row(context)])
        return END
    except Frozen:
        await send_step(
            update, context, context._(STATUS_FROZEN).format(name=""), human_rows(context)
        )
        return END
    except Locked as exc:
        return await _locked_refused(update, context, exc)
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    await context.repos.audit.record(user_id, "account.unlock", account_id)
    await send_step(update, context, context._(UNLOCKED), [main_menu_row(context)])
    return END


async def _locked_refused(update: Update, context: BotContext, error: Locked) -> object:
    """Answer a 423 with a lock reason: the wallet refuses this while the account is locked."""
    await send_step(update, context, context._(LOCKED_REFUSED), human_rows(context))
    return END


def password_flow() -> GuidedFlow:
    """Build the password reset / unlock flow."""
    return GuidedFlow(
        name="password",
        entry_points=[
            CallbackQueryHandler(password_start, pattern=r"^menu:password$"),
            CommandHandler("password", password_start, filters=f.ChatType.PRIVATE),
        ],
        states={
            **verify_states(show_status, _reset_link, _unlock),
            Password.CHOOSE: [
                CallbackQueryHandler(send_reset_link, pattern=r"^password:reset$"),
                CallbackQueryHandler(unlock, pattern=r"^password:unlock$"),
            ],
        },
    )
