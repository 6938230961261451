"""The progress callback every long step accepts: ``progress(event, done, total)``.

``event`` names what just happened ("stored", "quarantined", "ingest", …), ``done`` counts items so
far and ``total`` is the expected count, or None while it is unknown (a crawl discovers as it goes).
The CLI turns these calls into a bar per stage on a terminal; logs and flows get :func:`periodic_lines`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressCallback = Callable[[str, int, "int | None"], None]


def periodic_lines(job: str, emit: Callable[[str], None], every_s: float = 10.0,
                   clock: Callable[[], float] = time.monotonic) -> ProgressCallback:
    """A callback that emits ``"job: event done/total"`` at most every ``every_s`` seconds, plus the
    line that reaches the total, so a log shows a stage's progress without one line per item.

    >>> lines = []
    >>> ticks = iter([0.0, 1.0, 2.0, 12.0, 13.0])
    >>> update = periodic_lines("ingest", lines.append, every_s=10, clock=lambda: next(ticks))
    >>> for done in range(1, 6):
    ...     update("ingest", done, 5)
    >>> lines
    ['ingest: ingest 1/5', 'ingest: ingest 4/5', 'ingest: ingest 5/5']
    """
    last: list[float | None] = [None]

    def update(event: str, done: int, total: int | None) -> None:
        now = clock()
        finished = total is not None and done >= total
        if finished or last[0] is None or now - last[0] >= every_s:
            last[0] = now
            emit(f"{job}: {event} {done}{f'/{total}' if total is not None else ''}")

    return update
