"""What the support desk says in the agents' groups, and how it describes a ticket.

Texts in the agents' groups are in the language of the group's team (configured with the
group), else the default language; they go through gettext like every other line.
"""

from __future__ import annotations

from typing import Any

from tgbot.config import Config
from tgbot.i18n import N_, translator
from tgbot.text import escape

from ..wording import MENU, STATUS_NAMES

#: Texts in the agents' groups (agents read the group's language; English keeps it simple
#: for mixed teams, and these lines go through gettext like every other).
HEADER = N_(
    "<b>Ticket {code}</b> · {priority}\nUser: {name} · {language}\nLinked account: {account}"
)
PRIORITY_NORMAL = N_("normal priority")
PRIORITY_HIGH = N_("HIGH priority")
NOT_LINKED = N_("not linked")
NO_CONTEXT = N_("Asked for a human from the menu.")
STATUS_WAITING = N_("⏳ Waiting for an agent")
STATUS_CLAIMED = N_("🙋 Claimed by {agent}")
STATUS_CLOSED = N_("✅ Closed")
#: What the header says of a ticket's context (what the user was doing, asked or shown).
CONTEXT_FROM = N_("Came from: {flow}")
CONTEXT_RATING = N_("rating an earlier ticket")
CONTEXT_QUESTION = N_("Question: “{text}”")
CONTEXT_COMPLAINT = N_("⚠️ Complaint: “{text}”")
CONTEXT_ARTICLE = N_("Help article shown: {title}")
CONTEXT_TX = N_("Transaction: <code>{id}</code>")
CONTEXT_FROZEN = N_("🧊 The user froze the account here; it needs checking with them.")
CONTEXT_UNCONFIRMED = N_(
    "⚠️ The wallet did NOT confirm the freeze: check the account and freeze it by hand."
)
CONTEXT_NO_ACCOUNT = N_("⚠️ No U-Pay account matches the user's Telegram phone number.")
CLAIM_LABEL = N_("🙋 Claim")
CLOSE_LABEL = N_("✅ Close")
TRANSFER_LABEL = N_("↪️ Transfer")
CLAIMED_BY = N_("🙋 {agent} claimed this ticket.")
CLOSED_IN_TOPIC = N_("✅ Ticket closed by {who}.")
CLOSED_UNANSWERED_IN_TOPIC = N_("✅ Ticket closed by {who} before any agent replied.")
URGENT_ENDED = N_(
    "⚠️ URGENT: the user ended this freeze ticket before any agent replied. Their account "
    "stays frozen; contact them when they write again or through their ticket history."
)
URGENT_ENDED_ADMINS = N_(
    "⚠️ The urgent ticket {code} (account freeze) was ended by the user before any agent "
    "replied. Please make sure someone follows up."
)
RATED_IN_TOPIC = N_("⭐ The user rated this ticket {stars} ({rating} of 5).")
COMMENT_IN_TOPIC = N_("💬 The user's comment: {comment}")
THE_USER = N_("the user")
REOPENED_IN_TOPIC = N_("🔄 The user says it is not solved: ticket reopened.")
USER_BLOCKED = N_("⚠️ The user has blocked the bot: messages cannot be delivered.")
REMINDER = N_("⏰ Nobody has claimed this ticket for {minutes} min.")
TOPIC_RECREATED = N_("♻️ This topic was recreated: the previous one was deleted or closed.")
GROUP_PROBLEM = N_("⚠️ Agents' group {chat}: {problem}. Tickets wait until it is fixed.")
#: The signature above an agent's reply ("客服 · Wang"): the team's word in the user's
#: language, and the agent's roster name (``TGBOT_AGENT_LABEL``).
TEAM_WORD = N_("Support")
AGENT_LABEL = N_("{team} · {name}")
NOT_A_FORUM = N_("topics are not enabled")
NOT_ADMIN = N_("the bot is not an administrator")
NO_TOPIC_RIGHTS = N_("the bot may not manage topics")
NO_DELETE_RIGHTS = N_("the bot may not delete messages")
UNREACHABLE = N_("the bot cannot reach the group")
NON_AGENT = N_(
    "⚠️ {name} (ID {user_id}) wrote in the agents' group {chat} but is not on the agent "
    "roster; their messages are ignored."
)

#: Message kinds that carry a caption (an agent's label goes there).
CAPTIONED = frozenset({"photo", "video", "document", "audio", "voice", "animation"})

#: Telegram errors meaning the topic is gone (deleted or closed by hand).
TOPIC_GONE = ("thread not found", "topic_closed", "topic_deleted", "topic_id_invalid")


def group_translator(config: Config, chat_id: int | None = None):
    """Return the translator of an agents' group: the language its team handles (configured
    with the group), else the default language."""
    language = dict(config.agent_chats).get(chat_id) if chat_id is not None else None
    return translator(language or config.default_language)


def describe_context(tr: Any, info: dict[str, Any]) -> list[str]:
    """Return a ticket's context as lines an agent reads (no internal keys or ids)."""
    from tgbot.answers import get_article  # the articles load the search index lazily

    lines = []
    flow = info.get("flow")
    if flow == "rating":
        lines.append(tr.gettext(CONTEXT_FROM).format(flow=tr.gettext(CONTEXT_RATING)))
    elif flow:
        label = next((e.label for e in MENU if e.data == f"menu:{flow}"), None)
        if label is not None:
            lines.append(tr.gettext(CONTEXT_FROM).format(flow=tr.gettext(label)))
    if info.get("question"):
        lines.append(tr.gettext(CONTEXT_QUESTION).format(text=escape(info["question"])))
    if info.get("complaint"):
        lines.append(tr.gettext(CONTEXT_COMPLAINT).format(text=escape(info["complaint"])))
    article = get_article(str(info.get("article") or ""))
    if article is not None:
        lines.append(tr.gettext(CONTEXT_ARTICLE).format(title=tr.gettext(article.title)))
    if info.get("tx"):
        status = STATUS_NAMES.get(str(info.get("status")))
        parts = [tr.gettext(CONTEXT_TX).format(id=escape(info["tx"]))]
        if info.get("amount"):
            parts.append(escape(info["amount"]))
        if status:
            parts.append(tr.gettext(status))
        lines.append(" · ".join(parts))
    account = info.get("account")
    if account == "frozen":
        lines.append(tr.gettext(CONTEXT_FROZEN))
    elif account == "NOT CONFIRMED":
        lines.append(tr.gettext(CONTEXT_UNCONFIRMED))
    if info.get("found") == "no":
        lines.append(tr.gettext(CONTEXT_NO_ACCOUNT))
    return lines
