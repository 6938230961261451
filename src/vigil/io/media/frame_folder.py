"""Frame folders: a clip's sampled frames on disk in Skyra's layout, written and read here.

Everything downstream (manifest, annotation, training, evaluation) sees a clip's pixels through one
folder layout: ``1.png … N.png`` plus ``timestamps.txt`` (one time in seconds per line, frame i on
line i). :func:`sample_frames` writes such a folder from a clip (N frames spread over it, upright,
downscaled to the ingest caps, the folder appearing complete or not at all) and :func:`read_frames`
reads one back, refusing a folder that does not follow the layout.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from vigil.io.media.decode_plan import Strategy, scan_packets
from vigil.io.media.decoding import DecodeStats, decode_frames, upright
from vigil.io.media.probing import probe_container


@dataclass(frozen=True)
class SampledFrames:
    """A frame folder in Skyra's layout and what it holds.

    ``frame_paths[i]`` is ``out_dir/{i+1}.png``, shown at ``timestamps_s[i]`` seconds from the
    first frame (also one per line in ``timestamps.txt``); ``frame_pts`` are the same instants in
    the stream's time base, which identify the exact decoded frame.
    """

    out_dir: Path
    frame_paths: tuple[Path, ...]
    timestamps_s: tuple[float, ...]
    frame_pts: tuple[int, ...]
    strategy: str
    width: int
    height: int
    stats: DecodeStats


def output_size(width: int, height: int, max_side: int, max_pixels: int) -> tuple[int, int]:
    """Largest even size with the same aspect ratio that fits ``max_side`` and ``max_pixels``.

    >>> output_size(3840, 2160, 1024, 1024 * 1024)
    (1024, 576)
    >>> output_size(161, 121, 1024, 10**6)
    (160, 120)
    """
    scale = min(1.0, max_side / max(width, height), math.sqrt(max_pixels / (width * height)))
    # the epsilon keeps 161 * (128 / 161) from flooring to 127 by float error
    return max(2, int(width * scale + 1e-6) // 2 * 2), max(2, int(height * scale + 1e-6) // 2 * 2)


def _rgb_converter(rotation: int, stored_size: tuple[int, int]) -> Callable[[av.VideoFrame], np.ndarray]:
    """Convert a kept frame to upright RGB at the output size: scale and convert in one swscale
    call (at stored orientation), then rotate the small result."""
    stored_w, stored_h = stored_size
    # One reformatter for the clip keeps one cached swscale context; a fresh one per frame (what
    # VideoFrame.to_ndarray(format=...) does) costs ~2 ms per frame even at 160x120.
    reformatter = VideoReformatter()

    def convert(frame: av.VideoFrame) -> np.ndarray:
        if (frame.width, frame.height) == (stored_w, stored_h):
            rgb = reformatter.reformat(frame, format="rgb24").to_ndarray()
        else:
            rgb = reformatter.reformat(
                frame, width=stored_w, height=stored_h, format="rgb24", interpolation="AREA"
            ).to_ndarray()
        return upright(rgb, rotation)

    return convert


def sample_frames(
    path: str | Path,
    out_dir: str | Path,
    n_frames: int = 16,
    max_side: int = 224,
    max_pixels: int = 224 * 224,
    strategy: Strategy = "auto",
    *,
    prefer_keyframes: bool = False,
    max_bytes: int | None = None,
    max_duration_s: float | None = None,
) -> SampledFrames:
    """Write ``n_frames`` frames spread over the clip to ``out_dir`` as ``1.png … N.png`` plus
    ``timestamps.txt``, upright and downscaled to fit ``max_side`` and ``max_pixels`` (defaults:
    the ingest caps in params.yaml).

    Frame i is the one on screen at the centre of the i-th of N equal parts of the clip. A clip
    with fewer than N frames gives each of its frames once (no duplicates). ``out_dir`` appears
    complete or not at all (written beside it under a temporary name, then renamed); an existing
    ``out_dir`` is replaced. ``strategy`` forces a decode plan; ``"auto"`` picks per clip.

    ``prefer_keyframes`` takes, in each part that contains a keyframe, that keyframe instead of the
    centre frame: with a short GOP it decodes several times less. Off by default because it makes
    the frame type depend on the source's GOP: keyframes are coded at higher quality than B-frames,
    and a detector could learn "which encoder settings" instead of "which generator".
    """
    path, out_dir = Path(path), Path(out_dir)
    if n_frames < 1:
        raise ValueError("n_frames must be at least 1")
    facts = probe_container(path, max_bytes, max_duration_s)
    index = scan_packets(path, facts.mime_type)
    wanted = index.frames_for_segments(n_frames, prefer_keyframes)
    number_of = {pts: number for number, pts in enumerate(wanted, start=1)}
    out_w, out_h = output_size(facts.display_width, facts.display_height, max_side, max_pixels)
    stored_size = (out_h, out_w) if facts.rotation in (90, 270) else (out_w, out_h)
    convert = _rgb_converter(facts.rotation, stored_size)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        # PNG encoding releases the GIL: write frames on worker threads while decoding goes on.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vigil-png") as writers:
            pending: list[Future] = []

            def write(frame: av.VideoFrame) -> None:
                image = Image.fromarray(convert(frame))
                target = staging / f"{number_of[frame.pts]}.png"
                pending.append(writers.submit(image.save, target, compress_level=1))

            try:
                found, chosen, stats = decode_frames(path, facts.mime_type, index, wanted, strategy, write)
            finally:
                for future in pending:
                    future.result()  # re-raise a failed write (disk full...) here
        kept_pts = [pts for pts in wanted if pts in found]
        names = []
        for number, pts in enumerate(kept_pts, start=1):  # close gaps left by undecodable frames
            if number != number_of[pts]:
                (staging / f"{number_of[pts]}.png").rename(staging / f"{number}.png")
            names.append(f"{number}.png")
        timestamps = [index.seconds(pts) for pts in kept_pts]
        (staging / "timestamps.txt").write_text("".join(f"{t:.6f}\n" for t in timestamps))
        _replace_dir(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SampledFrames(
        out_dir=out_dir,
        frame_paths=tuple(out_dir / name for name in names),
        timestamps_s=tuple(timestamps),
        frame_pts=tuple(kept_pts),
        strategy=chosen,
        width=out_w,
        height=out_h,
        stats=stats,
    )


def _replace_dir(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final``; an old ``final`` is moved aside first and then deleted, so
    at every instant ``final`` is either the old complete folder, absent, or the new one."""
    if final.exists():
        old = final.with_name(f".{final.name}.{os.getpid()}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)


def read_frames(frames_dir: Path | str) -> list[tuple[float, Path]]:
    """(timestamp, path) of every frame in a Skyra-layout folder (``1.png … N.png`` +
    ``timestamps.txt``), in order. Raises ValueError when the folder does not follow the layout."""
    folder = Path(frames_dir)
    ts_file = folder / "timestamps.txt"
    if not ts_file.is_file():
        raise ValueError(f"{folder}: no timestamps.txt")
    stamps = [float(line) for line in ts_file.read_text().split() if line.strip()]
    frames: list[tuple[float, Path]] = []
    for i, t in enumerate(stamps, start=1):
        png = folder / f"{i}.png"
        if not png.is_file():
            raise ValueError(f"{folder}: timestamps.txt lists {len(stamps)} frames but {png.name} is missing")
        frames.append((t, png))
    if not frames:
        raise ValueError(f"{folder}: no frames")
    return frames
