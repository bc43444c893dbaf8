"""Security-notice broadcasts: admins write a notice in 中文 and English, preview it as users
will see it, confirm (a second admin approves when there are two or more), and the bot sends
it to every user in their language at a steady rate through the outbox's broadcast lane,
with live progress, pause / resume / cancel, a final report and a recall. A crash resumes
the broadcast by itself; nobody is skipped.

```mermaid
stateDiagram-v2
    [*] --> audience: /broadcast (admins)
    audience --> text_zh: all / 中文
    audience --> text_en: English
    text_zh --> text_en: all
    text_zh --> link
    text_en --> link
    link --> confirm: previews sent to the admin in each language
    confirm --> approval: two or more admins
    confirm --> running: one admin
    approval --> running: another admin approves
    running --> paused --> running
    running --> done
    running --> cancelled
```
"""

from __future__ import annotations

import contextlib
import logging
from enum import StrEnum

from markupsafe import Markup
from telegram import InlineKeyboardButton, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler
from telegram.ext import filters as f

from tgbot import telegram_html
from tgbot.context import BotContext
from tgbot.i18n import N_, translator
from tgbot.keyboard import Keyboard
from tgbot.links import judge_url, links_in_html, links_in_message, refused
from tgbot.text import escape

from .common import (
    CALLBACK_ID,
    END,
    GuidedFlow,
    expect_numbers,
    main_menu_row,
    nav_rows,
    scratch,
    send_step,
)

_LOGGER = logging.getLogger(__name__)


ASK_AUDIENCE = N_("📣 New security notice. Who should get it?")
AUDIENCE_LABELS = {"all": N_("Everyone"), "zh_Hans": N_("Chinese users"), "en": N_("English users")}
ASK_ZH = N_(
    "Send the <b>Chinese</b> text of the notice. Format it in Telegram, or write HTML tags: {tags}."
)
ASK_EN = N_(
    "Send the <b>English</b> text of the notice. Format it in Telegram, or write HTML tags: {tags}."
)
HTML_REFUSED = N_("Telegram would refuse this text:")
HTML_FIX = N_("Please send the corrected text. Supported tags: {tags}.")
HTML_PROBLEMS = {
    "unknown_tag": N_("• line {line}: Telegram does not support <code>&lt;{tag}&gt;</code>"),
    "bad_attribute": N_(
        "• line {line}: <code>&lt;{tag}&gt;</code> cannot have <code>{detail}</code>"
    ),
    "unclosed": N_("• line {line}: <code>&lt;{tag}&gt;</code> is not closed"),
    "stray_close": N_("• line {line}: <code>&lt;/{tag}&gt;</code> closes nothing"),
    "bad_link": N_(
        "• line {line}: a link must be https:// to an allowed domain ({allowed}): "
        "<code>{detail}</code>"
    ),
    "bad_nesting": N_(
        "• line {line}: <code>&lt;pre&gt;</code> may only hold <code>&lt;code&gt;</code>"
    ),
}
#: The tags an admin may write (Telegram's subset), as shown to them.
TAGS = "<b>, <i>, <u>, <s>, <a href>, <code>, <pre>, <blockquote>, <tg-spoiler>"
ASK_LINK = N_(
    "Optionally send a link (https://…) for a button under the notice, or tap “No link”. "
    "Allowed domains: {allowed}."
)
NO_LINK_LABEL = N_("No link")
LINK_REFUSED = N_("Links may only go to {allowed}. Send another link or tap “No link”.")
TEXT_LINKS_REFUSED = N_(
    "Not accepted: this text links to {links}. Links may only go to {allowed}. "
    "Please send the text again."
)
APPROVAL_LINKS = N_("Every link in it, with its real target (check each one):\n{links}")
APPROVAL_NO_LINKS = N_("It contains no links.")
PREVIEW_HEAD = N_("Preview ({language}) — this is exactly what users will see:")
PREVIEW_FAILED = N_("Telegram refused the {language} text: {error}. Please send it again.")
CONFIRM = N_(
    "Recipients: {total} ({detail}). Estimated duration: about {minutes} min at {rate} "
    "messages a second. Send it?"
)
SEND_LABEL = N_("📣 Send")
PAID_COST = N_(
    "Paid broadcast is on: up to 1000 messages a second, costing about {stars} Telegram Stars."
)
WAITING_APPROVAL = N_("Broadcast #{id} is waiting for another admin to approve it.")
APPROVE_LABEL = N_("✅ Approve")
REJECT_LABEL = N_("❌ Reject")
OWN_APPROVAL = N_("Another admin must approve your own broadcast.")
REJECTED = N_("Broadcast #{id} was rejected by {admin}.")
RECALLED = N_("🗑 Broadcast #{id} is being deleted from users' chats (within 48 hours).")
RECALL_CONFIRM = N_(
    "Delete broadcast #{id} from every user's chat? This cannot be undone; Telegram allows it "
    "within 48 hours of sending."
)
RECALL_YES_LABEL = N_("🗑 Yes, recall it")
RECALL_NO_LABEL = N_("Keep it")
NOT_RECALLED = N_("Broadcast #{id} was not recalled.")
NOTICES_HEAD = N_("Recent security notices from U-Pay:")
NO_NOTICES = N_("There are no security notices right now.")
NOT_ALLOWED = N_("Only admins can do this.")


class Compose(StrEnum):
    """States of the /broadcast conversation."""

    AUDIENCE = "broadcast:audience"
    TEXT_ZH = "broadcast:text_zh"
    TEXT_EN = "broadcast:text_en"
    LINK = "broadcast:link"
    CONFIRM = "broadcast:confirm"


def is_admin(context: BotContext, user_id: int | None) -> bool:
    """Return True for a configured admin (checked on every call)."""
    return user_id is not None and user_id in context.config.admin_ids


def notice_links(text_zh: str | None, text_en: str | None, button: str | None) -> list[str]:
    """Return every link of a notice: text links and written links of both texts (HTML),
    then the button's URL, each once."""
    found = [*links_in_html(text_zh or ""), *links_in_html(text_en or "")]
    return list(dict.fromkeys([*found, *([button] if button else [])]))


def refused_notice_links(context: BotContext, links: list[str]) -> list[str]:
    """Return what to tell the admin about each of ``links`` that may not be sent."""
    verdicts = refused(links, context.config.link_allowlist, context.bot.username)
    return list(dict.fromkeys(verdict.shown for verdict in verdicts))


# ---------------------------------------------------------------------- the /broadcast flow


async def compose_start(update: Update, context: BotContext) -> object:
    """Ask the admin for the audience (anyone else: as an unknown command)."""
    scratch(context).clear()
    rows = [
        [InlineKeyboardButton(context._(label), callback_data=f"bc:aud:{key}")]
        for key, label in AUDIENCE_LABELS.items()
    ]
    await send_step(update, context, context._(ASK_AUDIENCE), [*rows, *nav_rows(context)])
    return Compose.AUDIENCE


async def audience_chosen(update: Update, context: BotContext) -> object:
    """Store the audience; ask for the first text it needs."""
    query = update.callback_query
    key = query.data.split(":")[2]
    await query.answer()
    if key not in AUDIENCE_LABELS or not is_admin(context, query.from_user.id):
        return END
    scratch(context)["audience"] = key
    # The admin types a notice: its words are content (a "password" or a number in it is
    # not the admin's own secret), and the step's input wins over keyword detection.
    expect_numbers(context, "notice")
    tags = escape(TAGS)
    if key in ("all", "zh_Hans"):
        await send_step(update, context, context._(ASK_ZH).format(tags=tags), nav_rows(context))
        return Compose.TEXT_ZH
    await send_step(update, context, context._(ASK_EN).format(tags=tags), nav_rows(context))
    return Compose.TEXT_EN


async def _text_refused(update: Update, context: BotContext) -> bool:
    """Refuse a notice text that links outside the allow-list (its text links, typed links,
    mentions: what Telegram marked in it, and its HTML); True if refused."""
    message = update.message
    links = links_in_message(message) + links_in_html(message.text_html)
    shown = refused_notice_links(context, links)
    if not shown:
        return False
    await message.reply_text(
        context._(TEXT_LINKS_REFUSED).format(
            links=", ".join(shown), allowed=", ".join(context.config.link_allowlist)
        )
    )
    return True


async def notice_html(update: Update, context: BotContext) -> str | None:
    """Return the admin's text as Telegram HTML: the HTML tags they typed (checked against
    Telegram's subset and kept), else the formatting they set in Telegram. None (and why,
    to the admin) if Telegram would refuse it."""
    message = update.message
    if not telegram_html.has_markup(message.text):
        return message.text_html  # formatting set in the app; literal text escaped
    checked = telegram_html.check(message.text, context.config.link_allowlist)
    if checked.ok:
        return checked.html
    allowed = escape(", ".join(context.config.link_allowlist))
    lines = [context._(HTML_REFUSED)]
    lines += [
        context._(HTML_PROBLEMS[p.kind]).format(
            line=p.line, tag=escape(p.tag), detail=escape(p.detail), allowed=allowed
        )
        for p in checked.problems[:10]
    ]
    lines.append(context._(HTML_FIX).format(tags=escape(TAGS)))
    # Joined, not formatted into a template: each line is already HTML.
    await message.reply_text("\n".join(lines))
    return None


async def text_zh(update: Update, context: BotContext) -> object:
    """Store the Chinese text (as the admin formatted it); ask for English if needed."""
    if await _text_refused(update, context):
        return None
    text = await notice_html(update, context)
    if text is None:
        return None
    scratch(context)["zh"] = text
    if scratch(context)["audience"] == "all":
        tags = escape(TAGS)
        await send_step(update, context, context._(ASK_EN).format(tags=tags), nav_rows(context))
        return Compose.TEXT_EN
    return await ask_link(update, context)


async def text_en(update: Update, context: BotContext) -> object:
    """Store the English text; ask for a link."""
    if await _text_refused(update, context):
        return None
    text = await notice_html(update, context)
    if text is None:
        return None
    scratch(context)["en"] = text
    return await ask_link(update, context)


async def ask_link(update: Update, context: BotContext) -> object:
    """Ask for an optional link button."""
    expect_numbers(context, None)
    rows = [[InlineKeyboardButton(context._(NO_LINK_LABEL), callback_data="bc:nolink")]]
    allowed = ", ".join(context.config.link_allowlist)
    await send_step(
        update, context, context._(ASK_LINK).format(allowed=allowed), [*rows, *nav_rows(context)]
    )
    return Compose.LINK


async def link_typed(update: Update, context: BotContext) -> object:
    """Accept only https links to allow-listed domains."""
    url = update.message.text.strip()
    if not judge_url(url, context.config.link_allowlist, context.bot.username).allowed:
        allowed = ", ".join(context.config.link_allowlist)
        await update.message.reply_text(context._(LINK_REFUSED).format(allowed=allowed))
        return None
    scratch(context)["link"] = url
    return await preview(update, context)


async def no_link(update: Update, context: BotContext) -> object:
    """Go on without a link."""
    await update.callback_query.answer()
    scratch(context)["link"] = None
    return await preview(update, context)


async def preview(update: Update, context: BotContext) -> object:
    """Send the notice to the admin in each language (Telegram checks it), then confirm."""
    data = scratch(context)
    chat_id = update.effective_chat.id
    for language, key, state in (("zh_Hans", "zh", Compose.TEXT_ZH), ("en", "en", Compose.TEXT_EN)):
        text = data.get(key)
        if not text:
            continue
        name = "中文" if language == "zh_Hans" else "English"
        markup = None
        if data.get("link"):
            label = translator(language).gettext(N_("🔗 Read more"))
            markup = Keyboard([[InlineKeyboardButton(label, url=data["link"])]])
        try:
            await context.bot.send_message(chat_id, context._(PREVIEW_HEAD).format(language=name))
            await context.bot.send_message(chat_id, text, reply_markup=markup)
        except BadRequest as exc:
            await context.bot.send_message(
                chat_id, context._(PREVIEW_FAILED).format(language=name, error=exc.message)
            )
            return state
    counts = await context.repos.broadcasts.audience_counts(
        data["audience"], context.config.default_language
    )
    total = sum(counts.values())
    detail = ", ".join(
        f"{'中文' if k == 'zh_Hans' else 'English'} {v}" for k, v in sorted(counts.items())
    )
    minutes = max(1, round(total / context.config.broadcast_rate / 60))
    rows = [[InlineKeyboardButton(context._(SEND_LABEL), callback_data="bc:send")]]
    paid = ""
    if context.config.paid_broadcast:
        # Telegram charges 0.1 Star per message sent above the free rate.
        paid = "\n" + context._(PAID_COST).format(stars=context.tr.number(-(-total // 10)))
    text = context._(CONFIRM).format(
        total=total,
        detail=detail or "0",
        minutes=minutes,
        rate=context.tr.number(context.config.broadcast_rate),
    )
    # Below the previews, not in place of the step above them.
    await send_step(update, context, text + paid, [*rows, *nav_rows(context)], edit=False)
    return Compose.CONFIRM


async def send_confirmed(update: Update, context: BotContext) -> object:
    """Start the broadcast, or ask the other admins to approve it."""
    query = update.callback_query
    await query.answer()
    admin_id = query.from_user.id
    if not is_admin(context, admin_id):
        return END
    data = scratch(context)
    links = notice_links(data.get("zh"), data.get("en"), data.get("link"))
    if refused_notice_links(context, links):  # checked as typed; again before it exists
        await send_step(update, context, context._(NOT_ALLOWED), [main_menu_row(context)])
        return END
    two_man = len(context.config.admin_ids) >= 2
    broadcast_id = await context.repos.broadcasts.create(
        admin_id,
        data["audience"],
        data.get("zh"),
        data.get("en"),
        data.get("link"),
        status="awaiting_approval" if two_man else "draft",
    )
    await context.repos.audit.record(
        admin_id,
        "broadcast.create",
        broadcast_id,
        {"audience": data["audience"], "link": data.get("link")},
    )
    progress = await context.bot.send_message(update.effective_chat.id, "📣 …")
    await context.repos.broadcasts.set_progress_message(
        broadcast_id, progress.chat_id, progress.message_id
    )
    if two_man:
        await send_step(
            update,
            context,
            context._(WAITING_APPROVAL).format(id=broadcast_id),
            [main_menu_row(context)],
        )
        await _ask_approval(context, broadcast_id, admin_id, update.effective_user.full_name)
    else:
        await context.app.broadcaster.start_broadcast(broadcast_id, None)
    await context.app.broadcaster.report(broadcast_id, force=True)
    return END


async def _ask_approval(context: BotContext, broadcast_id: int, creator: int, name: str) -> None:
    broadcast = await context.repos.broadcasts.get(broadcast_id)
    counts = await context.repos.broadcasts.audience_counts(
        broadcast.audience, context.config.default_language
    )
    tr = translator(context.config.default_language)
    markup = Keyboard(
        [
            [
                InlineKeyboardButton(
                    tr.gettext(APPROVE_LABEL), callback_data=f"bc:approve:{broadcast_id}"
                ),
                InlineKeyboardButton(
                    tr.gettext(REJECT_LABEL), callback_data=f"bc:reject:{broadcast_id}"
                ),
            ]
        ]
    )
    total = sum(counts.values())
    links = notice_links(broadcast.text_zh, broadcast.text_en, broadcast.link_url)
    link_text = (
        tr.gettext(APPROVAL_LINKS).format(
            links=Markup("\n").join(Markup("• <code>{}</code>").format(link) for link in links)
        )
        if links
        else tr.gettext(APPROVAL_NO_LINKS)
    )
    for admin_id in sorted(context.config.admin_ids - {creator}):
        try:
            await context.bot.send_message(
                admin_id,
                tr.ngettext(
                    "📣 {admin} wants to send broadcast #{id} to {total} user. The notice "
                    "follows. Approve it?",
                    "📣 {admin} wants to send broadcast #{id} to {total} users. The notice "
                    "follows. Approve it?",
                    total,
                ).format(admin=escape(name), id=broadcast_id, total=total)
                + "\n\n"
                + link_text,
            )
            for text in (broadcast.text_zh, broadcast.text_en):
                if text:
                    await context.bot.send_message(admin_id, text)
            await context.bot.send_message(admin_id, f"#{broadcast_id}", reply_markup=markup)
        except TelegramError as exc:
            _LOGGER.warning("Could not ask admin %s to approve: %s", admin_id, exc)


async def broadcast_button(update: Update, context: BotContext) -> object:
    """Approve / reject / pause / resume / cancel / recall: admins only, checked each press."""
    query = update.callback_query
    if not is_admin(context, query.from_user.id):
        await query.answer(context._(NOT_ALLOWED), show_alert=True)
        return None
    _, action, raw_id = query.data.split(":")
    broadcast_id = int(raw_id)
    broadcast = await context.repos.broadcasts.get(broadcast_id)
    if broadcast is None:
        await query.answer()
        return None
    admin_id = query.from_user.id
    caster = context.app.broadcaster
    if action == "approve":
        if admin_id == broadcast.created_by:
            await query.answer(context._(OWN_APPROVAL), show_alert=True)
            return None
        await query.answer()
        if await caster.start_broadcast(broadcast_id, admin_id) is not None:
            await context.repos.audit.record(admin_id, "broadcast.approve", broadcast_id)
            await query.edit_message_reply_markup(None)
    elif action == "reject":
        await query.answer()
        if await context.repos.broadcasts.set_status(
            broadcast_id, "rejected", expect=("awaiting_approval",)
        ):
            await context.repos.audit.record(admin_id, "broadcast.reject", broadcast_id)
            await query.edit_message_reply_markup(None)
            await context.bot.send_message(
                broadcast.created_by,
                context._(REJECTED).format(id=broadcast_id, admin=update.effective_user.full_name),
            )
    else:
        await query.answer()
        handler = {"pause": caster.pause, "resume": caster.resume, "cancel": caster.cancel}.get(
            action
        )
        if handler is not None:
            if await handler(broadcast_id):
                await context.repos.audit.record(admin_id, f"broadcast.{action}", broadcast_id)
        elif action == "recall":
            # Deleting a notice from every chat cannot be undone: confirm first.
            keyboard = Keyboard(
                [
                    [
                        InlineKeyboardButton(
                            context._(RECALL_YES_LABEL), callback_data=f"bc:recallok:{broadcast_id}"
                        ),
                        InlineKeyboardButton(
                            context._(RECALL_NO_LABEL), callback_data=f"bc:keep:{broadcast_id}"
                        ),
                    ]
                ]
            )
            await context.bot.send_message(
                update.effective_chat.id,
                context._(RECALL_CONFIRM).format(id=broadcast_id),
                reply_markup=keyboard,
            )
        elif action == "recallok":
            count = await caster.recall(broadcast_id)
            await context.repos.audit.record(
                admin_id, "broadcast.recall", broadcast_id, {"messages": count}
            )
            with contextlib.suppress(BadRequest):
                await query.edit_message_text(context._(RECALLED).format(id=broadcast_id))
        elif action == "keep":
            with contextlib.suppress(BadRequest):
                await query.edit_message_text(context._(NOT_RECALLED).format(id=broadcast_id))
    await caster.report(broadcast_id, force=True)
    return None


async def notices(update: Update, context: BotContext) -> None:
    """``/notices``: recent security notices in the user's language."""
    items = await context.repos.broadcasts.sent_notices()
    if not items:
        await update.effective_message.reply_text(
            context._(NO_NOTICES), reply_markup=Keyboard([main_menu_row(context)])
        )
        return
    await update.effective_message.reply_text(context._(NOTICES_HEAD))
    for item in items[:3]:
        text = item.text_zh if context.lang == "zh_Hans" else item.text_en
        await update.effective_message.reply_text(text or item.text_en or item.text_zh or "")


def broadcast_flow() -> GuidedFlow:
    """Build the /broadcast conversation (admins only)."""
    text = f.TEXT & ~f.COMMAND
    return GuidedFlow(
        name="broadcast",
        entry_points=[CommandHandler("broadcast", compose_start, filters=f.ChatType.PRIVATE)],
        allowed=lambda update, context: is_admin(context, update.effective_user.id),
        states={
            Compose.AUDIENCE: [
                CallbackQueryHandler(audience_chosen, pattern=r"^bc:aud:[a-zA-Z_]{1,10}$")
            ],
            Compose.TEXT_ZH: [MessageHandler(text, text_zh)],
            Compose.TEXT_EN: [MessageHandler(text, text_en)],
            Compose.LINK: [
                CallbackQueryHandler(no_link, pattern=r"^bc:nolink$"),
                MessageHandler(text, link_typed),
            ],
            Compose.CONFIRM: [CallbackQueryHandler(send_confirmed, pattern=r"^bc:send$")],
        },
        owns=("bc",),
        escalate=False,
    )


def command_handlers() -> list:
    """Return the broadcast control buttons and /notices."""
    return [
        CallbackQueryHandler(
            broadcast_button,
            pattern=rf"^bc:(approve|reject|pause|resume|cancel|recall|recallok|keep):{CALLBACK_ID}$",
        ),
        CommandHandler("notices", notices, filters=f.ChatType.PRIVATE),
    ]
