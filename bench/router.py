"""Start-up and per-question cost of the question router (no Telegram, no network).

Prints JSON: the time to import the libraries, load the e5 engine, train both models from
``tgbot/answers/data/`` (the embeddings of the examples are stored, so only the training
runs), and the latency of one decision per question over the labelled questions (both
languages, both frozen splits and the training set), one at a time as the bot asks them.
Run it in a fresh process so the load is real:

    .venv/bin/python -m bench.router [--rounds 2] [--no-embeddings] [--small]
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
    router = Router(use_embeddings=not args.no_embeddings, embedder=embedder)
    trained = time.perf_counter() - began
    total = time.perf_counter() - started
    data = ROOT / "tests" / "unit" / "data"
    questions = [
        e.text
        for path in (data / "router_eval.tsv", data / "questions_eval.tsv")
        for e in load_examples(path)
    ] + [e.text for e in load_examples()][::5]
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
                "train_s": round(trained, 3),
                "startup_s": round(total, 3),
                "examples": len(router.examples),
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
