"""Find the answer to a free-text question: normalise, cut into words (jieba for Chinese),
map words to shared concepts, rank the articles' phrases with BM25, then decide.

Decisions (:class:`Match`): one clear answer, a few close candidates, or nothing (no
topic word the index knows, or too weak a match: out-of-scope text is not forced onto an
article). Pure logic: no Telegram, no I/O but jieba's dictionary, loaded once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .articles import ARTICLES, Article, phrases_of
from .synonyms import PHRASES, PLAIN_WEIGHT, STOPWORDS, SYNONYMS, TRADITIONAL, WEIGHTS, ZH_WORDS

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"[{_HAN}]+|[a-z0-9]+")
_IS_HAN = re.compile(rf"[{_HAN}]")
_SUFFIXES = ("ing", "ed", "es", "s")

#: A clear answer: the best score at least this, and the runner-up below ``CLEAR_RATIO`` of it.
CLEAR_SCORE = 3.0
CLEAR_RATIO = 0.75
#: Below this best score: nothing found.
MIN_SCORE = 1.6
#: Candidates shown: at most this many, each at least ``CANDIDATE_RATIO`` of the best.
MAX_CANDIDATES = 3
CANDIDATE_RATIO = 0.6
#: At least this share of the question's words must be ones the index knows.
MIN_COVERAGE = 0.34


@dataclass(frozen=True)
class Match:
    """What the router should do with a question."""

    #: ``"answer"`` (one article), ``"candidates"`` (2-3 to choose from) or ``"none"``.
    kind: str
    #: Article keys, best first (one for an answer).
    keys: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    #: The question's tokens after normalisation (for debugging and tests).
    tokens: tuple[str, ...] = field(default=(), compare=False)
    #: Why nothing was found: ``"empty"`` (no words at all), ``"out_of_scope"`` (no topic
    #: word the index knows) or ``"weak"`` (topic words, but no article fits well enough).
    reason: str = ""

    @property
    def best(self) -> str | None:
        """Return the best article key, or None."""
        return self.keys[0] if self.keys else None


class Segmenter:
    """Cuts Chinese runs into words with jieba; the dictionary loads on first use."""

    def __init__(self) -> None:
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    def load(self) -> None:
        """Load jieba's dictionary (about a second) and add the domain words."""
        with self._lock:
            if self._tokenizer is not None:
                return
            started = time.perf_counter()
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word in ZH_WORDS:
                tokenizer.add_word(word, freq=200_000)
            self._tokenizer = tokenizer
            self.load_seconds = time.perf_counter() - started

    def cut(self, run: str) -> list[str]:
        """Return the words of a run of Chinese characters."""
        if self._tokenizer is None:
            self.load()
        return list(self._tokenizer.cut_for_search(run, HMM=False))


def normalize(text: str) -> str:
    """Fold width, case and traditional characters; rewrite colloquial phrasing."""
    text = unicodedata.normalize("NFKC", text).lower().translate(TRADITIONAL)
    text = text.replace("’", "'")
    for pattern, replacement in PHRASES:
        text = pattern.sub(replacement, text)
    return text


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count 1), stopping above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


class AnswerIndex:
    """The articles' phrases, tokenised and ranked with BM25 (``rank_bm25.BM25Okapi``)."""

    def __init__(
        self, articles: tuple[Article, ...] = ARTICLES, segmenter: Segmenter | None = None
    ) -> None:
        from rank_bm25 import BM25Okapi

        started = time.perf_counter()
        self.segmenter = segmenter or Segmenter()
        self.articles = {article.key: article for article in articles}
        self._doc_keys: list[str] = []
        docs: list[list[str]] = []
        for article in articles:
            for phrase in (*phrases_of(article), ""):
                tokens = self.tokens(phrase or article.key.replace("_", " "), correct=False)
                if tokens:
                    docs.append(tokens)
                    self._doc_keys.append(article.key)
        self.vocabulary: frozenset[str] = frozenset(t for doc in docs for t in doc)
        #: Plain English words the index knows, for typo correction.
        self._english = sorted(
            {w for w in SYNONYMS if w.isascii()} | {t for t in self.vocabulary if t.isascii()}
        )
        self._bm25 = BM25Okapi(docs)
        self.build_seconds = time.perf_counter() - started

    # -- tokens --------------------------------------------------------------------------

    def tokens(self, text: str, *, correct: bool = True) -> list[str]:
        """Return the concept tokens of ``text`` (stopwords dropped, typos corrected)."""
        out: list[str] = []
        for run in _RUNS.findall(normalize(text)):
            words = self.segmenter.cut(run) if _IS_HAN.match(run) else [run]
            for word in words:
                out.extend(self._concepts(word, correct))
        return list(dict.fromkeys(out))

    def _concepts(self, word: str, correct: bool) -> list[str]:
        if word in STOPWORDS or (len(word) == 1 and word.isascii()):
            return []
        for candidate in (word, _stem(word)):
            if candidate in SYNONYMS:
                return list(SYNONYMS[candidate])
        if word.isascii():
            if word.isdigit():
                return []
            stem = _stem(word)
            if correct and len(word) >= 5 and stem not in self.vocabulary:
                fixed = self._correct(word)
                if fixed is not None:
                    return self._concepts(fixed, correct=False)
            return [stem]
        if _IS_HAN.match(word) and len(word) > 1:
            # An unknown Chinese word: its characters may still be known ones (e.g. 钱).
            known = [c for ch in word for c in SYNONYMS.get(ch, ())]
            return known or [word]
        return list(SYNONYMS.get(word, (word,)))

    def _correct(self, word: str) -> str | None:
        limit = 1 if len(word) < 7 else 2
        best, best_distance = None, limit + 1
        for known in self._english:
            if known[0] != word[0] and len(word) < 7:
                continue
            distance = _edit_distance(word, known, limit)
            if distance < best_distance:
                best, best_distance = known, distance
        return best

    # -- ranking ---------------------------------------------------------------------------

    def scores(self, tokens: list[str]) -> dict[str, float]:
        """Return each article's score: its best phrase's BM25 score, each question word
        weighted (broad concepts count less)."""
        per_doc = sum(
            self._bm25.get_scores([token])
            * WEIGHTS.get(token, 1.0 if token.startswith("@") else PLAIN_WEIGHT)
            for token in tokens
        )
        best: dict[str, float] = defaultdict(float)
        for key, score in zip(self._doc_keys, per_doc, strict=True):
            best[key] = max(best[key], float(score))
        return dict(best)

    def search(self, text: str) -> Match:
        """Decide what to answer to ``text``: one article, candidates, or nothing."""
        tokens = self.tokens(text)
        if not tokens:
            return Match("none", tokens=(), reason="empty")
        known = [t for t in tokens if t in self.vocabulary]
        if not known or len(known) / len(tokens) < MIN_COVERAGE:
            return Match("none", tokens=tuple(tokens), reason="out_of_scope")
        ranked = sorted(self.scores(known).items(), key=lambda kv: -kv[1])
        (top, s1), (_, s2) = ranked[0], ranked[1]
        if s1 < MIN_SCORE:
            return Match("none", tokens=tuple(tokens), reason="weak")
        if s1 >= CLEAR_SCORE and s2 < s1 * CLEAR_RATIO:
            return Match("answer", (top,), (round(s1, 3),), tuple(tokens))
        close = [(k, s) for k, s in ranked[:MAX_CANDIDATES] if s >= s1 * CANDIDATE_RATIO]
        return Match(
            "candidates",
            tuple(k for k, _ in close),
            tuple(round(s, 3) for _, s in close),
            tuple(tokens),
        )


_INDEX: AnswerIndex | None = None
_INDEX_LOCK = threading.Lock()


def default_index() -> AnswerIndex:
    """Return the process-wide index, building it (and loading jieba) on first use."""
    global _INDEX
    if _INDEX is None:
        with _INDEX_LOCK:
            if _INDEX is None:
                _INDEX = AnswerIndex()
    return _INDEX


def index_ready() -> bool:
    """Return True once :func:`default_index` has been built."""
    return _INDEX is not None


def search(text: str) -> Match:
    """Search the default index (see :meth:`AnswerIndex.search`)."""
    return default_index().search(text)
