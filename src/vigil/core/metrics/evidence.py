"""Grounding metrics: how well a prediction's evidence matches a clip's ground-truth artifacts.

Each ground-truth artifact of a fake clip with known truth is matched to its best predicted evidence
(:func:`vigil.core.grounding.match_evidence`, which holds the IoU and matching rules); this module
aggregates those matches into mean temporal IoU, box IoU and artifact-type accuracy. Only a Fake
answer's evidence counts, as in the grounding reward. A whole-frame box (Skyra's zero box, as the
grammar reads it) scores the truth box's share of the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vigil.core.evaluation import EvalClip, EvidenceItem, Prediction, TruthArtifact
from vigil.core.grounding import EvidenceMatch, match_evidence
from vigil.core.metrics.common import Joined, mean

__all__ = ["artifact_matches", "grounding_scores"]


def claimed_evidence(prediction: Prediction) -> tuple[EvidenceItem, ...]:
    """The evidence a prediction puts forward as artifacts: a Real or unparsable answer claims none."""
    return prediction.evidence if prediction.answer == "Fake" else ()


def has_artifact_truth(clip: EvalClip) -> bool:
    """A fake clip whose artifacts are known (``has_truth``) and not none: the clips grounding is scored on."""
    return clip.gt == "Fake" and clip.has_truth and len(clip.truth) > 0


def artifact_matches(prediction: Prediction, clip: EvalClip) -> list[tuple[TruthArtifact, EvidenceMatch]]:
    """Each ground-truth artifact of the clip with its best predicted evidence
    (:func:`vigil.core.grounding.match_evidence`). Only a Fake answer's evidence counts (as in the
    grounding reward); an unmatched artifact has IoUs 0 and no type match."""
    evidence = [(e.type, e.t, e.bbox) for e in claimed_evidence(prediction)]
    truth = [(a.type, a.t, a.bbox) for a in clip.truth]
    return [(clip.truth[m.truth_index], m) for m in match_evidence(evidence, truth)]


def grounding_summary(matches: Sequence[EvidenceMatch]) -> dict[str, float]:
    """Mean temporal IoU, box IoU and type accuracy of some artifact matches (nan each when none)."""
    return {"temporal_iou": mean([m.temporal_iou for m in matches]),
            "box_iou": mean([m.box_iou for m in matches]),
            "type_accuracy": mean([m.type_match for m in matches])}


def grounding_scores(joined: Joined) -> dict[str, Any] | None:
    """Mean temporal IoU, box IoU and type accuracy over the ground-truth artifacts of the fake clips
    with known truth (``has_truth`` and at least one artifact), with ``clips`` and ``artifacts``
    counts; None when no clip has truth."""
    clips, matches = 0, []
    for prediction, clip in joined:
        if has_artifact_truth(clip):
            clips += 1
            matches += [m for _, m in artifact_matches(prediction, clip)]
    if not clips:
        return None
    return {"clips": clips, "artifacts": len(matches), **grounding_summary(matches)}
