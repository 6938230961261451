"""Workspace locks: one run of a job per workspace at a time, across processes and threads.

A lock is an ``flock`` on ``<workspace>/locks/<name>.lock``. The kernel drops it when its process
dies, SIGKILL included, so a crashed run never leaves a stale lock behind. While held, the file
names its holder (pid, host, command, since) so that a refused run can say who is in the way.

Jobs take the lock of what they write (``crawl``, ``ingest``, ``annotate``, ``train``); DVC
commands queue on their repository's own lock (:func:`vigil.io.dvc.repo_lock`). A second run either
waits (``wait_s``) or is refused at once with :class:`WorkspaceBusy` (exit 7), never left to race.
Nesting the same lock in one thread is allowed (a flow step that calls a job that takes it again).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from vigil.config.errors import ConflictError

LOCKS_DIR = "locks"
_held = threading.local()


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    command: str
    since: str

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since} ({self.command})"


class WorkspaceBusy(ConflictError):
    """Another run holds the lock: it would race this one over the same files."""

    def __init__(self, name: str, path: Path, holder: LockHolder | None, waited_s: float) -> None:
        self.name, self.path, self.holder = name, path, holder
        who = f"held by {holder}" if holder else "held by another process"
        waited = f" after waiting {waited_s:.0f} s" if waited_s else ""
        super().__init__(f"another {name} run is using this workspace ({path}, {who}){waited}: wait for it to "
                         f"finish, or stop it; a killed run releases the lock by itself")


def lock_path(workspace: str | Path, name: str) -> Path:
    return Path(workspace) / LOCKS_DIR / f"{name}.lock"


def read_holder(path: Path) -> LockHolder | None:
    """Who holds (or last held) the lock at ``path``; None when the file says nothing readable."""
    try:
        return LockHolder(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _depths() -> dict[str, int]:
    if not hasattr(_held, "depths"):
        _held.depths = {}
    return _held.depths


@contextmanager
def workspace_lock(workspace: str | Path, name: str, *, wait_s: float = 0.0, poll_s: float = 0.1) -> Iterator[Path]:
    """Hold the ``name`` lock of ``workspace``; wait up to ``wait_s`` for it, then raise :class:`WorkspaceBusy`."""
    path = lock_path(workspace, name).absolute()
    depths = _depths()
    if depths.get(str(path)):
        depths[str(path)] += 1
        try:
            yield path
        finally:
            depths[str(path)] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    while (fh := try_flock(path)) is None:
        waited = time.monotonic() - start
        if waited >= wait_s:
            raise WorkspaceBusy(name, path, read_holder(path), waited if wait_s else 0.0)
        time.sleep(poll_s)
    try:
        depths[str(path)] = 1
        try:
            yield path
        finally:
            depths.pop(str(path), None)
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def try_flock(path: Path) -> IO[str] | None:
    """The open lock file at ``path``, exclusively locked and naming this process; None when another holds it.

    Opened for appending, not truncated: truncating before the lock is ours would erase the holder's name."""
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    holder = LockHolder(os.getpid(), socket.gethostname(), " ".join(sys.argv)[:200],
                        datetime.now(timezone.utc).isoformat(timespec="seconds"))
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(holder.__dict__))
    fh.flush()
    return fh


__all__ = ["LockHolder", "WorkspaceBusy", "lock_path", "read_holder", "try_flock", "workspace_lock"]
