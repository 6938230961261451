"""Metrics on the text a model writes: whether it follows the grammar, and its explanations.

Format compliance is the share of outputs that follow the answer grammar end to end with a parsable
answer; explanation quality is ROUGE-L (longest-common-subsequence F-measure on lower-cased word
tokens) of each response against the clip's reference explanation, where the clip has one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vigil.core.evaluation import Prediction
from vigil.core.metrics.common import Joined, mean

__all__ = ["explanation_rouge_l", "format_compliance", "rouge_l"]


def format_compliance(predictions: Sequence[Prediction]) -> float:
    """Share of predictions whose whole output follows the grammar and whose answer parsed; nan when
    empty."""
    return mean([p.format_ok and p.answer != "Error" for p in predictions])


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure (β = 1) on lower-cased word tokens (``\\w+``) via the longest common
    subsequence; 0 when either text has no token.

    >>> rouge_l("The hand melts", "the HAND melts!"), rouge_l("a b", "c d")
    (1.0, 0.0)
    >>> round(rouge_l("a b c d", "a c e"), 4)  # LCS "a c": P = 2/4, R = 2/3, F = 4/7
    0.5714
    """
    c, r = re.findall(r"\w+", candidate.lower()), re.findall(r"\w+", reference.lower())
    lcs = _lcs_length(c, r)
    if not lcs:
        return 0.0
    precision, recall_ = lcs / len(c), lcs / len(r)
    return 2 * precision * recall_ / (precision + recall_)


def explanation_rouge_l(joined: Joined) -> float:
    """Mean ROUGE-L of the responses against the clips' reference explanations (clips with one);
    nan when no clip has a reference."""
    return mean([rouge_l(p.response, c.reference) for p, c in joined if c.reference is not None])
