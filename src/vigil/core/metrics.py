"""Detection metrics as small pure functions (Skyra's paired protocol and plain scores).

Labels are 1 = fake, 0 = real; predictions are 0/1, or None for an unparsable answer, which counts
as wrong (Skyra's protocol).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

__all__ = ["paired_balanced_accuracy", "recall", "roc_auc"]


def _correct(prediction: int | None, label: int) -> bool:
    return prediction is not None and int(prediction) == int(label)


def paired_balanced_accuracy(predictions: Sequence[int | None], labels: Sequence[int],
                             pairs: Sequence[str]) -> float:
    """Mean over pairs of the pair's accuracy (a real clip and its fake weigh the same).

    Clips without a partner still count as a pair of one. Unparsable answers (None) are wrong.

    >>> paired_balanced_accuracy([1, 0, 1, 1], [1, 0, 1, 0], ["a", "a", "b", "b"])
    0.75
    >>> paired_balanced_accuracy([None, 0], [1, 0], ["a", "a"])
    0.5
    """
    if not (len(predictions) == len(labels) == len(pairs)):
        raise ValueError("predictions, labels and pairs must have the same length")
    if not labels:
        return float("nan")
    by_pair: dict[str, list[bool]] = defaultdict(list)
    for prediction, label, pair in zip(predictions, labels, pairs, strict=True):
        by_pair[pair].append(_correct(prediction, label))
    return float(np.mean([np.mean(v) for v in by_pair.values()]))


def recall(predictions: Sequence[int | None], labels: Sequence[int], positive: int = 1) -> float:
    """Share of clips with ``label == positive`` predicted as such (nan when there are none).

    >>> recall([1, 0, None, 1], [1, 1, 1, 0])
    0.3333333333333333
    """
    hits = [_correct(p, y) for p, y in zip(predictions, labels, strict=True) if int(y) == positive]
    return float(np.mean(hits)) if hits else float("nan")


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
