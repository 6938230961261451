"""Run a model on an evaluation set: offline (transformers ``generate``) or through the serving API.

Both paths build the prompt with :mod:`vigil.models.inputs` (the same builder as training and the
gateway), answer greedily, read the answer with the grammar parser, and take P(Fake) from the
log-probabilities of the token that starts the verdict after ``<answer>``: the model's own
probability of "Fake" against "Real" at that point (the first token of each continuation). A
server that returns no log-probabilities gives ``fake_probability = None`` (left out of AP/AUC/ECE).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vigil.core import grammar
from vigil.core.evaluation import EvalClip, EvidenceItem, Prediction
from vigil.evaluate.evalsets import EvalSet
from vigil.models.inputs import ClipFrames, clip_images, detector_messages, load_clip, openai_messages
from vigil.config.params import ModelProfile

log = logging.getLogger(__name__)

ANSWER_TAG = "<answer>"


def verdict_position(token_texts: Sequence[str]) -> tuple[int, str] | None:
    """(index of the token that starts the verdict after the last ``<answer>``, the text of the
    answer before the verdict within that token), or None when there is no ``<answer>``.

    >>> verdict_position(["<think>", "x", "</think>", "<answer", ">Fake", "</answer>"])
    (4, '>')
    >>> verdict_position(["<answer>", "Real"]), verdict_position(["no answer"])
    ((1, ''), None)
    """
    text = "".join(token_texts)
    at = text.rfind(ANSWER_TAG)
    if at < 0:
        return None
    start = at + len(ANSWER_TAG)
    offset = 0
    for j, piece in enumerate(token_texts):
        if offset <= start < offset + len(piece):
            return j, text[offset:start]
        offset += len(piece)
    return None


def two_way_probability(fake_logit: float, real_logit: float) -> float:
    """P(Fake) between the two continuations.

    >>> two_way_probability(0.0, 0.0), round(two_way_probability(2.0, 0.0), 4)
    (0.5, 0.8808)
    """
    m = max(fake_logit, real_logit)
    f, r = math.exp(fake_logit - m), math.exp(real_logit - m)
    return f / (f + r)


def _prediction(clip: EvalClip, model_name: str, text: str, probability: float | None, latency_s: float) -> Prediction:
    parsed = grammar.check(text, duration_s=clip.duration_s or None)
    return Prediction(
        video_id=clip.video_id, aigc_model_name=clip.aigc_model_name, mllm_model_name=model_name, gt=clip.gt,
        response=text, answer=parsed.answer or "Error", format_ok=parsed.ok and parsed.answer is not None,
        evidence=tuple(EvidenceItem(type=e.type, t=e.t, bbox=e.bbox) for e in parsed.evidence),
        fake_probability=None if probability is None else round(float(probability), 6),
        latency_s=round(latency_s, 4), base_id=clip.base_id)


def _first_token(encode: Callable[[str], list[int]], prefix: str, word: str) -> int:
    return encode(prefix + word)[0]


def predict_offline(model_dir: str | Path, evalset: EvalSet, profile: ModelProfile, *, model_name: str,
                    batch_size: int, max_new_tokens: int,
                    on_batch: Callable[[int, int], None] | None = None) -> list[Prediction]:
    """Greedy answers of the model folder on every clip of ``evalset`` (transformers, this process)."""
    import torch
    from PIL import Image

    from vigil.models.profile import load_for_training

    model, processor = load_for_training(model_dir, profile)
    model.eval()
    tok = processor.tokenizer
    encode = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
    predictions: list[Prediction] = []
    clips = list(evalset.clips)
    for start in range(0, len(clips), batch_size):
        batch = clips[start:start + batch_size]
        began = time.perf_counter()
        prompts, images = [], []
        for clip in batch:
            frames = load_clip(evalset.frames_dir(clip), profile.max_frames)
            imgs, stamps = clip_images(frames, profile.frame_pairs)
            prompts.append(processor.apply_chat_template(detector_messages(stamps, system_prompt=profile.system_prompt),
                                                         add_generation_prompt=True, tokenize=False))
            images.append([Image.fromarray(im) for im in imgs])
        inputs = processor(text=prompts, images=images, padding=True, padding_side="left", return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                 return_dict_in_generate=True, output_logits=True)
        new = out.sequences[:, inputs["input_ids"].shape[1]:]
        logits = torch.stack(out.logits, dim=1)  # (batch, steps, vocab)
        texts = processor.batch_decode(new, skip_special_tokens=True)
        per_clip_s = (time.perf_counter() - began) / len(batch)
        for row, (clip, text) in enumerate(zip(batch, texts, strict=True)):
            ids = new[row].tolist()
            stops = [k for k, i in enumerate(ids) if i in (tok.pad_token_id, tok.eos_token_id)]
            pieces = [tok.decode([i]) for i in ids[:stops[0] if stops else len(ids)]]  # index = generation step
            probability = None
            found = verdict_position(pieces)
            if found is not None:
                j, before = found
                step = logits[row, j]
                probability = two_way_probability(float(step[_first_token(encode, before, "Fake")]),
                                                  float(step[_first_token(encode, before, "Real")]))
            predictions.append(_prediction(clip, model_name, text, probability, per_clip_s))
        if on_batch:
            on_batch(len(predictions), len(clips))
    return predictions


def _logprob_probability(content: list) -> float | None:
    """P(Fake) from an OpenAI ``logprobs.content`` list (None when the verdict's alternatives are absent)."""
    pieces = [entry.token for entry in content]
    found = verdict_position(pieces)
    if found is None:
        return None
    j, before = found
    alternatives = {alt.token: alt.logprob for alt in (content[j].top_logprobs or [])}
    alternatives.setdefault(content[j].token, content[j].logprob)
    fake = next((lp for t, lp in alternatives.items() if (before + "Fake").startswith(t) and len(t) > len(before)), None)
    real = next((lp for t, lp in alternatives.items() if (before + "Real").startswith(t) and len(t) > len(before)), None)
    if fake is not None and real is not None:
        return two_way_probability(fake, real)
    if fake is not None:
        return math.exp(fake)
    if real is not None:
        return 1 - math.exp(real)
    return None


def predict_server(base_url: str, served_model: str, evalset: EvalSet, profile: ModelProfile, *, model_name: str,
                   max_new_tokens: int, api_key: str | None = None, timeout_s: float = 120.0,
                   on_batch: Callable[[int, int], None] | None = None) -> list[Prediction]:
    """Answers through an OpenAI-compatible server (vLLM, ``transformers serve``): the serving path."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url.rstrip("/") + ("" if base_url.rstrip("/").endswith("/v1") else "/v1"),
                    api_key=api_key or "not-needed", timeout=timeout_s, max_retries=2)
    predictions: list[Prediction] = []
    for n, clip in enumerate(evalset.clips, start=1):
        frames: ClipFrames = load_clip(evalset.frames_dir(clip), profile.max_frames)
        messages = openai_messages(frames, frame_pairs=profile.frame_pairs, system_prompt=profile.system_prompt)
        began = time.perf_counter()
        reply = client.chat.completions.create(model=served_model, messages=messages, max_tokens=max_new_tokens,
                                               temperature=0.0, logprobs=True, top_logprobs=5)
        latency = time.perf_counter() - began
        choice = reply.choices[0]
        text = choice.message.content or ""
        content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
        probability = _logprob_probability(content) if content else None
        predictions.append(_prediction(clip, model_name, text, probability, latency))
        if on_batch and (n % 8 == 0 or n == len(evalset.clips)):
            on_batch(n, len(evalset.clips))
    return predictions

