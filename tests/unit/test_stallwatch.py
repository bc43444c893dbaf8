"""The opt-in stall watchdog (tests/support/stallwatch.py) names what blocked the loop."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKED = """
import asyncio
import time


async def test_a_loop_blocked_by_a_sleep():
    time.sleep(3.5)  # the event loop cannot turn


async def test_a_loop_that_turns():
    await asyncio.sleep(2.5)
"""


def test_a_stalled_loop_is_reported_with_the_blocking_line(tmp_path) -> None:
    (tmp_path / "test_blocked.py").write_text(BLOCKED)
    report = tmp_path / "stalls.txt"
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "tests.support.stallwatch",
            "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "asyncio_mode=auto",
            "--rootdir", str(tmp_path), str(tmp_path / "test_blocked.py"),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "STALLWATCH_FILE": str(report)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    text = report.read_text()
    assert "event loop stalled for" in text
    assert "time.sleep(3.5)" in text  # the line that blocked it, in the test's own thread
    assert "asyncio.sleep(2.5)" not in text  # a loop that awaits is not a stall
