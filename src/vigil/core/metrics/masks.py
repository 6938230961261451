"""Per-frame mask metrics (BrokenVideos' J, F and J&F) for clips with ground-truth masks.

A prediction's evidence boxes are drawn as one mask per frame (a box counts on the frames its time
span covers) and compared with the clip's truth masks: J is the region IoU, F the F-measure of the
two boundaries within DAVIS' tolerance, J&F their mean, each averaged over frames and then over
clips. :func:`clip_mask_scores` reads a clip's truth masks and frame timestamps from the evaluation
set's folder; every other function here works on arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vigil.core.evaluation import EvalClip, EvidenceItem, Prediction
from vigil.core.metrics.common import Joined, mean, nanmean
from vigil.core.metrics.evidence import claimed_evidence

__all__ = ["boundary_f_measure", "boundary_tolerance", "box_mask", "clip_mask_scores",
           "mask_scores", "predicted_masks", "region_similarity"]


# DAVIS' boundary tolerance: a fraction of the frame diagonal.
BOUNDARY_TOLERANCE_FRACTION = 0.008


def box_mask(boxes: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """The union of normalised [x1, y1, x2, y2] boxes as a bool H×W mask: a box covers rows
    round(y1·H) … round(y2·H) − 1 and columns round(x1·W) … round(x2·W) − 1 (clipped to the frame).

    >>> box_mask([(0.25, 0.5, 0.75, 1.0)], 4, 4).astype(int)
    array([[0, 0, 0, 0],
           [0, 0, 0, 0],
           [0, 1, 1, 0],
           [0, 1, 1, 0]])
    """
    mask = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in boxes:
        c1, c2 = (min(width, max(0, math.floor(v * width + 0.5))) for v in (x1, x2))
        r1, r2 = (min(height, max(0, math.floor(v * height + 0.5))) for v in (y1, y2))
        mask[r1:r2, c1:c2] = True
    return mask


def region_similarity(pred_mask: np.ndarray, true_mask: np.ndarray) -> float:
    """J: the IoU of two masks; 1 when both are empty.

    >>> region_similarity(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 0], bool))
    0.3333333333333333
    >>> region_similarity(np.zeros(3, bool), np.zeros(3, bool))
    1.0
    """
    pred, true = np.asarray(pred_mask, dtype=bool), np.asarray(true_mask, dtype=bool)
    union = np.logical_or(pred, true).sum()
    return float(np.logical_and(pred, true).sum() / union) if union else 1.0


def _boundary(mask: np.ndarray) -> np.ndarray:
    """A mask's pixels with a 4-neighbour outside it (the frame's edge counts as outside)."""
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1))


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return xx ** 2 + yy ** 2 <= radius ** 2


def boundary_f_measure(pred_mask: np.ndarray, true_mask: np.ndarray, tolerance: int) -> float:
    """F: the F-measure of the two masks' boundaries, a boundary pixel counting as matched when the
    other boundary lies within ``tolerance`` pixels (a disk, as in DAVIS). 1 when both masks are
    empty, 0 when only one is.

    >>> m = np.zeros((6, 6), bool); m[1:4, 1:4] = True
    >>> boundary_f_measure(m, m, 1), boundary_f_measure(m, np.zeros_like(m), 1)
    (1.0, 0.0)
    """
    from scipy import ndimage

    pred, true = np.asarray(pred_mask, dtype=bool), np.asarray(true_mask, dtype=bool)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"masks must be two H×W arrays of one shape, got {pred.shape} and {true.shape}")
    if not pred.any() and not true.any():
        return 1.0
    if not pred.any() or not true.any():
        return 0.0
    pred_b, true_b = _boundary(pred), _boundary(true)
    disk = _disk(max(0, int(tolerance)))
    precision = (pred_b & ndimage.binary_dilation(true_b, structure=disk)).sum() / pred_b.sum()
    recall_ = (true_b & ndimage.binary_dilation(pred_b, structure=disk)).sum() / true_b.sum()
    return float(2 * precision * recall_ / (precision + recall_)) if precision + recall_ else 0.0


def boundary_tolerance(height: int, width: int) -> int:
    """DAVIS' boundary tolerance: max(1, round(0.008 · frame diagonal)) pixels.

    >>> boundary_tolerance(480, 854), boundary_tolerance(64, 64)
    (8, 1)
    """
    return max(1, round(BOUNDARY_TOLERANCE_FRACTION * math.hypot(height, width)))


def predicted_masks(evidence: Sequence[EvidenceItem], timestamps: Sequence[float],
                    height: int, width: int) -> np.ndarray:
    """T×H×W bool masks: frame k is the union of the boxes of the evidence whose time span [s, e]
    contains the frame's timestamp (evidence without a span or a box draws nothing)."""
    out = np.zeros((len(timestamps), height, width), dtype=bool)
    for k, ts in enumerate(timestamps):
        boxes = [e.bbox for e in evidence if e.bbox is not None and e.t is not None and e.t[0] <= ts <= e.t[1]]
        out[k] = box_mask(boxes, height, width)
    return out


def clip_mask_scores(prediction: Prediction, clip: EvalClip, evalset_dir: str | Path) -> dict[str, float]:
    """J, F and J&F of one clip, averaged over its frames.

    Reads the clip's truth masks (``<evalset_dir>/<clip.masks>``, bool T×H×W) and frame timestamps
    (``<evalset_dir>/<clip.frames_dir>/timestamps.txt``, one per frame); the predicted masks come
    from a Fake answer's evidence (:func:`predicted_masks`; other answers predict empty masks).
    """
    if clip.masks is None:
        raise ValueError(f"clip {clip.video_id!r} has no masks")
    folder = Path(evalset_dir)
    truth = np.load(folder / clip.masks, allow_pickle=False).astype(bool)
    lines = (folder / clip.frames_dir / "timestamps.txt").read_text().split()
    timestamps = [float(v) for v in lines]
    if truth.ndim != 3 or truth.shape[0] != len(timestamps):
        raise ValueError(f"clip {clip.video_id!r}: masks of shape {truth.shape} for {len(timestamps)} timestamps")
    _, height, width = truth.shape
    predicted = predicted_masks(claimed_evidence(prediction), timestamps, height, width)
    tolerance = boundary_tolerance(height, width)
    j = mean([region_similarity(p, t) for p, t in zip(predicted, truth, strict=True)])
    f = mean([boundary_f_measure(p, t, tolerance) for p, t in zip(predicted, truth, strict=True)])
    return {"j": j, "f": f, "j_and_f": (j + f) / 2}


def mask_scores(joined: Joined, evalset_dir: str | Path | None) -> dict[str, Any] | None:
    """Mean J, F and J&F over the clips that have masks; None when none has (or no folder is given)."""
    if evalset_dir is None:
        return None
    scores = [clip_mask_scores(p, c, evalset_dir) for p, c in joined if c.masks is not None]
    if not scores:
        return None
    return {"clips": len(scores), **{k: nanmean([s[k] for s in scores]) for k in ("j", "f", "j_and_f")}}
