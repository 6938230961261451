"""Latency of the predictions: the mean, median and 95th percentile of per-clip seconds.

Each prediction records how long the model took on its clip (``latency_s``); the evaluation report
(:mod:`vigil.core.metrics.summary`) carries their summary beside the quality metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vigil.core.metrics.common import NAN

__all__ = ["latency_summary"]


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    """Mean, median and 95th percentile (linear interpolation) of per-clip latencies, seconds.

    >>> {k: round(v, 4) for k, v in latency_summary([1.0, 2.0, 3.0, 4.0]).items()}
    {'mean_s': 2.5, 'p50_s': 2.5, 'p95_s': 3.85}
    """
    if not len(latencies):
        return {"mean_s": NAN, "p50_s": NAN, "p95_s": NAN}
    x = np.asarray(latencies, dtype=float)
    return {"mean_s": float(x.mean()), "p50_s": float(np.percentile(x, 50)),
            "p95_s": float(np.percentile(x, 95))}
