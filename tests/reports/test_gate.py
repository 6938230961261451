"""The gate report: verdict first, the twin Markdown, and a real headless browser rendering it cleanly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from markupsafe import escape
from PIL import Image

from vigil.config.params import GateParams
from vigil.core import grammar
from vigil.core.evaluation import EvalClip, EvidenceItem, Prediction, TruthArtifact
from vigil.core.gate import decide, generator_intervals
from vigil.core.metrics.summary import evaluation_metrics
from vigil.reports.gate import ReportExample, pick_examples, verdict_line, write_gate_report

GENERATORS = ("loom-2", "nova-6.1")
TRUTH = TruthArtifact(type="Shape Distortion", t=(0.5, 1.0), bbox=(0.2, 0.25, 0.6, 0.75))
POLICY = GateParams(bootstrap_samples=200)


# ------------------------------------------------------------------------------------- helpers

def _clips(n_bases: int) -> list[EvalClip]:
    clips = []
    for i in range(n_bases):
        base = f"b{i}"
        clips.append(EvalClip(video_id=f"Real/{base}", aigc_model_name="Real", gt="Real", base_id=base,
                              frames_dir=f"frames/Real_{base}", duration_s=2.0, has_truth=True))
        for g in GENERATORS:
            clips.append(EvalClip(video_id=f"{g}/{base}", aigc_model_name=g, gt="Fake", base_id=base,
                                  frames_dir=f"frames/{g}_{base}", duration_s=2.0, truth=(TRUTH,), has_truth=True))
    return clips


def _predict(clip: EvalClip, correct: bool, model: str, response: str | None = None) -> Prediction:
    answer = clip.gt if correct else ("Real" if clip.gt == "Fake" else "Fake")
    parts: list = ["The hand"]
    if answer == "Fake":
        parts += [grammar.Evidence("Shape Distortion", (0.5, 1.5), (0.25, 0.3, 0.65, 0.8)), "melts."]
    else:
        parts = ["Nothing odd."]
    text = response if response is not None else grammar.render(answer, parts)
    parsed = grammar.check(text)
    evidence = tuple(EvidenceItem(type=e.type, t=e.t, bbox=e.bbox) for e in parsed.evidence)
    return Prediction(video_id=clip.video_id, aigc_model_name=clip.aigc_model_name, mllm_model_name=model,
                      gt=clip.gt, response=text, answer=parsed.answer or "Error", format_ok=parsed.ok,
                      evidence=evidence, fake_probability=0.85 if answer == "Fake" else 0.2, latency_s=0.4,
                      base_id=clip.base_id)


def _models(clips: list[EvalClip]) -> tuple[list[Prediction], list[Prediction]]:
    """Candidate: right on nova-6 and reals, wrong on odd loom-2 clips; champion: the other way round."""
    candidate, champion = [], []
    for c in clips:
        i = int(c.base_id[1:])
        candidate.append(_predict(c, not (c.aigc_model_name == "loom-2" and i % 2), "mv-candidate"))
        champion.append(_predict(c, not (c.aigc_model_name == "nova-6.1" and i % 2 and i > 4), "mv-champion"))
    return candidate, champion


def _frames(folder: Path) -> Path:
    """Four 64×48 frames at 0, 0.5, 1.0, 1.5 s in Skyra's layout."""
    folder.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (64, 48), (40 + 50 * i, 90, 160 - 30 * i)).save(folder / f"{i + 1}.png")
    (folder / "timestamps.txt").write_text("0.0\n0.5\n1.0\n1.5\n")
    return folder


def _report_inputs(tmp_path: Path, n_examples: int = 2):
    sets = {"fixed": _clips(8), "recent": _clips(4)}
    predictions = {name: _models(clips) for name, clips in sets.items()}
    decision = decide("mv-candidate", {s: p[0] for s, p in predictions.items()}, POLICY,
                      champion_id="mv-champion", champion={s: p[1] for s, p in predictions.items()},
                      created_at="2025-01-01T00:00:00Z")
    metrics = {s: {"candidate": evaluation_metrics(p[0], sets[s]), "champion": evaluation_metrics(p[1], sets[s])}
               for s, p in predictions.items()}
    intervals = {s: {"candidate": generator_intervals(p[0], POLICY), "champion": generator_intervals(p[1], POLICY)}
                 for s, p in predictions.items()}
    frames = _frames(tmp_path / "frames")
    picked = pick_examples(list(zip(predictions["fixed"][0], sets["fixed"], strict=True)), n_examples)
    examples = [ReportExample("fixed", p, c, frames) for p, c in picked]
    return decision, metrics, intervals, examples


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.fail("Chromium is missing: run scripts/browser.sh to install it")
    return path


def _render(html_path: Path, screenshot: Path) -> dict:
    """Open the page in headless Chromium; what went wrong on it, and the screenshot."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: run scripts/browser.sh")
    seen: dict = {"console_errors": [], "page_errors": [], "dialogs": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 800})
            page.on("console", lambda m: seen["console_errors"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            page.goto(html_path.as_uri(), wait_until="load")
            seen["images_ok"] = page.evaluate(
                "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            seen["n_images"] = page.evaluate("document.images.length")
            seen["svgs"] = page.evaluate(  # each inline chart: its accessible name and its drawn size
                "Array.from(document.querySelectorAll('svg')).map(s => {const r = s.getBoundingClientRect();"
                " return [s.getAttribute('aria-label'), r.width, r.height]})")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


# --------------------------------------------------------------------------------------- tests

def test_gate_report_renders_verdict_first_and_cleanly_in_a_browser(tmp_path):
    # given: a failing decision against a champion (loom-2 regressed), metrics, intervals, a hit and a miss
    decision, metrics, intervals, examples = _report_inputs(tmp_path)
    assert decision.verdict == "fail" and decision.failed
    assert [ex.hit for ex in examples] == [True, False]

    # when: the report is written
    html_path, md_path = write_gate_report(decision, metrics, intervals, examples, tmp_path / "report")

    # then: the verdict comes before the per-generator section and names every failing rule with its detail
    page = html_path.read_text()
    line = verdict_line(decision)
    assert line.startswith("FAIL: candidate mv-candidate vs champion mv-champion")
    assert page.index(escape(line)) < page.index('id="generators-fixed"') < page.index('id="generators-recent"')
    verdict_part = page[:page.index('id="generators-fixed"')]
    for rule in (r for r in decision.rules if r.passed is False):
        assert escape(rule.name) in verdict_part and escape(rule.detail) in verdict_part
    assert "fixed/max_generator_regression/loom-2" in decision.failed
    assert page.index('id="examples"') > page.index('id="artifacts-recent"')
    # and: every image is inlined, nothing is fetched, there is no script
    images = re.findall(r"<img\b[^>]*>", page)
    assert len(images) == len(examples)
    assert all(re.search(r'src="data:image/png;base64,', tag) for tag in images)
    assert "<script" not in page.lower() and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    # and: the charts are inline SVG, each titled: per set the generator bars and the reliability diagram,
    # per example its timeline
    svgs = re.findall(r"<svg\b[^>]*>\s*<title>([^<]*)</title>", page)
    assert svgs.count("Paired balanced accuracy per generator") == 2
    assert svgs.count("Reliability: fake rate vs mean predicted P(fake)") == 2
    assert len(svgs) == page.count("<svg") == 4 + len(examples)

    # then: the Markdown twin has the same verdict line, rule table, headline and confusion tables
    md = md_path.read_text()
    assert f"**{line}**" in md
    assert "| Rule | Kind | Value | Interval | Threshold | Passed | Detail |" in md
    for name in decision.failed:
        assert f"| {name} |" in md and f"**{name}**" in md
    assert "| Metric | Candidate | Champion | Δ |" in md and "| Paired balanced accuracy |" in md
    assert md.count("| truth \\ answer | Real | Fake | Error |") == 4  # 2 sets × candidate/champion
    assert re.search(r"\| nova-6\.1 \| \d+ \|", md)  # a generator name with a dot keeps its numbers
    assert md.index(line) < md.index("## Evaluation set: fixed") < md.index("## Example explanations")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert any(p.endswith(".png") for p in linked)
    assert linked and all((md_path.parent / p).is_file() for p in linked)

    # when: a real headless Chromium opens the page
    shot = tmp_path / "report.png"
    seen = _render(html_path, shot)

    # then: no console or page errors, every image decoded, a full-page screenshot of a long page
    assert seen["console_errors"] == [] and seen["page_errors"] == []
    assert seen["n_images"] == len(examples) and seen["images_ok"] is True
    assert len(seen["svgs"]) == 4 + len(examples) and all(name and w > 200 and h > 80 for name, w, h in seen["svgs"])
    assert shot.is_file() and shot.stat().st_size > 10_000
    with Image.open(shot) as im:
        assert im.height > 600


def test_model_text_is_escaped_and_never_runs(tmp_path):
    # given: a miss whose raw response and evidence type carry markup that would run if not escaped
    decision, metrics, intervals, examples = _report_inputs(tmp_path, n_examples=1)
    clip = examples[0].clip
    hostile = ('<think>Look <type><img src=x onerror=alert(2)></type> in <t>[0.5, 1.0]</t> at '
               '<bbox>[0.1, 0.1, 0.5, 0.5]</bbox> <script>alert(1)</script></think><answer>Real</answer>')
    prediction = _predict(clip, correct=False, model="mv-<b>x</b>", response=hostile)
    examples = [ReportExample("fixed", prediction, clip, examples[0].frames_dir)]

    # when: the report is written and opened in headless Chromium
    html_path, md_path = write_gate_report(decision, metrics, intervals, examples, tmp_path / "report")
    page = html_path.read_text()
    seen = _render(html_path, tmp_path / "shot.png")

    # then: the markup appears escaped, never as tags, and no dialog opened
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower() and "onerror=alert" not in page.replace("&lt;img src=x onerror=alert", "")
    assert "mv-&lt;b&gt;x&lt;/b&gt;" in page
    assert seen["dialogs"] == [] and seen["page_errors"] == [] and seen["console_errors"] == []
    assert seen["images_ok"] is True
    assert "<script>alert(1)</script>" in md_path.read_text()  # inside the fenced code block, verbatim


def test_no_champion_says_minimum_levels_only(tmp_path):
    # given: a decision with no champion and sparse metrics (None where nothing was measured)
    decision, metrics, intervals, _ = _report_inputs(tmp_path)
    lone = decide("mv-candidate", {"fixed": [_predict(c, True, "mv-candidate") for c in _clips(4)]}, POLICY)
    metrics = {"fixed": {"candidate": {**metrics["fixed"]["candidate"], "grounding": None, "masks": None,
                                       "per_artifact_type": {}, "reliability": []}, "champion": None}}
    intervals = {"fixed": {"candidate": intervals["fixed"]["candidate"], "champion": None}}

    # when: the report is written with no examples
    html_path, md_path = write_gate_report(lone, metrics, intervals, [], tmp_path / "report")

    # then: both forms say there is no champion yet and list the not-applicable rules as such
    line = verdict_line(lone)
    assert line.endswith("(no champion yet: minimum levels only)")
    assert escape(line) in html_path.read_text() and line in md_path.read_text()
    assert "| – |" in md_path.read_text()
    assert "no fake probabilities scored" in html_path.read_text()
