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

import time
from datetime import UTC, datetime
from enum import StrEnum

from telegram import InlineKeyboardButton, Update
from telegram.ext import CallbackQueryHandler, CommandHandler
from telegram.ext import filters as f

from services.wording import add_menu_entry, translator_for
from storage.repos.audit import AuditEntry
from tgbot.backend.base import Account, Frozen, Locked, NotEligible, NotFound, Unavailable
from tgbot.context import BotContext
from tgbot.i18n import N_
from tgbot.keyboard import Keyboard
from tgbot.lanes import Lane
from tgbot.text import escape

from .common import END, GuidedFlow, answer_button, human_button, main_menu_row, nav_rows, send_step
from .verify import account_gone, human_rows, require_verified, verify_states, wallet_down

LABEL = N_("🔑 Password / unlock")
DESCRIPTION = N_("reset a forgotten password or unlock your account")
STATUS_ACTIVE = N_(
    "Your account {name} is active. If you forgot your password, I can send you a one-time "
    "link to set a new one on U-Pay's own page."
)
STATUS_LOCKED = N_(
    "Your account {name} is locked because the password was entered wrongly too many times. "
    "You can unlock it now, or set a new password."
)
STATUS_FROZEN = N_(
    "Your account {name} is frozen for your protection. Only a support agent can unfreeze it."
)
FROZEN_NO_NAME = N_(
    "Your account is frozen for your protection. Only a support agent can unfreeze it."
)
RESET_LABEL = N_("🔗 Send me a reset link")
UNLOCK_LABEL = N_("🔓 Unlock my account")
OPEN_LINK_LABEL = N_("🔗 Open the reset page")
LINK_SENT = N_(
    "Here is your one-time link to set a new password. {validity} I will tell you here once "
    "the password has been changed.\n"
    "⚠️ Never share this link. U-Pay staff never ask for it, for your password or for a code, "
    "by any means."
)
UNLOCKED = N_(
    "🔓 Your account is unlocked. You can sign in again with your password. Forgot it? I "
    "can send you a link to set a new one."
)
NOT_LOCKED = N_("Your account is not locked, so there is nothing to unlock.")
LOCKED_REFUSED = N_(
    "U-Pay does not allow this while your account is locked. A human agent can help you."
)
PASSWORD_CHANGED = N_(
    "🔐 Security notice: the password of your U-Pay account {name} was changed at {time}.\n"
    "If this was not you, freeze your account now and talk to a human."
)
FREEZE_LABEL = N_("🧊 Freeze my account")

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
    name = escape(account.display_name)
    if account.status == "frozen":
        await send_step(
            update, context, context._(STATUS_FROZEN).format(name=name), human_rows(context)
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
    await send_step(update, context, context._(text).format(name=name), [*rows, *nav_rows(context)])
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
        await send_step(update, context, context._(FROZEN_NO_NAME), human_rows(context))
        return END
    except Locked as exc:
        return await _locked_refused(update, context, exc)
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    # Stored before the user can act on the link: the watch below reads it from the database,
    # so a restart, or with several workers another worker, still sends the notice.
    await context.repos.audit.record(
        user_id, "password.reset_link", account_id, {"until": link.expires_at.timestamp()}
    )
    keyboard = [
        [InlineKeyboardButton(context._(OPEN_LINK_LABEL), url=link.url)],
        main_menu_row(context),
    ]
    until = context.tr.time_with_zone(link.expires_at, context.config.zone)
    minutes = max(1, round((link.expires_at - datetime.now(UTC)).total_seconds() / 60))
    validity = context.ngettext(
        "It works once, for {minutes} minute (until {time}).",
        "It works once, for {minutes} minutes (until {time}).",
        minutes,
    ).format(minutes=context.tr.number(minutes), time=until)
    await send_step(update, context, context._(LINK_SENT).format(validity=validity), keyboard)
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
        await send_step(update, context, context._(FROZEN_NO_NAME), human_rows(context))
        return END
    except Locked as exc:
        return await _locked_refused(update, context, exc)
    except NotFound:
        return await account_gone(update, context)
    except Unavailable as exc:
        await wallet_down(update, context, exc)
        return None
    await context.repos.audit.record(user_id, "account.unlock", account_id)
    # Unlocked, but the password is probably still forgotten: the reset is one tap away.
    keyboard = [
        [InlineKeyboardButton(context._(RESET_LABEL), callback_data="password:reset")],
        main_menu_row(context),
    ]
    await send_step(update, context, context._(UNLOCKED), keyboard)
    return Password.CHOOSE


async def _locked_refused(update: Update, context: BotContext, error: Locked) -> object:
    """Answer a 423 with a lock reason: the wallet refuses this while the account is locked."""
    await send_step(update, context, context._(LOCKED_REFUSED), human_rows(context))
    return END


#: After sending a reset link the bot looks at the account every this many seconds, while the
#: link is valid, to tell the user once the password was changed.
PASSWORD_POLL_SECONDS = 3.0
#: ... and for this long after the link expired (a reset finished at the last moment).
PASSWORD_WATCH_GRACE = 60.0
#: Links older than this are not looked at, whatever their validity says.
PASSWORD_WATCH_MAX = 3600.0


async def watch_passwords(context: BotContext) -> None:
    """Job (the duties' holder): for every reset link sent and still valid, with no notice
    yet, look at the account; once the wallet shows a password change after the link was
    sent, send the user the security notice (once), with a way to freeze the account if it
    was not them.

    The links come from the audit log (written before the link was sent), so a restart or a
    dead worker loses no watch; an erased user's entries name nobody and are skipped.
    """
    app = context.application
    now = time.time()
    entries = await app.repos.audit.since(
        ("password.reset_link", "password.changed"), now - PASSWORD_WATCH_MAX
    )
    pending: dict[tuple[int, str], AuditEntry] = {}
    for entry in entries:  # oldest first: a notice ends the links sent before it
        if entry.actor_id is None or entry.actor_id <= 0 or entry.target is None:
            continue
        if entry.action == "password.reset_link":
            pending[(entry.actor_id, entry.target)] = entry
        else:
            pending.pop((entry.actor_id, entry.target), None)
    for (user_id, account_id), link in pending.items():
        until = float(link.details.get("until", link.at + PASSWORD_WATCH_MAX))
        if now > until + PASSWORD_WATCH_GRACE or await app.privacy.gate_language(user_id):
            continue  # expired; or being erased (the gate's own test, any worker's erasure)
        try:
            account = await app.backend.get_account(account_id)
        except (Unavailable, NotFound):
            continue  # looked at again next time
        changed = account.password_changed_at
        if changed is None or changed.timestamp() < link.at:
            continue
        await _notify_password_changed(context, user_id, account_id, account, changed)


async def _notify_password_changed(
    context: BotContext, user_id: int, account_id: str, account: Account, changed: datetime
) -> None:
    app = context.application
    context.tr = await translator_for(context, user_id)
    text = context._(PASSWORD_CHANGED).format(
        name=escape(account.display_name),
        time=context.tr.time_with_zone(changed, app.config.zone),
    )
    markup = Keyboard(
        [
            [InlineKeyboardButton(context._(FREEZE_LABEL), callback_data="menu:freeze")],
            [human_button(context)],
        ]
    )
    # Queued (once, by its key) before the watch ends: a crash between the two sends the
    # notice and looks again, never the other way round.
    await app.outbox.enqueue(
        user_id,  # the user's private chat
        "sendMessage",
        {"text": text, "reply_markup": markup.to_dict()},
        lane=Lane.NOTIFY,
        kind="password_changed",
        dedupe_key=f"password-changed:{account_id}:{int(changed.timestamp())}",
    )
    await app.repos.audit.record(user_id, "password.changed", account_id)


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
        menu="menu:password",
        owns=("password",),
    )
