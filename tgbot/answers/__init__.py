"""Self-service answers: bilingual help articles and the learned router that finds them.

Pure logic, importable without python-telegram-bot: :mod:`.articles` (texts and buttons),
:mod:`.router` (the trained topic models and the decision: act, answer, ask, candidates,
out of scope). ``handlers.selfservice`` shows the answers in Telegram.
"""

from .articles import ARTICLES, HOURS_ALWAYS, HOURS_RANGE, Action, Article, get_article
from .router import TOPICS, Decision, Router, Thresholds, default_router, route, router_ready

__all__ = [
    "ARTICLES",
    "HOURS_ALWAYS",
    "HOURS_RANGE",
    "TOPICS",
    "Action",
    "Article",
    "Decision",
    "Router",
    "Thresholds",
    "default_router",
    "get_article",
    "route",
    "router_ready",
]
