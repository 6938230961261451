"""The progress callback every long step accepts: ``progress(event, done, total)``.

``event`` names what just happened ("stored", "quarantined", "ingest", …), ``done`` counts items so
far and ``total`` is the expected count, or None while it is unknown (a crawl discovers as it goes).
The CLI turns these calls into one bar or periodic line per stage; flows pass nothing.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, "int | None"], None]
