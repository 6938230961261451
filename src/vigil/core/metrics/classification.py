"""Label-level detection scores: how often the Real/Fake answer is right, in several ways.

Labels are 1 = fake, 0 = real; predictions are 0/1, or None for an unparsable answer, which counts
as wrong (Skyra's protocol). Here are plain accuracy, recall, F1 and Ivy-Fake's macro F1, the false
positive rate on real clips, Skyra's paired balanced accuracy (a real clip and its fake weigh the
same), the confusion matrix, and :func:`answer_label`, which turns a prediction's answer into a label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from vigil.core.evaluation import Prediction
from vigil.core.metrics.common import NAN, mean, nanmean

__all__ = ["accuracy", "answer_label", "confusion_matrix", "f1_score", "false_positive_rate",
           "macro_f1", "paired_balanced_accuracy", "recall"]


ANSWER_COLUMNS = ("Real", "Fake", "Error")


def is_correct(prediction: int | None, label: int) -> bool:
    """Whether an answer matches its label; an unparsable answer (None) never does."""
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
        by_pair[pair].append(is_correct(prediction, label))
    return float(np.mean([np.mean(v) for v in by_pair.values()]))


def recall(predictions: Sequence[int | None], labels: Sequence[int], positive: int = 1) -> float:
    """Share of clips with ``label == positive`` predicted as such (nan when there are none).

    >>> recall([1, 0, None, 1], [1, 1, 1, 0])
    0.3333333333333333
    """
    hits = [is_correct(p, y) for p, y in zip(predictions, labels, strict=True) if int(y) == positive]
    return float(np.mean(hits)) if hits else float("nan")


def accuracy(predictions: Sequence[int | None], labels: Sequence[int]) -> float:
    """Share of clips answered correctly (Ivy-Fake's overall accuracy); None is wrong; nan when empty.

    >>> accuracy([1, 0, None, 1], [1, 0, 1, 0])
    0.5
    """
    return mean([is_correct(p, y) for p, y in zip(predictions, labels, strict=True)])


def f1_score(predictions: Sequence[int | None], labels: Sequence[int], positive: int = 1) -> float:
    """F1 of one class. An unparsable answer (None) counts as the opposite of its label: a missed
    positive (FN) on a positive clip, a false alarm (FP) on a negative one. nan when the class
    appears neither in the labels nor in the answers.

    >>> f1_score([1, None, 1, 0], [1, 1, 0, 0])  # TP 1, FN 1, FP 1
    0.5
    >>> f1_score([1, None, 1, 0], [1, 1, 0, 0], positive=0)  # TP 1, FN 1 (the 1), FP 1 (the None)
    0.5
    """
    tp = fp = fn = 0
    for p, y in zip(predictions, labels, strict=True):
        if int(y) == positive:
            tp += is_correct(p, y)
            fn += not is_correct(p, y)
        elif not is_correct(p, y):  # answered `positive`, or unparsable
            fp += 1
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else NAN


def macro_f1(predictions: Sequence[int | None], labels: Sequence[int]) -> float:
    """Ivy-Fake's macro F1: the mean of the F1 of Fake and the F1 of Real (unparsable = wrong, i.e. it
    counts as the opposite of its label). A class absent from both labels and answers is skipped.

    >>> round(macro_f1([1, None, 1, 0], [1, 1, 0, 0]), 4)
    0.5
    >>> macro_f1([1, 1], [1, 1])
    1.0
    """
    return nanmean([f1_score(predictions, labels, 1), f1_score(predictions, labels, 0)])


def false_positive_rate(predictions: Sequence[int | None], labels: Sequence[int]) -> float:
    """Share of real clips (label 0) answered Fake *or unparsable*: an unparsable answer on a real
    clip counts as a false alarm. nan without real clips.

    >>> false_positive_rate([0, 1, None, 1], [0, 0, 0, 1])
    0.6666666666666666
    """
    return mean([not is_correct(p, y) for p, y in zip(predictions, labels, strict=True) if int(y) == 0])


def answer_label(answer: str) -> int | None:
    """A prediction's answer as a label: Fake → 1, Real → 0, Error (unparsable) → None.

    >>> answer_label("Fake"), answer_label("Real"), answer_label("Error")
    (1, 0, None)
    """
    return {"Fake": 1, "Real": 0}.get(answer)


def answers_and_labels(predictions: Sequence[Prediction]) -> tuple[list[int | None], list[int]]:
    """The predictions' answers as labels (None when unparsable) and their ground-truth labels."""
    return [answer_label(p.answer) for p in predictions], [int(p.gt == "Fake") for p in predictions]


def confusion_matrix(predictions: Sequence[Prediction]) -> dict[str, dict[str, int]]:
    """Counts with rows = ground truth (Real, Fake) and columns = answer (Real, Fake, Error)."""
    out = {gt: dict.fromkeys(ANSWER_COLUMNS, 0) for gt in ("Real", "Fake")}
    for p in predictions:
        out[p.gt][p.answer] += 1
    return out
