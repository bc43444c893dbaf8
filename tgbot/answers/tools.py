"""``tgbot answers build|tune|eval``: rebuild the stored embeddings, choose thresholds by
cross-validation, report a labelled set."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .measure import (
    CV_THRESHOLDS,
    choose_thresholds,
    confusion_rows,
    cross_validate,
    per_topic_table,
    report,
)
from .router import (
    EMBEDDINGS_FILE,
    MODEL_FILE,
    STOLEN,
    Decision,
    Embedder,
    Router,
    build_embeddings,
    build_model,
    load_embeddings,
    load_examples,
)

OOF_FILE = Path(tempfile.gettempdir()) / "tgbot-router-oof.npz"


def build() -> int:
    """Embed the training texts into ``data/train_e5.npz`` (unless it covers them all), then
    train both models into ``data/model.npz``."""
    started = time.perf_counter()
    examples = load_examples()
    embedder = Embedder()
    if load_embeddings_or_none(examples) is None:
        count = build_embeddings(examples, embedder)
        print(f"{EMBEDDINGS_FILE}: {count} embeddings in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    build_model(examples, embedder)
    print(f"{MODEL_FILE}: trained in {time.perf_counter() - started:.1f} s")
    return 0


def load_embeddings_or_none(examples):
    """Return the stored embeddings if they cover every example, else None."""
    try:
        return load_embeddings(examples, None)[0]
    except LookupError:
        return None


def tune() -> int:
    """Cross-validate on the training examples; print each model's accuracy and the
    thresholds chosen from the ensemble's out-of-fold probabilities."""
    examples = load_examples()
    vectors, _ = load_embeddings(examples, None)
    probabilities = cross_validate(examples, vectors)
    np.savez_compressed(OOF_FILE, **probabilities)  # for a look without re-running
    for name, probs in probabilities.items():
        thresholds = choose_thresholds(examples, probs)
        router_report = report(examples, _decide_all(probs, thresholds, examples))
        print(
            f"{name}: top-1 zh {router_report.in_scope_top1('zh'):.1%} "
            f"en {router_report.in_scope_top1('en'):.1%}; at once zh "
            f"{router_report.at_once_rate('zh'):.1%} en {router_report.at_once_rate('en'):.1%}; "
            f"out of scope answered {router_report.oos_answered_rate():.1%}; "
            f"safety misroutes {len(router_report.safety_misroutes)}; {thresholds}"
        )
    return 0


def _decide_all(probabilities, thresholds, examples):
    from .router import decide

    return [decide(row, thresholds, e.text) for row, e in zip(probabilities, examples, strict=True)]


def evaluate(path: Path) -> int:
    """Report the char model, the embedding model and the ensemble on a labelled file, each
    with its cross-validated thresholds; the ensemble also as users get it (the freeze
    flow's own words first)."""
    from handlers.freeze import wants_freeze

    examples = load_examples(path)
    texts = [e.text for e in examples]
    router = Router()
    assert router.embedding is not None
    probabilities = {
        "char": router.char.proba(texts),
        "embedding": router.embedding.proba(texts),
    }
    probabilities["ensemble"] = (probabilities["char"] + probabilities["embedding"]) / 2
    results = {
        name: report(examples, _decide_all(probs, CV_THRESHOLDS[name], examples))
        for name, probs in probabilities.items()
    }
    frozen_words = [
        Decision("answer", (STOLEN,), (1.0,)) if wants_freeze(e.text) else decision
        for e, decision in zip(
            examples,
            _decide_all(probabilities["ensemble"], CV_THRESHOLDS["ensemble"], examples),
            strict=True,
        )
    ]
    results["ensemble + freeze words"] = report(examples, frozen_words)
    for name, result in results.items():
        print(f"## {name}")
        for lang in ("zh", "en"):
            top1, in_scope = result.accuracy(lang), result.in_scope_top1(lang)
            print(
                f"{lang}: top-1 {top1:.1%} (in scope {in_scope:.1%}, {result.total[lang]}), "
                f"at once {result.at_once_rate(lang):.1%}, "
                f"out of scope answered {result.oos_answered_rate(lang):.1%} "
                f"({result.out_of_scope[lang]}), theft {result.theft[lang]}"
            )
        print(f"safety misroutes: {result.safety_misroutes}")
    final = results["ensemble + freeze words"]
    print(per_topic_table(final))
    print("| expected | offered first | n |\n|---|---|---|")
    for expected, offered, count in confusion_rows(final):
        print(f"| `{expected}` | `{offered}` | {count} |")
    return 0


def run_answers(action: str, path: str | None = None) -> int:
    """Run ``tgbot answers <action>``."""
    if action == "build":
        return build()
    if action == "tune":
        return tune()
    if path is None:
        print("eval needs a labelled file: tgbot answers eval FILE")
        return 2
    return evaluate(Path(path))
