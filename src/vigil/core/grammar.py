"""The model output grammar: the one reader and writer of detector explanations.

Two shapes are read:

* Skyra's: ``<think>… <type>L3 name</type> in <t>[s, e]</t> at <bbox>[x1, y1, x2, y2]</bbox>
  …</think><answer>Real|Fake</answer>``
* Ivy-Fake's: ``<think>…</think><conclusion>real|fake</conclusion>``

The annotation checker, the RL rewards, the evaluator and the serving gateway all go through this
module, so nobody else writes a regex for the format. The split of responsibilities is:

* :func:`parse` reads *tolerantly* (tag case, whitespace, number spellings, ``1.5-3.0`` ranges…)
  and records only *format* violations; it never raises on any string.
* :func:`validate` adds the *semantic* violations (unknown types, reversed or out-of-clip times,
  boxes outside the unit square); it is idempotent.
* :func:`check` is both.

Skyra writes ``<bbox>[0.0, 0.0, 0.0, 0.0]</bbox>`` for an artifact or a normal segment that covers
the whole frame (camera motion, lighting); :func:`parse` reads that zero box as
:data:`WHOLE_FRAME` (see :attr:`Evidence.whole_frame`), not as a degenerate box.

Every problem is a :class:`Violation` with a stable ``code`` from :data:`VIOLATION_CODES`;
``ParsedOutput.ok`` means "no violations at all", which is what a format reward or an annotation
gate should ask for. :data:`SEVERITY` says which codes are merely stylistic.

>>> out = check('<think>The hand <type>Shape Distortion</type> in <t>[1.0, 2.5]</t> at '
...             '<bbox>[0.1, 0.2, 0.4, 0.6]</bbox> melts.</think><answer>Fake</answer>')
>>> out.ok, out.label, out.evidence[0].t, out.n_well_formed
(True, 'fake', (1.0, 2.5), 1)
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

ANSWERS = ("Real", "Fake")
# Bump whenever system_prompt() text changes: training data and eval runs record which prompt
# they were made with.
PROMPT_VERSION = "grammar-v1"

# Times are rendered with two decimals and clip durations come from container metadata that can be
# a frame off, so an end time a little past the duration is still "in the clip".
TIME_EPSILON_S = 0.05

# Leaf contents longer than this cannot be a number pair or a box; refusing them early keeps the
# number regexes linear on adversarial input (e.g. an unclosed <t> followed by megabytes of text).
_MAX_NUMERIC_LEN = 200

# The box of an evidence that covers the whole frame. Skyra spells it as the zero box
# ``[0, 0, 0, 0]`` (its examples do so for camera motion and for typeless normal segments); parse()
# reads that spelling as this box, so every consumer (IoU, masks, drawing) sees the region it means
# without knowing the convention. It is accepted for every type, not only frame-wide ones: the
# grammar checks form, and a whole-frame claim for a local artifact is merely poorly localised,
# which the grounding scores already charge (its IoU with a truth box is the truth's area share).
WHOLE_FRAME = (0.0, 0.0, 1.0, 1.0)

FORMAT_CODES = frozenset({
    "no_answer",               # no complete <answer>/<conclusion> tag
    "multiple_answers",        # two or more answer/conclusion tags, even if they agree
    "bad_answer",              # answer text is not real/fake
    "mixed_styles",            # both <answer> and <conclusion> present
    "no_think",                # no <think> block at all
    "multiple_think",          # more than one <think> block
    "unclosed_tag",            # an opening tag without its closing tag
    "unbalanced_tags",         # a closing tag without its opening tag, or tags that cross/nest
    "evidence_outside_think",  # <type>/<t>/<bbox> outside the <think> block (still read)
    "bad_time",                # <t> content is not two plain numbers (seconds)
    "bad_bbox",                # <bbox> content is not four plain numbers
    "text_after_answer",       # non-whitespace after the final answer tag
})
SEMANTIC_CODES = frozenset({
    "unknown_type",            # <type> is not an L3 name of the taxonomy
    "time_reversed",           # start >= end
    "time_out_of_clip",        # start < 0, or end > duration (+ epsilon) when the duration is known
    "bbox_out_of_range",       # a coordinate outside [0, 1]
    "bbox_degenerate",         # x1 >= x2 or y1 >= y2 (Skyra's zero box is the whole frame, not this)
})
VIOLATION_CODES = FORMAT_CODES | SEMANTIC_CODES

# All violations make ``ok`` false; severity only helps reports and rewards weigh them.
SEVERITY: dict[str, Literal["error", "warning"]] = {
    **{code: "error" for code in VIOLATION_CODES},
    "evidence_outside_think": "warning",
    "text_after_answer": "warning",
    "multiple_think": "warning",
}


@dataclass(frozen=True)
class Evidence:
    """One grounded artifact claim: an L3 type, a time span (s) and a normalised box."""

    type: str | None = None
    t: tuple[float, float] | None = None
    bbox: tuple[float, float, float, float] | None = None

    @property
    def well_formed(self) -> bool:
        """Has both a parsed time span and a parsed box (what Skyra's reward counts)."""
        return self.t is not None and self.bbox is not None

    @property
    def whole_frame(self) -> bool:
        """The box covers the whole frame (written ``[0, 0, 1, 1]`` or Skyra's zero box).

        >>> parse('<think><t>[1, 2]</t> at <bbox>[0.0, 0.0, 0.0, 0.0]</bbox></think>'
        ...       '<answer>Real</answer>').evidence[0].whole_frame
        True
        """
        return is_whole_frame(self.bbox)


def is_whole_frame(bbox: Sequence[float] | None) -> bool:
    """Whether a box is :data:`WHOLE_FRAME` (after parsing, Skyra's zero box is).

    >>> is_whole_frame((0.0, 0.0, 1.0, 1.0)), is_whole_frame((0.0, 0.0, 0.5, 1.0)), is_whole_frame(None)
    (True, False, False)
    """
    return bbox is not None and tuple(bbox) == WHOLE_FRAME


@dataclass(frozen=True)
class Violation:
    code: str
    detail: str


@dataclass(frozen=True)
class ParsedOutput:
    style: Literal["skyra", "ivy"] | None
    think: str | None
    answer: Literal["Real", "Fake"] | None
    evidence: tuple[Evidence, ...] = ()
    violations: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def label(self) -> Literal["real", "fake"] | None:
        return None if self.answer is None else ("real" if self.answer == "Real" else "fake")

    @property
    def n_well_formed(self) -> int:
        return sum(e.well_formed for e in self.evidence)

    @property
    def codes(self) -> frozenset[str]:
        """The set of violation codes (convenience for callers that only branch on codes)."""
        return frozenset(v.code for v in self.violations)


# --------------------------------------------------------------------------------------------
# Lexing. One regex finds every tag of the grammar; everything else is prose. Compiled once.

_CONTAINERS = ("think", "answer", "conclusion")
_LEAVES = ("type", "t", "bbox")
_TAG_RE = re.compile(r"<\s*(/?)\s*(think|answer|conclusion|type|t|bbox)\s*>", re.IGNORECASE)

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
# Contents are whitespace-collapsed before matching, so single optional spaces suffice and the
# pattern cannot backtrack badly.
_TIME_RE = re.compile(
    rf"({_NUM})(?: ?s)?(?: ?(?:,|-|–|—|~|to) ?| )({_NUM})(?: ?s)?", re.IGNORECASE)
_BOX_RE = re.compile(rf"({_NUM})(?: ?, ?| )({_NUM})(?: ?, ?| )({_NUM})(?: ?, ?| )({_NUM})")
_ANSWER_RE = re.compile(r"[\s\"'`*_.!]*(real|fake)[\s\"'`*_.!]*", re.IGNORECASE)
_OPEN_BRACKETS = "[({"
_CLOSE_BRACKETS = "])}"


# A tag token is a plain tuple (index, start, end, name, closing) and a span a plain list
# [name, open_tok, close_tok | None, content_start, content_end]: parse() runs in RL reward loops
# and the gateway, and dataclass construction was most of its cost.
_I, _S, _E, _N, _C = range(5)


def _collapse(s: str) -> str:
    return " ".join(s.split())


def _strip_brackets(s: str) -> str:
    if s[:1] in _OPEN_BRACKETS:
        s = s[1:]
    if s[-1:] in _CLOSE_BRACKETS:
        s = s[:-1]
    return s.strip()


def _to_float(tok: str) -> float | None:
    try:
        v = float(tok)
    except (ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


def _parse_time(content: str) -> tuple[tuple[float, float] | None, str]:
    """(start, end) in seconds, or (None, why)."""
    s = _collapse(content)
    if not s:
        return None, "empty <t>"
    if len(s) > _MAX_NUMERIC_LEN:
        return None, "<t> content too long"
    if "%" in s:
        return None, f"percentages are not accepted in <t>: {s!r}"
    m = _TIME_RE.fullmatch(_strip_brackets(s))
    if not m:
        return None, f"<t> is not two numbers: {s!r}"
    a, b = _to_float(m.group(1)), _to_float(m.group(2))
    if a is None or b is None:
        return None, f"<t> has a non-finite number: {s!r}"
    return (a, b), ""


def _parse_bbox(content: str) -> tuple[tuple[float, float, float, float] | None, str]:
    """(x1, y1, x2, y2) normalised, or (None, why). Skyra's zero box reads as :data:`WHOLE_FRAME`.

    >>> _parse_bbox("[0.0, 0.0, 0.0, 0.0]"), _parse_bbox("0 0 0 0")[0]
    (((0.0, 0.0, 1.0, 1.0), ''), (0.0, 0.0, 1.0, 1.0))
    >>> _parse_bbox("[0.5, 0.0, 0.5, 0.0]")  # degenerate but not the zero box: validate() flags it
    ((0.5, 0.0, 0.5, 0.0), '')
    """
    s = _collapse(content)
    if not s:
        return None, "empty <bbox>"
    if len(s) > _MAX_NUMERIC_LEN:
        return None, "<bbox> content too long"
    if "%" in s:
        return None, f"percentages are not accepted in <bbox>: {s!r}"
    m = _BOX_RE.fullmatch(_strip_brackets(s))
    if not m:
        return None, f"<bbox> is not four numbers: {s!r}"
    vals = [_to_float(p) for p in m.groups()]
    if None in vals:
        return None, f"<bbox> has a non-finite number: {s!r}"
    if all(v == 0.0 for v in vals):  # Skyra's spelling of "the whole frame"
        return WHOLE_FRAME, ""
    return tuple(vals), ""  # type: ignore[return-value]


def _parse_answer(content: str) -> Literal["Real", "Fake"] | None:
    m = _ANSWER_RE.fullmatch(content)
    if not m:
        return None
    return "Real" if m.group(1).lower() == "real" else "Fake"


def _short(s: str, n: int = 60) -> str:
    s = _collapse(s)
    return s if len(s) <= n else s[: n - 1] + "…"


# --------------------------------------------------------------------------------------------
# Parsing


def parse(text: str) -> ParsedOutput:
    """Read a model output tolerantly; record only format violations. Never raises.

    >>> p = parse('<THINK> <type>Texture Jittering</type> in <t>1.5s-3</t> at '
    ...           '<bbox>0.1 0.2 0.5 0.6</bbox></THINK>\\n<answer> fake. </answer>')
    >>> p.answer, p.evidence[0], p.ok
    ('Fake', Evidence(type='Texture Jittering', t=(1.5, 3.0), bbox=(0.1, 0.2, 0.5, 0.6)), True)
    >>> parse('<think>ok</think><conclusion>real</conclusion>').style
    'ivy'
    >>> sorted(parse('<think>cut he').codes)
    ['no_answer', 'unclosed_tag']
    """
    if not isinstance(text, str):  # be total even for callers that ignore the type hint
        text = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else str(text)

    violations: list[Violation] = []
    add = violations.append

    toks = [(i, m.start(), m.end(), m.group(2).lower(), m.group(1) == "/")
            for i, m in enumerate(_TAG_RE.finditer(text))]
    ntok = len(toks)

    # Pair tags by name (the grammar never nests a tag inside one of the same name). A second
    # opening before a closing leaves the first unclosed; a closing with nothing open is stray.
    spans: list[list] = []
    pending: dict[str, list] = {}
    stray_think_close = None
    for tok in toks:
        name = tok[_N]
        if not tok[_C]:
            if name in pending:
                spans.append(pending.pop(name))
            pending[name] = [name, tok, None, tok[_E], 0]
        elif name in pending:
            span = pending.pop(name)
            span[2] = tok
            spans.append(span)
        else:
            add(Violation("unbalanced_tags", f"</{name}> at {tok[_S]} has no opening tag"))
            if name == "think" and stray_think_close is None:
                stray_think_close = tok
    if pending:
        spans.extend(pending.values())
    spans.sort(key=lambda sp: sp[1][_S])

    # Content ranges. An unclosed leaf runs to the next tag; an unclosed think runs to the next
    # think or answer-like tag (so a truncated output still yields its evidence).
    next_container: list[int] | None = None
    for sp in spans:
        name, op, cl = sp[0], sp[1], sp[2]
        if cl is not None:
            sp[4] = cl[_S]
            # Pairing by name means a closed span holds no token of its own name, so these
            # slices cost O(number of tags) overall.
            if cl[_I] > op[_I] + 1:
                allowed = _LEAVES if name == "think" else ()
                for t in toks[op[_I] + 1:cl[_I]]:
                    if t[_N] not in allowed:
                        add(Violation("unbalanced_tags", f"<{name}> at {op[_S]} contains "
                                                         f"<{'/' if t[_C] else ''}{t[_N]}>"))
                        break
        else:
            add(Violation("unclosed_tag", f"<{name}> at {op[_S]} is never closed"))
            if name == "think":
                if next_container is None:
                    # Index of the next think/answer/conclusion token, by a reverse scan, so
                    # many unclosed spans stay linear.
                    next_container = [ntok] * (ntok + 1)
                    for i in range(ntok - 1, -1, -1):
                        next_container[i] = i if toks[i][_N] in _CONTAINERS else next_container[i + 1]
                j = next_container[op[_I] + 1]
            else:
                j = op[_I] + 1
            sp[4] = toks[j][_S] if j < ntok else len(text)

    # <think>
    think_spans = [sp for sp in spans if sp[0] == "think"]
    think_ranges = [(sp[3], sp[4]) for sp in think_spans]
    think: str | None = None
    if think_spans:
        think = text[think_spans[0][3]:think_spans[0][4]].strip()
        if len(think_spans) > 1:
            add(Violation("multiple_think", f"{len(think_spans)} <think> blocks; the first is used"))
    elif stray_think_close is not None:
        # Chat templates that pre-fill "<think>" make the model emit only "</think>": read the
        # text before it as the reasoning (the stray closing tag is already a violation).
        think = text[:stray_think_close[_S]].strip()
        think_ranges = [(0, stray_think_close[_S])]
    else:
        add(Violation("no_think", "no <think> block"))

    # Evidence, in reading order. Think ranges never overlap and are sorted, so bisect.
    # The evidence under construction is [type, t, bbox, has_t_tag, has_bbox_tag].
    think_starts = [r[0] for r in think_ranges]
    evidence: list[Evidence] = []
    cur: list | None = None
    outside = 0
    for sp in spans:
        name = sp[0]
        if name not in _LEAVES:
            continue
        content = text[sp[3]:sp[4]]
        pos = sp[1][_S]
        k = bisect.bisect_right(think_starts, pos) - 1
        if k < 0 or pos >= think_ranges[k][1]:
            outside += 1
        if name == "type":
            if cur is not None:
                evidence.append(Evidence(cur[0], cur[1], cur[2]))
            cur = [_collapse(content), None, None, False, False]
        elif name == "t":
            # A <t> fills the current evidence's time slot even when unparsable, so that a
            # following <t> does not silently land on the same evidence.
            if cur is None or cur[3]:
                if cur is not None:
                    evidence.append(Evidence(cur[0], cur[1], cur[2]))
                cur = [None, None, None, False, False]
            cur[3] = True
            cur[1], why = _parse_time(content)
            if cur[1] is None:
                add(Violation("bad_time", why))
        else:
            if cur is None or cur[4]:
                if cur is not None:
                    evidence.append(Evidence(cur[0], cur[1], cur[2]))
                cur = [None, None, None, False, False]
            cur[4] = True
            cur[2], why = _parse_bbox(content)
            if cur[2] is None:
                add(Violation("bad_bbox", why))
    if cur is not None:
        evidence.append(Evidence(cur[0], cur[1], cur[2]))
    if outside:
        add(Violation("evidence_outside_think", f"{outside} evidence tag(s) outside <think>"))

    # The answer.
    ans_toks = [t for t in toks if t[_N] == "answer" or t[_N] == "conclusion"]
    if len({t[_N] for t in ans_toks}) == 2:
        add(Violation("mixed_styles", "both <answer> and <conclusion> tags"))
    closed = [sp for sp in spans
              if (sp[0] == "answer" or sp[0] == "conclusion") and sp[2] is not None]
    answer: Literal["Real", "Fake"] | None = None
    style: Literal["skyra", "ivy"] | None = None
    last = closed[-1][0] if closed else (ans_toks[-1][_N] if ans_toks else None)
    if last is not None:
        style = "skyra" if last == "answer" else "ivy"
    if not closed:
        add(Violation("no_answer", "no complete <answer> or <conclusion> tag"))
    else:
        values = []
        for sp in closed:
            raw = text[sp[3]:sp[4]]
            v = _parse_answer(raw)
            if v is None:
                add(Violation("bad_answer", f"<{sp[0]}> must be Real or Fake, got {_short(raw)!r}"))
            values.append(v)
        if len(closed) > 1:
            add(Violation("multiple_answers", f"{len(closed)} answer tags: {values}"))
        # One value when every answer tag agrees; anything else is ambiguous.
        if None not in values and len(set(values)) == 1:
            answer = values[0]
        tail = text[closed[-1][2][_E]:]
        if tail and not tail.isspace():
            add(Violation("text_after_answer", f"text after the final answer: {_short(tail)!r}"))

    return ParsedOutput(style=style, think=think, answer=answer, evidence=tuple(evidence),
                        violations=tuple(violations))


# --------------------------------------------------------------------------------------------
# Validation


def _default_taxonomy():
    from vigil.core.taxonomy import load_taxonomy
    return load_taxonomy()


def _closest(name: str, names: Sequence[str]) -> list[str]:
    by_lower = {n.lower(): n for n in names}
    if name.lower() in by_lower:
        return [by_lower[name.lower()]]
    if len(name) > 100:  # difflib on huge junk is slow and pointless
        return []
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)
    return [by_lower[h] for h in hits]


def validate(parsed: ParsedOutput, *, duration_s: float | None = None,
             taxonomy=None) -> ParsedOutput:
    """Add semantic violations to a parsed output (a new object; idempotent).

    ``taxonomy`` defaults to the packaged one. Negative start times are always out of the clip;
    end times are checked against ``duration_s`` only when it is given.
    """
    tax = taxonomy if taxonomy is not None else _default_taxonomy()
    out = [v for v in parsed.violations if v.code not in SEMANTIC_CODES]  # idempotence
    add = lambda code, detail: out.append(Violation(code, detail))  # noqa: E731
    for i, e in enumerate(parsed.evidence):
        if e.type is not None and not tax.is_l3(e.type):
            close = _closest(e.type, tax.l3_names)
            hint = f"; closest: {', '.join(close)}" if close else ""
            add("unknown_type", f"evidence {i}: {_short(e.type)!r} is not an L3 name{hint}")
        if e.t is not None:
            s, end = e.t
            if s >= end:
                add("time_reversed", f"evidence {i}: start {s:g} >= end {end:g}")
            if s < 0 or end < 0:
                add("time_out_of_clip", f"evidence {i}: negative time {e.t}")
            elif duration_s is not None and (end > duration_s + TIME_EPSILON_S
                                             or s > duration_s + TIME_EPSILON_S):
                add("time_out_of_clip",
                    f"evidence {i}: {e.t} beyond the clip's {duration_s:g} s")
        if e.bbox is not None:
            x1, y1, x2, y2 = e.bbox
            if not all(0.0 <= c <= 1.0 for c in e.bbox):
                add("bbox_out_of_range", f"evidence {i}: {e.bbox} not normalised to [0, 1]")
            if x1 >= x2 or y1 >= y2:
                add("bbox_degenerate", f"evidence {i}: {e.bbox} has x1 >= x2 or y1 >= y2")
    return replace(parsed, violations=tuple(out))


def check(text: str, *, duration_s: float | None = None, taxonomy=None) -> ParsedOutput:
    """:func:`parse` then :func:`validate`. Never raises on any string.

    Skyra's zero box is the whole frame; any other empty box is still degenerate:

    >>> out = check('<think>The view <type>Camera Motion Inconsistency</type> in <t>[3.89, 4.53]</t> at '
    ...             '<bbox>[0.0, 0.0, 0.0, 0.0]</bbox> jumps.</think><answer>Fake</answer>')
    >>> out.ok, out.evidence[0].bbox, out.evidence[0].whole_frame, out.n_well_formed
    (True, (0.0, 0.0, 1.0, 1.0), True, 1)
    >>> sorted(check('<think><t>[0, 1]</t> at <bbox>[0.3, 0.0, 0.3, 0.0]</bbox></think>'
    ...              '<answer>Real</answer>').codes)
    ['bbox_degenerate']
    """
    return validate(parse(text), duration_s=duration_s, taxonomy=taxonomy)


# --------------------------------------------------------------------------------------------
# Rendering


def _fmt(v: float) -> str:
    return f"{v:.2f}"


def render_evidence(e: Evidence) -> str:
    """The canonical text of one evidence; missing parts are left out.

    >>> render_evidence(Evidence("Unnatural Blur", (1.25, 2.5), (0.1, 0.2, 0.45, 0.6)))
    '<type>Unnatural Blur</type> in <t>[1.25, 2.50]</t> at <bbox>[0.10, 0.20, 0.45, 0.60]</bbox>'
    >>> render_evidence(Evidence(None, (0, 3), None))
    '<t>[0.00, 3.00]</t>'
    """
    out = []
    if e.type is not None:
        out.append(f"<type>{e.type}</type>")
    if e.t is not None:
        out.append(("in " if out else "") + f"<t>[{', '.join(map(_fmt, e.t))}]</t>")
    if e.bbox is not None:
        out.append(("at " if out else "") + f"<bbox>[{', '.join(map(_fmt, e.bbox))}]</bbox>")
    return " ".join(out)


def _normalise_answer(answer: str) -> Literal["Real", "Fake"]:
    v = _parse_answer(answer) if isinstance(answer, str) else None
    if v is None:
        raise ValueError(f"answer must be Real or Fake, got {answer!r}")
    return v


def render(answer: str, parts: Sequence[str | Evidence], *, style: str = "skyra") -> str:
    """A complete output: think text interleaving prose and evidence, then the answer tag.

    Prose and evidence are joined with one space where neither side already has whitespace.
    Prose containing grammar tags is refused, since it would not read back as written.

    >>> print(render("fake", ["The cup", Evidence("Shape Distortion", (0.5, 1)), "bends."]))
    <think>The cup <type>Shape Distortion</type> in <t>[0.50, 1.00]</t> bends.</think>
    <answer>Fake</answer>
    >>> render("Real", ["Nothing odd."], style="ivy")
    '<think>Nothing odd.</think>\\n<conclusion>real</conclusion>'
    """
    ans = _normalise_answer(answer)
    if style not in ("skyra", "ivy"):
        raise ValueError(f"style must be 'skyra' or 'ivy', got {style!r}")
    body = ""
    for part in parts:
        if isinstance(part, Evidence):
            piece = render_evidence(part)
        elif isinstance(part, str):
            if _TAG_RE.search(part):
                raise ValueError(f"prose contains a grammar tag: {_short(part)!r}")
            piece = part
        else:
            raise TypeError(f"parts must be str or Evidence, got {type(part).__name__}")
        if not piece:
            continue
        if body and not body[-1].isspace() and not piece[0].isspace():
            body += " "
        body += piece
    if style == "skyra":
        return f"<think>{body}</think>\n<answer>{ans}</answer>"
    return f"<think>{body}</think>\n<conclusion>{ans.lower()}</conclusion>"


def condense(text: str) -> str:
    """The same output with the prose dropped: its evidence, in order, then its answer.

    This is the target for a model too small to learn free prose in minutes (the tiny profile):
    still the grammar, still grounded, and its first token already says whether any artifact
    (``<type>``) was found. Refuses a text with no answer, since there would be nothing to condense.

    >>> condense('<think>The cup <type>Shape Distortion</type> in <t>[0.5, 1]</t> at '
    ...          '<bbox>[0.1, 0.2, 0.3, 0.4]</bbox> bends.</think><answer>Fake</answer>')
    '<think><type>Shape Distortion</type> in <t>[0.50, 1.00]</t> at <bbox>[0.10, 0.20, 0.30, 0.40]</bbox></think>\\n<answer>Fake</answer>'
    >>> condense('<think>Steady motion in <t>[0, 1]</t>.</think><answer>Real</answer>')
    '<think><t>[0.00, 1.00]</t></think>\\n<answer>Real</answer>'
    """
    parsed = parse(text)
    if parsed.answer is None:
        raise ValueError(f"cannot condense an output without one readable answer: {_short(text)!r}")
    return render(parsed.answer, list(parsed.evidence), style=parsed.style or "skyra")


COMPACT_SYSTEM_PROMPT = (
    "You detect AI-generated videos. Answer <think>evidence</think><answer>Real or Fake</answer>. "
    "Evidence: <type>ARTIFACT TYPE</type> in <t>[start, end]</t> at <bbox>[x1, y1, x2, y2]</bbox> "
    "(seconds; box corners as fractions of the frame); a real video's normal segments have no <type>.")


def system_prompt(taxonomy=None, *, compact: bool = False) -> str:
    """The instructions that teach a model (teacher or detector) this grammar and the taxonomy.

    ``compact`` gives the format alone, in two sentences (:data:`COMPACT_SYSTEM_PROMPT`): for a model
    trained from scratch, which cannot read instructions and learns to look at the frames far
    slower behind hundreds of tokens of them.
    """
    if compact:
        return COMPACT_SYSTEM_PROMPT
    tax = taxonomy if taxonomy is not None else _default_taxonomy()
    groups: dict[str, dict[str, list[str]]] = {}
    for l3, (l1, l2) in tax.l3_to_path.items():
        groups.setdefault(l1, {}).setdefault(l2, []).append(l3)
    lines = []
    for l1, l2s in groups.items():
        lines.append(f"- {l1}")
        for l2, l3s in l2s.items():
            lines.append(f"  - {l2}: {'; '.join(l3s)}")
    # The example must use a real L3 name of *this* taxonomy, or it would teach a wrong one.
    example_type = ("Abnormal Multi-Object Merging" if tax.is_l3("Abnormal Multi-Object Merging")
                    else next(iter(tax.l3_to_path), "Shape Distortion"))
    example = render("Fake", [
        "The person walks toward the door. Their left hand",
        Evidence(example_type, (1.2, 2.8), (0.31, 0.42, 0.48, 0.66)),
        "merges into the railing, which does not happen in real footage.",
    ])
    return "\n".join([
        "You are an expert at detecting AI-generated videos. Watch the video, reason about the "
        "visual evidence, and decide whether it is Real or Fake.",
        "",
        "Answer in exactly this format:",
        "<think>your reasoning</think><answer>Real or Fake</answer>",
        "",
        "Inside <think>, describe every artifact you find as",
        "<type>ARTIFACT TYPE</type> in <t>[start, end]</t> at <bbox>[x1, y1, x2, y2]</bbox>",
        "where:",
        "- ARTIFACT TYPE is exactly one of the artifact names listed below (copy it verbatim);",
        "- start and end are times in seconds from the start of the video, start < end, with two "
        "decimals;",
        "- x1, y1, x2, y2 are the box's top-left and bottom-right corners as fractions of the frame "
        "width and height (0 to 1, x1 < x2, y1 < y2, two decimals, no percentages).",
        "For a real video, explain why the motion, physics and textures are natural; you may point "
        "at normal segments with <t> and <bbox> but give no <type>.",
        "After </think>, write <answer>Real</answer> or <answer>Fake</answer> and nothing else.",
        "",
        "Artifact names (grouped by category and subcategory):",
        *lines,
        "",
        "Example:",
        example,
    ])
