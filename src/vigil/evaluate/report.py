"""The gate report for people: one self-contained HTML page and its Markdown twin.

The page answers, in this order: did the candidate pass the gate and which rules stopped it; per
evaluation set, how it compares with the champion per generator (bars with bootstrap whiskers) and on
the headline numbers; its confusion matrices and calibration; per artifact type; and a few example
explanations, hits and misses, with the predicted and true evidence boxes drawn on the frames.

The HTML needs nothing else: charts are inline SVG made here, frames are PNG ``data:`` URIs, and there
is no script. The Markdown holds the same sections as tables, with its images as files under ``img/``.
Every text that comes from a model or a file is escaped (``html.escape``) before it reaches either.

>>> print(_num(0.12345), _num(None), _num(3), _delta(0.5, 0.25), _delta(2, 5))
0.123 – 3 +0.250 -3
"""

from __future__ import annotations

import base64
import html
import io
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from vigil.core.evaluation import EvalClip, EvidenceItem, Prediction, TruthArtifact
from vigil.core.gate import GateDecision, RuleResult
from vigil.models.inputs import read_frames, subsample

__all__ = ["ReportExample", "bar_chart_svg", "frame_strip_png", "pick_examples", "reliability_svg",
           "timeline_svg", "verdict_line", "write_gate_report"]

SETS = ("fixed", "recent")  # report order; other set names follow, sorted
CANDIDATE_COLOUR = "#2563eb"
CHAMPION_COLOUR = "#94a3b8"
PREDICTED_RGB = (220, 38, 38)  # predicted evidence: solid red boxes
TRUTH_RGB = (22, 163, 74)  # ground truth: dashed green boxes
PREDICTED_COLOUR = "#dc2626"
TRUTH_COLOUR = "#16a34a"
STRIP_HEIGHT = 160  # px of each frame in an example strip (small frames are scaled up)
MAX_STRIP_FRAMES = 8
SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'

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


# ------------------------------------------------------------------------------------ formatting

def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _md(text: Any) -> str:
    """Text for a Markdown table cell or line: HTML-escaped, pipes escaped, on one line."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num(x: Any, digits: int = 3) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}f}" if _finite(x) else "–"


def _delta(candidate: Any, champion: Any, digits: int = 3) -> str:
    if not (_finite(candidate) and _finite(champion)):
        return "–"
    d = candidate - champion
    return f"{d:+d}" if isinstance(d, int) else f"{d:+.{digits}f}"


def _ci(lo: Any, hi: Any) -> str:
    return f"[{_num(lo)}, {_num(hi)}]" if _finite(lo) and _finite(hi) else "–"


def _get(doc: Mapping[str, Any] | None, path: str | tuple[str, ...]) -> Any:
    """``doc['a']['b']`` for path 'a.b' (or the keys as a tuple, for keys with dots such as
    'kinetica-1.5'); None when any level is missing or None."""
    value: Any = doc
    for key in (path.split(".") if isinstance(path, str) else path):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _f(x: float) -> str:
    """An SVG coordinate."""
    return f"{x:.1f}"


def verdict_line(decision: GateDecision) -> str:
    """The one-line verdict, the same in the HTML and the Markdown."""
    word = "PASS" if decision.verdict == "pass" else "FAIL"
    against = (f"vs champion {decision.champion}" if decision.champion
               else "(no champion yet: minimum levels only)")
    return f"{word}: candidate {decision.candidate} {against}"


# --------------------------------------------------------------------------------- document parts

@dataclass
class _Part:
    """One block of the report in both forms."""

    html: str
    md: str


@dataclass
class _Assets:
    """Files that the Markdown twin refers to, written under out_dir/img/."""

    files: dict[str, bytes] = field(default_factory=dict)

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"img/{name}"


Cell = str | tuple[str, str]  # text, or (text, css class)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], cls: str = "") -> _Part:
    def split(cell: Cell) -> tuple[str, str]:
        return cell if isinstance(cell, tuple) else (cell, "")

    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            text, c = split(cell)
            cells.append(f'<td class="{_esc(c)}">{_esc(text)}</td>' if c else f"<td>{_esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    class_attr = f' class="{_esc(cls)}"' if cls else ""
    html_text = f"<table{class_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    md_lines = ["| " + " | ".join(_md(h) for h in headers) + " |",
                "|" + "|".join("---" for _ in headers) + "|"]
    md_lines += ["| " + " | ".join(_md(split(c)[0]) for c in row) + " |" for row in rows]
    return _Part(html_text, "\n".join(md_lines))


def _heading(level: int, text: str, anchor: str = "") -> _Part:
    id_attr = f' id="{_esc(anchor)}"' if anchor else ""
    return _Part(f"<h{level}{id_attr}>{_esc(text)}</h{level}>", f"{'#' * level} {_md(text)}")


def _para(text: str, cls: str = "") -> _Part:
    class_attr = f' class="{_esc(cls)}"' if cls else ""
    return _Part(f"<p{class_attr}>{_esc(text)}</p>", _md(text))


def _svg_figure(svg: str, name: str, caption: str, assets: _Assets) -> _Part:
    path = assets.add(f"{name}.svg", svg.encode())
    return _Part(f"<figure>{svg}<figcaption>{_esc(caption)}</figcaption></figure>",
                 f"![{_md(caption)}]({path})")


def _png_figure(png: bytes, name: str, alt: str, assets: _Assets, cls: str = "") -> _Part:
    path = assets.add(f"{name}.png", png)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    class_attr = f' class="{_esc(cls)}"' if cls else ""
    return _Part(f'<img{class_attr} src="{uri}" alt="{_esc(alt)}">', f"![{_md(alt)}]({path})")


def _code_block(text: str) -> _Part:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return _Part(f'<pre class="response">{_esc(text)}</pre>', f"{fence}text\n{text}\n{fence}")


def _join(parts: Sequence[_Part], html_open: str = "", html_close: str = "") -> _Part:
    return _Part(html_open + "\n".join(p.html for p in parts) + html_close, "\n\n".join(p.md for p in parts))


# ------------------------------------------------------------------------------------------ charts

def _generator_order(*series: Mapping[str, Any] | None) -> list[str]:
    names = sorted({k for s in series if s for k in s} - {"mean"})
    return names + (["mean"] if any(s and "mean" in s for s in series) else [])


def bar_chart_svg(candidate: Mapping[str, Mapping[str, Any] | None] | None,
                  champion: Mapping[str, Mapping[str, Any] | None] | None,
                  title: str = "Paired balanced accuracy per generator") -> str:
    """Grouped bars (candidate, champion) per generator and their mean, with interval whiskers.

    ``candidate``/``champion``: ``{generator or 'mean': {'value', 'ci_low', 'ci_high'}}`` (as made by
    :func:`vigil.core.gate.generator_intervals`); either may be None. Axis 0–1, dashed chance line at 0.5.
    """
    groups = _generator_order(candidate, champion)
    top, plot_h, left, bottom, group_w, bar_w = 34, 220, 46, 46, 96, 30
    width = max(380, left + group_w * max(len(groups), 1) + 70)
    height = top + plot_h + bottom

    def y(v: float) -> float:
        return top + plot_h * (1 - min(max(v, 0.0), 1.0))

    out = [f'<svg {SVG_NS} class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="{_esc(title)}"><title>{_esc(title)}</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{left}" x2="{width - 60}" y1="{_f(y(tick))}" y2="{_f(y(tick))}" '
                   f'stroke="{"#cbd5e1" if tick in (0.0, 1.0) else "#eef2f7"}"/>')
        out.append(f'<text x="{left - 6}" y="{_f(y(tick) + 4)}" text-anchor="end" font-size="11" '
                   f'fill="#475569">{tick:g}</text>')
    out.append(f'<line x1="{left}" x2="{width - 60}" y1="{_f(y(0.5))}" y2="{_f(y(0.5))}" stroke="#64748b" '
               f'stroke-dasharray="6 4"/><text x="{width - 56}" y="{_f(y(0.5) + 4)}" font-size="11" '
               f'fill="#64748b">chance</text>')
    series = [("candidate", candidate, CANDIDATE_COLOUR, 0), ("champion", champion, CHAMPION_COLOUR, 1)]
    for i, group in enumerate(groups):
        x0 = left + i * group_w + (group_w - 2 * bar_w - 6) / 2
        for who, data, colour, k in series:
            entry = (data or {}).get(group) or {}
            value, lo, hi = entry.get("value"), entry.get("ci_low"), entry.get("ci_high")
            x = x0 + k * (bar_w + 6)
            if data is None:
                continue
            if not _finite(value):
                out.append(f'<text x="{_f(x + bar_w / 2)}" y="{_f(y(0) - 4)}" text-anchor="middle" font-size="10" '
                           f'fill="#64748b">n/a</text>')
                continue
            tip = f"{group}: {who} {_num(value)} (interval {_ci(lo, hi)})"
            out.append(f'<rect x="{_f(x)}" y="{_f(y(value))}" width="{bar_w}" height="{_f(y(0) - y(value))}" '
                       f'fill="{colour}"><title>{_esc(tip)}</title></rect>')
            if _finite(lo) and _finite(hi):
                cx = x + bar_w / 2
                out.append(f'<path d="M{_f(cx)} {_f(y(hi))}V{_f(y(lo))}M{_f(cx - 6)} {_f(y(hi))}H{_f(cx + 6)}'
                           f'M{_f(cx - 6)} {_f(y(lo))}H{_f(cx + 6)}" stroke="#0f172a" stroke-width="1.5" fill="none"/>')
        label = group if len(group) <= 14 else group[:13] + "…"
        weight = ' font-weight="700"' if group == "mean" else ""
        out.append(f'<text x="{_f(left + i * group_w + group_w / 2)}" y="{top + plot_h + 18}" text-anchor="middle" '
                   f'font-size="12" fill="#0f172a"{weight}><title>{_esc(group)}</title>{_esc(label)}</text>')
    if not groups:
        out.append(f'<text x="{_f(width / 2)}" y="{_f(y(0.5) - 10)}" text-anchor="middle" font-size="13" '
                   f'fill="#64748b">no generator intervals</text>')
    out.append(_legend([("candidate", CANDIDATE_COLOUR),
                        ("champion" if champion is not None else "no champion", CHAMPION_COLOUR)], left, 12))
    out.append(f'<text x="{left}" y="{height - 8}" font-size="11" fill="#475569">whiskers: bootstrap interval; '
               f'dashed line: chance (0.5)</text>')
    out.append("</svg>")
    return "".join(out)


def _legend(items: Sequence[tuple[str, str]], x: float, y: float, stacked: bool = False) -> str:
    """Colour swatches with labels, in a row (or one under the other)."""
    out = []
    for label, colour in items:
        out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{_f(x + 17)}" y="{_f(y + 10.5)}" font-size="12" fill="#0f172a">{_esc(label)}</text>')
        if stacked:
            y += 16
        else:
            x += 30 + 7 * len(label)
    return "".join(out)


def _reliability_points(bins: Sequence[Mapping[str, Any]] | None) -> list[tuple[float, float, int]]:
    return [(b["mean_probability"], b["fake_rate"], int(b.get("count") or 0)) for b in bins or ()
            if (b.get("count") or 0) > 0 and _finite(b.get("mean_probability")) and _finite(b.get("fake_rate"))]


def reliability_svg(candidate_bins: Sequence[Mapping[str, Any]] | None,
                    champion_bins: Sequence[Mapping[str, Any]] | None,
                    candidate_ece: float | None = None, champion_ece: float | None = None) -> str:
    """Reliability diagram: each bin's fake rate against its mean predicted P(fake), the diagonal
    (perfect calibration) dashed, dot area by bin size; ECE in the legend. Either model may be None."""
    left, top, size, bottom, right = 48, 48, 260, 44, 20
    width, height = left + size + right, top + size + bottom

    def px(v: float) -> float:
        return left + size * min(max(v, 0.0), 1.0)

    def py(v: float) -> float:
        return top + size * (1 - min(max(v, 0.0), 1.0))

    title = "Reliability: fake rate vs mean predicted P(fake)"
    out = [f'<svg {SVG_NS} class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="{_esc(title)}"><title>{_esc(title)}</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
           f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#cbd5e1"/>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<text x="{_f(px(tick))}" y="{top + size + 15}" text-anchor="middle" font-size="11" '
                   f'fill="#475569">{tick:g}</text><text x="{left - 6}" y="{_f(py(tick) + 4)}" text-anchor="end" '
                   f'font-size="11" fill="#475569">{tick:g}</text>')
    out.append(f'<line x1="{_f(px(0))}" y1="{_f(py(0))}" x2="{_f(px(1))}" y2="{_f(py(1))}" stroke="#64748b" '
               f'stroke-dasharray="6 4"/>')
    out.append(f'<text x="{_f(left + size / 2)}" y="{height - 8}" text-anchor="middle" font-size="11" '
               f'fill="#475569">mean predicted P(fake)</text>'
               f'<text transform="translate(13 {_f(top + size / 2)}) rotate(-90)" text-anchor="middle" '
               f'font-size="11" fill="#475569">fake rate</text>')
    series = [("candidate", candidate_bins, CANDIDATE_COLOUR, candidate_ece),
              ("champion", champion_bins, CHAMPION_COLOUR, champion_ece)]
    most = max([c for _, bins, _, _ in series for _, _, c in _reliability_points(bins)], default=1)
    legend = []
    for who, bins, colour, ece in series:
        if bins is None:
            continue
        points = _reliability_points(bins)
        legend.append((f"{who} (ECE {_num(ece)})", colour))
        if len(points) > 1:
            out.append(f'<polyline points="{" ".join(f"{_f(px(p))},{_f(py(r))}" for p, r, _ in points)}" '
                       f'fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for p, r, count in points:
            radius = 2.5 + 5 * math.sqrt(count / most)
            out.append(f'<circle cx="{_f(px(p))}" cy="{_f(py(r))}" r="{_f(radius)}" fill="{colour}" '
                       f'fill-opacity="0.85" stroke="#ffffff"><title>{_esc(who)}: {count} clips, mean P(fake) '
                       f'{_num(p)}, fake rate {_num(r)}</title></circle>')
    if not any(_reliability_points(bins) for _, bins, _, _ in series):
        out.append(f'<text x="{_f(left + size / 2)}" y="{_f(top + size / 2)}" text-anchor="middle" font-size="12" '
                   f'fill="#64748b">no fake probabilities scored</text>')
    out.append(_legend(legend, left, 6, stacked=True))
    out.append("</svg>")
    return "".join(out)


def timeline_svg(duration_s: float, predicted: Sequence[tuple[str, float, float]],
                 truth: Sequence[tuple[str, float, float]], frame_times: Sequence[float] = (),
                 width: int = 720) -> str:
    """Predicted (solid red) and true (dashed green) time spans over the clip, frame times as ticks.
    Spans are ``(label, start_s, end_s)``; the scale stretches past the clip end when a span does."""
    ends = [e for _, s, e in (*predicted, *truth) if _finite(e)] + [t for t in frame_times if _finite(t)]
    scale = max([duration_s if _finite(duration_s) else 0.0, *ends]) or 1.0
    left, right, lane_h = 74, 16, 16
    plot_w = width - left - right
    height = 4 + 2 * (lane_h + 6) + 26

    def x(t: float) -> float:
        return left + plot_w * min(max(t, 0.0), scale) / scale

    out = [f'<svg {SVG_NS} class="timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="time spans"><title>predicted and true time spans</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    lanes = [("predicted", predicted, PREDICTED_COLOUR, 4), ("truth", truth, TRUTH_COLOUR, 4 + lane_h + 6)]
    for name, spans, colour, y0 in lanes:
        out.append(f'<text x="{left - 8}" y="{y0 + 12}" text-anchor="end" font-size="12" fill="{colour}">{name}</text>'
                   f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{lane_h}" fill="#f1f5f9"/>')
        for label, start, end in spans:
            if not (_finite(start) and _finite(end)):
                continue
            lo, hi = sorted((start, end))
            dash = ' stroke-dasharray="4 3"' if name == "truth" else ""
            out.append(f'<rect x="{_f(x(lo))}" y="{y0}" width="{_f(max(x(hi) - x(lo), 2))}" height="{lane_h}" '
                       f'fill="{colour}" fill-opacity="{0.35 if name == "truth" else 0.75}" stroke="{colour}" '
                       f'stroke-width="1.5"{dash}><title>{_esc(label)}: {lo:.2f}–{hi:.2f} s</title></rect>')
    axis_y = 4 + 2 * (lane_h + 6)
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{axis_y}" y2="{axis_y}" stroke="#94a3b8"/>')
    for t in frame_times:
        if _finite(t):
            out.append(f'<line x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{axis_y}" y2="{axis_y + 5}" stroke="#64748b"/>')
    if _finite(duration_s) and 0 < duration_s < scale:
        out.append(f'<line x1="{_f(x(duration_s))}" x2="{_f(x(duration_s))}" y1="2" y2="{axis_y + 5}" '
                   f'stroke="#0f172a" stroke-dasharray="2 2"><title>clip end {duration_s:.2f} s</title></line>')
    out.append(f'<text x="{left}" y="{axis_y + 18}" font-size="11" fill="#475569">0 s</text>'
               f'<text x="{left + plot_w}" y="{axis_y + 18}" text-anchor="end" font-size="11" fill="#475569">'
               f'{scale:.2f} s</text><text x="{_f(left + plot_w / 2)}" y="{axis_y + 18}" text-anchor="middle" '
               f'font-size="11" fill="#475569">ticks: frames</text></svg>')
    return "".join(out)


# ----------------------------------------------------------------------------------- frame strips

@lru_cache(maxsize=4)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _in_span(t: float, span: tuple[float, float] | None) -> bool:
    """A frame at time t shows evidence with this span (no span: every frame)."""
    if span is None:
        return True
    if not all(_finite(v) for v in span):
        return False
    lo, hi = sorted(span)
    return lo - 1e-6 <= t <= hi + 1e-6


def _box_px(bbox: Sequence[float], w: int, h: int) -> tuple[float, float, float, float] | None:
    if len(bbox) != 4 or not all(_finite(v) for v in bbox):
        return None
    x1, x2 = sorted(min(max(v, 0.0), 1.0) * (w - 1) for v in (bbox[0], bbox[2]))
    y1, y2 = sorted(min(max(v, 0.0), 1.0) * (h - 1) for v in (bbox[1], bbox[3]))
    return x1, y1, x2, y2


def _dashed_rectangle(draw, box: tuple[float, float, float, float], colour, width: int = 2,
                      dash: float = 7, gap: float = 4) -> None:
    x1, y1, x2, y2 = box
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = math.hypot(bx - ax, by - ay)
        pos = 0.0
        while pos < length:
            end = min(pos + dash, length)
            f0, f1 = pos / length, end / length
            draw.line([(ax + (bx - ax) * f0, ay + (by - ay) * f0), (ax + (bx - ax) * f1, ay + (by - ay) * f1)],
                      fill=colour, width=width)
            pos = end + gap


def _label(draw, text: str, x: float, y: float, colour, max_w: float, below: bool) -> None:
    """A filled label with white text: over the box's top-left corner (y: its top; outside the box when
    there is room), or inside its bottom-left corner (``below``; y: its bottom)."""
    font = _font(11)
    text = text or "?"
    while len(text) > 1 and draw.textlength(text, font=font) + 6 > max_w:
        text = text[:-4] + "..." if len(text) > 4 else text[:-1]
    tw, th = draw.textlength(text, font=font) + 6, 14
    x = min(max(x, 0), max(max_w - tw, 0))
    y = y - th if below or y >= th else y
    draw.rectangle([x, y, x + tw, y + th], fill=colour)
    draw.text((x + 3, y + 1), text, fill=(255, 255, 255), font=font)


def _strip_indices(times: Sequence[float], spans: Sequence[tuple[float, float]], max_frames: int) -> list[int]:
    """Evenly spaced frames, plus one inside each span that no chosen frame falls in."""
    chosen = set(subsample(len(times), max_frames))
    for span in spans:
        if any(_in_span(times[i], span) for i in chosen):
            continue
        inside = [i for i, t in enumerate(times) if _in_span(t, span)]
        if inside and len(chosen) < max_frames + 4:
            chosen.add(inside[len(inside) // 2])
    return sorted(chosen)


def frame_strip_png(frames_dir: Path | str, evidence: Sequence[EvidenceItem], truth: Sequence[TruthArtifact],
                    height: int = STRIP_HEIGHT, max_frames: int = MAX_STRIP_FRAMES) -> bytes:
    """A row of the clip's frames (scaled to ``height`` px) with, on each frame whose time is inside
    an evidence's span, the predicted boxes (solid red, labelled with the type) and the ground-truth
    boxes (dashed green, labelled at the bottom); each frame's time under it. PNG bytes.

    Raises ValueError when the folder does not follow the Skyra layout, OSError on an unreadable image.
    """
    from PIL import Image, ImageDraw

    frames = read_frames(frames_dir)
    spans = [e.t for e in evidence if e.t is not None and e.bbox is not None] + [a.t for a in truth]
    shown = [frames[i] for i in _strip_indices([t for t, _ in frames], spans, max_frames)]
    gap, caption_h = 6, 18
    tiles = []
    for t, png in shown:
        with Image.open(png) as im:
            im = im.convert("RGB")
            w = max(1, round(im.width * height / max(im.height, 1)))
            tile = im.resize((w, height), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(tile)
        for a in truth:
            box = _box_px(a.bbox, tile.width, tile.height)
            if box and _in_span(t, a.t):
                _dashed_rectangle(draw, box, TRUTH_RGB)
                _label(draw, a.type, box[0], box[3], TRUTH_RGB, tile.width, below=True)
        for e in evidence:
            box = _box_px(e.bbox, tile.width, tile.height) if e.bbox is not None else None
            if box and _in_span(t, e.t):
                draw.rectangle(box, outline=PREDICTED_RGB, width=2)
                _label(draw, e.type or "(no type)", box[0], box[1], PREDICTED_RGB, tile.width, below=False)
        tiles.append((t, tile))
    strip = Image.new("RGB", (sum(tile.width for _, tile in tiles) + gap * (len(tiles) - 1), height + caption_h),
                      (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    x = 0
    for t, tile in tiles:
        strip.paste(tile, (x, 0))
        text = f"{t:.2f} s"
        draw.text((x + (tile.width - draw.textlength(text, font=_font(12))) / 2, height + 2), text,
                  fill=(51, 65, 85), font=_font(12))
        x += tile.width + gap
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------- sections

def _passed_cell(passed: bool | None) -> tuple[str, str]:
    return ("✓", "ok") if passed else ("✗", "bad") if passed is False else ("–", "na")


def _rule_row(r: RuleResult) -> list[Cell]:
    return [r.name, r.kind, (_num(r.value), "num"), (_ci(r.ci_low, r.ci_high), "num"), (f"{r.threshold:g}", "num"),
            _passed_cell(r.passed), r.detail]


def _verdict_section(decision: GateDecision) -> _Part:
    word = "PASS" if decision.verdict == "pass" else "FAIL"
    line = verdict_line(decision)
    facts = [f"decision {decision.decision_id}"]
    facts += [f"created {decision.created_at}"] if decision.created_at else []
    facts += [f"code {decision.code_rev}"] if decision.code_rev else []
    failed = [r for r in decision.rules if r.passed is False]
    html_parts = [f'<div class="banner {decision.verdict}"><div class="word">{word}</div>'
                  f'<p class="verdict-line">{_esc(line)}</p><p class="facts">{_esc(" · ".join(facts))}</p></div>']
    md_parts = [f"**{_md(line)}**", _md(" · ".join(facts))]
    if failed:
        html_parts.append("<h3>Failing rules</h3><ul class=\"failed\">" + "".join(
            f"<li><strong>{_esc(r.name)}</strong>: {_esc(r.detail)}</li>" for r in failed) + "</ul>")
        md_parts.append("Failing rules:\n\n" + "\n".join(f"- **{_md(r.name)}**: {_md(r.detail)}" for r in failed))
    elif decision.verdict == "pass":
        html_parts.append("<p>No rule failed.</p>")
        md_parts.append("No rule failed.")
    if decision.notes:
        html_parts.append("<h3>Notes</h3><ul>" + "".join(f"<li>{_esc(n)}</li>" for n in decision.notes) + "</ul>")
        md_parts.append("Notes:\n\n" + "\n".join(f"- {_md(n)}" for n in decision.notes))
    table = _table(["Rule", "Kind", "Value", "Interval", "Threshold", "Passed", "Detail"],
                   [_rule_row(r) for r in decision.rules], cls="rules")
    rules_heading = _heading(3, "All rules", "rules")
    return _Part(
        '<section id="verdict"><h2>Verdict</h2>' + "".join(html_parts) + rules_heading.html + table.html + "</section>",
        "## Verdict\n\n" + "\n\n".join(md_parts) + "\n\n" + rules_heading.md + "\n\n" + table.md)


def _generator_table(cand_int: Mapping[str, Any] | None, champ_int: Mapping[str, Any] | None,
                     cand_m: Mapping[str, Any] | None, champ_m: Mapping[str, Any] | None) -> _Part:
    rows = []
    for g in _generator_order(cand_int, champ_int):
        c, h = (cand_int or {}).get(g) or {}, (champ_int or {}).get(g) or {}
        path = ("skyra",) if g == "mean" else ("skyra", "per_generator", g)
        per_gen = _get(cand_m, "skyra.per_generator") or {}
        pairs = (sum(v.get("pairs") or 0 for v in per_gen.values() if isinstance(v, Mapping)) if g == "mean"
                 else _get(cand_m, (*path, "pairs")))
        rows.append([g, (_num(pairs), "num"), (_num(c.get("value")), "num"),
                     (_ci(c.get("ci_low"), c.get("ci_high")), "num"),
                     (_num(h.get("value")), "num"), (_ci(h.get("ci_low"), h.get("ci_high")), "num"),
                     (_delta(c.get("value"), h.get("value")), "num"),
                     (_num(_get(cand_m, (*path, "fake_recall"))), "num"),
                     (_num(_get(champ_m, (*path, "fake_recall"))), "num")])
    return _table(["Generator", "Pairs", "Candidate pBA", "Interval", "Champion pBA", "Interval", "Δ",
                   "Fake recall (cand.)", "Fake recall (champ.)"], rows)


def _headline_table(cand: Mapping[str, Any] | None, champ: Mapping[str, Any] | None) -> _Part:
    rows = []
    for label, path, better in HEADLINE:
        c, h = _get(cand, path), _get(champ, path)
        d = _delta(c, h)
        sign = (c - h) * better if _finite(c) and _finite(h) else 0
        rows.append([label, (_num(c), "num"), (_num(h), "num"),
                     (d, "num better" if sign > 0 else "num worse" if sign < 0 else "num")])
    return _table(["Metric", "Candidate", "Champion", "Δ"], rows, cls="headline")


def _confusion_table(confusion: Mapping[str, Mapping[str, Any]] | None) -> _Part:
    columns = ("Real", "Fake", "Error")
    rows = []
    for truth in ("Real", "Fake"):
        row_counts = {a: (_get(confusion, f"{truth}.{a}") or 0) for a in columns}
        total = sum(row_counts.values())
        cells: list[Cell] = [truth]
        for answer in columns:
            n = row_counts[answer]
            share = f" ({n / total:.0%})" if total else ""
            cls = "num cm-right" if answer == truth else "num cm-wrong" if n else "num"
            cells.append((f"{n}{share}", cls))
        rows.append(cells)
    return _table(["truth \\ answer", *columns], rows, cls="confusion")


def _artifact_table(cand: Mapping[str, Any] | None, champ: Mapping[str, Any] | None) -> _Part:
    c_types, h_types = _get(cand, "per_artifact_type") or {}, _get(champ, "per_artifact_type") or {}
    headers = ["Artifact type", "Clips"]
    for label, _ in ARTIFACT_COLUMNS:
        headers += [f"{label} (cand.)", f"{label} (champ.)"]
    rows = []
    for kind in sorted(set(c_types) | set(h_types)):
        c, h = c_types.get(kind) or {}, h_types.get(kind) or {}
        row: list[Cell] = [kind, (_num(c.get("clips", h.get("clips"))), "num")]
        for _, key in ARTIFACT_COLUMNS:
            row += [(_num(c.get(key)), "num"), (_num(h.get(key)), "num")]
        rows.append(row)
    if not rows:
        return _para("No clip of this set has known artifacts.", "muted")
    return _table(headers, rows)


def _set_section(name: str, metrics: Mapping[str, Any], intervals: Mapping[str, Any], assets: _Assets) -> _Part:
    cand_m, champ_m = metrics.get("candidate"), metrics.get("champion")
    cand_i, champ_i = intervals.get("candidate"), intervals.get("champion")
    slug = _slug(name)
    caption = (f"{name}: paired balanced accuracy per generator and their mean, candidate vs champion, "
               "with bootstrap intervals")
    reliability = reliability_svg(_get(cand_m, "reliability"), _get(champ_m, "reliability") if champ_m else None,
                                  _get(cand_m, "ece"), _get(champ_m, "ece"))
    ece_line = f"ECE: candidate {_num(_get(cand_m, 'ece'))}, champion {_num(_get(champ_m, 'ece'))}; " \
               f"scored clips: candidate {_num(_get(cand_m, 'scored_clips'))}, " \
               f"champion {_num(_get(champ_m, 'scored_clips'))}."
    confusions = [_heading(4, "Candidate"), _confusion_table(_get(cand_m, "confusion"))]
    champion_confusion = [_heading(4, "Champion"), _confusion_table(_get(champ_m, "confusion")) if champ_m
                          else _para("No champion.", "muted")]
    parts = [
        _heading(2, f"Evaluation set: {name}", f"set-{slug}"),
        _para(f"Clips: candidate {_num(_get(cand_m, 'clips'))}, champion {_num(_get(champ_m, 'clips'))}."),
        _heading(3, "Per generator: paired balanced accuracy", f"generators-{slug}"),
        _svg_figure(bar_chart_svg(cand_i, champ_i), f"{slug}-generators", caption, assets),
        _generator_table(cand_i, champ_i, cand_m, champ_m),
        _heading(3, "Headline numbers", f"headline-{slug}"),
        _headline_table(cand_m, champ_m),
        _heading(3, "Confusion matrices (rows: ground truth, columns: answer)", f"confusion-{slug}"),
        _join([_join(confusions, "<div>", "</div>"), _join(champion_confusion, "<div>", "</div>")],
              '<div class="row">', "</div>"),
        _heading(3, "Reliability", f"reliability-{slug}"),
        _svg_figure(reliability, f"{slug}-reliability", f"{name}: reliability diagram", assets),
        _para(ece_line),
        _heading(3, "Per artifact type", f"artifacts-{slug}"),
        _artifact_table(cand_m, champ_m),
    ]
    return _join(parts, f'<section class="set" id="section-{slug}">', "</section>")


def _span_text(t: tuple[float, float] | None) -> str:
    return "–" if t is None else f"{_num(t[0], 2)}–{_num(t[1], 2)} s"


def _box_text(b: tuple[float, ...] | None) -> str:
    return "–" if b is None else "[" + ", ".join(_num(v, 2) for v in b) + "]"


def _example_part(i: int, ex: ReportExample, assets: _Assets) -> _Part:
    p, clip = ex.prediction, ex.clip
    word = "HIT" if ex.hit else "MISS"
    head = _heading(3, f"{i}. {word} · {ex.set} · {clip.video_id}", f"example-{i}")
    facts = _para(f"answer {p.answer} vs ground truth {clip.gt} · generator {clip.aigc_model_name} · "
                  f"model {p.mllm_model_name} · P(fake) {_num(p.fake_probability)} · latency {_num(p.latency_s, 2)} s · "
                  f"format {'ok' if p.format_ok else 'broken'}")
    parts = [facts]
    frame_times: list[float] = []
    try:
        frame_times = [t for t, _ in read_frames(ex.frames_dir)]
        png = frame_strip_png(ex.frames_dir, p.evidence, clip.truth)
        parts.append(_png_figure(png, f"example-{i}", f"frames of {clip.video_id} with evidence boxes", assets,
                                 cls="strip"))
    except (ValueError, OSError) as exc:
        parts.append(_para(f"frames unavailable: {exc}", "muted"))
    predicted = [(e.type or "(no type)", *e.t) for e in p.evidence if e.t is not None]
    true_spans = [(a.type, *a.t) for a in clip.truth]
    parts.append(_svg_figure(timeline_svg(clip.duration_s, predicted, true_spans, frame_times),
                             f"example-{i}-timeline", "time spans over the clip: predicted (red), truth (green, "
                             "dashed)", assets))
    rows = [["predicted", e.type or "–", _span_text(e.t), _box_text(e.bbox)] for e in p.evidence]
    rows += [["truth", a.type, _span_text(a.t), _box_text(a.bbox)] for a in clip.truth]
    parts.append(_table(["Source", "Type", "Time", "Box"], rows) if rows
                 else _para("No predicted or true evidence.", "muted"))
    parts.append(_para("Raw response:"))
    parts.append(_code_block(p.response))
    body = _join(parts)
    badge = f'<span class="badge {word.lower()}">{word}</span>'
    return _Part(f'<article class="example {word.lower()}">{head.html.replace("</h3>", " " + badge + "</h3>", 1)}'
                 f"{body.html}</article>", f"{head.md}\n\n{body.md}")


def _examples_section(examples: Sequence[ReportExample], assets: _Assets) -> _Part:
    legend = ("Boxes: predicted evidence solid red, labelled with its type; ground truth dashed green. A box is "
              "drawn on the frames whose time is inside its span.")
    parts = [_heading(2, "Example explanations: hits and misses", "examples"), _para(legend, "muted")]
    parts += [_example_part(i, ex, assets) for i, ex in enumerate(examples, start=1)]
    if not examples:
        parts.append(_para("No examples.", "muted"))
    return _join(parts, '<section id="examples">', "</section>")


CSS = """
:root{--cand:#2563eb;--champ:#94a3b8;--pass:#15803d;--fail:#b91c1c}
*{box-sizing:border-box}
body{margin:0;background:#f8fafc;color:#0f172a;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:22px;margin:8px 0 14px}h2{font-size:20px;margin:4px 0 10px}h3{font-size:16px;margin:18px 0 6px}
h4{font-size:14px;margin:6px 0 4px;color:#334155}
section,article{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:16px 22px;margin:16px 0}
nav a{margin-right:14px;color:#1d4ed8}
.banner{border-radius:12px;padding:18px 24px;color:#fff;margin-bottom:10px}
.banner.pass{background:var(--pass)}.banner.fail{background:var(--fail)}
.banner .word{font-size:64px;font-weight:800;letter-spacing:.05em;line-height:1}
.banner p{margin:6px 0 0}.verdict-line{font-size:18px;font-weight:600}.facts{opacity:.9;font-size:13px}
ul.failed li{margin:3px 0}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13.5px}
th,td{border:1px solid #e2e8f0;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.rules td:last-child{color:#334155;font-size:12.5px}
.ok,.better{color:var(--pass);font-weight:700}.bad,.worse{color:var(--fail);font-weight:700}.na{color:#64748b}
td.cm-right{background:#dcfce7}td.cm-wrong{background:#fee2e2}
.row{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}
figure{margin:6px 0;overflow-x:auto}figcaption{color:#475569;font-size:13px}
svg{max-width:100%;height:auto;display:block}
img.strip{display:block;max-width:100%;height:auto;border:1px solid #e2e8f0;margin:6px 0}
article.example{border-left:6px solid var(--fail)}article.example.hit{border-left-color:var(--pass)}
.badge{display:inline-block;color:#fff;border-radius:6px;padding:0 8px;font-size:13px;margin-left:6px}
.badge.hit{background:var(--pass)}.badge.miss{background:var(--fail)}
pre.response{white-space:pre-wrap;word-break:break-word;background:#0f172a;color:#e2e8f0;padding:10px 12px;
border-radius:8px;font-size:12.5px;max-height:280px;overflow:auto}
.muted{color:#64748b}
"""


def _html_page(title: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="#{_esc(anchor)}">{_esc(label)}</a>' for label, anchor in nav)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{_esc(title)}</title><style>{CSS}</style></head>'
            f"<body><main><h1>{_esc(title)}</h1><nav>{links}</nav>\n{body}\n</main></body></html>\n")


def _set_names(decision: GateDecision, metrics: Mapping[str, Any], intervals: Mapping[str, Any]) -> list[str]:
    names = set(metrics) | set(intervals) | {r.set for r in decision.rules}
    return [s for s in SETS if s in names] + sorted(names - set(SETS))


def write_gate_report(decision: GateDecision, metrics: Mapping[str, Mapping[str, dict | None]],
                      intervals: Mapping[str, Mapping[str, dict | None]], examples: Sequence[ReportExample],
                      out_dir: Path) -> tuple[Path, Path]:
    """Write out_dir/report.html (self-contained: images inlined as data: URIs, no external fetch, no JS needed)
    and out_dir/report.md (its twin: the same sections as Markdown tables, images as PNG files under out_dir/img/).
    Returns (html_path, md_path).

    ``metrics[set]['candidate'|'champion']``: :func:`vigil.core.metrics.evaluation_metrics` dicts (champion
    None without one); ``intervals[set]['candidate'|'champion']``: :func:`vigil.core.gate.generator_intervals`.
    Charts are SVG: inline in the HTML, ``img/*.svg`` beside the Markdown; frame strips are PNG.
    """
    out_dir = Path(out_dir)
    assets = _Assets()
    sets = _set_names(decision, metrics, intervals)
    sections = [_verdict_section(decision)]
    sections += [_set_section(s, metrics.get(s) or {}, intervals.get(s) or {}, assets) for s in sets]
    sections.append(_examples_section(examples, assets))
    title = f"Gate report: {decision.candidate}"
    nav = [("Verdict", "verdict"), ("Rules", "rules")] + [(f"Set {s}", f"set-{_slug(s)}") for s in sets] + [
        ("Examples", "examples")]
    img_dir = out_dir / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    for name, data in assets.files.items():
        (img_dir / name).write_bytes(data)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(_html_page(title, nav, "\n".join(s.html for s in sections)), encoding="utf-8")
    md_path.write_text(f"# {_md(title)}\n\n" + "\n\n".join(s.md for s in sections) + "\n", encoding="utf-8")
    return html_path, md_path
