"""The gate report for people: one self-contained HTML page and its Markdown twin, built with the kit.

The page answers, in this order: did the candidate pass the gate and which rules stopped it; per
evaluation set, how it compares with the champion per generator (bars with bootstrap whiskers) and on
the headline numbers; its confusion matrices and calibration; per artifact type; and a few example
explanations, hits and misses, with the predicted and true evidence boxes drawn on the frames.

This module only decides what the page says (a :class:`~vigil.reports.document.Document`); the kit
renders it: charts are inline SVG (:mod:`vigil.reports.charts`), frames are PNG ``data:`` URIs
(:mod:`vigil.reports.frames`), the HTML comes from autoescaped templates, and there is no script. The
Markdown holds the same sections as tables, with its images as files under ``img/``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.core.evaluation import EvalClip, Prediction
from vigil.core.gate import GateDecision, RuleResult
from vigil.io.media.frame_folder import read_frames
from vigil.reports import charts
from vigil.reports.document import (
    Banner,
    Block,
    Bullets,
    Cell,
    Code,
    Columns,
    Document,
    Figure,
    Heading,
    Paragraph,
    Picture,
    Section,
    Svg,
    Table,
)
from vigil.reports.format import delta, dig, finite, interval, num, slug
from vigil.reports.frames import Box, frame_strip_png

__all__ = ["ReportExample", "gate_document", "pick_examples", "verdict_line", "write_gate_report"]

SETS = ("fixed", "recent")  # report order; other set names follow, sorted
CANDIDATE_COLOUR = "#2563eb"
CHAMPION_COLOUR = "#94a3b8"
PREDICTED_RGB = (220, 38, 38)  # predicted evidence: solid red boxes
TRUTH_RGB = (22, 163, 74)  # ground truth: dashed green boxes
PREDICTED_COLOUR = "#dc2626"
TRUTH_COLOUR = "#16a34a"

# (label, dotted path in an evaluation_metrics dict, +1 higher is better / -1 lower is better / 0 neither)
HEADLINE: tuple[tuple[str, str, int], ...] = (
    ("Paired balanced accuracy", "skyra.paired_balanced_accuracy", 1),
    ("Fake recall", "skyra.fake_recall", 1),
    ("F1", "skyra.f1", 1),
    ("Accuracy", "accuracy", 1),
    ("Macro-F1", "macro_f1", 1),
    ("FPR on reals", "fpr_real", -1),
    ("Format compliance", "format_compliance", 1),
    ("AP", "ap", 1),
    ("ROC-AUC", "roc_auc", 1),
    ("ECE", "ece", -1),
    ("Grounding tIoU", "grounding.temporal_iou", 1),
    ("Grounding bIoU", "grounding.box_iou", 1),
    ("Grounding type accuracy", "grounding.type_accuracy", 1),
    ("J&F", "masks.j_and_f", 1),
    ("ROUGE-L", "rouge_l", 1),
    ("Latency p50 (s)", "latency.p50_s", -1),
    ("Latency p95 (s)", "latency.p95_s", -1),
    ("Unparsable", "unparsable", -1),
    ("Clips", "clips", 0),
)
ARTIFACT_COLUMNS = (("fake recall", "fake_recall"), ("tIoU", "temporal_iou"), ("bIoU", "box_iou"),
                    ("type acc.", "type_accuracy"))


# ------------------------------------------------------------------------------------- examples

@dataclass(frozen=True)
class ReportExample:
    """One clip shown in the report with the candidate's explanation of it."""

    set: str  # "fixed" or "recent"
    prediction: Prediction
    clip: EvalClip
    frames_dir: Path  # absolute path of the clip's frame folder

    @property
    def hit(self) -> bool:
        return self.prediction.answer == self.clip.gt


def _example_rank(prediction: Prediction, clip: EvalClip) -> int:
    """0: a fake with evidence (predicted or true), 1: any other clip with evidence, 2: the rest."""
    has_evidence = bool(prediction.evidence) or bool(clip.truth)
    return 0 if has_evidence and clip.gt == "Fake" else 1 if has_evidence else 2


def pick_examples(pairs: Sequence[tuple[Prediction, EvalClip]], n: int,
                  seed: int = 0) -> list[tuple[Prediction, EvalClip]]:
    """Up to n examples: about half hits and half misses, fakes with evidence first, deterministic.

    Hits come first, then misses; within each, fakes with evidence, then other clips with evidence,
    then the rest, each tier in a seeded shuffle (the same inputs and seed give the same pick).

    >>> from vigil.core.evaluation import EvalClip, Prediction
    >>> def pc(i, answer):
    ...     c = EvalClip(video_id=f"g/{i}", aigc_model_name="g", gt="Fake", base_id=str(i), frames_dir="f", duration_s=1)
    ...     return Prediction(video_id=c.video_id, aigc_model_name="g", mllm_model_name="m", gt="Fake",
    ...                       response="", answer=answer, format_ok=True, base_id=c.base_id), c
    >>> picked = pick_examples([pc(i, "Fake" if i % 3 else "Real") for i in range(9)], 4)
    >>> [p.answer for p, _ in picked]
    ['Fake', 'Fake', 'Real', 'Real']
    """
    if n <= 0:
        return []
    rng = random.Random(seed)

    def ordered(group: list[tuple[Prediction, EvalClip]]) -> list[tuple[Prediction, EvalClip]]:
        group = sorted(group, key=lambda pc: pc[0].video_id)
        rng.shuffle(group)
        return sorted(group, key=lambda pc: _example_rank(*pc))  # stable: the shuffle orders each tier

    hits = ordered([pc for pc in pairs if pc[0].answer == pc[1].gt])
    misses = ordered([pc for pc in pairs if pc[0].answer != pc[1].gt])
    n_hits = min(len(hits), n - min(len(misses), n // 2))
    n_misses = min(len(misses), n - n_hits)
    return hits[:n_hits] + misses[:n_misses]


def verdict_line(decision: GateDecision) -> str:
    """The one-line verdict, the same in the HTML and the Markdown."""
    word = "PASS" if decision.verdict == "pass" else "FAIL"
    against = (f"vs champion {decision.champion}" if decision.champion
               else "(no champion yet: minimum levels only)")
    return f"{word}: candidate {decision.candidate} {against}"


# ---------------------------------------------------------------------------------------- charts

def _generator_order(*series: Mapping[str, Any] | None) -> list[str]:
    names = sorted({k for s in series if s for k in s} - {"mean"})
    return names + (["mean"] if any(s and "mean" in s for s in series) else [])


def _estimates(intervals: Mapping[str, Mapping[str, Any] | None] | None) -> dict[str, charts.Estimate] | None:
    if intervals is None:
        return None
    return {g: charts.Estimate(e.get("value"), e.get("ci_low"), e.get("ci_high"))
            for g, e in intervals.items() if isinstance(e, Mapping)}


def generator_chart(candidate: Mapping[str, Mapping[str, Any] | None] | None,
                    champion: Mapping[str, Mapping[str, Any] | None] | None) -> Svg:
    """Grouped bars (candidate, champion) of paired balanced accuracy per generator and their mean, with
    bootstrap whiskers, on 0–1 with chance (0.5) dashed. ``candidate``/``champion``: ``{generator or 'mean':
    {'value', 'ci_low', 'ci_high'}}`` (:func:`vigil.core.gate.generator_intervals`); either may be None."""
    series = [charts.BarSeries("candidate", CANDIDATE_COLOUR, _estimates(candidate)),
              charts.BarSeries("champion" if champion is not None else "no champion", CHAMPION_COLOUR,
                               _estimates(champion))]
    return charts.grouped_bars(_generator_order(candidate, champion), series,
                               title="Paired balanced accuracy per generator", reference=(0.5, "chance"),
                               emphasis={"mean"}, note="whiskers: bootstrap interval; dashed line: chance (0.5)",
                               empty="no generator intervals")


def _reliability_points(bins: Sequence[Mapping[str, Any]] | None) -> list[tuple[float, float, int]] | None:
    if bins is None:
        return None
    return [(b.get("mean_probability"), b.get("fake_rate"), int(b.get("count") or 0)) for b in bins]


def reliability_chart(candidate_bins: Sequence[Mapping[str, Any]] | None,
                      champion_bins: Sequence[Mapping[str, Any]] | None,
                      candidate_ece: float | None = None, champion_ece: float | None = None) -> Svg:
    """Reliability diagram: each bin's fake rate against its mean predicted P(fake), the diagonal dashed,
    dot area by bin size; ECE in the legend. Either model may be None."""
    series = [charts.CalibrationSeries(f"candidate (ECE {num(candidate_ece)})", CANDIDATE_COLOUR,
                                       _reliability_points(candidate_bins)),
              charts.CalibrationSeries(f"champion (ECE {num(champion_ece)})", CHAMPION_COLOUR,
                                       _reliability_points(champion_bins))]
    return charts.reliability(series, title="Reliability: fake rate vs mean predicted P(fake)",
                              x_label="mean predicted P(fake)", y_label="fake rate",
                              empty="no fake probabilities scored")


# ------------------------------------------------------------------------------------- sections

def _passed_cell(passed: bool | None) -> Cell:
    return Cell("✓", tone="good") if passed else Cell("✗", tone="bad") if passed is False else Cell("–", tone="muted")


def _rule_row(r: RuleResult) -> list[Cell | str]:
    return [r.name, r.kind, Cell(num(r.value), numeric=True), Cell(interval(r.ci_low, r.ci_high), numeric=True),
            Cell(f"{r.threshold:g}", numeric=True), _passed_cell(r.passed), Cell(r.detail, tone="muted")]


def _verdict_section(decision: GateDecision) -> Section:
    word = "PASS" if decision.verdict == "pass" else "FAIL"
    facts = [f"decision {decision.decision_id}"]
    facts += [f"created {decision.created_at}"] if decision.created_at else []
    facts += [f"code {decision.code_rev}"] if decision.code_rev else []
    failed = [r for r in decision.rules if r.passed is False]
    blocks: list[Block] = [Banner(word, verdict_line(decision), " · ".join(facts),
                                  accent="good" if decision.verdict == "pass" else "bad")]
    if failed:
        blocks += [Heading("Failing rules"), Bullets([(r.name, r.detail) for r in failed])]
    elif decision.verdict == "pass":
        blocks.append(Paragraph("No rule failed."))
    if decision.notes:
        blocks += [Heading("Notes"), Bullets(list(decision.notes))]
    blocks += [Heading("All rules", anchor="rules"),
               Table(["Rule", "Kind", "Value", "Interval", "Threshold", "Passed", "Detail"],
                     [_rule_row(r) for r in decision.rules])]
    return Section("Verdict", blocks, anchor="verdict")


def _generator_table(cand_int: Mapping[str, Any] | None, champ_int: Mapping[str, Any] | None,
                     cand_m: Mapping[str, Any] | None, champ_m: Mapping[str, Any] | None) -> Table:
    rows = []
    for g in _generator_order(cand_int, champ_int):
        c, h = (cand_int or {}).get(g) or {}, (champ_int or {}).get(g) or {}
        path = ("skyra",) if g == "mean" else ("skyra", "per_generator", g)
        per_gen = dig(cand_m, "skyra.per_generator") or {}
        pairs = (sum(v.get("pairs") or 0 for v in per_gen.values() if isinstance(v, Mapping)) if g == "mean"
                 else dig(cand_m, (*path, "pairs")))
        cells = [num(pairs), num(c.get("value")), interval(c.get("ci_low"), c.get("ci_high")),
                 num(h.get("value")), interval(h.get("ci_low"), h.get("ci_high")),
                 delta(c.get("value"), h.get("value")),
                 num(dig(cand_m, (*path, "fake_recall"))), num(dig(champ_m, (*path, "fake_recall")))]
        rows.append([g, *(Cell(text, numeric=True) for text in cells)])
    return Table(["Generator", "Pairs", "Candidate pBA", "Interval", "Champion pBA", "Interval", "Δ",
                  "Fake recall (cand.)", "Fake recall (champ.)"], rows)


def _headline_table(cand: Mapping[str, Any] | None, champ: Mapping[str, Any] | None) -> Table:
    rows = []
    for label, path, better in HEADLINE:
        c, h = dig(cand, path), dig(champ, path)
        sign = (c - h) * better if finite(c) and finite(h) else 0
        rows.append([label, Cell(num(c), numeric=True), Cell(num(h), numeric=True),
                     Cell(delta(c, h), numeric=True, tone="good" if sign > 0 else "bad" if sign < 0 else "")])
    return Table(["Metric", "Candidate", "Champion", "Δ"], rows)


def _confusion_table(confusion: Mapping[str, Mapping[str, Any]] | None) -> Table:
    columns = ("Real", "Fake", "Error")
    rows = []
    for truth in ("Real", "Fake"):
        row_counts = {a: (dig(confusion, f"{truth}.{a}") or 0) for a in columns}
        total = sum(row_counts.values())
        cells: list[Cell | str] = [truth]
        for answer in columns:
            n = row_counts[answer]
            share = f" ({n / total:.0%})" if total else ""
            fill = "good" if answer == truth else "bad" if n else ""
            cells.append(Cell(f"{n}{share}", numeric=True, fill=fill))
        rows.append(cells)
    return Table(["truth \\ answer", *columns], rows)


def _artifact_table(cand: Mapping[str, Any] | None, champ: Mapping[str, Any] | None) -> Table | Paragraph:
    c_types, h_types = dig(cand, "per_artifact_type") or {}, dig(champ, "per_artifact_type") or {}
    headers = ["Artifact type", "Clips"]
    for label, _ in ARTIFACT_COLUMNS:
        headers += [f"{label} (cand.)", f"{label} (champ.)"]
    rows = []
    for kind in sorted(set(c_types) | set(h_types)):
        c, h = c_types.get(kind) or {}, h_types.get(kind) or {}
        row: list[Cell | str] = [kind, Cell(num(c.get("clips", h.get("clips"))), numeric=True)]
        for _, key in ARTIFACT_COLUMNS:
            row += [Cell(num(c.get(key)), numeric=True), Cell(num(h.get(key)), numeric=True)]
        rows.append(row)
    if not rows:
        return Paragraph("No clip of this set has known artifacts.", tone="muted")
    return Table(headers, rows)


def _set_section(name: str, metrics: Mapping[str, Any], intervals: Mapping[str, Any]) -> Section:
    cand_m, champ_m = metrics.get("candidate"), metrics.get("champion")
    cand_i, champ_i = intervals.get("candidate"), intervals.get("champion")
    s = slug(name)
    caption = (f"{name}: paired balanced accuracy per generator and their mean, candidate vs champion, "
               "with bootstrap intervals")
    reliability = reliability_chart(dig(cand_m, "reliability"), dig(champ_m, "reliability") if champ_m else None,
                                    dig(cand_m, "ece"), dig(champ_m, "ece"))
    ece_line = (f"ECE: candidate {num(dig(cand_m, 'ece'))}, champion {num(dig(champ_m, 'ece'))}; "
                f"scored clips: candidate {num(dig(cand_m, 'scored_clips'))}, "
                f"champion {num(dig(champ_m, 'scored_clips'))}.")
    champion_confusion = (_confusion_table(dig(champ_m, "confusion")) if champ_m
                          else Paragraph("No champion.", tone="muted"))
    blocks: list[Block] = [
        Paragraph(f"Clips: candidate {num(dig(cand_m, 'clips'))}, champion {num(dig(champ_m, 'clips'))}."),
        Heading("Per generator: paired balanced accuracy", anchor=f"generators-{s}"),
        Figure(generator_chart(cand_i, champ_i), caption, f"{s}-generators"),
        _generator_table(cand_i, champ_i, cand_m, champ_m),
        Heading("Headline numbers", anchor=f"headline-{s}"),
        _headline_table(cand_m, champ_m),
        Heading("Confusion matrices (rows: ground truth, columns: answer)", anchor=f"confusion-{s}"),
        Columns([[Heading("Candidate", level=4), _confusion_table(dig(cand_m, "confusion"))],
                 [Heading("Champion", level=4), champion_confusion]]),
        Heading("Reliability", anchor=f"reliability-{s}"),
        Figure(reliability, f"{name}: reliability diagram", f"{s}-reliability"),
        Paragraph(ece_line),
        Heading("Per artifact type", anchor=f"artifacts-{s}"),
        _artifact_table(cand_m, champ_m),
    ]
    return Section(f"Evaluation set: {name}", blocks, anchor=f"set-{s}")


def _span_text(t: tuple[float, float] | None) -> str:
    return "–" if t is None else f"{num(t[0], 2)}–{num(t[1], 2)} s"


def _box_text(b: tuple[float, ...] | None) -> str:
    return "–" if b is None else "[" + ", ".join(num(v, 2) for v in b) + "]"


def _evidence_boxes(example: ReportExample) -> list[Box]:
    """Ground truth first (dashed green, labelled at the bottom), then the prediction over it (solid red)."""
    truth = [Box(a.bbox, a.type, TRUTH_RGB, span=a.t, dashed=True, label_below=True) for a in example.clip.truth]
    predicted = [Box(e.bbox, e.type or "(no type)", PREDICTED_RGB, span=e.t)
                 for e in example.prediction.evidence if e.bbox is not None]
    return truth + predicted


def _example_section(i: int, ex: ReportExample) -> Section:
    p, clip = ex.prediction, ex.clip
    word = "HIT" if ex.hit else "MISS"
    blocks: list[Block] = [Paragraph(
        f"answer {p.answer} vs ground truth {clip.gt} · generator {clip.aigc_model_name} · "
        f"model {p.mllm_model_name} · P(fake) {num(p.fake_probability)} · latency {num(p.latency_s, 2)} s · "
        f"format {'ok' if p.format_ok else 'broken'}")]
    frame_times: list[float] = []
    try:
        frames = read_frames(ex.frames_dir)
        frame_times = [t for t, _ in frames]
        blocks.append(Picture(frame_strip_png(frames, _evidence_boxes(ex)),
                              f"frames of {clip.video_id} with evidence boxes", f"example-{i}"))
    except (ValueError, OSError) as exc:
        blocks.append(Paragraph(f"frames unavailable: {exc}", tone="muted"))
    lanes = [charts.Lane("predicted", PREDICTED_COLOUR,
                         [charts.Span(e.type or "(no type)", *e.t) for e in p.evidence if e.t is not None]),
             charts.Lane("truth", TRUTH_COLOUR, [charts.Span(a.type, *a.t) for a in clip.truth], dashed=True)]
    timeline = charts.timeline(lanes, duration_s=clip.duration_s, ticks=frame_times,
                               title=f"Predicted and true time spans over {clip.video_id}")
    blocks.append(Figure(timeline, "time spans over the clip: predicted (red), truth (green, dashed)",
                         f"example-{i}-timeline"))
    rows = [["predicted", e.type or "–", _span_text(e.t), _box_text(e.bbox)] for e in p.evidence]
    rows += [["truth", a.type, _span_text(a.t), _box_text(a.bbox)] for a in clip.truth]
    blocks.append(Table(["Source", "Type", "Time", "Box"], rows) if rows
                  else Paragraph("No predicted or true evidence.", tone="muted"))
    blocks += [Paragraph("Raw response:"), Code(p.response)]
    return Section(f"{i}. {ex.set} · {clip.video_id}", blocks, anchor=f"example-{i}", level=3,
                   element="article", accent="good" if ex.hit else "bad", badge=word)


def _examples_section(examples: Sequence[ReportExample]) -> Section:
    legend = ("Boxes: predicted evidence solid red, labelled with its type; ground truth dashed green. A box is "
              "drawn on the frames whose time is inside its span.")
    blocks: list[Block] = [Paragraph(legend, tone="muted")]
    blocks += [_example_section(i, ex) for i, ex in enumerate(examples, start=1)]
    if not examples:
        blocks.append(Paragraph("No examples.", tone="muted"))
    return Section("Example explanations: hits and misses", blocks, anchor="examples")


def _set_names(decision: GateDecision, metrics: Mapping[str, Any], intervals: Mapping[str, Any]) -> list[str]:
    names = set(metrics) | set(intervals) | {r.set for r in decision.rules}
    return [s for s in SETS if s in names] + sorted(names - set(SETS))


# ---------------------------------------------------------------------------------------- report

def gate_document(decision: GateDecision, metrics: Mapping[str, Mapping[str, dict | None]],
                  intervals: Mapping[str, Mapping[str, dict | None]],
                  examples: Sequence[ReportExample]) -> Document:
    """The gate report as a document (see :func:`write_gate_report` for the arguments)."""
    sets = _set_names(decision, metrics, intervals)
    blocks: list[Block] = [_verdict_section(decision)]
    blocks += [_set_section(s, metrics.get(s) or {}, intervals.get(s) or {}) for s in sets]
    blocks.append(_examples_section(examples))
    nav = [("Verdict", "verdict"), ("Rules", "rules")] + [(f"Set {s}", f"set-{slug(s)}") for s in sets] + [
        ("Examples", "examples")]
    return Document(f"Gate report: {decision.candidate}", blocks, nav=nav)


def write_gate_report(decision: GateDecision, metrics: Mapping[str, Mapping[str, dict | None]],
                      intervals: Mapping[str, Mapping[str, dict | None]], examples: Sequence[ReportExample],
                      out_dir: Path) -> tuple[Path, Path]:
    """Write out_dir/report.html (self-contained: images inlined, no external fetch, no script) and
    out_dir/report.md (its twin: the same sections as Markdown tables, images as files under out_dir/img/).
    Returns (html_path, md_path).

    ``metrics[set]['candidate'|'champion']``: :func:`vigil.core.metrics.summary.evaluation_metrics` dicts (champion
    None without one); ``intervals[set]['candidate'|'champion']``: :func:`vigil.core.gate.generator_intervals`.
    Charts are SVG: inline in the HTML, ``img/*.svg`` beside the Markdown; frame strips are PNG.
    """
    return gate_document(decision, metrics, intervals, examples).write(out_dir, stem="report")
