"""Encode frame arrays into video files (mp4/mov/mkv/ts with H.264, webm/VP9, avi/MPEG-4 part 2,
gif) with PyAV's bundled FFmpeg.

Used by the synthetic zoo and by tests to make real media files; kept small on purpose.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

_CONTAINERS = {
    ".mp4": ("mp4", "libx264", "yuv420p"),
    ".mov": ("mov", "libx264", "yuv420p"),
    ".webm": ("webm", "libvpx-vp9", "yuv420p"),
    ".gif": ("gif", "gif", "rgb8"),
    ".mkv": ("matroska", "libx264", "yuv420p"),
    ".avi": ("avi", "mpeg4", "yuv420p"),
    ".ts": ("mpegts", "libx264", "yuv420p"),
}
#: Codecs ``codec=`` may pick instead of the container's default (AVI holds either).
_CODECS = {"libx264": "yuv420p", "mpeg4": "yuv420p", "libvpx-vp9": "yuv420p"}
_DISPLAY_MATRIX_FORMATS = {"mp4", "mov", "matroska"}
_CHROMA_SUBSAMPLED = {"yuv420p", "yuv422p", "nv12"}
_ROTATIONS = (0, 90, 180, 270)


def write_video(
    frames: np.ndarray,
    fps: float,
    path: str | Path,
    *,
    gop: int | None = None,
    crf: int = 23,
    rotation: int = 0,
    pix_fmt: str | None = None,
    preset: str | None = None,
    faststart: bool = False,
    codec: str | None = None,
    b_frames: int | None = None,
) -> Path:
    """Write ``frames`` (T, H, W, 3 uint8 RGB) to ``path``; the suffix picks container and codec.

    ``gop`` sets the keyframe interval in frames (None keeps the encoder's default).

    ``rotation`` is the clockwise angle (0/90/180/270) a player must turn the stored frames to show
    them upright, as phones record portrait video (the legacy ``rotate=90`` tag). It is written as
    a real display matrix in the container (FFmpeg no longer writes the ``rotate`` metadata tag), so
    ``ffmpeg``/``ffprobe`` report it as "Display Matrix: rotation of -90.00 degrees" for 90, and
    :func:`vigil.io.media.probing.probe` reads it back as ``rotation=90``.

    ``pix_fmt`` overrides the codec's default pixel format: use ``"yuv444p"`` with H.264 for odd
    frame sizes (4:2:0 needs even sizes). ``preset`` picks the x264 preset (``"ultrafast"`` keeps
    big test clips cheap). ``faststart`` puts the mp4/mov index (moov) before the media data, as
    streaming sites do; the default leaves it at the end, as x264/FFmpeg do.

    ``codec`` overrides the container's default codec (``"libx264"`` in ``.avi``: H.264 in AVI, as
    some cameras and old tools write it); ``b_frames`` sets the encoder's maximum consecutive
    B-frames (``2`` with ``mpeg4`` gives Xvid-style reordered frames; x264 defaults to 3).

    The file appears atomically: a reader never sees a half-written clip.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _CONTAINERS:
        raise ValueError(f"unsupported video suffix {suffix!r}; use one of {sorted(_CONTAINERS)}")
    fmt, default_codec, default_pix_fmt = _CONTAINERS[suffix]
    if codec is not None and codec not in _CODECS:
        raise ValueError(f"unsupported codec {codec!r}; use one of {sorted(_CODECS)}")
    if codec is not None and codec != default_codec:
        default_pix_fmt = _CODECS[codec]
    codec = codec or default_codec
    pix_fmt = pix_fmt or default_pix_fmt
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if rotation % 360 not in _ROTATIONS:
        raise ValueError(f"rotation must be one of {_ROTATIONS}, got {rotation}")
    rotation %= 360
    if rotation and fmt not in _DISPLAY_MATRIX_FORMATS:
        raise ValueError(f"{fmt} stores no display matrix; rotate the frames instead")
    if faststart and fmt not in ("mp4", "mov"):
        raise ValueError("faststart applies to mp4/mov only")
    t, h, w, _ = frames.shape
    if pix_fmt in _CHROMA_SUBSAMPLED and (h % 2 or w % 2):
        raise ValueError(f"{codec} with {pix_fmt} needs even width and height, got {w}x{h}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    rate = Fraction(fps).limit_denominator(1001)
    container_options = {"movflags": "+faststart"} if faststart else {}
    try:
        with av.open(str(tmp), mode="w", format=fmt, options=container_options) as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            options: dict[str, str] = {}
            if codec == "libx264":
                options["crf"] = str(crf)
                if preset:
                    options["preset"] = preset
            if b_frames is not None:
                stream.codec_context.max_b_frames = b_frames
                if codec == "libx264":
                    options["bframes"] = str(b_frames)
            if gop is not None:
                stream.codec_context.gop_size = gop
                if codec == "libx264":
                    options["keyint_min"] = str(gop)
                    options["sc_threshold"] = "0"
            stream.options = options
            if rotation:
                # PyAV's display rotation is counter-clockwise (as VideoFrame.rotation reads it);
                # a clockwise display turn of 90 is a counter-clockwise matrix angle of -90.
                stream.set_display_rotation(-rotation)
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
