"""Probe, sample frames from, and hash crawled video, turning every bad input into a MediaError.

Everything downstream (manifest, annotation, training, evaluation) sees a clip through two things
made here: its probed facts (:class:`MediaProbe`) and a frame folder in Skyra's layout
(``1.png … N.png`` + ``timestamps.txt``, :func:`sample_frames`). Crawled input is hostile by
accident: empty downloads, cut-off files, HTML error pages named ``.mp4``, audio-only files, 4K
phone clips with a rotation flag. Each of those raises :class:`MediaError` with a machine-readable
``reason`` that the ingest flow can count and quarantine by, never a raw PyAV/FFmpeg exception.

Decoding is the expensive step, so frames are picked by presentation timestamp from a packet index
built without decoding (demuxing only), and each clip gets the cheaper of two decode plans:

* ``"seek"``: jump to the keyframe before each wanted frame and decode forward to it. Cheap when
  keyframes are frequent (short GOP), useless when the clip has one keyframe.
* ``"sequential"``: one pass in decode order, stopping after the last wanted packet.

In both, only kept frames are converted (scaled and converted to RGB in one swscale call), and
H.264/HEVC non-reference frames that are not wanted are not decoded at all (``skip_frame="NONREF"``,
set per packet, so that a wanted non-reference frame is still decoded; other codecs decode every
packet). ``"auto"`` counts, from the packet index, how many packets each plan would decode and
picks seek only when it saves a fifth or more (each seek costs a fixed penalty). Both plans return
exactly the frames a full decode gives at the same timestamps; the tests check it pixel for pixel.

Benchmarks (``benchmarks/frame_sampling.py``): with exact centre frames the decode work is bounded
by the GOP structure (a 1 s GOP still needs about two thirds of the packets for 16 frames of 300);
``prefer_keyframes`` trades exact centres for keyframes and decodes about a third.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.error
from av.video.reformatter import VideoReformatter
import numpy as np
from PIL import Image

from vigil.core.phash import PHASH_POSITIONS, video_phash_from_frames
from vigil.core.sniff import SNIFF_BYTES, sniff_media_type

Strategy = Literal["auto", "seek", "sequential"]

#: Streams above this many pixels per frame are refused (``too_large``) before any decode:
#: a decompression bomb in a 1 KB file would otherwise take the worker's memory.
MAX_STREAM_PIXELS = 8192 * 8192

#: Sniffed types that are certainly not video; rejected as ``not_media`` without opening them.
_NOT_MEDIA_TYPES = {
    "text/html": "an HTML page (often an error page served in place of the video)",
    "application/json": "a JSON document (often an API error body)",
    "application/xml": "an XML document",
    "image/png": "a PNG still image",
    "image/jpeg": "a JPEG still image",
    "image/webp": "a WebP still image",
    "image/avif": "an AVIF still image",
    "image/heic": "a HEIC still image",
}
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
#: Codecs whose ``skip_frame="NONREF"`` is known to drop only frames no other frame refers to.
_NONREF_SAFE_CODECS = {"h264", "hevc"}
#: What one seek costs, in decoded-packet equivalents (demuxer seek, decoder flush, thread warm-up).
_SEEK_PENALTY_PACKETS = 3


class MediaError(Exception):
    """A clip that cannot be used, with a machine-readable ``reason`` and a human ``detail``.

    Reasons: ``not_found``, ``unreadable``, ``empty_file``, ``not_media``, ``truncated``,
    ``no_video_stream``, ``undecodable``, ``too_long``, ``too_large``.
    """

    REASONS = frozenset(
        {
            "not_found",
            "unreadable",
            "empty_file",
            "not_media",
            "truncated",
            "no_video_stream",
            "undecodable",
            "too_long",
            "too_large",
        }
    )

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown MediaError reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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


@dataclass(frozen=True)
class DecodeStats:
    """How much work a sampling run did; what the strategy choice is judged by.

    ``packets_decoded`` counts packets sent to the decoder; unwanted non-reference ones among them
    are skipped inside it at almost no cost."""

    packets_demuxed: int
    packets_decoded: int
    frames_converted: int
    seeks: int
    seconds: float


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


# --------------------------------------------------------------------------------------------
# opening and checking


def _read_head(path: Path) -> tuple[bytes, int]:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES), size
    except FileNotFoundError:
        raise MediaError("not_found", f"{path} does not exist") from None
    except IsADirectoryError:
        raise MediaError("unreadable", f"{path} is a directory") from None
    except OSError as exc:
        raise MediaError("unreadable", f"cannot read {path}: {exc}") from None


def _check_file(path: Path, max_bytes: int | None) -> tuple[str | None, int]:
    """Cheap checks before FFmpeg sees the file: size, magic bytes, container completeness."""
    head, size = _read_head(path)
    if size == 0:
        raise MediaError("empty_file", f"{path.name} is 0 bytes")
    if max_bytes is not None and size > max_bytes:
        raise MediaError("too_large", f"{path.name} is {size} bytes, over the {max_bytes}-byte limit")
    mime = sniff_media_type(head)
    if mime in _NOT_MEDIA_TYPES:
        raise MediaError("not_media", f"{path.name} is {_NOT_MEDIA_TYPES[mime]}, not a video")
    truncation = _truncation(path, mime, size)
    if truncation:
        raise MediaError("truncated", f"{path.name}: {truncation}")
    return mime, size


def _truncation(path: Path, mime: str | None, size: int) -> str | None:
    """Explain why the container is cut short, or None. Reads a few headers, not the media."""
    with open(path, "rb") as fh:
        if mime in ("video/mp4", "video/quicktime", "audio/mp4"):
            return _iso_bmff_truncation(fh, size)
        if mime in ("video/webm", "video/x-matroska"):
            return _ebml_truncation(fh, size)
    return None


def _iso_bmff_truncation(fh, size: int) -> str | None:
    """Walk the top-level boxes: a box reaching past the end, or no ``moov`` index, means a cut
    download (x264/FFmpeg write ``moov`` last, so the first half of a file has none)."""
    offset, seen = 0, set()
    while offset + 8 <= size:
        fh.seek(offset)
        header = fh.read(16)
        box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
        if box_size == 1 and len(header) >= 16:
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:
            box_size = size - offset
        if box_size < 8:
            return f"corrupt box header at byte {offset}"
        seen.add(box_type)
        if offset + box_size > size:
            return (
                f"'{box_type.decode('latin-1')}' box at byte {offset} needs {box_size} bytes, "
                f"only {size - offset} present"
            )
        offset += box_size
    if b"moov" not in seen:
        return "no 'moov' index box (the file ends before it)"
    return None


def _read_vint(fh, keep_marker: bool) -> tuple[int, int] | None:
    first = fh.read(1)
    if not first:
        return None
    width = 1
    while width <= 8 and not first[0] & (0x80 >> (width - 1)):
        width += 1
    if width > 8:
        return None
    rest = fh.read(width - 1)
    if len(rest) != width - 1:
        return None
    value = first[0] if keep_marker else first[0] & (0xFF >> width)
    for byte in rest:
        value = (value << 8) | byte
    return value, width


def _ebml_truncation(fh, size: int) -> str | None:
    """Matroska/WebM: the Segment element after the EBML header declares its size (when the
    muxer could seek back to write it); a file shorter than that was cut."""
    fh.seek(0)
    for expected in (0x1A45DFA3, 0x18538067):  # EBML header, Segment
        element = _read_vint(fh, keep_marker=True)
        length = _read_vint(fh, keep_marker=False)
        if element is None or length is None:
            return "file ends inside the EBML header"
        if element[0] != expected:
            return None  # unusual layout: leave it to the demuxer
        body_size, width = length
        unknown_size = body_size == (1 << (7 * width)) - 1
        if expected == 0x1A45DFA3:
            fh.seek(body_size, os.SEEK_CUR)
        elif not unknown_size and fh.tell() + body_size > size:
            return f"Segment declares {body_size} bytes, only {size - fh.tell()} present"
    return None


@contextmanager
def _open(path: Path, mime: str | None) -> Iterator[av.container.InputContainer]:
    """``av.open`` with FFmpeg's failures turned into MediaError reasons."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        if mime is not None and mime.startswith("video/"):
            raise MediaError("undecodable", f"{path.name} looks like {mime} but FFmpeg refuses it: {exc}") from None
        raise MediaError("not_media", f"{path.name} is not a container FFmpeg can read: {exc}") from None
    except OSError as exc:
        raise MediaError("unreadable", f"cannot open {path}: {exc}") from None
    try:
        yield container
    except av.error.FFmpegError as exc:
        raise MediaError("undecodable", f"{path.name}: {exc}") from None
    finally:
        container.close()


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams:
        raise MediaError("undecodable", f"{path.name}: FFmpeg finds no stream in it (corrupt index?)")
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams}) or ["none"]
        raise MediaError("no_video_stream", f"{path.name} has no video stream (streams: {', '.join(kinds)})")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise MediaError("undecodable", f"{path.name}: no decoder for its video codec")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_STREAM_PIXELS:
        raise MediaError("too_large", f"{path.name} is {width}x{height}, over {MAX_STREAM_PIXELS} pixels per frame")
    return stream


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


# --------------------------------------------------------------------------------------------
# probe


def probe(
    path: str | Path, *, max_bytes: int | None = None, max_duration_s: float | None = None
) -> MediaProbe:
    """Read a clip's facts: container, codec, duration, fps, size, frame count, bitrate, rotation,
    keyframe interval, audio. Decodes the first frame only (to prove the stream decodes and to read
    the rotation the decoder reports); raises :class:`MediaError` on anything unusable."""
    path = Path(path)
    facts = _probe_container(path, max_bytes, max_duration_s)
    if facts.keyframe_interval_s is None:  # no sample table (WebM, GIF): demux, still no decode
        facts = replace(facts, keyframe_interval_s=_scan_packets(path, facts.mime_type).keyframe_interval_s())
    return facts


def _probe_container(path: Path, max_bytes: int | None, max_duration_s: float | None) -> MediaProbe:
    """Everything :func:`probe` reports except a keyframe interval that needs demuxing (None)."""
    mime, size = _check_file(path, max_bytes)
    if mime in _AUDIO_TYPES:
        raise MediaError("no_video_stream", f"{path.name} is audio ({mime})")
    with _open(path, mime) as container:
        stream = _video_stream(container, path)
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
    return _mean_interval_s(keyframes, entries[-1].timestamp, stream.time_base)


def _mean_interval_s(keyframe_ts: list[int], last_ts: int, time_base: Fraction) -> float | None:
    if not keyframe_ts:
        return None
    if len(keyframe_ts) == 1:
        return None if last_ts <= keyframe_ts[0] else float((last_ts - keyframe_ts[0]) * time_base)
    return float((keyframe_ts[-1] - keyframe_ts[0]) * time_base / (len(keyframe_ts) - 1))


# --------------------------------------------------------------------------------------------
# packet index: which frames exist, in which decode order, where the keyframes are


@dataclass(frozen=True)
class _PacketIndex:
    """The video packets of a clip, from demuxing only (no decode)."""

    decode_pts: tuple[int, ...]  # pts of each packet in decode (file) order
    decode_key: tuple[bool, ...]  # is that packet a keyframe
    presentation_pts: tuple[int, ...]  # sorted pts of the frames that will be shown
    time_base: Fraction
    frame_duration: int  # typical pts step, in time_base units

    @property
    def first_pts(self) -> int:
        return self.presentation_pts[0]

    @property
    def span(self) -> int:
        """Shown duration in time_base units: first frame start to last frame end."""
        return self.presentation_pts[-1] - self.first_pts + self.frame_duration

    def keyframe_interval_s(self) -> float | None:
        keys = sorted(pts for pts, key in zip(self.decode_pts, self.decode_key) if key)
        return _mean_interval_s(keys, self.presentation_pts[-1], self.time_base)

    def frames_at_fractions(self, fractions: list[float]) -> list[int]:
        """pts of the frame on screen at each fraction of the shown duration (distinct, sorted)."""
        picked = set()
        for fraction in fractions:
            target = self.first_pts + fraction * self.span
            position = max(0, bisect_right(self.presentation_pts, target) - 1)
            picked.add(self.presentation_pts[position])
        return sorted(picked)

    def frames_for_segments(self, n: int, prefer_keyframes: bool = False) -> list[int]:
        """pts of one frame per each of ``n`` equal segments of the shown duration: the frame on
        screen at the segment's centre, or, with ``prefer_keyframes``, the keyframe inside the
        segment nearest its centre when there is one (it decodes on its own). Distinct, sorted."""
        if not prefer_keyframes:
            return self.frames_at_fractions([(i + 0.5) / n for i in range(n)])
        keyframes = sorted(pts for pts, key in zip(self.decode_pts, self.decode_key) if key)
        picked = set()
        for i in range(n):
            start, end = (self.first_pts + self.span * i / n, self.first_pts + self.span * (i + 1) / n)
            centre = (start + end) / 2
            inside = [pts for pts in keyframes if start <= pts < end]
            if inside:
                picked.add(min(inside, key=lambda pts: abs(pts - centre)))
            else:
                picked.update(self.frames_at_fractions([(i + 0.5) / n]))
        return sorted(picked)

    def seconds(self, pts: int) -> float:
        return float((pts - self.first_pts) * self.time_base)


def _scan_packets(path: Path, mime: str | None) -> _PacketIndex:
    with _open(path, mime) as container:
        stream = _video_stream(container, path)
        time_base = stream.time_base or Fraction(1, 1)
        decode_pts: list[int] = []
        decode_key: list[bool] = []
        shown: set[int] = set()
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                raise MediaError("undecodable", f"{path.name}: packets carry no timestamps")
            decode_pts.append(pts)
            decode_key.append(bool(packet.is_keyframe))
            if not packet.is_discard:
                shown.add(pts)
    if not shown:
        raise MediaError("truncated", f"{path.name}: the video stream has no packets")
    presentation = tuple(sorted(shown))
    steps = np.diff(presentation)
    if len(steps):
        frame_duration = int(np.median(steps))
    else:
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        frame_duration = max(1, round(1 / (rate * float(time_base))))
    return _PacketIndex(tuple(decode_pts), tuple(decode_key), presentation, time_base, max(1, frame_duration))


# --------------------------------------------------------------------------------------------
# decode plans


def _keyframe_before(index: _PacketIndex) -> list[int]:
    """For each packet (decode order), the decode position of the keyframe at or before it."""
    result, last = [], 0
    for position, key in enumerate(index.decode_key):
        if key:
            last = position
        result.append(last)
    return result


def _plan_costs(index: _PacketIndex, wanted: list[int]) -> tuple[int, int]:
    """Packets each plan decodes, from the index alone: (sequential, seek incl. seek penalty)."""
    position_of = {pts: i for i, pts in enumerate(index.decode_pts)}
    positions = sorted(position_of[pts] for pts in wanted)
    keyframe_of = _keyframe_before(index)
    sequential = positions[-1] + 1
    seek, decoded_up_to = 0, -1
    for position in positions:
        start = keyframe_of[position]
        if start > decoded_up_to + 1:  # the keyframe is ahead: seek there instead of decoding on
            seek += _SEEK_PENALTY_PACKETS
        else:
            start = decoded_up_to + 1
        seek += max(0, position - start + 1)
        decoded_up_to = max(decoded_up_to, position)
    return sequential, seek


def _choose_strategy(index: _PacketIndex, wanted: list[int], codec: str) -> str:
    """Seek when keyframes are dense enough that jumping skips real work, else one pass."""
    if codec == "gif" or sum(index.decode_key) <= 1:
        return "sequential"
    sequential, seek = _plan_costs(index, wanted)
    return "seek" if seek < 0.8 * sequential else "sequential"


class _Decoder:
    """Runs one decode plan over a container and hands each wanted frame to ``keep``.

    Once the last packet a run needs has gone in, the decoder is drained (``decode(None)``) rather
    than fed more packets: B-frame reordering and frame threading hold a few frames back, and
    feeding packets just to push them out would decode frames nobody wants.
    """

    def __init__(self, container, stream, index: _PacketIndex, wanted: list[int], keep: Callable[[av.VideoFrame], None]):
        self.container, self.stream, self.index = container, stream, index
        self.remaining = set(wanted)
        self.keep = keep
        self.position_of = {pts: i for i, pts in enumerate(index.decode_pts)}
        self.keyframe_of = _keyframe_before(index)
        self.skip_nonref = stream.codec_context.name in _NONREF_SAFE_CODECS
        self.packets_demuxed = self.packets_decoded = self.seeks = 0
        stream.codec_context.thread_type = "AUTO"

    def _take(self, frames) -> None:
        for frame in frames:
            if frame.pts in self.remaining:
                self.remaining.discard(frame.pts)
                self.keep(frame)

    def _feed(self, packet) -> int:
        """Decode one packet (the decoder skips it if it is an unwanted non-reference frame);
        return its decode position (-1 for the end-of-stream packet)."""
        if self.skip_nonref:
            wanted = packet.pts in self.remaining
            self.stream.codec_context.skip_frame = "DEFAULT" if wanted else "NONREF"
        self.packets_demuxed += 1
        if packet.size:
            self.packets_decoded += 1
        self._take(self.stream.decode(packet))
        return self.position_of.get(packet.pts, -1) if packet.size else -1

    def _drain(self) -> None:
        """Take the frames the decoder still holds; it needs a seek (flush) before more packets."""
        self._take(self.stream.decode(None))

    def _seek_to(self, position: int) -> Iterator:
        self.container.seek(self.index.decode_pts[position], stream=self.stream, backward=True, any_frame=False)
        self.seeks += 1
        return self.container.demux(self.stream)

    def sequential(self, packets: Iterator | None = None) -> None:
        """One pass in decode order from where the demuxer stands, up to the last wanted packet."""
        last_needed = max(self.position_of[pts] for pts in self.remaining)
        for packet in packets if packets is not None else self.container.demux(self.stream):
            position = self._feed(packet)
            if not self.remaining:
                return
            if position >= last_needed:
                self._drain()
                return

    def seek(self) -> None:
        """Per wanted frame (in decode order): seek to its keyframe unless that is not ahead of
        what was already decoded, then decode forward until the frame comes out."""
        order = sorted(self.remaining, key=self.position_of.__getitem__)
        decoded_up_to = -1
        packets: Iterator | None = None
        for i, pts in enumerate(order):
            if pts not in self.remaining:
                continue  # came out while decoding towards an earlier one
            target = self.position_of[pts]
            key_position = self.keyframe_of[target]
            if packets is None or key_position > decoded_up_to + 1:
                packets = self._seek_to(key_position)
                decoded_up_to = key_position - 1
            later = [p for p in order[i + 1 :] if p in self.remaining]
            next_continues = bool(later) and self.keyframe_of[self.position_of[later[0]]] <= target + 1
            for packet in packets:
                decoded_up_to = max(decoded_up_to, self._feed(packet))
                if pts not in self.remaining:
                    break
                if decoded_up_to >= target and not next_continues:
                    self._drain()
                    packets = None
                    break
            else:
                packets = None
        if self.remaining:  # a seek landed past a wanted frame (odd index): finish in one pass
            self.sequential(self._seek_to(0))


def _decode_frames(
    path: Path,
    mime: str | None,
    index: _PacketIndex,
    wanted: list[int],
    strategy: Strategy,
    on_frame: Callable[[av.VideoFrame], None],
) -> tuple[set[int], str, DecodeStats]:
    """Decode the ``wanted`` pts with the given plan, calling ``on_frame`` once per wanted frame
    as it comes out (any order); returns the pts found, the plan used and what it cost."""
    started = time.perf_counter()
    found: set[int] = set()

    def keep(frame: av.VideoFrame) -> None:
        found.add(frame.pts)
        on_frame(frame)

    with _open(path, mime) as container:
        stream = _video_stream(container, path)
        chosen = _choose_strategy(index, wanted, stream.codec_context.name) if strategy == "auto" else strategy
        decoder = _Decoder(container, stream, index, wanted, keep)
        if chosen == "seek":
            decoder.seek()
        elif chosen == "sequential":
            decoder.sequential()
        else:
            raise ValueError(f"unknown strategy {strategy!r}; use auto, seek or sequential")
        if decoder.remaining and decoder.skip_nonref:
            # Never seen in tests; if a decoder drops a frame we asked for, retry without skipping.
            decoder.skip_nonref = False
            stream.codec_context.skip_frame = "DEFAULT"
            decoder.sequential(decoder._seek_to(0))
    if not found:
        raise MediaError("undecodable", f"{path.name}: none of the wanted frames decodes")
    stats = DecodeStats(
        packets_demuxed=decoder.packets_demuxed,
        packets_decoded=decoder.packets_decoded,
        frames_converted=len(found),
        seeks=decoder.seeks,
        seconds=time.perf_counter() - started,
    )
    return found, chosen, stats


# --------------------------------------------------------------------------------------------
# sampling


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
        return _upright(rgb, rotation)

    return convert


def _upright(array: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored frame clockwise by ``rotation`` degrees (np.rot90 turns counter-clockwise)."""
    return np.ascontiguousarray(np.rot90(array, k=-(rotation // 90))) if rotation else array


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
    facts = _probe_container(path, max_bytes, max_duration_s)
    index = _scan_packets(path, facts.mime_type)
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
                found, chosen, stats = _decode_frames(path, facts.mime_type, index, wanted, strategy, write)
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


# --------------------------------------------------------------------------------------------
# perceptual hash

_PHASH_DECODE_SIDE = 64


def video_phash(path: str | Path, strategy: Strategy = "auto") -> str:
    """Perceptual hash of a clip (see :mod:`vigil.core.phash`): decodes only the frames on screen
    at :data:`PHASH_POSITIONS`, converted straight to small grey images, upright."""
    path = Path(path)
    facts = _probe_container(path, None, None)
    index = _scan_packets(path, facts.mime_type)
    targets = index.frames_at_fractions(list(PHASH_POSITIONS))
    per_position = [index.frames_at_fractions([p])[0] for p in PHASH_POSITIONS]
    reformatter = VideoReformatter()

    def to_small_gray(frame: av.VideoFrame) -> np.ndarray:
        gray = reformatter.reformat(
            frame, width=_PHASH_DECODE_SIDE, height=_PHASH_DECODE_SIDE, format="gray", interpolation="AREA"
        ).to_ndarray()
        return _upright(gray, facts.rotation)

    frames: dict[int, np.ndarray] = {}
    _decode_frames(path, facts.mime_type, index, targets, strategy, lambda f: frames.__setitem__(f.pts, to_small_gray(f)))
    missing = [pts for pts in per_position if pts not in frames]
    if missing:
        raise MediaError("undecodable", f"{path.name}: frames at pts {missing} do not decode")
    return video_phash_from_frames([frames[pts] for pts in per_position])
