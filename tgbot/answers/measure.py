"""Measure the router: cross-validation on the training examples (which chooses the
thresholds), and the report on a labelled set (top-1 per language and topic, a confusion
table, out-of-scope answered, safety misroutes).

Used by ``tgbot answers tune`` / ``tgbot answers eval``, ``bench/router.py`` and the tests.
Never choose anything here from the frozen evaluation sets: they are only reported.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .router import (
    NONE,
    STOLEN,
    TOPICS,
    CharModel,
    Decision,
    EmbeddingModel,
    Example,
    Thresholds,
    decide,
    safety_words,
)

#: Topics whose messages must be offered the freeze first (a miss is a safety misroute).
SAFETY_TOPICS = frozenset({STOLEN})
#: Each model's thresholds as ``tgbot answers tune`` chose them (the ensemble's are the
#: router's :data:`~.router.DEFAULT_THRESHOLDS`); the other two are for comparison.
CV_THRESHOLDS = {
    "char": Thresholds(clear=0.5, none=0.4, safety=0.05),
    "embedding": Thresholds(clear=0.55, none=0.55, safety=0.05),
    "ensemble": Thresholds(clear=0.4, none=0.3, safety=0.1),
}
#: A theft message not offered the freeze first costs as much as this many other messages
#: asked "freeze it now?" for nothing (safety first, but not a question on every message).
MISSED_THEFT_WEIGHT = 50


def cross_validate(
    examples: Sequence[Example], vectors: np.ndarray | None, folds: int = 5, seed: int = 0
) -> dict[str, np.ndarray]:
    """Return out-of-fold topic probabilities of every example: ``"char"``, and with
    ``vectors`` (the examples' embeddings) also ``"embedding"`` and ``"ensemble"``."""
    from sklearn.model_selection import StratifiedKFold

    topics = np.array([e.topic for e in examples])
    out = {"char": np.zeros((len(examples), len(TOPICS)))}
    if vectors is not None:
        out["embedding"] = np.zeros_like(out["char"])
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train, test in split.split(np.zeros(len(examples)), topics):
        part = [examples[i] for i in train]
        held = [examples[i].text for i in test]
        out["char"][test] = CharModel(part).proba(held)
        if vectors is not None:
            model = EmbeddingModel(part, vectors[train], None)
            out["embedding"][test] = model.proba(held, vectors[test])
    if vectors is not None:
        out["ensemble"] = (out["char"] + out["embedding"]) / 2
    return out


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


def choose_thresholds(examples: Sequence[Example], probabilities: np.ndarray) -> Thresholds:
    """Choose the thresholds from out-of-fold probabilities of the training examples.

    ``safety`` (0.05 to 0.5, with the safety words, :func:`~.router.safety_words`): the
    fewest theft examples not offered the freeze first, each weighing as much as
    :data:`MISSED_THEFT_WEIGHT` other examples asked "freeze it now?" for nothing. Then
    ``clear`` and ``none`` maximise, over a grid, the utility: +1 for the right topic at
    once, +0.5 for it first among candidates, -2 for a wrong topic acted on at once, -3 for
    an out-of-scope message answered, -1 for an in-scope one left to the fallback.
    """
    # The safety words are looked for once per text ("" where there are none).
    texts = [e.text if safety_words(e.text) else "" for e in examples]
    topics = [e.topic for e in examples]

    def cost(safety: float) -> float:
        thresholds = Thresholds(safety=safety)
        total = 0.0
        for row, text, topic in zip(probabilities, texts, topics, strict=True):
            first = decide(row, thresholds, text).best
            if topic == STOLEN:
                total += MISSED_THEFT_WEIGHT * (first != STOLEN)
            else:
                total += first == STOLEN
        return total

    grid = [round(0.05 * i, 2) for i in range(1, 11)]
    safety = min(grid, key=lambda value: (cost(value), value))
    best: tuple[float, Thresholds] | None = None
    for clear, none in itertools.product(np.arange(0.3, 0.91, 0.05), np.arange(0.2, 0.81, 0.05)):
        thresholds = Thresholds(
            clear=round(float(clear), 2), none=round(float(none), 2), safety=safety
        )
        utility = 0.0
        for row, text, topic in zip(probabilities, texts, topics, strict=True):
            decision = decide(row, thresholds, text)
            if topic == NONE:
                utility -= 3 * (decision.kind == "answer")
            elif decision.kind == "none":
                utility -= 1
            elif decision.best == topic:
                utility += 1 if decision.kind == "answer" else 0.5
            elif decision.kind == "answer":
                utility -= 2
        if best is None or utility > best[0]:
            best = (utility, thresholds)
    assert best is not None
    return best[1]


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
