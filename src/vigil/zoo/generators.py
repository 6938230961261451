"""The zoo's synthetic "generators": each one a style of failure, not a style of picture.

A generator's fake is its paired real clip (same scene seed, same frames) with artifacts injected,
so a generator differs from another only in *which* artifacts it makes, how many and how strong,
what scenes its showcase favours, how its prompts read, and when it was released. Nothing global
marks a generator's fakes: frame size, fps, duration, colour and encoding are those of the real.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

import numpy as np

from vigil.zoo import artifacts as A
from vigil.zoo.artifacts import ArtifactRequest, FakeClip, inject_artifacts, is_applicable
from vigil.zoo.scenes import Scene, ScenePreferences, make_scene

REAL = "real"


@dataclass(frozen=True)
class GeneratorSpec:
    """One source in the zoo: the real camera (no artifacts) or a synthetic generator."""

    name: str
    description: str
    artifact_weights: Mapping[str, float]  # L3 type -> relative weight; empty for the real source
    artifact_count: tuple[int, int] = (1, 2)
    strength: tuple[float, float] = (0.5, 1.0)
    scene: ScenePreferences = field(default_factory=ScenePreferences)
    prompt_style: str = "{prompt}"  # how the generator's showcase words the prompt
    release_offset: timedelta = timedelta(0)  # from the catalog epoch

    @property
    def is_real(self) -> bool:
        return not self.artifact_weights

    @property
    def artifact_types(self) -> tuple[str, ...]:
        return tuple(sorted(self.artifact_weights))

    def styled_prompt(self, prompt: str) -> str:
        return self.prompt_style.format(prompt=prompt)


def _mix(**weights: float) -> Mapping[str, float]:
    names = {
        "jitter": A.TEXTURE_JITTERING, "blur": A.UNNATURAL_BLUR,
        "saturation": A.COLOR_OVERSATURATION, "lighting": A.LIGHTING_INCONSISTENCY,
        "camera": A.CAMERA_MOTION_INCONSISTENCY, "vanish": A.OBJECT_DISAPPEARANCE,
        "appear": A.OBJECT_APPEARANCE, "distort": A.SHAPE_DISTORTION,
        "physics": A.PHYSICAL_LAW, "movement": A.UNNATURAL_MOVEMENT,
    }
    return MappingProxyType({names[k]: v for k, v in weights.items()})


def _motions(bounce: float, slide: float, drift: float) -> Mapping[str, float]:
    return MappingProxyType({"bounce": bounce, "slide": slide, "drift": drift})


GENERATORS: Mapping[str, GeneratorSpec] = MappingProxyType({
    REAL: GeneratorSpec(
        name=REAL,
        description="Real footage: the untouched clip each fake was generated from.",
        artifact_weights=MappingProxyType({}),
        artifact_count=(0, 0),
    ),
    "lumen-v1": GeneratorSpec(
        name="lumen-v1",
        description="An early text-to-video model: surfaces boil and smear.",
        artifact_weights=_mix(jitter=0.4, blur=0.3, saturation=0.2, distort=0.1),
        artifact_count=(1, 2), strength=(0.6, 1.0),
        scene=ScenePreferences(photo_probability=0.3, object_count=(1, 2),
                               motion_weights=_motions(0.6, 0.2, 0.2)),
        prompt_style="Cinematic shot, 35mm film: {prompt}",
        release_offset=timedelta(days=0),
    ),
    "driftwave-2": GeneratorSpec(
        name="driftwave-2",
        description="Loses track of objects: things vanish, pop up and wander.",
        artifact_weights=_mix(vanish=0.35, appear=0.3, movement=0.25, jitter=0.1),
        artifact_count=(1, 2), strength=(0.5, 0.9),
        scene=ScenePreferences(photo_probability=0.15, object_count=(2, 3),
                               motion_weights=_motions(0.2, 0.4, 0.4)),
        prompt_style="{prompt} Dreamy, floating atmosphere.",
        release_offset=timedelta(days=14),
    ),
    "mirage-xl": GeneratorSpec(
        name="mirage-xl",
        description="Image-to-video over photographs: colour and light go wrong, the camera slips.",
        artifact_weights=_mix(saturation=0.3, lighting=0.35, camera=0.2, blur=0.15),
        artifact_count=(1, 2), strength=(0.5, 1.0),
        scene=ScenePreferences(photo_probability=0.75, object_count=(1, 2),
                               photo_object_count=(0, 1)),
        prompt_style="Photorealistic, 4K, ultra detailed. {prompt}",
        release_offset=timedelta(days=30),
    ),
    "kinetica-1.5": GeneratorSpec(
        name="kinetica-1.5",
        description="Fluid motion, broken physics: objects fall up, sink and jump.",
        artifact_weights=_mix(physics=0.45, movement=0.25, distort=0.2, vanish=0.1),
        artifact_count=(1, 2), strength=(0.5, 1.0),
        scene=ScenePreferences(photo_probability=0.0, object_count=(2, 3),
                               motion_weights=_motions(0.65, 0.35, 0.0)),
        prompt_style="{prompt} Realistic physics, smooth motion.",
        release_offset=timedelta(days=45),
    ),
    "oneiro-3": GeneratorSpec(
        name="oneiro-3",
        description="A polished model: one subtle flaw per clip, of any kind.",
        artifact_weights=_mix(jitter=1, blur=1, saturation=1, lighting=1, vanish=1, distort=1,
                              physics=1, movement=1),
        artifact_count=(1, 1), strength=(0.3, 0.6),
        scene=ScenePreferences(photo_probability=0.5, object_count=(1, 3),
                               photo_object_count=(1, 2)),
        prompt_style="{prompt}",
        release_offset=timedelta(days=60),
    ),
    "nova-6": GeneratorSpec(
        name="nova-6",
        description="The newcomer: shapes melt, the camera stutters, things appear from nowhere.",
        artifact_weights=_mix(distort=0.3, camera=0.3, appear=0.2, lighting=0.2),
        artifact_count=(1, 3), strength=(0.5, 0.9),
        scene=ScenePreferences(photo_probability=0.4, object_count=(1, 3),
                               photo_object_count=(1, 2), motion_weights=_motions(0.4, 0.2, 0.4)),
        prompt_style="Generated with nova-6 — {prompt}",
        release_offset=timedelta(days=120),
    ),
})


def fake_generator_names() -> tuple[str, ...]:
    """Names of the synthetic generators, in release order."""
    fakes = [g for g in GENERATORS.values() if not g.is_real]
    return tuple(g.name for g in sorted(fakes, key=lambda g: (g.release_offset, g.name)))


def get_generator(name: str) -> GeneratorSpec:
    try:
        return GENERATORS[name]
    except KeyError:
        raise KeyError(f"unknown generator {name!r}; known: {sorted(GENERATORS)}") from None


def plan_artifacts(spec: GeneratorSpec, scene: Scene, rng: np.random.Generator
                   ) -> tuple[ArtifactRequest, ...]:
    """Draw this generator's artifacts for one scene: types from its mix that can apply, no repeats.

    Object-level types need distinct eligible objects, so the plan counts how many are left.
    """
    if spec.is_real:
        return ()
    count = int(rng.integers(spec.artifact_count[0], spec.artifact_count[1] + 1))
    pool = dict(spec.artifact_weights)
    planned: list[ArtifactRequest] = []
    object_budget = len(A.eligible_targets(A.OBJECT_DISAPPEARANCE, scene))
    while len(planned) < count and pool:
        usable = {t: w for t, w in pool.items() if is_applicable(t, scene)
                  and (t not in A.OBJECT_TYPES or object_budget > 0)}
        if not usable:
            break
        names = sorted(usable)
        p = np.array([usable[n] for n in names], dtype=float)
        chosen = names[int(rng.choice(len(names), p=p / p.sum()))]
        pool.pop(chosen)
        if chosen in A.OBJECT_TYPES:
            object_budget -= 1
        planned.append(ArtifactRequest(chosen, float(rng.uniform(*spec.strength))))
    return tuple(planned)


def scene_for(spec: GeneratorSpec, scene_seed: int, *, width: int, height: int, fps: float,
              n_frames: int) -> Scene:
    """The real scene a pair starts from: the paired generator's preferences, the pair's seed."""
    return make_scene(scene_seed, spec.scene, width=width, height=height, fps=fps,
                      n_frames=n_frames)


def generate_fake(spec: GeneratorSpec, scene: Scene, artifact_seed: int) -> FakeClip:
    """The paired real and this generator's fake of ``scene`` (deterministic in the seeds)."""
    rng = np.random.default_rng(np.random.SeedSequence([artifact_seed, 0xFA4E]))
    return inject_artifacts(scene, plan_artifacts(spec, scene, rng), rng)
