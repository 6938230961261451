"""Charts drawn with matplotlib into inline SVG (:class:`~vigil.reports.document.Svg`).

- :func:`grouped_bars`: per group (a generator, say), one bar per series (candidate, champion) with an
  interval whisker, on a fixed value axis with an optional dashed reference line (chance).
- :func:`reliability`: a reliability diagram: each bin's observed rate against its mean predicted
  probability, dot area by bin size, the diagonal (perfect calibration) dashed.
- :func:`timeline`: time spans in lanes (predicted, truth) over a clip, frame times as small ticks.

Each chart is a :class:`matplotlib.figure.Figure` (no pyplot, no global figure state), saved as SVG with
text kept as ``<text>`` (``svg.fonttype: none``; laid out with matplotlib's own DejaVu Sans, so the same
input gives the same bytes) and then tidied for inlining: no XML prolog or metadata, ids made unique to
the chart, the chart's ``title`` as its ``<title>`` and accessible name, and every data mark (a bar, a dot,
a span) an element of class ``mark`` with its own ``<title>`` (the tooltip). Texts from data are never
parsed as mathtext.

>>> svg = grouped_bars(["a", "b"], [BarSeries("model", "#2563eb", {"a": Estimate(0.5), "b": Estimate(0.75)})],
...                    title="Accuracy per group")
>>> svg.markup.startswith("<svg"), svg.markup.count('class="mark"'), "<title>Accuracy per group</title>" in svg.markup
(True, 2, True)
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from vigil.reports.document import Svg
from vigil.reports.format import finite, interval, num

__all__ = ["BarSeries", "CalibrationSeries", "Estimate", "Lane", "Span", "grouped_bars", "reliability", "timeline"]

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
INK, SOFT, FAINT, GRID = "#0f172a", "#475569", "#64748b", "#e2e8f0"
PX = 1 / 96  # inches per CSS pixel: figure sizes are given in pixels

_RC = {
    "svg.fonttype": "none",  # text stays text: searchable, accessible, small
    "svg.hashsalt": "vigil.reports",  # ids derived from content, not random
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # layout with matplotlib's own font, whatever the system has
    "font.size": 8.5,
    "text.color": INK,
    "axes.edgecolor": "#cbd5e1",
    "axes.labelcolor": SOFT,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": SOFT,
    "ytick.color": SOFT,
    "legend.frameon": False,
    "figure.facecolor": "#ffffff",
}
# rcParams are process-wide: charts are drawn one at a time while the kit's settings are in force.
_RC_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Estimate:
    """A value with an optional interval (None where not measured)."""

    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class BarSeries:
    """One bar per group; ``values`` None: the series is absent (legend entry only, no bars)."""

    label: str
    colour: str
    values: Mapping[str, Estimate] | None


@dataclass(frozen=True)
class CalibrationSeries:
    """Bins as ``(mean predicted probability, observed rate, count)``; ``points`` None: absent."""

    label: str
    colour: str
    points: Sequence[tuple[float, float, int]] | None


@dataclass(frozen=True)
class Span:
    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Lane:
    """A row of time spans; ``dashed``: outlined dashed and paler (ground truth, say)."""

    label: str
    colour: str
    spans: Sequence[Span]
    dashed: bool = False


# ------------------------------------------------------------------------------------------- output

class _Marks:
    """Tooltips for the artists of one chart, by the gid given to each."""

    def __init__(self) -> None:
        self.marks: dict[str, str] = {}  # data marks: class="mark" and a <title>
        self.tips: dict[str, str] = {}  # other elements with a <title> (a shortened label, say)

    def mark(self, tooltip: str) -> str:
        gid = f"mark-{len(self.marks)}"
        self.marks[gid] = tooltip
        return gid

    def tip(self, tooltip: str) -> str:
        gid = f"tip-{len(self.tips)}"
        self.tips[gid] = tooltip
        return gid


def _prepend_title(element: ET.Element, text: str) -> None:
    title = ET.Element(f"{{{SVG_NS}}}title")
    title.text = text
    element.insert(0, title)


def _finish(fig: Figure, title: str, marks: _Marks) -> Svg:
    """Save the figure as SVG and tidy it for inlining (see the module's docstring)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    raw = buffer.getvalue()
    root = ET.fromstring(raw)
    prefix = "c" + hashlib.sha1(raw.encode()).hexdigest()[:10] + "-"
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag.split("}")[-1]
            if tag == "metadata" or (tag == "style" and parent.tag.endswith("defs")):
                parent.remove(child)  # RDF with external URLs; a <style> would apply to the whole page
    for element in root.iter():
        gid = element.get("id")
        if gid in marks.marks:
            element.set("class", "mark")
            _prepend_title(element, marks.marks[gid])
        elif gid in marks.tips:
            _prepend_title(element, marks.tips[gid])
    for element in root.iter():
        if element.get("id"):
            element.set("id", prefix + element.get("id"))
        href = element.attrib.pop(f"{{{XLINK_NS}}}href", None)
        if href is not None:
            element.set("href", href)
        for key, value in element.attrib.items():
            if key == "href" and value.startswith("#"):
                element.set(key, "#" + prefix + value[1:])
            elif "url(#" in value:
                element.set(key, re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", value))
    root.set("class", "chart")
    root.set("role", "img")
    root.set("aria-label", title)
    root.set("style", "stroke-linejoin:round;stroke-linecap:butt")  # what the removed <style> said
    _prepend_title(root, title)
    ET.register_namespace("", SVG_NS)
    return Svg(ET.tostring(root, encoding="unicode"), title)


def _draw(width_px: float, height_px: float, title: str, paint) -> Svg:
    with _RC_LOCK, matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width_px * PX, height_px * PX), layout="constrained")
        marks = _Marks()
        paint(fig, marks)
        return _finish(fig, title, marks)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _legend(ax, handles: list, ncols: int) -> None:
    if handles:
        legend = ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.01), ncols=ncols,
                           borderaxespad=0, handlelength=1.0, handleheight=1.0, columnspacing=1.2, fontsize=9)
        for text in legend.get_texts():
            text.set_parse_math(False)


# ------------------------------------------------------------------------------------------- charts

def grouped_bars(groups: Sequence[str], series: Sequence[BarSeries], *, title: str,
                 limits: tuple[float, float] = (0.0, 1.0), reference: tuple[float, str] | None = None,
                 emphasis: Collection[str] = (), note: str = "", empty: str = "no data") -> Svg:
    """Bars side by side per group, one per series, each with its interval as a whisker.

    A series with ``values`` None is only named in the legend; a group a present series has no finite
    value for reads "n/a" there. ``reference``: ``(value, label)`` of a dashed horizontal line;
    ``emphasis``: groups whose label is bold (a mean, say); ``note``: a line under the chart. Values are
    drawn clipped to ``limits``."""
    groups = list(groups)
    n_series = max(len(series), 1)
    width = max(380, 116 + 96 * max(len(groups), 1))

    def paint(fig: Figure, marks: _Marks) -> None:
        ax = fig.add_subplot()
        lo_lim, hi_lim = limits
        span = hi_lim - lo_lim
        bar_w = 0.8 / n_series
        ax.set_xlim(-0.5, max(len(groups), 1) - 0.5)
        ax.set_ylim(lo_lim, hi_lim)
        ax.set_yticks([lo_lim + span * k / 4 for k in range(5)])
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:g}")
        ax.grid(axis="y", color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        if reference is not None:
            ax.axhline(reference[0], color=FAINT, linestyle=(0, (6, 4)), linewidth=1)
            ax.text(1.01, reference[0], reference[1], transform=ax.get_yaxis_transform(), va="center",
                    color=FAINT, parse_math=False)
        for i, group in enumerate(groups):
            for k, s in enumerate(series):
                if s.values is None:
                    continue
                x = i + (k - (n_series - 1) / 2) * bar_w
                est = s.values.get(group) or Estimate(None)
                if not finite(est.value):
                    ax.text(x, lo_lim + span * 0.02, "n/a", ha="center", va="bottom", color=FAINT, fontsize=8)
                    continue
                value = min(max(est.value, lo_lim), hi_lim)
                tooltip = f"{group}: {s.label} {num(est.value)} (interval {interval(est.low, est.high)})"
                ax.bar(x, value - lo_lim, bottom=lo_lim, width=bar_w * 0.88, color=s.colour,
                       gid=marks.mark(tooltip))
                if finite(est.low) and finite(est.high):
                    lo, hi = sorted((min(max(est.low, lo_lim), hi_lim), min(max(est.high, lo_lim), hi_lim)))
                    ax.errorbar(x, (lo + hi) / 2, yerr=(hi - lo) / 2, fmt="none", ecolor=INK, elinewidth=1.3,
                                capsize=5, capthick=1.3)
        ax.set_xticks(range(len(groups)), [_shorten(g, 14) for g in groups], parse_math=False, fontsize=9.5,
                      color=INK)
        for group, label in zip(groups, ax.get_xticklabels(), strict=True):
            if group in emphasis:
                label.set_fontweight("bold")
            if len(group) > 14:
                label.set_gid(marks.tip(group))
        ax.tick_params(axis="x", length=0)
        if not groups:
            ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center", color=FAINT, fontsize=10,
                    parse_math=False)
        _legend(ax, [Patch(facecolor=s.colour, label=s.label) for s in series], ncols=len(series))
        if note:
            fig.supxlabel(note, x=0.01, ha="left", fontsize=8, color=SOFT)

    return _draw(width, 300, title, paint)


def reliability(series: Sequence[CalibrationSeries], *, title: str, x_label: str = "mean predicted probability",
                y_label: str = "observed rate", empty: str = "nothing scored") -> Svg:
    """Each bin as a dot (area by its count) at (mean predicted probability, observed rate), a series' dots
    joined by a line; the diagonal (perfect calibration) dashed. A series with ``points`` None is left out
    of the legend too; points with a count of 0 or a missing coordinate are not drawn."""
    kept = [(s, [(p, r, int(c)) for p, r, c in (s.points or ()) if c and c > 0 and finite(p) and finite(r)])
            for s in series if s.points is not None]
    most = max([c for _, points in kept for _, _, c in points], default=1)

    def paint(fig: Figure, marks: _Marks) -> None:
        ax = fig.add_subplot()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ticks = [0, 0.25, 0.5, 0.75, 1]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.spines[["top", "right"]].set_visible(True)
        ax.grid(color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.plot([0, 1], [0, 1], color=FAINT, linestyle=(0, (6, 4)), linewidth=1)
        ax.set_xlabel(x_label, parse_math=False)
        ax.set_ylabel(y_label, parse_math=False)
        handles = []
        for s, points in kept:
            handles.append(Line2D([], [], color=s.colour, marker="o", markersize=7, linewidth=1.5, label=s.label))
            if len(points) > 1:
                ax.plot([p for p, _, _ in points], [r for _, r, _ in points], color=s.colour, linewidth=1.5)
            for p, r, count in points:
                radius_pt = (2.5 + 5 * math.sqrt(count / most)) * 0.75
                tooltip = f"{s.label}: {count} clips, mean predicted {num(p)}, observed rate {num(r)}"
                ax.scatter([min(max(p, 0), 1)], [min(max(r, 0), 1)], s=(2 * radius_pt) ** 2, color=s.colour,
                           alpha=0.85, edgecolors="#ffffff", linewidths=1, zorder=3, clip_on=False,
                           gid=marks.mark(tooltip))
        if not any(points for _, points in kept):
            ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center", color=FAINT, fontsize=10,
                    parse_math=False)
        _legend(ax, handles, ncols=1)

    return _draw(340, 380, title, paint)


def timeline(lanes: Sequence[Lane], *, duration_s: float, title: str, ticks: Sequence[float] = (),
             width_px: int = 720) -> Svg:
    """Each lane's spans as bars over the clip (0 to its duration; further when a span or tick ends later,
    the clip's end then a dotted line), ``ticks`` (frame times) as small ticks on the time axis."""
    ends = [max(s.start, s.end) for lane in lanes for s in lane.spans if finite(s.start) and finite(s.end)]
    ends += [t for t in ticks if finite(t)]
    scale = max([duration_s if finite(duration_s) else 0.0, *ends]) or 1.0
    lane_h = 0.8

    def paint(fig: Figure, marks: _Marks) -> None:
        ax = fig.add_subplot()
        n = max(len(lanes), 1)
        ax.set_xlim(0, scale)
        ax.set_ylim(n - 0.5, -0.5)
        min_w = scale * 2 / width_px
        for row, lane in enumerate(lanes):
            ax.add_patch(Rectangle((0, row - lane_h / 2), scale, lane_h, facecolor="#f1f5f9", edgecolor="none"))
            for span in lane.spans:
                if not (finite(span.start) and finite(span.end)):
                    continue
                first, last = sorted((span.start, span.end))
                lo, hi = min(max(first, 0.0), scale), min(max(last, 0.0), scale)
                tooltip = f"{lane.label}: {span.label}: {first:.2f}–{last:.2f} s"
                ax.add_patch(Rectangle((lo, row - lane_h / 2), max(hi - lo, min_w), lane_h,
                                       facecolor=to_rgba(lane.colour, 0.35 if lane.dashed else 0.75),
                                       edgecolor=lane.colour, linewidth=1.3,
                                       linestyle=(0, (4, 3)) if lane.dashed else "solid", gid=marks.mark(tooltip)))
        ax.set_yticks(range(len(lanes)), [lane.label for lane in lanes], parse_math=False, fontsize=9.5)
        for lane, label in zip(lanes, ax.get_yticklabels(), strict=True):
            label.set_color(lane.colour)
        ax.tick_params(axis="y", length=0)
        ax.spines[["left"]].set_visible(False)
        ax.set_xticks([t for t in ticks if finite(t) and 0 <= t <= scale], minor=True)
        ax.xaxis.remove_overlapping_locs = False  # a frame at a whole second keeps its tick
        ax.tick_params(axis="x", which="minor", direction="in", length=6, width=1.2, color=INK)
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g} s")
        if finite(duration_s) and 0 < duration_s < scale:
            ax.axvline(duration_s, color=INK, linestyle=(0, (2, 2)), linewidth=1,
                       gid=marks.tip(f"clip end {duration_s:.2f} s"))
        ax.set_xlabel("time; small ticks: frames", fontsize=8)

    return _draw(width_px, 40 + 30 * max(len(lanes), 1), title, paint)
