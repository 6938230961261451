"""Charts: matplotlib drawn into inline SVG that is valid, titled, one mark per datum, and self-contained."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

from vigil.reports.charts import (
    BarSeries,
    CalibrationSeries,
    Estimate,
    Lane,
    Span,
    grouped_bars,
    reliability,
    timeline,
)
from vigil.reports.document import Document, Figure, Svg

NS = "{http://www.w3.org/2000/svg}"


def _root(svg: Svg) -> ET.Element:
    """The chart as XML (it must parse on its own: it is also the Markdown twin's .svg file)."""
    root = ET.fromstring(svg.markup)
    assert root.tag == f"{NS}svg"
    return root


def _marks(svg: Svg) -> list[ET.Element]:
    return [e for e in _root(svg).iter() if e.get("class") == "mark"]


def _tooltip(element: ET.Element) -> str:
    title = element.find(f"{NS}title")
    assert title is not None, "a mark without its <title>"
    return title.text or ""


def _texts(svg: Svg) -> list[str]:
    return ["".join(e.itertext()) for e in _root(svg).iter(f"{NS}text")]


def _bars() -> Svg:
    return grouped_bars(
        ["loom-2", "nova-6.1", "mean"],
        [BarSeries("candidate", "#2563eb", {"loom-2": Estimate(0.75, 0.56, 0.94), "nova-6.1": Estimate(1.0),
                                            "mean": Estimate(0.875, 0.78, 0.97)}),
         BarSeries("champion", "#94a3b8", {"loom-2": Estimate(1.0, 1.0, 1.0), "nova-6.1": Estimate(None),
                                           "mean": Estimate(0.9, 0.8, 1.0)})],
        title="Paired balanced accuracy per generator", reference=(0.5, "chance"), emphasis={"mean"},
        note="whiskers: bootstrap interval")


def test_grouped_bars_is_titled_inline_svg_with_one_mark_per_bar():
    # given: two series over three groups, one value not measured
    # when: the chart is drawn
    svg = _bars()
    root = _root(svg)

    # then: its first child is its <title>, which is also its accessible name
    assert root[0].tag == f"{NS}title" and root[0].text == "Paired balanced accuracy per generator"
    assert root.get("role") == "img" and root.get("aria-label") == svg.title == root[0].text
    # and: one mark per measured bar, each with its value and interval as a tooltip; the missing one reads n/a
    marks = _marks(svg)
    assert len(marks) == 5 and all(m.find(f"{NS}path") is not None for m in marks)
    assert _tooltip(marks[0]) == "loom-2: candidate 0.750 (interval [0.560, 0.940])"
    assert "nova-6.1: champion" not in " ".join(_tooltip(m) for m in marks)
    texts = _texts(svg)
    assert "n/a" in texts and "chance" in texts and "whiskers: bootstrap interval" in texts
    assert {"loom-2", "nova-6.1", "mean", "candidate", "champion"} <= set(texts)
    # and: each bar's height is its value on the 0–1 axis (marks in group order, candidate before champion)
    heights = [_path_height(m) for m in marks]
    per_unit = [h / v for h, v in zip(heights, [0.75, 1.0, 1.0, 0.875, 0.9], strict=True)]
    assert max(per_unit) - min(per_unit) < 1e-3 * max(per_unit)


def _path_height(mark: ET.Element) -> float:
    ys = [float(y) for y in re.findall(r"[ML] [\d.]+ ([\d.]+)", mark.find(f"{NS}path").get("d"))]
    return max(ys) - min(ys)


def test_an_absent_series_is_in_the_legend_only():
    # given: a champion that does not exist
    svg = grouped_bars(["a", "b"], [BarSeries("candidate", "#2563eb", {"a": Estimate(0.4), "b": Estimate(0.6)}),
                                    BarSeries("no champion", "#94a3b8", None)], title="t")

    # then: bars for the candidate only, and the legend still says there is no champion
    assert len(_marks(svg)) == 2 and "no champion" in _texts(svg)


def test_no_groups_says_so():
    svg = grouped_bars([], [BarSeries("candidate", "#2563eb", {})], title="t", empty="no generator intervals")
    assert _marks(svg) == [] and "no generator intervals" in _texts(svg)


def test_reliability_has_one_dot_per_scored_bin():
    # given: bins of two models, one bin empty and one without a mean probability
    cand = [(0.1, 0.0, 5), (0.5, 0.4, 10), (0.9, 1.0, 20), (0.3, 0.2, 0)]
    champ = [(0.2, 0.1, 8), (float("nan"), 0.5, 3)]

    # when: the diagram is drawn
    svg = reliability([CalibrationSeries("candidate (ECE 0.05)", "#2563eb", cand),
                       CalibrationSeries("champion (ECE 0.10)", "#94a3b8", champ)],
                      title="Reliability", x_label="mean predicted P(fake)", y_label="fake rate")

    # then: one dot per bin with clips and coordinates, its count in the tooltip; labels and legend as given
    marks = _marks(svg)
    assert len(marks) == 4
    assert [_tooltip(m).split(":")[0] for m in marks] == ["candidate (ECE 0.05)"] * 3 + ["champion (ECE 0.10)"]
    assert "20 clips" in _tooltip(marks[2])
    assert {"mean predicted P(fake)", "fake rate", "candidate (ECE 0.05)", "champion (ECE 0.10)"} <= set(_texts(svg))


def test_reliability_with_nothing_scored_says_so():
    svg = reliability([CalibrationSeries("candidate", "#2563eb", [])], title="R", empty="no fake probabilities scored")
    assert _marks(svg) == [] and "no fake probabilities scored" in _texts(svg)


def test_timeline_has_one_mark_per_span_and_marks_the_clip_end():
    # given: two predicted spans (one running past the clip's end) and one true span
    lanes = [Lane("predicted", "#dc2626", [Span("Shape Distortion", 0.5, 1.5), Span("Blur", 1.8, 2.6)]),
             Lane("truth", "#16a34a", [Span("Shape Distortion", 0.5, 1.0)], dashed=True)]

    # when: the timeline is drawn over a 2 s clip with four frames
    svg = timeline(lanes, duration_s=2.0, ticks=[0.0, 0.5, 1.0, 1.5], title="Spans over g/b1")

    # then: one mark per span, in lane order, with its times; the clip's end is marked with its time
    assert [_tooltip(m) for m in _marks(svg)] == ["predicted: Shape Distortion: 0.50–1.50 s",
                                                  "predicted: Blur: 1.80–2.60 s",
                                                  "truth: Shape Distortion: 0.50–1.00 s"]
    assert any((t.text or "") == "clip end 2.00 s" for t in _root(svg).iter(f"{NS}title"))
    assert {"predicted", "truth"} <= set(_texts(svg))


def test_text_from_data_stays_text():
    # given: group and series names with markup and mathtext dollars
    svg = grouped_bars(["$x^2$ <b>", "a&b"], [BarSeries("<i>model</i>", "#2563eb", {"a&b": Estimate(0.5)})],
                       title='The "title" <&>')

    # then: they are drawn verbatim (escaped in the XML, not parsed as mathtext), the title too
    assert {"$x^2$ <b>", "a&b", "<i>model</i>"} <= set(_texts(svg))
    assert "$x^2$ &lt;b&gt;" in svg.markup and "<b>" not in svg.markup and "<i>" not in svg.markup
    assert _root(svg)[0].text == 'The "title" <&>'


def test_a_chart_is_self_contained_and_its_ids_are_its_own():
    # given: two charts of the same kind
    first, second = _bars(), grouped_bars(["a"], [BarSeries("m", "#2563eb", {"a": Estimate(0.3)})], title="t")

    for svg in (first, second):
        root = _root(svg)
        # then: no prolog, DTD, metadata or page-wide <style>; no URL but the SVG namespace
        assert svg.markup.startswith("<svg") and "<!DOCTYPE" not in svg.markup and "<?xml" not in svg.markup
        assert root.find(f".//{NS}metadata") is None and root.find(f".//{NS}style") is None
        assert re.findall(r"https?://[^\s\"']+", svg.markup) == ["http://www.w3.org/2000/svg"]
        # and: every internal reference resolves inside the chart
        ids = [e.get("id") for e in root.iter() if e.get("id")]
        refs = re.findall(r"url\(#([^)]+)\)|href=\"#([^\"]+)\"", svg.markup)
        assert len(ids) == len(set(ids)) and {a or b for a, b in refs} <= set(ids)

    # and: the two share no id, so both can be inlined in one page
    ids = [{e.get("id") for e in _root(s).iter() if e.get("id")} for s in (first, second)]
    assert not ids[0] & ids[1]
    page = Document("p", [Figure(first, "one", "one"), Figure(second, "two", "two")]).html()
    assert page.count("<svg") == 2 and "<title>Paired balanced accuracy per generator</title>" in page


def test_the_same_input_gives_the_same_bytes_even_drawn_at_once_from_threads():
    # given: a chart drawn once
    expected = _bars().markup

    # when: it is drawn four more times, from four threads at once, among other charts
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(lambda i: _bars().markup if i % 2 else reliability(
            [CalibrationSeries("c", "#2563eb", [(0.5, 0.5, 1)])], title="r").markup, range(8)))

    # then: byte for byte the same each time
    assert [m for i, m in enumerate(again) if i % 2] == [expected] * 4
