"""Synthetic annotations: the zoo's ground truth written as grounded explanations.

The zoo knows exactly which artifact it injected, when and where, so its clips can be annotated
without a teacher or a human. The explanation is a *training target*: if every target were the
same sentence with numbers swapped in, the detector would learn that sentence rather than the
artifacts. So the text is assembled from a phrasing bank (openings, several descriptions per L3
type, connectors, orderings, closings) with a seeded RNG: varied across samples, identical for
the same seed, so a dataset version is reproducible.

Reals are explained the way Skyra explains them: by pointing at 1–3 *normal segments*
(``<t>[s, e]</t> at <bbox>[…]</bbox>`` with no ``<type>``) and saying why they look natural.

Every text goes through :func:`vigil.core.grammar.check` before it becomes a record; ground truth
that cannot be written as a valid explanation (a type outside the taxonomy, a box outside the
frame, a real clip with artifacts…) yields a ``rejected`` record with the reason, never an
exception, so one bad item never stops an annotation run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from vigil.core.annotation import AnnotatedArtifact, Annotation, Provenance
from vigil.core.grammar import TIME_EPSILON_S, Evidence, check, render, render_evidence
from vigil.core.records import ArtifactTruth
from vigil.core.taxonomy import Taxonomy, load_taxonomy

SYNTHETIC_ANNOTATOR = "zoo-ground-truth"
# Bump whenever the phrasing bank or the way evidence is rounded/placed changes: annotations made
# by an older bank are then stale (vigil.core.annotation.is_current) and get regenerated.
SYNTHETIC_VERSION = "1"

MAX_NORMAL_SEGMENTS = 3

# ------------------------------------------------------------------------------ phrasing bank
# "{ev}" marks where the evidence tag goes. Descriptions start lower-case; the connector in front
# decides the capital. Keep grammar tags ("<...>") out of every phrase: render() refuses them.

_FAKE_OPENINGS = (
    "Let me examine the clip frame by frame.",
    "Watching the video closely, several details do not hold up.",
    "I will go through the clip looking for traces of generation.",
    "At first glance the scene looks plausible, but a closer look reveals problems.",
    "I scanned the video for spatial and temporal inconsistencies.",
    "The clip needs a careful look at texture, lighting and motion.",
    "The overall composition is coherent, so the decision rests on local details.",
    "Let me check whether motion, lighting and textures behave like real footage.",
    "I compared neighbouring frames to see whether the scene stays physically consistent.",
    "The video is short, so every frame matters; here is what I found.",
)

_FIRST_CONNECTORS = ("", "First,", "To begin with,", "Most noticeably,", "Right away,")
_NEXT_CONNECTORS = ("", "Next,", "Also,", "In addition,", "Moreover,", "Further on,",
                    "Looking elsewhere,", "On top of that,")

_TYPE_PHRASES: dict[str, tuple[str, ...]] = {
    "Texture Jittering": (
        "I notice {ev}: fine surface detail shimmers and crawls between consecutive frames "
        "instead of staying attached to the object.",
        "the texture in one region is unstable, showing {ev}, with high-frequency patterns "
        "boiling from frame to frame.",
        "there is {ev}; the pattern on the surface jitters while the object itself barely moves.",
        "small details flicker and re-form every few frames, a clear case of {ev}.",
    ),
    "Unnatural Blur": (
        "a patch of the frame is smeared, that is {ev}, while everything around it stays sharp.",
        "I see {ev}: the region loses detail abruptly, matching neither focus nor motion.",
        "there is {ev}; the softness follows no depth of field and no movement in the scene.",
        "one area turns mushy for a while, which is {ev}.",
    ),
    "Color Over-saturation": (
        "the colours become implausibly intense, showing {ev}, well beyond what the light "
        "justifies.",
        "I notice {ev}: hues in this area are pushed to saturated, poster-like values.",
        "there is {ev}, where the colour blooms unnaturally compared with the rest of the frame.",
        "a region glows with oversaturated colour, namely {ev}.",
    ),
    "Lighting Inconsistency": (
        "the illumination does not agree with the scene, giving {ev}; brightness changes with no "
        "light source to explain it.",
        "I notice {ev}: this region brightens and darkens on its own while the rest of the frame "
        "stays constant.",
        "there is {ev}, as the shading here contradicts the direction of the main light.",
        "a local change of brightness with no cause in the scene reveals {ev}.",
    ),
    "Camera Motion Inconsistency": (
        "the camera movement breaks down, showing {ev}: the view jumps in a way no physical "
        "camera moves.",
        "I notice {ev}; part of the frame shifts as if the camera moved while the rest stays "
        "still.",
        "there is {ev}, a sudden jolt in the viewpoint that does not match the preceding motion.",
        "the framing lurches unexpectedly, which is {ev}.",
    ),
    "Abnormal Object Disappearance": (
        "an object simply vanishes, which is {ev}, without leaving the frame or being occluded.",
        "I notice {ev}: something present a moment ago is gone with nothing blocking it.",
        "there is {ev}; the object dissolves into the background mid-shot.",
        "an object fades out of existence, a case of {ev}.",
    ),
    "Abnormal Object Appearance": (
        "an object pops into existence, {ev}, without entering from the edge of the frame.",
        "I notice {ev}: a new element materialises out of nowhere.",
        "there is {ev}; something appears in the scene with no plausible cause.",
        "a new object emerges from empty space, which is {ev}.",
    ),
    "Shape Distortion": (
        "the object's outline warps, showing {ev}, bending in ways a rigid body cannot.",
        "I notice {ev}: the shape stretches and melts over a few frames.",
        "there is {ev}; its contours deform instead of keeping a consistent form.",
        "an object loses its proportions for a moment, a clear case of {ev}.",
    ),
    "Violation of Physical Law": (
        "the motion ignores physics, which is {ev}; the object moves against gravity and "
        "momentum.",
        "I notice {ev}: the trajectory changes with no force acting on it.",
        "there is {ev}, as the object floats, stops or accelerates in an impossible way.",
        "an object behaves as if gravity did not apply, showing {ev}.",
    ),
    "Unnatural General Object Movement": (
        "the object moves unnaturally, showing {ev}, with jerky, stuttering motion.",
        "I notice {ev}: the movement speeds up and stalls without any reason.",
        "there is {ev}; the path it follows is erratic in a way real objects do not move.",
        "an object twitches and drifts implausibly, which is {ev}.",
    ),
}

# For L3 names without their own phrases (the taxonomy grows faster than this bank).
_GENERIC_PHRASES = (
    "I notice {ev}, which does not occur in genuine footage.",
    "there is {ev}: this part of the video breaks what a real recording would show.",
    "the clip shows {ev}, a telltale flaw of generated video.",
    "on close inspection one region reveals {ev}.",
)

_FAKE_CLOSINGS = (
    "{This} show{s} that the video was produced by a generative model.",
    "Taken together, {this} indicate{s} the clip is AI-generated.",
    "{This} {is} typical of video generators, so the video is fake.",
    "Real footage would not contain {this}; the video is synthetic.",
    "Based on {this}, I conclude the video is not an authentic recording.",
    "Therefore, the video is most likely AI-generated.",
    "A real camera could not have recorded {this}, so the clip is generated.",
)

_REAL_OPENINGS = (
    "Let me examine the clip frame by frame.",
    "I checked the video for texture, lighting and motion inconsistencies.",
    "I looked for the usual traces of generation: warping, flicker, impossible motion.",
    "The scene is simple enough to check thoroughly for artifacts.",
    "Let me go through the footage and test whether it behaves like a real recording.",
    "I compared neighbouring frames to see whether the scene stays physically consistent.",
    "Watching the whole clip, I looked for anything a camera could not have captured.",
)

_NORMAL_PHRASES = (
    "during {ev} the textures stay stable and sharp, with consistent detail across frames.",
    "the region {ev} moves smoothly and keeps its shape, as real objects do.",
    "in the segment {ev}, lighting and shadows change consistently with the camera.",
    "looking at {ev}, the motion follows natural physics with no jitter or warping.",
    "the area {ev} shows natural sensor noise and coherent motion blur.",
    "across {ev}, object outlines and identities remain consistent.",
    "the content {ev} keeps plausible colours and steady illumination.",
)
_NORMAL_CONNECTORS = ("", "Also,", "Likewise,", "Similarly,", "In addition,", "Moreover,")

_REAL_CLOSINGS = (
    "I found no generation artifacts, so the video appears to be real footage.",
    "Everything is consistent with a genuine recording.",
    "No spatial or temporal anomalies are present; the video is real.",
    "The clip shows natural motion and stable textures throughout, so it is authentic.",
    "Without any grounded artifact, the evidence points to a real video.",
    "Nothing here betrays a generator, so I judge the video to be real.",
)


# ------------------------------------------------------------------------------ helpers


def _q(v: float) -> float:
    """The value as the grammar renders and reads it back (two decimals)."""
    return float(f"{v:.2f}")


def _snap_pair(a: float, b: float) -> tuple[float, float]:
    """Round a < b to two decimals; widen outwards when rounding would collapse the pair.

    A 3 ms span or a 0.4 %-wide box is valid ground truth but renders as ``[x, x]``, which the
    grammar rightly calls degenerate; widening to the 0.01 grid keeps it inside the rendering.
    """
    qa, qb = _q(a), _q(b)
    if qa >= qb:
        qa, qb = math.floor(a * 100) / 100, math.ceil(b * 100) / 100
        qa, qb = _q(qa), _q(qb)
    return qa, qb


def _evidence_of(a: ArtifactTruth) -> Evidence:
    t0, t1 = _snap_pair(*a.t)
    x1, x2 = _snap_pair(a.bbox[0], a.bbox[2])
    y1, y2 = _snap_pair(a.bbox[1], a.bbox[3])
    return Evidence(type=a.type, t=(t0, t1), bbox=(x1, y1, x2, y2))


def _sentence(connector: str, phrase: str, ev: Evidence) -> list[str | Evidence]:
    """Connector + phrase with the evidence spliced in at ``{ev}``, capitalised properly."""
    text = f"{connector} {phrase}" if connector else phrase[:1].upper() + phrase[1:]
    before, _, after = text.partition("{ev}")
    return [before, ev, after]


def _join(answer: str, parts: Sequence[str | Evidence]) -> str:
    """The full output: prose and canonical evidence text, joined exactly as written.

    ``grammar.render`` puts a space between every part, which would leave "</bbox> ." before
    punctuation in every target; here the phrases carry their own spacing, while the evidence
    text (render_evidence) and the think/answer wrapper still come from the grammar module.
    """
    body = "".join(render_evidence(p) if isinstance(p, Evidence) else p for p in parts)
    body = " ".join(body.split())
    wrapper = render(answer, [])
    return wrapper.replace("<think></think>", f"<think>{body}</think>", 1)


def _closing(rng: random.Random, n: int) -> str:
    words = ({"This": "this artifact", "this": "this artifact", "s": "s", "is": "is"} if n == 1
             else {"This": "these artifacts", "this": "these artifacts", "s": "", "is": "are"})
    text = rng.choice(_FAKE_CLOSINGS).format(**words)
    return text[:1].upper() + text[1:]


def _normal_segments(rng: random.Random, duration_s: float) -> list[Evidence]:
    """1–3 typeless evidences inside the clip, sorted by time: where a real clip looks normal."""
    end_max = math.floor(duration_s * 100) / 100
    out: list[Evidence] = []
    for _ in range(rng.randint(1, MAX_NORMAL_SEGMENTS)):
        length = max(0.02, duration_s * rng.uniform(0.25, 0.6))
        start = rng.uniform(0.0, max(0.0, duration_s - length))
        s, e = _q(start), min(_q(start + length), end_max)
        if e <= s:  # clips shorter than the rendering grid: cover what can be written
            s, e = 0.0, end_max
        if e <= s:
            continue
        w, h = rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.6)
        x1, y1 = _q(rng.uniform(0.0, 1.0 - w)), _q(rng.uniform(0.0, 1.0 - h))
        x2, y2 = min(1.0, _q(x1 + w)), min(1.0, _q(y1 + h))
        out.append(Evidence(type=None, t=(s, e), bbox=(x1, y1, x2, y2)))
    out.sort(key=lambda ev: ev.t)  # type: ignore[arg-type, return-value]
    return out


def _fake_parts(rng: random.Random, evidences: Sequence[Evidence]) -> list[str | Evidence]:
    ordered = list(evidences)
    if rng.random() < 0.6:
        ordered.sort(key=lambda ev: ev.t)  # type: ignore[arg-type, return-value]
    else:
        rng.shuffle(ordered)
    parts: list[str | Evidence] = [rng.choice(_FAKE_OPENINGS)]
    for i, ev in enumerate(ordered):
        connector = rng.choice(_FIRST_CONNECTORS if i == 0 else _NEXT_CONNECTORS)
        phrases = _TYPE_PHRASES.get(ev.type or "", _GENERIC_PHRASES)
        parts += [" ", *_sentence(connector, rng.choice(phrases), ev)]
    parts += [" ", _closing(rng, len(ordered))]
    return parts


def _real_parts(rng: random.Random, segments: Sequence[Evidence]) -> list[str | Evidence]:
    parts: list[str | Evidence] = [rng.choice(_REAL_OPENINGS)]
    phrases = rng.sample(_NORMAL_PHRASES, k=len(segments))
    for i, (ev, phrase) in enumerate(zip(segments, phrases)):
        parts += [" ", *_sentence("" if i == 0 else rng.choice(_NORMAL_CONNECTORS), phrase, ev)]
    parts += [" ", rng.choice(_REAL_CLOSINGS)]
    return parts


def _build(label: str, artifacts: Sequence[ArtifactTruth], duration_s: float,
           seed: int) -> tuple[str, list[Evidence]]:
    rng = random.Random(seed)
    if label == "fake":
        evidences = [_evidence_of(a) for a in artifacts]
        return _join("Fake", _fake_parts(rng, evidences)), evidences
    segments = _normal_segments(rng, duration_s)
    return _join("Real", _real_parts(rng, segments)), segments


def _ground_truth_problems(label: str, artifacts: Sequence[Any], duration_s: float,
                           taxonomy: Taxonomy) -> tuple[list[ArtifactTruth], list[str]]:
    """Validated artifacts and every reason the ground truth cannot be annotated."""
    problems: list[str] = []
    if label not in ("real", "fake"):
        problems.append(f"label must be 'real' or 'fake', got {label!r}")
    if not isinstance(duration_s, (int, float)) or not math.isfinite(duration_s) or duration_s <= 0:
        problems.append(f"duration_s must be a positive number, got {duration_s!r}")
        duration_s = math.inf
    valid: list[ArtifactTruth] = []
    for i, raw in enumerate(artifacts):
        try:  # re-validate: model_construct()ed or dict ground truth must not slip through
            data = raw if isinstance(raw, Mapping) else raw.model_dump()
            a = ArtifactTruth.model_validate(data)
        except (ValidationError, AttributeError, TypeError) as exc:
            problems.append(f"artifact {i}: invalid ground truth: {_one_line(exc)}")
            continue
        if not taxonomy.is_l3(a.type):
            problems.append(f"artifact {i}: type {a.type!r} is not an L3 name of taxonomy "
                            f"v{taxonomy.version}")
        t0, t1 = a.t
        if not (math.isfinite(t0) and math.isfinite(t1)):
            problems.append(f"artifact {i}: time span {a.t} is not finite")
            continue
        if not 0 <= t0 < t1:
            problems.append(f"artifact {i}: time span {a.t} must satisfy 0 <= start < end")
        elif t1 > duration_s + TIME_EPSILON_S:
            problems.append(f"artifact {i}: time span {a.t} ends after the clip ({duration_s:g} s)")
        valid.append(a)
    if label == "real" and len(artifacts):
        problems.append(f"a real clip cannot carry artifacts ({len(artifacts)} given)")
    if label == "fake" and not len(artifacts):
        problems.append("a fake clip without ground-truth artifacts cannot be grounded")
    return valid, problems


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
                         for e in exc.errors())[:300]
    return " ".join(str(exc).split())[:300]


# ------------------------------------------------------------------------------ public API


def synthetic_explanation(label: str, artifacts: Sequence[ArtifactTruth], duration_s: float, *,
                          seed: int) -> str:
    """A grammar-valid explanation of ground truth, phrased differently per ``seed``.

    Fakes get one evidence tag per artifact (the time span and box rounded to the grammar's two
    decimals, widened outwards if rounding would collapse them); reals get 1–3 typeless
    "normal segment" evidences inside the clip. Deterministic for a seed.

    Raises ValueError when the ground truth cannot be explained validly (use
    :func:`synthetic_annotation` for a never-raising, recorded outcome).
    """
    _, problems = _ground_truth_problems(label, artifacts, duration_s, load_taxonomy())
    if problems:
        raise ValueError("; ".join(problems))
    text, _ = _build(label, list(artifacts), duration_s, seed)
    return text


def seed_for(sample_id: str) -> int:
    """The default phrasing seed of a sample: stable across runs and machines."""
    try:
        return int(sample_id[:16], 16)
    except ValueError:
        return int.from_bytes(sample_id.encode()[:8].ljust(8, b"\0"), "big")


def synthetic_annotation(sample_id: str, label: str, artifacts: Sequence[ArtifactTruth],
                         duration_s: float, *, prompt_version: str, taxonomy_version: int,
                         mask_uris: Mapping[int, str] | None = None, seed: int | None = None,
                         taxonomy: Taxonomy | None = None) -> Annotation:
    """The ground truth of one clip as an annotation record (never raises on bad ground truth).

    ``artifacts`` of the record mirror the evidence in the text exactly (the rounded values),
    with ``mask_uri`` from ``mask_uris[artifact.mask_index]`` when known. ``violations`` are the
    grammar's codes for the text; any violation or ground-truth problem makes the record
    ``rejected`` with the reason. ``seed`` defaults to one derived from ``sample_id``.

    Only a ``label`` other than real/fake raises (ValueError): no record can hold it.
    """
    if label not in ("real", "fake"):
        raise ValueError(f"label must be 'real' or 'fake', got {label!r}")
    tax = taxonomy if taxonomy is not None else load_taxonomy()
    seed = seed_for(sample_id) if seed is None else seed
    provenance = Provenance(kind="synthetic", annotator=SYNTHETIC_ANNOTATOR,
                            prompt_version=prompt_version, taxonomy_version=taxonomy_version,
                            annotator_version=SYNTHETIC_VERSION)
    valid, problems = _ground_truth_problems(label, artifacts, duration_s, tax)

    text, evidences, violations = "", [], ()
    renderable = (label == "fake" and valid) or (label == "real" and not problems)
    if renderable:
        try:
            text, evidences = _build(label, valid, float(duration_s), seed)
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. a type name containing a tag
            problems.append(f"could not render an explanation: {_one_line(exc)}")
            text, evidences = "", []
    if text:
        parsed = check(text, duration_s=float(duration_s), taxonomy=tax)
        violations = tuple(v.code for v in parsed.violations)
        if parsed.violations:
            problems.append("explanation violates the grammar: " + "; ".join(
                f"{v.code} ({v.detail})" for v in parsed.violations))
        elif label == "real" and not evidences:
            problems.append(f"clip too short ({duration_s!r} s) for a normal-segment evidence")

    masks = mask_uris or {}
    recorded: list[AnnotatedArtifact] = []
    if label == "fake":
        for a, ev in zip(valid, evidences):
            uri = masks.get(a.mask_index) if a.mask_index is not None else None
            recorded.append(AnnotatedArtifact(type=ev.type, t=ev.t, bbox=ev.bbox, mask_uri=uri))
    else:
        recorded = [AnnotatedArtifact(type=None, t=ev.t, bbox=ev.bbox) for ev in evidences]

    return Annotation(
        sample_id=sample_id, label=label, artifacts=tuple(recorded), explanation=text,
        provenance=provenance, status="rejected" if problems else "accepted",
        rejection_reason="; ".join(problems) if problems else None, violations=violations)
