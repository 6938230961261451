"""Crawl state on local disk: what each media URL came to, so that a killed crawl resumes.

SQLite under the state dir, one row per media URL (``pending`` → ``done`` | ``failed`` |
``skipped``, the reason, the number of attempts). Every change is committed at once, so a crawl
killed with SIGKILL loses at most the item in flight, which is ``pending`` and simply done again.
``done`` URLs (stored, duplicate, near-duplicate or quarantined) are never fetched again;
``failed`` ones are retried by the next run; ``skipped`` ones (robots, blocked address) are judged
again, since robots.txt may change.

The state is a cache of progress, not the record: the store's ``provenance/`` records are the
truth, and a crawl with a lost state dir redoes the downloads but writes nothing twice.

``crawl.lock`` is an ``flock`` (the kernel drops it when its process dies, SIGKILL included) whose
file names the holder, as :mod:`vigil.io.locks` does, so a refused crawl says who is in the way. It is
not re-entrant: a second :class:`CrawlState` on one dir, even in the same thread, is refused, since
it would empty the first one's ``tmp/``.
"""

from __future__ import annotations

import fcntl
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vigil.io.locks import LockHolder, WorkspaceBusy, read_holder, try_flock

STATUSES = ("pending", "done", "failed", "skipped")


class CrawlLocked(WorkspaceBusy):
    """Another crawl holds this state dir; two crawls on one state would race each other (exit 7)."""

    def __init__(self, state_dir: Path, holder: LockHolder | None) -> None:
        super().__init__("crawl", state_dir / LOCK_FILE, holder, 0.0)


LOCK_FILE = "crawl.lock"


@dataclass(frozen=True)
class UrlState:
    url: str
    source: str
    status: str
    reason: str | None
    detail: str | None
    attempts: int
    updated_at: str


class CrawlState:
    """The state dir: ``crawl.sqlite`` (URL table), ``crawl.lock`` (one crawl at a time) and
    ``tmp/`` (downloads in progress; emptied at open, since anything there is a dead run's)."""

    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fh = _lock(self.dir / LOCK_FILE)
        self.tmp_dir = self.dir / "tmp"
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir()
        self._db = sqlite3.connect(self.dir / "crawl.sqlite", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS urls (url TEXT PRIMARY KEY, source TEXT NOT NULL,"
            " status TEXT NOT NULL, reason TEXT, detail TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
            " updated_at TEXT NOT NULL)"
        )

    def close(self) -> None:
        self._db.close()
        fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()

    def __enter__(self) -> CrawlState:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def get(self, url: str) -> UrlState | None:
        row = self._db.execute(
            "SELECT url, source, status, reason, detail, attempts, updated_at FROM urls WHERE url = ?",
            (url,)).fetchone()
        return UrlState(*row) if row else None

    def begin(self, url: str, source: str) -> None:
        """Mark ``url`` pending and count one more attempt."""
        self._db.execute(
            "INSERT INTO urls (url, source, status, attempts, updated_at) VALUES (?, ?, 'pending', 1, ?)"
            " ON CONFLICT(url) DO UPDATE SET status='pending', attempts=attempts+1, updated_at=excluded.updated_at",
            (url, source, _now()))

    def finish(self, url: str, status: str, reason: str | None = None, detail: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; one of {STATUSES}")
        self._db.execute("UPDATE urls SET status=?, reason=?, detail=?, updated_at=? WHERE url=?",
                         (status, reason, detail, _now(), url))

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT status, COUNT(*) FROM urls GROUP BY status").fetchall())

    def all(self) -> list[UrlState]:
        rows = self._db.execute(
            "SELECT url, source, status, reason, detail, attempts, updated_at FROM urls ORDER BY url").fetchall()
        return [UrlState(*row) for row in rows]


def _lock(path: Path):
    """The open, flocked lock file naming this process; :class:`CrawlLocked` naming the holder."""
    fh = try_flock(path)
    if fh is None:
        raise CrawlLocked(path.parent.absolute(), read_holder(path))
    return fh


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def remove_state(state_dir: str | Path) -> None:
    """Forget all progress (the store keeps every record; a new crawl re-downloads, writes nothing twice)."""
    for name in ("crawl.sqlite", "crawl.sqlite-wal", "crawl.sqlite-shm", "phash.sqlite"):
        (Path(state_dir) / name).unlink(missing_ok=True)
    shutil.rmtree(Path(state_dir) / "tmp", ignore_errors=True)


__all__ = ["CrawlLocked", "CrawlState", "STATUSES", "UrlState", "remove_state"]
