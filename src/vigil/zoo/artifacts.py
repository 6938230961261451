"""Inject ground-truthed, local artifacts into a real scene to make its paired fake.

Every injector is local in space and/or time and keeps the clip's global statistics (no tint, no
global blur, no brightness shift), because a detector trained on the zoo must learn the artifacts
themselves, not a tell. Each one yields an :class:`ArtifactTruth` (exact L3 name from the
taxonomy, time span, normalised union box) and a per-frame mask.

Two families:

* **scene edits** change the scene description (an object vanishes, appears, warps, defies gravity,
  moves erratically; the camera jolts) and the scene is rendered again with the same background
  and sensor noise. The mask is the edited object's footprint in the real and in the fake render
  over the frames where its state differs, so no pixel outside the mask changes;
* **pixel effects** (texture jitter, local blur, over-saturation, lighting flicker) act on a soft
  region (an ellipse anchored in the world or following an object) that is exactly zero outside
  its support; the mask is that support.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from vigil.core.taxonomy import load_taxonomy
from vigil.zoo.scenes import (
    COLOURS,
    PATTERNS,
    SHAPES,
    Camera,
    Scene,
    SceneObject,
    object_layer,
    render_clean,
    background_pixels,
    sensor_noise,
    to_uint8,
)

TEXTURE_JITTERING = "Texture Jittering"
UNNATURAL_BLUR = "Unnatural Blur"
COLOR_OVERSATURATION = "Color Over-saturation"
LIGHTING_INCONSISTENCY = "Lighting Inconsistency"
CAMERA_MOTION_INCONSISTENCY = "Camera Motion Inconsistency"
OBJECT_DISAPPEARANCE = "Abnormal Object Disappearance"
OBJECT_APPEARANCE = "Abnormal Object Appearance"
SHAPE_DISTORTION = "Shape Distortion"
PHYSICAL_LAW = "Violation of Physical Law"
UNNATURAL_MOVEMENT = "Unnatural General Object Movement"

PIXEL_TYPES = (TEXTURE_JITTERING, UNNATURAL_BLUR, COLOR_OVERSATURATION, LIGHTING_INCONSISTENCY)
OBJECT_TYPES = (OBJECT_DISAPPEARANCE, SHAPE_DISTORTION, PHYSICAL_LAW, UNNATURAL_MOVEMENT)
ARTIFACT_TYPES = PIXEL_TYPES + OBJECT_TYPES + (OBJECT_APPEARANCE, CAMERA_MOTION_INCONSISTENCY)

MIN_SPAN_FRAMES = 3


@dataclass(frozen=True)
class ArtifactTruth:
    """Ground truth in the annotation schema: L3 type, ``t`` in seconds, ``bbox`` in 0..1."""

    type: str
    t: tuple[float, float]
    bbox: tuple[float, float, float, float]
    target: str | None = None  # the object it concerns, when there is one
    variant: str = ""  # how it was made (e.g. "sink", "blink"), for debugging and reports

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "t": list(self.t), "bbox": list(self.bbox)}


@dataclass(frozen=True, eq=False)
class InjectedArtifact:
    truth: ArtifactTruth
    mask: np.ndarray  # (T, H, W) bool: every pixel the artifact changed


@dataclass(frozen=True)
class ArtifactRequest:
    type: str
    strength: float  # 0..1, mapped to a visible magnitude range per type


@dataclass(frozen=True, eq=False)
class FakeClip:
    real: np.ndarray  # (T, H, W, 3) uint8, the paired real clip
    frames: np.ndarray  # (T, H, W, 3) uint8, the fake
    artifacts: tuple[InjectedArtifact, ...]
    scene: Scene  # the edited scene that was rendered for the fake


def check_types_in_taxonomy() -> None:
    """Fail loudly if an injector's name drifts from the taxonomy's L3 names."""
    taxonomy = load_taxonomy()
    unknown = [t for t in ARTIFACT_TYPES if not taxonomy.is_l3(t)]
    if unknown:
        raise ValueError(f"artifact types not in the taxonomy: {unknown}")


# ----------------------------------------------------------------------------- targets and spans


def visible_runs(scene: Scene, obj: SceneObject, min_fraction: float = 0.6
                 ) -> list[tuple[int, int]]:
    """Frame runs ``[start, end)`` where most of the object is on screen."""
    on = scene.on_screen_fraction(obj) >= min_fraction
    runs, start = [], None
    for k, flag in enumerate(on):
        if flag and start is None:
            start = k
        if not flag and start is not None:
            runs.append((start, k))
            start = None
    if start is not None:
        runs.append((start, len(on)))
    return runs


# First frame an object artifact may start at (a vanishing object must be seen first; a physics
# violation needs two frames of normal motion). Eligibility and the injectors share it, so that an
# object judged eligible always has a span (short clips used to raise here).
_EARLIEST_START = {PHYSICAL_LAW: 2, OBJECT_DISAPPEARANCE: 1}


def eligible_targets(artifact_type: str, scene: Scene, taken: Sequence[int] = ()
                     ) -> list[SceneObject]:
    """Objects an object-level artifact can act on (long enough on screen, right physics)."""
    out = []
    earliest = _EARLIEST_START.get(artifact_type, 0)
    for obj in scene.objects:
        if obj.object_id in taken:
            continue
        if not any(e - max(s, earliest) >= MIN_SPAN_FRAMES + 1 for s, e in visible_runs(scene, obj)):
            continue
        if artifact_type == PHYSICAL_LAW and not (
            scene.gravity > 0 and scene.floor_y is not None and obj.motion in ("bounce", "slide")
        ):
            continue
        out.append(obj)
    return out


def is_applicable(artifact_type: str, scene: Scene, taken: Sequence[int] = ()) -> bool:
    if artifact_type in OBJECT_TYPES:
        return bool(eligible_targets(artifact_type, scene, taken))
    if artifact_type in ARTIFACT_TYPES:
        return scene.n_frames >= MIN_SPAN_FRAMES + 1
    raise KeyError(f"unknown artifact type {artifact_type!r}")


def _span(rng: np.random.Generator, start: int, end: int, strength: float,
          max_fraction: float = 0.6) -> tuple[int, int]:
    """A sub-span ``[s, e)`` of ``[start, end)``: at least 3 frames, longer when stronger."""
    room = end - start
    longest = max(MIN_SPAN_FRAMES, min(room, int(round(room * max_fraction))))
    length = int(round(MIN_SPAN_FRAMES + (longest - MIN_SPAN_FRAMES) * (0.3 + 0.7 * strength)
                       * rng.uniform(0.6, 1.0)))
    length = min(max(length, MIN_SPAN_FRAMES), room)
    s = int(rng.integers(start, end - length + 1))
    return s, s + length


def _object_span(rng: np.random.Generator, scene: Scene, obj: SceneObject, strength: float,
                 min_start: int = 0) -> tuple[int, int]:
    runs = [(max(s, min_start), e) for s, e in visible_runs(scene, obj)]
    runs = [(s, e) for s, e in runs if e - s >= MIN_SPAN_FRAMES]
    if not runs:
        raise ValueError(f"{obj.name} is never on screen long enough")
    s, e = runs[int(rng.integers(len(runs)))]
    return _span(rng, s, e, strength)


def _lerp(lo: float, hi: float, strength: float) -> float:
    return lo + (hi - lo) * float(np.clip(strength, 0.0, 1.0))


# ----------------------------------------------------------------------------- scene edits


@dataclass(frozen=True)
class _SceneEdit:
    scene: Scene
    object_id: int | None  # the edited or added object; None for a camera edit
    target: str | None
    variant: str


def _replace_object(scene: Scene, new: SceneObject) -> Scene:
    return scene.replace(objects=tuple(new if o.object_id == new.object_id else o
                                       for o in scene.objects))


def _disappearance(scene: Scene, rng: np.random.Generator, strength: float,
                   obj: SceneObject) -> _SceneEdit:
    s, e = _object_span(rng, scene, obj, strength, min_start=_EARLIEST_START[OBJECT_DISAPPEARANCE])
    variant = "blink" if e < scene.n_frames and rng.random() < 0.6 else "gone"
    if variant == "gone":
        e = scene.n_frames
    visible = obj.visible.copy()
    visible[s:e] = False
    return _SceneEdit(_replace_object(scene, obj.replace(visible=visible)), obj.object_id,
                      obj.name, variant)


def _shape_distortion(scene: Scene, rng: np.random.Generator, strength: float,
                      obj: SceneObject) -> _SceneEdit:
    s, e = _object_span(rng, scene, obj, strength)
    amplitude = _lerp(0.2, 0.45, strength)
    envelope = np.sin(np.linspace(0.0, np.pi, e - s + 2)[1:-1]) ** 0.5
    warp = obj.warp.copy()
    warp[s:e] = amplitude * envelope * rng.choice([-1.0, 1.0])
    return _SceneEdit(_replace_object(scene, obj.replace(warp=warp)), obj.object_id, obj.name,
                      "warp")


def _physical_law(scene: Scene, rng: np.random.Generator, strength: float,
                  obj: SceneObject) -> _SceneEdit:
    """From a frame on, the object sinks through the floor or falls upwards."""
    first = _EARLIEST_START[PHYSICAL_LAW]
    runs = [(max(s, first), e) for s, e in visible_runs(scene, obj) if e - max(s, first) >= MIN_SPAN_FRAMES]
    if not runs:
        raise ValueError(f"{obj.name} has no span for a physics violation")
    lo, hi = runs[int(rng.integers(len(runs)))]
    s = int(rng.integers(lo, hi - MIN_SPAN_FRAMES + 1))
    variant = "sink" if rng.random() < 0.5 else "float"
    dt = 1.0 / scene.fps
    pos = obj.centers[s - 1].copy()
    vel = (obj.centers[s - 1] - obj.centers[s - 2]) / dt
    centers = obj.centers.copy()
    clip = np.full(scene.n_frames, np.nan) if obj.clip_below is None else obj.clip_below.copy()
    if variant == "sink":
        vel[1] = max(vel[1], _lerp(25.0, 70.0, strength))
        accel = scene.gravity if obj.motion == "bounce" else 0.0
        clip[s:] = scene.floor_y
    else:
        vel[1] = min(vel[1], 0.0)
        accel = -scene.gravity * _lerp(0.35, 0.8, strength)
    for k in range(s, scene.n_frames):
        for _ in range(8):
            vel[1] += accel * dt / 8
            pos = pos + vel * dt / 8
        centers[k] = pos
    edited = obj.replace(centers=centers, clip_below=clip)
    return _SceneEdit(_replace_object(scene, edited), obj.object_id, obj.name, variant)


def _unnatural_movement(scene: Scene, rng: np.random.Generator, strength: float,
                        obj: SceneObject) -> _SceneEdit:
    """The object teleports or stutters back and forth for a while, then carries on."""
    s, e = _object_span(rng, scene, obj, strength)
    variant = "teleport" if rng.random() < 0.5 else "stutter"
    scale = scene.camera.scales[s:e, None]
    magnitude = _lerp(10.0, 24.0, strength) + obj.radius / scale[:, 0].mean() * 0.8
    if variant == "teleport":
        angle = rng.uniform(0, 2 * math.pi)
        offsets = np.tile([math.cos(angle), math.sin(angle)], (e - s, 1)) * magnitude
    else:
        angle = rng.uniform(0, 2 * math.pi)
        signs = np.where(np.arange(e - s) % 2 == 0, 1.0, -1.0) * rng.choice([-1.0, 1.0])
        offsets = np.outer(signs, [math.cos(angle), math.sin(angle)]) * magnitude * 0.6
    centers = obj.centers.copy()
    centers[s:e] += offsets * scale
    # keep the moved object in the view so that the artifact is seen
    origins = scene.camera.origins[s:e]
    views = scene.camera.scales[s:e, None] * [scene.width, scene.height]
    pad = obj.radius * max(obj.aspect, 1.0)
    centers[s:e] = np.clip(centers[s:e], origins + pad, origins + views - pad)
    return _SceneEdit(_replace_object(scene, obj.replace(centers=centers)), obj.object_id,
                      obj.name, variant)


def _appearance(scene: Scene, rng: np.random.Generator, strength: float,
                _obj: SceneObject | None) -> _SceneEdit:
    """An object pops into existence mid-clip (not entering from an edge)."""
    s = int(rng.integers(1, scene.n_frames - MIN_SPAN_FRAMES + 1))
    e = scene.n_frames
    if rng.random() < 0.4:  # appears, then vanishes again
        s, e = _span(rng, 1, scene.n_frames, strength)
    shape = str(rng.choice(SHAPES))
    scale = float(scene.camera.scales[s])
    radius = float(rng.uniform(0.08, 0.13) * scene.height * scale * _lerp(0.85, 1.15, strength))
    aspect = 1.0 if shape == "disc" else float(rng.uniform(0.7, 1.4))
    reach = radius * max(aspect, 1.0) + 2 * scale
    origin = scene.camera.origins[s]
    x = float(origin[0] + rng.uniform(reach, scene.width * scale - reach))
    n = scene.n_frames
    on_floor = scene.floor_y is not None and rng.random() < 0.5
    # a colour that stands out from the background where it pops in (visible, not camouflaged)
    world = background_pixels(scene.background)
    wy, wx = int(np.clip(origin[1] + scene.height * scale / 2, 0, world.shape[0] - 1)), int(x)
    local = world[max(wy - 8, 0): wy + 8, max(wx - 8, 0): wx + 8].reshape(-1, 3).mean(axis=0)
    used = {o.colour for o in scene.objects}
    names = [c for c in sorted(COLOURS) if COLOURS[c] not in used] or sorted(COLOURS)
    shortlist = [names[i] for i in rng.choice(len(names), size=min(3, len(names)), replace=False)]
    colour_name = max(shortlist, key=lambda c: float(np.abs(np.subtract(COLOURS[c], local)).sum()))
    if on_floor:
        y = scene.floor_y - radius
        centers, motion = np.tile([x, y], (n, 1)), "slide"
        name = "block" if shape == "box" else "ball"
    else:
        floor = scene.floor_y if scene.floor_y is not None else origin[1] + scene.height * scale
        y_hi = min(origin[1] + scene.height * scale, floor) - reach
        y = float(origin[1] + reach + rng.uniform(0, max(y_hi - origin[1] - reach, 1.0)))
        vx, vy = rng.uniform(-12, 12), rng.uniform(-6, 6)
        times = (np.arange(n) - s)[:, None] / scene.fps
        centers = np.array([x, y]) + times * np.array([vx, vy])
        name, motion = {"disc": "balloon", "box": "kite", "ellipse": "bubble"}[shape], "drift"
    visible = np.zeros(n, dtype=bool)
    visible[s:e] = True
    new = SceneObject(
        object_id=max((o.object_id for o in scene.objects), default=-1) + 1,
        name=f"{colour_name} {name}", shape=shape, pattern=str(rng.choice(PATTERNS)),
        colour=COLOURS[colour_name], radius=radius, aspect=aspect, motion=motion,
        centers=centers, angles=np.full(n, float(rng.uniform(0, math.pi))), visible=visible,
        warp=np.zeros(n),
    )
    return _SceneEdit(scene.replace(objects=scene.objects + (new,)), new.object_id, new.name,
                      "pop-in" if e == n else "flash")


def _camera_inconsistency(scene: Scene, rng: np.random.Generator, strength: float,
                          _obj: SceneObject | None) -> _SceneEdit:
    """The camera jolts or shakes for a few frames, unlike the smooth move around it."""
    s, e = _span(rng, 1, scene.n_frames, strength, max_fraction=0.4)
    variant = "jolt" if rng.random() < 0.5 else "shake"
    magnitude = _lerp(6.0, 14.0, strength)
    if variant == "jolt":
        angle = rng.uniform(0, 2 * math.pi)
        offsets = np.tile([math.cos(angle), math.sin(angle)], (e - s, 1)) * magnitude
    else:
        angles = rng.uniform(0, 2 * math.pi, e - s)
        offsets = np.stack([np.cos(angles), np.sin(angles)], axis=1) * magnitude * 0.8
    origins = scene.camera.origins.copy()
    scales = scene.camera.scales
    world_w, world_h = scene.background.world_size
    limits = np.stack([world_w - scene.width * scales, world_h - scene.height * scales], axis=1) - 1
    moved = origins[s:e] + offsets * scales[s:e, None]
    # keep the view inside the world; bounce the offset back if an edge is too close
    over = (moved < 0) | (moved > limits[s:e])
    moved = np.where(over, origins[s:e] - offsets * scales[s:e, None], moved)
    origins[s:e] = np.clip(moved, 0, limits[s:e])
    camera = Camera(origins=origins, scales=scales)
    return _SceneEdit(scene.replace(camera=camera), None, None, variant)


_SCENE_EDITS: dict[str, Callable[..., _SceneEdit]] = {
    OBJECT_DISAPPEARANCE: _disappearance,
    SHAPE_DISTORTION: _shape_distortion,
    PHYSICAL_LAW: _physical_law,
    UNNATURAL_MOVEMENT: _unnatural_movement,
    OBJECT_APPEARANCE: _appearance,
    CAMERA_MOTION_INCONSISTENCY: _camera_inconsistency,
}


def _object_changed_frames(before: SceneObject | None, after: SceneObject | None,
                           n_frames: int) -> np.ndarray:
    if before is None or after is None:
        return np.ones(n_frames, dtype=bool)
    changed = ~np.isclose(before.centers, after.centers).all(axis=1)
    changed |= ~np.isclose(before.angles, after.angles)
    changed |= before.visible != after.visible
    changed |= ~np.isclose(before.warp, after.warp)
    clip_a = np.full(n_frames, np.nan) if before.clip_below is None else before.clip_below
    clip_b = np.full(n_frames, np.nan) if after.clip_below is None else after.clip_below
    changed |= ~np.isclose(clip_a, clip_b, equal_nan=True)
    return changed


def _footprint(scene: Scene, obj: SceneObject | None, frame: int, out: np.ndarray) -> None:
    if obj is None:
        return
    layer = object_layer(scene, obj, frame)
    if layer is not None:
        ys, xs, alpha, _ = layer
        out[ys, xs] |= alpha > 0


def _scene_edit_mask(real: Scene, fake: Scene, edit: _SceneEdit) -> np.ndarray:
    mask = np.zeros((real.n_frames, real.height, real.width), dtype=bool)
    if edit.object_id is None:  # the camera moved: every pixel of those frames
        moved = ~(np.isclose(real.camera.origins, fake.camera.origins).all(axis=1)
                  & np.isclose(real.camera.scales, fake.camera.scales))
        mask[moved] = True
        return mask
    before = next((o for o in real.objects if o.object_id == edit.object_id), None)
    after = next((o for o in fake.objects if o.object_id == edit.object_id), None)
    changed = _object_changed_frames(before, after, real.n_frames)
    for k in np.flatnonzero(changed):
        _footprint(real, before, int(k), mask[k])
        _footprint(fake, after, int(k), mask[k])
    return mask


# ----------------------------------------------------------------------------- pixel effects


def _detail(frame: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> float:
    """Mean local contrast in a box: a blur over a flat sky would change nothing visible."""
    ys = slice(max(int(cy - ry), 0), max(int(cy + ry), 1))
    xs = slice(max(int(cx - rx), 0), max(int(cx + rx), 1))
    patch = frame[ys, xs] @ _LUMA
    if patch.shape[0] < 3 or patch.shape[1] < 3:
        return 0.0
    return float(np.abs(np.diff(patch, axis=0)).mean() + np.abs(np.diff(patch, axis=1)).mean())


def _region(scene: Scene, rng: np.random.Generator, strength: float,
            target: SceneObject | None, frames: np.ndarray | None = None,
            tries: int = 5) -> tuple[np.ndarray, str | None]:
    """A soft region ``(T, H, W)`` in 0..1, exactly 0 outside its support and outside the span.

    It follows ``target`` on screen, or is an ellipse anchored in the world (so it moves with the
    camera, like a patch of the scene would). Given ``frames``, the world ellipse goes where the
    picture has the most detail among a few candidates, so that the artifact shows.
    """
    n, h, w = scene.n_frames, scene.height, scene.width
    soft = np.zeros((n, h, w), dtype=np.float32)
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    if target is not None:
        s, e = _object_span(rng, scene, target, strength)
        boxes = scene.screen_boxes(target)
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
        radii = np.stack([(boxes[:, 2] - boxes[:, 0]) / 2, (boxes[:, 3] - boxes[:, 1]) / 2], 1)
        radii = np.maximum(radii * 1.3, 6.0)
    else:
        s, e = _span(rng, 0, n, strength)
        scale0, origin0 = float(scene.camera.scales[s]), scene.camera.origins[s]
        rx = w * rng.uniform(0.1, 0.2) * _lerp(0.9, 1.2, strength)
        ry = h * rng.uniform(0.1, 0.2) * _lerp(0.9, 1.2, strength)
        candidates = [(rng.uniform(rx, w - rx), rng.uniform(ry, h - ry))
                      for _ in range(1 if frames is None else tries)]
        sx, sy = max(candidates, key=lambda c: 0.0 if frames is None
                     else _detail(frames[s], c[0], c[1], rx, ry))
        world_centre = origin0 + (np.array([sx, sy]) + 0.5) * scale0
        world_radii = np.array([rx, ry]) * scale0
        scales = scene.camera.scales[:, None]
        centres = (world_centre - scene.camera.origins) / scales - 0.5
        radii = world_radii / scales
    for k in range(s, e):
        d = np.sqrt(((xx - centres[k, 0]) / radii[k, 0]) ** 2
                    + ((yy - centres[k, 1]) / radii[k, 1]) ** 2)
        soft[k] = np.clip((1.0 - d) / 0.35, 0.0, 1.0)
    return soft, None if target is None else target.name


def _apply(frames: np.ndarray, soft: np.ndarray,
           effect: Callable[[int, np.ndarray, tuple[slice, slice]], np.ndarray]) -> None:
    """Blend ``effect`` into ``frames`` in place, per frame, inside the region's bounding window."""
    for k in np.flatnonzero(soft.reshape(len(soft), -1).any(axis=1)):
        rows = np.flatnonzero(soft[k].any(axis=1))
        cols = np.flatnonzero(soft[k].any(axis=0))
        window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        m = soft[k][window][..., None]
        patch = frames[k][window]
        frames[k][window] = patch * (1 - m) + effect(int(k), frames[k], window) * m


def _texture_jitter(frames: np.ndarray, soft: np.ndarray, rng: np.random.Generator,
                    strength: float) -> str:
    shift = int(round(_lerp(1.0, 3.0, strength)))
    amplitude = _lerp(14.0, 30.0, strength)

    def effect(k: int, frame: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
        dy, dx = rng.integers(-shift, shift + 1, size=2)
        moved = np.roll(frame, (int(dy) or 1, int(dx)), axis=(0, 1))[window]
        grain = ndimage.gaussian_filter(rng.standard_normal(moved.shape[:2]), 0.8)
        grain *= amplitude / max(grain.std(), 1e-6)
        return moved + grain[..., None].astype(np.float32)

    _apply(frames, soft, effect)
    return "boil"


def _blur(frames: np.ndarray, soft: np.ndarray, rng: np.random.Generator,
          strength: float) -> str:
    sigma = _lerp(2.5, 5.0, strength)

    def effect(k: int, frame: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
        pad = int(3 * sigma) + 1
        ys, xs = window
        y0, x0 = max(ys.start - pad, 0), max(xs.start - pad, 0)
        big = frame[y0: ys.stop + pad, x0: xs.stop + pad]
        blurred = ndimage.gaussian_filter(big, (sigma, sigma, 0), mode="nearest")
        return blurred[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0]

    _apply(frames, soft, effect)
    return "gaussian"


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _oversaturation(frames: np.ndarray, soft: np.ndarray, rng: np.random.Generator,
                    strength: float) -> str:
    gain = _lerp(1.9, 3.0, strength)
    push = _lerp(22.0, 40.0, strength)
    hue = rng.standard_normal(3).astype(np.float32)
    hue -= (hue @ _LUMA) / _LUMA.sum()  # a chroma direction with no luminance
    hue /= np.linalg.norm(hue)

    def effect(k: int, frame: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
        patch = frame[window]
        luma = patch @ _LUMA
        chroma = patch - luma[..., None]
        mean_chroma = chroma.reshape(-1, 3).mean(axis=0)
        norm = float(np.linalg.norm(mean_chroma))
        direction = mean_chroma / norm if norm > 6.0 else hue
        return luma[..., None] + chroma * gain + direction * push

    _apply(frames, soft, effect)
    return "chroma-boost"


def _lighting(frames: np.ndarray, soft: np.ndarray, rng: np.random.Generator,
              strength: float) -> str:
    """The region's light flickers up and down with no source; balanced so the mean holds."""
    depth = _lerp(0.22, 0.4, strength)
    active = np.flatnonzero(soft.reshape(len(soft), -1).any(axis=1))
    signs = np.where(np.arange(len(active)) % 2 == 0, 1.0, -1.0) * rng.choice([-1.0, 1.0])
    steps = dict(zip(active.tolist(), (depth * signs).tolist()))

    # multiplicative, plus an offset so that dark regions flicker too
    def effect(k: int, frame: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
        return frame[window] * np.float32(1.0 + steps[k]) + np.float32(60.0 * steps[k])

    _apply(frames, soft, effect)
    return "flicker"


_PIXEL_EFFECTS: dict[str, Callable[..., str]] = {
    TEXTURE_JITTERING: _texture_jitter,
    UNNATURAL_BLUR: _blur,
    COLOR_OVERSATURATION: _oversaturation,
    LIGHTING_INCONSISTENCY: _lighting,
}


# ----------------------------------------------------------------------------- injection


def truth_from_mask(artifact_type: str, mask: np.ndarray, fps: float, target: str | None = None,
                    variant: str = "") -> ArtifactTruth | None:
    """Time span and union box of a mask, in the annotation schema; None for an empty mask."""
    frames = np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))
    if not len(frames):
        return None
    n, h, w = mask.shape
    union = mask[frames].any(axis=0)
    rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
    t0 = round(float(frames[0]) / fps, 4)
    t1 = round(min(float(frames[-1] + 1) / fps, n / fps), 4)
    bbox = (round(float(cols[0]) / w, 4), round(float(rows[0]) / h, 4),
            round(float(cols[-1] + 1) / w, 4), round(float(rows[-1] + 1) / h, 4))
    return ArtifactTruth(artifact_type, (t0, t1), bbox, target, variant)


def inject_artifacts(scene: Scene, requests: Sequence[ArtifactRequest],
                     rng: np.random.Generator) -> FakeClip:
    """Render ``scene`` as the real clip and, from it, the fake carrying ``requests``.

    Requests that cannot apply (no eligible object left) are skipped; if none took effect, a
    texture jitter is added so that a fake is never identical to its real.
    """
    world = background_pixels(scene.background)
    noise = sensor_noise(scene)
    clean_real = render_clean(scene, world)
    real = to_uint8(clean_real + noise)

    edits: list[tuple[str, _SceneEdit]] = []
    pixel_requests: list[ArtifactRequest] = []
    fake_scene, taken = scene, []
    # the most selective object edit picks its target first (physics needs a falling object)
    for request in sorted(requests, key=lambda r: r.type != PHYSICAL_LAW):
        if request.type in PIXEL_TYPES:
            pixel_requests.append(request)
            continue
        if request.type not in _SCENE_EDITS:
            raise KeyError(f"no injector for {request.type!r}")
        target = None
        if request.type in OBJECT_TYPES:
            candidates = eligible_targets(request.type, scene, taken)
            if not candidates:
                continue
            target = candidates[int(rng.integers(len(candidates)))]
            taken.append(target.object_id)
        elif request.type == CAMERA_MOTION_INCONSISTENCY and any(
            t == CAMERA_MOTION_INCONSISTENCY for t, _ in edits
        ):
            continue
        # object edits read the object from the latest scene so that edits compose
        latest = None if target is None else next(
            o for o in fake_scene.objects if o.object_id == target.object_id)
        edit = _SCENE_EDITS[request.type](fake_scene, rng, request.strength, latest)
        fake_scene = edit.scene
        edits.append((request.type, edit))

    fake = clean_real + noise if not edits else render_clean(fake_scene, world) + noise
    artifacts: list[InjectedArtifact] = []
    for artifact_type, edit in edits:
        mask = _scene_edit_mask(scene, fake_scene, edit)
        truth = truth_from_mask(artifact_type, mask, scene.fps, edit.target, edit.variant)
        if truth is not None:
            artifacts.append(InjectedArtifact(truth, mask))
    if not artifacts and not pixel_requests:  # an empty edit mask means no pixel changed
        pixel_requests.append(ArtifactRequest(TEXTURE_JITTERING, 0.8))
    for request in pixel_requests:
        # blur shows on edges, so it goes on an object more often than the other effects
        on_object = rng.random() < (0.75 if request.type == UNNATURAL_BLUR else 0.5)
        candidates = [o for o in eligible_targets(request.type, scene, ())
                      if o.object_id not in taken] if on_object else []
        target = candidates[int(rng.integers(len(candidates)))] if candidates else None
        soft, target_name = _region(fake_scene, rng, request.strength, target, fake,
                                    tries=12 if request.type == UNNATURAL_BLUR else 5)
        variant = _PIXEL_EFFECTS[request.type](fake, soft, rng, request.strength)
        truth = truth_from_mask(request.type, soft > 0, scene.fps, target_name, variant)
        if truth is not None:
            artifacts.append(InjectedArtifact(truth, soft > 0))
    return FakeClip(real=real, frames=to_uint8(fake), artifacts=tuple(artifacts), scene=fake_scene)
