"""Run a model on an evaluation set: offline (transformers ``generate``) or through the serving API.

The model calls are the detector's (:mod:`vigil.models.detector`: the prompt builder training and
serving use, greedy answers, the grammar parser, and P(Fake) from the log-probabilities of the token
that starts the verdict after ``<answer>``). A server that returns no log-probabilities gives
``fake_probability = None`` (left out of AP/AUC/ECE). What stays here is evaluation's own: walking
an evaluation set in batches, reading each clip's frames, the Skyra-layout prediction records
(evidence end times checked against the clip's duration) and progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from vigil.config.params import ModelProfile
from vigil.core.evaluation import EvalClip, Prediction
from vigil.evaluate.evalsets import EvalSet
from vigil.models.detector import Detection, detect_batch, detect_openai, load_detector, openai_client
from vigil.models.inputs import load_clip

log = logging.getLogger(__name__)


def _prediction(clip: EvalClip, model_name: str, answer: Detection) -> Prediction:
    return answer.prediction(video_id=clip.video_id, aigc_model_name=clip.aigc_model_name, gt=clip.gt,
                             base_id=clip.base_id, mllm_model_name=model_name)


def _duration(clip: EvalClip) -> float | None:
    return clip.duration_s or None  # 0 = unknown: end times are not checked


def predict_offline(model_dir: str | Path, evalset: EvalSet, profile: ModelProfile, *, model_name: str,
                    batch_size: int, max_new_tokens: int,
                    on_batch: Callable[[int, int], None] | None = None) -> list[Prediction]:
    """Greedy answers of the model folder on every clip of ``evalset`` (transformers, this process);
    a clip's latency is its batch's time (reading the frames included) over the batch size."""
    model, processor = load_detector(model_dir, profile)
    predictions: list[Prediction] = []
    clips = list(evalset.clips)
    for start in range(0, len(clips), batch_size):
        batch = clips[start:start + batch_size]
        began = time.perf_counter()
        frames = [load_clip(evalset.frames_dir(clip), profile.max_frames) for clip in batch]
        answers = detect_batch(model, processor, frames, profile, max_new_tokens=max_new_tokens,
                               durations=[_duration(clip) for clip in batch], started=began)
        predictions += [_prediction(clip, model_name, answer) for clip, answer in zip(batch, answers, strict=True)]
        if on_batch:
            on_batch(len(predictions), len(clips))
    return predictions


def predict_server(base_url: str, served_model: str, evalset: EvalSet, profile: ModelProfile, *, model_name: str,
                   max_new_tokens: int, api_key: str | None = None, timeout_s: float = 120.0,
                   on_batch: Callable[[int, int], None] | None = None) -> list[Prediction]:
    """Answers through an OpenAI-compatible server (vLLM, ``transformers serve``): the serving path."""
    client = openai_client(base_url, api_key=api_key, timeout_s=timeout_s)
    predictions: list[Prediction] = []
    for n, clip in enumerate(evalset.clips, start=1):
        frames = load_clip(evalset.frames_dir(clip), profile.max_frames)
        answer = detect_openai(client, served_model, frames, profile, max_new_tokens=max_new_tokens,
                               duration_s=_duration(clip))
        predictions.append(_prediction(clip, model_name, answer))
        if on_batch and (n % 8 == 0 or n == len(evalset.clips)):
            on_batch(n, len(evalset.clips))
    return predictions
