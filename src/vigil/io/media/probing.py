"""Probing a clip: the facts downstream steps need (:class:`MediaProbe`), without a full decode.

:func:`probe` reads a clip's container, codec, duration, fps, frame size and count, bitrate,
rotation, keyframe interval and audio from its container, its packet index (demuxed, not decoded)
and first decoded frame (the only frame it decodes), after the container checks of :mod:`vigil.io.media.container`; anything that
makes the clip unusable (too long, no video stream, unknown duration…) raises
:class:`~vigil.io.media.errors.MediaError`. Sampling and hashing start from the same facts
(:func:`probe_container`).

Frame count, fps and duration come from the packet index, as ``ffprobe -count_frames`` sees them,
never from the container's header alone: an MP4 edit list hides leading frames the sample table
still counts, a GIF with alternating 4/5 cs delays has no single rate (its first delay is not its
fps; frames / duration is), and Matroska/WebM store no count at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import av
import av.error

from vigil.io.media.container import check_file, open_container, video_stream
from vigil.io.media.decode_plan import PacketIndex, mean_interval_s, scan_packets
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
    "image/apng": "apng",
}


@dataclass(frozen=True)
class MediaProbe:
    """Facts about a clip, read from its container and first frame (never a full decode).

    ``width``/``height`` are the stored frame size; ``rotation`` is the clockwise turn (0, 90, 180,
    270) a player applies to show it upright, so :attr:`display_width`/:attr:`display_height` are
    what a viewer sees. From :func:`probe`, ``frame_count`` is the number of frames a player shows
    (counted in the packet index), ``fps`` is that count over ``duration_s`` (the shown duration),
    and ``frame_count_exact`` is True. From :func:`probe_container` alone they are the container's
    header values: ``frame_count_exact`` is False when it stores no count (WebM, Matroska) and
    ``frame_count`` is then duration × fps.
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
    return with_index_facts(facts, scan_packets(path, facts.mime_type))


def with_index_facts(facts: MediaProbe, index: PacketIndex) -> MediaProbe:
    """The header facts corrected by the packet index: shown frame count, shown duration, and fps
    as their ratio (ffprobe's ``avg_frame_rate``; the nominal rate where every step is equal)."""
    keyframe_interval = facts.keyframe_interval_s
    if keyframe_interval is None or index.by_position:  # no sample table (WebM, GIF, AVI)
        keyframe_interval = index.keyframe_interval_s()
    return replace(
        facts,
        frame_count=index.frame_count,
        frame_count_exact=True,
        duration_s=index.duration_s,
        fps=_index_fps(index, facts.fps),
        keyframe_interval_s=keyframe_interval,
    )


#: The header's nominal rate is kept when the timestamps agree with it this closely: it is the
#: exact rational (24, 30000/1001) that millisecond timestamps (Matroska) only approximate.
_HEADER_FPS_TOLERANCE = 0.01


def _index_fps(index: PacketIndex, header_fps: float) -> float:
    """Shown frames over shown duration, unless the header rate agrees (then its exact value).
    Frames numbered by position have no timestamps, only the header rate they are numbered by.

    >>> from fractions import Fraction
    >>> gif = PacketIndex((0, 4, 9), (True,) * 3, (0, 4, 9), Fraction(1, 100), 4, last_duration=5)
    >>> round(_index_fps(gif, 25.0), 2)  # 4 and 5 cs delays: not the first delay's 25
    21.43
    >>> mkv = PacketIndex((0, 42, 83), (True,) * 3, (0, 42, 83), Fraction(1, 1000), 42, last_duration=42)
    >>> _index_fps(mkv, 24.0)
    24.0
    """
    if header_fps > 0 and (index.by_position or abs(index.fps - header_fps) <= _HEADER_FPS_TOLERANCE * header_fps):
        return header_fps
    return index.fps or header_fps


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
        if duration_s is None or duration_s <= 0:  # APNG stores none: the index's shown span
            duration_s = scan_packets(path, mime).duration_s
        if duration_s <= 0:
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
