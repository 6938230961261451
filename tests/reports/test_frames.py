"""Frame strips: frames side by side, boxes drawn only on the frames inside their span."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from vigil.reports.frames import Box, frame_strip_png, pick_frames

GAP = 6


def _frames(tmp_path, n: int = 4) -> list[tuple[float, str]]:
    frames = []
    for i in range(n):
        path = tmp_path / f"{i + 1}.png"
        Image.new("RGB", (64, 48), (200, 200, 200)).save(path)
        frames.append((0.5 * i, str(path)))
    return frames


def _tile(strip: Image.Image, i: int, height: int = 160) -> Image.Image:
    w = round(64 * height / 48)
    return strip.crop((i * (w + GAP), 0, i * (w + GAP) + w, height))


def _has(tile: Image.Image, rgb: tuple[int, int, int]) -> bool:
    return rgb in {colour for _, colour in tile.getcolors(maxcolors=1 << 16)}


def test_boxes_are_drawn_on_the_frames_inside_their_span_only(tmp_path):
    # given: four grey frames at 0, 0.5, 1.0, 1.5 s; a red box over 0.5–1.0 s and a dashed green one always
    boxes = [Box((0.1, 0.1, 0.5, 0.5), "truth", (22, 163, 74), span=None, dashed=True, label_below=True),
             Box((0.4, 0.4, 0.9, 0.9), "Shape Distortion", (220, 38, 38), span=(0.5, 1.0))]

    # when: the strip is drawn
    png = frame_strip_png(_frames(tmp_path), boxes)

    # then: a PNG of the four frames side by side (scaled to 160 px) with a caption row under them
    strip = Image.open(io.BytesIO(png)).convert("RGB")
    assert png.startswith(b"\x89PNG") and strip.size == (4 * 213 + 3 * GAP, 160 + 18)
    # and: red only on the frames at 0.5 and 1.0 s; green on every frame
    assert [_has(_tile(strip, i), (220, 38, 38)) for i in range(4)] == [False, True, True, False]
    assert all(_has(_tile(strip, i), (22, 163, 74)) for i in range(4))


def test_a_span_between_the_evenly_spaced_frames_gets_a_frame_of_its_own():
    # given: 20 frames, 4 evenly spaced ones shown, and a span that none of those falls in
    times = [0.1 * i for i in range(20)]

    # then: one frame inside the span is added; a span already shown adds nothing
    assert pick_frames(times, [(0.3, 0.4)], 4) == [0, 4, 6, 13, 19]
    assert pick_frames(times, [(0.55, 0.65)], 4) == [0, 6, 13, 19]


def test_no_frames_is_an_error():
    with pytest.raises(ValueError):
        frame_strip_png([], [])
