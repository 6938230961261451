"""Decode planning: which frames a clip has, which of them to decode, and by which plan.

Decoding is the expensive step, so frames are picked by presentation timestamp from a packet index
built by demuxing only (:func:`scan_packets`, :class:`PacketIndex`: one frame per segment, or the
frames at given fractions of the clip), and each clip gets the cheaper of two plans
(:func:`choose_strategy`): ``"seek"`` jumps to the keyframe before each wanted frame and decodes
forward to it (cheap with frequent keyframes, useless with one), ``"sequential"`` makes one pass in
decode order, stopping after the last wanted packet. ``"auto"`` counts, from the index, how many
packets each plan would decode and seeks only when that saves a fifth or more, since each seek costs
a fixed penalty. Benchmarks (``benchmarks/frame_sampling.py``): with exact centre frames the decode
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

    @property
    def first_pts(self) -> int:
        return self.presentation_pts[0]

    @property
    def span(self) -> int:
        """Shown duration in time_base units: first frame start to last frame end."""
        return self.presentation_pts[-1] - self.first_pts + self.frame_duration

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
    with open_container(path, mime) as container:
        stream = video_stream(container, path)
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
    return PacketIndex(tuple(decode_pts), tuple(decode_key), presentation, time_base, max(1, frame_duration))


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
    if codec == "gif" or sum(index.decode_key) <= 1:
        return "sequential"
    sequential, seek = _plan_costs(index, wanted)
    return "seek" if seek < 0.8 * sequential else "sequential"
