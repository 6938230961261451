"""How good is the annotator? Its annotations scored against the zoo's ground truth.

Auditors ask this first: before a model learns from a teacher's explanations, how often does the
teacher get the label, the artifact type, the time span and the box right on data where the truth
is known? Pure: takes records, returns a report and its HTML page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from vigil.core.annotation import Annotation
from vigil.core.grounding import match_evidence
from vigil.core.records import ArtifactTruth


@dataclass(frozen=True)
class AnnotatorQuality:
    annotator: str
    n_samples: int
    n_with_truth: int
    label_accuracy: float | None
    temporal_iou: float | None
    box_iou: float | None
    type_accuracy: float | None
    artifact_recall: float | None  # share of true artifacts matched by some evidence
    compliance_rate: float | None
    by_type: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def score_annotator(annotations: Mapping[str, Annotation], labels: Mapping[str, str],
                    truth: Mapping[str, Sequence[ArtifactTruth]], annotator: str) -> AnnotatorQuality:
    """Score one annotator's chosen annotations (sample id → record) against labels and ground truth."""
    label_hits, tious, bious, type_hits, recalls, compliant = [], [], [], [], [], []
    per_type: dict[str, dict[str, list[float]]] = {}
    n_truth = 0
    for sample_id, ann in annotations.items():
        if sample_id in labels and labels[sample_id] in ("real", "fake"):
            label_hits.append(float(ann.label == labels[sample_id]))
        compliant.append(float(not ann.violations))
        gt = truth.get(sample_id) or ()
        if not gt:
            continue
        n_truth += 1
        predicted = [(a.type, a.t, a.bbox) for a in ann.artifacts if a.type is not None]
        matches = match_evidence(predicted, [(g.type, g.t, g.bbox) for g in gt])
        for g, m in zip(gt, matches):
            stats = per_type.setdefault(g.type, {"temporal_iou": [], "box_iou": [], "type_accuracy": [], "recall": []})
            found = m.prediction_index >= 0
            recalls.append(float(found))
            stats["recall"].append(float(found))
            if found:
                tious.append(m.temporal_iou)
                bious.append(m.box_iou)
                type_hits.append(float(m.type_match))
                stats["temporal_iou"].append(m.temporal_iou)
                stats["box_iou"].append(m.box_iou)
                stats["type_accuracy"].append(float(m.type_match))
    return AnnotatorQuality(
        annotator=annotator, n_samples=len(annotations), n_with_truth=n_truth,
        label_accuracy=_mean(label_hits), temporal_iou=_mean(tious), box_iou=_mean(bious),
        type_accuracy=_mean(type_hits), artifact_recall=_mean(recalls), compliance_rate=_mean(compliant),
        by_type={t: {k: _mean(v) for k, v in s.items()} for t, s in sorted(per_type.items())},
    )


def quality_html(report: AnnotatorQuality, *, title: str = "Annotator quality") -> str:
    """A self-contained page: the headline numbers, then per artifact type."""
    def cell(value) -> str:
        return "–" if value is None else (f"{value:.3f}" if isinstance(value, float) else html.escape(str(value)))

    head = [("annotator", report.annotator), ("samples", report.n_samples),
            ("samples with ground truth", report.n_with_truth), ("label accuracy", report.label_accuracy),
            ("temporal IoU", report.temporal_iou), ("box IoU", report.box_iou),
            ("type accuracy", report.type_accuracy), ("artifact recall", report.artifact_recall),
            ("grammar compliance", report.compliance_rate)]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{cell(v)}</td></tr>" for k, v in head)
    type_rows = "".join(
        f"<tr><td>{html.escape(t)}</td>" + "".join(f"<td>{cell(s.get(k))}</td>" for k in
                                                   ("recall", "temporal_iou", "box_iou", "type_accuracy")) + "</tr>"
        for t, s in report.by_type.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}}table{{border-collapse:collapse;margin:1rem 0}}
th,td{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}th{{background:#f4f4f4}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Annotations scored against the zoo's ground truth (type, time span, box); IoUs are over matched artifacts.</p>
<table>{rows}</table>
<h2>By artifact type</h2>
<table><tr><th>type</th><th>recall</th><th>temporal IoU</th><th>box IoU</th><th>type accuracy</th></tr>{type_rows}</table>
</body></html>
"""
