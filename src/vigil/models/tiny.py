"""The tiny profile: a small Qwen2.5-VL-architecture model built locally with random weights.

No weights can be downloaded on these machines, so tests, CI and the default run use a model that
has the production architecture (``Qwen2_5_VLForConditionalGeneration``, Qwen's special tokens and
chat template, the Qwen2-VL image processor) at a size that trains on CPU in minutes. Everything
downstream (training, serving, evaluation) loads it the way it loads the 7B production model:
``AutoProcessor.from_pretrained(dir)`` and ``AutoModelForImageTextToText.from_pretrained(dir)``.

The tokenizer is a byte-level BPE trained here with the ``tokenizers`` library on a small built-in
corpus (English words, the taxonomy's artifact names, the answer grammar's tags, digits and
punctuation), so every string still encodes (byte fallback) and the words the detector writes are
short token sequences.

Building is deterministic for a seed: same config, same weights, same tokenizer, same files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from vigil.core.taxonomy import load_taxonomy
from vigil.models.compat import ensure_transformers_compat

__all__ = [
    "GRAMMAR_TAGS",
    "QWEN_CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "TinyModelConfig",
    "build_tiny_model",
]


def _f(default, help: str):  # noqa: A002 - "help" mirrors argparse/HfArgumentParser metadata
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TinyModelConfig:
    """Sizes of the tiny profile. Defaults: ~1.3 M parameters, ~5 MB on disk, built in ~1 s."""

    text_hidden_size: int = _f(128, "Hidden size of the language model (128-256).")
    text_layers: int = _f(2, "Decoder layers of the language model (2-4).")
    text_heads: int = _f(4, "Attention heads of the language model; hidden size must divide evenly.")
    text_kv_heads: int = _f(2, "Key/value heads (grouped-query attention, as in Qwen2.5).")
    text_intermediate_size: int = _f(256, "MLP width of the language model.")
    vision_depth: int = _f(2, "Transformer blocks of the vision tower (2-4).")
    vision_hidden_size: int = _f(64, "Hidden size of the vision tower (64-128).")
    vision_heads: int = _f(2, "Attention heads of the vision tower.")
    vision_intermediate_size: int = _f(128, "MLP width of the vision tower.")
    patch_size: int = _f(14, "Spatial patch size in pixels (Qwen2.5-VL: 14).")
    merge_size: int = _f(2, "Spatial merge: merge_size x merge_size patches become one LM token.")
    temporal_patch_size: int = _f(2, "Frames per temporal patch (an image is repeated to fill it).")
    window_size: int = _f(56, "Window-attention size in pixels of the vision tower.")
    vocab_size: int = _f(1024, "Most tokens, specials included (1024-2048); BPE stops earlier when "
                               "the built-in corpus runs out of merges (~1.2k). The embedding is "
                               "padded to a multiple of 64.")
    max_position_embeddings: int = _f(4096, "Longest sequence the rotary embedding is sized for.")
    min_pixels: int = _f(28 * 28 * 4, "Image processor: fewest pixels after resizing (56x56).")
    max_pixels: int = _f(112 * 112, "Image processor: most pixels after resizing (112x112 -> 16 tokens).")
    seed: int = _f(0, "Seed of the random weights; the same seed builds the same model (the "
                      "tokenizer is the same for every seed).")

    def __post_init__(self) -> None:
        if self.text_hidden_size % self.text_heads:
            raise ValueError("text_hidden_size must be a multiple of text_heads")
        if self.text_heads % self.text_kv_heads:
            raise ValueError("text_heads must be a multiple of text_kv_heads")
        if self.vision_hidden_size % self.vision_heads:
            raise ValueError("vision_hidden_size must be a multiple of vision_heads")
        if (self.text_hidden_size // self.text_heads) % 8:
            raise ValueError("text head dim must be a multiple of 8 (multimodal rotary sections)")
        if self.vocab_size < 512:
            raise ValueError("vocab_size must be at least 512 (256 byte tokens + specials + merges)")

    def to_dict(self) -> dict:
        return asdict(self)


# Qwen2.5-VL's added tokens, in its order (ids follow the BPE vocabulary, as in Qwen's tokenizer).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Tags of the detector's answer grammar (see DESIGN.md): learned as BPE merges, like any text,
# so that the production tokenizer (which has no such tokens) and the tiny one treat them alike.
GRAMMAR_TAGS: tuple[str, ...] = (
    "<think>", "</think>", "<answer>", "</answer>", "<type>", "</type>",
    "<t>", "</t>", "<bbox>", "</bbox>",
)

# Qwen2.5-VL-Instruct's chat template (the one shipped with the Qwen checkpoints).
QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2's pre-tokenizer split (digits one by one, words with a leading space, punctuation runs).
_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_WORDS = """
the a an of to in on at by for with from and or not no yes is are was were be been this that
these those it its there here video clip frame frames image images picture scene shot camera
real fake generated synthetic ai authentic genuine artifact artifacts anomaly evidence region
object objects person people face hand hands body motion movement moves moving move appears
disappears appear disappear vanish vanishes suddenly between after before during while when
then first second third last time start end seconds second left right top bottom center middle
background foreground texture color colour light lighting shadow blur blurry sharp edge edges
shape distortion distorted jitter jittering flicker flickering warps warped merges merging
splits splitting crossing passes through physics physical law gravity causality commonsense
identity inconsistent inconsistency unnatural abnormal natural normal smooth consistent stable
looks seems shows visible obvious subtle likely unlikely because so therefore however but
which what where who why how answer type verdict reason reasoning think box bbox location
detected detect detector explanation explain grounded ground truth score confidence high low
small large big tiny circle square triangle ball car tree sky water road wall floor grass
red green blue yellow white black gray bright dark over under into out up down across along
one two three four five six seven eight nine ten frame_id pixel pixels x y width height
""".split()

_PUNCTUATION = list(".,:;!?'\"()[]{}<>/\\|-_+=*&%$#@^~`") + ["...", "--", "\n", "\n\n", "  "]


def _corpus() -> list[str]:
    """A small fixed corpus: words, taxonomy names, grammar, numbers, punctuation.

    It does not depend on the model seed, so tiny models of every seed share one vocabulary
    (adapters, datasets of token ids and comparisons stay valid across seeds)."""
    import random

    taxonomy = load_taxonomy()
    names = list(taxonomy.l3_names)
    groups = sorted({p for path in taxonomy.l3_to_path.values() for p in path})
    rng = random.Random(20261121)
    lines: list[str] = []
    lines += [" ".join(_WORDS[i:i + 12]) for i in range(0, len(_WORDS), 12)]
    lines += [" ".join(w.capitalize() for w in _WORDS[i:i + 12]) for i in range(0, len(_WORDS), 12)]
    lines += names + groups
    lines += [" ".join(GRAMMAR_TAGS), "".join(GRAMMAR_TAGS)]
    lines += [" ".join(str(i) for i in range(101)), "0.0 0.1 0.25 0.5 0.75 1.0 1.5 2.0"]
    lines += [" ".join(_PUNCTUATION)]
    # Answer-shaped sentences so that tags, names and numbers merge in context.
    for _ in range(400):
        name = rng.choice(names)
        a, b = sorted(rng.sample(range(0, 100), 2))
        x0, y0, x1, y1 = sorted(rng.sample(range(0, 1000), 2)) + sorted(rng.sample(range(0, 1000), 2))
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 12)))
        verdict = rng.choice(["real", "fake"])
        lines.append(
            f"<think>{words.capitalize()}. <type>{name}</type> <t>[{a / 10:.1f}, {b / 10:.1f}]</t> "
            f"<bbox>[{x0}, {y0}, {x1}, {y1}]</bbox></think>\n<answer>{verdict}</answer>"
        )
    return lines


def _train_tokenizer(config: TinyModelConfig):
    """Byte-level BPE in Qwen2's style, trained on the built-in corpus; returns a fast tokenizer."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size - len(QWEN_SPECIAL_TOKENS),
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    # Special tokens right after the BPE vocabulary, in Qwen's order (<|endoftext|> first).
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        clean_up_tokenization_spaces=False,
        model_max_length=config.max_position_embeddings,
    )
    fast.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS)})
    return fast


def _model_config(config: TinyModelConfig, tokenizer):
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    head_dim = config.text_hidden_size // config.text_heads
    half = head_dim // 2  # rotary frequencies, split over (time, height, width) as 1/4, 3/8, 3/8
    mrope = [half // 4, (half - half // 4) // 2, half - half // 4 - (half - half // 4) // 2]
    vocab = len(tokenizer)
    vocab += (-vocab) % 64  # pad the embedding like Qwen does; unused rows are never produced
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab,
            "hidden_size": config.text_hidden_size,
            "intermediate_size": config.text_intermediate_size,
            "num_hidden_layers": config.text_layers,
            "num_attention_heads": config.text_heads,
            "num_key_value_heads": config.text_kv_heads,
            "max_position_embeddings": config.max_position_embeddings,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0,
                                "mrope_section": mrope},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "dtype": "float32",
        },
        vision_config={
            "depth": config.vision_depth,
            "hidden_size": config.vision_hidden_size,
            "intermediate_size": config.vision_intermediate_size,
            "num_heads": config.vision_heads,
            "patch_size": config.patch_size,
            "spatial_merge_size": config.merge_size,
            "temporal_patch_size": config.temporal_patch_size,
            "window_size": config.window_size,
            "out_hidden_size": config.text_hidden_size,
            "fullatt_block_indexes": [config.vision_depth - 1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
        dtype="float32",
    )


def _processor(config: TinyModelConfig, tokenizer):
    """Qwen2.5-VL's processor with small pixel bounds (images and videos alike)."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    sizes = dict(
        min_pixels=config.min_pixels,
        max_pixels=config.max_pixels,
        patch_size=config.patch_size,
        temporal_patch_size=config.temporal_patch_size,
        merge_size=config.merge_size,
    )
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**sizes),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**sizes),
        chat_template=QWEN_CHAT_TEMPLATE,
    )


def build_tiny_model(out_dir: str | Path, config: TinyModelConfig = TinyModelConfig()) -> Path:
    """Build the tiny Qwen2.5-VL (random weights + locally trained tokenizer) into ``out_dir``.

    Writes a complete Hugging Face model folder (config, safetensors weights, tokenizer, image
    processor, chat template) that reloads offline with ``AutoProcessor`` and
    ``AutoModelForImageTextToText``, plus ``vigil_tiny.json`` with the ``TinyModelConfig`` used.
    The folder is written beside ``out_dir`` and moved into place, so a reader never sees half a
    model. Returns ``out_dir``.
    """
    ensure_transformers_compat()
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    out = Path(out_dir)
    tokenizer = _train_tokenizer(config)
    processor = _processor(config, tokenizer)
    model_config = _model_config(config, tokenizer)

    # Seeded, CPU-only initialisation: the same seed gives bit-identical weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = Qwen2_5_VLForConditionalGeneration(model_config).to(torch.float32).eval()
    # Like Qwen's checkpoints: stop at <|im_end|> or <|endoftext|>, and sample by default, so that
    # an OpenAI-style `temperature` > 0 samples and 0 decodes greedily (servers map 0 to greedy).
    text = model_config.text_config
    gen = model.generation_config
    gen.eos_token_id = [text.eos_token_id, text.bos_token_id]
    gen.pad_token_id = text.pad_token_id
    gen.bos_token_id = text.bos_token_id
    gen.do_sample = True
    gen.temperature = 1.0
    gen.top_k = 0
    gen.top_p = 1.0

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        staging.chmod(0o755)
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        for path in staging.iterdir():
            path.chmod(0o644)
        (staging / "vigil_tiny.json").write_text(
            json.dumps({"profile": "tiny", "config": config.to_dict()}, indent=2, sort_keys=True)
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def config_help() -> dict[str, str]:
    """Field name -> help text (for CLIs and docs)."""
    return {f.name: f.metadata["help"] for f in fields(TinyModelConfig)}
