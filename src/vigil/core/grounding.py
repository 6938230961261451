"""Grounding overlap: how well evidence (type, time span, box) matches ground-truth artifacts.

Pure functions shared by the annotator-quality report, the grounding reward and evaluation.

A whole-frame box (``[0, 0, 1, 1]``, which the grammar also reads from Skyra's zero box) needs no
rule of its own against a truth box: its IoU is the truth's share of the frame. Against a truth
without a box (a frame-wide artifact) it is the exact claim, so :func:`box_overlap` scores it 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vigil.core.grammar import WHOLE_FRAME

Span = tuple[float, float]
Box = tuple[float, float, float, float]


def temporal_iou(a: Span | None, b: Span | None) -> float:
    """Intersection over union of two time spans; 0 when either is missing or empty.

    >>> temporal_iou((0.0, 2.0), (1.0, 3.0))
    0.3333333333333333
    >>> temporal_iou((0.0, 1.0), (2.0, 3.0)), temporal_iou(None, (0.0, 1.0))
    (0.0, 0.0)
    """
    if a is None or b is None:
        return 0.0
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def box_iou(a: Box | None, b: Box | None) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes; 0 when either is missing or empty.

    >>> box_iou((0.0, 0.0, 0.5, 0.5), (0.0, 0.0, 0.5, 0.5))
    1.0
    >>> round(box_iou((0.0, 0.0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)), 4)
    0.1429
    """
    if a is None or b is None:
        return 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_overlap(predicted: Box | None, truth: Box | None) -> float:
    """A predicted box's overlap with a ground-truth artifact's box: :func:`box_iou`, except that a
    truth without a box (the artifact spans the frame) is matched fully by a whole-frame prediction.

    >>> box_overlap((0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 0.5, 0.5))  # the truth's area share
    0.25
    >>> box_overlap((0.0, 0.0, 1.0, 1.0), None), box_overlap((0.0, 0.0, 0.5, 0.5), None)
    (1.0, 0.0)
    >>> box_overlap(None, (0.0, 0.0, 1.0, 1.0))  # no box claimed: nothing located
    0.0
    """
    if truth is None:
        return 1.0 if predicted is not None and tuple(predicted) == WHOLE_FRAME else 0.0
    return box_iou(predicted, truth)


@dataclass(frozen=True)
class EvidenceMatch:
    """The best prediction for one ground-truth artifact (index -1: nothing overlapped)."""

    truth_index: int
    prediction_index: int
    temporal_iou: float
    box_iou: float
    type_match: bool


def match_evidence(predicted: Sequence[tuple[str | None, Span | None, Box | None]],
                   truth: Sequence[tuple[str, Span, Box]]) -> list[EvidenceMatch]:
    """Greedy one-to-one matching of predicted evidence to ground truth by temporal × box IoU.

    Each ground-truth artifact gets at most one prediction and vice versa, best pairs first, so
    that one broad box cannot be credited for every artifact. Box overlap is :func:`box_overlap`
    (a whole-frame box fully matches a truth without a box).

    >>> m = match_evidence([("Unnatural Blur", (1.0, 2.0), (0.1, 0.1, 0.4, 0.4))],
    ...                    [("Unnatural Blur", (1.0, 2.0), (0.1, 0.1, 0.4, 0.4))])
    >>> (m[0].prediction_index, m[0].temporal_iou, m[0].box_iou, m[0].type_match)
    (0, 1.0, 1.0, True)
    >>> whole = ("Camera Motion Inconsistency", (1.0, 2.0), (0.0, 0.0, 1.0, 1.0))
    >>> m = match_evidence([whole], [("Camera Motion Inconsistency", (1.0, 2.0), None),
    ...                             ("Unnatural Blur", (1.0, 2.0), (0.0, 0.0, 0.5, 0.5))])
    >>> [(x.prediction_index, x.box_iou) for x in m]
    [(0, 1.0), (-1, 0.0)]
    """
    pairs = []
    for ti, (_, t_span, t_box) in enumerate(truth):
        for pi, (_, p_span, p_box) in enumerate(predicted):
            tiou, biou = temporal_iou(p_span, t_span), box_overlap(p_box, t_box)
            if tiou > 0 or biou > 0:
                pairs.append((tiou * biou, tiou + biou, ti, pi, tiou, biou))
    pairs.sort(reverse=True)
    used_truth: set[int] = set()
    used_pred: set[int] = set()
    matches: dict[int, EvidenceMatch] = {}
    for _, _, ti, pi, tiou, biou in pairs:
        if ti in used_truth or pi in used_pred:
            continue
        used_truth.add(ti)
        used_pred.add(pi)
        matches[ti] = EvidenceMatch(ti, pi, tiou, biou, predicted[pi][0] == truth[ti][0])
    return [matches.get(ti, EvidenceMatch(ti, -1, 0.0, 0.0, False)) for ti in range(len(truth))]
