"""One writer at a time: an advisory lock next to the workspace database.

Commands that write the workspace take it for their whole run. The holder (pid, command,
start time) is written into the lock file, so a second writer that gives up can say who
holds it. The operating system releases the lock when its holder exits, even when killed,
so a stale lock file never blocks anyone.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

POLL_SECONDS = 0.1


class WorkspaceBusy(RuntimeError):
    """Another command holds the workspace write lock; the message names it."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another radar command (holder unknown)"
    return f"`radar {info.get('command', '?')}` (pid {info.get('pid', '?')}, started {info.get('started', '?')})"


@contextmanager
def workspace_lock(
    database: Path, command: str, wait_seconds: float, *, setting: str = "ingest.lock_wait_seconds"
) -> Iterator[None]:
    """Hold the write lock of the workspace `database` while the block runs.

    Waits up to `wait_seconds` for another holder to finish, then raises WorkspaceBusy,
    whose message suggests raising `setting` (the setting `wait_seconds` came from).
    """
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WorkspaceBusy(
                        f"the workspace {database} is being written by {_holder(fd)}; "
                        f"waited {wait_seconds:g}s. Run this again when it has finished "
                        f"(or raise {setting})."
                    ) from None
                time.sleep(POLL_SECONDS)
        info = {
            "pid": os.getpid(),
            "command": command,
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
