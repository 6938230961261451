"""The ``sft`` and ``grpo`` stages: TRL's SFTTrainer and GRPOTrainer on a prepared dataset version.

Both stages take a model folder and the ``prepare`` folder, and write a model folder plus metrics.
Prompts come from :mod:`vigil.models.inputs` (the same builder serving will use); the SFT target is
the annotation's explanation in the output grammar, with the loss on the assistant turn only; GRPO
scores sampled completions with :mod:`vigil.train.rewards`. Checkpoints are TRL's own
(``checkpoint-N`` folders, resumed with ``resume_from_checkpoint``), mirrored to the store.

Label-only samples (a verdict, no grounded evidence) always reach GRPO, whose answer reward needs
only the label; SFT leaves them out or trains on their "no artifact was localised" target as
``train.sft.label_only`` says (:func:`sft_samples`; the measurement behind the default is in
README's label-only section).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from vigil.config.params import GrpoParams, ModelProfile, SftParams
from vigil.core import grammar
from vigil.models.compat import ensure_transformers_compat
from vigil.models.inputs import clip_images, detector_messages, load_clip, png_bytes
from vigil.train.prepare import TrainingSample
from vigil.train.runlog import MetricLog, fingerprint, mirror_checkpoint, write_metrics

log = logging.getLogger(__name__)

RUN_KEY_FILE = "vigil_run_key.txt"
# Logged by TRL under these names; kept (renamed) in the stage's metric rows.
_LOGGED = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "mean_token_accuracy": "token_accuracy",
           "reward": "reward_mean", "reward_std": "reward_std", "kl": "kl", "entropy": "entropy",
           "completions/mean_length": "completion_length"}


# ------------------------------------------------------------------------------------ datasets

def sft_samples(samples: list[TrainingSample], label_only: str) -> list[TrainingSample]:
    """The samples SFT trains on: label-only ones are kept (``"verdict"``) or left out (``"skip"``).

    >>> a = TrainingSample("a", "train", "fake", "g", None, 2.0, "frames/a", "<answer>Fake</answer>", None, True)
    >>> b = TrainingSample("b", "train", "real", "real", None, 2.0, "frames/b", "<answer>Real</answer>", [])
    >>> [s.sample_id for s in sft_samples([a, b], "skip")], len(sft_samples([a, b], "verdict"))
    (['b'], 2)
    """
    if label_only not in ("skip", "verdict"):
        raise ValueError(f"train.sft.label_only must be 'skip' or 'verdict', got {label_only!r}")
    return list(samples) if label_only == "verdict" else [s for s in samples if not s.label_only]


def png_image(pixels) -> dict[str, Any]:
    """An ``(h, w, 3)`` uint8 array as the ``datasets`` library stores an image, PNG at zlib level 1.

    Lossless like the library's own encoding of a PIL image (level 6), and several times faster: at
    level 6 a 941-clip training split spent a minute compressing its 6,587 images before step 1.
    """
    return {"bytes": png_bytes(pixels, compress_level=1), "path": None}


def clip_example(sample: TrainingSample, prepared_dir: str | Path, profile: ModelProfile) -> dict[str, Any]:
    """Prompt messages and images (encoded: :func:`png_image`) of one prepared sample, as TRL's
    vision-language trainers read them once :func:`_dataset` has typed the images."""
    clip = load_clip(Path(prepared_dir) / sample.frames_dir, profile.max_frames)
    images, stamps = clip_images(clip, profile.frame_pairs)
    return {"prompt": detector_messages(stamps, system_prompt=profile.system_prompt),
            "images": [png_image(im) for im in images]}


def clip_examples(samples: list[TrainingSample], prepared_dir: str | Path, profile: ModelProfile) -> list[dict]:
    """:func:`clip_example` of every sample, in order, on a few threads (PNG decoding and encoding
    release the GIL: 1.7x on 2 cores)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda s: clip_example(s, prepared_dir, profile), samples))


def _dataset(rows: list[dict[str, Any]]):
    """A ``datasets.Dataset`` of ``rows`` whose ``images`` decode to PIL images when read."""
    from datasets import Dataset, Image, List

    return Dataset.from_list(rows).cast_column("images", List(Image()))


def completion_target(sample: TrainingSample, profile: ModelProfile) -> str:
    """The SFT completion for ``sample``: its explanation, or only its evidence (``profile.sft_target``)."""
    return sample.target if profile.sft_target == "explanation" else grammar.condense(sample.target)


def sft_dataset(samples: list[TrainingSample], targets: list[str], prepared_dir: str | Path, profile: ModelProfile):
    """Prompt-completion rows: each sample's prompt and images, and its target (:func:`completion_target`)."""
    rows = [example | {"completion": [{"role": "assistant", "content": [{"type": "text", "text": target}]}]}
            for example, target in zip(clip_examples(samples, prepared_dir, profile), targets, strict=True)]
    return _dataset(rows)


def grpo_dataset(samples: list[TrainingSample], prepared_dir: str | Path, profile: ModelProfile):
    rows = [example | {"label": s.label, "truth": s.truth or [], "duration_s": s.duration_s or 0.0}
            for s, example in zip(samples, clip_examples(samples, prepared_dir, profile), strict=True)]
    return _dataset(rows)


def decision_offset(tokenizer) -> int:
    """Tokens from the completion's start to the one that tells a condensed Fake from a Real."""
    fake, real = (tokenizer(grammar.render(answer, [ev]), add_special_tokens=False).input_ids
                  for answer, ev in (("Fake", grammar.Evidence("Shape Distortion", (0, 1), (0, 0, 1, 1))),
                                     ("Real", grammar.Evidence(None, (0, 1), (0, 0, 1, 1)))))
    return next(i for i, (a, b) in enumerate(zip(fake, real)) if a != b)


def decision_weights(label_mask, offset: int, weight: float):
    """Per-token loss weights: 1 on completion tokens (``label_mask``, shape (batch, tokens)), and
    ``weight`` on the token ``offset`` places into each row's completion."""
    import torch

    weights = label_mask.float()
    rows = torch.arange(len(weights), device=weights.device)
    decision = (weights.argmax(dim=1) + offset).clamp(max=weights.shape[1] - 1)
    weights[rows, decision] = weights[rows, decision] * weight
    return weights


def _decision_weighted_trainer(weight: float, offset: int):
    """TRL's SFTTrainer with one change: the token that decides Fake or Real weighs ``weight`` tokens.

    In a condensed target the verdict is one token among ~100 hard-to-predict digits, so a plain token
    mean gives it a hundredth of the gradient. TRL's own forward (the fused LM head: per-token
    log-probabilities, no full logits) is reused; the metrics are logged as TRL logs them.
    """
    from trl import SFTTrainer

    class DecisionWeightedSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            mode = "train" if model.training else "eval"
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)
            weights = decision_weights(outputs.label_mask, offset, weight)
            loss = -(outputs.log_probs * weights).sum() / weights.sum().clamp(min=1)
            gather = self.accelerator.gather_for_metrics
            valid = gather(outputs.label_mask.sum()).sum().clamp(min=1)
            self._metrics[mode]["entropy"].append((gather(outputs.entropy.detach().sum()).sum() / valid).item())
            self._metrics[mode]["mean_token_accuracy"].append((gather(outputs.is_top1.sum()).sum() / valid).item())
            if mode == "train":
                self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item()
                self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return (loss, outputs) if return_outputs else loss

    return DecisionWeightedSFTTrainer


# ----------------------------------------------------------------------------------- callbacks

def _callback(metric_log: MetricLog, store, store_prefix: str | None, checkpoint_dir: Path):
    from transformers import TrainerCallback

    class StageCallback(TrainerCallback):
        """Metric rows (with step time and tokens/s) for dvc plots; checkpoints mirrored to the store."""

        def __init__(self) -> None:
            self.last_time = time.perf_counter()
            self.last_step = 0
            self.last_tokens = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.last_time, self.last_step = time.perf_counter(), state.global_step
            self.last_tokens = float(state.num_input_tokens_seen or 0)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs and "reward" not in logs:
                return  # the end-of-training summary, not a step row
            now = time.perf_counter()
            steps = max(state.global_step - self.last_step, 1)
            row: dict[str, Any] = {"step": state.global_step}
            row |= {name: round(float(logs[key]), 6) for key, name in _LOGGED.items() if key in logs}
            row["step_s"] = round((now - self.last_time) / steps, 4)
            tokens = float(logs.get("num_tokens", 0.0))
            if tokens:
                row["tokens_per_s"] = round((tokens - self.last_tokens) / (now - self.last_time), 1)
                self.last_tokens = tokens
            metric_log.add(row)
            self.last_time, self.last_step = now, state.global_step

        def on_save(self, args, state, control, **kwargs):
            if store_prefix:
                folder = checkpoint_dir / f"checkpoint-{state.global_step}"
                mirror_checkpoint(store, folder, f"{store_prefix}/{folder.name}")

    return StageCallback()


def _resume_point(checkpoint_dir: Path, run_key: str) -> str | None:
    """The last checkpoint of an interrupted run with the same inputs; stale checkpoints are cleared."""
    from transformers.trainer_utils import get_last_checkpoint

    key_file = checkpoint_dir / RUN_KEY_FILE
    if checkpoint_dir.is_dir() and (not key_file.is_file() or key_file.read_text().strip() != run_key):
        log.info("clearing checkpoints of a run with other inputs in %s", checkpoint_dir)
        shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    key_file.write_text(run_key + "\n")
    last = get_last_checkpoint(str(checkpoint_dir))
    if last:
        log.info("resuming from %s", last)
    return last


def _common_args(params: SftParams | GrpoParams, profile: ModelProfile, checkpoint_dir: Path, seed: int,
                 progress: bool) -> dict[str, Any]:
    import torch

    return dict(output_dir=str(checkpoint_dir), max_steps=params.max_steps, learning_rate=params.lr,
                logging_steps=params.log_every, save_steps=params.checkpoint_every, save_total_limit=2,
                seed=seed, data_seed=seed, report_to=[], disable_tqdm=not progress,
                bf16=profile.dtype == "bfloat16", use_cpu=not torch.cuda.is_available(),
                gradient_checkpointing=profile.gradient_checkpointing, dataloader_num_workers=0,
                remove_unused_columns=False)


def _save(trainer, processor, profile: ModelProfile, out_dir: Path) -> None:
    """The stage's model folder: full weights (LoRA merged, so that the next stage and serving load
    one model) and the processor."""
    model = trainer.model
    if profile.finetune == "lora":
        model = model.merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def _summary(result, started: float, start_step: int, params) -> dict[str, Any]:
    elapsed = time.perf_counter() - started
    steps = max(params.max_steps - start_step, 1)
    return {"steps": params.max_steps, "resumed_from_step": start_step, "train_s": round(elapsed, 1),
            "s_per_step": round(elapsed / steps, 4), "train_loss": round(float(result.training_loss), 5)}


def _start_step(last: str | None) -> int:
    return int(Path(last).name.split("-")[-1]) if last else 0


# ------------------------------------------------------------------------------------------ SFT

def run_sft(init_dir: str | Path, prepared_dir: str | Path, samples: list[TrainingSample], params: SftParams,
            profile: ModelProfile, out_dir: str | Path, checkpoint_dir: str | Path, metrics_dir: str | Path, *,
            seed: int = 0, store=None, store_prefix: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Supervised fine-tuning on the samples' grounded explanations (label-only ones per
    ``params.label_only``: :func:`sft_samples`); returns the stage's metrics."""
    n_label_only = sum(s.label_only for s in samples)
    samples = sft_samples(samples, params.label_only)
    if not samples:
        raise ValueError("no sample left for SFT: every training sample is label-only and train.sft.label_only is "
                         "'skip'; set it to 'verdict', or ground some clips (Label Studio, a teacher)")
    ensure_transformers_compat()
    from trl import SFTConfig, SFTTrainer

    from vigil.models.profile import load_for_training, lora_config

    model, processor = load_for_training(init_dir, profile)
    targets = [completion_target(s, profile) for s in samples]
    dataset = sft_dataset(samples, targets, prepared_dir, profile)
    checkpoint_dir = Path(checkpoint_dir)
    run_key = fingerprint("sft", params.model_dump(mode="json"), profile.model_dump(mode="json"), seed,
                          [s.sample_id for s in samples], targets, _model_identity(init_dir))
    last = _resume_point(checkpoint_dir, run_key)
    metric_log = MetricLog(Path(metrics_dir) / "sft_log.csv", resume_from_step=_start_step(last))
    config = SFTConfig(**_common_args(params, profile, checkpoint_dir, seed, progress),
                       per_device_train_batch_size=params.batch_size, warmup_steps=params.warmup_ratio,
                       lr_scheduler_type="cosine", completion_only_loss=True, max_length=None)
    trainer_class = (SFTTrainer if profile.decision_weight == 1 else
                     _decision_weighted_trainer(profile.decision_weight, decision_offset(processor.tokenizer)))
    trainer = trainer_class(model=model, args=config, train_dataset=dataset, processing_class=processor,
                            peft_config=lora_config(profile),
                            callbacks=[_callback(metric_log, store, store_prefix, checkpoint_dir)])
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    metrics = _summary(result, started, _start_step(last), params)
    metrics["samples_per_s"] = round((params.max_steps - _start_step(last)) * params.batch_size
                                     / max(metrics["train_s"], 1e-9), 2)
    metrics["train_samples"] = len(samples)
    metrics["label_only_samples"] = {"seen": n_label_only, "trained": sum(s.label_only for s in samples)}
    _save(trainer, processor, profile, Path(out_dir))
    write_metrics(Path(metrics_dir) / "sft.json", metrics)
    log.info("sft: %s", metrics)
    return metrics


# ----------------------------------------------------------------------------------------- GRPO

def run_grpo(init_dir: str | Path, prepared_dir: str | Path, samples: list[TrainingSample], params: GrpoParams,
             profile: ModelProfile, out_dir: str | Path, checkpoint_dir: str | Path, metrics_dir: str | Path, *,
             seed: int = 0, store=None, store_prefix: str | None = None, progress: bool = True) -> dict[str, Any]:
    """GRPO from the SFT model with the rewards and weights of ``params.rewards``."""
    from vigil.train.rewards import REWARD_FUNCTIONS

    unknown = set(params.rewards) - set(REWARD_FUNCTIONS)
    if unknown:
        raise ValueError(f"train.grpo.rewards names unknown reward functions {sorted(unknown)}; "
                         f"known: {', '.join(REWARD_FUNCTIONS)}")
    ensure_transformers_compat()
    from trl import GRPOConfig, GRPOTrainer

    from vigil.models.profile import load_for_training, lora_config
    names = sorted(params.rewards)
    model, processor = load_for_training(init_dir, profile)
    _warn_if_cut(processor, [completion_target(s, profile) for s in samples], params.max_completion_length)
    dataset = grpo_dataset(samples, prepared_dir, profile)
    checkpoint_dir = Path(checkpoint_dir)
    run_key = fingerprint("grpo", params.model_dump(mode="json"), profile.model_dump(mode="json"), seed,
                          [s.sample_id for s in samples], _model_identity(init_dir))
    last = _resume_point(checkpoint_dir, run_key)
    metric_log = MetricLog(Path(metrics_dir) / "grpo_log.csv", resume_from_step=_start_step(last))
    config = GRPOConfig(**_common_args(params, profile, checkpoint_dir, seed, progress),
                        per_device_train_batch_size=params.batch_size, num_generations=params.num_generations,
                        max_completion_length=params.max_completion_length, temperature=params.temperature,
                        beta=params.beta, reward_weights=[params.rewards[n] for n in names], log_completions=False)
    trainer = GRPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor,
                          reward_funcs=[REWARD_FUNCTIONS[n] for n in names], peft_config=lora_config(profile),
                          callbacks=[_callback(metric_log, store, store_prefix, checkpoint_dir)])
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    metrics = _summary(result, started, _start_step(last), params)
    rows = [r for r in metric_log.rows if "reward_mean" in r]
    if rows:
        metrics |= {k: float(rows[-1][k]) for k in ("reward_mean", "reward_std", "kl") if rows[-1].get(k) not in
                    (None, "")}
    _save(trainer, processor, profile, Path(out_dir))
    write_metrics(Path(metrics_dir) / "grpo.json", metrics)
    log.info("grpo: %s", metrics)
    return metrics


def _warn_if_cut(processor, targets: list[str], max_tokens: int) -> None:
    """A completion cut before ``</answer>`` is broken format (reward 0): say so when the SFT targets
    would not fit."""
    lengths = sorted(len(processor.tokenizer(t).input_ids) for t in targets)
    if lengths and lengths[len(lengths) // 2] > max_tokens:
        log.warning("train.grpo.max_completion_length %d is shorter than half the training explanations "
                    "(median %d tokens): most completions will be cut and score 0; raise it", max_tokens,
                    lengths[len(lengths) // 2])


def _model_identity(model_dir: str | Path) -> str:
    """What the next stage's checkpoints depend on: the starting weights' size and mtime-free hash."""
    from vigil.core.hashing import sha256_file

    weights = sorted(Path(model_dir).glob("*.safetensors"))
    return ",".join(sha256_file(w) for w in weights) or str(model_dir)
