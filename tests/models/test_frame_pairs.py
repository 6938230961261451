"""Frame-pair images: the tower sees frames (t, t+1) exactly as a video of overlapping pairs would."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.models.compat import ensure_transformers_compat
from vigil.models.frame_pairs import FramePairImageProcessor, stack_pair
from vigil.models.inputs import ClipFrames, clip_images, detector_messages

ensure_transformers_compat()


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).integers(0, 255, (8, 112, 112, 3), dtype=np.uint8)


def _processor(frame_pairs=True, pixels=56 * 56):
    return FramePairImageProcessor(frame_pairs=frame_pairs, size={"shortest_edge": pixels, "longest_edge": pixels})


def test_pair_images_equal_the_video_processor_on_overlapping_frames(frames):
    from transformers import Qwen2VLVideoProcessor

    # given 8 frames sent as 7 frame-pair images
    images, stamps = clip_images(ClipFrames(frames, tuple(k / 4 for k in range(8))), frame_pairs=True)
    pairs = _processor()(images=images, return_tensors="pt")
    # when the same frames go through Qwen's video processor as the overlapped video 0,1,1,2,...,6,7
    video = Qwen2VLVideoProcessor(size={"shortest_edge": 56 * 56, "longest_edge": 56 * 56})(
        videos=[frames[[k for i in range(7) for k in (i, i + 1)]]], return_tensors="pt", do_sample_frames=False)
    # then the tower gets the same patches, image by image, and each image is one temporal patch
    assert len(images) == 7 and stamps == tuple(k / 4 for k in range(7))
    assert pairs["pixel_values"].shape == video["pixel_values_videos"].shape
    assert float((pairs["pixel_values"] - video["pixel_values_videos"]).abs().max()) < 1e-5
    assert pairs["image_grid_thw"].tolist() == [[1, 4, 4]] * 7


def test_single_frames_behave_like_qwen_image_processor(frames):
    from transformers import Qwen2VLImageProcessor

    size = {"shortest_edge": 56 * 56, "longest_edge": 56 * 56}
    ours = _processor(frame_pairs=False)(images=list(frames[:2]), return_tensors="pt")
    theirs = Qwen2VLImageProcessor(size=size)(images=list(frames[:2]), return_tensors="pt")
    assert float((ours["pixel_values"] - theirs["pixel_values"]).abs().max()) == 0.0


def test_patch_count_and_bad_input_are_explained(frames):
    processor = _processor()
    # a pair image is twice as tall as its frames; vLLM asks for patch counts by image size
    assert processor.get_number_of_image_patches(224, 112) == 16
    with pytest.raises(ValueError, match="two frames of one size"):
        stack_pair(frames[0], frames[1, :56])


def test_fast_pixel_path_of_the_pretrain_stage_matches_the_processor(frames):
    from vigil.train.pretrain import pixel_values

    small = np.stack([frames[:, ::2, ::2]])  # (1, 8, 56, 56, 3): already at the processor's size
    images, _ = clip_images(ClipFrames(small[0], tuple(range(8))), frame_pairs=True)
    processor = _processor()
    ref = processor(images=images, return_tensors="pt")
    x, grid = pixel_values(small, processor.image_mean, processor.image_std, frame_pairs=True)
    assert float((ref["pixel_values"] - x).abs().max()) < 1e-5
    assert grid.tolist() == ref["image_grid_thw"].tolist()


def test_saved_processor_reloads_with_its_frame_pair_code(tmp_path, tiny_model_dir):
    from vigil.config.params import ModelProfile
    from vigil.models.profile import configure_processor, load_processor

    # given the tiny model's processor switched to frame pairs and saved
    configure_processor(load_processor(tiny_model_dir), ModelProfile()).save_pretrained(tmp_path)
    # when it is loaded back like any Hugging Face processor
    reloaded = load_processor(tmp_path)
    # then its image processor is the frame-pair one, code included in the folder (auto_map)
    assert (tmp_path / "frame_pairs.py").is_file()
    assert type(reloaded.image_processor).__name__ == "FramePairImageProcessor"
    assert reloaded.image_processor.frame_pairs is True


def test_detector_prompt_interleaves_timestamps_and_images():
    messages = detector_messages([0.0, 0.25])
    assert messages[0]["role"] == "system" and "<answer>" in messages[0]["content"][0]["text"]
    user = messages[1]["content"]
    assert [c.get("text", "IMG") for c in user[1:]] == ["[T=0.00s]", "IMG", "[T=0.25s]", "IMG"]


def test_compact_prompt_keeps_the_format_and_drops_the_taxonomy():
    from vigil.core import grammar

    full = detector_messages([0.0], system_prompt="full")[0]["content"][0]["text"]
    compact = detector_messages([0.0], system_prompt="compact")[0]["content"][0]["text"]
    # the compact form still names every tag of the grammar, but not the artifact list
    assert compact == grammar.COMPACT_SYSTEM_PROMPT and len(compact) * 4 < len(full)
    assert all(tag in compact for tag in ("<think>", "<answer>", "<type>", "<t>", "<bbox>"))
    assert "Shape Distortion" in full and "Shape Distortion" not in compact
    with pytest.raises(ValueError, match="'full' or 'compact'"):
        detector_messages([0.0], system_prompt="short")
