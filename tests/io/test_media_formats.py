"""Every container Vigil accepts, probed and sampled, checked against the ffmpeg binary's own view.

Reference: no ffprobe binary is available here (imageio-ffmpeg ships only ``ffmpeg``), so the
reference is ``ffmpeg -noautorotate -i X -map 0:v:0 -vf showinfo -fps_mode passthrough -f null -``:
one line per displayed frame with its pts, duration and size, and the display matrix. Frame count
is the number of lines, duration the span from the first frame's start to the last frame's end,
fps their ratio (ffprobe's ``avg_frame_rate``). The ffmpeg binary is a different build from PyAV's
bundled FFmpeg, so agreement is not Vigil reading its own output back.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from tests.support import media_factory as mf
from vigil.io.media.errors import MediaError
from vigil.io.media.frame_folder import sample_frames
from vigil.io.media.probing import probe

BIG_CAPS = {"max_side": 4096, "max_pixels": 4096 * 4096}
_FRAME_LINE = re.compile(r"n:\s*(\d+)\s+pts:\s*(-?\d+)\s+pts_time:(\S+)\s+duration:\s*(\S+)\s+duration_time:(\S+).*?\bs:(\d+)x(\d+)")
_ROTATION = re.compile(r"displaymatrix: rotation of (-?[\d.]+) degrees")


@dataclass(frozen=True)
class Reference:
    frame_count: int
    duration_s: float
    width: int
    height: int
    rotation: int

    @property
    def fps(self) -> float:
        return self.frame_count / self.duration_s


def ffmpeg_reference(path: Path) -> Reference:
    """What the ffmpeg binary decodes and shows: frames, shown duration, stored size, rotation."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-noautorotate", "-i", str(path),
               "-map", "0:v:0", "-vf", "showinfo", "-fps_mode", "passthrough", "-f", "null", "-"]
    log = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    frames = [match.groups() for match in _FRAME_LINE.finditer(log)]
    assert frames, log
    starts = [float(f[2]) for f in frames]
    last = max(range(len(frames)), key=lambda i: starts[i])
    duration = starts[last] + float(frames[last][4]) - min(starts)
    angle = _ROTATION.search(log)
    rotation = round(-float(angle.group(1))) % 360 if angle else 0
    return Reference(len(frames), duration, int(frames[0][5]), int(frames[0][6]), rotation)


CASES = {
    "mp4": lambda d: mf.make_mp4(d),
    "mov": lambda d: mf.make_clip(d, "clip.mov"),
    "mkv": lambda d: mf.make_mkv(d, "clip with spaces.mkv"),
    "webm": lambda d: mf.make_webm(d),
    "avi_mpeg4": lambda d: mf.make_avi(d, "mpeg4 clip.avi", codec="mpeg4"),
    "avi_h264": lambda d: mf.make_avi(d, "h264 clip.avi", codec="h264"),
    "ts": lambda d: mf.make_ts(d),
    "m2ts": lambda d: mf.make_ts(d, "clip.m2ts", m2ts=True),
    "gif": lambda d: mf.make_gif(d),
    "vfr_gif": lambda d: mf.make_vfr_gif(d),
    "apng": lambda d: mf.make_apng(d),
    "edit_list_mp4": lambda d: mf.make_edit_list_mp4(d, "edit list.mp4"),
    "rotated_mp4": lambda d: mf.make_rotated_mp4(d, "r90.mp4", rotation=90),
    "rotated_mkv": lambda d: mf.make_rotated_mp4(d, "r270.mkv", rotation=270),
    "odd_mp4": lambda d: mf.make_odd_sized_mp4(d),
    "odd_mkv": lambda d: mf.make_clip(d, "odd.mkv", n_frames=12, width=161, height=121, pix_fmt="yuv444p"),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("formats")
    return {name: make(d) for name, make in CASES.items()}


@pytest.mark.parametrize("kind", list(CASES))
def test_probe_matches_ffmpeg_within_one_frame(clips, kind):
    # given a small clip of one container/codec kind and what the ffmpeg binary shows of it
    reference = ffmpeg_reference(clips[kind])
    # when Vigil probes it
    facts = probe(clips[kind])
    # then every fact agrees: counts and times within one frame, sizes and rotation exactly
    frame_s = 1 / reference.fps
    assert abs(facts.frame_count - reference.frame_count) <= 1, (facts, reference)
    assert abs(facts.duration_s - reference.duration_s) <= frame_s, (facts, reference)
    assert abs(facts.fps * reference.duration_s - reference.frame_count) <= 1, (facts, reference)
    assert (facts.width, facts.height, facts.rotation) == (reference.width, reference.height, reference.rotation)
    assert facts.frame_count_exact


def test_vfr_gif_fps_is_frames_over_duration_not_its_first_delay(clips):
    # given a GIF whose delays alternate 4 and 5 cs (the first delay alone says 25 fps)
    with av.open(str(clips["vfr_gif"])) as container:
        header_rate = float(container.streams.video[0].average_rate)
    reference = ffmpeg_reference(clips["vfr_gif"])
    assert header_rate == pytest.approx(25.0) and reference.fps == pytest.approx(12 / 0.54)
    # then probe reports frames / duration
    assert probe(clips["vfr_gif"]).fps == pytest.approx(reference.fps, rel=0.01)


def test_edit_list_mp4_reports_the_frames_a_player_shows(clips):
    # given a stream-copied cut: an edit list (elst) hides frames the sample table still holds
    path = clips["edit_list_mp4"]
    assert b"elst" in path.read_bytes()
    with av.open(str(path)) as container:
        stored = container.streams.video[0].frames
    reference = ffmpeg_reference(path)
    assert stored > reference.frame_count + 1  # the trap is real: the header count is too high
    # then probe counts the shown frames, and sampling never picks a hidden one
    assert probe(path).frame_count == reference.frame_count
    result = sample_frames(path, path.parent / "edit_frames", n_frames=50, **BIG_CAPS)
    assert len(result.frame_paths) == reference.frame_count


@pytest.mark.parametrize("kind", ["mkv", "avi_mpeg4", "avi_h264", "ts", "m2ts", "vfr_gif", "apng", "odd_mkv"])
def test_new_containers_sample_into_a_frame_folder(clips, tmp_path, kind):
    result = sample_frames(clips[kind], tmp_path / "frames", n_frames=6, max_side=64, max_pixels=64 * 64)
    assert len(result.frame_paths) == 6
    assert all(a < b for a, b in zip(result.timestamps_s, result.timestamps_s[1:]))
    assert result.timestamps_s[0] >= 0 and result.timestamps_s[-1] < probe(clips[kind]).duration_s
    assert all(Image.open(p).size == (result.width, result.height) for p in result.frame_paths)


def test_animated_webp_is_refused_with_a_reason_pyav_cannot_decode_it(tmp_path):
    # given an animated WebP: the ffmpeg binary decodes it, PyAV's bundled FFmpeg cannot
    path = mf.make_animated_webp(tmp_path)
    assert ffmpeg_reference(path).frame_count == 8
    with av.open(str(path)) as container, pytest.raises(av.error.InvalidDataError):
        list(container.decode(video=0))
    # then probe refuses it as not_media, saying it is an animated WebP
    with pytest.raises(MediaError) as caught:
        probe(path)
    assert caught.value.reason == "not_media" and "animated WebP" in caught.value.detail


# ---------------------------------------------------------------------------- AVI timestamps


def ffmpeg_frames_at(path: Path, indices: list[int], width: int, height: int) -> dict[int, np.ndarray]:
    """The frames ffmpeg decodes at display positions ``indices`` (its frame counter ``n``)."""
    select = "+".join(f"eq(n\\,{k})" for k in sorted(set(indices)))
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", f"select={select}",
               "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    assert len(frames) == len(set(indices))
    return dict(zip(sorted(set(indices)), frames))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(float) - b.astype(float)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
@pytest.mark.parametrize("strategy", ["auto", "seek"])
def test_avi_frames_are_the_ones_ffmpeg_shows_at_their_index(tmp_path, codec, strategy):
    # given a 320x180 AVI with one keyframe and B-frames: AVI stores no presentation timestamps
    path = mf.make_avi(tmp_path, f"one key {codec}.avi", codec=codec, width=320, height=180,
                       n_frames=45, fps=30.0, gop=1000)
    # when 16 frames are sampled
    result = sample_frames(path, tmp_path / "frames", n_frames=16, strategy=strategy, **BIG_CAPS)
    assert len(result.frame_paths) == 16
    # then frame i's timestamp is its index / fps, and it is ffmpeg's frame at that index
    indices = [round(t * 30) for t in result.timestamps_s]
    assert result.timestamps_s == pytest.approx([k / 30 for k in indices], abs=1e-6)
    neighbours = [k + step for k in indices for step in (-1, 1) if 0 <= k + step < 45]
    reference = ffmpeg_frames_at(path, indices + neighbours, 320, 180)
    for k, frame_path in zip(indices, result.frame_paths):
        ours = np.asarray(Image.open(frame_path).convert("RGB"))
        assert psnr(ours, reference[k]) >= 40, k
        for other in (k - 1, k + 1):  # and the check can fail: the neighbours are far off
            if other in reference:
                assert psnr(ours, reference[other]) < 40, (k, other)
