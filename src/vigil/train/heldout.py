"""The ``heldout`` stage: how well a trained model answers on zoo clips no stage trained on.

Clips come from ``train.heldout.zoo_seed`` (refused when it is the gallery's or a pretrain seed),
reach the model through the same prompt builder and processor as training and serving, and are
answered by greedy generation; the answer is read by the grammar parser. Reported: paired balanced
accuracy (Skyra's protocol), accuracy, fake recall per artifact type, per-generator paired balanced
accuracy, and format compliance. The full evaluation and gate are a later stage; this is the
training pipeline's own check that the candidate learned something.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from vigil.core import grammar
from vigil.core.metrics import paired_balanced_accuracy, recall
from vigil.models.inputs import ClipFrames, clip_images, detector_messages
from vigil.config.params import HeldoutParams, ModelProfile, PretrainParams, ZooParams
from vigil.train.pretrain import PretrainData, render_pretrain_data

log = logging.getLogger(__name__)


def heldout_clips(zoo: ZooParams, params: HeldoutParams, profile: ModelProfile, cache_dir: str | Path) -> PretrainData:
    """The held-out clips, rendered like the pretrain stage's (same geometry and frame choice)."""
    render = PretrainParams(zoo_seeds=(params.zoo_seed,), pairs_per_generator=(params.pairs_per_generator,))
    return render_pretrain_data(zoo, render, profile, cache_dir)


def generate_answers(model_dir: str | Path, clips: PretrainData, profile: ModelProfile, *, fps: float,
                     batch_size: int, max_new_tokens: int, progress: bool = True) -> list[str]:
    """Greedy answers of the model in ``model_dir`` for every clip (the processor resizes as in serving)."""
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from vigil.models.profile import load_for_training

    model, processor = load_for_training(model_dir, profile)
    model.eval()
    stamps = tuple(k / fps for k in range(clips.frames.shape[1]))  # every rendered frame is kept (max_frames)
    texts: list[str] = []
    for start in tqdm(range(0, len(clips.label), batch_size), desc="held-out", unit="batch", disable=not progress):
        rows = range(start, min(start + batch_size, len(clips.label)))
        prompts, images = [], []
        for r in rows:
            imgs, ts = clip_images(ClipFrames(clips.frames[r], stamps), profile.frame_pairs)
            prompts.append(processor.apply_chat_template(detector_messages(ts, system_prompt=profile.system_prompt),
                                                         add_generation_prompt=True, tokenize=False))
            images.append([Image.fromarray(im) for im in imgs])
        inputs = processor(text=prompts, images=images, padding=True, padding_side="left", return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        texts += processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return texts


def score_answers(texts: list[str], clips: PretrainData) -> dict[str, Any]:
    """Skyra-protocol numbers for answers to ``clips`` (unparsable answers count as wrong)."""
    parsed = [grammar.check(t) for t in texts]
    predictions = [None if p.label is None else int(p.label == "fake") for p in parsed]
    labels = clips.label.astype(int).tolist()
    pairs = clips.pair.astype(str).tolist()
    per_generator = {}
    for g in sorted(set(clips.generator.tolist())):
        rows = [i for i, gen in enumerate(clips.generator) if gen == g]
        per_generator[g] = round(paired_balanced_accuracy([predictions[i] for i in rows], [labels[i] for i in rows],
                                                          [pairs[i] for i in rows]), 4)
    per_type = {}
    for t in sorted({t for s in clips.types for t in str(s).split(",") if t}):
        rows = [i for i, s in enumerate(clips.types) if t in str(s).split(",")]
        per_type[t] = round(recall([predictions[i] for i in rows], [labels[i] for i in rows]), 4)
    return {"clips": len(texts), "paired_balanced_accuracy": round(paired_balanced_accuracy(predictions, labels, pairs), 4),
            "accuracy": round(float(np.mean([p == y for p, y in zip(predictions, labels, strict=True)])), 4),
            "fake_recall": round(recall(predictions, labels, 1), 4),
            "real_recall": round(recall(predictions, labels, 0), 4),
            "unparsable": sum(p is None for p in predictions),
            "format_compliance": round(float(np.mean([p.ok and p.answer is not None for p in parsed])), 4),
            "per_generator_paired_balanced_accuracy": per_generator, "fake_recall_per_artifact_type": per_type}


def evaluate_heldout(model_dir: str | Path, clips: PretrainData, profile: ModelProfile, params: HeldoutParams,
                     fps: float, *, progress: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    texts = generate_answers(model_dir, clips, profile, fps=fps, batch_size=params.batch_size,
                             max_new_tokens=params.max_new_tokens, progress=progress)
    metrics = score_answers(texts, clips) | {"eval_s": round(time.perf_counter() - started, 1)}
    metrics["examples"] = texts[:2]
    return metrics
