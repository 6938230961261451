"""Real clips for the zoo: procedural scenes and camera moves over bundled photographs.

A :class:`Scene` is a complete, deterministic description of a clip: the background (a procedural
texture or a photograph that ships inside scikit-image, so nothing is downloaded), a camera path,
objects with their per-frame world positions, and the sensor-noise seed. :func:`render_frames`
turns it into pixels. Artifacts (``vigil.zoo.artifacts``) edit a scene (an object vanishes, warps,
defies gravity) and render it again with the same background and the same noise, so that a fake
differs from its paired real only where the artifact is.

Coordinates: objects live in *world* pixels (the background texture's pixels). The camera gives,
per frame, the world position of the view's top-left corner and a scale (world pixels per screen
pixel); screen pixel ``x`` samples world ``origin_x + (x + 0.5) * scale``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import numpy as np

MAX_SIDE = 256

# Photographs bundled in the scikit-image wheel (checked to load offline). Grey ones are toned
# sepia so that colour artifacts have chroma to act on.
PHOTOS: Mapping[str, str] = MappingProxyType({
    "astronaut": "a portrait of an astronaut in front of a flag",
    "chelsea": "a tabby cat looking at the camera",
    "coffee": "a cup of coffee on a saucer",
    "rocket": "a rocket standing on its launch pad",
    "hubble_deep_field": "a deep-space field of galaxies",
    "camera": "a sepia photograph of a man with a tripod camera",
    "coins": "a sepia photograph of old coins",
    "clock": "a sepia photograph of a wall clock",
    "moon": "a sepia photograph of the cratered lunar surface",
})

RGB = tuple[int, int, int]
# name -> (sky top, sky at horizon, ground, description used in prompts)
PALETTES: Mapping[str, tuple[RGB, RGB, RGB, str]] = MappingProxyType({
    "meadow": ((70, 130, 200), (170, 205, 235), (70, 130, 60), "a grassy meadow under a blue sky"),
    "desert": ((120, 170, 220), (235, 215, 180), (200, 165, 110), "sand dunes under a pale sky"),
    "dusk": ((60, 50, 110), (240, 140, 90), (80, 60, 55), "a field at dusk"),
    "snow": ((150, 160, 175), (220, 225, 230), (215, 220, 228),
             "a snowy plain under an overcast sky"),
    "studio": ((40, 40, 48), (95, 92, 100), (125, 112, 100), "a dim studio with a wooden floor"),
    "beach": ((90, 160, 220), (200, 230, 245), (225, 205, 160), "a sandy beach under a clear sky"),
})

COLOURS: Mapping[str, tuple[int, int, int]] = MappingProxyType({
    "red": (210, 50, 45), "orange": (235, 140, 40), "yellow": (235, 210, 60),
    "green": (60, 170, 80), "blue": (50, 90, 210), "purple": (140, 70, 180),
    "white": (238, 238, 235), "black": (35, 35, 40), "pink": (230, 120, 170),
    "teal": (40, 160, 160),
})

SHAPES = ("disc", "box", "ellipse")
PATTERNS = ("plain", "stripes", "checker", "spots")
MOTIONS = ("bounce", "slide", "drift")
CAMERA_MOVES = ("pan", "zoom_in", "zoom_out")

_NOUNS = {
    ("disc", "bounce"): "ball", ("disc", "slide"): "wheel", ("disc", "drift"): "balloon",
    ("box", "bounce"): "cube", ("box", "slide"): "crate", ("box", "drift"): "kite",
    ("ellipse", "bounce"): "rugby ball", ("ellipse", "slide"): "pebble",
    ("ellipse", "drift"): "bubble",
}
_VERBS = {"bounce": "bounces", "slide": "slides", "drift": "drifts"}


@dataclass(frozen=True)
class ScenePreferences:
    """What kind of real clips a generator's pairs start from (its showcase's subject matter)."""

    photo_probability: float = 0.3
    object_count: tuple[int, int] = (1, 3)
    photo_object_count: tuple[int, int] = (0, 1)
    motion_weights: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"bounce": 0.5, "slide": 0.25, "drift": 0.25})
    )
    camera_speed: tuple[float, float] = (0.0, 14.0)  # procedural pan, world px per second
    noise_sigma: tuple[float, float] = (1.5, 3.5)


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One moving object. Arrays are per frame; artifacts swap them via :meth:`replace`."""

    object_id: int
    name: str
    shape: str
    pattern: str
    colour: tuple[int, int, int]
    radius: float  # world px, half height
    aspect: float  # half width / half height
    motion: str
    centers: np.ndarray  # (T, 2) world x, y
    angles: np.ndarray  # (T,) radians
    visible: np.ndarray  # (T,) bool
    warp: np.ndarray  # (T,) shape-warp amplitude, 0 for a real object
    clip_below: np.ndarray | None = None  # (T,) world y below which it is hidden; NaN: none

    def replace(self, **changes: Any) -> SceneObject:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class Camera:
    origins: np.ndarray  # (T, 2) world position of the view's top-left corner
    scales: np.ndarray  # (T,) world px per screen px


@dataclass(frozen=True)
class Background:
    kind: str  # "procedural" | "photo"
    name: str  # palette or photo name
    seed: int
    world_size: tuple[int, int]  # (width, height) in world px
    floor_y: float | None  # world y of the ground line (procedural only)


@dataclass(frozen=True, eq=False)
class Scene:
    seed: int
    kind: str
    width: int
    height: int
    fps: float
    n_frames: int
    background: Background
    camera: Camera
    objects: tuple[SceneObject, ...]
    gravity: float  # world px / s^2, 0 for photo scenes
    noise_sigma: float
    noise_seed: int
    prompt: str

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    @property
    def floor_y(self) -> float | None:
        return self.background.floor_y

    def replace(self, **changes: Any) -> Scene:
        return dataclasses.replace(self, **changes)

    def screen_boxes(self, obj: SceneObject) -> np.ndarray:
        """Per-frame screen box ``(T, 4)`` x1, y1, x2, y2 in pixels (unclipped, NaN when hidden)."""
        scales = self.camera.scales
        cx = (obj.centers[:, 0] - self.camera.origins[:, 0]) / scales - 0.5
        cy = (obj.centers[:, 1] - self.camera.origins[:, 1]) / scales - 0.5
        hy = obj.radius / scales
        hx = hy * obj.aspect
        c, s = np.abs(np.cos(obj.angles)), np.abs(np.sin(obj.angles))
        ex = hx * c + hy * s if obj.shape != "disc" else hy
        ey = hx * s + hy * c if obj.shape != "disc" else hy
        boxes = np.stack([cx - ex, cy - ey, cx + ex, cy + ey], axis=1)
        boxes[~obj.visible] = np.nan
        return boxes

    def on_screen_fraction(self, obj: SceneObject) -> np.ndarray:
        """Per frame, the fraction of the object's box inside the view (0 when hidden)."""
        boxes = self.screen_boxes(obj)
        ix = np.clip(boxes[:, 2], 0, self.width) - np.clip(boxes[:, 0], 0, self.width)
        iy = np.clip(boxes[:, 3], 0, self.height) - np.clip(boxes[:, 1], 0, self.height)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        frac = np.clip(ix, 0, None) * np.clip(iy, 0, None) / np.maximum(area, 1e-6)
        return np.nan_to_num(frac, nan=0.0)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: background, camera move and each object's per-frame box."""
        objects = []
        for obj in self.objects:
            boxes = self.screen_boxes(obj)
            objects.append({
                "object_id": obj.object_id, "name": obj.name, "shape": obj.shape,
                "motion": obj.motion,
                "boxes": [None if np.isnan(b).any() else [round(float(v), 2) for v in b]
                          for b in boxes],
            })
        return {
            "kind": self.kind, "background": self.background.name, "seed": self.seed,
            "floor_y": None if self.floor_y is None else round(float(self.floor_y), 2),
            "objects": objects,
        }


# ----------------------------------------------------------------------------- scene planning


def make_scene(
    seed: int,
    preferences: ScenePreferences = ScenePreferences(),
    *,
    width: int = 160,
    height: int = 120,
    fps: float = 8.0,
    n_frames: int = 24,
) -> Scene:
    """Draw a whole real clip's description from ``seed``: same seed, same scene, on any machine."""
    _check_size(width, height)
    if n_frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {n_frames}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5CE4E]))
    if rng.random() < preferences.photo_probability:
        return _photo_scene(seed, rng, preferences, width, height, fps, n_frames)
    return _procedural_scene(seed, rng, preferences, width, height, fps, n_frames)


def _check_size(width: int, height: int) -> None:
    if not (16 <= width <= MAX_SIDE and 16 <= height <= MAX_SIDE):
        raise ValueError(f"clip sides must be 16..{MAX_SIDE} px, got {width}x{height}")
    if width % 2 or height % 2:
        raise ValueError(f"clip sides must be even (H.264 4:2:0), got {width}x{height}")


def _procedural_scene(seed: int, rng: np.random.Generator, prefs: ScenePreferences, width: int,
                      height: int, fps: float, n_frames: int) -> Scene:
    duration = n_frames / fps
    palette = str(rng.choice(sorted(PALETTES)))
    speed = float(rng.uniform(*prefs.camera_speed))
    direction = int(rng.choice([-1, 1]))
    margin = 16
    pan = speed * duration
    world_w = int(math.ceil(width + pan)) + 2 * margin
    world_h = height + 2 * margin
    floor_y = margin + height * float(rng.uniform(0.72, 0.85))
    times = np.arange(n_frames) / fps
    x0 = margin + (0.0 if direction > 0 else pan)
    origins = np.stack([x0 + direction * speed * times, np.full(n_frames, float(margin))], axis=1)
    camera = Camera(origins=origins, scales=np.ones(n_frames))
    gravity = float(rng.uniform(260.0, 420.0))
    n_objects = int(rng.integers(prefs.object_count[0], prefs.object_count[1] + 1))
    objects = []
    view_mid = origins[n_frames // 2]
    for object_id in range(n_objects):
        motion = _weighted_choice(rng, prefs.motion_weights)
        objects.append(_physical_object(
            rng, object_id, motion, world_w, floor_y, view_mid, width, height, gravity, fps,
            n_frames,
        ))
    background = Background("procedural", palette, int(rng.integers(2**31)), (world_w, world_h),
                            floor_y)
    move = "while the camera pans " + ("right" if direction > 0 else "left") if speed > 4 else \
        "seen from a still camera"
    prompt = _prompt(PALETTES[palette][3], objects, move)
    return Scene(seed, "procedural", width, height, fps, n_frames, background, camera,
                 tuple(objects), gravity, float(rng.uniform(*prefs.noise_sigma)),
                 int(rng.integers(2**31)), prompt)


def _photo_scene(seed: int, rng: np.random.Generator, prefs: ScenePreferences, width: int,
                 height: int, fps: float, n_frames: int) -> Scene:
    photo = str(rng.choice(sorted(PHOTOS)))
    zoom_max = 1.45
    ph, pw = _photo_shape(photo)
    factor = max(width * zoom_max / pw, height * zoom_max / ph)
    world_w, world_h = int(math.ceil(pw * factor)), int(math.ceil(ph * factor))
    move = str(rng.choice(CAMERA_MOVES))
    if move == "pan":
        s0 = s1 = float(rng.uniform(1.0, 1.3))
    else:
        a, b = float(rng.uniform(1.2, zoom_max)), float(rng.uniform(1.0, 1.1))
        s0, s1 = (a, b) if move == "zoom_in" else (b, a)
    starts = [rng.uniform(0, world_w - width * s0), rng.uniform(0, world_h - height * s0)]
    ends = [rng.uniform(0, world_w - width * s1), rng.uniform(0, world_h - height * s1)]
    if move == "pan":  # make the pan travel far enough to be seen
        ends[0] = world_w - width * s1 - starts[0] if abs(ends[0] - starts[0]) < 10 else ends[0]
    ease = _smoothstep(np.linspace(0.0, 1.0, n_frames))
    origins = np.stack([starts[0] + (ends[0] - starts[0]) * ease,
                        starts[1] + (ends[1] - starts[1]) * ease], axis=1)
    scales = s0 + (s1 - s0) * ease
    camera = Camera(origins=origins, scales=scales)
    n_objects = int(rng.integers(prefs.photo_object_count[0], prefs.photo_object_count[1] + 1))
    view_mid = origins[n_frames // 2]
    objects = [
        _physical_object(rng, i, "drift", world_w, None, view_mid, width * scales[n_frames // 2],
                         height * scales[n_frames // 2], 0.0, fps, n_frames)
        for i in range(n_objects)
    ]
    background = Background("photo", photo, int(rng.integers(2**31)), (world_w, world_h), None)
    how = {"pan": "A slow pan across", "zoom_in": "A slow zoom into",
           "zoom_out": "A slow zoom out from"}[move]
    prompt = f"{how} {PHOTOS[photo]}."
    if objects:
        prompt += " " + " ".join(_object_sentence(o) for o in objects)
    return Scene(seed, "photo", width, height, fps, n_frames, background, camera,
                 tuple(objects), 0.0, float(rng.uniform(*prefs.noise_sigma)),
                 int(rng.integers(2**31)), prompt)


def _physical_object(rng: np.random.Generator, object_id: int, motion: str, world_w: int,
                     floor_y: float | None, view_mid: np.ndarray, view_w: float, view_h: float,
                     gravity: float, fps: float, n_frames: int) -> SceneObject:
    """An object and its trajectory under the scene's physics (bounce, slide or drift)."""
    shape = str(rng.choice(SHAPES))
    if motion == "drift" and shape == "box" and rng.random() < 0.5:
        shape = "disc"
    colour_name = str(rng.choice(sorted(COLOURS)))
    pattern = str(rng.choice(PATTERNS))
    radius = float(rng.uniform(0.07, 0.13) * view_h)
    aspect = 1.0 if shape == "disc" else float(rng.uniform(0.7, 1.5))
    hx = radius * max(aspect, 1.0)
    x_lo, x_hi = max(hx, view_mid[0] + hx), min(world_w - hx, view_mid[0] + view_w - hx)
    x = float(rng.uniform(x_lo, max(x_lo + 1, x_hi)))
    vx = float(rng.uniform(-35, 35))
    dt = 1.0 / fps
    substeps = 8
    centers = np.zeros((n_frames, 2))
    angles = np.zeros(n_frames)
    angle = float(rng.uniform(0, 2 * math.pi)) if shape != "disc" else 0.0
    spin = float(rng.uniform(-1.0, 1.0))
    if motion == "bounce":
        top = view_mid[1] + radius + 2
        y = float(rng.uniform(top, max(top + 1, floor_y - radius - 25)))
        vy = float(rng.uniform(-40, 20))
        restitution = float(rng.uniform(0.7, 0.9))
    elif motion == "slide":
        y, vy = floor_y - radius, 0.0
        vx = float(rng.choice([-1, 1]) * rng.uniform(15, 45))
        friction = float(rng.uniform(3, 12))
        angle = 0.0
    else:  # drift: constant velocity with a gentle bob
        top, bottom = view_mid[1] + radius + 2, view_mid[1] + view_h * 0.6
        if floor_y is not None:
            bottom = min(bottom, floor_y - radius - 10)
        y = float(rng.uniform(top, max(top + 1, bottom)))
        vy = float(rng.uniform(-6, 6))
        bob_amp, bob_freq = float(rng.uniform(0.5, 3.0)), float(rng.uniform(0.4, 1.2))
        bob_phase = float(rng.uniform(0, 2 * math.pi))
    for k in range(n_frames):
        if motion == "drift":
            t = k * dt
            bob = bob_amp * math.sin(2 * math.pi * bob_freq * t + bob_phase)
            centers[k] = x + vx * t, y + vy * t + bob
            angles[k] = angle + spin * 0.3 * t
            continue
        centers[k] = x, y
        angles[k] = angle if motion == "bounce" else (x / radius if shape == "disc" else 0.0)
        for _ in range(substeps):
            h = dt / substeps
            if motion == "bounce":
                vy += gravity * h
                x += vx * h
                y += vy * h
                if y > floor_y - radius:
                    y = 2 * (floor_y - radius) - y
                    vy = -abs(vy) * restitution
                angle += spin * h
            else:
                decel = friction * h
                vx = math.copysign(max(abs(vx) - decel, 0.0), vx)
                x += vx * h
            if x < hx or x > world_w - hx:
                x = min(max(x, hx), world_w - hx)
                vx = -vx
    noun = _NOUNS[(shape, motion)]
    return SceneObject(
        object_id=object_id, name=f"{colour_name} {noun}", shape=shape, pattern=pattern,
        colour=COLOURS[colour_name], radius=radius, aspect=aspect, motion=motion,
        centers=centers, angles=angles, visible=np.ones(n_frames, dtype=bool),
        warp=np.zeros(n_frames),
    )


def _weighted_choice(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = sorted(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    return x * x * (3 - 2 * x)


def _object_sentence(obj: SceneObject) -> str:
    phrase = _a(obj.name)
    return f"{phrase[0].upper()}{phrase[1:]} {_VERBS[obj.motion]} across the frame."


def _a(noun_phrase: str) -> str:
    return ("an " if noun_phrase[0] in "aeiou" else "a ") + noun_phrase


def _prompt(setting: str, objects: list[SceneObject], move: str) -> str:
    if not objects:
        return f"{setting[0].upper()}{setting[1:]}, {move}."
    names = [f"{_a(o.name)} {_VERBS[o.motion]}" for o in objects]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed[0].upper()}{listed[1:]} in {setting}, {move}."


# ----------------------------------------------------------------------------- backgrounds


@lru_cache(maxsize=16)
def _photo_rgb(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as (H, W, 3) uint8; grey ones toned sepia."""
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        grey = image.astype(np.float32) / 255.0
        sepia = np.array([255, 226, 180], dtype=np.float32)
        image = np.clip(grey[..., None] * sepia * 0.95 + 8, 0, 255).astype(np.uint8)
    image = image[..., :3]
    image.setflags(write=False)
    return image


def _photo_shape(name: str) -> tuple[int, int]:
    h, w = _photo_rgb(name).shape[:2]
    return h, w


@lru_cache(maxsize=64)
def _resized_photo(name: str, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    resized = Image.fromarray(_photo_rgb(name)).resize(size, Image.Resampling.LANCZOS)
    out = np.asarray(resized, dtype=np.float32)
    out.setflags(write=False)
    return out


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    from PIL import Image

    gh, gw = h // cell + 4, w // cell + 4
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    fine = np.asarray(Image.fromarray(coarse).resize((gw * cell, gh * cell),
                                                                Image.Resampling.BICUBIC))
    return fine[cell: cell + h, cell: cell + w]


def background_pixels(background: Background) -> np.ndarray:
    """The world texture ``(Hb, Wb, 3)`` float32 for a background spec (deterministic)."""
    w, h = background.world_size
    if background.kind == "photo":
        return _resized_photo(background.name, (w, h))
    rng = np.random.default_rng(background.seed)
    sky_top, sky_horizon, ground, _ = PALETTES[background.name]
    floor_y = background.floor_y
    ys = np.arange(h, dtype=np.float32)[:, None]
    t = np.clip(ys / max(floor_y, 1.0), 0, 1)
    sky = (np.array(sky_top, np.float32) * (1 - t[..., None])
           + np.array(sky_horizon, np.float32) * t[..., None])
    sky = np.broadcast_to(sky, (h, w, 3)).copy()
    clouds = _smooth_noise(rng, h, w, 24) + 0.5 * _smooth_noise(rng, h, w, 9)
    sky += (clouds * 12.0)[..., None]
    texture = (_smooth_noise(rng, h, w, 14) + 0.6 * _smooth_noise(rng, h, w, 5)
               + 0.4 * rng.standard_normal((h, w)).astype(np.float32))
    depth = np.clip((ys - floor_y) / max(h - floor_y, 1.0), 0, 1)
    tint = np.array(ground, np.float32) * (0.85 + 0.3 * depth[..., None])
    ground_px = tint + (texture * 16.0)[..., None] * np.array([1.0, 0.95, 0.85], np.float32)
    ground_mask = np.clip(ys - floor_y + 0.5, 0, 1)[..., None]
    out = sky * (1 - ground_mask) + ground_px * ground_mask
    return np.clip(out, 0, 255).astype(np.float32)


# ----------------------------------------------------------------------------- rendering


def _sample_view(world: np.ndarray, origin: np.ndarray, scale: float, width: int,
                 height: int) -> np.ndarray:
    """Bilinear crop-and-scale of the world texture for one frame (axis-aligned, separable)."""
    hb, wb = world.shape[:2]
    xs = np.clip(origin[0] + (np.arange(width) + 0.5) * scale - 0.5, 0, wb - 1)
    ys = np.clip(origin[1] + (np.arange(height) + 0.5) * scale - 0.5, 0, hb - 1)
    x0 = np.minimum(xs.astype(np.int64), wb - 2)
    y0 = np.minimum(ys.astype(np.int64), hb - 2)
    fx = (xs - x0).astype(np.float32)[None, :, None]
    fy = (ys - y0).astype(np.float32)[:, None, None]
    rows = world[y0] * (1 - fy) + world[y0 + 1] * fy
    return rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx


def object_layer(scene: Scene, obj: SceneObject, frame: int
                 ) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
    """The object's coverage (alpha) and colour in a screen window for one frame, or None.

    Alpha is exactly 0 outside the shape's anti-aliased edge, so anything that depends on the
    object (a disappearance, a warp) changes no pixel outside this footprint.
    """
    if not obj.visible[frame]:
        return None
    origin, scale = scene.camera.origins[frame], float(scene.camera.scales[frame])
    cx = (obj.centers[frame, 0] - origin[0]) / scale - 0.5
    cy = (obj.centers[frame, 1] - origin[1]) / scale - 0.5
    hy = obj.radius / scale
    hx = hy * obj.aspect
    warp = float(obj.warp[frame])
    reach = math.hypot(hx, hy) * (1 + 2 * abs(warp)) + 2
    x_lo, x_hi = max(int(cx - reach), 0), min(int(cx + reach) + 2, scene.width)
    y_lo, y_hi = max(int(cy - reach), 0), min(int(cy + reach) + 2, scene.height)
    if x_lo >= x_hi or y_lo >= y_hi:
        return None
    xx = np.arange(x_lo, x_hi, dtype=np.float32)[None, :] - np.float32(cx)
    yy = np.arange(y_lo, y_hi, dtype=np.float32)[:, None] - np.float32(cy)
    angle = float(obj.angles[frame])
    ca, sa = math.cos(angle), math.sin(angle)
    u = ca * xx + sa * yy
    v = -sa * xx + ca * yy
    if warp:
        phase = 1.9 * frame
        u, v = (u + warp * hy * np.sin(2 * np.pi * v / (2.0 * hy) + phase),
                v + warp * hx * np.sin(2 * np.pi * u / (2.0 * hx) + 0.7 * phase))
    if obj.shape == "disc":
        sdf = np.sqrt(u * u + v * v) - hy
    elif obj.shape == "ellipse":
        sdf = (np.sqrt((u / hx) ** 2 + (v / hy) ** 2) - 1.0) * min(hx, hy)
    else:
        qx, qy = np.abs(u) - hx, np.abs(v) - hy
        sdf = (np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
               + np.minimum(np.maximum(qx, qy), 0))
    alpha = np.clip(0.5 - sdf, 0.0, 1.0)
    if obj.clip_below is not None and not np.isnan(obj.clip_below[frame]):
        limit = (float(obj.clip_below[frame]) - origin[1]) / scale - 0.5
        rows = np.arange(y_lo, y_hi, dtype=np.float32)[:, None]
        alpha = alpha * np.clip(limit - rows + 0.5, 0, 1)
    if not alpha.any():
        return None
    light = 1.0 - 0.22 * (u + v) / (hx + hy)
    k = np.pi * 2.2 / hy
    if obj.pattern == "stripes":
        light = light * (1.0 + 0.2 * np.tanh(3 * np.sin(u * k)))
    elif obj.pattern == "checker":
        light = light * (1.0 + 0.18 * np.tanh(3 * np.sin(u * k) * np.sin(v * k)))
    elif obj.pattern == "spots":
        light = light * (1.0 - 0.25 * (np.sin(u * k) * np.sin(v * k) > 0.55))
    colour = np.array(obj.colour, np.float32) * light[..., None]
    return slice(y_lo, y_hi), slice(x_lo, x_hi), alpha.astype(np.float32), colour


def render_clean(scene: Scene, world: np.ndarray | None = None) -> np.ndarray:
    """Background plus objects, float32 ``(T, H, W, 3)``, before sensor noise."""
    world = background_pixels(scene.background) if world is None else world
    frames = np.empty((scene.n_frames, scene.height, scene.width, 3), np.float32)
    for k in range(scene.n_frames):
        frame = _sample_view(world, scene.camera.origins[k], float(scene.camera.scales[k]),
                             scene.width, scene.height)
        for obj in scene.objects:
            layer = object_layer(scene, obj, k)
            if layer is None:
                continue
            ys, xs, alpha, colour = layer
            a = alpha[..., None]
            frame[ys, xs] = frame[ys, xs] * (1 - a) + colour * a
        frames[k] = frame
    return frames


def sensor_noise(scene: Scene) -> np.ndarray:
    """The clip's sensor noise, drawn from its own seed so that edited scenes share it.

    Mostly luminance grain (one draw per pixel, shared by the channels) with a weaker chroma
    part: it looks like a camera's noise and costs a third of independent per-channel draws.
    """
    rng = np.random.default_rng(scene.noise_seed)
    luma = rng.standard_normal((scene.n_frames, scene.height, scene.width, 1), dtype=np.float32)
    chroma = rng.standard_normal((scene.n_frames, scene.height // 2, scene.width // 2, 3),
                                 dtype=np.float32)
    chroma = chroma.repeat(2, axis=1).repeat(2, axis=2)
    return (luma + np.float32(0.35) * chroma) * np.float32(scene.noise_sigma)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class RealClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    scene: Scene  # objects with per-frame positions, so that an artifact can target one

    @property
    def prompt(self) -> str:
        return self.scene.prompt


def make_real_clip(seed: int, preferences: ScenePreferences = ScenePreferences(), *,
                   width: int = 160, height: int = 120, fps: float = 8.0,
                   n_frames: int = 24) -> RealClip:
    """A real clip in one call: frames plus the scene that describes them (and its prompt)."""
    scene = make_scene(seed, preferences, width=width, height=height, fps=fps, n_frames=n_frames)
    return RealClip(render_frames(scene), scene)


def render_frames(scene: Scene, world: np.ndarray | None = None,
                  noise: np.ndarray | None = None) -> np.ndarray:
    """The clip as ``(T, H, W, 3)`` uint8 RGB: background, objects, sensor noise."""
    noise = sensor_noise(scene) if noise is None else noise
    return to_uint8(render_clean(scene, world) + noise)
