"""Human annotation through Label Studio: pre-annotated task export, submitted-annotation import.

We never talk to a Label Studio server here; we write and read its documented JSON formats, so a
project can be run anywhere and its export dropped back into Vigil.

* :func:`labeling_config` is the project's XML. Its control names are the contract with the two
  functions below: ``label`` (Choices Real/Fake), ``box`` (VideoRectangle, labelled through the
  ``artifact_type`` Labels), ``span`` (TimelineLabels), ``explanation`` (TextArea), all on the
  ``video`` object.
* :func:`export_tasks` writes the task list to import ("Import pre-annotated data"): ``data`` plus
  one ``predictions`` entry holding the current annotation (teacher or synthetic) so the human
  corrects rather than starts from scratch.
* :func:`import_annotations` reads a project's JSON export (tasks with ``annotations``) into one
  ``human`` :class:`Annotation` per submitted, non-cancelled annotation, keeping who and when.

Conventions (Label Studio's):

* Boxes are percentages of the frame (``x``, ``y`` top-left, ``width``, ``height``, 0–100).
* Frames are 1-based. Frame ``f`` shows the interval ``[(f-1)/fps, f/fps)``; a span
  ``[s, e]`` s is exported as frames ``floor(s·fps)+1 … ceil(e·fps)`` and a frame range ``a…b``
  is read back as ``[(a-1)/fps, b/fps]``, so times survive a round trip to within 1/fps.
* A ``videorectangle`` track is a sequence of keyframes; LS interpolates between them while a
  keyframe is ``enabled`` and stops drawing after a keyframe with ``enabled: false``. An artifact
  becomes a track with an enabled keyframe at its first frame and a disabled one at its last.
* ``completed_by`` is a user id (int) or, in some exports, a user object with an ``email``.

Non-L3 evidence ("normal segment" of a real clip) uses the label :data:`NORMAL_SEGMENT` in both
the box and the span controls.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from pydantic import ValidationError

from vigil.core.annotation import AnnotatedArtifact, Annotation, Provenance
from vigil.core.grammar import Evidence, check, parse, render
from vigil.core.taxonomy import Taxonomy, load_taxonomy

# Control and object names: the labeling config, the export and the import all use these.
VIDEO = "video"
LABEL = "label"
BOX = "box"
ARTIFACT_TYPE = "artifact_type"
SPAN = "span"
EXPLANATION = "explanation"

NORMAL_SEGMENT = "Normal segment"
CHOICES = ("Real", "Fake")

# Version of this importer: the annotator_version of imported human records.
LABELSTUDIO_IMPORT_VERSION = "1"

# How close a textarea's evidence must be to the drawn regions for the text to count as the
# human's explanation of those regions (times: one frame plus the text's 2-decimal rounding).
_BOX_TOLERANCE = 0.011


# ------------------------------------------------------------------------------ labeling config


def labeling_config(taxonomy: Taxonomy | None = None) -> str:
    """The Label Studio project XML whose names match :func:`export_tasks` and the importer.

    ``frameRate`` reads the task's ``$fps`` so frame numbers mean the same in LS as in Vigil.
    """
    tax = taxonomy if taxonomy is not None else load_taxonomy()
    names = [*tax.l3_names, NORMAL_SEGMENT]
    labels = "\n".join(f"    <Label value={quoteattr(n)}/>" for n in names)
    return f"""<View>
  <Header value="Is this video real or AI-generated? Mark every artifact you see."/>
  <Video name="{VIDEO}" value="$video" frameRate="$fps"/>
  <Choices name="{LABEL}" toName="{VIDEO}" choice="single" required="true" showInline="true">
    <Choice value="Real"/>
    <Choice value="Fake"/>
  </Choices>
  <Labels name="{ARTIFACT_TYPE}" toName="{VIDEO}">
{labels}
  </Labels>
  <VideoRectangle name="{BOX}" toName="{VIDEO}"/>
  <TimelineLabels name="{SPAN}" toName="{VIDEO}">
{labels}
  </TimelineLabels>
  <TextArea name="{EXPLANATION}" toName="{VIDEO}" rows="6" editable="true" maxSubmissions="1"
            placeholder="Explanation in the output grammar (leave empty to generate it from the regions)"/>
</View>
"""


# ------------------------------------------------------------------------------ frames and boxes


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


def _region_id(*parts: Any) -> str:
    """A deterministic 10-character region id (LS uses random ones; ours re-export identically)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------ export


@dataclass(frozen=True)
class ExportItem:
    """One clip to put in front of a human, with the annotation to pre-fill (or None)."""

    sample_id: str
    video_url: str
    frame_urls: tuple[str, ...]
    duration_s: float
    fps: float
    annotation: Annotation | None = None


def prediction_result(annotation: Annotation, *, duration_s: float, fps: float,
                      key: str = "") -> list[dict[str, Any]]:
    """An annotation as Label Studio result regions (choice, tracks, spans, text)."""
    n = frames_count(duration_s, fps)
    result: list[dict[str, Any]] = [{
        "id": _region_id(key, "label"), "from_name": LABEL, "to_name": VIDEO, "type": "choices",
        "value": {"choices": ["Real" if annotation.label == "real" else "Fake"]},
    }]
    for i, a in enumerate(annotation.artifacts):
        name = a.type if a.type is not None else NORMAL_SEGMENT
        f0, f1 = start_frame(a.t[0], fps, n), end_frame(a.t[1], fps, n)
        f1 = max(f0, f1)
        if a.bbox is not None:
            pct = bbox_to_percent(a.bbox)
            keyframes = [{"frame": f, "time": round((f - 1) / fps, 6), **pct, "rotation": 0,
                          "enabled": enabled}
                         for f, enabled in ((f0, True), (f1, False))]
            if f1 == f0:  # a one-frame artifact: one keyframe that ends the track
                keyframes = keyframes[1:]
            result.append({
                "id": _region_id(key, "box", i), "from_name": BOX, "to_name": VIDEO,
                "type": "videorectangle", "origin": "prediction",
                "value": {"framesCount": n, "duration": duration_s, "sequence": keyframes,
                          "labels": [name]},
            })
        result.append({
            "id": _region_id(key, "span", i), "from_name": SPAN, "to_name": VIDEO,
            "type": "timelinelabels", "origin": "prediction",
            "value": {"ranges": [{"start": f0, "end": f1}], "timelinelabels": [name]},
        })
    if annotation.explanation:
        result.append({
            "id": _region_id(key, "explanation"), "from_name": EXPLANATION, "to_name": VIDEO,
            "type": "textarea", "value": {"text": [annotation.explanation]},
        })
    return result


def task_of(item: ExportItem, *, model_version: str) -> dict[str, Any]:
    """One Label Studio task (``data`` + ``predictions``) for an export item."""
    if not (item.fps > 0 and item.duration_s > 0):
        raise ValueError(f"{item.sample_id}: fps and duration_s must be positive "
                         f"(got {item.fps!r}, {item.duration_s!r})")
    task: dict[str, Any] = {
        "data": {"video": item.video_url, "frames": list(item.frame_urls),
                 "sample_id": item.sample_id, "duration_s": float(item.duration_s),
                 "fps": float(item.fps)},
        "predictions": [],
    }
    if item.annotation is not None:
        if item.annotation.sample_id != item.sample_id:
            raise ValueError(f"annotation of {item.annotation.sample_id} attached to "
                             f"{item.sample_id}")
        task["data"]["annotation_id"] = item.annotation.annotation_id
        task["predictions"].append({
            "model_version": model_version,
            "result": prediction_result(item.annotation, duration_s=float(item.duration_s),
                                        fps=float(item.fps), key=item.annotation.annotation_id),
        })
    return task


def export_tasks(items: Iterable[ExportItem], out_path: str | os.PathLike[str], *,
                 model_version: str) -> Path:
    """Write the pre-annotated task list Label Studio imports, atomically; returns the path.

    ``model_version`` names what produced the pre-annotations (LS shows it per prediction).
    A half-written file is never visible: the JSON goes to a temporary file that replaces the
    target only once complete.
    """
    tasks = [task_of(item, model_version=model_version) for item in items]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(tasks, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


# ------------------------------------------------------------------------------ import


@dataclass(frozen=True)
class ImportProblem:
    """Something wrong in an export, located by task index (and annotation index when known).

    ``error``: that task or annotation was skipped. ``warning``: it was imported, but something
    was repaired or ignored (e.g. a stale explanation re-rendered from the regions).
    """

    task_index: int
    field: str
    message: str
    annotation_index: int | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"task {self.task_index}"
        if self.annotation_index is not None:
            where += f", annotation {self.annotation_index}"
        return f"{self.severity}: {where}, {self.field}: {self.message}"


@dataclass(frozen=True)
class ImportResult(Sequence[Annotation]):
    """The imported annotations (iterable and indexable like a list) and what went wrong.

    A malformed task never aborts an import: it is skipped and listed in ``problems``.
    """

    annotations: tuple[Annotation, ...]
    problems: tuple[ImportProblem, ...] = ()
    cancelled: int = 0

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, i):  # type: ignore[override]
        return self.annotations[i]

    def __iter__(self) -> Iterator[Annotation]:
        return iter(self.annotations)

    @property
    def errors(self) -> tuple[ImportProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")


class _Bad(Exception):
    """A malformed field: the message names it; the caller adds where it was."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _req(obj: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise _Bad(where or "task", f"expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise _Bad(f"{where}.{key}" if where else key, "missing")
    v = obj[key]
    if not isinstance(v, types) or isinstance(v, bool) and bool not in _as_tuple(types):
        names = "/".join(t.__name__ for t in _as_tuple(types))
        raise _Bad(f"{where}.{key}" if where else key,
                   f"expected {names}, got {type(v).__name__}")
    return v


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _num(obj: Mapping[str, Any], key: str, where: str) -> float:
    v = float(_req(obj, key, (int, float), where))
    if not math.isfinite(v):
        raise _Bad(f"{where}.{key}", f"not a finite number: {v!r}")
    return v


def _frame(obj: Mapping[str, Any], key: str, where: str) -> int:
    """A frame number: an int (an integral float from a custom exporter is accepted)."""
    v = _req(obj, key, (int, float), where)
    if isinstance(v, float):
        if not v.is_integer():
            raise _Bad(f"{where}.{key}", f"frame numbers are integers, got {v!r}")
        v = int(v)
    return v


def _annotator(completed_by: Any, where: str) -> str:
    """An email when the export carries one, else ``user-<id>``: who answered, for audits."""
    if isinstance(completed_by, Mapping):
        email = completed_by.get("email")
        if isinstance(email, str) and email.strip():
            return email.strip()
        uid = completed_by.get("id")
        if isinstance(uid, (int, str)) and not isinstance(uid, bool) and str(uid).strip():
            return f"user-{uid}"
        raise _Bad(where, "user object has neither an email nor an id")
    if isinstance(completed_by, bool) or not isinstance(completed_by, (int, str)) \
            or not str(completed_by).strip():
        raise _Bad(where, f"expected a user id or user object, got {completed_by!r}")
    return f"user-{completed_by}"


def _timestamp(value: Any, field_name: str) -> str:
    """Label Studio's ISO time (``…Z``) as an aware UTC ISO string, like Vigil's own records."""
    if not isinstance(value, str):
        raise _Bad(field_name, f"expected an ISO-8601 time, got {value!r}")
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(field_name, f"not an ISO-8601 time: {value!r}") from None
    if dt.tzinfo is None:  # LS writes UTC; a naive time from a custom export is taken as UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat()


@dataclass
class _Track:
    name: str
    t: tuple[float, float]
    bbox: tuple[float, float, float, float]


@dataclass
class _Regions:
    label: str | None = None
    tracks: list[_Track] = field(default_factory=list)
    spans: list[tuple[str, tuple[float, float]]] = field(default_factory=list)
    text: str | None = None
    warnings: list[tuple[str, str]] = field(default_factory=list)


def _read_track(value: Mapping[str, Any], where: str, fps: float, duration_s: float,
                labels: Any = None) -> _Track:
    labels = _req(value, "labels", list, where) if labels is None else labels
    if len(labels) != 1 or not isinstance(labels[0], str):
        raise _Bad(f"{where}.labels", f"expected exactly one label, got {labels!r}")
    seq = _req(value, "sequence", list, where)
    if not seq:
        raise _Bad(f"{where}.sequence", "empty")
    keyframes = []
    for k, kf in enumerate(seq):
        w = f"{where}.sequence[{k}]"
        frame = _frame(kf, "frame", w)
        if frame < 1:
            raise _Bad(f"{w}.frame", f"frames are 1-based, got {frame}")
        box = tuple(_num(kf, key, w) for key in ("x", "y", "width", "height"))
        if box[2] <= 0 or box[3] <= 0:
            raise _Bad(w, f"non-positive box size {box[2:]}")
        enabled = kf.get("enabled", True)
        keyframes.append((frame, bool(enabled), box))
    keyframes.sort(key=lambda k: k[0])
    # The track is drawn from its first keyframe up to the last disabled keyframe (or to the end
    # of the video when the last keyframe is still enabled); the box is the union of the
    # keyframes' boxes on that stretch: where in the frame the artifact is over its span.
    first = keyframes[0][0]
    n = frames_count(duration_s, fps)
    last = keyframes[-1][0] if not keyframes[-1][1] else max(n, keyframes[-1][0])
    boxes = [percent_to_bbox(*b) for _, _, b in keyframes]
    bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))
    return _Track(labels[0], frame_span_to_time(first, last, fps, duration_s), bbox)


def _read_regions(result: list[Any], where: str, fps: float, duration_s: float) -> _Regions:
    regions = _Regions()
    # Some LS versions put a track's label in a separate "labels" region with the track's id.
    labels_by_id = {item.get("id"): item["value"]["labels"] for item in result
                    if isinstance(item, Mapping) and item.get("type") == "labels"
                    and isinstance(item.get("value"), Mapping)
                    and isinstance(item["value"].get("labels"), list)}
    track_ids = {item.get("id") for item in result
                 if isinstance(item, Mapping) and item.get("type") == "videorectangle"}
    for r, item in enumerate(result):
        w = f"{where}[{r}]"
        kind = _req(item, "type", str, w).lower()
        value = _req(item, "value", dict, w)
        wv = f"{w}.value"
        if kind == "labels" and item.get("id") in track_ids:
            continue
        if kind == "choices":
            choices = _req(value, "choices", list, wv)
            if len(choices) != 1 or choices[0] not in CHOICES:
                raise _Bad(f"{wv}.choices", f"expected one of {list(CHOICES)}, got {choices!r}")
            if regions.label is not None:
                raise _Bad(f"{wv}.choices", "more than one label choice")
            regions.label = choices[0].lower()
        elif kind == "videorectangle":
            own = value.get("labels") if isinstance(value, Mapping) else None
            regions.tracks.append(_read_track(
                value, wv, fps, duration_s,
                labels=None if own else labels_by_id.get(item.get("id"))))
        elif kind == "timelinelabels":
            names = _req(value, "timelinelabels", list, wv)
            if len(names) != 1 or not isinstance(names[0], str):
                raise _Bad(f"{wv}.timelinelabels", f"expected exactly one label, got {names!r}")
            ranges = _req(value, "ranges", list, wv)
            if not ranges:
                raise _Bad(f"{wv}.ranges", "empty")
            for k, rng in enumerate(ranges):
                a, b = _frame(rng, "start", f"{wv}.ranges[{k}]"), _frame(
                    rng, "end", f"{wv}.ranges[{k}]")
                if not 1 <= a <= b:
                    raise _Bad(f"{wv}.ranges[{k}]", f"expected 1 <= start <= end, got {a}, {b}")
                regions.spans.append((names[0], frame_span_to_time(a, b, fps, duration_s)))
        elif kind == "textarea":
            texts = _req(value, "text", list, wv)
            if not all(isinstance(t, str) for t in texts):
                raise _Bad(f"{wv}.text", "expected a list of strings")
            text = "\n".join(t for t in texts if t.strip()).strip()
            if text:
                regions.text = text if regions.text is None else f"{regions.text}\n{text}"
        else:
            regions.warnings.append((f"{w}.type", f"region type {kind!r} ignored"))
    return regions


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _pair(tracks: list[_Track], spans: list[tuple[str, tuple[float, float]]]
          ) -> list[AnnotatedArtifact]:
    """Boxes and spans of the same artifact type that overlap in time are one artifact.

    Each track takes the same-type span it overlaps most (greedy, in time order); the span's
    time wins (the timeline is where a human states *when*), the track gives *where*. Unpaired
    tracks keep their own lifespan; unpaired spans become artifacts without a box.
    """
    free = list(range(len(spans)))
    out: list[tuple[float, AnnotatedArtifact]] = []
    for tr in sorted(tracks, key=lambda x: x.t):
        best, best_ov = None, 0.0
        for j in free:
            name, t = spans[j]
            ov = _overlap(tr.t, t)
            if name == tr.name and ov > best_ov:
                best, best_ov = j, ov
        t = tr.t
        if best is not None:
            free.remove(best)
            t = spans[best][1]
        typ = None if tr.name == NORMAL_SEGMENT else tr.name
        out.append((t[0], AnnotatedArtifact(type=typ, t=t, bbox=tr.bbox)))
    for j in free:
        name, t = spans[j]
        out.append((t[0], AnnotatedArtifact(type=None if name == NORMAL_SEGMENT else name, t=t)))
    out.sort(key=lambda x: x[0])
    return [a for _, a in out]


def _evidence(a: AnnotatedArtifact) -> Evidence:
    return Evidence(type=a.type, t=a.t, bbox=a.bbox)


def _rendered(label: str, artifacts: Sequence[AnnotatedArtifact]) -> str:
    """A plain explanation of the human's regions, for annotations without a textarea."""
    parts: list[str | Evidence] = []
    typed = [a for a in artifacts if a.type is not None]
    normal = [a for a in artifacts if a.type is None]
    if typed:
        parts.append("The annotator marked these artifacts:")
        for i, a in enumerate(typed):
            parts += [_evidence(a), ";" if i < len(typed) - 1 else "."]
    if normal:
        parts.append("These segments look natural:")
        for i, a in enumerate(normal):
            parts += [_evidence(a), ";" if i < len(normal) - 1 else "."]
    if not artifacts:
        parts.append("The annotator marked no regions.")
    text = render("Fake" if label == "fake" else "Real", parts)
    return text.replace(" ;", ";").replace(" .", ".")


def _match_text(text: str, label: str, artifacts: Sequence[AnnotatedArtifact],
                fps: float) -> list[AnnotatedArtifact] | None:
    """The regions as the textarea states them, if the text still describes them; else None.

    Frame numbers quantise times to 1/fps while the text has 0.01 s, so when every evidence
    matches a region (same type, within a frame and a box rounding step) the text's values are
    the more precise record of the same claim, and the artifacts then equal the text exactly.
    """
    parsed = parse(text)
    if parsed.label != label or len(parsed.evidence) != len(artifacts):
        return None
    t_tol = 1.0 / fps + 0.006
    remaining = list(artifacts)
    out: list[AnnotatedArtifact] = []
    for ev in parsed.evidence:
        hit = next((a for a in remaining if a.type == ev.type
                    and (ev.t is not None)
                    and (ev.bbox is None) == (a.bbox is None)
                    and all(abs(x - y) <= t_tol for x, y in zip(ev.t, a.t))
                    and (ev.bbox is None or all(abs(x - y) <= _BOX_TOLERANCE
                                                for x, y in zip(ev.bbox, a.bbox)))), None)
        if hit is None:
            return None
        remaining.remove(hit)
        out.append(AnnotatedArtifact(type=ev.type, t=ev.t, bbox=ev.bbox))
    return sorted(out, key=lambda a: (a.t, a.type or ""))


def _task_context(task: Any) -> tuple[str, float, float, list[Any]]:
    data = _req(task, "data", dict, "")
    sample_id = _req(data, "sample_id", str, "data")
    if len(sample_id) != 64 or any(c not in "0123456789abcdef" for c in sample_id):
        raise _Bad("data.sample_id", f"not a sha256 (64 lower-case hex): {sample_id[:80]!r}")
    duration_s = _num(data, "duration_s", "data")
    fps = _num(data, "fps", "data")
    if duration_s <= 0 or fps <= 0:
        raise _Bad("data", f"duration_s and fps must be positive, got {duration_s}, {fps}")
    annotations = task.get("annotations", [])
    if not isinstance(annotations, list):
        raise _Bad("annotations", f"expected a list, got {type(annotations).__name__}")
    return sample_id, duration_s, fps, annotations


def _prediction_texts(task: Mapping[str, Any]) -> set[str]:
    """The explanation texts that were pre-filled: an unchanged one is not the human's words."""
    texts: set[str] = set()
    preds = task.get("predictions")
    for p in preds if isinstance(preds, list) else ():
        result = p.get("result") if isinstance(p, Mapping) else None
        for r in result if isinstance(result, list) else ():
            if isinstance(r, Mapping) and r.get("type") == "textarea" \
                    and isinstance(r.get("value"), Mapping) \
                    and isinstance(r["value"].get("text"), list):
                texts.add("\n".join(t for t in r["value"]["text"]
                                    if isinstance(t, str) and t.strip()).strip())
    return texts


def _one_annotation(ann: Any, where: str, sample_id: str, duration_s: float, fps: float, *,
                    prompt_version: str, taxonomy_version: int, taxonomy: Taxonomy | None,
                    prefilled: set[str] = frozenset()  # type: ignore[assignment]
                    ) -> tuple[Annotation, list[tuple[str, str]]]:
    if not isinstance(ann, Mapping):
        raise _Bad(where, f"expected an object, got {type(ann).__name__}")
    annotator = _annotator(ann.get("completed_by"), f"{where}.completed_by")
    created_at = _timestamp(ann.get("created_at"), f"{where}.created_at")
    result = _req(ann, "result", list, where)
    regions = _read_regions(result, f"{where}.result", fps, duration_s)
    if regions.label is None:
        raise _Bad(f"{where}.result", f"no '{LABEL}' choice (Real/Fake)")
    warnings = list(regions.warnings)
    artifacts = _pair(regions.tracks, regions.spans)

    problems = []
    text = regions.text
    matched = None if text is None else _match_text(text, regions.label, artifacts, fps)
    if matched is not None:
        artifacts = matched
    elif text is not None:
        if text in prefilled:
            # The human edited the label/regions but left the pre-filled text: it describes the
            # model's view, not theirs. Their regions are the annotation; the text follows them.
            warnings.append((f"{where}.result.{EXPLANATION}",
                             "pre-filled explanation left unchanged while the label/regions "
                             "were edited; re-rendered from the submitted regions"))
            text = None
        else:  # the human's own words contradict their own regions: keep both, flag it
            problems.append("the explanation's answer or evidence disagrees with the submitted "
                            "label and regions")
    if text is None:
        text = _rendered(regions.label, artifacts)
    parsed = check(text, duration_s=duration_s, taxonomy=taxonomy)

    if parsed.violations:
        problems.append("explanation violates the grammar: " + "; ".join(
            f"{v.code} ({v.detail})" for v in parsed.violations))
    if regions.label == "real" and any(a.type is not None for a in artifacts):
        problems.append("label 'real' contradicts the artifact regions marked on the video")
    annotation = Annotation(
        sample_id=sample_id, label=regions.label, artifacts=tuple(artifacts), explanation=text,
        provenance=Provenance(kind="human", annotator=annotator, prompt_version=prompt_version,
                              taxonomy_version=taxonomy_version,
                              annotator_version=LABELSTUDIO_IMPORT_VERSION),
        status="rejected" if problems else "accepted",
        rejection_reason="; ".join(problems) if problems else None,
        violations=tuple(v.code for v in parsed.violations), created_at=created_at)
    return annotation, warnings


def import_annotations(export_path: str | os.PathLike[str], *, prompt_version: str,
                       taxonomy_version: int, taxonomy: Taxonomy | None = None) -> ImportResult:
    """Read a Label Studio JSON export into human annotation records.

    One :class:`Annotation` per submitted annotation (``was_cancelled`` ones are skipped and
    counted): label from the ``label`` choice, artifacts from ``box`` tracks paired with ``span``
    ranges, the explanation from the textarea, or rendered from the regions when there is none.
    A pre-filled text left unchanged while the human edited the label or regions is re-rendered
    from the regions (a warning); a text the human wrote that contradicts their own regions is
    kept but the record is ``rejected``. The text is checked with the grammar and its violation
    codes recorded; a record with violations, or a "real" label with artifact regions, is
    ``rejected`` with the reason. ``annotator`` is the user's email or ``user-<id>``; ``created_at`` is
    Label Studio's. A malformed task or annotation is skipped and reported in
    ``ImportResult.problems``, naming the task index and field; only an unreadable file raises.
    """
    try:
        doc = json.loads(Path(export_path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{export_path}: not JSON: {exc}") from exc
    if isinstance(doc, Mapping):  # a single task exported on its own
        doc = [doc]
    if not isinstance(doc, list):
        raise ValueError(f"{export_path}: expected a JSON list of tasks, got {type(doc).__name__}")

    out: list[Annotation] = []
    problems: list[ImportProblem] = []
    cancelled = 0
    for ti, task in enumerate(doc):
        try:
            sample_id, duration_s, fps, annotations = _task_context(task)
        except _Bad as bad:
            problems.append(ImportProblem(ti, bad.field, bad.message))
            continue
        prefilled = _prediction_texts(task)
        for ai, ann in enumerate(annotations):
            where = f"annotations[{ai}]"
            if isinstance(ann, Mapping) and ann.get("was_cancelled"):
                cancelled += 1
                continue
            try:
                annotation, warnings = _one_annotation(
                    ann, where, sample_id, duration_s, fps, prompt_version=prompt_version,
                    taxonomy_version=taxonomy_version, taxonomy=taxonomy, prefilled=prefilled)
            except _Bad as bad:
                problems.append(ImportProblem(ti, bad.field, bad.message, ai))
                continue
            except ValidationError as exc:  # e.g. a sample_id that is not a sha256
                msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                for e in exc.errors())
                problems.append(ImportProblem(ti, where, f"invalid record: {msg}", ai))
                continue
            out.append(annotation)
            problems += [ImportProblem(ti, f, m, ai, "warning") for f, m in warnings]
    return ImportResult(tuple(out), tuple(problems), cancelled)
