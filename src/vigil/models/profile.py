"""Model profiles (params.yaml ``model``): one code path from the tiny CPU model to Qwen2.5-VL-7B.

A profile names a base (a Hugging Face id or folder, or ``null`` for the locally built tiny model),
the frame and pixel caps, and how to fine-tune. Every stage loads models through here, so the
processor's pixel caps and the frame-pair image processor are always the ones the profile says.
"""

from __future__ import annotations

import json
from pathlib import Path

from vigil.config.params import ModelProfile
from vigil.models.compat import ensure_transformers_compat

__all__ = ["build_base", "configure_processor", "load_for_training", "load_processor", "model_dtype"]

PROFILE_FILE = "vigil_profile.json"


def model_dtype(profile: ModelProfile):
    import torch

    return torch.bfloat16 if profile.dtype == "bfloat16" else torch.float32


def configure_processor(processor, profile: ModelProfile):
    """Set the profile's pixel caps; swap in the frame-pair image processor when it asks for pairs."""
    from vigil.models.frame_pairs import FramePairImageProcessor

    image = processor.image_processor
    size = {"shortest_edge": profile.min_pixels, "longest_edge": profile.max_pixels}
    keep = {k: getattr(image, k) for k in ("patch_size", "merge_size", "temporal_patch_size", "image_mean",
                                             "image_std", "resample")}
    processor.image_processor = FramePairImageProcessor(frame_pairs=profile.frame_pairs, size=size, **keep)
    return processor


def load_processor(model_dir: str | Path):
    """The processor saved with a model (its image processor may be Vigil's frame-pair one)."""
    ensure_transformers_compat()
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(model_dir), trust_remote_code=True)


def build_base(profile: ModelProfile, out_dir: str | Path) -> Path:
    """The starting model folder of a profile: the tiny model built here, or a copy-free reference.

    For the tiny profile the model is built with random weights (seeded) and saved with the
    profile's processor. For a named base nothing is downloaded here: the folder gets only
    ``vigil_profile.json`` pointing at the base, and :func:`load_for_training` reads it.
    """
    ensure_transformers_compat()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if profile.base is None:
        from vigil.models.tiny import TinyModelConfig, build_tiny_model

        build_tiny_model(out, TinyModelConfig(**profile.tiny.model_dump(), min_pixels=profile.min_pixels,
                                              max_pixels=profile.max_pixels))
        configure_processor(load_processor(out), profile).save_pretrained(out)
    (out / PROFILE_FILE).write_text(json.dumps({"base": profile.base, "profile": profile.model_dump(mode="json")},
                                               indent=2, sort_keys=True) + "\n")
    return out


def resolve_weights(model_dir: str | Path) -> str:
    """The folder (or hub id) that holds the weights of a stage's model folder."""
    model_dir = Path(model_dir)
    if (model_dir / "config.json").is_file():
        return str(model_dir)
    info = json.loads((model_dir / PROFILE_FILE).read_text())
    if not info.get("base"):
        raise FileNotFoundError(f"{model_dir} has neither weights nor a base model reference")
    return info["base"]


def load_for_training(model_dir: str | Path, profile: ModelProfile):
    """(model, processor) with the profile's dtype, frozen tower, LoRA and checkpointing applied."""
    ensure_transformers_compat()
    from transformers import AutoModelForImageTextToText, AutoProcessor

    weights = resolve_weights(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(weights, dtype=model_dtype(profile))
    processor = configure_processor(AutoProcessor.from_pretrained(weights, trust_remote_code=True), profile)
    if profile.freeze_vision:
        for p in model.model.visual.parameters():
            p.requires_grad_(False)
    if profile.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model, processor


def lora_config(profile: ModelProfile):
    """The peft LoRA config of a profile, or None for full fine-tuning."""
    if profile.finetune != "lora":
        return None
    from peft import LoraConfig

    # Only language-model modules: the regex keeps the tower's same-named projections out.
    names = "|".join(profile.lora.target_modules)
    return LoraConfig(r=profile.lora.r, lora_alpha=profile.lora.alpha, lora_dropout=profile.lora.dropout,
                      target_modules=rf".*language_model.*\.({names})", task_type="CAUSAL_LM")
