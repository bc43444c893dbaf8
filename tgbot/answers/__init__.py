"""Self-service answers: bilingual help articles and the free-text search that finds them.

Pure logic, importable without python-telegram-bot: :mod:`.articles` (texts, buttons,
phrases), :mod:`.synonyms` (colloquial phrasing, typos, concepts), :mod:`.search` (jieba +
BM25 index and the answer / candidates / nothing decision). ``handlers.selfservice`` shows
the answers in Telegram.
"""

from .articles import ARTICLES, HOURS_ALWAYS, HOURS_RANGE, Action, Article, get_article
from .search import AnswerIndex, Match, Segmenter, default_index, index_ready, search

__all__ = [
    "ARTICLES",
    "HOURS_ALWAYS",
    "HOURS_RANGE",
    "Action",
    "AnswerIndex",
    "Article",
    "Match",
    "Segmenter",
    "default_index",
    "get_article",
    "index_ready",
    "search",
]
