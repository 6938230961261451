"""Frame pairs as images: Qwen2.5-VL sees what changes between two consecutive frames.

Why this exists
---------------
Qwen2.5-VL's vision tower embeds *two* frames per patch (``temporal_patch_size = 2``) and its
attention never crosses from one temporal patch to the next. Fed one image per frame (Skyra's
interleaved layout) the two slots hold the same frame, so the tower never sees motion; fed one
video, it sees frames (0,1), (2,3), … and a change between frames 1 and 2 is visible only to the
language model. On CPU-sized models that decides whether temporal artifacts (vanishing objects,
physics, movement) are learnable at all (research/tiny_learning/FINDINGS.md, E7: overlapping pairs).

So each "image" of a prompt is a *frame pair*: frames t and t+1 stacked vertically into one picture
(:func:`stack_pair`). This image processor splits it again, resizes each half under the usual pixel
caps and puts the halves in the two temporal slots. The prompt keeps Skyra's layout
(``[T=x.xxs]`` + image, interleaved) and TRL's image code paths work unchanged. A plain single
frame (``frame_pairs = False``) behaves exactly like ``Qwen2VLImageProcessor``.

This file is copied into every model folder that uses it (Hugging Face ``auto_map``), so it needs
nothing from Vigil (only the torchvision mend, when Vigil is there): load such a folder with
``trust_remote_code=True``.
"""

from __future__ import annotations

import numpy as np
import torch

try:  # inside Vigil, mend torchvision on CPU-only machines before transformers imports it
    from vigil.models.compat import ensure_transformers_compat

    ensure_transformers_compat()
except ImportError:  # this file, copied into a model folder, loaded where Vigil is not installed
    pass

from transformers import Qwen2VLImageProcessor  # noqa: E402
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize  # noqa: E402


def stack_pair(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Two ``(H, W, 3)`` frames of one size -> one ``(2H, W, 3)`` frame-pair image.

    >>> stack_pair(np.zeros((4, 6, 3), np.uint8), np.ones((4, 6, 3), np.uint8)).shape
    (8, 6, 3)
    """
    if first.shape != second.shape:
        raise ValueError(f"a frame pair needs two frames of one size, got {first.shape} and {second.shape}")
    return np.concatenate([first, second], axis=0)


def _halves(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    height = images.shape[-2]
    if height % 2:
        raise ValueError(f"a frame-pair image has two stacked frames, so an even height; got {height}")
    return images[..., : height // 2, :], images[..., height // 2 :, :]


class FramePairImageProcessor(Qwen2VLImageProcessor):
    """Qwen2-VL image processor whose images are two frames stacked vertically (see module doc)."""

    def __init__(self, frame_pairs: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame_pairs = frame_pairs

    def resize(self, images, size, resample, factor, **kwargs):
        if not self.frame_pairs:
            return super().resize(images, size, resample, factor, **kwargs)
        top, bottom = _halves(images)
        return torch.cat([super(FramePairImageProcessor, self).resize(half, size, resample, factor, **kwargs)
                          for half in (top, bottom)], dim=-2)

    def patchify(self, images, patch_size, merge_size, temporal_patch_size):
        if not self.frame_pairs:
            return super().patchify(images, patch_size, merge_size, temporal_patch_size)
        if temporal_patch_size != 2:
            raise ValueError(f"frame pairs fill a temporal patch of 2 frames, not {temporal_patch_size}")
        halves = []
        for half in _halves(images):
            batch, channel, height, width = half.shape
            grid_h, grid_w = height // patch_size, width // patch_size
            patches = half.reshape(batch, channel, grid_h // merge_size, merge_size, patch_size,
                                   grid_w // merge_size, merge_size, patch_size)
            halves.append(patches.permute(0, 2, 5, 3, 6, 1, 4, 7))  # as Qwen2VLImageProcessor.patchify
        # channel, then time, then pixels: the flattening order of the model's Conv3d patch embedding
        flat = torch.stack(halves, dim=6).reshape(batch, grid_h * grid_w,
                                                  channel * temporal_patch_size * patch_size * patch_size)
        return flat, grid_h, grid_w

    def get_number_of_image_patches(self, height: int, width: int, images_kwargs: dict | None = None) -> int:
        if not self.frame_pairs:
            return super().get_number_of_image_patches(height, width, images_kwargs)
        images_kwargs = images_kwargs or {}
        factor = images_kwargs.get("patch_size", self.patch_size) * images_kwargs.get("merge_size", self.merge_size)
        resized_h, resized_w = smart_resize(
            height // 2, width, factor=factor,
            min_pixels=images_kwargs.get("min_pixels", self.size["shortest_edge"]),
            max_pixels=images_kwargs.get("max_pixels", self.size["longest_edge"]))
        patch = images_kwargs.get("patch_size", self.patch_size)
        return (resized_h // patch) * (resized_w // patch)


FramePairImageProcessor.register_for_auto_class("AutoImageProcessor")
