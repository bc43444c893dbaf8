"""One running instance per database."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import AlreadyRunning, InstanceLock

TRY_ACQUIRE = """
import sys
from storage import AlreadyRunning, InstanceLock
try:
    InstanceLock(sys.argv[1]).acquire()
except AlreadyRunning as exc:
    print(exc)
    sys.exit(3)
print("acquired")
"""


def try_in_subprocess(db_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", TRY_ACQUIRE, str(db_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_second_instance_in_same_process_is_refused(db_path: Path) -> None:
    first = InstanceLock(db_path)
    first.acquire()
    try:
        with pytest.raises(AlreadyRunning) as exc:
            InstanceLock(db_path).acquire()
        message = str(exc.value)
        assert message == f"Another instance is already running on {db_path} (pid {os.getpid()})"
    finally:
        first.release()


def test_second_instance_in_other_process_is_refused(db_path: Path) -> None:
    with InstanceLock(db_path):
        result = try_in_subprocess(db_path)
    assert result.returncode == 3, result.stderr
    assert str(db_path) in result.stdout
    assert f"(pid {os.getpid()})" in result.stdout


def test_release_lets_another_instance_start(db_path: Path) -> None:
    lock = InstanceLock(db_path)
    lock.acquire()
    lock.release()
    assert not lock.held
    result = try_in_subprocess(db_path)
    assert result.stdout.strip() == "acquired", result.stderr
    again = InstanceLock(db_path)
    again.acquire()
    again.release()


def test_lock_file_names_the_holder(db_path: Path) -> None:
    with InstanceLock(db_path) as lock:
        assert lock.path == Path(f"{db_path}.lock")
        assert lock.path.read_text().strip() == str(os.getpid())
