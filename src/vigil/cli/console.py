"""What the command line shows a person: two consoles, one progress display per stage, logging.

A terminal gets a rich bar per stage; anything else (a CI log, a pipe, Prefect's worker) gets one
plain line per stage every few seconds instead of carriage-return animations. Per-item detail is
logged at DEBUG: on the console only with VIGIL_LOG_LEVEL=DEBUG, always in the workspace's log file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vigil.config.errors import is_user_error
from vigil.core.progress import ProgressCallback, periodic_lines

console = Console(stderr=True)
out = Console(soft_wrap=True)  # lines stay whole when piped (grep, logs, tests)

PLAIN_PROGRESS_EVERY_S = 10.0
NOISY_LOGGERS = ("httpx", "httpcore", "great_expectations", "urllib3", "filelock", "git", "dvc_objects", "websockets",
                 "PIL", "graphviz", "pydot", "tzlocal", "asyncio", "matplotlib", "aiosqlite")


def interactive() -> bool:
    """True when stderr is a terminal a person watches (bars); False in logs and pipes (plain lines)."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


@contextmanager
def progress_bar(job: str) -> Iterator[ProgressCallback]:
    """One progress display for a job, fed by its ``(event, done, total)`` callbacks."""
    if not interactive():
        yield periodic_lines(job, lambda line: console.print(line, markup=False, highlight=False),
                             PLAIN_PROGRESS_EVERY_S)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(job, total=None)

        def update(event: str, done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total, description=f"{job}: {event}")

        yield update


class _UserErrorFormatter(logging.Formatter):
    """Log lines without the traceback of a user error (Prefect logs every failed task with one); the
    command ends with the error's message, and the log file keeps the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_info[1] is not None and is_user_error(record.exc_info[1]):
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(record)


def setup_logging(level: str, workspace: Path | None = None, *, console_level: str | None = None) -> Path | None:
    """Console logging at ``console_level`` (default ``level``), and every DEBUG line in
    ``<workspace>/logs/vigil.log`` when a workspace is given; returns the log file's path."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        if getattr(handler, "_vigil", False):
            root.removeHandler(handler)
    shown = logging.StreamHandler(sys.stderr)
    shown.setLevel(console_level or level)
    shown.setFormatter(_UserErrorFormatter("%(levelname)s %(name)s: %(message)s"))
    shown._vigil = True  # type: ignore[attr-defined]
    root.addHandler(shown)
    log_file = None
    if workspace is not None:
        log_file = Path(workspace) / "logs" / "vigil.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        # rotated, so a workspace that runs every six hours for months keeps a bounded log
        kept = logging.handlers.RotatingFileHandler(log_file, maxBytes=20 * 2**20, backupCount=3, encoding="utf-8")
        kept.setLevel(logging.DEBUG)
        kept.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        kept._vigil = True  # type: ignore[attr-defined]
        root.addHandler(kept)
    # one line per HTTP request to Prefect's API or the gallery buries what matters
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not interactive():
        os.environ.setdefault("TQDM_DISABLE", "1")  # training stages: no carriage-return bars in logs
    return log_file
