"""The model output grammar: tolerant reading, strict validation, rendering, totality."""

from __future__ import annotations

import doctest
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.core import grammar
from vigil.core.grammar import (
    ANSWERS,
    PROMPT_VERSION,
    SEMANTIC_CODES,
    VIOLATION_CODES,
    Evidence,
    ParsedOutput,
    check,
    parse,
    render,
    render_evidence,
    system_prompt,
    validate,
)
from vigil.core.taxonomy import load_taxonomy, parse_taxonomy

TAX = load_taxonomy()
L3 = TAX.l3_names

SKYRA_FAKE = """<think>
The video shows a man pouring water into a glass on a kitchen counter.
At first the motion looks natural, but the stream of water
<type>Violation of Physical Law</type> in <t>[1.20, 2.85]</t> at <bbox>[0.41, 0.30, 0.58, 0.72]</bbox>
flows upward for a moment. His fingers
<type>Abnormal Human Body Structure</type> in <t>[3.00, 4.10]</t> at <bbox>[0.22, 0.55, 0.36, 0.80]</bbox>
fuse into six. The tiles behind him
<type>Texture Jittering</type> in <t>[0.00, 5.00]</t> at <bbox>[0.00, 0.00, 1.00, 0.35]</bbox>
shimmer from frame to frame.
</think>
<answer>Fake</answer>"""

SKYRA_REAL = """<think>The camera pans over a harbour. The normal segment
<t>[0.00, 2.50]</t> at <bbox>[0.10, 0.20, 0.90, 0.80]</bbox> shows consistent reflections, and
boats keep their shape and identity across frames.</think><answer>Real</answer>"""

IVY_FAKE = """<think>
Spatial: the subject's hair blends unnaturally into the background and the text on the sign is
illegible. Temporal: the subject's earring disappears between frames.
</think>
<conclusion>fake</conclusion>"""


def codes(text: str, **kw) -> set[str]:
    return set(check(text, **kw).codes)


# ---------------------------------------------------------------------------------------------
# Documented examples


def test_doctests_pass():
    result = doctest.testmod(grammar)
    assert result.attempted >= 8 and result.failed == 0


def test_skyra_fake_example_reads_three_well_formed_evidence():
    """Given Skyra's fake-video shape, when checked, then three typed, grounded evidences."""
    out = check(SKYRA_FAKE, duration_s=5.0)
    assert out.ok, out.violations
    assert (out.style, out.answer, out.label) == ("skyra", "Fake", "fake")
    assert [e.type for e in out.evidence] == [
        "Violation of Physical Law", "Abnormal Human Body Structure", "Texture Jittering"]
    assert out.evidence[0] == Evidence("Violation of Physical Law", (1.2, 2.85), (0.41, 0.3, 0.58, 0.72))
    assert out.n_well_formed == 3
    assert out.think.startswith("The video shows") and out.think.endswith("frame to frame.")


def test_skyra_real_example_has_typeless_normal_segment():
    out = check(SKYRA_REAL, duration_s=3.0)
    assert out.ok, out.violations
    assert out.label == "real"
    assert out.evidence == (Evidence(None, (0.0, 2.5), (0.1, 0.2, 0.9, 0.8)),)
    assert out.evidence[0].well_formed


# Skyra's own examples (its GRPO reward's docstring) box camera motion and normal segments this way.
SKYRA_WHOLE_FRAME = """<think>The camera pans over a street. Here is a normal segment:
<t>[1.50, 2.50]</t> at <bbox>[0.0, 0.0, 0.0, 0.0]</bbox>. But I found
<type>Camera Motion Inconsistency</type> in <t>[3.89, 4.53]</t> at <bbox>[0.0, 0.0, 0.0, 0.0]</bbox>,
the whole view jumps.</think><answer>Fake</answer>"""


def test_skyra_zero_box_reads_as_the_whole_frame():
    # Given Skyra's zero boxes for a typeless normal segment and a frame-wide artifact
    # When checked
    out = check(SKYRA_WHOLE_FRAME, duration_s=5.0)
    # Then the output is clean and both evidences are well formed, with the whole frame as box
    assert out.ok, out.violations
    assert out.evidence == (Evidence(None, (1.5, 2.5), grammar.WHOLE_FRAME),
                            Evidence("Camera Motion Inconsistency", (3.89, 4.53), grammar.WHOLE_FRAME))
    assert all(e.whole_frame for e in out.evidence) and out.n_well_formed == 2


@pytest.mark.parametrize("b_text", ["[0, 0, 0, 0]", "0.00 0.00 0.00 0.00", "(0.,-0.0,0e0,.0)"])
def test_every_spelling_of_the_zero_box_is_the_whole_frame(b_text):
    out = check(wrap(f"<type>Lighting Inconsistency</type> in <t>[0, 1]</t> at <bbox>{b_text}</bbox>"))
    assert out.ok, out.violations
    assert out.evidence[0].bbox == (0.0, 0.0, 1.0, 1.0) and out.evidence[0].whole_frame


@pytest.mark.parametrize("b_text", ["[0.5, 0.0, 0.5, 0.0]", "[0, 0, 0, 0.5]", "[0.3, 0.3, 0.3, 0.3]"])
def test_other_empty_boxes_stay_degenerate(b_text):
    # Given a box with x1 == x2 or y1 == y2 that is not the all-zero box
    out = check(wrap(f"<type>Unnatural Blur</type> in <t>[0, 1]</t> at <bbox>{b_text}</bbox>"))
    # Then it is still a violation and not read as the whole frame
    assert "bbox_degenerate" in out.codes
    assert not out.evidence[0].whole_frame


def test_whole_frame_evidence_round_trips_through_render():
    # Given a parsed zero box, rendered back (as [0, 0, 1, 1]) and read again
    ev = parse(SKYRA_WHOLE_FRAME).evidence[1]
    again = parse(render("Fake", [ev])).evidence
    # Then the evidence is the same, still whole-frame
    assert again == (ev,) and again[0].whole_frame


def test_ivy_fake_example():
    out = check(IVY_FAKE)
    assert out.ok, out.violations
    assert (out.style, out.answer, out.evidence) == ("ivy", "Fake", ())
    assert "earring disappears" in out.think


def test_evidence_association_rules():
    """<type> starts an evidence; <t>/<bbox> attach if the slot is free, else start a new one."""
    text = ("<think><type>Unnatural Blur</type> <t>[1, 2]</t> <t>[3, 4]</t> <bbox>[0,0,.5,.5]</bbox>"
            " <bbox>[.5,.5,1,1]</bbox> <type>Text Distortion</type> <bbox>[0,0,1,1]</bbox>"
            " <t>[0, 1]</t></think><answer>Fake</answer>")
    out = check(text)
    assert out.ok, out.violations
    assert out.evidence == (
        Evidence("Unnatural Blur", (1.0, 2.0), None),
        Evidence(None, (3.0, 4.0), (0.0, 0.0, 0.5, 0.5)),
        Evidence(None, None, (0.5, 0.5, 1.0, 1.0)),
        Evidence("Text Distortion", (0.0, 1.0), (0.0, 0.0, 1.0, 1.0)),
    )
    assert out.n_well_formed == 2


def test_unparsable_time_still_occupies_the_slot():
    """A bad <t> counts as the evidence's time, so the next <t> is a new evidence, not a repair."""
    out = parse("<think><type>Unnatural Blur</type><t>soon</t><t>[1, 2]</t></think><answer>Fake</answer>")
    assert out.evidence == (Evidence("Unnatural Blur", None, None), Evidence(None, (1.0, 2.0), None))
    assert out.codes == {"bad_time"}


# ---------------------------------------------------------------------------------------------
# Tolerant reading


def wrap(evidence: str = "", answer: str = "<answer>Fake</answer>") -> str:
    return f"<think>Look: {evidence} odd.</think>{answer}"


@pytest.mark.parametrize("answer_tag", [
    "<answer>fake</answer>", "<answer>FAKE.</answer>", "<answer> Fake </answer>",
    "<answer>\n  fake!\n</answer>", "<answer>**Fake**</answer>", "<answer>'fake'</answer>",
    "<ANSWER>Fake</ANSWER>", "< answer >Fake</ answer >", "<Answer>Fake</aNsWeR>",
])
def test_tolerant_answers(answer_tag):
    out = check(wrap(answer=answer_tag))
    assert out.ok, out.violations
    assert out.answer == "Fake"


@pytest.mark.parametrize("t_text, expected", [
    ("[1.5, 3]", (1.5, 3.0)),
    ("[1.5,3.0]", (1.5, 3.0)),
    ("1.5-3.0", (1.5, 3.0)),
    ("1.5 - 3.0", (1.5, 3.0)),
    ("(1.5, 3)", (1.5, 3.0)),
    ("[1.5s, 3s]", (1.5, 3.0)),
    ("1.5s-3.0s", (1.5, 3.0)),
    ("1.5 s, 3 s", (1.5, 3.0)),
    ("[1, 3]", (1.0, 3.0)),
    ("[1.5e0, 3E+0]", (1.5, 3.0)),
    ("[.5, 3.]", (0.5, 3.0)),
    ("1.5 3", (1.5, 3.0)),
    ("1.5 to 3", (1.5, 3.0)),
    (" \n [ 1.5 ,\n 3 ] \n", (1.5, 3.0)),
])
def test_tolerant_times(t_text, expected):
    out = check(wrap(f"<type>Unnatural Blur</type> in <t>{t_text}</t>"))
    assert out.ok, out.violations
    assert out.evidence[0].t == expected


@pytest.mark.parametrize("b_text", [
    "[0.1, 0.2, 0.5, 0.6]", "0.1, 0.2, 0.5, 0.6", "0.1 0.2 0.5 0.6", "(0.1,0.2,0.5,0.6)",
    "[1e-1, 2e-1, 5E-1, 0.6]", "[ 0.1\n0.2\t0.5 , 0.6 ]", "[.1, .2, .5, .6]",
])
def test_tolerant_boxes(b_text):
    out = check(wrap(f"<type>Unnatural Blur</type> at <bbox>{b_text}</bbox>"))
    assert out.ok, out.violations
    assert out.evidence[0].bbox == (0.1, 0.2, 0.5, 0.6)


def test_tolerant_tag_case_and_spaces_everywhere():
    text = ("\n  < THINK >\n<Type> Unnatural   Blur </TYPE>\n in < t >[1,2]</ T >\n at"
            " <BBox>[0,0,1,1]</bbox ></think >\n\n<Answer>\nreal\n</ANSWER>\n\n")
    out = check(text)
    assert out.ok, out.violations
    assert out.answer == "Real"
    assert out.evidence == (Evidence("Unnatural Blur", (1.0, 2.0), (0.0, 0.0, 1.0, 1.0)),)


@pytest.mark.parametrize("t_text, b_text, code", [
    ("[10%, 20%]", "[0.1, 0.2, 0.5, 0.6]", "bad_time"),
    ("[1, 2]", "[10%, 20%, 50%, 60%]", "bad_bbox"),
])
def test_percentages_are_refused(t_text, b_text, code):
    out = check(wrap(f"<type>Unnatural Blur</type> in <t>{t_text}</t> at <bbox>{b_text}</bbox>"))
    assert code in out.codes
    assert "percent" in next(v.detail for v in out.violations if v.code == code)


def test_prefilled_think_is_still_read():
    """Chat templates that pre-fill <think> produce only </think>: read it, but flag it."""
    out = check("the hand <type>Shape Distortion</type> <t>[1,2]</t></think><answer>Fake</answer>")
    assert out.think == "the hand <type>Shape Distortion</type> <t>[1,2]</t>"
    assert out.evidence == (Evidence("Shape Distortion", (1.0, 2.0), None),)
    assert out.codes == {"unbalanced_tags"}


# ---------------------------------------------------------------------------------------------
# Strict validation: every code has a minimal trigger, and the clean outputs trigger none.

E = "<type>Unnatural Blur</type> in <t>[1, 2]</t> at <bbox>[0.1, 0.2, 0.5, 0.6]</bbox>"
TRIGGERS: dict[str, tuple[str, dict]] = {
    "no_answer": ("<think>fine</think>", {}),
    "multiple_answers": ("<think>x</think><answer>Fake</answer><answer>Fake</answer>", {}),
    "bad_answer": ("<think>x</think><answer>Maybe</answer>", {}),
    "mixed_styles": ("<think>x</think><conclusion>fake</conclusion><answer>Fake</answer>", {}),
    "no_think": ("<answer>Fake</answer>", {}),
    "multiple_think": ("<think>a</think><think>b</think><answer>Fake</answer>", {}),
    "unclosed_tag": ("<think><type>Unnatural Blur in <t>[1,2]</t></think><answer>Fake</answer>", {}),
    "unbalanced_tags": ("<think>x</think></t><answer>Fake</answer>", {}),
    "evidence_outside_think": (f"<think>x</think>{E}<answer>Fake</answer>", {}),
    "bad_time": (wrap("<type>Unnatural Blur</type> in <t>early on</t>"), {}),
    "bad_bbox": (wrap("<type>Unnatural Blur</type> at <bbox>[0.1, 0.2, 0.5]</bbox>"), {}),
    "text_after_answer": (wrap(E) + " Hope this helps!", {}),
    "unknown_type": (wrap("<type>Unnatural Blurr</type> in <t>[1, 2]</t>"), {}),
    "time_reversed": (wrap("<type>Unnatural Blur</type> in <t>[2, 1]</t>"), {}),
    "time_out_of_clip": (wrap("<type>Unnatural Blur</type> in <t>[4, 6]</t>"), {"duration_s": 5.0}),
    "bbox_out_of_range": (wrap("<type>Unnatural Blur</type> at <bbox>[10, 20, 50, 60]</bbox>"), {}),
    "bbox_degenerate": (wrap("<type>Unnatural Blur</type> at <bbox>[0.5, 0.2, 0.5, 0.6]</bbox>"), {}),
}
CLEAN = [SKYRA_FAKE, SKYRA_REAL, IVY_FAKE, wrap(E),
         render("Real", ["All natural."]), render("Fake", [Evidence("Unnatural Blur", (0, 1), (0, 0, 1, 1))])]


def test_every_code_has_a_trigger():
    assert set(TRIGGERS) == VIOLATION_CODES
    assert all(grammar.SEVERITY[c] in ("error", "warning") for c in VIOLATION_CODES)


@pytest.mark.parametrize("code", sorted(TRIGGERS))
def test_minimal_trigger(code):
    text, kw = TRIGGERS[code]
    out = check(text, **kw)
    assert code in out.codes, out.violations
    assert not out.ok


@pytest.mark.parametrize("text", CLEAN)
def test_clean_outputs_have_no_violation(text):
    out = check(text, duration_s=5.0)
    assert out.violations == () and out.ok and out.answer in ANSWERS


@pytest.mark.parametrize("text, expected", [
    ("<think>x</think><answer>Fake</answer><answer>Fake</answer>", "Fake"),  # agree: still flagged
    ("<think>x</think><answer>Fake</answer><answer>Real</answer>", None),    # ambiguous
    ("<think>x</think><answer>Probably fake</answer>", None),
    ("<think>x</think><answer>Fake", None),                                  # unclosed
])
def test_answer_is_none_when_missing_invalid_or_ambiguous(text, expected):
    out = check(text)
    assert out.answer == expected and not out.ok


def test_time_edges():
    """s == e is reversed; the end may exceed the duration by a rounding epsilon, not more."""
    assert "time_reversed" in codes(wrap("<t>[2, 2]</t>"))
    assert "time_out_of_clip" not in codes(wrap("<t>[4, 5.01]</t>"), duration_s=5.0)
    assert "time_out_of_clip" in codes(wrap("<t>[4, 5.5]</t>"), duration_s=5.0)
    assert "time_out_of_clip" not in codes(wrap("<t>[4, 50]</t>"))       # no duration, no check
    assert "time_out_of_clip" in codes(wrap("<t>[-1, 2]</t>"))           # negative: never in a clip


def test_unknown_type_names_closest_and_strict_case():
    out = check(wrap("<type>texture jittering</type>"))
    v = next(v for v in out.violations if v.code == "unknown_type")
    assert "Texture Jittering" in v.detail
    v = next(v for v in check(wrap("<type>Unnatural Blurr</type>")).violations if v.code == "unknown_type")
    assert "Unnatural Blur" in v.detail


def test_validate_is_idempotent_and_uses_given_taxonomy():
    tiny = parse_taxonomy("version: 9\nlevels:\n  A:\n    B: [Only Thing]\n")
    p = parse(wrap("<type>Only Thing</type> in <t>[1, 2]</t>"))
    once = validate(p, taxonomy=tiny)
    assert once.ok and validate(once, taxonomy=tiny) == once
    default = validate(p)
    assert default.codes == {"unknown_type"}
    assert validate(default) == default
    assert validate(default, taxonomy=tiny).ok     # semantic violations are recomputed
    assert p.ok                                     # parse result untouched (frozen, new object)


def test_parse_reports_format_only():
    out = parse(wrap("<type>Nope</type> in <t>[5, 1]</t> at <bbox>[2, 2, 1, 1]</bbox>"))
    assert out.ok and not (out.codes & SEMANTIC_CODES)


# ---------------------------------------------------------------------------------------------
# Round trip: render -> parse

_coord = st.floats(0, 1, allow_nan=False).map(lambda v: round(v, 2))
_time = st.floats(0, 600, allow_nan=False).map(lambda v: round(v, 2))
_evidence = st.builds(
    Evidence,
    type=st.one_of(st.none(), st.sampled_from(L3)),
    t=st.one_of(st.none(), st.tuples(_time, _time)),
    # The zero box is Skyra's spelling of the whole frame and reads back as [0, 0, 1, 1] (tested below).
    bbox=st.one_of(st.none(), st.tuples(_coord, _coord, _coord, _coord).filter(lambda b: any(b))),
).filter(lambda e: e.type or e.t or e.bbox)
_prose = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,.;:'!?()[]-\n0123456789", max_size=40)


def _readable(evs: list[Evidence]) -> list[Evidence]:
    """Give a type to a typeless evidence that the grammar would merge into its predecessor.

    The grammar itself is ambiguous there: "<type>A</type> <t>[1, 2]</t>" reads as one evidence,
    whether or not the <t> was meant as a separate typeless one.
    """
    out: list[Evidence] = []
    for e in evs:
        prev = out[-1] if out else None
        if e.type is None and prev is not None:
            first_slot_taken = prev.t is not None if e.t is not None else prev.bbox is not None
            if not first_slot_taken:
                e = Evidence(L3[0], e.t, e.bbox)
        out.append(e)
    return out


@settings(max_examples=300, deadline=None)
@given(answer=st.sampled_from(["Real", "Fake", "real", "FAKE"]),
       evs=st.lists(_evidence, max_size=6).map(_readable),
       prose=st.lists(_prose, min_size=7, max_size=7),
       style=st.sampled_from(["skyra", "ivy"]))
def test_round_trip(answer, evs, prose, style):
    parts: list = [prose[0]]
    for e, p in zip(evs, prose[1:]):
        parts += [e, p]
    text = render(answer, parts, style=style)
    out = parse(text)
    assert out.ok, (text, out.violations)
    assert out.answer == answer.capitalize()
    assert out.style == style
    assert out.evidence == tuple(evs)
    assert out.n_well_formed == sum(e.well_formed for e in evs)


def test_render_evidence_omits_missing_parts():
    assert render_evidence(Evidence("Unnatural Blur")) == "<type>Unnatural Blur</type>"
    assert render_evidence(Evidence("Unnatural Blur", (1, 2))) == "<type>Unnatural Blur</type> in <t>[1.00, 2.00]</t>"
    assert render_evidence(Evidence(None, None, (0, 0, 1, 1))) == "<bbox>[0.00, 0.00, 1.00, 1.00]</bbox>"
    assert render_evidence(Evidence()) == ""


@pytest.mark.parametrize("args, kw, exc", [
    (("Maybe", []), {}, ValueError),
    (("Fake", ["a <answer>Real</answer> b"]), {}, ValueError),
    (("Fake", []), {"style": "json"}, ValueError),
    (("Fake", [42]), {}, TypeError),
])
def test_render_refuses_what_would_not_read_back(args, kw, exc):
    with pytest.raises(exc):
        render(*args, **kw)


# ---------------------------------------------------------------------------------------------
# Totality: check never raises, truncation never passes

_VALID = [SKYRA_FAKE, SKYRA_REAL, IVY_FAKE]


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_check_is_total_on_any_text(text):
    assert isinstance(check(text, duration_s=3.0), ParsedOutput)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(
    ["<", ">", "/", "think", "answer", "conclusion", "type", "t", "bbox", "[", "]", ",", "-",
     "1", ".", "e", "%", " ", "\n", "Fake", "real", "s"]), max_size=60).map("".join))
def test_check_is_total_on_tag_soup(text):
    assert isinstance(check(text), ParsedOutput)


_TAG_STRINGS = ["<think>", "</think>", "<answer>", "</answer>", "<type>", "</type>", "<t>", "</t>",
                "<bbox>", "</bbox>", "<conclusion>", "</conclusion>"]


def _mutate(text: str, rnd: random.Random) -> str:
    for _ in range(rnd.randint(1, 4)):
        op = rnd.choice(["delete_tag", "dup_tag", "truncate", "insert_bytes", "insert_tag"])
        present = [t for t in _TAG_STRINGS if t in text]
        if op == "delete_tag" and present:
            text = text.replace(rnd.choice(present), "", 1)
        elif op == "dup_tag" and present:
            tag = rnd.choice(present)
            i = text.index(tag)
            text = text[:i] + tag + text[i:]
        elif op == "truncate":
            text = text[:rnd.randint(0, len(text))]
        elif op == "insert_bytes":
            i = rnd.randint(0, len(text))
            junk = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8))).decode("latin-1")
            text = text[:i] + junk + text[i:]
        else:
            i = rnd.randint(0, len(text))
            text = text[:i] + rnd.choice(_TAG_STRINGS) + text[i:]
    return text


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(_VALID), seed=st.integers(0, 2**32 - 1))
def test_check_is_total_on_mutations(base, seed):
    out = check(_mutate(base, random.Random(seed)), duration_s=5.0)
    assert isinstance(out, ParsedOutput)
    assert all(v.code in VIOLATION_CODES for v in out.violations)


@settings(max_examples=500, deadline=None)
@given(base=st.sampled_from(_VALID + CLEAN), frac=st.floats(0, 1, exclude_max=True))
def test_truncated_output_is_never_ok(base, frac):
    base = base.rstrip()
    cut = base[:int(len(base) * frac)]
    assert not check(cut, duration_s=5.0).ok


def test_adversarial_sizes_do_not_blow_up():
    """Pathological inputs finish (quadratic behaviour would take minutes here)."""
    for text in ["<t>" * 50_000, "<think></think><t></t>" * 20_000, "<t>" + " " * 200_000 + "1",
                 "<bbox>" + "1 " * 100_000, "<type>" + "x" * 200_000 + "</type>"]:
        assert not check(text).ok


# ---------------------------------------------------------------------------------------------
# Prompt


def test_system_prompt_lists_every_l3_and_the_grammar():
    prompt = system_prompt()
    for name in L3:
        assert name in prompt
    for tag in ("<think>", "</think>", "<answer>", "<type>", "<t>", "<bbox>"):
        assert tag in prompt
    for l1, l2 in set(TAX.l3_to_path.values()):
        assert l1 in prompt and l2 in prompt
    assert isinstance(PROMPT_VERSION, str) and PROMPT_VERSION


def test_system_prompt_example_is_itself_valid():
    example = system_prompt().split("Example:\n", 1)[1]
    assert check(example).ok


@settings(max_examples=200, deadline=None)
@given(answer=st.sampled_from(["Real", "Fake"]),
       evs=st.lists(_evidence, max_size=6).map(_readable),
       prose=st.lists(_prose, min_size=7, max_size=7))
def test_condense_keeps_answer_and_evidence_and_drops_prose(answer, evs, prose):
    parts: list = [prose[0]]
    for e, p in zip(evs, prose[1:]):
        parts += [e, p]
    condensed = grammar.condense(render(answer, parts))
    out = parse(condensed)
    assert out.ok and out.answer == answer and out.evidence == tuple(evs)
    assert condensed == render(answer, list(evs))  # nothing but evidence is left


def test_condense_of_a_synthetic_real_explanation_starts_with_a_typeless_segment():
    from vigil.annotate.synthetic import synthetic_explanation

    condensed = grammar.condense(synthetic_explanation("real", [], 2.0, seed=3))
    assert condensed.startswith("<think><t>[") and condensed.endswith("<answer>Real</answer>")


def test_condense_refuses_text_without_an_answer():
    with pytest.raises(ValueError, match="without one readable answer"):
        grammar.condense("<think>I cannot tell.</think>")
