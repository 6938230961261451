"""Reading a Label Studio export back into human :class:`~vigil.core.annotation.Annotation` records.

:func:`import_annotations` reads a project's JSON export (tasks with ``annotations``) into one
``human`` annotation per submitted, non-cancelled annotation, keeping who and when. A malformed
task never aborts an import: it is skipped and reported in :class:`ImportResult`.

* A ``videorectangle`` track is drawn from its first keyframe up to its last disabled one (LS
  interpolates while a keyframe is ``enabled``); the box is the union of its keyframes' boxes.
  Tracks and timeline spans of the same artifact type that overlap in time are one artifact.
* ``completed_by`` is a user id (int) or, in some exports, a user object with an ``email``.
* Times and boxes are converted by :mod:`.coords`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from vigil.annotate.labelstudio.coords import frame_span_to_time, frames_count, percent_to_bbox
from vigil.annotate.labelstudio.names import CHOICES, EXPLANATION, LABEL, NORMAL_SEGMENT
from vigil.core.annotation import AnnotatedArtifact, Annotation, Provenance
from vigil.core.grammar import Evidence, check, parse, render
from vigil.core.taxonomy import Taxonomy

# Version of this importer: the annotator_version of imported human records.
LABELSTUDIO_IMPORT_VERSION = "1"

# How close a textarea's evidence must be to the drawn regions for the text to count as the
# human's explanation of those regions (times: one frame plus the text's 2-decimal rounding).
_BOX_TOLERANCE = 0.011


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
