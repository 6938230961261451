"""The skyra_eval scoring mode: Skyra's public eval.py reproduced, against hand-computed values.

scikit-learn is not a dependency, so the expected numbers are worked out below with eval.py's
protocol: an answer other than Real reads as Fake, only complete (real, fake) pairs count, and per
generator balanced accuracy = (real recall + fake recall) / 2, recall = TP / (TP + FN),
F1 = 2TP / (2TP + FP + FN), then unweighted means over generators.
"""

from __future__ import annotations

import math

import pytest

from vigil.core.evaluation import Prediction
from vigil.core.metrics.skyra import skyra_scores
from vigil.core.metrics.skyra_eval import skyra_eval_pairs, skyra_eval_scores


def prediction(video_id: str, answer: str) -> Prediction:
    generator, base = video_id.split("/")
    return Prediction(video_id=video_id, aigc_model_name=generator, mllm_model_name="m",
                      gt="Real" if generator == "Real" else "Fake", response=f"<answer>{answer}</answer>",
                      answer=answer, format_ok=answer != "Error", base_id=base)


# Generators A and B; Error = Vigil could not parse the answer (eval.py reads it as Fake).
#   base  Real       A       B
#   p1    Real       Fake    Error
#   p2    Error      Real    Fake
#   p3    Real       -       Fake
#   p4    -          Fake    -        (A/p4: unpaired fake)
#   p5    Real       -       -        (Real/p5: unpaired real)
#   p6    -          -       Error    (B/p6: unpaired fake)
FILE = [prediction(v, a) for v, a in [
    ("Real/p1", "Real"), ("A/p1", "Fake"), ("B/p1", "Error"),
    ("Real/p2", "Error"), ("A/p2", "Real"), ("B/p2", "Fake"),
    ("Real/p3", "Real"), ("B/p3", "Fake"),
    ("A/p4", "Fake"), ("Real/p5", "Real"), ("B/p6", "Error"),
]]


def test_scores_follow_eval_py_on_a_file_with_unparsable_and_unpaired_clips():
    # Given the file above
    # When scored in the skyra_eval mode
    s = skyra_eval_scores(FILE)
    # Then generator A has the pairs p1 (real ✓, fake ✓) and p2 (real Error → Fake ✗, fake Real ✗):
    #   TP 1, FN 1, TN 1, FP 1 -> BA (1/2 + 1/2)/2 = 0.5, recall 1/2, F1 2/(2 + 1 + 1) = 0.5
    a = s["per_generator"]["A"]
    assert (a["pairs"], a["balanced_accuracy"], a["recall"], a["f1"]) == (2, 0.5, 0.5, 0.5)
    # And generator B has p1 (real ✓, fake Error → Fake ✓), p2 (real Error ✗, fake ✓), p3 (✓, ✓):
    #   TP 3, FN 0, TN 2, FP 1 -> BA (2/3 + 1)/2 = 5/6, recall 1, F1 6/(6 + 1 + 0) = 6/7
    b = s["per_generator"]["B"]
    assert b["pairs"] == 3 and b["recall"] == 1.0
    assert b["balanced_accuracy"] == pytest.approx(5 / 6) and b["f1"] == pytest.approx(6 / 7)
    # And the means over the two generators, and eval.py's printed form (percent, two decimals)
    assert s["balanced_accuracy"] == pytest.approx((0.5 + 5 / 6) / 2)  # 2/3
    assert s["recall"] == pytest.approx(0.75)
    assert s["f1"] == pytest.approx((0.5 + 6 / 7) / 2)  # 19/28 = 0.678571…
    assert s["as_printed"] == {"acc": "66.67", "recall": "75.00", "f1": "67.86"}
    # And the clips it reads differently from Vigil: 3 Errors read as Fake, A/p4 and B/p6 left
    #     out as unpaired fakes, Real/p5 as an unpaired real
    assert (s["generators"], s["pairs"], s["read_as_fake"], s["unpaired_fakes"], s["unpaired_reals"]) == (
        2, 5, 3, 2, 1)


def test_the_same_file_scores_lower_under_vigils_strict_protocol():
    # Given the same file
    # When scored by Vigil (an Error is wrong; recall over every fake, unpaired ones included)
    strict, skyra = skyra_scores(FILE), skyra_eval_scores(FILE)
    # Then B's pairs are worth (1 + 0)/2, (0 + 1)/2 and 1 -> 2/3 (not 5/6), and B's recall is 2/4
    #     (B/p1 and B/p6 are Errors), so the two modes differ exactly where the protocols do
    assert strict["per_generator"]["B"]["paired_balanced_accuracy"] == pytest.approx(2 / 3)
    assert strict["per_generator"]["B"]["fake_recall"] == pytest.approx(0.5)
    assert skyra["per_generator"]["B"]["balanced_accuracy"] == pytest.approx(5 / 6)
    assert strict["paired_balanced_accuracy"] < skyra["balanced_accuracy"]


def test_rows_are_read_as_eval_py_reads_them():
    # Given rows from another tool: a raw answer text, a lower-case 'real' generator name, a row
    # without an answer, a video id without a slash, and a clip answered twice
    rows = [
        {"video_id": "Real/x", "aigc_model_name": "real", "gt": "Real", "answer": "Fake"},
        {"video_id": "Real/x", "aigc_model_name": "real", "gt": "Real", "answer": "real"},  # replaces the first
        {"video_id": "G/x", "aigc_model_name": "G", "gt": "Fake", "answer": "it is uncertain"},
        {"video_id": "Real/y", "aigc_model_name": "Real", "gt": "Real", "answer": None},  # skipped
        {"video_id": "G/y", "aigc_model_name": "G", "gt": "Fake", "answer": "Real"},
        {"video_id": "noslash", "aigc_model_name": "G", "gt": "Fake", "answer": "Real"},  # skipped
    ]
    # When paired
    pairs = skyra_eval_pairs(rows)
    # Then only base x pairs: the later real answer counts, the raw text reads as Fake
    assert pairs == {"G": [(False, True)]}
    s = skyra_eval_scores(rows)
    assert (s["balanced_accuracy"], s["read_as_fake"], s["unpaired_fakes"]) == (1.0, 1, 1)


def test_no_pair_gives_no_number():
    # Given only fakes (eval.py halts: "no valid real/fake pairs")
    s = skyra_eval_scores([prediction("A/p1", "Fake")])
    # Then the means are nan and nothing is scored
    assert math.isnan(s["balanced_accuracy"]) and s["generators"] == 0 and s["per_generator"] == {}
    assert s["as_printed"] == {"acc": None, "recall": None, "f1": None}
