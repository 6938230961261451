"""The detector (vigil.models.detector): one path from prompt to P(Fake) for evaluation and the held-out
stage. The tiny model (random weights) is steered into the answer grammar by a logits processor that
forces the tags and leaves the model's own logits to choose the verdict, so the answers are
well-formed and P(Fake) comes from the real model at the real verdict step."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vigil.core.evaluation import EvalClip
from vigil.models.detector import (
    Detection,
    detect_batch,
    load_detector,
    logits_probability,
    logprobs_probability,
    read_answer,
)
from vigil.models.inputs import ClipFrames

FPS = 4.0
FRAMES = 4  # ≤ the tiny profile's max_frames: evaluation reads every frame, as the held-out stage does
SIZE = 56  # 56 × 56 = the tiny profile's pixel caps: the processor does not resize


@pytest.fixture(scope="module")
def profile():
    from tests.support.workspaces import small_doc
    from vigil.config.params import parse_params

    return parse_params(small_doc()).model.active


@pytest.fixture(scope="module")
def loaded(tiny_model_dir, profile):
    return load_detector(tiny_model_dir, profile)


def _clips(n: int, seed: int = 0) -> list[ClipFrames]:
    rng = np.random.default_rng(seed)
    stamps = tuple(k / FPS for k in range(FRAMES))
    return [ClipFrames(rng.integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8), stamps) for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# Steering a random model into the grammar (the verdict stays the model's choice)


class ScriptedAnswer:
    """A logits processor: ``<think>x``, then ``free_steps`` of the model's own tokens (any but the
    verdict's), then ``</think><answer``; at the verdict step only the first tokens of ">Fake" and
    ">Real" are allowed (their logits untouched, so greedy picks the larger: the model's own
    choice); then the rest of the chosen word, ``</answer>`` and end of sequence."""

    def __init__(self, tokenizer, prompt_len: int, free_steps: int = 0):
        encode = lambda s: tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
        self.prompt_len, self.free_steps = prompt_len, free_steps
        self.head, self.mid = encode("<think>x"), encode("</think><answer")
        self.choices = {encode(">" + w)[0]: encode(">" + w)[1:] + encode("</answer>") for w in ("Fake", "Real")}
        self.eos = tokenizer.eos_token_id

    @property
    def verdict_step(self) -> int:
        return len(self.head) + self.free_steps + len(self.mid)

    def __call__(self, input_ids, scores):
        import torch

        step = input_ids.shape[1] - self.prompt_len
        out = torch.full_like(scores, -math.inf)
        for row in range(scores.shape[0]):
            if step < len(self.head):
                allowed = [self.head[step]]
            elif step < len(self.head) + self.free_steps:  # the model's own, but no verdict yet
                out[row] = scores[row]
                out[row, list(self.choices)] = -math.inf
                continue
            elif step < self.verdict_step:
                allowed = [self.mid[step - len(self.head) - self.free_steps]]
            elif step == self.verdict_step:
                allowed = list(self.choices)
            else:
                rest = self.choices.get(int(input_ids[row, self.prompt_len + self.verdict_step]), [])
                k = step - self.verdict_step - 1
                allowed = [rest[k] if k < len(rest) else self.eos]
            out[row, allowed] = scores[row, allowed]
        return out


class Steered:
    """A loaded model whose ``generate`` runs with :class:`ScriptedAnswer` (everything else as is)."""

    def __init__(self, model, tokenizer, free_steps: int = 0):
        self.model, self.tokenizer, self.free_steps = model, tokenizer, free_steps

    def generate(self, **kwargs):
        from transformers import LogitsProcessorList

        script = ScriptedAnswer(self.tokenizer, kwargs["input_ids"].shape[1], self.free_steps)
        return self.model.generate(**kwargs, logits_processor=LogitsProcessorList([script]))


def undecide(model, processor, profile, clips: list[ClipFrames], free_steps: int = 0):
    """A copy of the model whose greedy verdict turns on the clip: the ">Fake" output row is set to
    the ">Re" row plus a direction that is zero on average over the clips' states at the verdict
    step (steered by :class:`ScriptedAnswer`), so those clips fall on both sides of the verdict.
    (The random model alone prefers Real on every clip.)"""
    import copy

    import torch

    encode = lambda s: processor.tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    fake, real = encode(">Fake")[0], encode(">Real")[0]
    states = []
    hook = model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: states.append(args[0][:, -1].detach().clone()))
    try:
        detect_batch(Steered(model, processor.tokenizer, free_steps), processor, clips, profile, max_new_tokens=24)
    finally:
        hook.remove()
    # (clips, hidden): lm_head runs once per generation step, on the last position
    h = states[ScriptedAnswer(processor.tokenizer, 0, free_steps).verdict_step]
    mean = h.mean(0)
    direction = torch.randn(h.shape[1], generator=torch.Generator().manual_seed(0))
    direction -= (mean @ direction) / (mean @ mean) * mean  # zero on the mean state
    direction *= 2.0 / (h @ direction).std()  # logit gaps of about ±2
    twin = copy.deepcopy(model)
    head = twin.get_output_embeddings().weight
    with torch.no_grad():
        head[fake] = head[real] + direction
    return twin


# ---------------------------------------------------------------------------------------------
# The parse / P(Fake) step, on hand-written completions


def test_read_answer_parses_the_grammar_into_verdict_evidence_and_format():
    # given hand-written completions: well-formed Fake with evidence, no <think>, nothing parsable
    good = ("<think>The hand melts.<type>Shape Distortion</type><t>0.10-0.40</t><bbox>0.1,0.2,0.5,0.6</bbox>"
            "</think><answer>Fake</answer>")
    # when they are read
    fake, bare, junk = read_answer(good), read_answer("<answer>Real</answer>"), read_answer("no idea")
    # then the verdict, the evidence and format compliance are the grammar's
    assert (fake.verdict, fake.label, fake.format_ok) == ("Fake", 1, True)
    assert len(fake.evidence) == 1
    assert fake.evidence[0].t == (0.1, 0.4) and fake.evidence[0].bbox == (0.1, 0.2, 0.5, 0.6)
    assert (bare.verdict, bare.label, bare.format_ok) == ("Real", 0, False)
    assert (junk.verdict, junk.label, junk.format_ok, junk.evidence) == ("Error", None, False, ())
    # and an end time past the clip is a format violation only when the duration is given
    assert read_answer(good).format_ok and not read_answer(good, duration_s=0.2).format_ok
    assert read_answer(good, duration_s=0.2).verdict == "Fake"


def test_p_fake_from_logits_reads_the_verdict_step_and_agrees_with_the_greedy_verdict():
    # given a toy vocabulary where the verdict token carries the text after the tag (as BPE merges do)
    vocab = {"<think>": 0, "x": 1, "</think>": 2, "<answer": 3, ">Fake": 4, ">Re": 5, "al": 6, "</answer>": 7}
    encode = lambda s: [vocab[max((t for t in vocab if s.startswith(t)), key=len)]]  # noqa: E731
    pieces = ["<think>", "x", "</think>", "<answer", ">Fake", "</answer>"]
    logits = np.zeros((len(pieces), len(vocab)))
    logits[4, vocab[">Fake"]], logits[4, vocab[">Re"]] = 1.5, -0.5
    # when P(Fake) is taken from the logits at each generation step
    p = logits_probability(pieces, logits, encode)
    # then it is the two-way softmax at the verdict step, above one half since greedy chose Fake
    assert p == pytest.approx(1 / (1 + math.exp(-2.0))) and p > 0.5
    assert read_answer("".join(pieces), fake_probability=p).verdict == "Fake"
    # and the other way round for Real, and None without an <answer>
    logits[4, vocab[">Re"]] = 3.0
    assert logits_probability(pieces, logits, encode) < 0.5
    assert logits_probability(["<think>", "x", "</think>"], logits, encode) is None


def test_p_fake_from_a_servers_top_logprobs():
    def entry(token, logprob, top=()):
        return SimpleNamespace(token=token, logprob=logprob,
                               top_logprobs=[SimpleNamespace(token=t, logprob=lp) for t, lp in top])

    # given the logprobs of a served answer whose verdict token is ">Fake", with ">Re" an alternative
    content = [entry("<answer", -0.1),
               entry(">Fake", math.log(0.6), [(">Fake", math.log(0.6)), (">Re", math.log(0.2))]),
               entry("</answer>", -0.01)]
    # then P(Fake) is the two-way softmax of the two
    assert logprobs_probability(content) == pytest.approx(0.75)
    # and with only one of them among the alternatives, its own probability; none without <answer>
    assert logprobs_probability([entry("<answer>", -0.1), entry("Real", math.log(0.9))]) == pytest.approx(0.1)
    assert logprobs_probability([entry("no answer", -0.1)]) is None


# ---------------------------------------------------------------------------------------------
# The tiny model


def test_detect_batch_gives_one_parsed_answer_per_clip(loaded, profile):
    model, processor = loaded
    clips = _clips(3)
    # when the detector answers three clips in one batch
    answers = detect_batch(model, processor, clips, profile, max_new_tokens=12)
    # then there is one answer per clip, read by the grammar, with a latency and P(Fake) in [0, 1] or None
    assert len(answers) == len(clips) and all(isinstance(a, Detection) for a in answers)
    for a in answers:
        parsed = read_answer(a.text)
        assert (a.verdict, a.format_ok, a.evidence) == (parsed.verdict, parsed.format_ok, parsed.evidence)
        assert a.latency_s > 0
        assert a.fake_probability is None or 0.0 <= a.fake_probability <= 1.0
    # and no clip, no generate
    assert detect_batch(model, processor, [], profile, max_new_tokens=12) == []


def test_well_formed_answers_have_p_fake_in_0_1_that_agrees_with_the_verdict(loaded, profile):
    model, processor = loaded
    # given the model steered into the grammar (the verdict is still its own greedy choice), its
    # verdict made to turn on the clip
    clips = _clips(6, seed=1)
    steered = Steered(undecide(model, processor, profile, clips), processor.tokenizer)
    # when it answers
    answers = detect_batch(steered, processor, clips, profile, max_new_tokens=24)
    # then every answer is well-formed, with P(Fake) in [0, 1] on the side of its verdict, both verdicts seen
    assert len(answers) == len(clips) and {a.verdict for a in answers} == {"Fake", "Real"}
    for a in answers:
        assert a.format_ok and a.verdict in ("Fake", "Real"), a.text
        assert a.fake_probability is not None and 0.0 <= a.fake_probability <= 1.0
        assert (a.fake_probability > 0.5) == (a.verdict == "Fake"), (a.text, a.fake_probability)
    # and asking for no P(Fake) changes nothing else
    plain = detect_batch(steered, processor, clips, profile, max_new_tokens=24, fake_probability=False)
    assert [(a.text, a.verdict) for a in plain] == [(a.text, a.verdict) for a in answers]
    assert all(a.fake_probability is None for a in plain)


def test_evaluation_and_the_heldout_stage_give_the_same_verdict_for_the_same_clip(
        tiny_model_dir, profile, loaded, tmp_path, monkeypatch):
    from PIL import Image

    import vigil.evaluate.predict as predict
    import vigil.train.heldout as heldout
    from vigil.evaluate.evalsets import EvalSet
    from vigil.train.pretrain import PretrainData

    # given the same clips as an evaluation set on disk and as held-out clips in memory
    clips = _clips(4, seed=2)
    frames = np.stack([c.frames for c in clips])
    labels, generators = np.array([0, 1, 0, 1]), np.array(["g1", "g1", "g2", "g2"])
    held = PretrainData(frames=frames, targets=np.zeros((4, 1), bool), label=labels, pair=np.array([0, 0, 1, 1]),
                        generator=generators, types=np.array(["", "Shape Distortion", "", "Shape Distortion"]),
                        holdout=np.zeros(4, bool))
    records = []
    for i, clip in enumerate(clips):
        generator = str(generators[i]) if labels[i] else "Real"
        folder = tmp_path / "frames" / str(i)  # Skyra's layout: 1.png … N.png and timestamps.txt
        folder.mkdir(parents=True)
        for k, frame in enumerate(clip.frames, start=1):
            Image.fromarray(frame).save(folder / f"{k}.png")
        (folder / "timestamps.txt").write_text("".join(f"{t:.4f}\n" for t in clip.timestamps))
        records.append(EvalClip(video_id=f"{generator}/b{i // 2}", aigc_model_name=generator,
                                gt="Fake" if labels[i] else "Real", base_id=f"b{i // 2}", frames_dir=f"frames/{i}",
                                duration_s=FRAMES / FPS))
    evalset = EvalSet(tmp_path, "es-test", "folder", {}, tuple(records))
    # and both callers loading the model steered into the grammar, with a few free steps of its own
    model, processor = loaded
    twin = undecide(model, processor, profile, clips, free_steps=2)
    steer = lambda model_dir, prof: (Steered(twin, processor.tokenizer, free_steps=2), processor)  # noqa: E731
    monkeypatch.setattr(predict, "load_detector", steer)
    monkeypatch.setattr(heldout, "load_detector", steer)
    # when evaluation predicts and the held-out stage answers, in batches of the same size
    predictions = predict.predict_offline(tiny_model_dir, evalset, profile, model_name="m", batch_size=2,
                                          max_new_tokens=24)
    answers = heldout.detect_heldout(tiny_model_dir, held, profile, fps=FPS, batch_size=2, max_new_tokens=24,
                                     progress=False)
    # then each clip gets the same text and verdict on both paths
    assert [p.response for p in predictions] == [a.text for a in answers]
    assert [p.answer for p in predictions] == [a.verdict for a in answers]
    assert {"Fake", "Real"} <= {p.answer for p in predictions} <= {"Fake", "Real", "Error"}
    # and the held-out stage scores them with the evaluator's metrics, in its usual keys
    metrics = heldout.score_predictions(heldout.heldout_predictions(answers, held, "m"), held)
    assert set(metrics) == {"clips", "paired_balanced_accuracy", "accuracy", "fake_recall", "real_recall",
                            "unparsable", "format_compliance", "per_generator_paired_balanced_accuracy",
                            "fake_recall_per_artifact_type"}
    from vigil.core.metrics.classification import accuracy, answer_label

    assert metrics["clips"] == 4 and metrics["accuracy"] == round(
        accuracy([answer_label(p.answer) for p in predictions], labels.tolist()), 4)
    assert set(metrics["per_generator_paired_balanced_accuracy"]) == {"g1", "g2"}


def test_the_models_package_imports_neither_evaluate_nor_train():
    # models is a domain package: evaluation and training import it, never the reverse (lazy imports too)
    root = Path(__file__).resolve().parents[2] / "src" / "vigil" / "models"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("vigil.evaluate", "vigil.train")), f"{path.name} imports {name}"
