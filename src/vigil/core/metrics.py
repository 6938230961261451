"""Detection metrics as small pure functions (Skyra's paired protocol and plain scores).

Labels are 1 = fake, 0 = real; predictions are 0/1, or None for an unparsable answer, which counts
as wrong (Skyra's protocol).

Beyond the detection scores, this module holds the rest of the evaluation that gates a promotion:
calibration (ECE, reliability bins), output quality (format compliance), grounding against
ground-truth artifacts, per-frame masks (BrokenVideos' J, F, J&F), explanations (ROUGE-L), latency,
slices by generator and by artifact type, and :func:`evaluation_metrics`, the one entry point that
turns predictions and an evaluation set into a JSON-serialisable report.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vigil.core.evaluation import EvalClip, EvidenceItem, Prediction, TruthArtifact, generator_of, join_truth
from vigil.core.grounding import EvidenceMatch, match_evidence

__all__ = [
    "accuracy", "answer_label", "artifact_matches", "average_precision", "boundary_f_measure",
    "boundary_tolerance", "box_mask", "clip_mask_scores", "confusion_matrix", "evaluation_metrics",
    "expected_calibration_error", "explanation_rouge_l", "f1_score", "false_positive_rate",
    "format_compliance", "grounding_scores", "latency_summary", "macro_f1", "mask_scores",
    "paired_balanced_accuracy", "per_artifact_type_metrics", "per_generator_metrics",
    "predicted_masks", "recall", "region_similarity", "reliability_bins", "roc_auc", "rouge_l",
    "skyra_scores",
]

NAN = float("nan")
ANSWER_COLUMNS = ("Real", "Fake", "Error")
# DAVIS' boundary tolerance: a fraction of the frame diagonal.
BOUNDARY_TOLERANCE_FRACTION = 0.008

Joined = Sequence[tuple[Prediction, EvalClip]]


def _correct(prediction: int | None, label: int) -> bool:
    return prediction is not None and int(prediction) == int(label)


def _mean(values: Sequence[float]) -> float:
    """Mean; nan when empty (without numpy's warning)."""
    return float(np.mean(values)) if len(values) else NAN


def _nanmean(values: Sequence[float]) -> float:
    """Mean of the values that are not nan; nan when none is."""
    return _mean([v for v in values if not math.isnan(v)])


# ---------------------------------------------------------------------------------------------
# Label-level scores


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


def accuracy(predictions: Sequence[int | None], labels: Sequence[int]) -> float:
    """Share of clips answered correctly (Ivy-Fake's overall accuracy); None is wrong; nan when empty.

    >>> accuracy([1, 0, None, 1], [1, 0, 1, 0])
    0.5
    """
    return _mean([_correct(p, y) for p, y in zip(predictions, labels, strict=True)])


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
            tp += _correct(p, y)
            fn += not _correct(p, y)
        elif not _correct(p, y):  # answered `positive`, or unparsable
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
    return _nanmean([f1_score(predictions, labels, 1), f1_score(predictions, labels, 0)])


def false_positive_rate(predictions: Sequence[int | None], labels: Sequence[int]) -> float:
    """Share of real clips (label 0) answered Fake *or unparsable*: an unparsable answer on a real
    clip counts as a false alarm. nan without real clips.

    >>> false_positive_rate([0, 1, None, 1], [0, 0, 0, 1])
    0.6666666666666666
    """
    return _mean([not _correct(p, y) for p, y in zip(predictions, labels, strict=True) if int(y) == 0])


def answer_label(answer: str) -> int | None:
    """A prediction's answer as a label: Fake → 1, Real → 0, Error (unparsable) → None.

    >>> answer_label("Fake"), answer_label("Real"), answer_label("Error")
    (1, 0, None)
    """
    return {"Fake": 1, "Real": 0}.get(answer)


def _labels(predictions: Sequence[Prediction]) -> tuple[list[int | None], list[int]]:
    return [answer_label(p.answer) for p in predictions], [int(p.gt == "Fake") for p in predictions]


# ---------------------------------------------------------------------------------------------
# Skyra's paired protocol, per generator


def _generator_groups(predictions: Sequence[Prediction]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Indices of each generator's fakes (sorted by generator) and of the real clip of each base id."""
    seen: set[str] = set()
    fakes: dict[str, list[int]] = defaultdict(list)
    reals: dict[str, int] = {}
    for i, p in enumerate(predictions):
        if p.video_id in seen:
            raise ValueError(f"two predictions for clip {p.video_id!r}")
        seen.add(p.video_id)
        if p.gt == "Real":
            if p.base_id in reals:
                raise ValueError(f"two real clips share base id {p.base_id!r}")
            reals[p.base_id] = i
        else:
            fakes[generator_of(p.video_id)].append(i)
    return dict(sorted(fakes.items())), reals


def _generator_slice(predictions: Sequence[Prediction], fakes: Sequence[int],
                     reals: dict[str, int]) -> tuple[list[int], list[tuple[int, int]]]:
    """(the generator's fakes followed by the reals paired with them, the (real, fake) pairs)."""
    pairs = [(reals[predictions[f].base_id], f) for f in fakes if predictions[f].base_id in reals]
    return [*fakes, *dict.fromkeys(r for r, _ in pairs)], pairs


def skyra_scores(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """Skyra's protocol: paired balanced accuracy, fake recall and F1 per generator, then unweighted
    means across generators.

    A pair is the real clip ``Real/<b>`` and a generator's fake ``G/<b>`` (matched by ``base_id``);
    a real clip may pair with fakes of several generators and counts in each. Fakes without a real
    partner count in recall and F1 but not in paired balanced accuracy (``unpaired_fakes``); reals
    without any fake are left out everywhere (``unpaired_reals``). An 'Error' answer is wrong: a
    missed fake (FN) or a false alarm on a real clip (FP).

    Per generator: ``pairs``, ``fakes``, ``unpaired_fakes``, ``paired_balanced_accuracy`` (mean over
    complete pairs of ([real correct] + [fake correct]) / 2; nan without a pair), ``fake_recall``
    (all the generator's fakes), ``f1`` (Fake positive; its fakes plus their paired reals, each real
    once) and ``unparsable`` (Errors among those clips). Overall: the three scores averaged over
    generators (nan skipped), ``generators``, ``unparsable`` (over all predictions),
    ``unpaired_reals`` and ``per_generator``.
    """
    fakes_by_generator, reals = _generator_groups(predictions)
    answers, labels = _labels(predictions)
    per_generator: dict[str, dict[str, Any]] = {}
    paired_bases: set[str] = set()
    for generator, fakes in fakes_by_generator.items():
        clips, pairs = _generator_slice(predictions, fakes, reals)
        paired_bases.update(predictions[f].base_id for _, f in pairs)
        per_generator[generator] = {
            "pairs": len(pairs),
            "fakes": len(fakes),
            "unpaired_fakes": len(fakes) - len(pairs),
            "paired_balanced_accuracy": _mean([(_correct(answers[r], 0) + _correct(answers[f], 1)) / 2
                                               for r, f in pairs]),
            "fake_recall": recall([answers[f] for f in fakes], [1] * len(fakes)),
            "f1": f1_score([answers[i] for i in clips], [labels[i] for i in clips]),
            "unparsable": sum(predictions[i].answer == "Error" for i in clips),
        }
    scores = list(per_generator.values())
    return {
        "paired_balanced_accuracy": _nanmean([g["paired_balanced_accuracy"] for g in scores]),
        "fake_recall": _nanmean([g["fake_recall"] for g in scores]),
        "f1": _nanmean([g["f1"] for g in scores]),
        "generators": len(per_generator),
        "unparsable": sum(p.answer == "Error" for p in predictions),
        "unpaired_reals": sum(base not in paired_bases for base in reals),
        "per_generator": per_generator,
    }


# ---------------------------------------------------------------------------------------------
# Scores and calibration


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


def format_compliance(predictions: Sequence[Prediction]) -> float:
    """Share of predictions whose whole output follows the grammar and whose answer parsed; nan when
    empty."""
    return _mean([p.format_ok and p.answer != "Error" for p in predictions])


def confusion_matrix(predictions: Sequence[Prediction]) -> dict[str, dict[str, int]]:
    """Counts with rows = ground truth (Real, Fake) and columns = answer (Real, Fake, Error)."""
    out = {gt: dict.fromkeys(ANSWER_COLUMNS, 0) for gt in ("Real", "Fake")}
    for p in predictions:
        out[p.gt][p.answer] += 1
    return out


# ---------------------------------------------------------------------------------------------
# Grounding


def _claimed_evidence(prediction: Prediction) -> tuple[EvidenceItem, ...]:
    """The evidence a prediction puts forward as artifacts: a Real or unparsable answer claims none."""
    return prediction.evidence if prediction.answer == "Fake" else ()


def _has_truth(clip: EvalClip) -> bool:
    return clip.gt == "Fake" and clip.has_truth and len(clip.truth) > 0


def artifact_matches(prediction: Prediction, clip: EvalClip) -> list[tuple[TruthArtifact, EvidenceMatch]]:
    """Each ground-truth artifact of the clip with its best predicted evidence
    (:func:`vigil.core.grounding.match_evidence`). Only a Fake answer's evidence counts (as in the
    grounding reward); an unmatched artifact has IoUs 0 and no type match."""
    evidence = [(e.type, e.t, e.bbox) for e in _claimed_evidence(prediction)]
    truth = [(a.type, a.t, a.bbox) for a in clip.truth]
    return [(clip.truth[m.truth_index], m) for m in match_evidence(evidence, truth)]


def _grounding_summary(matches: Sequence[EvidenceMatch]) -> dict[str, float]:
    return {"temporal_iou": _mean([m.temporal_iou for m in matches]),
            "box_iou": _mean([m.box_iou for m in matches]),
            "type_accuracy": _mean([m.type_match for m in matches])}


def grounding_scores(joined: Joined) -> dict[str, Any] | None:
    """Mean temporal IoU, box IoU and type accuracy over the ground-truth artifacts of the fake clips
    with known truth (``has_truth`` and at least one artifact), with ``clips`` and ``artifacts``
    counts; None when no clip has truth."""
    clips, matches = 0, []
    for prediction, clip in joined:
        if _has_truth(clip):
            clips += 1
            matches += [m for _, m in artifact_matches(prediction, clip)]
    if not clips:
        return None
    return {"clips": clips, "artifacts": len(matches), **_grounding_summary(matches)}


# ---------------------------------------------------------------------------------------------
# Masks (BrokenVideos' J, F and J&F)


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
    predicted = predicted_masks(_claimed_evidence(prediction), timestamps, height, width)
    tolerance = boundary_tolerance(height, width)
    j = _mean([region_similarity(p, t) for p, t in zip(predicted, truth, strict=True)])
    f = _mean([boundary_f_measure(p, t, tolerance) for p, t in zip(predicted, truth, strict=True)])
    return {"j": j, "f": f, "j_and_f": (j + f) / 2}


def mask_scores(joined: Joined, evalset_dir: str | Path | None) -> dict[str, Any] | None:
    """Mean J, F and J&F over the clips that have masks; None when none has (or no folder is given)."""
    if evalset_dir is None:
        return None
    scores = [clip_mask_scores(p, c, evalset_dir) for p, c in joined if c.masks is not None]
    if not scores:
        return None
    return {"clips": len(scores), **{k: _nanmean([s[k] for s in scores]) for k in ("j", "f", "j_and_f")}}


# ---------------------------------------------------------------------------------------------
# Explanations and latency


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
    return _mean([rouge_l(p.response, c.reference) for p, c in joined if c.reference is not None])


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


# ---------------------------------------------------------------------------------------------
# Slices


def per_generator_metrics(joined: Joined) -> dict[str, dict[str, Any]]:
    """Per generator, the metrics restricted to its fakes and the reals paired with them: ``clips``,
    ``accuracy``, ``fpr_real``, ``fake_recall``, ``format_compliance`` and ``grounding``."""
    predictions = [p for p, _ in joined]
    fakes_by_generator, reals = _generator_groups(predictions)
    out = {}
    for generator, fakes in fakes_by_generator.items():
        clips, _ = _generator_slice(predictions, fakes, reals)
        subset = [joined[i] for i in clips]
        answers, labels = _labels([p for p, _ in subset])
        out[generator] = {
            "clips": len(subset),
            "accuracy": accuracy(answers, labels),
            "fpr_real": false_positive_rate(answers, labels),
            "fake_recall": recall(answers, labels),
            "format_compliance": format_compliance([p for p, _ in subset]),
            "grounding": grounding_scores(subset),
        }
    return out


def per_artifact_type_metrics(joined: Joined) -> dict[str, dict[str, Any]]:
    """Per L3 artifact type in the ground truth: ``clips`` (fake clips with known truth showing that
    type), their ``fake_recall``, and the grounding means over the artifacts of that type (each
    matched among all the clip's artifacts)."""
    hits: dict[str, list[bool]] = defaultdict(list)
    matches: dict[str, list[EvidenceMatch]] = defaultdict(list)
    for prediction, clip in joined:
        if not _has_truth(clip):
            continue
        for artifact, match in artifact_matches(prediction, clip):
            matches[artifact.type].append(match)
        for kind in dict.fromkeys(a.type for a in clip.truth):
            hits[kind].append(prediction.answer == "Fake")
    return {kind: {"clips": len(hits[kind]), "fake_recall": _mean(hits[kind]),
                   **_grounding_summary(matches[kind])} for kind in sorted(hits)}


# ---------------------------------------------------------------------------------------------
# The entry point


def _jsonable(value: Any) -> Any:
    """Floats rounded to 4 places, nan/inf → None, numpy scalars → Python, containers recursed."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 4) if math.isfinite(value) else None
    return value


def evaluation_metrics(predictions: Sequence[Prediction], clips: Sequence[EvalClip],
                       evalset_dir: str | Path | None = None, n_bins: int = 10) -> dict[str, Any]:
    """Every evaluation metric of a prediction file on an evaluation set, as a JSON-serialisable
    dict (floats rounded to 4 places, nan → None).

    Predictions are joined to their clips (:func:`vigil.core.evaluation.join_truth`; a prediction
    for an unknown clip raises). ``clips``, ``unparsable``, Ivy-Fake's ``accuracy``/``macro_f1``,
    ``fpr_real``, ``format_compliance`` and ``confusion`` (rows = truth, columns = answer) cover all
    predictions; ``skyra`` follows :func:`skyra_scores`. ``ap``, ``roc_auc``, ``ece`` and
    ``reliability`` use the ``scored_clips`` that have a ``fake_probability``. ``grounding`` (None
    without truth), ``masks`` (None without masks or without ``evalset_dir``, whose files it reads),
    ``rouge_l`` (None without references), ``latency``, ``per_generator`` and
    ``per_artifact_type`` follow the functions of the same names in this module.
    """
    joined = join_truth(predictions, clips)
    predictions = [p for p, _ in joined]
    answers, labels = _labels(predictions)
    scored = [(p.fake_probability, y) for p, y in zip(predictions, labels, strict=True)
              if p.fake_probability is not None]
    probabilities, scored_labels = [s for s, _ in scored], [y for _, y in scored]
    report = {
        "clips": len(joined),
        "unparsable": sum(p.answer == "Error" for p in predictions),
        "skyra": skyra_scores(predictions),
        "accuracy": accuracy(answers, labels),
        "macro_f1": macro_f1(answers, labels),
        "fpr_real": false_positive_rate(answers, labels),
        "format_compliance": format_compliance(predictions),
        "ap": average_precision(probabilities, scored_labels),
        "roc_auc": roc_auc(probabilities, scored_labels),
        "ece": expected_calibration_error(probabilities, scored_labels, n_bins),
        "scored_clips": len(scored),
        "reliability": reliability_bins(probabilities, scored_labels, n_bins),
        "confusion": confusion_matrix(predictions),
        "grounding": grounding_scores(joined),
        "masks": mask_scores(joined, evalset_dir),
        "rouge_l": explanation_rouge_l(joined),
        "latency": latency_summary([p.latency_s for p in predictions]),
        "per_generator": per_generator_metrics(joined),
        "per_artifact_type": per_artifact_type_metrics(joined),
    }
    return _jsonable(report)
