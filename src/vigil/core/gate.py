"""The promotion gate: rules over bootstrap intervals, and the decision record (one schema).

A candidate replaces the champion only when it is better where it matters and worse nowhere that
matters, and no rule may pass on noise. Every rule is judged on a confidence bound, not on a point
value: a minimum needs the candidate's *lower* bound, a maximum its *upper* bound, a regression or
improvement the lower bound of the paired difference (candidate − champion on the same clips, the
same resamples). Without a champion only the absolute rules apply.

The bootstrap resamples *clusters*: all clips that share a base id (a real clip and the fakes made
from it) move together, so pairs stay pairs, and clusters are resampled within their generator
(stratified), so every generator keeps its size, unless a generator has too few clusters for that
(then all are resampled together). Each gate metric is a ratio of per-cluster sums,
so one matrix product gives every resample at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vigil.config.params import GateParams, GateRules
from vigil.core.evaluation import REAL, Prediction, generator_of
from vigil.core.hashing import sha256_json

Verdict = Literal["pass", "fail"]
MEAN_OVER_GENERATORS = ("paired_balanced_accuracy", "fake_recall")  # Skyra: unweighted mean across generators


class RuleResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="'<set>/<rule>/<metric or generator>', e.g. 'fixed/min/format_compliance'.")
    set: str = Field(description="Evaluation set the rule was judged on.")
    kind: Literal["min", "max", "max_generator_regression", "min_improvement"]
    metric: str
    generator: str | None = None
    threshold: float
    value: float | None = Field(description="Candidate value, or candidate − champion for comparative rules.")
    ci_low: float | None = None
    ci_high: float | None = None
    passed: bool | None = Field(description="None: not applicable (no champion, no data).")
    detail: str = Field(description="The rule and its outcome in one sentence.")


class GateDecision(BaseModel):
    """What the gate decided, on what, and why: hashed into the ledger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_id: str = Field(description="gd-<hash of everything below but the time>.")
    verdict: Verdict
    candidate: str = Field(description="Candidate model version id.")
    champion: str | None = Field(description="Champion it was compared with; None = minimum levels only.")
    evaluations: dict[str, dict[str, Any]] = Field(
        description="Per set: evaluation-set id, clips, dataset, predictions and metrics URIs with their sha256.")
    policy: dict[str, Any] = Field(description="The gate section of params.yaml that was applied.")
    rules: tuple[RuleResult, ...]
    failed: tuple[str, ...] = Field(description="Names of the rules that failed.")
    notes: tuple[str, ...] = ()
    code_rev: str = ""
    created_at: str = ""


# ------------------------------------------------------------------------------ cluster tables

@dataclass(frozen=True)
class ClusterTable:
    """Per-cluster numerators and denominators of every gate metric for one model's predictions."""

    clusters: tuple[str, ...]
    strata: tuple[str, ...]
    generators: tuple[str, ...]
    pooled: dict[str, tuple[np.ndarray, np.ndarray]]  # metric -> (num, den), each (clusters,)
    per_generator: dict[str, tuple[np.ndarray, np.ndarray]]  # metric -> (num, den), each (clusters, generators)


def _correct(p: Prediction) -> bool:
    return p.answer == p.gt


def cluster_table(predictions: Sequence[Prediction], clusters: Sequence[str] | None = None,
                  generators: Sequence[str] | None = None) -> ClusterTable:
    """Tabulate predictions by base id (the resampling unit); ``clusters``/``generators`` fix the order
    so that two models' tables line up (clusters a model did not answer count zero)."""
    by_cluster: dict[str, list[Prediction]] = {}
    for p in predictions:
        by_cluster.setdefault(p.base_id, []).append(p)
    clusters = tuple(clusters) if clusters is not None else tuple(sorted(by_cluster))
    gens = tuple(generators) if generators is not None else tuple(sorted(
        {generator_of(p.video_id) for p in predictions} - {REAL}))
    n, g = len(clusters), len(gens)
    pooled = {m: (np.zeros(n), np.zeros(n)) for m in ("accuracy", "fpr_real", "format_compliance")}
    per_gen = {m: (np.zeros((n, g)), np.zeros((n, g))) for m in MEAN_OVER_GENERATORS}
    strata = []
    for i, b in enumerate(clusters):
        rows = by_cluster.get(b, [])
        reals = [p for p in rows if p.gt == "Real"]
        fakes = [p for p in rows if p.gt == "Fake"]
        pooled["accuracy"][0][i], pooled["accuracy"][1][i] = sum(map(_correct, rows)), len(rows)
        pooled["fpr_real"][0][i], pooled["fpr_real"][1][i] = sum(p.answer != "Real" for p in reals), len(reals)
        pooled["format_compliance"][0][i] = sum(p.format_ok and p.answer != "Error" for p in rows)
        pooled["format_compliance"][1][i] = len(rows)
        real_ok = [_correct(p) for p in reals]
        for j, gen in enumerate(gens):
            gen_fakes = [p for p in fakes if generator_of(p.video_id) == gen]
            per_gen["fake_recall"][0][i, j] = sum(map(_correct, gen_fakes))
            per_gen["fake_recall"][1][i, j] = len(gen_fakes)
            if gen_fakes and real_ok:  # a complete pair (the first real and fake of the base id)
                per_gen["paired_balanced_accuracy"][0][i, j] = (real_ok[0] + _correct(gen_fakes[0])) / 2
                per_gen["paired_balanced_accuracy"][1][i, j] = 1
        strata.append(",".join(sorted({generator_of(p.video_id) for p in fakes})) or REAL)
    return ClusterTable(clusters, tuple(strata), gens, pooled, per_gen)


MIN_STRATUM = 10  # clusters: below this a stratum cannot be resampled within itself without hiding its noise


def resample_counts(strata: Sequence[str], samples: int, seed: int, min_stratum: int = MIN_STRATUM) -> np.ndarray:
    """(samples + 1, clusters) draw counts: row 0 is the data itself, the others resamples.

    Clusters are resampled within their stratum (generator) when every stratum has at least
    ``min_stratum`` clusters; with fewer (a small recent slice: two pairs per generator) a stratum's
    resamples barely vary and its interval would be too narrow, so all clusters are resampled together.

    >>> c = resample_counts(["a", "a", "b"], 4, 0, min_stratum=1)
    >>> c.shape, c[0].tolist(), c[1:, :2].sum(axis=1).tolist(), c[1:, 2].tolist()
    ((5, 3), [1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0])
    >>> pooled = resample_counts(["a", "a", "b"], 200, 0)
    >>> bool((pooled[1:, 2] != 1).any()), pooled[1:].sum(axis=1).tolist() == [3.0] * 200
    (True, True)
    """
    rng = np.random.default_rng(seed)
    counts = np.zeros((samples + 1, len(strata)))
    counts[0] = 1
    by_stratum: dict[str, list[int]] = {}
    for i, s in enumerate(strata):
        by_stratum.setdefault(s, []).append(i)
    if by_stratum and min(map(len, by_stratum.values())) < min_stratum:
        by_stratum = {"all": list(range(len(strata)))}
    for s in sorted(by_stratum):
        idx = by_stratum[s]
        counts[1:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=samples)
    return counts


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def metric_draws(table: ClusterTable, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every gate metric for every row of ``counts``: ``{metric: (rows,)}`` plus ``{'pba:<gen>': (rows,)}``."""
    out: dict[str, np.ndarray] = {}
    for metric, (num, den) in table.pooled.items():
        out[metric] = _ratio(counts @ num, counts @ den)
    for metric, (num, den) in table.per_generator.items():
        per = _ratio(counts @ num, counts @ den)  # (rows, generators)
        with warnings.catch_warnings():  # a resample may hold no pair of some generator: nan, skipped
            warnings.simplefilter("ignore", category=RuntimeWarning)
            out[metric] = np.nanmean(per, axis=1) if per.shape[1] else np.full(len(counts), np.nan)
        if metric == "paired_balanced_accuracy":
            for j, gen in enumerate(table.generators):
                out[f"pba:{gen}"] = per[:, j]
    return out


def interval(draws: np.ndarray, confidence: float) -> tuple[float | None, float | None, float | None]:
    """(point, low, high): row 0 is the point value, the rest give the percentile interval.

    >>> interval(np.array([0.5, 0.4, 0.5, 0.6]), 0.5)
    (0.5, 0.45, 0.55)
    """
    point = float(draws[0]) if np.isfinite(draws[0]) else None
    rest = draws[1:][np.isfinite(draws[1:])]
    if point is None or not len(rest):
        return point, None, None
    a = (1 - confidence) / 2
    lo, hi = np.quantile(rest, [a, 1 - a])
    return round(point, 4), round(float(lo), 4), round(float(hi), 4)


# --------------------------------------------------------------------------------------- rules

def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def judge_set(name: str, rules: GateRules, candidate: Sequence[Prediction], champion: Sequence[Prediction] | None,
              policy: GateParams) -> list[RuleResult]:
    """Every rule of one evaluation set, judged on bootstrap intervals."""
    pct = f"{policy.confidence:.0%}"
    if champion is not None:
        common = {p.video_id for p in candidate} & {p.video_id for p in champion}
        candidate = [p for p in candidate if p.video_id in common]
        champion = [p for p in champion if p.video_id in common]
    cand_table = cluster_table(candidate)
    counts = resample_counts(cand_table.strata, policy.bootstrap_samples, policy.seed)
    cand = metric_draws(cand_table, counts)
    results: list[RuleResult] = []
    for kind, bounds in (("min", rules.min), ("max", rules.max)):
        for metric, threshold in sorted(bounds.items()):
            value, lo, hi = interval(cand[metric], policy.confidence)
            bound = lo if kind == "min" else hi
            passed = None if bound is None else (bound >= threshold if kind == "min" else bound <= threshold)
            word = "lower" if kind == "min" else "upper"
            results.append(RuleResult(
                name=f"{name}/{kind}/{metric}", set=name, kind=kind, metric=metric, threshold=threshold, value=value,
                ci_low=lo, ci_high=hi, passed=passed,
                detail=f"{metric} {_fmt(value)} ({pct} CI {_fmt(lo)}–{_fmt(hi)}): {word} bound "
                       f"{'≥' if kind == 'min' else '≤'} {threshold} {'holds' if passed else 'fails' if passed is False else 'cannot be judged (no data)'}"))
    comparative = []
    if rules.max_generator_regression is not None:
        comparative += [("max_generator_regression", f"pba:{g}", g, -rules.max_generator_regression)
                        for g in cand_table.generators]
    if rules.min_improvement is not None:
        comparative.append(("min_improvement", policy.primary_metric, None, rules.min_improvement))
    if champion is None:
        for kind, metric, gen, threshold in comparative:
            results.append(RuleResult(
                name=f"{name}/{kind}" + (f"/{gen}" if gen else ""), set=name, kind=kind,
                metric="paired_balanced_accuracy" if gen else metric, generator=gen, threshold=threshold, value=None,
                passed=None, detail="no champion yet: judged on minimum levels alone"))
        return results
    champ_table = cluster_table(champion, cand_table.clusters, cand_table.generators)
    champ = metric_draws(champ_table, counts)  # the same resamples: a paired difference
    for kind, metric, gen, threshold in comparative:
        diff, lo, hi = interval(cand[metric] - champ[metric], policy.confidence)
        passed = None if lo is None else (lo >= threshold if gen else lo > threshold)
        what = f"{gen} paired balanced accuracy" if gen else metric
        rule = f"lower bound ≥ {threshold:+.3f}" if gen else f"lower bound > {threshold:+.3f}"
        results.append(RuleResult(
            name=f"{name}/{kind}" + (f"/{gen}" if gen else ""), set=name, kind=kind,
            metric="paired_balanced_accuracy" if gen else metric, generator=gen, threshold=threshold, value=diff,
            ci_low=lo, ci_high=hi, passed=passed,
            detail=f"{what}: candidate − champion {_fmt(diff)} ({pct} CI {_fmt(lo)}–{_fmt(hi)}): {rule} "
                   f"{'holds' if passed else 'fails' if passed is False else 'cannot be judged (no pairs)'}"))
    return results


def decide(candidate_id: str, candidate: Mapping[str, Sequence[Prediction]], policy: GateParams, *,
           champion_id: str | None = None, champion: Mapping[str, Sequence[Prediction]] | None = None,
           evaluations: Mapping[str, dict[str, Any]] | None = None, notes: Sequence[str] = (),
           code_rev: str = "", created_at: str = "") -> GateDecision:
    """Judge every set's rules; the verdict is pass only when no rule fails and the fixed set was judged.

    ``candidate`` / ``champion`` map a set name ('fixed', 'recent') to predictions on it.
    """
    notes = list(notes)
    rules: list[RuleResult] = []
    for name in candidate:
        set_rules: GateRules = getattr(policy, name)
        if not candidate[name]:
            notes.append(f"the {name} set is empty: its rules were not judged")
            continue
        rules += judge_set(name, set_rules, candidate[name], None if champion is None else champion.get(name), policy)
    failed = tuple(r.name for r in rules if r.passed is False)
    unjudged_fixed = not any(r.set == "fixed" and r.passed is not None for r in rules)
    if unjudged_fixed:
        notes.append("the fixed set was not judged: the gate cannot pass")
    verdict: Verdict = "fail" if failed or unjudged_fixed else "pass"
    body = dict(verdict=verdict, candidate=candidate_id, champion=champion_id, evaluations=dict(evaluations or {}),
                policy=policy.model_dump(mode="json"), rules=tuple(rules), failed=failed, notes=tuple(notes),
                code_rev=code_rev)
    digest = sha256_json({**body, "rules": [r.model_dump(mode="json") for r in rules]})
    return GateDecision(decision_id=f"gd-{digest[:12]}", created_at=created_at, **body)


def generator_intervals(predictions: Sequence[Prediction], policy: GateParams) -> dict[str, dict[str, float | None]]:
    """Paired balanced accuracy per generator, and their mean ('mean'), with bootstrap intervals
    (what the gate report draws): ``{generator: {'value', 'ci_low', 'ci_high'}}``."""
    table = cluster_table(predictions)
    draws = metric_draws(table, resample_counts(table.strata, policy.bootstrap_samples, policy.seed))
    out = {}
    for key in [f"pba:{g}" for g in table.generators] + ["paired_balanced_accuracy"]:
        value, lo, hi = interval(draws[key], policy.confidence)
        out["mean" if key == "paired_balanced_accuracy" else key[4:]] = {"value": value, "ci_low": lo, "ci_high": hi}
    return out
