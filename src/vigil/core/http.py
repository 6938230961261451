"""HTTP header values every client of someone else's server reads the same way (crawler, teacher).

Pure parsing, no I/O: the clients that act on these values live in :mod:`vigil.crawl.fetch` and
:mod:`vigil.annotate.teacher`.
"""

from __future__ import annotations

import email.utils
import time
from datetime import timezone


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date; None if absent
    or unparseable. A date in the past means "now" (0)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now_ts = time.time() if now is None else now
    return max(0.0, when.timestamp() - now_ts)
