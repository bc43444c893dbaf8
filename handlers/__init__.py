"""The update pipeline: every stage and flow registered in one place, in order.

Each stage is its own PTB handler group, so every stage sees every update until one raises
``ApplicationHandlerStop``; within the ``FLOWS`` group at most one flow takes an update.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from telegram.ext import Application, BaseHandler

from . import (
    admin,
    agents,
    broadcast,
    cards,
    core,
    freeze,
    handoff,
    lookup,
    menu,
    password,
    privacy,
    refund,
    selfservice,
    verify,
)
from .common import GuidedFlow, final


class Stage(IntEnum):
    """Handler groups in the order DESIGN section 3 gives."""

    PRIVACY = -110  # a user whose data is being erased: answered, nothing recorded
    PREPARE = -100  # after the inbox (in the update queue): user record and language
    GROUPS = -95  # leave groups that are not agents' groups (stops everything else)
    GUARD = -90  # sensitive-data guard: delete, warn, stop
    LIFECYCLE = -80  # timeouts, stale buttons, oversized input, /start and /cancel end flows
    RELAY = -50  # open ticket relay (a user talking to an agent)
    ESCALATE = -40  # "转人工" / "agent" / "我要投诉" typed at a flow step (outside: the router)
    FLOWS = 0  # the user's current guided flow
    COMMANDS = 10  # commands and menus
    ROUTER = 20  # free-text router
    FALLBACK = 100  # nothing else answered


#: Guided flows (ConversationHandlers), in the order they are tried. Later issues add theirs.
FLOWS: list[Callable[[], GuidedFlow]] = [
    password.password_flow,
    cards.cards_flow,
    freeze.freeze_flow,
    lookup.lookup_flow,
    refund.refund_flow,
    broadcast.broadcast_flow,
    handoff.rating_flow,
    privacy.privacy_flow,
]

#: Fixed stages: (stage, handler factory). Order within a stage matters only per group.
STAGES: list[tuple[Stage, Callable[[], list[BaseHandler]]]] = [
    (Stage.PRIVACY, privacy.gate_handlers),
    (Stage.PREPARE, core.prepare_handlers),
    (Stage.GROUPS, core.group_handlers),
    (Stage.GUARD, core.guard_handlers),
    (Stage.LIFECYCLE, core.lifecycle_handlers),
    (Stage.RELAY, agents.relay_handlers),
    (Stage.ESCALATE, handoff.escalation_handlers),
    (
        Stage.COMMANDS,
        lambda: final(
            core.menu_handlers()
            + verify.link_handlers()  # before menu's plain /start
            + menu.command_handlers()
            + handoff.command_handlers()
            + agents.command_handlers()
            + broadcast.command_handlers()
            + admin.command_handlers()
        ),
    ),
    (
        Stage.ROUTER,
        # The learned router: "talk to a person" opens a ticket there too (a word rule
        # before it sent "fake agent" to a ticket instead of the phishing article).
        lambda: final(selfservice.router_handlers()),
    ),
    (Stage.FALLBACK, core.fallback_handlers),
]


def register(application: Application, extra_flows: list[GuidedFlow] | None = None) -> None:
    """Add every stage and flow to ``application`` (``extra_flows``: e.g. test flows)."""
    for stage, build in STAGES:
        application.add_handlers(build(), group=int(stage))
    flows = [build() for build in FLOWS] + list(extra_flows or [])
    for flow in flows:
        # Each flow knows the others: typed text starts a flow only if the current step of
        # the flow the user is in does not take it as its input.
        flow.peers = flows
        application.flows[flow.name] = flow
        application.add_handler(flow, group=int(Stage.FLOWS))
    application.add_error_handler(core.on_error)
