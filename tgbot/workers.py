"""``tgbot run --workers N``: N bot processes on one webhook port (docs/postgres.md).

No front process: every worker binds the webhook port with ``SO_REUSEPORT`` and the kernel
spreads Telegram's connections over them; a worker that dies stops getting connections at
once (Telegram retries what it was sending, and another worker stores it). On several
hosts, a load balancer in front does the same. The supervisor here only starts the
workers, starts again one that dies, and passes a stop (Ctrl-C, SIGTERM) on to them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time

_LOGGER = logging.getLogger(__name__)

#: A worker that dies is started again after this many seconds (not in a tight loop).
RESTART_DELAY = 1.0


#: Seconds the workers have to stop by themselves before the supervisor passes the stop on.
FORWARD_AFTER = 5.0


def shared_port(listen: str, port: int) -> socket.socket:
    """Return a listening socket on ``listen:port`` that other processes may bind too."""
    from tornado.netutil import bind_sockets

    return bind_sockets(port, listen, reuse_port=True)[0]


def supervise(workers: int, argv: list[str]) -> int:
    """Run ``workers`` copies of ``python -m tgbot *argv`` until a stop signal; return 0 (1
    if a worker refused its configuration)."""
    stopping = False
    failed = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: list[subprocess.Popen | None] = [None] * workers
    started = [0.0] * workers
    reported = [False] * workers
    try:
        while not stopping:
            for index in range(workers):
                proc = procs[index]
                if proc is not None and proc.poll() is None:
                    continue
                if proc is not None:
                    if not reported[index]:  # once per exit, not at every look while waiting
                        reported[index] = True
                        _LOGGER.warning(
                            "Worker %d (pid %d) exited with %s; starting it again",
                            index + 1,
                            proc.pid,
                            proc.returncode,
                        )
                    if proc.returncode in (2, 3):  # a configuration error: not by restarting
                        stopping = failed = True
                        break
                    if time.monotonic() - started[index] < RESTART_DELAY:
                        continue
                procs[index] = subprocess.Popen(
                    [sys.executable, "-m", "tgbot", *argv],
                    env=os.environ.copy(),
                )
                started[index] = time.monotonic()
                reported[index] = False
                _LOGGER.info("Worker %d started (pid %d)", index + 1, procs[index].pid)
            time.sleep(0.2)
    finally:
        # A Ctrl-C in a terminal (or systemd's stop) signals the whole process group: the
        # workers got it too and are stopping gracefully. A second signal would make a worker
        # still starting up stop at once, so the stop is passed on only to workers still
        # running after a grace period (the supervisor alone was signalled).
        grace = time.monotonic() + FORWARD_AFTER
        while time.monotonic() < grace and any(p is not None and p.poll() is None for p in procs):
            time.sleep(0.1)
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            if proc is not None:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0
