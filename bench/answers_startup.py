"""Start-up and query cost of the self-service answers (no Telegram, no network).

Prints JSON: jieba's dictionary load, the index build, and query latency percentiles over
the labelled questions (both languages). Run it in a fresh process so the load is real:

    .venv/bin/python bench/answers_startup.py

jieba caches its parsed dictionary in the temp directory; ``--cold`` removes that cache
first to measure a first start on a new machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tgbot.answers.search import AnswerIndex, Segmenter  # noqa: E402

DATA = ROOT / "tests" / "unit" / "data"


def main() -> None:
    """Measure and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="drop jieba's dictionary cache first")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the questions")
    args = parser.parse_args()
    if args.cold:
        for cache in Path(tempfile.gettempdir()).glob("jieba*.cache"):
            cache.unlink()
    segmenter = Segmenter()
    segmenter.load()
    started = time.perf_counter()
    index = AnswerIndex(segmenter=segmenter)
    index_build = time.perf_counter() - started
    questions = [
        line.split("\t")[2]
        for name in ("questions_tune.tsv", "questions_eval.tsv")
        for line in (DATA / name).read_text("utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    latencies = []
    for _ in range(args.rounds):
        for question in questions:
            began = time.perf_counter()
            index.search(question)
            latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    print(
        json.dumps(
            {
                "jieba_load_s": round(segmenter.load_seconds or 0.0, 3),
                "index_build_s": round(index_build, 3),
                "questions": len(questions),
                "queries": len(latencies),
                "query_ms_p50": round(statistics.median(latencies), 3),
                "query_ms_p95": round(latencies[int(len(latencies) * 0.95)], 3),
                "query_ms_max": round(latencies[-1], 3),
                "cold": args.cold,
            }
        )
    )


if __name__ == "__main__":
    main()
