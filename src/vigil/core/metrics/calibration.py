"""Metrics on the fake probability: how well it ranks clips and how well it is calibrated.

These use only the clips whose prediction carries a ``fake_probability``: ranking quality as
ROC-AUC and average precision (computed as scikit-learn does), and calibration as reliability bins
(equal-width bins on P(fake) with each bin's mean probability and fake rate) and the expected
calibration error over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vigil.core.metrics.common import NAN

__all__ = ["average_precision", "expected_calibration_error", "reliability_bins", "roc_auc"]


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (ties count one half); nan without both classes.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def average_precision(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Average precision as scikit-learn computes it: Σ (R_n − R_{n−1}) · P_n over the distinct score
    thresholds, highest first (step-wise, no interpolation; tied scores form one threshold).
    nan without a fake.

    >>> round(average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]), 4)  # 0.5·1 + 0.5·(2/3)
    0.8333
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    if not (y == 1).any():
        return NAN
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tps = np.cumsum(y == 1)[last]
    precision = tps / (last + 1)
    recall_ = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall_]) * precision))


def _bin_index(probabilities: np.ndarray, n_bins: int) -> np.ndarray:
    return np.clip(np.floor(probabilities * n_bins).astype(int), 0, n_bins - 1)


def reliability_bins(probabilities: Sequence[float], labels: Sequence[int], n_bins: int = 10) -> list[dict]:
    """Equal-width bins on P(fake), [lo, hi) with the last one closed; one dict per non-empty bin
    with ``lo``, ``hi``, ``count``, ``mean_probability`` and ``fake_rate``.

    >>> [(b["lo"], b["count"], b["fake_rate"]) for b in reliability_bins([0.1, 0.2, 0.9], [0, 1, 1], 2)]
    [(0.0, 2, 0.5), (0.5, 1, 1.0)]
    """
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=int)
    if len(p) != len(y):
        raise ValueError("probabilities and labels must have the same length")
    index = _bin_index(p, n_bins)
    out = []
    for b in range(n_bins):
        members = index == b
        if members.any():
            out.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": int(members.sum()),
                        "mean_probability": float(p[members].mean()),
                        "fake_rate": float((y[members] == 1).mean())})
    return out


def expected_calibration_error(probabilities: Sequence[float], labels: Sequence[int], n_bins: int = 10) -> float:
    """ECE = Σ_bins |bin| / N · |mean P(fake) − fake rate| over equal-width bins; nan when empty.

    >>> round(expected_calibration_error([0.1, 0.2, 0.9], [0, 1, 1], 2), 4)  # 2/3·0.35 + 1/3·0.1
    0.2667
    """
    bins = reliability_bins(probabilities, labels, n_bins)
    n = sum(b["count"] for b in bins)
    if not n:
        return NAN
    return float(sum(b["count"] / n * abs(b["mean_probability"] - b["fake_rate"]) for b in bins))
