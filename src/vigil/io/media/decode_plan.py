"""Decode planning: which frames a clip has, which of them to decode, and by which plan.

Decoding is the expensive step, so frames are picked by presentation timestamp from a packet index
built by demuxing only (:func:`scan_packets`, :class:`PacketIndex`: one frame per segment, or the
frames at given fractions of the clip), and each clip gets the cheaper of two plans
(:func:`choose_strategy`): ``"seek"`` jumps to the keyframe before each wanted frame and decodes
forward to it (cheap with frequent keyframes, useless with one), ``"sequential"`` makes one pass in
decode order, stopping after the last wanted packet. ``"auto"`` counts, from the index, how many
packets each plan would decode and seeks only when that saves a fifth or more, since each seek costs
a fixed penalty.

Some containers carry no trustworthy presentation timestamps: AVI stores none (FFmpeg invents
them from the packet's position in decode order, so with B-frames the frames come out under the
wrong numbers), and some broken files have packets without pts or with repeated ones. There the
index numbers frames by their display position instead (``by_position``: frame i is shown at i / fps,
as ffmpeg's frame counter ``n`` numbers them), and decoding runs one pass from the start, counting
the frames as they come out. Benchmarks (``benchmarks/frame_sampling.py``): with exact centre frames the decode
work is bounded by the GOP structure (a 1 s GOP still needs about two thirds of the packets for 16
frames of 300); ``prefer_keyframes`` trades exact centres for keyframes and decodes about a third.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from vigil.io.media.container import open_container, video_stream
from vigil.io.media.errors import MediaError

Strategy = Literal["auto", "seek", "sequential"]


#: What one seek costs, in decoded-packet equivalents (demuxer seek, decoder flush, thread warm-up).
_SEEK_PENALTY_PACKETS = 3


@dataclass(frozen=True)
class PacketIndex:
    """The video packets of a clip, from demuxing only (no decode)."""

    decode_pts: tuple[int, ...]  # pts of each packet in decode (file) order
    decode_key: tuple[bool, ...]  # is that packet a keyframe
    presentation_pts: tuple[int, ...]  # sorted pts of the frames that will be shown
    time_base: Fraction
    frame_duration: int  # typical pts step, in time_base units
    #: pts are display positions (0, 1, 2… in units of 1/fps), not the stream's timestamps: the
    #: container has none to trust (AVI, missing or repeated pts). Decode by counting frames.
    by_position: bool = False
    last_duration: int = 0  # the last shown frame's own duration when the container stores it


    @property
    def frame_count(self) -> int:
        """Frames a player shows (an edit list's hidden leading frames are not counted)."""
        return len(self.presentation_pts)

    @property
    def duration_s(self) -> float:
        return float(self.span * self.time_base)

    @property
    def fps(self) -> float:
        """Shown frames per second of shown time (ffprobe's ``avg_frame_rate``): right for
        variable frame delays, where the first delay (or the container's nominal rate) is not."""
        return self.frame_count / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def first_pts(self) -> int:
        return self.presentation_pts[0]

    @property
    def span(self) -> int:
        """Shown duration in time_base units: first frame start to last frame end."""
        return self.presentation_pts[-1] - self.first_pts + (self.last_duration or self.frame_duration)

    def keyframe_interval_s(self) -> float | None:
        keys = sorted(pts for pts, key in zip(self.decode_pts, self.decode_key) if key)
        return mean_interval_s(keys, self.presentation_pts[-1], self.time_base)

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


def scan_packets(path: Path, mime: str | None) -> PacketIndex:
    """Demux (never decode) the video stream into a :class:`PacketIndex`."""
    with open_container(path, mime) as container:
        stream = video_stream(container, path)
        time_base = stream.time_base or Fraction(1, 1)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        format_name = container.format.name
        packets: list[tuple[int | None, bool, bool]] = []  # pts, keyframe, discard
        durations: dict[int | None, int] = {}
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            packets.append((packet.pts, bool(packet.is_keyframe), bool(packet.is_discard)))
            durations[packet.pts] = packet.duration or 0
    if not packets:
        raise MediaError("truncated", f"{path.name}: the video stream has no packets")
    if not _pts_reliable(format_name, [pts for pts, _, _ in packets]):
        return _index_by_position(path, [key for _, key, _ in packets], rate)
    decode_pts = tuple(pts for pts, _, _ in packets)
    shown = {pts for pts, _, discard in packets if not discard}
    if not shown:
        raise MediaError("truncated", f"{path.name}: every video packet is hidden by the edit list")
    presentation = tuple(sorted(shown))
    steps = np.diff(presentation)
    if len(steps):
        frame_duration = int(np.median(steps))
    else:
        frame_duration = max(1, round(1 / (float(rate or 25) * float(time_base))))
    decode_key = tuple(key for _, key, _ in packets)
    last_duration = max(0, durations.get(presentation[-1], 0))
    return PacketIndex(decode_pts, decode_key, presentation, time_base, max(1, frame_duration), last_duration=last_duration)


def _pts_reliable(format_name: str, pts: list[int | None]) -> bool:
    """Whether packet pts can name frames: not in AVI (it stores none; FFmpeg's are decode
    positions), nor when a packet has none or two packets share one.

    >>> _pts_reliable("mov,mp4,m4a,3gp,3g2,mj2", [0, 2, 1, 3])
    True
    >>> _pts_reliable("avi", [1, 2, 3])
    False
    >>> _pts_reliable("matroska,webm", [0, None, 2]), _pts_reliable("mpegts", [5, 5, 6])
    (False, False)
    """
    if "avi" in format_name.split(","):
        return False
    return None not in pts and len(set(pts)) == len(pts)


def _index_by_position(path: Path, keys: list[bool], rate: Fraction | None) -> PacketIndex:
    """Frames numbered by display position: frame i at i / fps (the container's nominal rate)."""
    if not rate or rate <= 0:
        raise MediaError("undecodable", f"{path.name}: no timestamps to trust and no frame rate to number frames by")
    positions = tuple(range(len(keys)))
    return PacketIndex(positions, tuple(keys), positions, 1 / Fraction(rate), 1, by_position=True)


def mean_interval_s(keyframe_ts: list[int], last_ts: int, time_base: Fraction) -> float | None:
    if not keyframe_ts:
        return None
    if len(keyframe_ts) == 1:
        return None if last_ts <= keyframe_ts[0] else float((last_ts - keyframe_ts[0]) * time_base)
    return float((keyframe_ts[-1] - keyframe_ts[0]) * time_base / (len(keyframe_ts) - 1))


def keyframe_before(index: PacketIndex) -> list[int]:
    """For each packet (decode order), the decode position of the keyframe at or before it."""
    result, last = [], 0
    for position, key in enumerate(index.decode_key):
        if key:
            last = position
        result.append(last)
    return result


def _plan_costs(index: PacketIndex, wanted: list[int]) -> tuple[int, int]:
    """Packets each plan decodes, from the index alone: (sequential, seek incl. seek penalty)."""
    position_of = {pts: i for i, pts in enumerate(index.decode_pts)}
    positions = sorted(position_of[pts] for pts in wanted)
    keyframe_of = keyframe_before(index)
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


def choose_strategy(index: PacketIndex, wanted: list[int], codec: str) -> str:
    """Seek when keyframes are dense enough that jumping skips real work, else one pass."""
    if codec == "gif" or index.by_position or sum(index.decode_key) <= 1:
        return "sequential"  # frames numbered by position can only be counted from the start
    sequential, seek = _plan_costs(index, wanted)
    return "seek" if seek < 0.8 * sequential else "sequential"
