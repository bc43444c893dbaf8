"""``tgbot answers build|tune|eval``: rebuild the stored embeddings, choose thresholds by
cross-validation, report a labelled set."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .measure import (
    CV_THRESHOLDS,
    by_writer,
    choose_gate,
    choose_thresholds,
    confusion_rows,
    cross_validate,
    decisions,
    gated,
    per_topic_table,
    report,
    safety_word_mask,
)
from .router import (
    EMBEDDINGS_FILE,
    ENSEMBLE,
    MODEL_FILE,
    STOLEN,
    TOPICS,
    Embedder,
    Router,
    Thresholds,
    build_embeddings,
    build_model,
    combine,
    decide_many,
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


#: The rows of ``tgbot answers tune``'s table: name, model, char C, e5 C, ensemble, safety
#: words, gate (None: choose it; 1.01: never skip the embedding).
VARIANTS: list[tuple[str, str, float, float, str, bool, float | None]] = [
    ("char, C=3", "char", 3.0, 100.0, "", True, 1.01),
    ("char, C=10 (round 1)", "char", 10.0, 100.0, "", True, 1.01),
    ("char, C=30", "char", 30.0, 100.0, "", True, 1.01),
    ("embedding, C=30", "embedding", 30.0, 30.0, "", True, 1.01),
    ("embedding, C=100 (round 1)", "embedding", 30.0, 100.0, "", True, 1.01),
    ("embedding, C=300", "embedding", 30.0, 300.0, "", True, 1.01),
    ("ensemble: mean, char C=10 (round 1)", "ensemble", 10.0, 100.0, "mean", True, 1.01),
    ("ensemble: mean", "ensemble", 30.0, 100.0, "mean", True, 1.01),
    ("ensemble: geometric mean", "ensemble", 30.0, 100.0, "geometric", True, 1.01),
    ("ensemble: mean, e5 C=300", "ensemble", 30.0, 300.0, "mean", True, 1.01),
    ("ensemble: mean, no safety words", "ensemble", 30.0, 100.0, "mean", False, 1.01),
    ("ensemble: mean, e5 skipped when char is sure", "ensemble", 30.0, 100.0, "mean", True, None),
]
TABLE_HEADER = (
    "| variant | argmax zh | argmax en | theft AP | top-1 zh | top-1 en | at once zh | at once "
    "en | out of scope answered zh | en | theft not offered the freeze first | needless "
    "freeze questions | thresholds (clear, none, safety, greeting, freeze button); gate |\n"
    + "|---" * 13
    + "|"
)


def _probabilities(oof, model, how, char_c, e5_c):
    char, embedding = oof[("char", char_c)], oof[("embedding", e5_c)]
    if model == "char":
        return char
    if model == "embedding":
        return embedding
    return combine(char, embedding, how)


def _row(name, examples, probs, thresholds, words, gate_text=""):
    """A table row: threshold-free measures (argmax top-1 per language, the average
    precision of the theft probability), then the decisions with ``thresholds``."""
    from sklearn.metrics import average_precision_score

    topics = np.array([e.topic for e in examples])
    langs = np.array([e.lang for e in examples])
    argmax = np.array(TOPICS)[probs.argmax(axis=1)] == topics
    cells = [f"{argmax[langs == g].mean():.1%}" for g in ("zh", "en")]
    cells.append(f"{average_precision_score(topics == STOLEN, probs[:, TOPICS.index(STOLEN)]):.3f}")
    kind, first, _ = decide_many(probs, thresholds, words)
    result = report(examples, decisions(kind, first))
    t = thresholds
    used = f"{t.clear}, {t.none}, {t.safety}, {t.greeting}, {t.freeze_button}{gate_text}"
    return f"| {name} | {' | '.join(cells)} | {result.line()} | {used} |"


def tune() -> int:
    """Cross-validate on the training examples: print a table of model variants (each
    with the thresholds chosen on its own out-of-fold probabilities), the chosen ensemble
    tested on each writer's file after training on the others, and its thresholds and
    gate (copy them into ``router.DEFAULT_THRESHOLDS`` / ``E5_GATE``)."""
    examples = load_examples()
    vectors, _ = load_embeddings(examples, None)
    words = safety_word_mask(examples)
    oof: dict[tuple[str, float], np.ndarray] = {}
    for char_c in sorted({v[2] for v in VARIANTS}):
        oof[("char", char_c)] = cross_validate(examples, None, char_c=char_c)["char"]
    for e5_c in sorted({v[3] for v in VARIANTS}):
        oof[("embedding", e5_c)] = cross_validate(examples, vectors, e5_c=e5_c)["embedding"]
    print(f"5-fold cross-validation, {len(examples)} examples\n{TABLE_HEADER}")
    chosen: tuple[Thresholds, float, float, float] | None = None
    for name, model, char_c, e5_c, how, use_words, gate in VARIANTS:
        probs = _probabilities(oof, model, how, char_c, e5_c)
        mask = words if use_words else None
        thresholds = choose_thresholds(examples, probs, mask)
        gate_text = ""
        if gate is None:
            char = oof[("char", char_c)]
            gate = choose_gate(examples, char, probs, thresholds, mask)
            probs = gated(char, probs, gate)
            share = float(np.mean(char.max(axis=1) >= gate))
            gate_text = f"; gate {gate} (e5 skipped for {share:.0%})"
            chosen = (thresholds, gate, char_c, e5_c)
        print(_row(name, examples, probs, thresholds, mask, gate_text), flush=True)
    assert chosen is not None
    thresholds, gate, char_c, e5_c = chosen
    print("\nBy writer: trained on the other file(s), tested on this one, CV thresholds")
    print(TABLE_HEADER)
    writers = by_writer(examples)
    held = cross_validate(examples, vectors, splits=writers, char_c=char_c, e5_c=e5_c)
    for _, test in writers:
        part = [examples[i] for i in test]
        char, embedding = held["char"][test], held["embedding"][test]
        ensemble = gated(char, combine(char, embedding, ENSEMBLE), gate)
        for name, probs in (("char", char), ("embedding", embedding), ("ensemble", ensemble)):
            label = f"{name}, tested on {part[0].source} ({len(test)})"
            print(_row(label, part, probs, thresholds, words[test]), flush=True)
    print(f"\nchosen: {thresholds}; E5_GATE = {gate}")
    np.savez_compressed(OOF_FILE, **{f"{k}_{c}": v for (k, c), v in oof.items()})
    return 0


def evaluate(path: Path) -> int:
    """Report the char model, the embedding model and the router (the ensemble, the
    embedding skipped where the char model is sure) on a labelled file, each with its
    cross-validated thresholds."""
    examples = load_examples(path)
    texts = [e.text for e in examples]
    router = Router()
    assert router.embedding is not None
    words = safety_word_mask(examples)
    probabilities = {
        "char": router.char.proba(texts),
        "embedding": router.embedding.proba(texts),
        "router": router.probabilities(texts),
    }
    thresholds = {**CV_THRESHOLDS, "router": router.thresholds}
    for name, probs in probabilities.items():
        result = report(examples, decisions(*decide_many(probs, thresholds[name], words)[:2]))
        print(f"## {name}")
        for lang in ("zh", "en"):
            top1, in_scope = result.accuracy(lang), result.in_scope_top1(lang)
            print(
                f"{lang}: top-1 {top1:.1%} (in scope {in_scope:.1%}, {result.total[lang]}), "
                f"at once {result.at_once_rate(lang):.1%}, "
                f"out of scope answered {result.oos_answered_rate(lang):.1%} "
                f"({result.out_of_scope[lang]}), theft {result.theft[lang]}, "
                f"needless freeze questions {result.false_freeze[lang]}"
            )
        print(f"safety misroutes: {result.safety_misroutes}")
    print(f"(the embedding was computed for {router.embedded} of {len(texts)} messages)")
    final = report(examples, router.decide_all(texts))
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
