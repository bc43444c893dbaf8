"""The user's data export: one UTF-8 text file with a section per kind of record, labels in
the user's language, values as stored.

It holds only what is the user's: their profile, their identity-check state, their tickets
with the messages they sent and the replies they got (support is "Support", as users see it;
agents' names, ids and internal notes are not theirs), their refunds, questions, security
notices, their own actions in the audit log, and the updates and sends still stored.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from storage import PersonalData
from tgbot.answers.articles import get_article
from tgbot.i18n import LANGUAGES, N_, Translator

_TAGS = re.compile(r"<[^>]+>")

TITLE = N_("U-Pay support assistant: the data it keeps about you")
EXPORTED = N_("Exported {time} ({zone}) for Telegram user {user_id}.")
INTRO = N_(
    "This file lists everything this support chat keeps about you. Your U-Pay account, "
    "balance, cards and transactions are kept by U-Pay itself and are not part of it."
)
NOTHING = N_("(nothing)")
YES = N_("yes")
NO = N_("no")
FIELD = N_("{label}: {value}")

SECTION_PROFILE = N_("Profile")
NAME = N_("Name")
TELEGRAM_LANGUAGE = N_("Telegram language")
CHOSEN_LANGUAGE = N_("Language you chose")
FOLLOWS_TELEGRAM = N_("not chosen (follows Telegram)")
LINKED_ACCOUNT = N_("Linked U-Pay account")
NOT_LINKED = N_("not linked")
FIRST_CONTACT = N_("First message")
LAST_SEEN = N_("Last message")
BLOCKED = N_("Bot blocked by you")

SECTION_VERIFICATION = N_("Identity check")
CHECKED_ACCOUNT = N_("Account checked")
CODE_SENT_AT = N_("Code sent")
CODE_EXPIRES = N_("Code valid until")
RESEND_AFTER = N_("New code possible from")
TRIES_LEFT = N_("Tries left")
CODES_USED_UP = N_("Codes used up")
LOCKED_UNTIL = N_("Locked until")
VERIFIED_AT = N_("Verified")

SECTION_TICKETS = N_("Conversations with support")
TICKET = N_("Ticket {code}")
STATUS = N_("Status")
TICKET_STATUS = {
    "open": N_("waiting for an agent"),
    "claimed": N_("with an agent"),
    "closed": N_("closed"),
}
LANGUAGE = N_("Language")
OPENED = N_("Opened")
CLAIMED = N_("Taken by support")
FIRST_REPLY = N_("First reply")
CLOSED = N_("Closed")
CLOSED_BY_YOU = N_("{time}, by you")
CLOSED_BY_SUPPORT = N_("{time}, by support")
CLOSED_BY_SYSTEM = N_("{time}, automatically")
RATING = N_("Your rating")
STARS = N_("{stars} of 5")
COMMENT = N_("Your comment")
DETAILS = N_("What support was told")
CONVERSATION = N_("Messages:")
FROM_YOU = N_("You")
FROM_SUPPORT = N_("Support")
LINE = N_("[{time}] {who}: {text}")
KINDS = {
    "photo": N_("(photo)"),
    "document": N_("(file)"),
    "video": N_("(video)"),
    "voice": N_("(voice message)"),
    "audio": N_("(audio)"),
    "sticker": N_("(sticker)"),
    "animation": N_("(GIF)"),
    "video_note": N_("(video message)"),
    "contact": N_("(contact)"),
    "location": N_("(location)"),
}
OTHER_KIND = N_("(message)")
#: What a stored line's details look like: "text (detail; detail)".
WITH_DETAILS = N_("{text} ({details})")
# TRANSLATORS: separates details inside the brackets of "{text} ({details})".
DETAILS_SEPARATOR = N_("; ")
#: Names of the details stored with a ticket or an action (others are shown as stored).
DETAIL_NAMES = {
    "question": N_("your question"),
    "article": N_("help article"),
    "tx": N_("transaction"),
    "amount": N_("amount"),
    "priority": N_("priority"),
    "last4": N_("card ending"),
    "entry": N_("from"),
    "flow": N_("from"),
    "via": N_("via"),
    "account": N_("account"),
}

SECTION_REFUNDS = N_("Refund requests made here")
REFUND = N_(
    "{id}: {amount} for transaction {tx}; reason: {reason}; last status you were told: "
    "{status}; requested {created}; updated {updated}"
)
REFUND_STATUS = {
    "seen": N_("made outside this chat, nothing told yet"),
    "submitted": N_("submitted"),
    "reviewing": N_("being reviewed"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "refunded": N_("refunded"),
}

SECTION_QUESTIONS = N_("Questions you typed")
QUESTION = N_("[{time}] {question}")
ARTICLE_SHOWN = N_("answer shown: {article}")
NO_ARTICLE = N_("no answer found")
HELPFUL = N_("helpful: {answer}")
ESCALATED = N_("passed to support in ticket {code}")

SECTION_NOTICES = N_("Security notices sent to you")
NOTICE = N_("Notice #{id}: {status} ({time})")
NOTICE_STATUS = {
    "pending": N_("waiting"),
    "queued": N_("being sent"),
    "sent": N_("delivered"),
    "failed": N_("not delivered"),
    "blocked": N_("not delivered: the bot was blocked"),
    "cancelled": N_("not sent"),
}

SECTION_ACTIONS = N_("Your actions on record")
ACTION = N_("[{time}] {action}")
ACTIONS = {
    "account.link": N_("Telegram linked to your U-Pay account from the app"),
    "verify.ok": N_("identity checked"),
    "verify.locked": N_("identity check locked after wrong codes"),
    "password.reset_link": N_("password reset link sent"),
    "account.unlock": N_("account unlocked"),
    "account.freeze": N_("account frozen"),
    "account.freeze_unconfirmed": N_("account freeze asked, not confirmed by the wallet"),
    "card.unbind": N_("bank card unbound"),
    "card.bind": N_("bank card bound"),
    "refund.create": N_("refund requested"),
    "ticket.open": N_("conversation with support opened"),
    "ticket.reopen": N_("conversation with support reopened"),
    "ticket.close": N_("conversation with support closed"),
    "privacy.export": N_("your data exported"),
}

SECTION_UPDATES = N_("Messages and button presses being processed")
SECTION_SENDS = N_("Messages sent to you that are still stored")
BUTTON = N_("button “{data}”")
CONTACT = N_("shared contact {phone}")
FROM_SUPPORT_COPY = N_("(a message from support)")
SEND_STATUS = {
    "pending": N_("to be sent"),
    "sending": N_("being sent"),
    "sent": N_("sent"),
    "failed": N_("not delivered"),
    "cancelled": N_("not sent"),
}


class _Writer:
    """Lines of the export in one language and time zone."""

    def __init__(self, tr: Translator, zone: ZoneInfo) -> None:
        self.tr = tr
        self.zone = zone
        self.lines: list[str] = []

    def _(self, message: str) -> str:
        return self.tr.gettext(message)

    def time(self, moment: float | None) -> str:
        if moment is None:
            return "—"
        return self.tr.datetime(datetime.fromtimestamp(moment, self.zone), self.zone, "medium")

    def section(self, title: str) -> None:
        self.lines += ["", f"== {self._(title)} =="]

    def field(self, label: str, value: object) -> None:
        shown = "—" if value is None or value == "" else str(value)
        self.lines.append(self._(FIELD).format(label=self._(label), value=shown))

    def yes_no(self, value: bool) -> str:
        return self._(YES if value else NO)

    def nothing(self) -> None:
        self.lines.append(self._(NOTHING))

    def details(self, values: dict[str, Any]) -> str:
        """Return stored details as "name: value; ..." with names in the user's language."""
        parts = []
        for key, value in values.items():
            name = DETAIL_NAMES.get(key)
            label = self._(name) if name else key
            parts.append(self._(FIELD).format(label=label, value=_plain(value)))
        return self._(DETAILS_SEPARATOR).join(parts)

    def with_details(self, text: str, details: list[str]) -> str:
        if not details:
            return text
        joined = self._(DETAILS_SEPARATOR).join(details)
        return self._(WITH_DETAILS).format(text=text, details=joined)


def export_document(
    data: PersonalData, tr: Translator, zone: ZoneInfo, now: float
) -> tuple[str, bytes]:
    """Return the file name and contents of a user's data export."""
    w = _Writer(tr, zone)
    w.lines += [
        w._(TITLE),
        w._(EXPORTED).format(time=w.time(now), zone=zone.key, user_id=data.user_id),
        w._(INTRO),
    ]
    _profile(w, data)
    _verification(w, data)
    _tickets(w, data)
    _refunds(w, data)
    _questions(w, data)
    _notices(w, data)
    _actions(w, data)
    _updates(w, data)
    _sends(w, data)
    day = datetime.fromtimestamp(now, zone).strftime("%Y-%m-%d")
    return f"upay-my-data-{day}.txt", ("\n".join(w.lines) + "\n").encode()


def _profile(w: _Writer, data: PersonalData) -> None:
    w.section(SECTION_PROFILE)
    user = data.profile
    if user is None:
        w.nothing()
        return
    w.field(NAME, user.first_name)
    w.field(TELEGRAM_LANGUAGE, user.telegram_language)
    chosen = LANGUAGES.get(user.language or "") or w._(FOLLOWS_TELEGRAM)
    w.field(CHOSEN_LANGUAGE, chosen)
    w.field(LINKED_ACCOUNT, user.wallet_account_id or w._(NOT_LINKED))
    w.field(FIRST_CONTACT, w.time(user.created_at))
    w.field(LAST_SEEN, w.time(user.last_seen_at))
    w.field(BLOCKED, w.yes_no(user.blocked))


def _verification(w: _Writer, data: PersonalData) -> None:
    w.section(SECTION_VERIFICATION)
    state = data.verification
    if state is None:
        w.nothing()
        return
    w.field(CHECKED_ACCOUNT, state.account_id)
    w.field(CODE_SENT_AT, w.time(state.code_sent_at))
    w.field(CODE_EXPIRES, w.time(state.code_expires_at))
    w.field(RESEND_AFTER, w.time(state.resend_after))
    w.field(TRIES_LEFT, w.tr.number(state.tries_left))
    w.field(CODES_USED_UP, w.tr.number(state.failed_rounds))
    w.field(LOCKED_UNTIL, w.time(state.locked_until))
    w.field(VERIFIED_AT, w.time(state.verified_at))


def _tickets(w: _Writer, data: PersonalData) -> None:
    w.section(SECTION_TICKETS)
    if not data.tickets:
        w.nothing()
    for record in data.tickets:
        ticket = record.ticket
        w.lines += ["", w._(TICKET).format(code=ticket.code)]
        w.field(STATUS, w._(TICKET_STATUS.get(ticket.status, ticket.status)))
        w.field(LANGUAGE, LANGUAGES.get(ticket.language, ticket.language))
        w.field(OPENED, w.time(ticket.created_at))
        w.field(CLAIMED, w.time(ticket.claimed_at))
        w.field(FIRST_REPLY, w.time(ticket.first_response_at))
        if ticket.closed_at is not None:
            if ticket.closed_by == ticket.user_id:
                closed = CLOSED_BY_YOU
            elif ticket.closed_by is None:
                closed = CLOSED_BY_SYSTEM
            else:
                closed = CLOSED_BY_SUPPORT
            w.field(CLOSED, w._(closed).format(time=w.time(ticket.closed_at)))
        if ticket.rating is not None:
            w.field(RATING, w._(STARS).format(stars=ticket.rating))
        if ticket.rating_comment:
            w.field(COMMENT, ticket.rating_comment)
        if ticket.context:
            w.field(DETAILS, w.details(ticket.context))
        w.lines.append(w._(CONVERSATION))
        if not record.lines:
            w.nothing()
        for line in record.lines:
            who = FROM_YOU if line.direction == "in" else FROM_SUPPORT
            if line.kind in ("text", "macro"):
                text = line.text or ""
            else:
                text = w._(KINDS.get(line.kind, OTHER_KIND))
                if line.text:
                    text += " " + line.text
            w.lines.append(w._(LINE).format(time=w.time(line.created_at), who=w._(who), text=text))


def _refunds(w: _Writer, data: PersonalData) -> None:
    w.section(SECTION_REFUNDS)
    if not data.refunds:
        w.nothing()
    for refund in data.refunds:
        status = REFUND_STATUS.get(refund.status)
        w.lines.append(
            w._(REFUND).format(
                id=refund.id,
                amount=w.tr.money(refund.amount, refund.currency),
                tx=refund.transaction_id,
                reason=refund.reason,
                status=w._(status) if status else refund.status,
                created=w.time(refund.created_at),
                updated=w.time(refund.updated_at),
            )
        )


def _questions(w: _Writer, data: PersonalData) -> None:
    w.section(SECTION_QUESTIONS)
    if not data.questions:
        w.nothing()
    codes = {record.ticket.id: record.ticket.code for record in data.tickets}
    for question in data.questions:
        article = get_article(question.article) if question.article else None
        if question.article:
            shown = w._(article.title) if article else question.article
            parts = [w._(ARTICLE_SHOWN).format(article=shown)]
        else:
            parts = [w._(NO_ARTICLE)]
        if question.helpful is not None:
            parts.append(w._(HELPFUL).format(answer=w.yes_no(question.helpful)))
        if question.ticket_id is not None:
            code = codes.get(question.ticket_id, str(question.ticket_id))
            parts.append(w._(ESCALATED).format(code=code))
        head = w._(QUESTION).format(time=w.time(question.created_at), question=question.question)
        w.lines.append(w.with_details(head, parts))


def _notices(w: _Writer, data: PersonalData) -> None:
    w.section(SECTION_NOTICES)
    if not data.notices:
        w.nothing()
    for notice in data.notices:
        status = NOTICE_STATUS.get(notice.status)
        w.lines.append(
            w._(NOTICE).format(
                id=notice.broadcast_id,
                status=w._(status) if status else notice.status,
                time=w.time(notice.sent_at),
            )
        )


def _actions(w: _Writer, data: PersonalData) -> None:
    w.section(SECTION_ACTIONS)
    if not data.actions:
        w.nothing()
    codes = {str(record.ticket.id): record.ticket.code for record in data.tickets}
    for entry in data.actions:
        label = ACTIONS.get(entry.action)
        text = w._(label) if label else entry.action
        extra: list[str] = []
        if entry.actor_id == data.user_id:
            # The user's own action: what it concerned is theirs (an account, a refund, a
            # ticket: shown by its code).
            if entry.target and entry.target != str(data.user_id):
                extra.append(codes.get(entry.target, entry.target))
            if entry.details:
                extra.append(w.details(entry.details))
        line = w._(ACTION).format(time=w.time(entry.at), action=text)
        w.lines.append(w.with_details(line, extra))


def _updates(w: _Writer, data: PersonalData) -> None:
    w.section(SECTION_UPDATES)
    if not data.updates:
        w.nothing()
    for update in data.updates:
        w.lines.append(
            w._(LINE).format(
                time=w.time(update.received_at),
                who=w._(FROM_YOU),
                text=_update_text(w, update.payload),
            )
        )


def _update_text(w: _Writer, payload: dict[str, Any]) -> str:
    query = payload.get("callback_query")
    if isinstance(query, dict):
        return w._(BUTTON).format(data=query.get("data", ""))
    for key in ("message", "edited_message", "business_message", "edited_business_message"):
        message = payload.get(key)
        if not isinstance(message, dict):
            continue
        contact = message.get("contact")
        if isinstance(contact, dict):
            return w._(CONTACT).format(phone=contact.get("phone_number", ""))
        text = message.get("text") or message.get("caption")
        kind = next((k for k in KINDS if k in message), None)
        if kind is not None:
            return w._(KINDS[kind]) + (f" {text}" if text else "")
        return text or w._(OTHER_KIND)
    kinds = [key for key in payload if key != "update_id"]
    return f"({', '.join(kinds)})" if kinds else w._(OTHER_KIND)


def _sends(w: _Writer, data: PersonalData) -> None:
    w.section(SECTION_SENDS)
    if not data.sends:
        w.nothing()
    for item in data.sends:
        status = SEND_STATUS.get(item.status)
        text = item.params.get("text") or item.params.get("caption")
        if text:
            text = html.unescape(_TAGS.sub("", text))  # the bot's messages are HTML
        elif item.method in ("copyMessage", "copyMessages"):
            text = w._(FROM_SUPPORT_COPY)
        else:
            text = f"({item.method})"
        w.lines.append(
            w._(LINE).format(
                time=w.time(item.created_at),
                who=w._(status) if status else item.status,
                text=text,
            )
        )


def _plain(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
