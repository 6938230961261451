"""Label Studio's coordinates: 1-based frame numbers and percentage boxes, to and from Vigil's.

Vigil records times in seconds and boxes as ``[x1, y1, x2, y2]`` in 0–1; Label Studio speaks in
frames and percentages. The export and the import both convert through these functions, so a
round trip loses no more than the conventions below say.

* Boxes are percentages of the frame (``x``, ``y`` top-left, ``width``, ``height``, 0–100).
* Frames are 1-based. Frame ``f`` shows the interval ``[(f-1)/fps, f/fps)``; a span
  ``[s, e]`` s is exported as frames ``floor(s·fps)+1 … ceil(e·fps)`` and a frame range ``a…b``
  is read back as ``[(a-1)/fps, b/fps]``, so times survive a round trip to within 1/fps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def frames_count(duration_s: float, fps: float) -> int:
    return max(1, round(duration_s * fps))


def start_frame(t: float, fps: float, n_frames: int) -> int:
    """The 1-based frame showing time ``t`` (its first frame for a span start)."""
    return min(max(1, math.floor(t * fps + 1e-6) + 1), n_frames)


def end_frame(t: float, fps: float, n_frames: int) -> int:
    """The last 1-based frame a span ending at ``t`` covers."""
    return min(max(1, math.ceil(t * fps - 1e-6)), n_frames)


def frame_span_to_time(a: int, b: int, fps: float, duration_s: float | None = None
                       ) -> tuple[float, float]:
    """Frames ``a…b`` (1-based, inclusive) as ``[start_s, end_s]``."""
    s, e = (a - 1) / fps, b / fps
    if duration_s is not None:
        e = min(e, duration_s)
    return round(s, 6), round(e, 6)


def bbox_to_percent(bbox: Sequence[float]) -> dict[str, float]:
    """``[x1, y1, x2, y2]`` in 0–1 as LS percentages (rounded to 1e-6 %, inside 0–100)."""
    x1, y1, x2, y2 = (min(1.0, max(0.0, float(v))) for v in bbox)
    x, y = round(x1 * 100.0, 6), round(y1 * 100.0, 6)
    return {"x": x, "y": y, "width": round(min(x2 * 100.0, 100.0) - x, 6),
            "height": round(min(y2 * 100.0, 100.0) - y, 6)}


def percent_to_bbox(x: float, y: float, width: float, height: float
                    ) -> tuple[float, float, float, float]:
    clip = lambda v: min(1.0, max(0.0, round(v / 100.0, 6)))  # noqa: E731
    return clip(x), clip(y), clip(x + width), clip(y + height)
