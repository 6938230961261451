"""Request pacing shared by every client Vigil runs against someone's server (crawler, teacher)."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """Spaces request starts at least ``interval`` seconds apart, shared by all tasks using it.

    Even spacing rather than a token bucket: a server sees a steady trickle, never a burst after
    an idle spell. ``interval`` may be widened while in use (e.g. by a robots.txt Crawl-delay).
    """

    def __init__(self, rate: float, per_s: float = 60.0) -> None:
        self.interval = per_s / rate if rate > 0 else 0.0
        self._next_at = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.interval <= 0:
            return
        # The wait happens inside the lock and the next start is set from when this one really
        # starts: slots booked ahead would all come due together after a stall of the event loop
        # (a busy or starved host) and go out as one burst (seen in CI: four requests within 4 ms).
        async with self._lock:
            wait = self._next_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_at = time.monotonic() + self.interval
