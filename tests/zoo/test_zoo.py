"""The synthetic generator zoo: scenes, artifacts, generators and the catalog's rendering."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.core.taxonomy import load_taxonomy
from vigil.zoo import artifacts as A
from vigil.zoo.artifacts import ARTIFACT_TYPES, ArtifactRequest, inject_artifacts, is_applicable
from vigil.zoo.catalog import ZooConfig, build_catalog, render_clip, render_item
from vigil.zoo.generators import GENERATORS, REAL, fake_generator_names, generate_fake, scene_for
from vigil.zoo.scenes import PHOTOS, ScenePreferences, _photo_rgb, make_scene, render_frames

SMALL = ZooConfig(pairs_per_generator=3, duration_s=(3.0, 3.0))


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(SMALL)


@pytest.fixture(scope="module")
def rendered_pairs(catalog):
    """(fake item, FakeClip with its paired real) for every pair of the small catalog."""
    out = []
    for item in catalog:
        if item.label != "fake":
            continue
        spec = GENERATORS[item.pair_generator]
        scene = scene_for(spec, item.scene_seed, width=item.width, height=item.height,
                          fps=item.fps, n_frames=item.n_frames)
        out.append((item, generate_fake(spec, scene, item.artifact_seed)))
    return out


def _union_mask(fake_clip) -> np.ndarray:
    mask = np.zeros(fake_clip.frames.shape[:3], dtype=bool)
    for artifact in fake_clip.artifacts:
        mask |= artifact.mask
    return mask


# ----------------------------------------------------------------------------- scenes


def test_scene_is_deterministic_by_seed():
    # given two scenes from one seed and one from another
    first, again, other = make_scene(11), make_scene(11), make_scene(12)
    # when they are rendered
    a, b, c = render_frames(first), render_frames(again), render_frames(other)
    # then the same seed gives the same bytes and another seed gives another clip
    assert a.tobytes() == b.tobytes()
    assert first.prompt == again.prompt
    assert a.shape == c.shape and not np.array_equal(a, c)


def test_scene_defaults_fit_the_spec():
    # given a default scene
    scene = make_scene(3)
    frames = render_frames(scene)
    # then it is 160x120 RGB uint8 at 8 fps, with a prompt that names what is in it
    assert frames.shape == (24, 120, 160, 3) and frames.dtype == np.uint8
    assert scene.fps == 8.0 and scene.duration_s == 3.0
    assert scene.prompt and all(o.name in scene.prompt for o in scene.objects)


def test_procedural_background_is_textured_and_objects_move():
    # given procedural scenes (no photographs)
    prefs = ScenePreferences(photo_probability=0.0, object_count=(1, 3))
    for seed in range(6):
        scene = make_scene(seed, prefs)
        frames = render_frames(scene).astype(np.float32)
        # then the background is not flat, there are 1-3 objects and each one moves on screen
        assert frames[0].std() > 8.0
        assert 1 <= len(scene.objects) <= 3
        for obj in scene.objects:
            boxes = scene.screen_boxes(obj)
            assert np.nanmax(np.abs(np.diff(boxes[:, :2], axis=0))) > 0.5


def test_real_physics_is_plausible():
    # given many procedural scenes with gravity
    prefs = ScenePreferences(photo_probability=0.0, object_count=(3, 3),
                             motion_weights={"bounce": 1.0, "slide": 1.0, "drift": 0.0})
    for seed in range(20):
        scene = make_scene(seed, prefs)
        for obj in scene.objects:
            # then nothing in a real clip sinks below the floor
            bottom = obj.centers[:, 1] + obj.radius
            assert bottom.max() <= scene.floor_y + 1e-6, (seed, obj.name)
            if obj.motion == "bounce":  # and a bouncing object comes back up at least once
                vy = np.diff(obj.centers[:, 1])
                assert (vy > 0).any() or scene.n_frames < 8


def test_photo_scenes_use_bundled_photos_and_keep_the_view_inside():
    # given photo scenes
    prefs = ScenePreferences(photo_probability=1.0)
    for seed in range(8):
        scene = make_scene(seed, prefs)
        world_w, world_h = scene.background.world_size
        view_w = scene.width * scene.camera.scales
        view_h = scene.height * scene.camera.scales
        # then the camera never looks outside the photograph, and it moves
        assert scene.background.name in PHOTOS
        assert (scene.camera.origins >= -1e-6).all()
        assert (scene.camera.origins[:, 0] + view_w <= world_w + 1e-6).all()
        assert (scene.camera.origins[:, 1] + view_h <= world_h + 1e-6).all()
        moved = np.abs(np.diff(scene.camera.origins, axis=0)).sum() + np.ptp(scene.camera.scales)
        assert moved > 1.0


def test_every_photo_loads_offline(monkeypatch):
    # given no network at all
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in PHOTOS:
        # when the photograph is loaded uncached, then it comes from the wheel as RGB
        image = _photo_rgb.__wrapped__(name)
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 128


def test_size_limits_are_enforced():
    with pytest.raises(ValueError):
        make_scene(0, width=161)
    with pytest.raises(ValueError):
        make_scene(0, width=320)


# ----------------------------------------------------------------------------- artifacts


def _scene_where(artifact_type: str, start_seed: int = 0):
    for seed in range(start_seed, start_seed + 200):
        photo = 0.0 if artifact_type == A.PHYSICAL_LAW else 0.3
        scene = make_scene(seed, ScenePreferences(photo_probability=photo, object_count=(1, 3)))
        if is_applicable(artifact_type, scene):
            return scene
    raise AssertionError(f"no scene accepts {artifact_type}")


@pytest.mark.parametrize("artifact_type", ARTIFACT_TYPES)
def test_each_artifact_is_local_visible_and_ground_truthed(artifact_type):
    for start in (0, 50):
        # given a scene this artifact applies to
        scene = _scene_where(artifact_type, start)
        # when it is injected
        clip = inject_artifacts(scene, [ArtifactRequest(artifact_type, 0.6)],
                                np.random.default_rng(start))
        # then exactly that artifact is reported, with a non-empty mask
        assert [a.truth.type for a in clip.artifacts] == [artifact_type]
        artifact = clip.artifacts[0]
        assert artifact.mask.any()
        diff = np.abs(clip.frames.astype(np.int16) - clip.real.astype(np.int16)).max(axis=-1)
        # nothing changes outside the mask, and inside it the change is visible
        assert diff[~artifact.mask].max(initial=0) == 0
        assert diff[artifact.mask].mean() > 3.0
        # and it is local: in time (a span shorter than the clip) or in space (part of a frame)
        frames_hit = artifact.mask.any(axis=(1, 2)).mean()
        area = artifact.mask[artifact.mask.any(axis=(1, 2))].mean()
        assert frames_hit < 1.0 or area < 0.5


def test_artifact_types_are_taxonomy_l3_names():
    taxonomy = load_taxonomy()
    A.check_types_in_taxonomy()
    for spec in GENERATORS.values():
        for artifact_type in spec.artifact_weights:
            assert taxonomy.is_l3(artifact_type), (spec.name, artifact_type)


def test_zoo_has_enough_generators_and_types():
    fakes = fake_generator_names()
    assert REAL in GENERATORS and GENERATORS[REAL].is_real
    assert len(fakes) >= 5
    types = {t for name in fakes for t in GENERATORS[name].artifact_weights}
    assert len(types) >= 6
    # and generators really differ in their mix
    mixes = {tuple(sorted(GENERATORS[n].artifact_weights.items())) for n in fakes}
    assert len(mixes) == len(fakes)


def test_rendered_catalog_covers_many_types(rendered_pairs):
    seen = {a.truth.type for _, clip in rendered_pairs for a in clip.artifacts}
    taxonomy = load_taxonomy()
    assert seen and all(taxonomy.is_l3(t) for t in seen)
    assert len(seen) >= 6


def test_pairs_differ_only_inside_the_masks(rendered_pairs):
    for item, clip in rendered_pairs:
        # given a fake and its paired real
        assert clip.frames.shape == clip.real.shape == (item.n_frames, item.height, item.width, 3)
        assert clip.artifacts, item.item_id
        mask = _union_mask(clip)
        diff = np.abs(clip.frames.astype(np.int16) - clip.real.astype(np.int16))
        # then every pixel outside all masks is identical, and the fake is not the real
        assert diff[~mask].max(initial=0) == 0, item.item_id
        assert diff[mask].max() > 20


def test_ground_truth_is_valid_and_matches_the_masks(rendered_pairs):
    for item, clip in rendered_pairs:
        for artifact in clip.artifacts:
            truth = artifact.truth
            x1, y1, x2, y2 = truth.bbox
            t0, t1 = truth.t
            # then boxes are normalised and non-empty, spans inside the clip
            assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
            assert 0.0 <= t0 < t1 <= item.duration_s + 1e-9
            # and they are exactly the mask's extent
            assert artifact.mask.shape == (item.n_frames, item.height, item.width)
            frames = np.flatnonzero(artifact.mask.any(axis=(1, 2)))
            assert t0 == pytest.approx(frames[0] / item.fps)
            assert t1 == pytest.approx((frames[-1] + 1) / item.fps)
            cols = np.flatnonzero(artifact.mask.any(axis=(0, 1)))
            rows = np.flatnonzero(artifact.mask.any(axis=(0, 2)))
            assert (x1, y1) == pytest.approx((cols[0] / item.width, rows[0] / item.height),
                                             abs=1e-4)
            assert (x2, y2) == pytest.approx(((cols[-1] + 1) / item.width,
                                              (rows[-1] + 1) / item.height), abs=1e-4)


def test_no_global_tell_between_fakes_and_their_reals(rendered_pairs):
    mean_shift, std_shift, brighter = [], [], []
    for item, clip in rendered_pairs:
        real, fake = clip.real.astype(np.float32), clip.frames.astype(np.float32)
        # same size, frame count (so same fps x duration) and dtype
        assert fake.shape == real.shape and clip.frames.dtype == clip.real.dtype
        # per channel: no tint
        channel_shift = np.abs(fake.mean(axis=(0, 1, 2)) - real.mean(axis=(0, 1, 2)))
        assert channel_shift.max() < 8.0, item.item_id
        mean_shift.append(fake.mean() - real.mean())
        std_shift.append(fake.std() - real.std())
        brighter.append(fake.mean() > real.mean())
    # on average, brightness and contrast of fakes match their reals
    assert abs(np.mean(mean_shift)) < 1.0
    assert abs(np.mean(std_shift)) < 1.5
    assert np.median(np.abs(mean_shift)) < 1.0
    # and a brightness rule cannot tell them apart
    assert 0.2 <= np.mean(brighter) <= 0.8


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), generator=st.sampled_from(fake_generator_names()))
def test_any_seed_gives_valid_ground_truth(seed, generator):
    # given any scene seed and generator
    spec = GENERATORS[generator]
    scene = scene_for(spec, seed, width=96, height=64, fps=8.0, n_frames=16)
    clip = generate_fake(spec, scene, seed + 1)
    # then the fake has at least one artifact from its generator's mix (or the fallback),
    # each ground truth valid, and nothing changes outside the masks
    assert clip.artifacts
    for artifact in clip.artifacts:
        assert artifact.truth.type in spec.artifact_weights or (
            artifact.truth.type == A.TEXTURE_JITTERING)
        x1, y1, x2, y2 = artifact.truth.bbox
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        assert 0 <= artifact.truth.t[0] < artifact.truth.t[1] <= 2.0
    diff = np.abs(clip.frames.astype(np.int16) - clip.real.astype(np.int16))
    assert diff[~_union_mask(clip)].max(initial=0) == 0


# ----------------------------------------------------------------------------- catalog


def test_catalog_is_deterministic_and_pairs_items(catalog):
    # given the catalog built twice
    again = build_catalog(SMALL)
    assert [i.as_dict() for i in catalog] == [i.as_dict() for i in again]
    # then ids are unique, each pair is one real and one fake sharing seed and pair id
    assert len({i.item_id for i in catalog}) == len(catalog)
    by_pair: dict[str, list] = {}
    for item in catalog:
        by_pair.setdefault(item.pair_id, []).append(item)
    assert len(by_pair) == len(SMALL.generators) * SMALL.pairs_per_generator
    for members in by_pair.values():
        real, fake = sorted(members, key=lambda i: i.label == "fake")
        assert (real.label, real.generator) == ("real", REAL)
        assert fake.label == "fake" and fake.generator == fake.pair_generator
        assert real.scene_seed == fake.scene_seed and real.n_frames == fake.n_frames
        assert real.published_at == fake.published_at
        assert real.prompt and fake.prompt and real.licence == SMALL.licence


def test_catalog_follows_the_release_schedule():
    epoch = datetime(2026, 3, 1, tzinfo=timezone.utc)
    late = epoch + timedelta(days=400)
    config = ZooConfig(pairs_per_generator=3, generators=("lumen-v1", "nova-6"), epoch=epoch,
                       publish_interval=timedelta(hours=2), releases={"nova-6": late})
    items = build_catalog(config)
    for item in items:
        release = late if item.pair_generator == "nova-6" else epoch
        assert item.published_at == release + item.pair_index * timedelta(hours=2)
    # a different seed gives different scenes
    other = build_catalog(ZooConfig(seed=1, pairs_per_generator=3,
                                    generators=("lumen-v1", "nova-6")))
    assert {i.scene_seed for i in items}.isdisjoint({i.scene_seed for i in other})


@pytest.mark.parametrize("bad", [
    {"width": 161}, {"height": 300}, {"generators": ("no-such-model",)},
    {"generators": ("real",)}, {"epoch": datetime(2026, 1, 1)}, {"fps": 0},
    {"duration_s": (3.0, 2.0)}, {"releases": {"nova-6": datetime(2026, 1, 1, tzinfo=timezone.utc)},
                                 "generators": ("lumen-v1",)},
])
def test_config_rejects_bad_values(bad):
    with pytest.raises((ValueError, KeyError)):
        ZooConfig(**bad)


def test_render_item_is_deterministic_decodable_and_quick(tmp_path, catalog):
    fake = next(i for i in catalog if i.label == "fake")
    real = next(i for i in catalog if i.label == "real" and i.pair_id == fake.pair_id)
    # when a fake is rendered twice into two folders and its real once
    started = time.perf_counter()
    first = render_item(fake, SMALL, tmp_path / "a")
    second = render_item(fake, SMALL, tmp_path / "b")
    real_paths = render_item(real, SMALL, tmp_path / "a")
    per_clip = (time.perf_counter() - started) / 3
    # then frames (in memory), masks and metadata are identical bytes
    assert render_clip(fake).frames.tobytes() == render_clip(fake).frames.tobytes()
    assert first.meta_path.read_bytes() == second.meta_path.read_bytes()
    with np.load(first.mask_path) as a, np.load(second.mask_path) as b:
        assert set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    # and the mp4 decodes with the catalog's frame count and size
    with av.open(str(first.media_path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == fake.n_frames
    assert decoded[0].shape == (fake.height, fake.width, 3)
    # the metadata carries the ground truth, and the masks file matches it
    meta = json.loads(first.meta_path.read_text())
    assert meta["label"] == "fake" and meta["pair_id"] == fake.pair_id and meta["artifacts"]
    with np.load(first.mask_path) as masks:
        assert masks["masks"].shape == (len(meta["artifacts"]), fake.n_frames, fake.height,
                                        fake.width)
        assert list(masks["types"]) == [a["type"] for a in meta["artifacts"]]
        assert masks["bbox"].tolist() == [a["bbox"] for a in meta["artifacts"]]
    real_meta = json.loads(real_paths.meta_path.read_text())
    assert real_meta["artifacts"] == [] and real_meta["label"] == "real"
    with np.load(real_paths.mask_path) as masks:
        assert masks["masks"].shape[0] == 0
    # rendering stays quick on CPU (target 0.3 s; generous bound against a busy machine)
    assert per_clip < 1.0, f"{per_clip:.3f} s per clip"
