"""Measure the router: cross-validation on the training examples (which chooses the model
settings and the thresholds), and the report on a labelled set (top-1 per language and
topic, a confusion table, out-of-scope answered, safety misroutes).

Used by ``tgbot answers tune`` / ``tgbot answers eval``, ``bench/router.py`` and the tests.
Never choose anything here from the frozen evaluation sets: they are only reported.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .router import (
    KINDS,
    NONE,
    STOLEN,
    TOPICS,
    CharModel,
    Decision,
    EmbeddingModel,
    Example,
    Ranked,
    Thresholds,
    decide_many,
    safety_words,
)

#: Topics whose messages must be offered the freeze first (a miss is a safety misroute).
SAFETY_TOPICS = frozenset({STOLEN})
#: Each model's thresholds as ``tgbot answers tune`` chose them, to report each model alone
#: (the router's, for the ensemble, are :data:`~.router.DEFAULT_THRESHOLDS`).
CV_THRESHOLDS = {
    "char": Thresholds(clear=0.7, none=0.7, safety=0.1, greeting=0.2, freeze_button=0.03),
    "embedding": Thresholds(clear=0.65, none=0.7, safety=0.1, greeting=0.5, freeze_button=0.02),
}
#: A theft message not offered the freeze first costs as much as this many other messages
#: asked "freeze it now?" for nothing (safety first, but not a question on every message).
MISSED_THEFT_WEIGHT = 50
#: The freeze button may be added to at most this share of the other articles.
FREEZE_BUTTON_SHARE = 0.10

Split = tuple[np.ndarray, np.ndarray]


def kfold(examples: Sequence[Example], folds: int = 5, seed: int = 0) -> list[Split]:
    """Return stratified k-fold (train, test) index splits of the examples."""
    from sklearn.model_selection import StratifiedKFold

    topics = np.array([e.topic for e in examples])
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return list(split.split(np.zeros(len(examples)), topics))


def by_writer(examples: Sequence[Example]) -> list[Split]:
    """Return one split per training file: train on the others, test on it (each file is
    one writer's: the closest the training data gets to questions nobody here wrote)."""
    sources = np.array([e.source for e in examples])
    return [
        (np.flatnonzero(sources != source), np.flatnonzero(sources == source))
        for source in dict.fromkeys(sources.tolist())
    ]


def cross_validate(
    examples: Sequence[Example],
    vectors: np.ndarray | None,
    splits: Sequence[Split] | None = None,
    char_c: float = 30.0,
    e5_c: float = 100.0,
) -> dict[str, np.ndarray]:
    """Return out-of-fold topic probabilities of every example (rows no split tests stay
    0): ``"char"``, and with ``vectors`` (the examples' embeddings) ``"embedding"`` too.
    ``splits`` defaults to :func:`kfold`."""
    out = {"char": np.zeros((len(examples), len(TOPICS)))}
    if vectors is not None:
        out["embedding"] = np.zeros_like(out["char"])
    for train, test in kfold(examples) if splits is None else splits:
        part = [examples[i] for i in train]
        held = [examples[i].text for i in test]
        out["char"][test] = CharModel(part, c=char_c).proba(held)
        if vectors is not None:
            model = EmbeddingModel(part, vectors[train], None, c=e5_c)
            out["embedding"][test] = model.proba(held, vectors[test])
    return out


def gated(char: np.ndarray, ensemble: np.ndarray, gate: float) -> np.ndarray:
    """Return what the router computes: the char model's probabilities where its best
    topic is at least ``gate``, else the ensemble's."""
    return np.where((char.max(axis=1) >= gate)[:, None], char, ensemble)


def safety_word_mask(examples: Sequence[Example]) -> np.ndarray:
    """Return which examples' texts have :func:`~.router.safety_words`."""
    return np.array([safety_words(e.text) for e in examples], dtype=bool)


def topic_indices(examples: Sequence[Example]) -> np.ndarray:
    """Return the index in :data:`~.router.TOPICS` of each example's topic."""
    return np.array([TOPICS.index(e.topic) for e in examples])


def utility(topics: np.ndarray, kind: np.ndarray, first: np.ndarray) -> float:
    """Score decisions (from :func:`~.router.decide_many`): +1 for the right topic at once,
    +0.5 for it first among candidates (or the freeze first of a safety question), -2 for
    a wrong topic acted on at once, -3 for an out-of-scope message answered, -1 for an
    in-scope one left to the fallback, and -:data:`MISSED_THEFT_WEIGHT` for a theft
    message not offered the freeze first. ``topics``: see :func:`topic_indices`."""
    answer = kind == KINDS.index("answer")
    out_of_scope = topics == TOPICS.index(NONE)
    right = first == topics
    total = 0.0
    total -= 3 * np.sum(out_of_scope & answer)
    total -= np.sum(~out_of_scope & (kind == KINDS.index("none")))
    total += np.sum(right & answer & ~out_of_scope) + 0.5 * np.sum(right & ~answer & ~out_of_scope)
    total -= 2 * np.sum(~right & answer & ~out_of_scope)
    theft = topics == TOPICS.index(STOLEN)
    total -= MISSED_THEFT_WEIGHT * np.sum(theft & (first != TOPICS.index(STOLEN)))
    return float(total)


#: The grids :func:`choose_thresholds` searches.
SAFETY_GRID = (0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3)
CLEAR_GRID = tuple(round(0.3 + 0.05 * i, 2) for i in range(9))  # 0.3 .. 0.7
NONE_GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(11))  # 0.2 .. 0.7
GREETING_GRID = (0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
FREEZE_BUTTON_GRID = (0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2)


def choose_thresholds(
    examples: Sequence[Example], probabilities: np.ndarray, words: np.ndarray | None = None
) -> Thresholds:
    """Choose the thresholds from out-of-fold probabilities of the training examples.

    ``safety``, ``clear``, ``none`` and ``greeting`` maximise :func:`utility` over a grid
    (``words``: which texts have safety words, see :func:`safety_word_mask`). Then
    ``freeze_button`` (below ``safety``): the value that puts the freeze button in front of
    the most theft examples not offered the freeze first, on at most
    :data:`FREEZE_BUTTON_SHARE` of the other articles; the highest such value.
    """
    ranked, topics = Ranked.of(probabilities), topic_indices(examples)
    best: tuple[float, Thresholds] | None = None
    for safety, clear, none, greeting in itertools.product(
        SAFETY_GRID, CLEAR_GRID, NONE_GRID, GREETING_GRID
    ):
        if greeting > clear:
            continue
        thresholds = Thresholds(
            clear=clear, none=none, safety=safety, greeting=greeting, freeze_button=safety
        )
        score = utility(topics, *decide_many(ranked, thresholds, words)[:2])
        if best is None or score > best[0]:
            best = (score, thresholds)
    assert best is not None
    chosen = best[1]
    theft = np.array([e.topic == STOLEN for e in examples])
    stolen = TOPICS.index(STOLEN)
    options = []
    for value in FREEZE_BUTTON_GRID:
        if value >= chosen.safety:
            break
        kind, first, button = decide_many(ranked, replace(chosen, freeze_button=value), words)
        articles = ~theft & np.isin(kind, (KINDS.index("answer"), KINDS.index("candidates")))
        if np.sum(button & articles) > FREEZE_BUTTON_SHARE * np.sum(articles):
            continue
        reached = np.sum(theft & ((first == stolen) | button))
        options.append((reached, value))
    if options:
        chosen = replace(chosen, freeze_button=max(options)[1])
    return chosen


def choose_gate(
    examples: Sequence[Example],
    char: np.ndarray,
    ensemble: np.ndarray,
    thresholds: Thresholds,
    words: np.ndarray | None = None,
) -> float:
    """Return the lowest char-model confidence from which skipping the embedding decides
    at least as well (:func:`utility`) as the full ensemble on out-of-fold probabilities;
    1.01 (never skip) if none does."""
    topics = topic_indices(examples)
    full = utility(topics, *decide_many(ensemble, thresholds, words)[:2])
    for gate in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        probs = gated(char, ensemble, gate)
        if utility(topics, *decide_many(probs, thresholds, words)[:2]) >= full:
            return gate
    return 1.01


def decisions(kind: np.ndarray, first: np.ndarray) -> list[Decision]:
    """Turn :func:`~.router.decide_many`'s arrays into decisions (for :func:`report`)."""
    return [
        Decision(KINDS[k], (TOPICS[f],) if f >= 0 else ())
        for k, f in zip(kind.tolist(), first.tolist(), strict=True)
    ]


@dataclass
class Report:
    """How a router did on a labelled set."""

    #: Per language: messages of in-scope topics, and how many had the right topic first
    #: (acted on, answered, or first of the candidates).
    total: Counter = field(default_factory=Counter)
    top1: Counter = field(default_factory=Counter)
    #: ... and how many were acted on / answered at once with the right topic.
    at_once: Counter = field(default_factory=Counter)
    #: Out-of-scope messages per language, and how many got an article or a flow at once.
    out_of_scope: Counter = field(default_factory=Counter)
    oos_answered: Counter = field(default_factory=Counter)
    #: ... and how many got candidates (a question, not an answer).
    oos_candidates: Counter = field(default_factory=Counter)
    #: (language, topic) -> [right first, messages]
    per_topic: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    #: (expected, offered first) -> count, over both languages
    confusion: Counter = field(default_factory=Counter)
    #: Theft messages not offered the freeze first: (language, text, what they got).
    safety_misroutes: list[tuple[str, str, str]] = field(default_factory=list)
    #: Theft messages: how many, and how many were acted on at once (the freeze confirm).
    theft: Counter = field(default_factory=Counter)
    theft_at_once: Counter = field(default_factory=Counter)
    #: Other messages offered the freeze first (asked "freeze it now?" needlessly).
    false_freeze: Counter = field(default_factory=Counter)

    def accuracy(self, lang: str) -> float:
        """Top-1 accuracy of in-scope messages plus out-of-scope ones not answered."""
        right = self.top1[lang] + self.out_of_scope[lang] - self.oos_answered[lang]
        right -= self.oos_candidates[lang]
        return right / max(1, self.total[lang] + self.out_of_scope[lang])

    def in_scope_top1(self, lang: str) -> float:
        """Top-1 accuracy of in-scope messages only."""
        return self.top1[lang] / max(1, self.total[lang])

    def at_once_rate(self, lang: str) -> float:
        """Share of in-scope messages acted on / answered at once with the right topic."""
        return self.at_once[lang] / max(1, self.total[lang])

    def oos_answered_rate(self, lang: str | None = None) -> float:
        """Share of out-of-scope messages answered with an article or a flow."""
        langs = [lang] if lang else list(self.out_of_scope)
        answered = sum(self.oos_answered[g] for g in langs)
        return answered / max(1, sum(self.out_of_scope[g] for g in langs))

    def line(self) -> str:
        """Return the one-line summary used in tables: top-1, at once, out of scope
        answered (per language), theft misses, needless freeze questions."""
        cells = [f"{self.accuracy(g):.1%}" for g in ("zh", "en")]
        cells += [f"{self.at_once_rate(g):.1%}" for g in ("zh", "en")]
        cells += [f"{self.oos_answered_rate(g):.1%}" for g in ("zh", "en")]
        theft = sum(self.theft.values())
        cells += [f"{len(self.safety_misroutes)} / {theft}", str(sum(self.false_freeze.values()))]
        return " | ".join(cells)


def report(examples: Sequence[Example], decisions: Sequence[Decision]) -> Report:
    """Score ``decisions`` (one per example, in order) against the examples' topics.

    A message counts as right (top-1) when the topic offered first is its topic: acted on,
    answered, first candidate, or the freeze first of a safety question. An out-of-scope
    message is right when it is left to the fallback.
    """
    result = Report()
    for example, decision in zip(examples, decisions, strict=True):
        lang, expected = example.lang, example.topic
        offered = decision.best if decision.kind != "none" else NONE
        result.confusion[(expected, offered)] += 1
        if expected not in SAFETY_TOPICS and offered in SAFETY_TOPICS:
            result.false_freeze[lang] += 1
        if expected == NONE:
            result.out_of_scope[lang] += 1
            result.oos_answered[lang] += decision.kind == "answer"
            result.oos_candidates[lang] += decision.kind in ("candidates", "safety")
            continue
        result.total[lang] += 1
        right = offered == expected
        result.top1[lang] += right
        result.at_once[lang] += right and decision.kind == "answer"
        cell = result.per_topic.setdefault((lang, expected), [0, 0])
        cell[0] += right
        cell[1] += 1
        if expected in SAFETY_TOPICS:
            result.theft[lang] += 1
            result.theft_at_once[lang] += right and decision.kind == "answer"
            if not right:
                result.safety_misroutes.append((lang, example.text, offered))
    return result


def confusion_rows(result: Report, limit: int = 25) -> list[tuple[str, str, int]]:
    """Return the most frequent confusions (expected, offered first, count)."""
    rows = [(e, o, n) for (e, o), n in result.confusion.items() if e != o]
    return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))[:limit]


def per_topic_table(result: Report) -> str:
    """Return a Markdown table: top-1 per topic and language."""
    langs = sorted(result.total, reverse=True)
    by_topic: dict[str, dict[str, str]] = defaultdict(dict)
    for (lang, topic), (right, total) in result.per_topic.items():
        by_topic[topic][lang] = f"{right / total:.0%} ({right}/{total})"
    lines = ["| topic | " + " | ".join(langs) + " |", "|---" * (len(langs) + 1) + "|"]
    for topic in TOPICS:
        if topic in by_topic:
            cells = [by_topic[topic].get(lang, "") for lang in langs]
            lines.append(f"| `{topic}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
