"""A clip's perceptual hash (:func:`video_phash`), decoding only the few frames it needs.

The hash itself is pure numpy in :mod:`vigil.core.phash`; this module feeds it: it decodes just the
frames on screen at :data:`~vigil.core.phash.PHASH_POSITIONS`, converted straight to small, upright
grey images, so that the crawler can spot re-uploads (re-encoded, resized, other container) of a
clip it already has.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vigil.core.phash import PHASH_POSITIONS, video_phash_from_frames
from vigil.io.media.decode_plan import Strategy, scan_packets
from vigil.io.media.decoding import decode_frames, upright
from vigil.io.media.errors import MediaError
from vigil.io.media.probing import probe_container

_PHASH_DECODE_SIDE = 64


def video_phash(path: str | Path, strategy: Strategy = "auto") -> str:
    """Perceptual hash of a clip (see :mod:`vigil.core.phash`): decodes only the frames on screen
    at :data:`PHASH_POSITIONS`, converted straight to small grey images, upright."""
    path = Path(path)
    facts = probe_container(path, None, None)
    index = scan_packets(path, facts.mime_type)
    targets = index.frames_at_fractions(list(PHASH_POSITIONS))
    per_position = [index.frames_at_fractions([p])[0] for p in PHASH_POSITIONS]
    reformatter = VideoReformatter()

    def to_small_gray(frame: av.VideoFrame) -> np.ndarray:
        gray = reformatter.reformat(
            frame, width=_PHASH_DECODE_SIDE, height=_PHASH_DECODE_SIDE, format="gray", interpolation="AREA"
        ).to_ndarray()
        return upright(gray, facts.rotation)

    frames: dict[int, np.ndarray] = {}
    decode_frames(path, facts.mime_type, index, targets, strategy, lambda f: frames.__setitem__(f.pts, to_small_gray(f)))
    missing = [pts for pts in per_position if pts not in frames]
    if missing:
        raise MediaError("undecodable", f"{path.name}: frames at pts {missing} do not decode")
    return video_phash_from_frames([frames[pts] for pts in per_position])
