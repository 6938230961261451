"""What every metric module shares: the nan-aware means and the joined (prediction, clip) type.

A score that has nothing to average is nan, never a numpy warning (:func:`mean`), and an average
over scores skips the nan ones (:func:`nanmean`). :data:`Joined` is what
:func:`vigil.core.evaluation.join_truth` returns: each prediction with the evaluation clip it is
about, the input of every clip-level metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vigil.core.evaluation import EvalClip, Prediction

NAN = float("nan")

#: Each prediction with the clip it is about (:func:`vigil.core.evaluation.join_truth`).
Joined = Sequence[tuple[Prediction, EvalClip]]


def mean(values: Sequence[float]) -> float:
    """Mean; nan when empty (without numpy's warning)."""
    return float(np.mean(values)) if len(values) else NAN


def nanmean(values: Sequence[float]) -> float:
    """Mean of the values that are not nan; nan when none is."""
    return mean([v for v in values if not math.isnan(v)])
