"""Label Studio tasks with pre-annotations: what a human is asked to review.

:func:`export_tasks` writes the task list to import ("Import pre-annotated data"): ``data`` plus
one ``predictions`` entry holding the current annotation (teacher or synthetic) so the human
corrects rather than starts from scratch.

Label-only annotations (a verdict its source states, no artifact localised) are what a person must
ground first: their tasks come first in the file (Label Studio numbers imported tasks in file order
and its default sequential sampling serves them in that order), carry ``needs_grounding: true`` and
``priority: 1`` (0 for the others; sort or filter on them in the Data Manager) and a
``grounding_note`` the labeling config shows above the video. Their pre-annotation is the verdict
alone: no regions, and no pre-filled text, so that the import renders the explanation from the
regions the person draws.

A ``videorectangle`` track is a sequence of keyframes; LS interpolates between them while a
keyframe is ``enabled`` and stops drawing after a keyframe with ``enabled: false``. An artifact
becomes a track with an enabled keyframe at its first frame and a disabled one at its last, and
a timeline span over the same frames (:mod:`.coords` has the frame and box conventions).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.annotate.labelstudio.coords import bbox_to_percent, end_frame, frames_count, start_frame
from vigil.annotate.labelstudio.names import BOX, EXPLANATION, LABEL, NORMAL_SEGMENT, SPAN, VIDEO
from vigil.core.annotation import Annotation

#: What a person reads above a label-only clip (the ``grounding_note`` data field).
GROUNDING_NOTE = ("Label only: its source says this video is {answer}, but no artifact has been localised. "
                  "Check the verdict and mark every artifact (type, time span, box).")


def _region_id(*parts: Any) -> str:
    """A deterministic 10-character region id (LS uses random ones; ours re-export identically)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:10]


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
    if annotation.explanation and not annotation.label_only:  # a label-only text describes no regions
        result.append({
            "id": _region_id(key, "explanation"), "from_name": EXPLANATION, "to_name": VIDEO,
            "type": "textarea", "value": {"text": [annotation.explanation]},
        })
    return result


def needs_grounding(item: ExportItem) -> bool:
    """True when the item's annotation is label-only: a person should ground it first."""
    return item.annotation is not None and item.annotation.label_only


def task_of(item: ExportItem, *, model_version: str) -> dict[str, Any]:
    """One Label Studio task (``data`` + ``predictions``) for an export item."""
    if not (item.fps > 0 and item.duration_s > 0):
        raise ValueError(f"{item.sample_id}: fps and duration_s must be positive "
                         f"(got {item.fps!r}, {item.duration_s!r})")
    label_only = needs_grounding(item)
    note = GROUNDING_NOTE.format(answer="Real" if item.annotation and item.annotation.label == "real" else "Fake")
    task: dict[str, Any] = {
        "data": {"video": item.video_url, "frames": list(item.frame_urls),
                 "sample_id": item.sample_id, "duration_s": float(item.duration_s),
                 "fps": float(item.fps), "needs_grounding": label_only, "priority": int(label_only),
                 "grounding_note": note if label_only else ""},
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
    target only once complete. Label-only items come first (see the module note), the others
    keep their order.
    """
    ordered = sorted(items, key=lambda item: not needs_grounding(item))  # stable: the rest keep their order
    tasks = [task_of(item, model_version=model_version) for item in ordered]
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
