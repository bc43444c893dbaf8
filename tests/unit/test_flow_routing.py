"""Which guided flow takes an update: the short way (a user outside a flow whose entry points
all decline) answers exactly as PTB's ConversationHandler does, for generated updates and
users in any step of any flow."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Update, User
from telegram.ext import CallbackQueryHandler, CommandHandler

from handlers.common import GuidedFlow
from tgbot.app import build_application
from tgbot.config import Config

USER = 4242


@pytest.fixture(scope="module")
def app():
    with tempfile.TemporaryDirectory() as tmp:
        app = build_application(Config(token="123456:ROUTING", db_path=Path(tmp) / "bot.db"))
        # What getMe tells at start-up (commands are matched against the bot's username).
        app.bot._bot_user = User(4321, "UPay", is_bot=True, username="upay_bot")
        yield app


@pytest.fixture(scope="module")
def flows(app) -> list[GuidedFlow]:
    found = [h for group in app.handlers.values() for h in group if isinstance(h, GuidedFlow)]
    assert len(found) >= 8
    return found


@pytest.fixture(scope="module")
def payloads(flows) -> dict[str, st.SearchStrategy[str]]:
    """What a user sends, by update kind (built once: the patterns' strategies)."""
    return {"message": _texts(flows), "callback_query": _callback_data(flows)}


def _handlers(flow: GuidedFlow) -> list:
    return [
        *flow.entry_points,
        *(h for handlers in flow.states.values() for h in handlers),
        *flow.fallbacks,
    ]


def _callback_data(flows: list[GuidedFlow]) -> st.SearchStrategy[str]:
    """Button data the flows' own patterns take (generated from them), their menus and
    namespaces with any suffix, and anything else."""
    patterns = {
        h.pattern
        for flow in flows
        for h in _handlers(flow)
        if isinstance(h, CallbackQueryHandler) and isinstance(h.pattern, re.Pattern)
    }
    menus = [flow.menu for flow in flows if flow.menu]
    spaces = sorted({space for flow in flows for space in flow.owns})
    return st.one_of(
        st.one_of(*(st.from_regex(p, fullmatch=True) for p in sorted(patterns, key=str))),
        st.sampled_from(menus),
        st.builds("{}:{}".format, st.sampled_from(spaces), st.text(max_size=12)),
        st.text(max_size=30),
    ).map(lambda data: data[:64])


def _texts(flows: list[GuidedFlow]) -> st.SearchStrategy[str]:
    commands = sorted(
        {
            f"/{command}"
            for flow in flows
            for h in _handlers(flow)
            if isinstance(h, CommandHandler)
            for command in h.commands
        }
    )
    words = ["refund", "退款", "转人工", "agent", "my phone was stolen", "手机丢了", "123456"]
    return st.one_of(
        st.sampled_from(commands),
        st.builds("{} {}".format, st.sampled_from(commands), st.text(max_size=10)),
        st.sampled_from(words),
        st.text(min_size=1, max_size=40),
    )


def _update(kind: str, payload: str, bot) -> Update:
    chat = {"id": USER, "type": "private", "first_name": "U"}
    user = {"id": USER, "is_bot": False, "first_name": "U", "language_code": "en"}
    if kind == "message":
        message = {"message_id": 9, "date": 1_800_000_000, "chat": chat, "from": user}
        message["text"] = payload
        if payload.startswith("/"):
            length = len(payload.split(" ", 1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return Update.de_json({"update_id": 1, "message": message}, bot)
    pressed = {"message_id": 8, "date": 1_800_000_000, "chat": chat, "text": "step"}
    query = {"id": "1", "from": user, "chat_instance": "1", "data": payload, "message": pressed}
    return Update.de_json({"update_id": 1, "callback_query": query}, bot)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a[0] == b[0] and a[1] == b[1] and a[2] is b[2]


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_short_way_answers_as_ptb_does(app, flows, payloads, data) -> None:
    kind = data.draw(st.sampled_from(sorted(payloads)))
    payload = data.draw(payloads[kind])
    states = {
        flow.name: data.draw(st.sampled_from([None, *flow.states]), label=flow.name)
        for flow in flows
    }
    update = _update(kind, payload, app.bot)
    for flow in flows:
        flow._conversations.clear()
        if states[flow.name] is not None:
            flow._conversations[(USER, USER)] = states[flow.name]
    for flow in flows:
        short = flow.check_update(update)
        flow._outside_and_not_entering = lambda _update: False  # PTB's way only
        try:
            full = flow.check_update(update)
        finally:
            del flow._outside_and_not_entering
        assert _same(short, full), (flow.name, kind, payload, states[flow.name], short, full)
