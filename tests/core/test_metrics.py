"""Evaluation metrics: Skyra's paired protocol, Ivy-Fake's scores, calibration, grounding, masks,
ROUGE-L and the one entry point, each against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vigil.core.evaluation import EvalClip, Prediction, TruthArtifact, read_predictions
from vigil.core.metrics.calibration import average_precision, expected_calibration_error, reliability_bins, roc_auc
from vigil.core.metrics.classification import accuracy, false_positive_rate, macro_f1
from vigil.core.metrics.evidence import grounding_scores
from vigil.core.metrics.masks import boundary_f_measure, box_mask, region_similarity
from vigil.core.metrics.skyra import skyra_scores
from vigil.core.metrics.summary import evaluation_metrics
from vigil.core.metrics.text import format_compliance, rouge_l

# A hand-written prediction file: generators A and B.
#   Real/p1 is shared by A/p1 and B/p1; Real/p2 pairs with A/p2; Real/p4 pairs with B/p4;
#   B/p3 and A/p6 have no real partner; Real/p5 has no fake.
#   Unparsable answers: A/p2 (a fake) and Real/p4 (a real). B/p1 parsed but broke the grammar.
#
#  #  video_id  gt    answer  format_ok  P(fake)  correct
#  1  Real/p1   Real  Real    yes        0.1      yes
#  2  A/p1      Fake  Fake    yes        0.9      yes
#  3  B/p1      Fake  Fake    no         0.6      yes
#  4  Real/p2   Real  Fake    yes        0.7      no  (false alarm)
#  5  A/p2      Fake  Error   no         -        no  (miss)
#  6  B/p3      Fake  Fake    yes        0.8      yes
#  7  Real/p4   Real  Error   no         -        no  (false alarm)
#  8  B/p4      Fake  Fake    yes        0.95     yes
#  9  Real/p5   Real  Real    yes        0.2      yes
# 10  A/p6      Fake  Real    yes        0.3      no  (miss)
PREDICTIONS_JSON = """[
 {"video_id": "Real/p1", "aigc_model_name": "Real", "mllm_model_name": "m", "gt": "Real",
  "response": "<think>Light stays consistent.</think><answer>Real</answer>", "answer": "Real",
  "format_ok": true, "fake_probability": 0.1, "latency_s": 1.0, "base_id": "p1"},
 {"video_id": "A/p1", "aigc_model_name": "A", "mllm_model_name": "m", "gt": "Fake",
  "response": "<think>The hand melts.</think><answer>Fake</answer>", "answer": "Fake",
  "format_ok": true, "fake_probability": 0.9, "latency_s": 2.0, "base_id": "p1",
  "evidence": [{"type": "Shape Distortion", "t": [0.0, 0.6], "bbox": [0.2, 0.2, 0.6, 0.6]}]},
 {"video_id": "B/p1", "aigc_model_name": "B", "mllm_model_name": "m", "gt": "Fake",
  "response": "<think>Odd.<answer>Fake</answer>", "answer": "Fake",
  "format_ok": false, "fake_probability": 0.6, "latency_s": 3.0, "base_id": "p1"},
 {"video_id": "Real/p2", "aigc_model_name": "Real", "mllm_model_name": "m", "gt": "Real",
  "response": "<think>Blurry.</think><answer>Fake</answer>", "answer": "Fake",
  "format_ok": true, "fake_probability": 0.7, "latency_s": 4.0, "base_id": "p2"},
 {"video_id": "A/p2", "aigc_model_name": "A", "mllm_model_name": "m", "gt": "Fake",
  "response": "I am not sure", "answer": "Error",
  "format_ok": false, "fake_probability": null, "latency_s": 5.0, "base_id": "p2"},
 {"video_id": "B/p3", "aigc_model_name": "B", "mllm_model_name": "m", "gt": "Fake",
  "response": "<think>Text garbles.</think><answer>Fake</answer>", "answer": "Fake",
  "format_ok": true, "fake_probability": 0.8, "latency_s": 6.0, "base_id": "p3"},
 {"video_id": "Real/p4", "aigc_model_name": "Real", "mllm_model_name": "m", "gt": "Real",
  "response": "<think>Hmm", "answer": "Error",
  "format_ok": false, "fake_probability": null, "latency_s": 7.0, "base_id": "p4"},
 {"video_id": "B/p4", "aigc_model_name": "B", "mllm_model_name": "m", "gt": "Fake",
  "response": "<think>Physics breaks.</think><answer>Fake</answer>", "answer": "Fake",
  "format_ok": true, "fake_probability": 0.95, "latency_s": 8.0, "base_id": "p4"},
 {"video_id": "Real/p5", "aigc_model_name": "Real", "mllm_model_name": "m", "gt": "Real",
  "response": "<think>All natural.</think><answer>Real</answer>", "answer": "Real",
  "format_ok": true, "fake_probability": 0.2, "latency_s": 9.0, "base_id": "p5"},
 {"video_id": "A/p6", "aigc_model_name": "A", "mllm_model_name": "m", "gt": "Fake",
  "response": "<think>Looks fine.</think><answer>Real</answer>", "answer": "Real",
  "format_ok": true, "fake_probability": 0.3, "latency_s": 10.0, "base_id": "p6"}
]"""

SHAPE = TruthArtifact(type="Shape Distortion", t=(0.0, 0.6), bbox=(0.2, 0.2, 0.6, 0.6))
BLUR = TruthArtifact(type="Unnatural Blur", t=(1.0, 1.5), bbox=(0.7, 0.7, 0.9, 0.9))


@pytest.fixture
def predictions(tmp_path) -> list[Prediction]:
    path = tmp_path / "predictions.json"
    path.write_text(PREDICTIONS_JSON)
    return read_predictions(path)


def clip_for(p: Prediction, **kwargs) -> EvalClip:
    return EvalClip(video_id=p.video_id, aigc_model_name=p.aigc_model_name, gt=p.gt, base_id=p.base_id,
                    frames_dir=f"frames/{p.video_id}", duration_s=2.0, **kwargs)


def labels_of(predictions):
    answers = [{"Fake": 1, "Real": 0}.get(p.answer) for p in predictions]
    return answers, [int(p.gt == "Fake") for p in predictions]


# ---------------------------------------------------------------------------------------------
# Skyra's protocol


def test_skyra_scores_on_the_hand_checked_file(predictions):
    # Given the hand-written file above
    # When scored with Skyra's protocol
    scores = skyra_scores(predictions)
    # Then generator A:
    #   pairs (Real/p1, A/p1): (1 + 1)/2 = 1; (Real/p2, A/p2): (0 + 0)/2 = 0  -> pBA 0.5
    #   fakes A/p1 ✓, A/p2 ✗ (Error), A/p6 ✗ (unpaired)                     -> recall 1/3
    #   F1 over A/p1, A/p2, A/p6, Real/p1, Real/p2: TP 1, FN 2, FP 1 (Real/p2) -> 2/(2+1+2) = 0.4
    #   unparsable: A/p2 -> 1
    a = scores["per_generator"]["A"]
    assert (a["pairs"], a["fakes"], a["unpaired_fakes"], a["unparsable"]) == (2, 3, 1, 1)
    assert a["paired_balanced_accuracy"] == pytest.approx(0.5)
    assert a["fake_recall"] == pytest.approx(1 / 3)
    assert a["f1"] == pytest.approx(0.4)
    # And generator B:
    #   pairs (Real/p1, B/p1): (1 + 1)/2 = 1; (Real/p4, B/p4): (0 + 1)/2 = 0.5 -> pBA 0.75
    #   fakes B/p1 ✓, B/p3 ✓ (unpaired), B/p4 ✓                               -> recall 1
    #   F1 over B/p1, B/p3, B/p4, Real/p1, Real/p4: TP 3, FN 0, FP 1 (Error)  -> 6/7
    #   unparsable: Real/p4 -> 1
    b = scores["per_generator"]["B"]
    assert (b["pairs"], b["fakes"], b["unpaired_fakes"], b["unparsable"]) == (2, 3, 1, 1)
    assert b["paired_balanced_accuracy"] == pytest.approx(0.75)
    assert b["fake_recall"] == pytest.approx(1.0)
    assert b["f1"] == pytest.approx(6 / 7)
    # And overall: unweighted means over the two generators; Real/p5 is the one unpaired real
    assert scores["paired_balanced_accuracy"] == pytest.approx((0.5 + 0.75) / 2)
    assert scores["fake_recall"] == pytest.approx((1 / 3 + 1) / 2)
    assert scores["f1"] == pytest.approx((0.4 + 6 / 7) / 2)
    assert (scores["generators"], scores["unparsable"], scores["unpaired_reals"]) == (2, 2, 1)


def test_generator_without_a_complete_pair_has_nan_pba_and_is_skipped_in_the_mean(predictions):
    # Given only generator B's unpaired fake B/p3 plus generator A's complete pair (Real/p1, A/p1)
    subset = [p for p in predictions if p.video_id in {"B/p3", "A/p1", "Real/p1"}]
    # When scored
    scores = skyra_scores(subset)
    # Then B's pBA is nan and the overall pBA is A's alone (1.0); B still counts in recall
    assert np.isnan(scores["per_generator"]["B"]["paired_balanced_accuracy"])
    assert scores["paired_balanced_accuracy"] == pytest.approx(1.0)
    assert scores["per_generator"]["B"]["fake_recall"] == pytest.approx(1.0)


def test_duplicate_predictions_are_refused(predictions):
    # Given the same clip predicted twice
    # When scored / Then it is an error rather than a silently double-counted pair
    with pytest.raises(ValueError, match="two predictions"):
        skyra_scores([*predictions, predictions[0]])


# ---------------------------------------------------------------------------------------------
# Ivy-Fake's scores, false alarms and format compliance


def test_ivy_fake_scores_on_the_hand_checked_file(predictions):
    # Given the hand-written file as labels (1 = fake, None = unparsable)
    answers, labels = labels_of(predictions)
    # Then accuracy: correct are #1, 2, 3, 6, 8, 9 -> 6/10
    assert accuracy(answers, labels) == pytest.approx(0.6)
    # And macro F1: Fake: TP 4 (#2, 3, 6, 8), FN 2 (#5 Error, #10), FP 2 (#4, #7 Error) -> 8/12;
    #     Real: TP 2 (#1, 9), FN 2 (#4, #7), FP 2 (#5 Error counts as Real, #10) -> 4/8;
    #     mean (2/3 + 1/2)/2 = 7/12
    assert macro_f1(answers, labels) == pytest.approx(7 / 12)
    # And FPR on reals: #4 (Fake) and #7 (Error) of 4 reals -> 0.5
    assert false_positive_rate(answers, labels) == pytest.approx(0.5)
    # And format compliance: all but #3 (grammar broken), #5 and #7 (Error) -> 7/10
    assert format_compliance(predictions) == pytest.approx(0.7)


# ---------------------------------------------------------------------------------------------
# Scores and calibration


def test_average_precision_and_auc_by_hand_with_a_tie():
    # Given scores with a tie between a fake and a real at 0.5
    scores, labels = [0.9, 0.5, 0.5, 0.1], [0, 1, 0, 1]
    # When AP is computed: thresholds 0.9 (P 0, R 0), 0.5 (TP 1, FP 2: P 1/3, R 1/2),
    #     0.1 (TP 2, FP 2: P 1/2, R 1) -> AP = 1/2·1/3 + 1/2·1/2 = 5/12
    assert average_precision(scores, labels) == pytest.approx(5 / 12)
    # And AUC: fake 0.5 beats nothing and ties the real 0.5 (1/2); fake 0.1 beats nothing -> 0.5/4
    assert roc_auc(scores, labels) == pytest.approx(0.125)


def test_average_precision_without_ties_and_without_fakes():
    # Given a ranking fake, real, fake, real: AP = 1/2·1 + 1/2·2/3 = 5/6; a perfect ranking: 1
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(5 / 6)
    assert average_precision([0.9, 0.1], [1, 0]) == pytest.approx(1.0)
    # And without any fake AP is undefined
    assert np.isnan(average_precision([0.2, 0.3], [0, 0]))


def test_ece_and_reliability_bins_by_hand():
    # Given five probabilities in two equal-width bins
    probs, labels = [0.05, 0.15, 0.25, 0.85, 0.95], [0, 0, 1, 1, 1]
    # When binned: [0, 0.5) holds 3 with mean 0.15 and fake rate 1/3; [0.5, 1] holds 2 with mean
    #     0.9 and fake rate 1
    bins = reliability_bins(probs, labels, n_bins=2)
    # Then
    assert [(b["lo"], b["hi"], b["count"]) for b in bins] == [(0.0, 0.5, 3), (0.5, 1.0, 2)]
    assert bins[0]["mean_probability"] == pytest.approx(0.15)
    assert bins[0]["fake_rate"] == pytest.approx(1 / 3)
    assert bins[1]["mean_probability"] == pytest.approx(0.9)
    assert bins[1]["fake_rate"] == pytest.approx(1.0)
    # And ECE = 3/5·|0.15 − 1/3| + 2/5·|0.9 − 1| = 0.11 + 0.04
    assert expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.15)
    # And with ten bins only the five non-empty bins are listed, P = 1 falls in the last one
    ten = reliability_bins([*probs, 1.0], [*labels, 1], n_bins=10)
    assert [b["count"] for b in ten] == [1, 1, 1, 1, 2]
    assert ten[-1]["lo"] == pytest.approx(0.9)


# ---------------------------------------------------------------------------------------------
# ROUGE-L


def test_rouge_l_by_hand():
    # Identical text (case and punctuation aside) scores 1, disjoint text 0
    assert rouge_l("The hand melts.", "the hand MELTS") == pytest.approx(1.0)
    assert rouge_l("blurry face", "hand melts") == 0.0
    assert rouge_l("", "hand melts") == 0.0
    # Candidate "the face blurs at the edge" vs reference "the face melts at the border":
    #     LCS "the face at the" = 4; P = 4/6, R = 4/6 -> F = 2/3
    assert rouge_l("the face blurs at the edge", "the face melts at the border") == pytest.approx(2 / 3)
    # Different lengths: LCS of "a b c d" and "a c e" is "a c": P = 2/4, R = 2/3 -> F = 4/7
    assert rouge_l("a b c d", "a c e") == pytest.approx(4 / 7)


# ---------------------------------------------------------------------------------------------
# Grounding


def test_grounding_one_artifact_matched_exactly_and_one_missed(predictions):
    # Given A/p1 (a Fake answer naming exactly the shape distortion) on a clip with two artifacts
    a_p1 = next(p for p in predictions if p.video_id == "A/p1")
    clip = clip_for(a_p1, truth=(SHAPE, BLUR), has_truth=True)
    # When grounded
    scores = grounding_scores([(a_p1, clip)])
    # Then one artifact scores 1/1/True and the other 0/0/False
    assert scores == pytest.approx({"clips": 1, "artifacts": 2, "temporal_iou": 0.5, "box_iou": 0.5,
                                    "type_accuracy": 0.5})


def test_grounding_of_a_whole_frame_box_is_the_truth_boxs_share_of_the_frame(predictions):
    # Given A/p1 answered with Skyra's zero box, read by the grammar as the whole frame
    from vigil.core.evaluation import EvidenceItem
    from vigil.core.grammar import check

    [ev] = check("<think><type>Shape Distortion</type> in <t>[0.0, 0.6]</t> at <bbox>[0, 0, 0, 0]</bbox>"
                 "</think><answer>Fake</answer>").evidence
    a_p1 = next(p for p in predictions if p.video_id == "A/p1")
    whole = a_p1.model_copy(update={"evidence": (EvidenceItem(type=ev.type, t=ev.t, bbox=ev.bbox),)})
    # When grounded against the shape distortion (a 0.4 × 0.4 box)
    scores = grounding_scores([(whole, clip_for(a_p1, truth=(SHAPE,), has_truth=True))])
    # Then time and type match exactly and the box IoU is the truth's area, 0.16
    assert whole.evidence[0].whole_frame
    assert scores == pytest.approx({"clips": 1, "artifacts": 1, "temporal_iou": 1.0, "box_iou": 0.16,
                                    "type_accuracy": 1.0})


def test_grounding_is_none_without_truth_and_ignores_evidence_of_a_real_answer(predictions):
    # Given clips without known truth
    joined = [(p, clip_for(p)) for p in predictions]
    # Then there is no grounding score
    assert grounding_scores(joined) is None
    # And given A/p1's evidence under a Real answer, the artifact counts as missed
    a_p1 = next(p for p in predictions if p.video_id == "A/p1")
    real_answer = a_p1.model_copy(update={"answer": "Real"})
    scores = grounding_scores([(real_answer, clip_for(a_p1, truth=(SHAPE,), has_truth=True))])
    assert (scores["temporal_iou"], scores["box_iou"], scores["type_accuracy"]) == (0.0, 0.0, 0.0)


# ---------------------------------------------------------------------------------------------
# Masks: J and F


def rectangle(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def test_identical_masks_score_one_and_disjoint_masks_zero():
    # Given a rectangle and one far from it (beyond the tolerance)
    a = rectangle((20, 20), (2, 6), (2, 6))
    b = rectangle((20, 20), (12, 18), (12, 18))
    # Then identical masks score J = F = 1 and disjoint ones 0
    assert (region_similarity(a, a), boundary_f_measure(a, a, 1)) == (1.0, 1.0)
    assert (region_similarity(a, b), boundary_f_measure(a, b, 1)) == (0.0, 0.0)


def test_empty_masks():
    # Given empty masks: both empty scores 1, only one empty scores 0
    empty, full = np.zeros((8, 8), bool), rectangle((8, 8), (2, 5), (2, 5))
    assert (region_similarity(empty, empty), boundary_f_measure(empty, empty, 1)) == (1.0, 1.0)
    assert (region_similarity(full, empty), boundary_f_measure(empty, full, 1)) == (0.0, 0.0)


def test_box_mask_against_a_known_rectangle():
    # Given a truth rectangle rows 2–5, cols 2–5 (16 px) on a 10×10 frame
    truth = rectangle((10, 10), (2, 6), (2, 6))
    # When a box [0.4, 0.4, 0.8, 0.8] is drawn: rows 4–7, cols 4–7 (16 px)
    predicted = box_mask([(0.4, 0.4, 0.8, 0.8)], 10, 10)
    assert predicted.sum() == 16 and predicted[4:8, 4:8].all()
    # Then IoU = 4 / (16 + 16 − 4) = 1/7
    assert region_similarity(predicted, truth) == pytest.approx(1 / 7)


def test_boundary_f_measure_by_hand():
    # Given a 3×3 square (rows 1–3, cols 1–3) and the same square one column right, tolerance 0:
    #     each boundary is the 8-pixel ring around its centre; the rings share rows 1 and 3 at
    #     cols 2 and 3 (4 px), so P = R = 4/8 and F = 1/2
    a = rectangle((6, 7), (1, 4), (1, 4))
    b = rectangle((6, 7), (1, 4), (2, 5))
    assert boundary_f_measure(a, b, 0) == pytest.approx(0.5)
    # And within a 1-pixel tolerance every boundary pixel is matched
    assert boundary_f_measure(a, b, 1) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# The entry point


@pytest.fixture
def evalset(tmp_path, predictions):
    """A tiny evaluation-set folder: truth and masks for A/p1, truth for B/p4, two references."""
    folder = tmp_path / "evalset"
    # A/p1: four frames at 0.0, 0.5, 1.0, 1.5 s on a 10×10 frame; the shape distortion (rows and
    # cols 2–5) in the first two, the blur (rows and cols 7–8) in the last two
    (folder / "frames" / "A" / "p1").mkdir(parents=True)
    (folder / "frames" / "A" / "p1" / "timestamps.txt").write_text("0.0\n0.5\n1.0\n1.5\n")
    masks = np.zeros((4, 10, 10), dtype=bool)
    masks[0:2, 2:6, 2:6] = True
    masks[2:4, 7:9, 7:9] = True
    (folder / "masks").mkdir()
    np.save(folder / "masks" / "A_p1.npy", masks)
    by_id = {p.video_id: p for p in predictions}
    special = {
        "A/p1": {"truth": (SHAPE, BLUR), "has_truth": True, "masks": "masks/A_p1.npy",
                 "reference": by_id["A/p1"].response},
        "B/p4": {"truth": (BLUR,), "has_truth": True},
        "Real/p1": {"reference": "A dog runs"},
    }
    clips = [clip_for(p, **special.get(p.video_id, {})) for p in predictions]
    return folder, clips


def test_evaluation_metrics_end_to_end(predictions, evalset):
    folder, clips = evalset
    # When every metric is computed
    report = evaluation_metrics(predictions, clips, folder)
    # Then the report has exactly the agreed structure and serialises to JSON
    assert set(report) == {"clips", "unparsable", "skyra", "skyra_eval", "accuracy", "macro_f1", "fpr_real",
                           "format_compliance", "ap", "roc_auc", "ece", "scored_clips", "reliability",
                           "confusion", "grounding", "masks", "rouge_l", "latency", "per_generator",
                           "per_artifact_type"}
    assert set(report["skyra"]) == {"paired_balanced_accuracy", "fake_recall", "f1", "generators",
                                    "unparsable", "unpaired_reals", "per_generator"}
    assert set(report["skyra"]["per_generator"]["A"]) == {
        "pairs", "fakes", "unpaired_fakes", "paired_balanced_accuracy", "fake_recall", "f1", "unparsable"}
    assert set(report["per_generator"]) == {"A", "B"}
    assert set(report["per_generator"]["A"]) == {"clips", "accuracy", "fpr_real", "fake_recall",
                                                 "format_compliance", "grounding"}
    assert all(set(b) == {"lo", "hi", "count", "mean_probability", "fake_rate"} for b in report["reliability"])
    assert json.loads(json.dumps(report)) == report
    # And the hand-checked counts and scores (rounded to 4 places)
    assert (report["clips"], report["unparsable"], report["scored_clips"]) == (10, 2, 8)
    assert report["skyra"]["paired_balanced_accuracy"] == 0.625
    assert report["skyra"]["f1"] == round((0.4 + 6 / 7) / 2, 4)
    # And beside it Skyra's eval.py: pairs only, an Error read as Fake. A: p1 (✓, ✓), p2 (real called
    #     Fake ✗, Error → Fake ✓) -> BA (1/2 + 1)/2, recall 1, F1 4/(4 + 1); B (p1, p4) the same
    assert {k: report["skyra_eval"][k] for k in ("balanced_accuracy", "recall", "f1", "pairs", "read_as_fake",
                                                 "unpaired_fakes", "unpaired_reals")} == {
        "balanced_accuracy": 0.75, "recall": 1.0, "f1": 0.8, "pairs": 4, "read_as_fake": 2,
        "unpaired_fakes": 2, "unpaired_reals": 1}
    assert report["skyra_eval"]["as_printed"] == {"acc": "75.00", "recall": "100.00", "f1": "80.00"}
    assert (report["accuracy"], report["macro_f1"], report["fpr_real"], report["format_compliance"]) == (
        0.6, round(7 / 12, 4), 0.5, 0.7)
    assert report["confusion"] == {"Real": {"Real": 2, "Fake": 1, "Error": 1},
                                   "Fake": {"Real": 1, "Fake": 4, "Error": 1}}
    # And AP/AUC/ECE use the eight clips with a probability (both Errors have none)
    scored = [p for p in predictions if p.fake_probability is not None]
    probs, labels = [p.fake_probability for p in scored], [int(p.gt == "Fake") for p in scored]
    assert report["ap"] == round(average_precision(probs, labels), 4)
    assert report["roc_auc"] == round(roc_auc(probs, labels), 4)
    assert report["ece"] == round(expected_calibration_error(probs, labels), 4)
    assert sum(b["count"] for b in report["reliability"]) == 8
    # And grounding: A/p1 matches the shape (1, 1, True) and misses the blur; B/p4 (a Fake answer
    #     without evidence) misses its blur -> 3 artifacts, each mean 1/3
    assert report["grounding"] == {"clips": 2, "artifacts": 3, "temporal_iou": 0.3333,
                                   "box_iou": 0.3333, "type_accuracy": 0.3333}
    # And masks: A/p1's evidence spans 0–0.6 s, so frames 0 and 1 match exactly (J = F = 1) and
    #     frames 2 and 3 predict nothing where the blur is (0) -> J = F = J&F = 0.5
    assert report["masks"] == {"clips": 1, "j": 0.5, "f": 0.5, "j_and_f": 0.5}
    # And ROUGE-L: A/p1's response is its own reference (1), Real/p1's shares no word (0)
    assert report["rouge_l"] == 0.5
    # And latency over 1…10 s: mean 5.5, median 5.5, p95 = 1 + 0.95·9
    assert report["latency"] == {"mean_s": 5.5, "p50_s": 5.5, "p95_s": 9.55}
    # And generator A's slice: A/p1, A/p2, A/p6, Real/p1, Real/p2 -> correct 2 of 5, false alarm 1 of
    #     2 reals, recall 1/3, compliant 4 of 5 (A/p2 is an Error); grounding on A/p1 alone
    assert report["per_generator"]["A"] == {
        "clips": 5, "accuracy": 0.4, "fpr_real": 0.5, "fake_recall": 0.3333, "format_compliance": 0.8,
        "grounding": {"clips": 1, "artifacts": 2, "temporal_iou": 0.5, "box_iou": 0.5, "type_accuracy": 0.5}}
    # And by artifact type: the shape distortion (A/p1) is found; the blur (A/p1, B/p4) never is,
    #     though both clips were answered Fake
    assert report["per_artifact_type"] == {
        "Shape Distortion": {"clips": 1, "fake_recall": 1.0, "temporal_iou": 1.0, "box_iou": 1.0,
                             "type_accuracy": 1.0},
        "Unnatural Blur": {"clips": 2, "fake_recall": 1.0, "temporal_iou": 0.0, "box_iou": 0.0,
                           "type_accuracy": 0.0},
    }


def test_evaluation_metrics_without_truth_masks_or_probabilities(predictions):
    # Given plain clips and predictions without probabilities
    bare = [p.model_copy(update={"fake_probability": None}) for p in predictions]
    clips = [clip_for(p) for p in predictions]
    # When evaluated without an evaluation-set folder
    report = evaluation_metrics(bare, clips)
    # Then the optional parts are None (not nan) and the report still serialises
    assert (report["grounding"], report["masks"], report["rouge_l"]) == (None, None, None)
    assert (report["ap"], report["roc_auc"], report["ece"], report["scored_clips"]) == (None, None, None, 0)
    assert report["reliability"] == [] and report["per_artifact_type"] == {}
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_evaluation_metrics_refuses_predictions_for_unknown_clips(predictions):
    # Given an evaluation set missing one predicted clip
    clips = [clip_for(p) for p in predictions[1:]]
    # Then the join fails loudly
    with pytest.raises(ValueError, match="not in the evaluation set"):
        evaluation_metrics(predictions, clips)
