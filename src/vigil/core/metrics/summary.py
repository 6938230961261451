"""The one entry point: every evaluation metric of a prediction file, as one JSON-ready report.

:func:`evaluation_metrics` joins predictions to their evaluation clips and composes the metric
modules of :mod:`vigil.core.metrics` (label scores, Skyra's protocol, calibration, grounding, masks,
text, latency and slices) into the dict that ``metrics.json`` holds and the promotion gate reads,
floats rounded to 4 places and nan written as None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vigil.core.evaluation import EvalClip, Prediction, join_truth
from vigil.core.metrics.calibration import average_precision, expected_calibration_error, reliability_bins, roc_auc
from vigil.core.metrics.classification import (
    accuracy,
    answers_and_labels,
    confusion_matrix,
    false_positive_rate,
    macro_f1,
)
from vigil.core.metrics.evidence import grounding_scores
from vigil.core.metrics.latency import latency_summary
from vigil.core.metrics.masks import mask_scores
from vigil.core.metrics.skyra import skyra_scores
from vigil.core.metrics.skyra_eval import skyra_eval_scores
from vigil.core.metrics.slices import per_artifact_type_metrics, per_generator_metrics
from vigil.core.metrics.text import explanation_rouge_l, format_compliance

__all__ = ["evaluation_metrics"]


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
    predictions; ``skyra`` follows :func:`skyra_scores` (Vigil's strict reading of Skyra's protocol)
    and ``skyra_eval`` :func:`skyra_eval_scores` (Skyra's own eval.py, number for number, where an
    unparsable answer reads as Fake and unpaired clips are left out). ``ap``, ``roc_auc``, ``ece`` and
    ``reliability`` use the ``scored_clips`` that have a ``fake_probability``. ``grounding`` (None
    without truth), ``masks`` (None without masks or without ``evalset_dir``, whose files it reads),
    ``rouge_l`` (None without references), ``latency``, ``per_generator`` and
    ``per_artifact_type`` follow the functions of the same names in this package.
    """
    joined = join_truth(predictions, clips)
    predictions = [p for p, _ in joined]
    answers, labels = answers_and_labels(predictions)
    scored = [(p.fake_probability, y) for p, y in zip(predictions, labels, strict=True)
              if p.fake_probability is not None]
    probabilities, scored_labels = [s for s, _ in scored], [y for _, y in scored]
    report = {
        "clips": len(joined),
        "unparsable": sum(p.answer == "Error" for p in predictions),
        "skyra": skyra_scores(predictions),
        "skyra_eval": skyra_eval_scores(predictions),
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
