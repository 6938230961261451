"""Behaviour of vigil.io.media (probe, sample_frames, read_frames, video_phash) on real files from media_factory."""

from __future__ import annotations

import doctest
import re
import subprocess
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from tests.support import media_factory as mf
from vigil.core.phash import is_near_duplicate, video_distance
from vigil.io.media import container, decode_plan, decoding, errors, frame_folder, perceptual_hash, probing
from vigil.io.media.errors import MediaError
from vigil.io.media.frame_folder import read_frames, sample_frames
from vigil.io.media.perceptual_hash import video_phash
from vigil.io.media.probing import probe

BIG_CAPS = {"max_side": 4096, "max_pixels": 4096 * 4096}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Every good clip once per module: building them is most of this file's runtime."""
    d = tmp_path_factory.mktemp("clips")
    return {
        "mp4": mf.make_mp4(d),
        "webm": mf.make_webm(d),
        "gif": mf.make_gif(d),
        "short_gop": mf.make_short_gop_mp4(d),
        "long_gop": mf.make_long_gop_mp4(d),
        "4k": mf.make_4k_mp4(d),
        "odd": mf.make_odd_sized_mp4(d),
        "rotated_90": mf.make_rotated_mp4(d, "r90.mp4", rotation=90),
        "rotated_180": mf.make_rotated_mp4(d, "r180.mp4", rotation=180),
        "rotated_270": mf.make_rotated_mp4(d, "r270.mp4", rotation=270),
        "with_audio": mf.make_clip_with_audio(d),
        "other": mf.make_mp4(d, "other.mp4", seed=3),
    }


def decode_everything(path: Path) -> tuple[dict[int, np.ndarray], int]:
    """The naive reference: every frame decoded and converted, keyed by pts; and the first pts."""
    with av.open(str(path)) as container:
        frames = {f.pts: f.to_ndarray(format="rgb24") for f in container.decode(video=0)}
    return frames, min(frames)


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# ---------------------------------------------------------------------------- bad input

BAD_INPUTS = [
    (mf.make_empty_file, "empty_file"),
    (mf.make_html_as_mp4, "not_media"),
    (mf.make_json_as_mp4, "not_media"),
    (mf.make_png_as_mp4, "not_media"),
    (mf.make_still_webp, "not_media"),
    (mf.make_animated_webp, "not_media"),
    (mf.make_truncated_mp4, "truncated"),
    (lambda d: mf.make_truncated_mp4(d, "cut_faststart.mp4", moov_first=True), "truncated"),
    (mf.make_truncated_webm, "truncated"),
    (mf.make_corrupt_mp4, "undecodable"),
    (mf.make_audio_only_mp4, "no_video_stream"),
    (lambda d: d / "never_downloaded.mp4", "not_found"),
]


@pytest.mark.parametrize(("make", "reason"), BAD_INPUTS, ids=[r + str(i) for i, (_, r) in enumerate(BAD_INPUTS)])
def test_bad_input_raises_media_error_with_reason_and_leaves_no_frames(tmp_path, make, reason):
    # given a file a crawler could bring back
    bad = make(tmp_path)
    out = tmp_path / "frames"
    # when it is probed, sampled or hashed
    for call in (lambda: probe(bad), lambda: sample_frames(bad, out, n_frames=4), lambda: video_phash(bad)):
        with pytest.raises(MediaError) as caught:
            call()
        # then the failure names the reason, never a raw PyAV exception
        assert caught.value.reason == reason, caught.value.detail
        assert caught.value.detail
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".frames")]


def test_limits_give_too_long_and_too_large(clips):
    with pytest.raises(MediaError) as too_long:
        probe(clips["mp4"], max_duration_s=0.5)
    assert too_long.value.reason == "too_long"
    with pytest.raises(MediaError) as too_large:
        sample_frames(clips["mp4"], clips["mp4"].parent / "never", max_bytes=100)
    assert too_large.value.reason == "too_large"


def test_media_error_refuses_unknown_reason():
    with pytest.raises(ValueError):
        MediaError("oops", "not a reason code")


# ---------------------------------------------------------------------------- probe


def test_probe_reads_mp4_facts(clips):
    facts = probe(clips["mp4"])
    assert (facts.container, facts.codec, facts.mime_type) == ("mp4", "h264", "video/mp4")
    assert (facts.width, facts.height, facts.frame_count, facts.frame_count_exact) == (160, 120, 24, True)
    assert facts.fps == pytest.approx(24.0)
    assert facts.duration_s == pytest.approx(1.0, abs=0.05)
    assert facts.rotation == 0 and not facts.has_audio
    assert facts.bitrate and facts.bitrate > 0 and facts.size_bytes == clips["mp4"].stat().st_size


def test_probe_counts_webm_frames_from_its_index_and_reads_gif(clips):
    # the container stores no count: probe_container estimates it, probe counts the packets
    header = probing.probe_container(clips["webm"], None, None)
    assert (header.container, header.codec, header.frame_count_exact) == ("webm", "vp9", False)
    webm = probe(clips["webm"])
    assert (webm.frame_count, webm.frame_count_exact) == (24, True)
    gif = probe(clips["gif"])
    assert (gif.container, gif.codec, gif.frame_count) == ("gif", "gif", 12)


def test_probe_sees_audio_and_keyframe_spacing(clips):
    assert probe(clips["with_audio"]).has_audio
    assert probe(clips["short_gop"]).keyframe_interval_s == pytest.approx(1 / 24, rel=0.01)
    assert probe(clips["long_gop"]).keyframe_interval_s > 1.5  # one keyframe in a 2 s clip


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_write_video_rotation_is_a_real_display_matrix(clips, rotation):
    # given a clip written with a rotation: ffmpeg itself sees a display matrix (not a dead tag)
    path = clips[f"rotated_{rotation}"]
    info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    printed = re.search(r"Display Matrix: rotation of (-?[\d.]+) degrees", info)
    assert printed, info
    assert round(-float(printed.group(1))) % 360 == rotation  # counter-clockwise matrix angle
    # then probe reads the clockwise display rotation back and reports the stored size
    facts = probe(path)
    assert facts.rotation == rotation
    stored = (160, 96) if rotation in (90, 270) else (96, 160)
    assert (facts.width, facts.height) == stored and (facts.display_width, facts.display_height) == (96, 160)


# ---------------------------------------------------------------------------- sample_frames


def _assert_frame_folder(result, duration_s: float, n: int, max_side: int, max_pixels: int) -> None:
    names = sorted(p.name for p in result.out_dir.iterdir())
    assert names == sorted([f"{i}.png" for i in range(1, n + 1)] + ["timestamps.txt"])
    lines = (result.out_dir / "timestamps.txt").read_text().splitlines()
    assert [float(x) for x in lines] == pytest.approx(list(result.timestamps_s), abs=1e-6)
    assert all(a < b for a, b in zip(result.timestamps_s, result.timestamps_s[1:]))
    assert 0 <= result.timestamps_s[0] and result.timestamps_s[-1] < duration_s
    assert result.width % 2 == 0 and result.height % 2 == 0
    assert max(result.width, result.height) <= max_side and result.width * result.height <= max_pixels
    for frame_path in result.frame_paths:
        assert Image.open(frame_path).size == (result.width, result.height)


@pytest.mark.parametrize("kind", ["mp4", "webm", "gif", "odd", "long_gop", "short_gop"])
def test_sample_frames_writes_skyra_layout_within_caps(clips, tmp_path, kind):
    facts = probe(clips[kind])
    result = sample_frames(clips[kind], tmp_path / "frames", n_frames=8, max_side=128, max_pixels=128 * 96)
    _assert_frame_folder(result, facts.duration_s, 8, 128, 128 * 96)
    assert result.width / result.height == pytest.approx(facts.width / facts.height, rel=0.03)  # aspect kept
    assert result.width >= 124  # and the caps are used, not undershot


def test_odd_sized_stream_comes_out_even(clips, tmp_path):
    result = sample_frames(clips["odd"], tmp_path / "frames", n_frames=4, **BIG_CAPS)
    assert (result.width, result.height) == (160, 120)


def test_4k_clip_is_downscaled_within_caps(clips, tmp_path):
    result = sample_frames(clips["4k"], tmp_path / "frames", n_frames=8, max_side=640, max_pixels=640 * 360)
    assert (result.width, result.height) == (640, 360)
    assert len(result.frame_paths) == 3  # only 3 frames exist: each once, no duplicates
    _assert_frame_folder(result, probe(clips["4k"]).duration_s, 3, 640, 640 * 360)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_clip_frames_come_out_upright(clips, tmp_path, rotation):
    # given a portrait clip stored sideways with a display rotation, marker top-left when upright
    result = sample_frames(clips[f"rotated_{rotation}"], tmp_path / "frames", n_frames=3, **BIG_CAPS)
    # then frames are portrait and the white marker is in the top-left corner only
    assert (result.width, result.height) == (96, 160)
    frame = read_png(result.frame_paths[1]).astype(int)
    h, w = frame.shape[:2]
    corner = (h // 12, w // 12)
    corners = {
        "top_left": frame[: corner[0], : corner[1]],
        "top_right": frame[: corner[0], -corner[1] :],
        "bottom_left": frame[-corner[0] :, : corner[1]],
        "bottom_right": frame[-corner[0] :, -corner[1] :],
    }
    white = {name: bool(block.min() > 225) for name, block in corners.items()}
    assert white == {"top_left": True, "top_right": False, "bottom_left": False, "bottom_right": False}


def test_auto_strategy_seeks_on_short_gop_and_runs_through_long_gop(clips, tmp_path):
    short = sample_frames(clips["short_gop"], tmp_path / "a", n_frames=6)
    long = sample_frames(clips["long_gop"], tmp_path / "b", n_frames=6)
    assert (short.strategy, long.strategy) == ("seek", "sequential")
    assert short.stats.seeks >= 1 and short.stats.packets_decoded < 48 / 2  # it skipped work
    assert long.stats.seeks == 0


@pytest.mark.parametrize("kind", ["short_gop", "long_gop", "mp4", "webm", "gif"])
@pytest.mark.parametrize("strategy", ["seek", "sequential"])
def test_both_strategies_return_exactly_the_frames_of_a_full_decode(clips, tmp_path, kind, strategy):
    # given the naive reference: every frame decoded, keyed by presentation timestamp
    reference, first_pts = decode_everything(clips[kind])
    # when frames are sampled at full size with a forced strategy
    result = sample_frames(clips[kind], tmp_path / "frames", n_frames=7, strategy=strategy, **BIG_CAPS)
    time_base = av.open(str(clips[kind])).streams.video[0].time_base
    # then each sampled frame is, pixel for pixel, the reference frame with the same pts
    assert len(result.frame_pts) == 7
    for pts, t, frame_path in zip(result.frame_pts, result.timestamps_s, result.frame_paths):
        assert pts in reference
        assert t == pytest.approx(float((pts - first_pts) * time_base))
        np.testing.assert_array_equal(read_png(frame_path), reference[pts])


def test_sampled_frames_are_spread_one_per_segment(clips, tmp_path):
    result = sample_frames(clips["long_gop"], tmp_path / "frames", n_frames=8)
    duration = probe(clips["long_gop"]).duration_s
    for i, t in enumerate(result.timestamps_s):
        assert i * duration / 8 <= t < (i + 1) * duration / 8 + 1e-9


def test_more_frames_asked_than_exist_gives_each_frame_once(clips, tmp_path):
    result = sample_frames(clips["gif"], tmp_path / "frames", n_frames=50)
    assert len(result.frame_pts) == len(set(result.frame_pts)) == 12


def test_sample_frames_replaces_old_folder_and_leaves_no_staging(clips, tmp_path):
    out = tmp_path / "frames"
    sample_frames(clips["mp4"], out, n_frames=8)
    result = sample_frames(clips["mp4"], out, n_frames=3)
    assert sorted(p.name for p in out.iterdir()) == ["1.png", "2.png", "3.png", "timestamps.txt"]
    assert len(result.frame_paths) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_interrupted_write_leaves_no_half_folder(clips, tmp_path, monkeypatch):
    # given a run that dies while writing its third frame
    saved = []
    real_save = Image.Image.save

    def dying_save(self, fp, *args, **kwargs):
        if len(saved) == 2:
            raise KeyboardInterrupt("killed")
        saved.append(fp)
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        sample_frames(clips["mp4"], tmp_path / "frames", n_frames=8)
    # then neither the folder nor its staging copy is left behind
    assert list(tmp_path.iterdir()) == []


def test_read_frames_reads_back_what_sample_frames_wrote(clips, tmp_path):
    # given a frame folder written by sample_frames
    result = sample_frames(clips["mp4"], tmp_path / "frames", n_frames=5)
    # when it is read back
    listed = read_frames(result.out_dir)
    # then the reader sees the writer's frames, in order, at the written times
    assert [path for _, path in listed] == list(result.frame_paths)
    assert [t for t, _ in listed] == pytest.approx(list(result.timestamps_s), abs=1e-6)


def test_read_frames_refuses_a_folder_off_the_layout(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(ValueError, match="no timestamps.txt"):
        read_frames(folder)
    (folder / "timestamps.txt").write_text("")
    with pytest.raises(ValueError, match="no frames"):
        read_frames(folder)
    (folder / "timestamps.txt").write_text("0.0\n0.5\n")
    Image.new("RGB", (4, 4)).save(folder / "1.png")
    with pytest.raises(ValueError, match="2.png is missing"):
        read_frames(folder)


# ---------------------------------------------------------------------------- video_phash


def test_video_phash_matches_reencoded_resized_copy_not_other_clip(clips, tmp_path):
    original = video_phash(clips["mp4"])
    copy = video_phash(mf.reencode(clips["mp4"], tmp_path / "reupload.mp4", width=96, crf=35))
    webm = video_phash(clips["webm"])  # same content, other codec and container
    other = video_phash(clips["other"])
    assert is_near_duplicate(original, copy) and is_near_duplicate(original, webm)
    assert not is_near_duplicate(original, other)
    assert video_distance(original, other) > 2 * video_distance(original, copy)


def test_video_phash_is_the_same_for_both_strategies(clips):
    assert video_phash(clips["short_gop"], strategy="seek") == video_phash(clips["short_gop"], strategy="sequential")


@pytest.mark.parametrize("module", [container, decode_plan, decoding, errors, frame_folder, perceptual_hash, probing],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_media_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_prefer_keyframes_takes_the_keyframe_in_each_segment_and_still_matches_full_decode(tmp_path):
    # given a clip with a keyframe every 12 frames and 8 segments of 6 frames
    clip = mf.make_clip(tmp_path, "gop12.mp4", n_frames=48, gop=12)
    with av.open(str(clip)) as container:
        keyframes = {p.pts for p in container.demux(video=0) if p.is_keyframe and p.size}
    reference, _ = decode_everything(clip)
    # when frames are sampled preferring keyframes
    result = sample_frames(clip, tmp_path / "frames", n_frames=8, prefer_keyframes=True, **BIG_CAPS)
    # then the 4 segments holding a keyframe give that keyframe, the others their centre frame
    assert len(result.frame_pts) == 8
    assert sum(pts in keyframes for pts in result.frame_pts) == 4
    for pts, frame_path in zip(result.frame_pts, result.frame_paths):
        np.testing.assert_array_equal(read_png(frame_path), reference[pts])
