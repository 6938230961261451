"""GRPO rewards: Skyra's asymmetric accuracy + exploration reward and the grounding reward."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.core.grammar import Evidence, render, render_evidence
from vigil.train.rewards import (
    EXPLORATION_CAP,
    EXPLORATION_WEIGHT,
    FALSE_ALARM_PENALTY,
    REWARD_FUNCTIONS,
    SKYRA_MAX,
    SKYRA_MIN,
    grounding_reward,
    skyra_reward,
)

BLUR = Evidence("Unnatural Blur", (1.0, 3.0), (0.0, 0.0, 0.5, 0.5))
SHAPE = Evidence("Shape Distortion", (4.0, 5.0), (0.5, 0.5, 1.0, 1.0))
NORMAL = Evidence(None, (0.0, 2.0), (0.1, 0.1, 0.9, 0.9))  # a typeless "normal segment"

GT_BLUR = {"type": "Unnatural Blur", "t": [1.0, 3.0], "bbox": [0.0, 0.0, 0.5, 0.5]}
GT_SHAPE = {"type": "Shape Distortion", "t": [4.0, 5.0], "bbox": [0.5, 0.5, 1.0, 1.0]}


def fake_with(*evidence: Evidence) -> str:
    return render("Fake", ["The clip shows", *evidence, "which real footage cannot do."])


def real_with(*evidence: Evidence) -> str:
    return render("Real", ["Motion and lighting stay consistent", *evidence, "throughout."])


def bonus(n: int) -> float:
    return EXPLORATION_WEIGHT * min(math.log(1 + n), EXPLORATION_CAP)


# ---------------------------------------------------------------------------------------------
# skyra_reward


def test_correct_fake_with_one_evidence_gets_accuracy_plus_log_bonus():
    # Given a fake clip and a well-formed Fake answer naming one grounded artifact
    completions = [fake_with(BLUR)]
    # When rewarded
    [reward] = skyra_reward(completions, label=["fake"])
    # Then it is the accuracy term plus 0.8 ln 2
    assert reward == pytest.approx(1.0 + 0.8 * math.log(2))


@pytest.mark.parametrize("n", [3, 5])
def test_exploration_bonus_is_capped_at_three_evidence(n):
    # Given a correct Fake answer with three or more grounded artifacts
    completions = [fake_with(*[BLUR] * n)]
    # When rewarded
    [reward] = skyra_reward(completions, label=["fake"])
    # Then the bonus stops at ln 4, the reward's maximum
    assert reward == pytest.approx(1.0 + 0.8 * math.log(4))
    assert reward == pytest.approx(SKYRA_MAX)


def test_bonus_grows_with_evidence_but_less_and_less():
    # Given correct Fake answers with 0..4 grounded artifacts
    completions = [fake_with(*[BLUR] * n) for n in range(5)]
    # When rewarded
    rewards = skyra_reward(completions, label=["fake"] * 5)
    # Then the reward rises concavely up to the cap, then stays flat
    gains = [b - a for a, b in zip(rewards, rewards[1:])]
    assert gains[0] > gains[1] > gains[2] > 0
    assert gains[3] == pytest.approx(0.0)


def test_correct_fake_without_evidence_gets_exactly_one():
    # Given a Fake answer on a fake clip whose reasoning grounds nothing
    completions = [render("Fake", ["It just looks synthetic."])]
    # When rewarded
    rewards = skyra_reward(completions, label=["fake"])
    # Then only the accuracy term is paid (N = 0, ln 1 = 0)
    assert rewards == [1.0]


def test_evidence_missing_a_box_is_not_counted():
    # Given a Fake answer whose only evidence has a type and time but no box
    completions = [fake_with(Evidence("Unnatural Blur", (1.0, 2.0), None))]
    # When rewarded
    rewards = skyra_reward(completions, label=["fake"])
    # Then it is well formed as text but earns no exploration bonus
    assert rewards == [1.0]


def test_real_clip_called_fake_is_penalised():
    # Given a real clip and a confident, well-grounded Fake answer
    completions = [fake_with(BLUR, SHAPE)]
    # When rewarded
    rewards = skyra_reward(completions, label=["real"])
    # Then the false alarm costs -0.2, whatever the evidence
    assert rewards == [FALSE_ALARM_PENALTY] == [-0.2]


def test_fake_clip_called_real_gets_nothing():
    # Given a fake clip answered Real with a normal segment
    completions = [real_with(NORMAL)]
    # When rewarded
    rewards = skyra_reward(completions, label=["fake"])
    # Then the miss earns zero (no penalty, no bonus)
    assert rewards == [0.0]


def test_correct_real_with_normal_segments_earns_the_bonus():
    # Given a real clip answered Real, pointing at one typeless normal segment
    completions = [real_with(NORMAL), real_with()]
    # When rewarded
    rewards = skyra_reward(completions, label=["real", "real"])
    # Then the normal segment counts as evidence; without it only accuracy is paid
    assert rewards == [pytest.approx(1.0 + bonus(1)), 1.0]


def test_real_answer_naming_artifact_types_is_self_contradictory():
    # Given a real clip answered Real, but the reasoning names an artifact type
    completions = [real_with(BLUR), real_with(NORMAL, BLUR)]
    # When rewarded
    rewards = skyra_reward(completions, label=["real", "real"])
    # Then it is treated as broken, even with a normal segment alongside
    assert rewards == [0.0, 0.0]


@pytest.mark.parametrize("text", [
    fake_with(BLUR)[:60],                                                    # truncated mid-think
    "<think>The hand melts.</think>",                                        # no answer
    "Fake",                                                                  # no tags at all
    "",                                                                      # empty
    "<think>x</think><answer>Fake</answer><answer>Fake</answer>",            # two answers
    "<think>x</think><answer>Probably fake</answer>",                        # bad answer
    fake_with(Evidence("Melting Hands", (1.0, 2.0), (0.1, 0.1, 0.2, 0.2))),  # unknown L3 type
    fake_with(Evidence("Unnatural Blur", (2.0, 1.0), (0.1, 0.1, 0.2, 0.2))),  # reversed time
    "<think>a <type>Unnatural Blur</type> in <t>[1, 2]</t> at <bbox>[10, 20, 40, 60]</bbox></think>"
    "<answer>Fake</answer>",                                                 # pixel box
])
def test_broken_output_gets_zero_for_both_rewards(text):
    # Given a fake clip with ground truth and a malformed answer text that says Fake somewhere
    # When rewarded
    skyra = skyra_reward([text], label=["fake"])
    grounding = grounding_reward([text], label=["fake"], truth=[[GT_BLUR]])
    # Then neither reward pays anything
    assert skyra == [0.0] and grounding == [0.0]


def test_evidence_beyond_the_clip_duration_is_broken():
    # Given a Fake answer whose evidence ends at 3 s, for clips of 2 s, 3.02 s (within the
    # rounding tolerance) and unknown duration
    text = fake_with(BLUR)
    completions = [text] * 4
    durations = [2.0, 3.02, None, float("nan")]
    # When rewarded with the clips' durations
    skyra = skyra_reward(completions, label=["fake"] * 4, duration_s=durations)
    grounding = grounding_reward(completions, label=["fake"] * 4, truth=[[GT_BLUR]] * 4,
                                 duration_s=durations)
    # Then only the too-short clip makes it broken; NaN means unknown
    assert skyra == [0.0] + [pytest.approx(1.0 + bonus(1))] * 3
    assert grounding == [0.0, 1.0, 1.0, 1.0]


def test_conversational_completions_read_like_plain_ones():
    # Given the same outputs as plain strings and as TRL conversations (one with content parts,
    # one whose chat template split the reasoning off)
    plain = [fake_with(BLUR), real_with(NORMAL)]
    conversations = [
        [{"role": "assistant", "content": plain[0]}],
        [{"role": "assistant", "content": [{"type": "text", "text": plain[1]}]}],
        [{"role": "assistant", "reasoning_content": "The clip shows " + render_evidence(BLUR),
          "content": "<answer>Fake</answer>"}],
    ]
    labels = ["fake", "real", "fake"]
    # When both shapes are rewarded
    from_plain = skyra_reward(plain, label=labels[:2])
    from_chat = skyra_reward(conversations, label=labels)
    # Then they get the same rewards, and the split reasoning still counts its evidence
    assert from_chat[:2] == from_plain == [pytest.approx(1.0 + bonus(1))] * 2
    assert from_chat[2] == pytest.approx(1.0 + bonus(1))
    assert grounding_reward(conversations[:1], label=["fake"], truth=[[GT_BLUR]]) == [1.0]


def test_labels_are_case_insensitive():
    # Given the same Fake answer with labels spelled in several cases
    completions = [fake_with(BLUR)] * 4
    labels = ["fake", "Fake", "FAKE", " real "]
    # When rewarded
    rewards = skyra_reward(completions, label=labels)
    # Then case and surrounding space do not matter
    assert rewards == [pytest.approx(1.0 + bonus(1))] * 3 + [-0.2]
    assert grounding_reward(completions[:2], label=labels[:2], truth=[[GT_BLUR]] * 2) == [1.0, 1.0]


@pytest.mark.parametrize("label", ["ai", "", None, 1])
def test_unknown_label_is_a_data_error(label):
    # Given a dataset row whose label is neither real nor fake
    # When rewarded / Then both rewards refuse it rather than guess
    with pytest.raises(ValueError, match="label"):
        skyra_reward([fake_with(BLUR)], label=[label])
    with pytest.raises(ValueError, match="label"):
        grounding_reward([fake_with(BLUR)], label=[label], truth=[[GT_BLUR]])


def test_trl_extra_keyword_arguments_are_ignored():
    # Given TRL's extra keywords and unrelated dataset columns
    extras = dict(prompts=["p"], completion_ids=[[1, 2]], trainer_state=object(), log_extra=print,
                  log_metric=print, source=["veo"])
    # When both rewards are called with them
    skyra = skyra_reward([fake_with(BLUR)], label=["fake"], **extras)
    grounding = grounding_reward([fake_with(BLUR)], label=["fake"], truth=[[GT_BLUR]], **extras)
    # Then they are ignored
    assert skyra == [pytest.approx(1.0 + bonus(1))] and grounding == [1.0]


def test_columns_must_align_with_completions():
    # Given two completions but one label
    # When rewarded / Then the misalignment is reported, not silently truncated by zip
    with pytest.raises(ValueError, match="label"):
        skyra_reward([fake_with(), fake_with()], label=["fake"])
    with pytest.raises(ValueError, match="truth"):
        grounding_reward([fake_with(), fake_with()], label=["fake", "fake"], truth=[[GT_BLUR]])


# ---------------------------------------------------------------------------------------------
# grounding_reward


def test_grounding_perfect_match_is_one():
    # Given a Fake answer whose evidence equals both ground-truth artifacts, in any order
    completions = [fake_with(SHAPE, BLUR)]
    # When rewarded against the ground truth
    rewards = grounding_reward(completions, label=["fake"], truth=[[GT_BLUR, GT_SHAPE]])
    # Then the reward is the maximum
    assert rewards == [1.0]


def test_grounding_partial_overlap_is_temporal_times_box_iou():
    # Given truth [1, 3] s at [0, 0, .5, .5] and a prediction [2, 4] s at [.25, .25, .75, .75]
    pred = Evidence("Unnatural Blur", (2.0, 4.0), (0.25, 0.25, 0.75, 0.75))
    # When rewarded
    [reward] = grounding_reward([fake_with(pred)], label=["fake"], truth=[[GT_BLUR]])
    # Then by hand: temporal IoU = 1 / 3 (overlap 1 s of 3 s), box IoU = 0.0625 / 0.4375 = 1 / 7
    assert reward == pytest.approx((1 / 3) * (1 / 7))


def test_grounding_type_mismatch_halves_the_score():
    # Given the right place and time but the wrong L3 type, at full and at partial overlap
    exact_wrong = Evidence("Texture Jittering", BLUR.t, BLUR.bbox)
    partial_wrong = Evidence("Texture Jittering", (2.0, 3.0), BLUR.bbox)
    # When rewarded
    rewards = grounding_reward([fake_with(exact_wrong), fake_with(partial_wrong)], label=["fake"] * 2,
                               truth=[[GT_BLUR]] * 2)
    # Then each is half of what the right type would earn (1 and 1/2)
    assert rewards == [0.5, 0.25]


def test_grounding_is_the_mean_over_ground_truth_and_unmatched_truth_scores_zero():
    # Given two ground-truth artifacts and an answer that finds only one, plus an answer whose
    # evidence overlaps nothing and one with no evidence
    far = Evidence("Unnatural Blur", (8.0, 9.0), (0.8, 0.8, 0.9, 0.9))
    completions = [fake_with(BLUR), fake_with(far), render("Fake", ["Looks synthetic."])]
    # When rewarded
    rewards = grounding_reward(completions, label=["fake"] * 3, truth=[[GT_BLUR, GT_SHAPE]] * 3)
    # Then the found one counts fully and the missed one as zero
    assert rewards == [0.5, 0.0, 0.0]


def test_one_broad_evidence_cannot_be_credited_for_two_artifacts():
    # Given two ground-truth artifacts and one prediction covering both in time and space
    broad = Evidence("Unnatural Blur", (0.0, 6.0), (0.0, 0.0, 1.0, 1.0))
    # When rewarded
    [reward] = grounding_reward([fake_with(broad)], label=["fake"], truth=[[GT_BLUR, GT_SHAPE]])
    # Then only one artifact is matched (one-to-one), so at most half the reward
    assert 0.0 < reward <= 0.5


def test_grounding_without_truth_box_uses_temporal_iou_alone():
    # Given ground truth with no box, and a prediction that overlaps half of it in time
    gt = [{"type": "Unnatural Blur", "t": [1.0, 3.0], "bbox": None}]
    pred = Evidence("Unnatural Blur", (2.0, 3.0), (0.0, 0.0, 0.1, 0.1))
    # When rewarded
    [reward] = grounding_reward([fake_with(pred)], label=["fake"], truth=[gt])
    # Then the box is not held against it
    assert reward == pytest.approx(0.5)


# Skyra's spelling of a whole-frame artifact: the zero box.
WHOLE_FRAME_CAMERA = ("<think>The view <type>Camera Motion Inconsistency</type> in <t>[1.0, 3.0]</t> at "
                      "<bbox>[0.0, 0.0, 0.0, 0.0]</bbox> jumps.</think><answer>Fake</answer>")
FLAT_CAMERA = WHOLE_FRAME_CAMERA.replace("[0.0, 0.0, 0.0, 0.0]", "[0.4, 0.0, 0.4, 0.0]")
GT_CAMERA = {"type": "Camera Motion Inconsistency", "t": [1.0, 3.0], "bbox": None}


def test_skyra_zero_box_is_well_formed_evidence_but_other_empty_boxes_break_the_output():
    # Given Skyra's zero box and a box that is empty without being all zeros
    # When rewarded on a fake clip
    rewards = skyra_reward([WHOLE_FRAME_CAMERA, FLAT_CAMERA], label=["fake", "fake"])
    # Then the zero box counts as one grounded evidence; the flat box is a violation
    assert rewards == [pytest.approx(1.0 + bonus(1)), 0.0]


def test_grounding_whole_frame_box_matches_frame_wide_truth_fully_and_boxed_truth_by_its_area():
    # Given a whole-frame claim against a frame-wide truth (no box) and against the blur's box
    # (a quarter of the frame), at the same time span
    gt_blur_then = [{**GT_BLUR, "type": "Camera Motion Inconsistency"}]
    # When rewarded
    rewards = grounding_reward([WHOLE_FRAME_CAMERA, WHOLE_FRAME_CAMERA], label=["fake", "fake"],
                               truth=[[GT_CAMERA], gt_blur_then])
    # Then the frame-wide truth is matched fully, the boxed one by its share of the frame (1/4)
    assert rewards == [1.0, pytest.approx(0.25)]


def test_grounding_accepts_truth_objects_with_attributes():
    # Given ground truth as objects rather than dicts, with tuple spans
    gt = [SimpleNamespace(type="Unnatural Blur", t=(1.0, 3.0), bbox=(0.0, 0.0, 0.5, 0.5))]
    # When rewarded
    rewards = grounding_reward([fake_with(BLUR)], label=["fake"], truth=[gt])
    # Then they are read the same way
    assert rewards == [1.0]


def test_grounding_without_truth_or_on_real_clips_is_zero():
    # Given a perfect-looking Fake answer on clips without ground truth, and a Real answer on a
    # real clip
    completions = [fake_with(BLUR), fake_with(BLUR), real_with(NORMAL)]
    # When rewarded
    rewards = grounding_reward(completions, label=["fake", "fake", "real"], truth=[None, [], None])
    # Then nothing is paid: real clips are rewarded by skyra_reward alone
    assert rewards == [0.0, 0.0, 0.0]


def test_grounding_real_answer_on_a_fake_is_zero_even_with_matching_segments():
    # Given a fake clip answered Real, with a normal segment exactly on the artifact
    completions = [real_with(Evidence(None, BLUR.t, BLUR.bbox))]
    # When rewarded
    rewards = grounding_reward(completions, label=["fake"], truth=[[GT_BLUR]])
    # Then the wrong answer earns no grounding credit
    assert rewards == [0.0]


# ---------------------------------------------------------------------------------------------
# Registry and totality


def test_registry_names_the_reward_functions():
    # Given the registry params.yaml refers to
    # When looked up / Then the names resolve to the functions, which TRL logs by __name__
    assert REWARD_FUNCTIONS == {"skyra": skyra_reward, "grounding": grounding_reward}
    assert {f.__name__ for f in REWARD_FUNCTIONS.values()} == {"skyra_reward", "grounding_reward"}


_TAGS = ["<think>", "</think>", "<answer>", "</answer>", "<type>", "</type>", "<t>", "</t>", "<bbox>",
         "</bbox>", "<conclusion>", "</conclusion>", "Real", "Fake", "Unnatural Blur", "[1, 3]",
         "[0, 0, 0.5, 0.5]", "[2.0, 1e309]", " in ", " at ", render_evidence(BLUR)]
_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(_TAGS), st.text(max_size=20)), max_size=30).map("".join),
    st.sampled_from([fake_with(BLUR), fake_with(*[BLUR] * 4), real_with(NORMAL), real_with(BLUR)]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT, label=st.sampled_from(["real", "fake", "Real", "FAKE"]),
       duration=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
       conversational=st.booleans())
def test_rewards_are_total_and_bounded_on_arbitrary_text(text, label, duration, conversational):
    # Given any text, as a plain or conversational completion, any label and any duration
    completion = [{"role": "assistant", "content": text}] if conversational else text
    # When both rewards score it
    [skyra] = skyra_reward([completion], label=[label], duration_s=[duration])
    [grounding] = grounding_reward([completion], label=[label], truth=[[GT_BLUR, GT_SHAPE]],
                                   duration_s=[duration])
    # Then neither raises and both stay in their ranges
    assert SKYRA_MIN <= skyra <= SKYRA_MAX
    assert SKYRA_MIN == -0.2 and SKYRA_MAX == pytest.approx(1 + 0.8 * math.log(4))
    assert 0.0 <= grounding <= 1.0
