"""Start-up and per-question cost of the question router (no Telegram, no network).

Prints JSON: the time to import the libraries, load the e5 engine, load both models (trained
at build time from ``tgbot/answers/data/`` by ``tgbot answers build``; ``--train`` trains
them here instead, as the bot does when the stored model is stale), and the cost of one
decision per question over the labelled questions (both languages, both frozen splits and
part of the training set), one at a time as the bot asks them:

* ``ms_*``: wall-clock milliseconds per decision, the first time each question is seen
  (the e5 embedding is computed unless the char model is sure: ``embedded_share``);
* ``cpu_ms_*``: CPU milliseconds of the same decisions (``time.process_time``: what the
  decision costs the machine, whatever else runs on it);
* ``repeat_ms_*``: the later rounds over the same questions (the router keeps the
  embeddings of recent messages, as for people who repeat "hi" or "转人工").

Run it in a fresh process so the load is real:

    .venv/bin/python -m bench.router [--rounds 2] [--no-embeddings] [--train] [--small]
        [--threads N] [--gate G]
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


def _percentiles(values: list[float], prefix: str) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}
    return {
        f"{prefix}p50": round(statistics.median(values), 2),
        f"{prefix}p95": round(values[int(len(values) * 0.95)], 2),
        f"{prefix}max": round(values[-1], 2),
    }


def main() -> None:
    """Measure and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions")
    parser.add_argument("--no-embeddings", action="store_true", help="the char model alone")
    parser.add_argument("--train", action="store_true", help="train at start, not load")
    parser.add_argument("--small", action="store_true", help="100 questions, once (smoke test)")
    parser.add_argument("--threads", type=int, help="OpenMP threads of the e5 engine")
    parser.add_argument("--gate", type=float, help="char confidence that skips e5 (1.01: never)")
    args = parser.parse_args()
    started = time.perf_counter()
    import numpy  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    from bench._common import machine
    from tgbot.answers.router import E5_GATE, Embedder, Router, load_examples

    imported = time.perf_counter() - started
    embedder = None
    if not args.no_embeddings:
        if args.threads:
            Embedder.THREADS = args.threads
        embedder = Embedder()
    began = time.perf_counter()
    examples = load_examples()
    router = Router(
        examples if args.train else None,
        use_embeddings=not args.no_embeddings,
        embedder=embedder,
        gate=E5_GATE if args.gate is None else args.gate,
    )
    trained = time.perf_counter() - began
    total = time.perf_counter() - started
    data = ROOT / "tests" / "unit" / "data"
    questions = [
        e.text
        for path in (data / "router_eval.tsv", data / "questions_eval.tsv")
        for e in load_examples(path)
    ] + [e.text for e in examples][::5]
    questions = list(dict.fromkeys(questions))  # each first seen once
    if args.small:
        questions, args.rounds = questions[::20], 1
    router.decide("warm up")
    router.embedded = embedded = 0
    wall: list[list[float]] = []
    cpu: list[float] = []
    for round_number in range(args.rounds):
        wall.append([])
        for question in questions:
            began, began_cpu = time.perf_counter(), time.process_time()
            router.decide(question)
            wall[-1].append((time.perf_counter() - began) * 1000)
            if round_number == 0:
                cpu.append((time.process_time() - began_cpu) * 1000)
        if round_number == 0:
            embedded = router.embedded
    print(
        json.dumps(
            {
                "bench": "router",
                "small": args.small,
                "model": "char" if args.no_embeddings else "ensemble",
                "e5_threads": Embedder.THREADS if embedder else None,
                "gate": router.gate,
                "import_s": round(imported, 3),
                "e5_load_s": round(embedder.load_seconds, 3) if embedder else None,
                "models_s": round(trained, 3),
                "trained_at_start": router.trained_at_start,
                "startup_s": round(total, 3),
                "examples": len(examples),
                "questions": len(questions),
                "decisions": sum(len(r) for r in wall),
                "embedded_share": round(embedded / len(questions), 3),
                **_percentiles(wall[0], "ms_"),
                **_percentiles(cpu, "cpu_ms_"),
                **_percentiles([ms for r in wall[1:] for ms in r], "repeat_ms_"),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "load_average": round(os.getloadavg()[0], 2),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
