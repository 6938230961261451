"""The metrics restricted to slices of an evaluation set: per generator and per artifact type.

A generator's slice is its fakes and the reals paired with them (Skyra's grouping, from
:mod:`vigil.core.metrics.skyra`), scored for accuracy, false alarms, fake recall, format compliance
and grounding; an artifact type's slice is the fake clips with known truth showing that type, scored
for fake recall and the grounding of the artifacts of that type.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vigil.core.grounding import EvidenceMatch
from vigil.core.metrics.classification import accuracy, answers_and_labels, false_positive_rate, recall
from vigil.core.metrics.common import Joined, mean
from vigil.core.metrics.evidence import artifact_matches, grounding_scores, grounding_summary, has_artifact_truth
from vigil.core.metrics.skyra import generator_groups, generator_slice
from vigil.core.metrics.text import format_compliance

__all__ = ["per_artifact_type_metrics", "per_generator_metrics"]


def per_generator_metrics(joined: Joined) -> dict[str, dict[str, Any]]:
    """Per generator, the metrics restricted to its fakes and the reals paired with them: ``clips``,
    ``accuracy``, ``fpr_real``, ``fake_recall``, ``format_compliance`` and ``grounding``."""
    predictions = [p for p, _ in joined]
    fakes_by_generator, reals = generator_groups(predictions)
    out = {}
    for generator, fakes in fakes_by_generator.items():
        clips, _ = generator_slice(predictions, fakes, reals)
        subset = [joined[i] for i in clips]
        answers, labels = answers_and_labels([p for p, _ in subset])
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
        if not has_artifact_truth(clip):
            continue
        for artifact, match in artifact_matches(prediction, clip):
            matches[artifact.type].append(match)
        for kind in dict.fromkeys(a.type for a in clip.truth):
            hits[kind].append(prediction.answer == "Fake")
    return {kind: {"clips": len(hits[kind]), "fake_recall": mean(hits[kind]),
                   **grounding_summary(matches[kind])} for kind in sorted(hits)}
