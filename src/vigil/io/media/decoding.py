"""Running a decode plan: decoding exactly the wanted frames of a clip and what that cost.

:func:`decode_frames` carries out the plan :mod:`vigil.io.media.decode_plan` chose and hands each
wanted frame to a callback as it comes out. Only wanted frames are passed on (the caller converts
them, e.g. scaled and converted to RGB in one swscale call), and H.264/HEVC non-reference frames
that are not wanted are not decoded at all (``skip_frame="NONREF"``, set per packet, so that a
wanted non-reference frame is still decoded; other codecs decode every packet). Both plans return
exactly the frames a full decode gives at the same timestamps; the tests check it pixel for pixel.
An index that numbers frames by display position (AVI: no timestamps to trust) is decoded in one
pass from the start with no frame skipping, each frame renumbered by its place in the output.
:class:`DecodeStats` says how much work a run did, and :func:`upright` turns a decoded frame the way
a player shows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vigil.io.media.container import open_container, video_stream
from vigil.io.media.decode_plan import PacketIndex, Strategy, choose_strategy, keyframe_before
from vigil.io.media.errors import MediaError

#: Codecs whose ``skip_frame="NONREF"`` is known to drop only frames no other frame refers to.
_NONREF_SAFE_CODECS = {"h264", "hevc"}


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


class _Decoder:
    """Runs one decode plan over a container and hands each wanted frame to ``keep``.

    Once the last packet a run needs has gone in, the decoder is drained (``decode(None)``) rather
    than fed more packets: B-frame reordering and frame threading hold a few frames back, and
    feeding packets just to push them out would decode frames nobody wants.
    """

    def __init__(self, container, stream, index: PacketIndex, wanted: list[int], keep: Callable[[av.VideoFrame], None]):
        self.container, self.stream, self.index = container, stream, index
        self.remaining = set(wanted)
        self.keep = keep
        self.position_of = {pts: i for i, pts in enumerate(index.decode_pts)}
        self.keyframe_of = keyframe_before(index)
        self.by_position = index.by_position
        # skipping frames would shift the count that numbers them when there are no timestamps
        self.skip_nonref = stream.codec_context.name in _NONREF_SAFE_CODECS and not self.by_position
        self.shown = 0  # frames the decoder has put out, in display order (by_position numbering)
        self.packets_demuxed = self.packets_decoded = self.seeks = 0
        stream.codec_context.thread_type = "AUTO"

    def _take(self, frames) -> None:
        for frame in frames:
            if self.by_position:
                frame.pts, self.shown = self.shown, self.shown + 1
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
        if self.by_position:
            return self.packets_decoded - 1 if packet.size else -1
        return self.position_of.get(packet.pts, -1) if packet.size else -1

    def _drain(self) -> None:
        """Take the frames the decoder still holds; it needs a seek (flush) before more packets."""
        self._take(self.stream.decode(None))

    def _seek_to(self, position: int) -> Iterator:
        self.container.seek(self.index.decode_pts[position], stream=self.stream, backward=True, any_frame=False)
        self.seeks += 1
        return self.container.demux(self.stream)

    def sequential(self, packets: Iterator | None = None) -> None:
        """One pass in decode order from where the demuxer stands, up to the last wanted packet
        (by position: until the last wanted frame comes out, since reordering hides which packet
        holds it)."""
        if self.by_position:
            last_needed = len(self.index.decode_pts)  # never reached: run to the end-of-stream flush
        else:
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


def decode_frames(
    path: Path,
    mime: str | None,
    index: PacketIndex,
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

    with open_container(path, mime) as container:
        stream = video_stream(container, path)
        chosen = choose_strategy(index, wanted, stream.codec_context.name) if strategy == "auto" else strategy
        if index.by_position and chosen in ("seek", "sequential"):
            chosen = "sequential"  # a seek would lose the count that numbers frames
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


def upright(array: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored frame clockwise by ``rotation`` degrees (np.rot90 turns counter-clockwise)."""
    return np.ascontiguousarray(np.rot90(array, k=-(rotation // 90))) if rotation else array
