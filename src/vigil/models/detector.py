"""The detector: prompt → generate → parse → P(Fake), the one path every caller takes.

Evaluation (:mod:`vigil.evaluate.predict`) and the training pipeline's held-out check
(:mod:`vigil.train.heldout`) both answer clips through here, so a model is asked, read and scored
the same way wherever it runs:

* **prompt**: :mod:`vigil.models.inputs` (the builder training and serving use), with the profile's
  frame pairs and system prompt;
* **generate**: greedy, a whole batch per ``generate`` call (left padding), or one request to an
  OpenAI-compatible server (vLLM, ``transformers serve``) at temperature 0;
* **parse**: the grammar parser (:func:`vigil.core.grammar.check`): the verdict (``Error`` when no
  answer parses), the evidence, and format compliance (the whole output follows the grammar and the
  answer parsed);
* **P(Fake)**: the model's own probability of "Fake" against "Real" at the token that starts the
  verdict after the last ``<answer>``, from the first token of each continuation
  (:func:`logits_probability` offline, :func:`logprobs_probability` from a server's top
  log-probabilities). None when the output has no ``<answer>``, when the caller does not ask for it,
  or when a server returns no log-probabilities.

One :class:`Detection` per clip; :meth:`Detection.prediction` turns it into the evaluation record
(:class:`vigil.core.evaluation.Prediction`, Skyra's layout).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vigil.config.params import ModelProfile
from vigil.core import grammar
from vigil.core.evaluation import Answer, EvidenceItem, Prediction
from vigil.models.inputs import ClipFrames, clip_images, detector_messages, openai_messages

__all__ = ["ANSWER_TAG", "Detection", "detect_batch", "detect_openai", "load_detector", "logits_probability",
           "logprobs_probability", "openai_client", "read_answer", "two_way_probability", "verdict_position"]

ANSWER_TAG = "<answer>"


@dataclass(frozen=True)
class Detection:
    """The detector's answer on one clip."""

    text: str  # the model's raw output (special tokens dropped)
    verdict: Answer  # "Real", "Fake", or "Error" when no answer parses (counts as wrong)
    format_ok: bool  # the whole output follows the grammar and the answer parsed
    evidence: tuple[EvidenceItem, ...]  # parsed evidence, in order
    fake_probability: float | None  # P(Fake) at the verdict token; None when not available
    latency_s: float  # seconds for this clip (a batch's time / its size offline)

    @property
    def label(self) -> int | None:
        """The verdict as a label: Fake → 1, Real → 0, Error → None.

        >>> read_answer("<think>x</think><answer>Fake</answer>").label, read_answer("no").label
        (1, None)
        """
        return {"Fake": 1, "Real": 0}.get(self.verdict)

    def prediction(self, *, video_id: str, aigc_model_name: str, gt: Literal["Real", "Fake"], base_id: str,
                   mllm_model_name: str) -> Prediction:
        """This answer as the evaluation record (P(Fake) rounded to 6 places, latency to 4)."""
        return Prediction(
            video_id=video_id, aigc_model_name=aigc_model_name, mllm_model_name=mllm_model_name, gt=gt,
            response=self.text, answer=self.verdict, format_ok=self.format_ok, evidence=self.evidence,
            fake_probability=None if self.fake_probability is None else round(float(self.fake_probability), 6),
            latency_s=round(self.latency_s, 4), base_id=base_id)


# ---------------------------------------------------------------------------------------------
# Parse and P(Fake): pure functions


def read_answer(text: str, *, duration_s: float | None = None, fake_probability: float | None = None,
                latency_s: float = 0.0) -> Detection:
    """Parse one output with the grammar (evidence end times checked against ``duration_s`` when
    given) into a :class:`Detection`.

    >>> d = read_answer("<think>x</think><answer>Real</answer>", fake_probability=0.2)
    >>> d.verdict, d.format_ok, d.fake_probability
    ('Real', True, 0.2)
    >>> read_answer("<answer>Fake</answer>").format_ok, read_answer("gibberish").verdict  # no <think>
    (False, 'Error')
    """
    parsed = grammar.check(text, duration_s=duration_s)
    return Detection(text=text, verdict=parsed.answer or "Error", format_ok=parsed.ok and parsed.answer is not None,
                     evidence=tuple(EvidenceItem(type=e.type, t=e.t, bbox=e.bbox) for e in parsed.evidence),
                     fake_probability=fake_probability, latency_s=latency_s)


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


def logits_probability(token_texts: Sequence[str], step_logits: Any,
                       encode: Callable[[str], list[int]]) -> float | None:
    """P(Fake) from a generation's logits: ``token_texts[k]`` is the text of the token generated at
    step ``k`` and ``step_logits[k]`` the logits over the vocabulary at that step (a tensor or array
    row per step); ``encode`` tokenises without special tokens. The two-way softmax of the logits of
    the first token of "Fake" and of "Real" (each after the verdict token's text before the verdict)
    at the verdict step; None when there is no ``<answer>``.

    >>> vocab = {"<answer>": 0, "Fake": 1, "Real": 2}
    >>> encode = lambda s: [vocab[s]]
    >>> round(logits_probability(["<answer>", "Fake"], [[0, 0, 0], [0.0, 2.0, 0.0]], encode), 4)
    0.8808
    """
    found = verdict_position(token_texts)
    if found is None:
        return None
    j, before = found
    step = step_logits[j]
    return two_way_probability(float(step[encode(before + "Fake")[0]]), float(step[encode(before + "Real")[0]]))


def logprobs_probability(content: Sequence[Any]) -> float | None:
    """P(Fake) from an OpenAI ``logprobs.content`` list (entries with ``token``, ``logprob`` and
    ``top_logprobs``): the two-way softmax when both continuations are among the verdict token's
    alternatives, ``exp`` of the one that is (or 1 − it for Real) otherwise, None when neither is or
    there is no ``<answer>``."""
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


# ---------------------------------------------------------------------------------------------
# A loaded model (transformers, this process)


def load_detector(model_dir: str | Path, profile: ModelProfile):
    """(model, processor) of a model folder, loaded as every stage loads it, in eval mode."""
    from vigil.models.profile import load_for_training

    model, processor = load_for_training(model_dir, profile)
    model.eval()
    return model, processor


def detect_batch(model, processor, clips: Sequence[ClipFrames], profile: ModelProfile, *, max_new_tokens: int,
                 durations: Sequence[float | None] | None = None, fake_probability: bool = True,
                 started: float | None = None) -> list[Detection]:
    """Greedy answers of a loaded model on ``clips``, in one ``generate`` call; one
    :class:`Detection` per clip, in order.

    ``durations`` (seconds, per clip; None = not checked) bound the evidence end times the grammar
    accepts. ``fake_probability=False`` skips P(Fake) (no per-step logits are kept: less memory; the
    answers are the same). Each clip's latency is the batch's time, from ``started`` (a
    ``time.perf_counter()`` value, e.g. taken before the caller read the frames; default: now) to
    the decoded answers, divided by the batch size.
    """
    import torch
    from PIL import Image

    if not clips:
        return []
    began = time.perf_counter() if started is None else started
    durations = [None] * len(clips) if durations is None else list(durations)
    if len(durations) != len(clips):
        raise ValueError(f"{len(durations)} durations for {len(clips)} clips")
    prompts, images = [], []
    for clip in clips:
        imgs, stamps = clip_images(clip, profile.frame_pairs)
        prompts.append(processor.apply_chat_template(detector_messages(stamps, system_prompt=profile.system_prompt),
                                                     add_generation_prompt=True, tokenize=False))
        images.append([Image.fromarray(im) for im in imgs])
    inputs = processor(text=prompts, images=images, padding=True, padding_side="left", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             return_dict_in_generate=True, output_logits=fake_probability)
    new = out.sequences[:, inputs["input_ids"].shape[1]:]
    logits = torch.stack(out.logits, dim=1) if fake_probability else None  # (batch, steps, vocab)
    texts = processor.batch_decode(new, skip_special_tokens=True)
    per_clip_s = (time.perf_counter() - began) / len(clips)
    probabilities: list[float | None] = [None] * len(clips)
    if logits is not None:
        tok = processor.tokenizer
        encode = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
        for row in range(len(clips)):
            ids = new[row].tolist()
            stops = [k for k, i in enumerate(ids) if i in (tok.pad_token_id, tok.eos_token_id)]
            pieces = [tok.decode([i]) for i in ids[:stops[0] if stops else len(ids)]]  # index = generation step
            probabilities[row] = logits_probability(pieces, logits[row], encode)
    return [read_answer(text, duration_s=duration, fake_probability=probability, latency_s=per_clip_s)
            for text, duration, probability in zip(texts, durations, probabilities, strict=True)]


# ---------------------------------------------------------------------------------------------
# An OpenAI-compatible server (vLLM, ``transformers serve``)


def openai_client(base_url: str, *, api_key: str | None = None, timeout_s: float = 120.0):
    """An ``openai.OpenAI`` client for a server's base URL (``/v1`` added when missing)."""
    from openai import OpenAI

    root = base_url.rstrip("/")
    return OpenAI(base_url=root + ("" if root.endswith("/v1") else "/v1"), api_key=api_key or "not-needed",
                  timeout=timeout_s, max_retries=2)


def detect_openai(client, served_model: str, clip: ClipFrames, profile: ModelProfile, *, max_new_tokens: int,
                  duration_s: float | None = None) -> Detection:
    """The answer of a served model on one clip (temperature 0, top-5 log-probabilities for P(Fake));
    the latency is the request's."""
    messages = openai_messages(clip, frame_pairs=profile.frame_pairs, system_prompt=profile.system_prompt)
    began = time.perf_counter()
    reply = client.chat.completions.create(model=served_model, messages=messages, max_tokens=max_new_tokens,
                                           temperature=0.0, logprobs=True, top_logprobs=5)
    latency = time.perf_counter() - began
    choice = reply.choices[0]
    text = choice.message.content or ""
    content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
    probability = logprobs_probability(content) if content else None
    return read_answer(text, duration_s=duration_s, fake_probability=probability, latency_s=latency)
