"""What a test can assert about a pacer (a rate limit) from the times its requests reached a server."""

from __future__ import annotations

from collections.abc import Sequence


def assert_paced(arrivals: Sequence[float], interval: float) -> None:
    """Assert that ``arrivals`` (seconds) came at most one per ``interval``, as a server sees them.

    Any two arrivals k apart in order must be at least k intervals apart, less one interval of slack.
    The slack is for scheduling: on a loaded host one request can be held up for tens of milliseconds
    and then land just before the next one, so the gap between neighbours says little. A missing
    limit or a burst of three or more still fails, and the whole run must span its intervals.
    """
    times = sorted(arrivals)
    for i, early in enumerate(times):
        for k, late in enumerate(times[i + 1:], start=1):
            assert late - early >= (k - 1) * interval, (
                f"arrivals {i} and {i + k} came {late - early:.3f} s apart; a pace of one per {interval} s "
                f"allows no less than {(k - 1) * interval:.3f} s: {[round(t - times[0], 3) for t in times]}")
