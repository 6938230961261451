"""Synthetic annotations from zoo ground truth: valid grammar, exact grounding, varied phrasing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.annotate.synthetic import (
    SYNTHETIC_ANNOTATOR,
    SYNTHETIC_VERSION,
    synthetic_annotation,
    synthetic_explanation,
)
from vigil.core.grammar import TIME_EPSILON_S, check, parse
from vigil.core.records import ArtifactTruth
from vigil.core.taxonomy import load_taxonomy

TAX = load_taxonomy()
L3 = TAX.l3_names
PV, TV = "grammar-v1", TAX.version


def sid(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def annotate(sample, label, artifacts, duration, **kw):
    return synthetic_annotation(sample, label, artifacts, duration, prompt_version=PV,
                                taxonomy_version=TV, **kw)


@st.composite
def ground_truth(draw):
    duration = draw(st.floats(0.2, 30.0, allow_nan=False))
    n = draw(st.integers(1, 4))
    arts = []
    for i in range(n):
        t0 = draw(st.floats(0.0, duration * 0.99, allow_nan=False))
        t1 = draw(st.floats(t0, duration, allow_nan=False).filter(lambda v, t0=t0: v > t0))
        x1 = draw(st.floats(0.0, 0.99, allow_nan=False))
        x2 = draw(st.floats(x1, 1.0, allow_nan=False).filter(lambda v, x1=x1: v > x1))
        y1 = draw(st.floats(0.0, 0.99, allow_nan=False))
        y2 = draw(st.floats(y1, 1.0, allow_nan=False).filter(lambda v, y1=y1: v > y1))
        arts.append(ArtifactTruth(type=draw(st.sampled_from(L3)), t=(t0, t1),
                                  bbox=(x1, y1, x2, y2), mask_index=i))
    return duration, arts, draw(st.integers(0, 2**32))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ground_truth())
def test_fake_explanations_are_valid_and_grounded_exactly(gt):
    duration, arts, seed = gt
    ann = annotate(sid(seed), "fake", arts, duration, seed=seed,
                   mask_uris={i: f"s3://vigil/masks/{i}.npz" for i in range(len(arts))})
    assert ann.status == "accepted", ann.rejection_reason
    assert ann.violations == ()
    out = check(ann.explanation, duration_s=duration)
    assert out.ok, out.violations
    assert out.answer == "Fake" and out.style == "skyra"
    # The text and the record carry the same evidence, exactly (order may differ in the text).
    key = lambda e: (e.type, e.t, e.bbox)  # noqa: E731
    assert sorted(map(key, out.evidence)) == sorted(map(key, ann.artifacts))
    # ... which is the ground truth at the grammar's 2-decimal rendering (widened by at most one
    # 0.01 step when rounding would collapse a tiny span or box).
    for gt_a, rec in zip(arts, ann.artifacts):
        assert rec.type == gt_a.type
        assert all(abs(a - b) <= 0.01 + 1e-9 for a, b in zip(rec.t, gt_a.t))
        assert all(abs(a - b) <= 0.01 + 1e-9 for a, b in zip(rec.bbox, gt_a.bbox))
        assert rec.mask_uri == f"s3://vigil/masks/{gt_a.mask_index}.npz"
    assert synthetic_explanation("fake", arts, duration, seed=seed) == ann.explanation


def test_rounding_is_exact_for_typical_ground_truth():
    arts = [ArtifactTruth(type="Shape Distortion", t=(1.2345, 2.5), bbox=(0.1234, 0.25, 0.5, 0.875)),
            ArtifactTruth(type="Unnatural Blur", t=(0.0, 4.0), bbox=(0.0, 0.0, 1.0, 1.0))]
    out = parse(synthetic_explanation("fake", arts, 4.0, seed=3))
    got = {e.type: (e.t, e.bbox) for e in out.evidence}
    assert got["Shape Distortion"] == ((1.23, 2.5), (0.12, 0.25, 0.5, 0.88))
    assert got["Unnatural Blur"] == ((0.0, 4.0), (0.0, 0.0, 1.0, 1.0))


@settings(max_examples=100, deadline=None)
@given(st.floats(0.05, 60.0, allow_nan=False), st.integers(0, 2**32))
def test_real_explanations_point_at_normal_segments(duration, seed):
    ann = annotate(sid(seed), "real", [], duration, seed=seed)
    assert ann.status == "accepted", ann.rejection_reason
    out = check(ann.explanation, duration_s=duration)
    assert out.ok, out.violations
    assert out.answer == "Real"
    assert 1 <= len(out.evidence) <= 3
    for ev in out.evidence:
        assert ev.type is None and ev.well_formed
        assert 0 <= ev.t[0] < ev.t[1] <= duration + 1e-9
        x1, y1, x2, y2 = ev.bbox
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
    assert [(e.t, e.bbox) for e in out.evidence] == [(a.t, a.bbox) for a in ann.artifacts]
    assert all(a.type is None for a in ann.artifacts)
    assert "<type>" not in ann.explanation


@pytest.mark.parametrize("l3", ["Texture Jittering", "Shape Distortion", "Text Distortion"])
def test_phrasing_varies_for_the_same_artifact(l3):
    art = [ArtifactTruth(type=l3, t=(1.0, 2.0), bbox=(0.2, 0.2, 0.6, 0.7))]
    texts = [annotate(sid(i), "fake", art, 5.0).explanation for i in range(100)]
    assert len(set(texts)) >= 30
    think = lambda t: parse(t).think  # noqa: E731
    openings = {think(t).split(".")[0] for t in texts}
    closings = {think(t).rstrip(".").split(".")[-1] for t in texts}
    assert len(openings) >= 5 and len(closings) >= 4
    reals = {annotate(sid(i), "real", [], 5.0).explanation for i in range(100)}
    assert len(reals) >= 30


def test_orderings_vary_for_several_artifacts():
    arts = [ArtifactTruth(type=t, t=(i, i + 1.0), bbox=(0.1, 0.1, 0.5, 0.5))
            for i, t in enumerate(["Unnatural Blur", "Lighting Inconsistency", "Shape Distortion"])]
    orders = {tuple(e.type for e in parse(synthetic_explanation("fake", arts, 4.0, seed=s)).evidence)
              for s in range(60)}
    assert len(orders) >= 3


def test_deterministic_per_seed_and_sample():
    art = [ArtifactTruth(type="Unnatural Blur", t=(0.5, 1.5), bbox=(0.1, 0.1, 0.4, 0.4))]
    assert synthetic_explanation("fake", art, 3.0, seed=7) == synthetic_explanation("fake", art, 3.0, seed=7)
    a, b = annotate(sid(1), "fake", art, 3.0), annotate(sid(1), "fake", art, 3.0)
    assert (a.explanation, a.artifacts) == (b.explanation, b.artifacts)
    r1, r2 = annotate(sid(2), "real", [], 3.0), annotate(sid(2), "real", [], 3.0)
    assert (r1.explanation, r1.artifacts) == (r2.explanation, r2.artifacts)
    assert annotate(sid(1), "fake", art, 3.0, seed=11).explanation == synthetic_explanation(
        "fake", art, 3.0, seed=11)


def test_provenance_and_record_shape():
    art = [ArtifactTruth(type="Unnatural Blur", t=(0.5, 1.5), bbox=(0.1, 0.1, 0.4, 0.4), mask_index=3)]
    ann = annotate(sid("p"), "fake", art, 3.0, mask_uris={3: "s3://m/3.npz"})
    assert ann.provenance.kind == "synthetic"
    assert ann.provenance.annotator == SYNTHETIC_ANNOTATOR
    assert ann.provenance.annotator_version == SYNTHETIC_VERSION
    assert (ann.provenance.prompt_version, ann.provenance.taxonomy_version) == (PV, TV)
    assert ann.artifacts[0].mask_uri == "s3://m/3.npz"
    assert annotate(sid("p"), "fake", art, 3.0).artifacts[0].mask_uri is None


@pytest.mark.parametrize("label,artifacts,duration,reason", [
    ("fake", [ArtifactTruth.model_construct(type="Melting Teapot", t=(1.0, 2.0),
                                            bbox=(0.1, 0.1, 0.5, 0.5), mask_index=None)],
     4.0, "not an L3 name"),
    ("fake", [ArtifactTruth.model_construct(type="Unnatural Blur", t=(1.0, 2.0),
                                            bbox=(0.1, 0.1, 1.5, 0.5), mask_index=None)],
     4.0, "bbox"),
    ("fake", [{"type": "Unnatural Blur", "t": [1.0, 2.0], "bbox": [-0.2, 0.1, 0.5, 0.5]}],
     4.0, "bbox"),
    ("fake", [ArtifactTruth(type="Unnatural Blur", t=(3.0, 9.0), bbox=(0.1, 0.1, 0.5, 0.5))],
     4.0, "ends after the clip"),
    ("fake", [ArtifactTruth(type="Unnatural Blur", t=(2.0, 1.0), bbox=(0.1, 0.1, 0.5, 0.5))],
     4.0, "start < end"),
    ("fake", [ArtifactTruth(type="Unnatural Blur", t=(float("nan"), 1.0), bbox=(0.1, 0.1, 0.5, 0.5))],
     4.0, "not finite"),
    ("fake", [], 4.0, "without ground-truth artifacts"),
    ("real", [ArtifactTruth(type="Unnatural Blur", t=(1.0, 2.0), bbox=(0.1, 0.1, 0.5, 0.5))],
     4.0, "real clip cannot carry artifacts"),
    ("real", [], 0.0, "duration_s"),
    ("fake", ["not an artifact"], 4.0, "invalid ground truth"),
])
def test_invalid_ground_truth_is_a_rejected_record(label, artifacts, duration, reason):
    ann = annotate(sid(reason), label, artifacts, duration)
    assert ann.status == "rejected"
    assert reason in ann.rejection_reason
    with pytest.raises(ValueError):
        synthetic_explanation(label, artifacts, duration, seed=0)


def test_unknown_type_records_the_grammar_violation():
    bad = ArtifactTruth.model_construct(type="Melting Teapot", t=(1.0, 2.0),
                                        bbox=(0.1, 0.1, 0.5, 0.5), mask_index=None)
    ann = annotate(sid("u"), "fake", [bad], 4.0)
    assert ann.status == "rejected" and "unknown_type" in ann.violations


def test_unknown_label_raises():
    with pytest.raises(ValueError, match="label"):
        annotate(sid("x"), "unknown", [], 4.0)


def test_tiny_ground_truth_still_renders_validly():
    arts = [ArtifactTruth(type="Texture Jittering", t=(1.001, 1.003), bbox=(0.501, 0.2, 0.503, 0.204))]
    ann = annotate(sid("tiny"), "fake", arts, 1.003)
    assert ann.status == "accepted", ann.rejection_reason
    (ev,) = check(ann.explanation, duration_s=1.003 + TIME_EPSILON_S).evidence
    assert ev.t[0] <= 1.001 and ev.t[1] >= 1.003
    assert ev.bbox[0] <= 0.501 and ev.bbox[2] >= 0.503
