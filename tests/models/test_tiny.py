"""The tiny profile: a Qwen2.5-VL built locally, reloaded offline the way production loads models."""

from __future__ import annotations

import base64
import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from vigil.core.taxonomy import load_taxonomy
from vigil.models.compat import ensure_transformers_compat
from vigil.models.tiny import GRAMMAR_TAGS, QWEN_SPECIAL_TOKENS, TinyModelConfig, build_tiny_model


def _frame(seed: int, size=(112, 112)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    """Processor and model reloaded with the Auto classes, hub access switched off."""
    ensure_transformers_compat()
    import huggingface_hub.constants as hub_constants
    from transformers import AutoModelForImageTextToText, AutoProcessor

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(hub_constants, "HF_HUB_OFFLINE", True)
        processor = AutoProcessor.from_pretrained(tiny_model_dir)
        model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    return processor, model


def test_config_fields_all_have_help_and_bad_sizes_are_refused():
    for f in dataclasses.fields(TinyModelConfig):
        assert f.metadata.get("help"), f.name
    with pytest.raises(ValueError):
        TinyModelConfig(text_hidden_size=130)
    with pytest.raises(ValueError):
        TinyModelConfig(vocab_size=100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TinyModelConfig().seed = 1  # type: ignore[misc]


def test_folder_is_small_and_complete(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json",
            "chat_template.jinja", "generation_config.json", "vigil_tiny.json"} <= names
    size = sum(p.stat().st_size for p in tiny_model_dir.iterdir())
    assert size < 10 * 2**20
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert config["vision_config"]["patch_size"] == 14
    assert config["vision_config"]["spatial_merge_size"] == 2
    assert config["vision_config"]["temporal_patch_size"] == 2
    assert json.loads((tiny_model_dir / "vigil_tiny.json").read_text())["config"]["seed"] == 0
    assert not [p for p in tiny_model_dir.parent.iterdir() if p.name.startswith(".tiny.")]


def test_reloads_offline_with_auto_classes(loaded):
    processor, model = loaded
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    n_params = sum(p.numel() for p in model.parameters())
    assert 0.3e6 < n_params < 5e6
    tok = processor.tokenizer
    ids = tok.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS))
    assert len(set(ids)) == len(QWEN_SPECIAL_TOKENS) and tok.unk_token_id not in ids
    assert ids == sorted(ids)  # Qwen's order, after the BPE vocabulary
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert max(ids) < model.config.text_config.vocab_size


def test_tokenizer_round_trips_taxonomy_and_grammar(loaded):
    tok = loaded[0].tokenizer
    names = load_taxonomy().l3_names
    text = "".join(GRAMMAR_TAGS) + " " + " ".join(names) + " 0.5 [12, 34] élan 日本"
    assert tok.decode(tok.encode(text)) == text  # byte-level: anything encodes
    # Trained on these words: the artifact names are a few tokens each, not one per byte.
    assert len(tok.encode(" Texture Jittering")) <= 3
    assert len(tok.encode(text)) < len(text.encode()) / 2


def test_chat_template_and_processor_make_image_tokens(loaded):
    processor, model = loaded
    messages = [
        {"role": "system", "content": "You judge videos."},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                     {"type": "text", "text": "Real or fake?"}]},
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>system\nYou judge videos.<|im_end|>\n<|im_start|>user\n")
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert text.endswith("<|im_start|>assistant\n")
    inputs = processor(text=[text], images=[_frame(1), _frame(2, (64, 200))], return_tensors="pt")
    # 112x112 -> 8x8 patches -> 4x4 = 16 LM tokens; max_pixels keeps every image this small.
    grid = inputs["image_grid_thw"].tolist()
    assert grid[0] == [1, 8, 8]
    assert all(t * h * w * 14 * 14 <= 112 * 112 for t, h, w in grid)
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == sum(t * h * w for t, h, w in grid) // 4


def test_generate_produces_tokens(loaded):
    import torch

    processor, model = loaded
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                             {"type": "text", "text": "Is this video real?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[_frame(3), _frame(4)], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:]
    assert new.numel() == 8
    assert isinstance(processor.decode(new, skip_special_tokens=True), str)


def test_same_seed_same_model_other_seed_other_weights(tiny_model_dir, tmp_path):
    again = build_tiny_model(tmp_path / "again", TinyModelConfig(seed=0))
    for name in ("model.safetensors", "tokenizer.json", "config.json", "processor_config.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
    other = build_tiny_model(tmp_path / "other", TinyModelConfig(seed=1))
    assert (other / "model.safetensors").read_bytes() != (tiny_model_dir / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (tiny_model_dir / "tokenizer.json").read_bytes()
    # Rebuilding over an existing folder replaces it.
    assert build_tiny_model(tmp_path / "other", TinyModelConfig(seed=0)) == tmp_path / "other"
    assert (other / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()


def test_compat_makes_torchvision_and_data_uri_images_work():
    state = ensure_transformers_compat()
    assert state in {"absent", "imported", "ok", "patched"}
    assert ensure_transformers_compat() == state  # idempotent
    if state == "absent":
        pytest.skip("torchvision is not installed")
    import torchvision  # noqa: F401  (fails with "operator torchvision::nms does not exist" unmended)
    from transformers.image_utils import load_image_as_tensor

    image = _frame(5, (30, 40))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    tensor = load_image_as_tensor(uri)  # what the torchvision image backend does with a URL
    assert tuple(tensor.shape) == (3, 30, 40)
    assert np.array_equal(tensor.permute(1, 2, 0).numpy(), np.asarray(image))


def test_fast_tower_is_the_same_model(loaded):
    """The pretrain stage's CPU speed-ups (linear patch embedding, batched window attention, position
    ids and windows computed once per grid) give the library's outputs and gradients."""
    import copy

    import torch

    from vigil.train.pretrain import fast_tower, vision_index

    _, model = loaded
    slow = copy.deepcopy(model.model.visual).train()
    fast = copy.deepcopy(slow)
    fast_tower(fast)
    torch.manual_seed(0)
    grid = torch.tensor([[1, 4, 4]] * 6)
    x = torch.randn(6 * 16, 3 * 2 * 14 * 14)
    outs = []
    for tower, index in ((slow, {}), (fast, vision_index(fast, grid))):
        out = tower(x, grid_thw=grid, **index).pooler_output
        out.square().sum().backward()
        outs.append((out.detach(), [p.grad.clone() for p in tower.parameters()]))
    assert float((outs[0][0] - outs[1][0]).abs().max()) < 1e-4
    for a, b in zip(outs[0][1], outs[1][1], strict=True):
        assert float((a - b).abs().max()) <= 1e-4 * (1 + float(a.abs().max()))
