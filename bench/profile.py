"""Profile the capacity run: one open-loop trial (``bench.capacity``) with the bot's process
under pyinstrument (cProfile when pyinstrument is not installed). Prints the JSON summary; the
full text report and an HTML flame view are written next to ``--out``.

pyinstrument samples the main thread: the bot's own Python (handlers, PTB, the emulator
client, JSON) shows up by function; SQLite runs in aiosqlite's thread and shows up only as
the waits for it.

    python -m bench.profile                      # light flow, 16 users/s for 20 s
    python -m bench.profile --flow wallet --rate 8 --out /tmp/profile.txt
    python -m bench.profile --small              # seconds, for CI
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import emit, machine, parser, runtime_flags, runtime_options
from bench.capacity import SLOW_WALLET, trial


def top_frames(report: str, limit: int = 25) -> list[str]:
    """Return the report's heaviest lines (pyinstrument's flat list, or cProfile's table),
    without the event loop's idle wait."""
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    timed = [
        line
        for line in lines
        if re.match(r"^\d+\.\d+ ", line) and "epoll.poll" not in line and "select" not in line
    ]
    return (timed or lines)[:limit]


def read_reports(out: Path) -> tuple[str, str]:
    """Return the flat self-time and total-time reports (the tree report as a fallback)."""
    flat_self = Path(str(out) + ".self.txt")
    flat_total = Path(str(out) + ".total.txt")
    report = flat_self.read_text() if flat_self.exists() else ""
    if not report and out.exists():
        report = out.read_text()
    total = flat_total.read_text() if flat_total.exists() else ""
    return report, total


async def main_async(args: Any) -> dict[str, Any]:
    out = Path(args.out or Path(tempfile.gettempdir()) / "tgbot-capacity-profile.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.small:
        kw = {
            "duration": 1.5,
            "think": (0.2, 0.4),
            "wallet": {"lo": 0.01, "hi": 0.05},
            "drain": 20.0,
        }
        rate = 3.0
    else:
        kw = {
            "duration": args.duration,
            "think": (1.0, 3.0),
            "wallet": dict(SLOW_WALLET),
            "drain": 60.0,
        }
        rate = args.rate
    started = time.monotonic()
    result = await trial(
        "bot", args.flow, rate, seed=args.seed, profile=str(out), **runtime_flags(args), **kw
    )
    report, total = read_reports(out)
    try:
        import pyinstrument  # noqa: F401

        profiler = "pyinstrument"
    except ImportError:
        profiler = "cProfile"
    return {
        "bench": "profile",
        "small": args.small,
        "machine": machine(),
        "profiler": profiler,
        "report": str(out),
        "html": str(out) + ".html" if profiler == "pyinstrument" else None,
        "trial": {
            k: result[k]
            for k in ("rate_users_per_s", "updates", "updates_per_s", "latency_ms", "walks")
        },
        "flow": args.flow,
        "event_loop": args.loop,
        "gc": args.gc,
        "bot_cpu_ms_per_update": result["cpu_ms_per_update"],
        "top_self_s": top_frames(report, args.top),
        "top_total_s": [line for line in top_frames(total, 200) if "bench/" not in line][
            : args.top
        ],
        "duration_s": round(time.monotonic() - started, 1),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--flow", default="light", choices=("light", "wallet"), help="which walk")
    p.add_argument("--rate", type=float, default=16.0, help="users/s")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals")
    p.add_argument("--out", help="where to write the text report")
    p.add_argument("--top", type=int, default=40, help="lines of the report in the JSON")
    runtime_options(p)  # the bot's
    args = p.parse_args()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
