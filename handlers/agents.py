"""The agents' side: replies in ticket topics reach the user, plus stateless commands and
buttons (claim, close, transfer, notes, macros, transcripts) and the roster admins manage.

Agents reply inside a ticket's topic as if chatting with the user; the user sees the bot,
never the agent. Only roster agents can act or be relayed; every action is checked on every
call and written to the audit log.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import datetime

from markupsafe import Markup
from telegram import InlineKeyboardButton, InputFile, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    TypeHandler,
)
from telegram.ext import filters as f

from services.desk import group_translator
from storage import Ticket
from tgbot import facts
from tgbot.context import BotContext
from tgbot.i18n import N_, translator
from tgbot.keyboard import Keyboard
from tgbot.links import links_in_message, refused
from tgbot.text import escape, plain

from .common import CALLBACK_ID, CONTINUE, STALE_TEXT
from .handoff import _kind, relay_from_user

_LOGGER = logging.getLogger(__name__)

NOT_ROSTER = N_("Only support agents can do this.")
ALREADY_CLAIMED = N_("Already claimed by {agent}.")
CLAIMED_OK = N_("Claimed.")
CLOSED_OK = N_("Closed.")
ALREADY_CLOSED = N_("This ticket is already closed.")
NOT_A_TICKET = N_("Use this inside a ticket's topic.")
NOTE_SAVED = N_("📝 Note saved (never shown to the user).")
NOTE_USAGE = N_("Usage: /note your text")
LINK_REFUSED = N_("⛔ Not sent: links to {domains} are not allowed. Allowed domains: {allowed}.")
MACRO_SENT = N_("📋 Macro “{name}” sent to the user:\n{text}")
MACRO_LIST = N_("Macros: {names}. Usage: /macro NAME")
TRANSFER_PICK = N_("Transfer this ticket to:")
TRANSFERRED = N_("↪️ {from_agent} transferred this ticket to {to_agent}.")
NO_OTHER_AGENTS = N_("There is no other agent on the roster.")
TRANSCRIPT_CAPTION = N_("Transcript of ticket {code}")
EDIT_NOT_MAPPED = N_("This edit could not be passed on: the user's copy is not known yet.")
ROSTER_ADDED = N_("{name} (ID {user_id}) is now a support agent.")
ROSTER_REMOVED = N_("{user_id} is no longer a support agent.")
ROSTER_UNKNOWN = N_("{user_id} is not on the roster.")
ROSTER_LIST = N_("Support agents:\n{agents}")
ROSTER_EMPTY = N_("No support agents yet. Add one with /agent_add USER_ID NAME.")
ROSTER_USAGE = N_("Usage: /agent_add USER_ID NAME, /agent_remove USER_ID, /agents")

#: Canned replies agents send with /macro NAME, in the user's language.
MACROS: dict[str, str] = {
    "hello": N_("Hello, I am a U-Pay support agent. I am looking into your request now."),
    "wait": N_("Thank you for waiting. I am still checking this and will reply here shortly."),
    "reset": N_(
        "To reset your password, send /password here: after a quick check you get a one-time "
        "link to U-Pay's own page. U-Pay staff never ask for your password or a verification "
        "code, by any means."
    ),
    "refund": N_(
        "About your refund: {refund_review} {refund_arrival} You get a message in this chat "
        "at each step."
    ),
    "bye": N_("Is there anything else I can help you with? If not, I will close this chat."),
}

#: Commands agents use in a ticket's topic; any other command there does nothing.
AGENT_COMMANDS = ("claim", "close", "note", "macro", "transcript", "transfer")
#: Ticket buttons, the only buttons that work in the agents' groups (for roster agents).
TICKET_BUTTON = rf"^tk:(claim|close|xfer):{CALLBACK_ID}$|^tk:to:{CALLBACK_ID}:{CALLBACK_ID}$"


def refused_links(message: Message, context: BotContext) -> list[str]:
    """Return what to tell an agent about each link of ``message`` that may not reach a
    user (its real host, or the link), in order; empty if every link is allowed."""
    verdicts = refused(
        links_in_message(message), context.config.link_allowlist, context.bot.username
    )
    return list(dict.fromkeys(verdict.shown for verdict in verdicts))


async def refuse_links(
    message: Message, context: BotContext, agent_id: int, ticket: Ticket, *, edit: bool
) -> bool:
    """Tell the agent and audit it if ``message`` links outside the allow-list; True if so.

    New messages and edits go through this same check (an edit never changes the user's
    copy into a phishing link)."""
    shown = refused_links(message, context)
    if not shown:
        return False
    await message.reply_text(
        context._(LINK_REFUSED).format(
            domains=escape(", ".join(shown)),
            allowed=escape(", ".join(context.config.link_allowlist)),
        )
    )
    await context.repos.audit.record(
        agent_id, "relay.link_refused", ticket.id, {"links": shown, "edit": edit}
    )
    return True


async def _agent_or_none(update: Update, context: BotContext):
    user = update.effective_user
    if user is None:
        return None
    agent = await context.repos.agents.get(user.id)
    if agent is None:
        return None
    await context.repos.agents.touch(user.id)
    return agent


async def _topic_ticket(update: Update, context: BotContext) -> Ticket | None:
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None or not message.is_topic_message:
        return None
    return await context.repos.tickets.by_topic(chat.id, message.message_thread_id)


def _in_agent_group(update: Update, context: BotContext) -> bool:
    chat = update.effective_chat
    return chat is not None and context.app.desk.is_agent_group(chat.id)


async def agent_group_update(update: Update, context: BotContext) -> None:
    """Relay an agent's message in a ticket topic to the user; ignore everyone else."""
    if not _in_agent_group(update, context):
        return
    context.tr = group_translator(context.config, update.effective_chat.id)
    query = update.callback_query
    if query is not None:
        if re.match(TICKET_BUTTON, query.data or ""):
            return  # ticket buttons check the roster themselves (ticket_button)
        # A user's button (the menu, a ticket, a language...) does nothing here, for anyone.
        agent = await context.repos.agents.get(query.from_user.id)
        await query.answer(context._(STALE_TEXT if agent else NOT_ROSTER))
        raise ApplicationHandlerStop
    message = update.effective_message
    if message is None:
        return  # membership changes and the like: no user flow sees them (private only)
    migrated = message.migrate_to_chat_id
    if migrated:
        await context.repos.tickets.record_group_move(message.chat_id, migrated)
        raise ApplicationHandlerStop
    user = update.effective_user
    if user is None or user.is_bot or message.forum_topic_created or message.new_chat_members:
        raise ApplicationHandlerStop
    agent = await _agent_or_none(update, context)
    if agent is None:
        await context.app.desk.report_non_agent(message.chat_id, user.id, escape(user.full_name))
        raise ApplicationHandlerStop
    command = (message.text or "").split(maxsplit=1)[0].split("@")[0] if message.text else ""
    if command.startswith("/"):
        if update.message is not None and command[1:] in AGENT_COMMANDS:
            return  # agent commands are handled by the command handlers that follow
        raise ApplicationHandlerStop  # user commands (/start, /human...) do nothing here
    ticket = await _topic_ticket(update, context)
    if ticket is None or not ticket.is_open:
        raise ApplicationHandlerStop
    edit = update.edited_message is not None
    if await refuse_links(message, context, agent.user_id, ticket, edit=edit):
        raise ApplicationHandlerStop
    if edit:
        caption = message.caption is not None
        html = message.caption_html if caption else message.text_html
        if not await context.app.desk.edit_out(
            ticket, message.message_id, message.caption or message.text or "", caption, html
        ):
            await message.reply_text(context._(EDIT_NOT_MAPPED))
        raise ApplicationHandlerStop
    if ticket.status == "open":
        await context.app.desk.claim(ticket, agent.user_id, agent.name)
    await context.app.desk.relay_out(ticket, message, agent.user_id, _kind(message))
    raise ApplicationHandlerStop


async def _agent_ticket_command(update: Update, context: BotContext):
    """Return (agent, ticket) for an agent command in a ticket topic, or answer why not."""
    if not _in_agent_group(update, context):
        return None, None
    context.tr = group_translator(context.config, update.effective_chat.id)
    agent = await _agent_or_none(update, context)
    if agent is None:
        return None, None  # non-agents get nothing, as for any unknown command
    ticket = await _topic_ticket(update, context)
    if ticket is None:
        await update.effective_message.reply_text(context._(NOT_A_TICKET))
        return agent, None
    return agent, ticket


async def claim_command(update: Update, context: BotContext) -> None:
    """/claim: take the ticket of this topic."""
    agent, ticket = await _agent_ticket_command(update, context)
    if ticket is None:
        return
    if not await context.app.desk.claim(ticket, agent.user_id, agent.name):
        await update.effective_message.reply_text(await _claimed_by_text(context, ticket))


async def _claimed_by_text(context: BotContext, ticket: Ticket, *, html: bool = True) -> str:
    """Return who holds the ticket now (HTML for a message, plain for a button's answer)."""
    fresh = await context.repos.tickets.get(ticket.id)
    if fresh is None or not fresh.is_open:
        return context._(ALREADY_CLOSED)
    holder = await context.repos.agents.get(fresh.claimed_by or 0)
    name = holder.name if holder else "?"
    if html:
        return context._(ALREADY_CLAIMED).format(agent=name)
    return plain(context._(ALREADY_CLAIMED), agent=name)


async def close_command(update: Update, context: BotContext) -> None:
    """/close: close the ticket of this topic (the user is asked for a rating)."""
    agent, ticket = await _agent_ticket_command(update, context)
    if ticket is None:
        return
    if not await context.app.desk.close(ticket, agent.user_id, by_user=False, who=agent.name):
        await update.effective_message.reply_text(context._(ALREADY_CLOSED))


async def note_command(update: Update, context: BotContext) -> None:
    """/note TEXT: an internal note, kept in the transcript, never relayed."""
    agent, ticket = await _agent_ticket_command(update, context)
    if ticket is None:
        return
    text = " ".join(context.args or [])
    if not text:
        await update.effective_message.reply_text(context._(NOTE_USAGE))
        return
    await context.repos.tickets.add_message(
        ticket.id,
        "note",
        "text",
        sender_id=agent.user_id,
        text=text,
        group_message_id=update.effective_message.message_id,
    )
    await update.effective_message.reply_text(context._(NOTE_SAVED))


async def macro_command(update: Update, context: BotContext) -> None:
    """/macro NAME: send a canned reply in the user's language."""
    agent, ticket = await _agent_ticket_command(update, context)
    if ticket is None:
        return
    name = (context.args or [""])[0].lower()
    if name not in MACROS:
        await update.effective_message.reply_text(
            context._(MACRO_LIST).format(names=", ".join(sorted(MACROS)))
        )
        return
    tr = translator(ticket.language)
    text = tr.gettext(MACROS[name]).format(**facts.values(tr))
    if ticket.status == "open":
        await context.app.desk.claim(ticket, agent.user_id, agent.name)
    await context.app.desk.send_out_text(ticket, escape(text), agent.user_id)
    await update.effective_message.reply_text(
        context._(MACRO_SENT).format(name=name, text=escape(text))
    )


async def transcript_command(update: Update, context: BotContext) -> None:
    """/transcript: the ticket's conversation as a text file in the topic."""
    _, ticket = await _agent_ticket_command(update, context)
    if ticket is None:
        return
    lines = []
    zone = context.config.zone
    for line in await context.repos.tickets.transcript(ticket.id):
        when = datetime.fromtimestamp(line.created_at, zone).strftime("%Y-%m-%d %H:%M:%S")
        who = {"in": "user", "out": f"agent {line.sender_id}", "note": f"note {line.sender_id}"}
        lines.append(
            f"[{when}] {who.get(line.direction, line.direction)}: "
            f"{line.text or '(' + line.kind + ')'}"
        )
    data = ("\n".join(lines) or "(empty)").encode()
    await update.effective_message.reply_document(
        InputFile(io.BytesIO(data), filename=f"ticket-{ticket.code}.txt"),
        caption=context._(TRANSCRIPT_CAPTION).format(code=ticket.code),
    )


async def _transfer_buttons(update: Update, context: BotContext, ticket: Ticket, me: int):
    others = [a for a in await context.repos.agents.all() if a.user_id != me]
    if not others:
        await update.effective_message.reply_text(context._(NO_OTHER_AGENTS))
        return
    rows = [
        [InlineKeyboardButton(a.name, callback_data=f"tk:to:{ticket.id}:{a.user_id}")]
        for a in others[:20]
    ]
    await update.effective_message.reply_text(context._(TRANSFER_PICK), reply_markup=Keyboard(rows))


async def transfer_command(update: Update, context: BotContext) -> None:
    """/transfer [AGENT_ID]: hand the ticket to another agent (buttons without an id)."""
    agent, ticket = await _agent_ticket_command(update, context)
    if ticket is None:
        return
    if context.args and context.args[0].isdigit():
        await _transfer(update, context, ticket, agent, int(context.args[0]))
    else:
        await _transfer_buttons(update, context, ticket, agent.user_id)


async def _transfer(update, context: BotContext, ticket: Ticket, agent, target_id: int) -> None:
    target = await context.repos.agents.get(target_id)
    if target is None:
        await update.effective_message.reply_text(
            context._(ROSTER_UNKNOWN).format(user_id=target_id)
        )
        return
    if not await context.repos.tickets.transfer(ticket.id, target.user_id):
        await update.effective_message.reply_text(context._(ALREADY_CLOSED))  # closed meanwhile
        return
    await context.repos.audit.record(
        agent.user_id, "ticket.transfer", ticket.id, {"to": target.user_id}
    )
    await context.app.desk.post_in_topic(
        ticket,
        context._(TRANSFERRED).format(from_agent=escape(agent.name), to_agent=escape(target.name)),
    )
    await context.app.desk.refresh_header(ticket.id)


async def ticket_button(update: Update, context: BotContext) -> None:
    """Claim / Close / Transfer buttons: checked against the roster on every press."""
    query = update.callback_query
    context.tr = group_translator(context.config, update.effective_chat.id)
    if not _in_agent_group(update, context):
        await query.answer()
        return
    agent = await _agent_or_none(update, context)
    if agent is None:
        await query.answer(context._(NOT_ROSTER), show_alert=True)
        return
    parts = query.data.split(":")
    action, ticket_id = parts[1], int(parts[2])  # bounded by TICKET_BUTTON: fits SQLite
    ticket = await context.repos.tickets.get(ticket_id)
    chat = update.effective_chat
    if ticket is None or ticket.group_chat_id != chat.id:
        await query.answer(context._(NOT_A_TICKET))
        return
    if action == "claim":
        if await context.app.desk.claim(ticket, agent.user_id, agent.name):
            await query.answer(context._(CLAIMED_OK))
        else:
            await query.answer(await _claimed_by_text(context, ticket, html=False), show_alert=True)
    elif action == "close":
        ok = await context.app.desk.close(ticket, agent.user_id, by_user=False, who=agent.name)
        await query.answer(context._(CLOSED_OK if ok else ALREADY_CLOSED))
    elif action == "xfer":
        await query.answer()
        await _transfer_buttons(update, context, ticket, agent.user_id)
    elif action == "to" and len(parts) == 4:
        await query.answer()
        await _transfer(update, context, ticket, agent, int(parts[3]))
    else:
        await query.answer()


# ---------------------------------------------------------------------- roster (admins)


def _is_admin(update: Update, context: BotContext) -> bool:
    user = update.effective_user
    chat = update.effective_chat
    return (
        user is not None
        and user.id in context.config.admin_ids
        and chat is not None
        and chat.type == ChatType.PRIVATE
    )


async def _remove_from_groups(context: BotContext, user_id: int) -> None:
    """Take a removed agent out of the agents' groups where the bot can (kick, not ban)."""
    for chat_id in context.config.agent_chat_ids:
        chat_id = context.app.desk.current_id(chat_id)
        try:
            await context.bot.ban_chat_member(chat_id, user_id)
            await context.bot.unban_chat_member(chat_id, user_id, only_if_banned=True)
        except TelegramError as exc:
            _LOGGER.warning("Could not remove %s from agents' group %s: %s", user_id, chat_id, exc)


async def roster_command(update: Update, context: BotContext) -> object:
    """/agent_add, /agent_remove, /agents: admins manage the roster (others: unknown)."""
    if not _is_admin(update, context):
        return CONTINUE  # exactly what an unknown command gives: the fallback answers
    message = update.effective_message
    command = message.text.split()[0].split("@")[0]
    args = context.args or []
    admin_id = update.effective_user.id
    if command == "/agents":
        agents = await context.repos.agents.all()
        text = (
            context._(ROSTER_LIST).format(
                agents=Markup("\n").join(
                    Markup("• {name} ({user_id})").format(name=a.name, user_id=a.user_id)
                    for a in agents
                )
            )
            if agents
            else context._(ROSTER_EMPTY)
        )
        await message.reply_text(text)
    elif command == "/agent_add" and args and args[0].isdigit():
        user_id = int(args[0])
        name = " ".join(args[1:]) or str(user_id)
        await context.repos.agents.add(user_id, name, admin_id)
        await context.repos.audit.record(admin_id, "agent.add", user_id, {"name": name})
        await message.reply_text(context._(ROSTER_ADDED).format(name=escape(name), user_id=user_id))
    elif command == "/agent_remove" and args and args[0].isdigit():
        user_id = int(args[0])
        removed = await context.repos.agents.remove(user_id)
        await context.repos.audit.record(admin_id, "agent.remove", user_id)
        if removed:
            await _remove_from_groups(context, user_id)
        text = ROSTER_REMOVED if removed else ROSTER_UNKNOWN
        await message.reply_text(context._(text).format(user_id=user_id))
    else:
        await message.reply_text(context._(ROSTER_USAGE))
    raise ApplicationHandlerStop


async def relay(update: Update, context: BotContext) -> None:
    """The relay stage: a user with an open ticket, or an agent in a ticket topic."""
    chat = update.effective_chat
    if chat is None:
        return
    if chat.type == ChatType.PRIVATE:
        await relay_from_user(update, context)
    else:
        await agent_group_update(update, context)


def relay_handlers() -> list:
    """Return the relay stage (one handler: PTB runs one handler per group)."""
    return [TypeHandler(Update, relay)]


def command_handlers() -> list:
    """Return agent commands (agents' groups), ticket buttons and roster commands."""
    group = f.ChatType.SUPERGROUP
    return [
        *(
            CommandHandler(name, callback, filters=group)
            for name, callback in zip(
                AGENT_COMMANDS,
                (
                    claim_command,
                    close_command,
                    note_command,
                    macro_command,
                    transcript_command,
                    transfer_command,
                ),
                strict=True,
            )
        ),
        CallbackQueryHandler(ticket_button, pattern=TICKET_BUTTON),
        CommandHandler(["agent_add", "agent_remove", "agents"], roster_command),
    ]
