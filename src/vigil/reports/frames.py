"""Frame strips: a row of a video's frames with boxes drawn on them (evidence, say), as PNG bytes.

A :class:`Box` is a normalised ``[x1, y1, x2, y2]`` with a label and a colour, drawn solid (label over its
top-left corner) or dashed (label inside its bottom-left corner), on the frames whose time is inside its
span. Put the PNG in a page as a :class:`~vigil.reports.document.Picture` (a ``data:`` URI there).

>>> pick_frames([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], [(1.4, 1.6)], 3)
[0, 2, 3, 5]
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vigil.reports.format import finite

__all__ = ["Box", "frame_strip_png", "pick_frames"]

STRIP_HEIGHT = 160  # px of each frame in a strip (small frames are scaled up)
MAX_STRIP_FRAMES = 8
CAPTION_RGB = (51, 65, 85)


@dataclass(frozen=True)
class Box:
    """A box to draw: ``bbox`` normalised to 0–1; on the frames inside ``span`` (None: on every frame)."""

    bbox: tuple[float, float, float, float]
    label: str
    rgb: tuple[int, int, int]
    span: tuple[float, float] | None = None
    dashed: bool = False
    label_below: bool = False  # the label inside the bottom-left corner, not over the top-left one


@lru_cache(maxsize=4)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _in_span(t: float, span: tuple[float, float] | None) -> bool:
    """A frame at time t is inside this span (no span: every frame)."""
    if span is None:
        return True
    if not all(finite(v) for v in span):
        return False
    lo, hi = sorted(span)
    return lo - 1e-6 <= t <= hi + 1e-6


def _evenly(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)``, first and last included (all if n <= k)."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [n // 2]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def pick_frames(times: Sequence[float], spans: Sequence[tuple[float, float]], max_frames: int) -> list[int]:
    """Indices of the frames to show: evenly spaced, plus one inside each span that none of them falls in
    (up to four extra)."""
    chosen = set(_evenly(len(times), max_frames))
    for span in spans:
        if any(_in_span(times[i], span) for i in chosen):
            continue
        inside = [i for i, t in enumerate(times) if _in_span(t, span)]
        if inside and len(chosen) < max_frames + 4:
            chosen.add(inside[len(inside) // 2])
    return sorted(chosen)


def _box_px(bbox: Sequence[float], w: int, h: int) -> tuple[float, float, float, float] | None:
    if len(bbox) != 4 or not all(finite(v) for v in bbox):
        return None
    x1, x2 = sorted(min(max(v, 0.0), 1.0) * (w - 1) for v in (bbox[0], bbox[2]))
    y1, y2 = sorted(min(max(v, 0.0), 1.0) * (h - 1) for v in (bbox[1], bbox[3]))
    return x1, y1, x2, y2


def _dashed_rectangle(draw, box: tuple[float, float, float, float], colour, width: int = 2,
                      dash: float = 7, gap: float = 4) -> None:
    x1, y1, x2, y2 = box
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = math.hypot(bx - ax, by - ay)
        pos = 0.0
        while pos < length:
            end = min(pos + dash, length)
            f0, f1 = pos / length, end / length
            draw.line([(ax + (bx - ax) * f0, ay + (by - ay) * f0), (ax + (bx - ax) * f1, ay + (by - ay) * f1)],
                      fill=colour, width=width)
            pos = end + gap


def _label(draw, text: str, x: float, y: float, colour, max_w: float, below: bool) -> None:
    """A filled label with white text: over the box's top-left corner (y: its top; outside the box when
    there is room), or inside its bottom-left corner (``below``; y: its bottom)."""
    font = _font(11)
    text = text or "?"
    while len(text) > 1 and draw.textlength(text, font=font) + 6 > max_w:
        text = text[:-4] + "..." if len(text) > 4 else text[:-1]
    tw, th = draw.textlength(text, font=font) + 6, 14
    x = min(max(x, 0), max(max_w - tw, 0))
    y = y - th if below or y >= th else y
    draw.rectangle([x, y, x + tw, y + th], fill=colour)
    draw.text((x + 3, y + 1), text, fill=(255, 255, 255), font=font)


def frame_strip_png(frames: Sequence[tuple[float, Path | str]], boxes: Sequence[Box] = (),
                    height: int = STRIP_HEIGHT, max_frames: int = MAX_STRIP_FRAMES) -> bytes:
    """A row of frames (``(time_s, image path)``, in order; scaled to ``height`` px; some picked with
    :func:`pick_frames`) with the boxes drawn, in order, on each frame inside their span, and each frame's
    time under it. PNG bytes.

    Raises ValueError when there is no frame, OSError on an unreadable image.
    """
    from PIL import Image, ImageDraw

    if not frames:
        raise ValueError("no frames")
    spans = [b.span for b in boxes if b.span is not None]
    shown = [frames[i] for i in pick_frames([t for t, _ in frames], spans, max_frames)]
    gap, caption_h = 6, 18
    tiles = []
    for t, path in shown:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w = max(1, round(im.width * height / max(im.height, 1)))
            tile = im.resize((w, height), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(tile)
        for b in boxes:
            box = _box_px(b.bbox, tile.width, tile.height)
            if box is None or not _in_span(t, b.span):
                continue
            if b.dashed:
                _dashed_rectangle(draw, box, b.rgb)
            else:
                draw.rectangle(box, outline=b.rgb, width=2)
            _label(draw, b.label, box[0], box[3] if b.label_below else box[1], b.rgb, tile.width, below=b.label_below)
        tiles.append((t, tile))
    strip = Image.new("RGB", (sum(tile.width for _, tile in tiles) + gap * (len(tiles) - 1), height + caption_h),
                      (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    x = 0
    for t, tile in tiles:
        strip.paste(tile, (x, 0))
        text = f"{t:.2f} s"
        draw.text((x + (tile.width - draw.textlength(text, font=_font(12))) / 2, height + 2), text,
                  fill=CAPTION_RGB, font=_font(12))
        x += tile.width + gap
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
