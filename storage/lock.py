"""One running bot instance per database file."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from storage.errors import AlreadyRunning


class InstanceLock:
    """An exclusive ``flock`` on ``<db path>.lock``, held while the application runs.

    Two instances on one database would both poll getUpdates and fight with
    409 Conflict; the second one refuses to start instead. The kernel drops
    the lock when the process dies, so a crash never leaves a stale lock. The
    file is never deleted: unlinking it would let a third process lock a new
    inode while the first still holds the old one.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(os.path.abspath(db_path))
        self.path = self.db_path.with_name(self.db_path.name + ".lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and write our pid into it, or raise AlreadyRunning."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(
                f"Another instance is already running on {self.db_path} (pid {pid})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Release the lock; safe to call when not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            # Clear the pid so nobody reads a dead process id as the holder.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text or "unknown"
