"""Start-up and per-question cost of the question router (no Telegram, no network).

Prints JSON: the time to import the libraries, load the e5 engine, load both models (trained
at build time from ``tgbot/answers/data/`` by ``tgbot answers build``; ``--train`` trains
them here instead, as the bot does when the stored model is stale), and the latency of one
decision per question over the labelled questions (both languages, both frozen splits and
part of the training set), one at a time as the bot asks them.
Run it in a fresh process so the load is real:

    .venv/bin/python -m bench.router [--rounds 2] [--no-embeddings] [--train] [--small]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Measure and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions")
    parser.add_argument("--no-embeddings", action="store_true", help="the char model alone")
    parser.add_argument("--train", action="store_true", help="train at start, not load")
    parser.add_argument("--small", action="store_true", help="100 questions, once (smoke test)")
    args = parser.parse_args()
    started = time.perf_counter()
    import numpy  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    from bench._common import machine
    from tgbot.answers.router import Embedder, Router, load_examples

    imported = time.perf_counter() - started
    embedder = None
    if not args.no_embeddings:
        embedder = Embedder()
    began = time.perf_counter()
    examples = load_examples()
    router = Router(
        examples if args.train else None, use_embeddings=not args.no_embeddings, embedder=embedder
    )
    trained = time.perf_counter() - began
    total = time.perf_counter() - started
    data = ROOT / "tests" / "unit" / "data"
    questions = [
        e.text
        for path in (data / "router_eval.tsv", data / "questions_eval.tsv")
        for e in load_examples(path)
    ] + [e.text for e in examples][::5]
    if args.small:
        questions, args.rounds = questions[::20], 1
    router.decide("warm up")
    latencies = []
    for _ in range(args.rounds):
        for question in questions:
            began = time.perf_counter()
            router.decide(question)
            latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    print(
        json.dumps(
            {
                "bench": "router",
                "small": args.small,
                "model": "char" if args.no_embeddings else "ensemble",
                "import_s": round(imported, 3),
                "e5_load_s": round(embedder.load_seconds, 3) if embedder else None,
                "models_s": round(trained, 3),
                "trained_at_start": router.trained_at_start,
                "startup_s": round(total, 3),
                "examples": len(examples),
                "questions": len(questions),
                "decisions": len(latencies),
                "ms_p50": round(statistics.median(latencies), 2),
                "ms_p95": round(latencies[int(len(latencies) * 0.95)], 2),
                "ms_max": round(latencies[-1], 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "load_average": round(os.getloadavg()[0], 2),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
