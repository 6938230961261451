"""Probing a clip: the facts downstream steps need (:class:`MediaProbe`), without a full decode.

:func:`probe` reads a clip's container, codec, duration, fps, frame size and count, bitrate,
rotation, keyframe interval and audio from its container, index and first decoded frame (the only
frame it decodes), after the container checks of :mod:`vigil.io.media.container`; anything that
makes the clip unusable (too long, no video stream, unknown duration…) raises
:class:`~vigil.io.media.errors.MediaError`. Sampling and hashing start from the same facts
(:func:`probe_container`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import av
import av.error

from vigil.io.media.container import check_file, open_container, video_stream
from vigil.io.media.decode_plan import mean_interval_s, scan_packets
from vigil.io.media.errors import MediaError

_AUDIO_TYPES = {"audio/mp4", "audio/wav"}
_CONTAINER_NAMES = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "image/gif": "gif",
    "video/x-msvideo": "avi",
    "video/mp2t": "mpegts",
}


@dataclass(frozen=True)
class MediaProbe:
    """Facts about a clip, read from its container and first frame (never a full decode).

    ``width``/``height`` are the stored frame size; ``rotation`` is the clockwise turn (0, 90, 180,
    270) a player applies to show it upright, so :attr:`display_width`/:attr:`display_height` are
    what a viewer sees. ``frame_count_exact`` is False when the container does not store a count
    (WebM, Matroska) and ``frame_count`` is duration × fps.
    """

    mime_type: str
    container: str
    codec: str
    duration_s: float
    fps: float
    width: int
    height: int
    frame_count: int
    frame_count_exact: bool
    bitrate: int | None
    rotation: int
    keyframe_interval_s: float | None
    has_audio: bool
    size_bytes: int

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height


def probe(
    path: str | Path, *, max_bytes: int | None = None, max_duration_s: float | None = None
) -> MediaProbe:
    """Read a clip's facts: container, codec, duration, fps, size, frame count, bitrate, rotation,
    keyframe interval, audio. Decodes the first frame only (to prove the stream decodes and to read
    the rotation the decoder reports); raises :class:`MediaError` on anything unusable."""
    path = Path(path)
    facts = probe_container(path, max_bytes, max_duration_s)
    if facts.keyframe_interval_s is None:  # no sample table (WebM, GIF): demux, still no decode
        facts = replace(facts, keyframe_interval_s=scan_packets(path, facts.mime_type).keyframe_interval_s())
    return facts


def probe_container(path: Path, max_bytes: int | None, max_duration_s: float | None) -> MediaProbe:
    """Everything :func:`probe` reports except a keyframe interval that needs demuxing (None)."""
    mime, size = check_file(path, max_bytes)
    if mime in _AUDIO_TYPES:
        raise MediaError("no_video_stream", f"{path.name} is audio ({mime})")
    with open_container(path, mime) as container:
        stream = video_stream(container, path)
        codec = stream.codec_context.name
        container_name = _CONTAINER_NAMES.get(mime or "", container.format.name.split(",")[0])
        fps = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0)
        duration_s = _duration_s(container, stream)
        if duration_s is None or duration_s <= 0:
            raise MediaError("undecodable", f"{path.name}: duration unknown")
        if max_duration_s is not None and duration_s > max_duration_s:
            raise MediaError("too_long", f"{path.name} lasts {duration_s:.1f} s, over the {max_duration_s} s limit")
        frame_count, exact = (stream.frames, True) if stream.frames else (max(1, round(duration_s * fps)), False)
        keyframe_interval = _keyframe_interval_from_index(stream)
        has_audio = bool(container.streams.audio)
        bitrate = container.bit_rate or stream.codec_context.bit_rate or None
        first = _first_frame(container, stream, path)
        rotation = _clockwise_rotation(first)
    return MediaProbe(
        mime_type=mime or "video/unknown",
        container=container_name,
        codec=codec,
        duration_s=duration_s,
        fps=fps,
        width=first.width,
        height=first.height,
        frame_count=int(frame_count),
        frame_count_exact=exact,
        bitrate=int(bitrate) if bitrate else None,
        rotation=rotation,
        keyframe_interval_s=keyframe_interval,
        has_audio=has_audio,
        size_bytes=size,
    )


def _duration_s(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _keyframe_interval_from_index(stream) -> float | None:
    """MP4/MOV keep a sample table with sync flags: the GOP estimate costs no reading at all."""
    entries = stream.index_entries
    if not stream.frames or len(entries) < stream.frames or not stream.time_base:
        return None
    keyframes = [entry.timestamp for entry in entries if entry.is_keyframe]
    return mean_interval_s(keyframes, entries[-1].timestamp, stream.time_base)


def _first_frame(container: av.container.InputContainer, stream, path: Path) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as exc:
        raise MediaError("undecodable", f"{path.name}: first frame does not decode: {exc}") from None
    raise MediaError("undecodable", f"{path.name}: the video stream yields no frame")


def _clockwise_rotation(frame: av.VideoFrame) -> int:
    """The display matrix stores a counter-clockwise angle; players turn clockwise by its negation."""
    return int(round(-frame.rotation / 90.0)) * 90 % 360
