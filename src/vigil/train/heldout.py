"""The ``heldout`` stage: how well a trained model answers on zoo clips no stage trained on.

Clips come from ``train.heldout.zoo_seed`` (refused when it is the gallery's or a pretrain seed),
and are answered by the detector (:mod:`vigil.models.detector`: the same prompt builder and
processor as training and serving, greedy generation, the grammar parser) and scored with the
evaluator's metrics (:mod:`vigil.core.metrics`). Reported: paired balanced accuracy (Skyra's
protocol), accuracy, fake recall per artifact type, per-generator paired balanced accuracy, and
format compliance. The full evaluation and gate are a later stage; this is the training pipeline's
own check that the candidate learned something.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vigil.config.params import HeldoutParams, ModelProfile, PretrainParams, ZooParams
from vigil.core.evaluation import REAL, Prediction
from vigil.core.metrics.classification import accuracy, answer_label, paired_balanced_accuracy, recall
from vigil.core.metrics.text import format_compliance
from vigil.models.detector import Detection, detect_batch, load_detector
from vigil.models.inputs import ClipFrames
from vigil.train.pretrain import PretrainData, render_pretrain_data

log = logging.getLogger(__name__)


def heldout_clips(zoo: ZooParams, params: HeldoutParams, profile: ModelProfile, cache_dir: str | Path) -> PretrainData:
    """The held-out clips, rendered like the pretrain stage's (same geometry and frame choice)."""
    render = PretrainParams(zoo_seeds=(params.zoo_seed,), pairs_per_generator=(params.pairs_per_generator,))
    return render_pretrain_data(zoo, render, profile, cache_dir)


def detect_heldout(model_dir: str | Path, clips: PretrainData, profile: ModelProfile, *, fps: float,
                   batch_size: int, max_new_tokens: int, progress: bool = True) -> list[Detection]:
    """The detector's greedy answers of the model in ``model_dir`` on every clip (the processor
    resizes as in serving). No P(Fake) (nothing here reads it) and no duration check of the evidence."""
    from tqdm.auto import tqdm

    model, processor = load_detector(model_dir, profile)
    stamps = tuple(k / fps for k in range(clips.frames.shape[1]))  # every rendered frame is kept (max_frames)
    answers: list[Detection] = []
    for start in tqdm(range(0, len(clips.label), batch_size), desc="held-out", unit="batch", disable=not progress):
        frames = [ClipFrames(clips.frames[r], stamps) for r in range(start, min(start + batch_size, len(clips.label)))]
        answers += detect_batch(model, processor, frames, profile, max_new_tokens=max_new_tokens,
                                fake_probability=False)
    return answers


def heldout_predictions(answers: Sequence[Detection], clips: PretrainData, model_name: str) -> list[Prediction]:
    """The answers as evaluation records: clip ``<generator>/<pair>`` (``Real/<pair>`` for the real
    clip of a pair), base id the pair index."""
    out = []
    for answer, label, pair, generator in zip(answers, clips.label, clips.pair, clips.generator, strict=True):
        fake = bool(label)
        out.append(answer.prediction(video_id=f"{generator if fake else REAL}/{pair}",
                                     aigc_model_name=str(generator) if fake else REAL,
                                     gt="Fake" if fake else "Real", base_id=str(pair), mllm_model_name=model_name))
    return out


def score_predictions(predictions: Sequence[Prediction], clips: PretrainData) -> dict[str, Any]:
    """Skyra-protocol numbers for the predictions on ``clips``, row for row (unparsable answers count
    as wrong)."""
    answers = [answer_label(p.answer) for p in predictions]
    labels = clips.label.astype(int).tolist()
    pairs = clips.pair.astype(str).tolist()
    per_generator = {}
    for g in sorted(set(clips.generator.tolist())):
        rows = [i for i, gen in enumerate(clips.generator) if gen == g]
        per_generator[g] = round(paired_balanced_accuracy([answers[i] for i in rows], [labels[i] for i in rows],
                                                          [pairs[i] for i in rows]), 4)
    per_type = {}
    for t in sorted({t for s in clips.types for t in str(s).split(",") if t}):
        rows = [i for i, s in enumerate(clips.types) if t in str(s).split(",")]
        per_type[t] = round(recall([answers[i] for i in rows], [labels[i] for i in rows]), 4)
    return {"clips": len(predictions), "paired_balanced_accuracy": round(paired_balanced_accuracy(answers, labels, pairs), 4),
            "accuracy": round(accuracy(answers, labels), 4),
            "fake_recall": round(recall(answers, labels, 1), 4),
            "real_recall": round(recall(answers, labels, 0), 4),
            "unparsable": sum(p.answer == "Error" for p in predictions),
            "format_compliance": round(format_compliance(predictions), 4),
            "per_generator_paired_balanced_accuracy": per_generator, "fake_recall_per_artifact_type": per_type}


def evaluate_heldout(model_dir: str | Path, clips: PretrainData, profile: ModelProfile, params: HeldoutParams,
                     fps: float, *, progress: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    answers = detect_heldout(model_dir, clips, profile, fps=fps, batch_size=params.batch_size,
                             max_new_tokens=params.max_new_tokens, progress=progress)
    predictions = heldout_predictions(answers, clips, Path(model_dir).name)
    metrics = score_predictions(predictions, clips) | {"eval_s": round(time.perf_counter() - started, 1)}
    metrics["examples"] = [a.text for a in answers[:2]]
    return metrics
