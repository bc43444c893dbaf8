"""Child processes that never outlive their test.

Every child starts in a process group of its own (``start_new_session``), and the group is
killed when the test ends, passed or failed: a failed assert, a timeout or an exception never
leaves an orphaned ``tgbot run`` holding its port and database, nor the grandchildren a
benchmark starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (nothing if it is gone).

    Linux keeps a group's id from being reused while any member lives, so this never hits
    an unrelated process: either the group still exists or the call finds nothing.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def child_pids(pid: int) -> set[int]:
    """Return the pids of the live (not zombie) children of process ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if int(ppid) == pid and state != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Return whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class ChildProcesses:
    """Start children in their own process groups; :meth:`aclose` kills every group."""

    def __init__(self) -> None:
        self._procs: list[asyncio.subprocess.Process] = []

    async def spawn(self, *argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        """Start ``argv`` (``asyncio.create_subprocess_exec`` arguments) in a new group."""
        proc = await asyncio.create_subprocess_exec(*argv, start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    async def aclose(self) -> None:
        """Kill every child's group, then reap the children."""
        procs, self._procs = self._procs, []
        for proc in procs:
            kill_group(proc.pid)  # also when the leader exited: its children may not have
        for proc in procs:
            await proc.wait()


@contextlib.contextmanager
def popen_group(argv: list[str], **kwargs: Any) -> Iterator[subprocess.Popen]:
    """Run ``argv`` (``subprocess.Popen`` arguments) in a new group; kill the group on exit."""
    proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
    try:
        yield proc
    finally:
        kill_group(proc.pid)
        proc.wait()


def socket_owner(local_port: int, remote_port: int, pids: set[int]) -> int | None:
    """Return which of ``pids`` owns the TCP socket from ``local_port`` to ``remote_port`` on
    127.0.0.1 (the client end of a connection a test server sees), from /proc; None if none."""
    inode = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.split(":")[1], 16) == local_port
                and int(remote.split(":")[1], 16) == remote_port
            ):
                inode = fields[9]
                break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    return None
