"""The zoo's catalog: which clips exist, when each is published, and how to render one.

The catalog is a pure function of :class:`ZooConfig`: the same config gives the same items with the
same ids, seeds and publication times, and rendering an item gives the same frames, masks and
metadata on any machine. Each (generator, index) is a *pair*: a real clip and the generator's fake
made from it (same scene seed, same ``pair_id``, as ViF-Bench pairs them).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from vigil.config.params import ZooParams
from vigil.io.encode import write_video
from vigil.zoo.artifacts import InjectedArtifact
from vigil.zoo.generators import REAL, fake_generator_names, generate_fake, get_generator, scene_for
from vigil.zoo.scenes import MAX_SIDE, Scene, render_frames

# Bump when rendering changes, so that caches keyed by the config fingerprint go stale.
ZOO_RENDER_VERSION = 2
DEFAULT_LICENCE = "CC-BY-4.0; synthetic clip rendered by the Vigil zoo"
DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ZooConfig:
    """Everything that decides the catalog and its pixels.

    ``releases`` overrides a generator's release time (default: ``epoch`` + the generator's
    ``release_offset``); that is how a run makes a new generator appear at a chosen moment.
    """

    seed: int = 0
    pairs_per_generator: int = 8
    generators: tuple[str, ...] = field(default_factory=fake_generator_names)
    fps: float = 8.0
    duration_s: tuple[float, float] = (2.0, 4.0)
    width: int = 160
    height: int = 120
    epoch: datetime = DEFAULT_EPOCH
    publish_interval: timedelta = timedelta(hours=6)
    releases: Mapping[str, datetime] = field(default_factory=dict)
    licence: str = DEFAULT_LICENCE
    crf: int = 23
    gop: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "generators", tuple(self.generators))
        object.__setattr__(self, "duration_s", tuple(float(d) for d in self.duration_s))
        object.__setattr__(self, "releases", MappingProxyType(dict(self.releases)))
        for name in self.generators:
            if get_generator(name).is_real:
                raise ValueError(f"{name!r} is the real source; list only fake generators")
        if len(set(self.generators)) != len(self.generators):
            raise ValueError(f"duplicate generator names in {self.generators}")
        unknown = set(self.releases) - set(self.generators)
        if unknown:
            raise ValueError(f"release times for generators not in the catalog: {sorted(unknown)}")
        if self.pairs_per_generator < 0:
            raise ValueError("pairs_per_generator must be >= 0")
        if not (16 <= self.width <= MAX_SIDE and 16 <= self.height <= MAX_SIDE):
            raise ValueError(f"width and height must be 16..{MAX_SIDE}, "
                             f"got {self.width}x{self.height}")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"width and height must be even, got {self.width}x{self.height}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        lo, hi = self.duration_s
        if not (0 < lo <= hi) or round(lo * self.fps) < 4:
            raise ValueError("duration_s must be an increasing range of at least 4 frames, "
                             f"got {self.duration_s}")
        for when in (self.epoch, *self.releases.values()):
            if when.tzinfo is None:
                raise ValueError(f"times must be timezone-aware, got {when!r}")

    def __hash__(self) -> int:  # ``releases`` is a mapping, so hash a canonical form of it
        return hash((self.seed, self.pairs_per_generator, self.generators, self.fps,
                     self.duration_s, self.width, self.height, self.epoch, self.publish_interval,
                     tuple(sorted(self.releases.items())), self.licence, self.crf, self.gop))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters, for run records and lineage."""
        return {
            "seed": self.seed, "pairs_per_generator": self.pairs_per_generator,
            "generators": list(self.generators), "fps": self.fps,
            "duration_s": list(self.duration_s), "width": self.width, "height": self.height,
            "epoch": isoformat(self.epoch),
            "publish_interval_s": self.publish_interval.total_seconds(),
            "releases": {k: isoformat(v) for k, v in sorted(self.releases.items())},
            "licence": self.licence, "crf": self.crf, "gop": self.gop,
            "render_version": ZOO_RENDER_VERSION,
        }

    def release_time(self, generator: str) -> datetime:
        if generator in self.releases:
            return self.releases[generator]
        return self.epoch + get_generator(generator).release_offset

    def render_fingerprint(self) -> str:
        """A short hash of what decides an item's pixels (not which items exist or when)."""
        relevant = {"v": ZOO_RENDER_VERSION, "seed": self.seed, "fps": self.fps,
                    "duration_s": list(self.duration_s), "width": self.width,
                    "height": self.height, "crf": self.crf, "gop": self.gop}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def zoo_geometry(zoo: ZooParams) -> dict[str, Any]:
    """The :class:`ZooConfig` fields that ``params.yaml``'s ``zoo`` section fixes for every catalogue a run
    renders (the gallery, the fixed evaluation set, the pretrain clips): frame rate, size, durations and
    generators, without the seed and catalogue size that each of them sets for itself. Plain values, so
    callers can hash them into cache keys and send them to worker processes."""
    return dict(fps=zoo.fps, width=zoo.width, height=zoo.height, duration_s=(zoo.min_duration_s, zoo.max_duration_s),
                **({"generators": tuple(zoo.generators)} if zoo.generators is not None else {}))


def zoo_config(zoo: ZooParams) -> ZooConfig:
    """The gallery's catalogue configuration for ``params.yaml``'s ``zoo`` section."""
    return ZooConfig(seed=zoo.seed, pairs_per_generator=zoo.pairs_per_generator, **zoo_geometry(zoo))


@dataclass(frozen=True)
class CatalogItem:
    item_id: str
    pair_id: str
    generator: str  # "real" or a generator name
    label: str  # "real" | "fake"
    prompt: str
    licence: str
    published_at: datetime
    scene_seed: int
    artifact_seed: int
    pair_generator: str  # the generator whose pair this is (whose scene preferences made it)
    pair_index: int
    n_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id, "pair_id": self.pair_id, "generator": self.generator,
            "label": self.label, "prompt": self.prompt, "licence": self.licence,
            "published_at": isoformat(self.published_at), "scene_seed": self.scene_seed,
            "pair_generator": self.pair_generator, "fps": self.fps, "width": self.width,
            "height": self.height, "frame_count": self.n_frames,
            "duration_s": round(self.duration_s, 6),
        }


@dataclass(frozen=True)
class RenderedItem:
    media_path: Path
    mask_path: Path
    meta_path: Path


@dataclass(frozen=True, eq=False)
class RenderedClip:
    frames: np.ndarray  # (T, H, W, 3) uint8
    artifacts: tuple[InjectedArtifact, ...]
    scene: Scene


def isoformat(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _seed(*parts: object) -> int:
    """A 63-bit seed from stable parts (never Python's salted ``hash``)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _short_id(prefix: str, *parts: object) -> str:
    return prefix + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:12]


def build_catalog(config: ZooConfig) -> list[CatalogItem]:
    """All items, in generator order then pair index, each pair as (real, fake)."""
    items: list[CatalogItem] = []
    for generator in config.generators:
        spec = get_generator(generator)
        release = config.release_time(generator)
        for index in range(config.pairs_per_generator):
            scene_seed = _seed("scene", config.seed, generator, index)
            artifact_seed = _seed("artifacts", config.seed, generator, index)
            n_frames = _frame_count(config, scene_seed)
            scene = scene_for(spec, scene_seed, width=config.width, height=config.height,
                              fps=config.fps, n_frames=n_frames)
            pair_id = _short_id("p", config.seed, generator, index)
            published = release + index * config.publish_interval
            for label, source, prompt in (("real", REAL, scene.prompt),
                                          ("fake", generator, spec.styled_prompt(scene.prompt))):
                items.append(CatalogItem(
                    item_id=_short_id("v", config.seed, generator, index, label),
                    pair_id=pair_id, generator=source, label=label, prompt=prompt,
                    licence=config.licence, published_at=published, scene_seed=scene_seed,
                    artifact_seed=artifact_seed, pair_generator=generator, pair_index=index,
                    n_frames=n_frames, fps=config.fps, width=config.width,
                    height=config.height,
                ))
    return items


def _frame_count(config: ZooConfig, scene_seed: int) -> int:
    lo, hi = config.duration_s
    duration = np.random.default_rng(scene_seed).uniform(lo, hi) if hi > lo else lo
    return max(4, int(round(duration * config.fps)))


def render_clip(item: CatalogItem) -> RenderedClip:
    """The item's frames and ground truth in memory (no files): what ``render_item`` encodes."""
    spec = get_generator(item.pair_generator)
    scene = scene_for(spec, item.scene_seed, width=item.width, height=item.height, fps=item.fps,
                      n_frames=item.n_frames)
    if item.label == "real":
        return RenderedClip(render_frames(scene), (), scene)
    fake = generate_fake(spec, scene, item.artifact_seed)
    return RenderedClip(fake.frames, fake.artifacts, fake.scene)


def item_metadata(item: CatalogItem, clip: RenderedClip) -> dict[str, Any]:
    meta = item.as_dict()
    meta["artifacts"] = [a.truth.as_dict() for a in clip.artifacts]
    meta["scene"] = clip.scene.describe()
    meta["render_version"] = ZOO_RENDER_VERSION
    return meta


def item_paths(item: CatalogItem, out_dir: str | Path) -> RenderedItem:
    out = Path(out_dir)
    return RenderedItem(out / f"{item.item_id}.mp4", out / f"{item.item_id}.masks.npz",
                        out / f"{item.item_id}.json")


def render_item(item: CatalogItem, config: ZooConfig, out_dir: str | Path) -> RenderedItem:
    """Write ``<id>.mp4``, ``<id>.masks.npz`` and ``<id>.json`` under ``out_dir``, each atomically.

    The metadata file is written last, so its presence means the item is complete. The masks
    file holds ``masks`` (N, T, H, W) bool in the order of the metadata's ``artifacts``, plus
    ``types``, ``t`` and ``bbox`` so that it stands on its own.
    """
    paths = item_paths(item, out_dir)
    paths.meta_path.parent.mkdir(parents=True, exist_ok=True)
    clip = render_clip(item)
    write_video(clip.frames, config.fps, paths.media_path, gop=config.gop, crf=config.crf)
    n = len(clip.artifacts)
    masks = (np.stack([a.mask for a in clip.artifacts]) if n
             else np.zeros((0, item.n_frames, item.height, item.width), dtype=bool))
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, masks=masks,
        types=np.array([a.truth.type for a in clip.artifacts], dtype="<U64"),
        t=np.array([a.truth.t for a in clip.artifacts], dtype=np.float64).reshape(n, 2),
        bbox=np.array([a.truth.bbox for a in clip.artifacts], dtype=np.float64).reshape(n, 4),
    )
    _atomic_write(paths.mask_path, buffer.getvalue())
    meta = item_metadata(item, clip)
    meta["media_file"], meta["mask_file"] = paths.media_path.name, paths.mask_path.name
    _atomic_write(paths.meta_path, json.dumps(meta, indent=1).encode())
    return paths


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(data):x}.part")
    tmp.write_bytes(data)
    tmp.replace(path)
