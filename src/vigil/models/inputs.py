"""The detector's input: which frames of a clip, as which images, in which prompt.

One builder serves training (SFT, GRPO, the held-out check), evaluation and, later, the serving
gateway, so that a model always sees a clip the way it was trained to. The layout is Skyra's:
the grammar's system prompt, then for each frame ``[T=x.xxs]`` followed by its image. With
``frame_pairs`` each image is two consecutive frames stacked (see :mod:`vigil.models.frame_pairs`):
N frames give N-1 images, each stamped with the time of its first frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.core import grammar

__all__ = ["DETECT_INSTRUCTION", "ClipFrames", "clip_images", "detector_messages", "load_clip", "subsample"]

DETECT_INSTRUCTION = ("Is this video real or AI-generated? Ground each artifact you find with its type, "
                      "time span and box.")


def subsample(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)``, first and last included (all if n <= k).

    >>> subsample(16, 4), subsample(3, 8)
    ([0, 5, 10, 15], [0, 1, 2])
    """
    if n <= k:
        return list(range(n))
    if k == 1:
        return [n // 2]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


@dataclass(frozen=True)
class ClipFrames:
    """The frames a model sees of one clip: ``(T, H, W, 3)`` uint8 and their times in seconds."""

    frames: np.ndarray
    timestamps: tuple[float, ...]


def load_clip(frames_dir: Path | str, max_frames: int) -> ClipFrames:
    """Up to ``max_frames`` evenly spaced frames of a Skyra-layout folder, as RGB arrays."""
    from PIL import Image

    from vigil.io.media.frame_folder import read_frames

    listed = read_frames(frames_dir)
    chosen = [listed[i] for i in subsample(len(listed), max_frames)]
    arrays = []
    for _, png in chosen:
        with Image.open(png) as im:
            arrays.append(np.asarray(im.convert("RGB")))
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"{frames_dir}: frames differ in size")
    return ClipFrames(np.stack(arrays), tuple(t for t, _ in chosen))


def clip_images(clip: ClipFrames, frame_pairs: bool) -> tuple[list[np.ndarray], tuple[float, ...]]:
    """The images of a clip and the time stamped on each: frames, or consecutive frame pairs."""
    from vigil.models.frame_pairs import stack_pair

    if not frame_pairs:
        return list(clip.frames), clip.timestamps
    if len(clip.frames) < 2:
        raise ValueError("frame pairs need at least two frames")
    pairs = [stack_pair(clip.frames[i], clip.frames[i + 1]) for i in range(len(clip.frames) - 1)]
    return pairs, clip.timestamps[:-1]


def detector_messages(timestamps: Sequence[float], *, system_prompt: str = "full", taxonomy=None,
                      instruction: str = DETECT_INSTRUCTION) -> list[dict]:
    """Chat prompt for one clip: the grammar's system prompt (``full``, or ``compact``: its
    two-sentence form; a profile's ``system_prompt``), then ``[T=x.xxs]`` + an image placeholder per
    image (TRL and the processor fill the placeholders in order)."""
    if system_prompt not in ("full", "compact"):
        raise ValueError(f"system_prompt must be 'full' or 'compact', got {system_prompt!r}")
    content: list[dict] = [{"type": "text", "text": instruction}]
    for t in timestamps:
        content.append({"type": "text", "text": f"[T={t:.2f}s]"})
        content.append({"type": "image"})
    return [{"role": "system", "content": [{"type": "text", "text": grammar.system_prompt(taxonomy, compact=system_prompt == "compact")}]},
            {"role": "user", "content": content}]


def png_bytes(image: np.ndarray, compress_level: int = 6) -> bytes:
    """An RGB array as PNG bytes (lossless at every ``compress_level``; 1 is several times faster than 6)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def png_data_uri(image: np.ndarray) -> str:
    """An RGB array as a ``data:image/png;base64,…`` URI (what OpenAI-style chat requests carry)."""
    import base64

    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def openai_messages(clip: ClipFrames, *, frame_pairs: bool, system_prompt: str = "full") -> list[dict]:
    """The detector prompt for one clip as an OpenAI-style chat request (images inlined as data URIs):
    the same messages as :func:`detector_messages`, for a server (vLLM, ``transformers serve``)."""
    images, stamps = clip_images(clip, frame_pairs)
    messages = detector_messages(stamps, system_prompt=system_prompt)
    pending = iter(images)
    for message in messages:
        parts = []
        for part in message["content"]:
            if part["type"] == "image":
                parts.append({"type": "image_url", "image_url": {"url": png_data_uri(next(pending))}})
            else:
                parts.append(part)
        message["content"] = parts
    return messages
