"""The promotion gate's rules on bootstrap intervals (vigil.core.gate), on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.config.params import GateParams, GateRules, parse_params
from vigil.core.evaluation import Prediction
from vigil.core.gate import cluster_table, decide, generator_intervals, judge_set, metric_draws
from vigil.core.metrics.skyra import skyra_scores
from vigil.core.metrics.text import format_compliance

GENERATORS = ("loom-2", "nova-6")


def predictions(accuracy: dict[str, float], *, pairs: int = 60, seed: int = 0, model: str = "m",
                format_ok: float = 1.0, real_accuracy: float | None = None) -> list[Prediction]:
    """``pairs`` real/fake pairs per generator; each answer right with the generator's probability."""
    rng = np.random.default_rng(seed)
    out = []
    for g in GENERATORS:
        for k in range(pairs):
            base = f"{g[:4]}{k:03d}"
            for gt, video in (("Real", f"Real/{base}"), ("Fake", f"{g}/{base}")):
                p = real_accuracy if gt == "Real" and real_accuracy is not None else accuracy[g]
                right = rng.random() < p
                answer = gt if right else ("Fake" if gt == "Real" else "Real")
                out.append(Prediction(video_id=video, aigc_model_name="Real" if gt == "Real" else g, mllm_model_name=model,
                                      gt=gt, response=f"<answer>{answer}</answer>", answer=answer,
                                      format_ok=bool(rng.random() < format_ok), base_id=base))
    return out


def policy(**fixed) -> GateParams:
    rules = dict(min={"paired_balanced_accuracy": 0.6, "format_compliance": 0.8}, max={"fpr_real": 0.4},
                 max_generator_regression=0.1, min_improvement=0.0) | fixed
    return GateParams(fixed=GateRules(**rules), recent=GateRules(), bootstrap_samples=400)


def test_point_values_are_the_metrics_modules_values():
    # given predictions with errors, unparsable answers and partial format compliance
    preds = predictions({"loom-2": 0.7, "nova-6": 0.9}, format_ok=0.8, seed=3)
    preds[0] = preds[0].model_copy(update={"answer": "Error", "format_ok": False})
    # when the gate tabulates them (row 0 of the counts is the data itself)
    table = cluster_table(preds)
    draws = metric_draws(table, np.ones((1, len(table.clusters))))
    skyra = skyra_scores(preds)
    # then its point values are the evaluation metrics' values
    assert draws["paired_balanced_accuracy"][0] == pytest.approx(skyra["paired_balanced_accuracy"])
    assert draws["fake_recall"][0] == pytest.approx(skyra["fake_recall"])
    for g in GENERATORS:
        assert draws[f"pba:{g}"][0] == pytest.approx(skyra["per_generator"][g]["paired_balanced_accuracy"])
    assert draws["format_compliance"][0] == pytest.approx(format_compliance(preds))


def test_a_clearly_better_candidate_passes_and_a_shuffled_one_is_refused_with_its_rules_named():
    champion = predictions({"loom-2": 0.72, "nova-6": 0.75}, seed=1)
    better = predictions({"loom-2": 0.95, "nova-6": 0.95}, seed=2)
    # "trained on shuffled labels": answers at chance
    shuffled = predictions({"loom-2": 0.5, "nova-6": 0.5}, seed=4)
    gate = policy()
    # when each is judged against the champion
    passed = decide("mv-better", {"fixed": better}, gate, champion_id="mv-champ", champion={"fixed": champion})
    refused = decide("mv-shuffled", {"fixed": shuffled}, gate, champion_id="mv-champ", champion={"fixed": champion})
    # then the better one passes every rule and the shuffled one fails, naming the rules
    assert passed.verdict == "pass" and not passed.failed
    assert all(r.passed for r in passed.rules)
    assert refused.verdict == "fail"
    assert {"fixed/min/paired_balanced_accuracy", "fixed/min_improvement"} <= set(refused.failed)
    assert any(name.startswith("fixed/max_generator_regression/") for name in refused.failed)
    rule = next(r for r in refused.rules if r.name == "fixed/min/paired_balanced_accuracy")
    assert rule.ci_low < 0.6 and "fails" in rule.detail
    # and the record is deterministic: the same inputs give the same decision id
    again = decide("mv-shuffled", {"fixed": shuffled}, gate, champion_id="mv-champ", champion={"fixed": champion})
    assert again.decision_id == refused.decision_id and refused.decision_id.startswith("gd-")


def test_no_gate_passes_on_noise():
    # given a candidate a little better than the champion on a handful of pairs
    champion = predictions({"loom-2": 0.7, "nova-6": 0.7}, pairs=8, seed=5)
    candidate = [p.model_copy() for p in champion]
    flip = next(i for i, p in enumerate(candidate) if p.answer != p.gt)  # one more right answer
    candidate[flip] = candidate[flip].model_copy(update={"answer": candidate[flip].gt})
    # when judged
    decision = decide("mv-c", {"fixed": candidate}, policy(min={}, max={}), champion_id="mv-a",
                      champion={"fixed": champion})
    # then the improvement is positive but its interval includes zero: refused
    rule = next(r for r in decision.rules if r.name == "fixed/min_improvement")
    assert rule.value > 0 and rule.ci_low <= 0 and rule.passed is False
    assert decision.verdict == "fail"


def test_the_same_model_as_its_own_champion_is_not_an_improvement():
    preds = predictions({"loom-2": 0.9, "nova-6": 0.9}, seed=6)
    decision = decide("mv-a", {"fixed": preds}, policy(), champion_id="mv-b", champion={"fixed": preds})
    rule = next(r for r in decision.rules if r.name == "fixed/min_improvement")
    assert (rule.value, rule.ci_low, rule.ci_high, rule.passed) == (0.0, 0.0, 0.0, False)
    # while no generator regressed
    assert all(r.passed for r in decision.rules if r.kind == "max_generator_regression")


def test_without_a_champion_only_minimum_levels_judge():
    good = predictions({"loom-2": 0.9, "nova-6": 0.9}, seed=7)
    decision = decide("mv-first", {"fixed": good, "recent": good[:40]}, policy())
    comparative = [r for r in decision.rules if r.kind in ("max_generator_regression", "min_improvement")]
    assert comparative and all(r.passed is None for r in comparative)
    assert decision.verdict == "pass" and decision.champion is None


def test_fpr_and_format_rules_use_the_unfavourable_bound():
    # a model that calls many reals fake, with a broken format half the time
    alarmist = predictions({"loom-2": 0.9, "nova-6": 0.9}, real_accuracy=0.55, format_ok=0.5, seed=8)
    decision = decide("mv-x", {"fixed": alarmist}, policy())
    fpr = next(r for r in decision.rules if r.name == "fixed/max/fpr_real")
    fmt = next(r for r in decision.rules if r.name == "fixed/min/format_compliance")
    assert fpr.passed is False and fpr.ci_high > 0.4
    assert fmt.passed is False and fmt.ci_low < 0.8
    assert set(decision.failed) >= {"fixed/max/fpr_real", "fixed/min/format_compliance"}


def test_an_empty_fixed_set_cannot_pass():
    decision = decide("mv-x", {"fixed": []}, policy())
    assert decision.verdict == "fail" and any("fixed" in n for n in decision.notes)


def test_generator_intervals_bracket_the_value():
    preds = predictions({"loom-2": 0.6, "nova-6": 0.9}, seed=9)
    out = generator_intervals(preds, policy())
    assert set(out) == {"loom-2", "nova-6", "mean"}
    for row in out.values():
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert out["nova-6"]["value"] > out["loom-2"]["value"]


def test_params_refuse_an_unknown_gate_metric():
    from vigil.config.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown gate metric.*rouge"):
        parse_params({"gate": {"fixed": {"min": {"rouge": 0.3}}}})


def test_judge_set_lines_up_models_on_the_clips_both_answered():
    champion = predictions({"loom-2": 0.8, "nova-6": 0.8}, seed=10)
    candidate = champion[:-2]  # one pair missing from the candidate's answers
    results = judge_set("fixed", policy().fixed, candidate, champion, policy())
    improvement = next(r for r in results if r.kind == "min_improvement")
    assert improvement.value == 0.0  # the same answers on the common clips
