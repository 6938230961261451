"""Evaluation and gate speed: batched offline prediction, and the gate's vectorised bootstrap.

Two comparisons, each against the obvious alternative, in one run:

* **prediction**: Vigil's batched greedy generation (``evaluate.batch_size`` clips per ``generate``)
  against one clip at a time (what Skyra's inference script does), on the same clips and model;
* **bootstrap**: the gate's intervals from one matrix product over cluster counts
  (:mod:`vigil.core.gate`) against the plain loop that resamples the predictions and recomputes
  Skyra's metrics for each resample (:func:`vigil.core.metrics.skyra.skyra_scores`); the two must agree.

Needs a model folder (``--model``; e.g. ``build/grpo`` after ``make run``). The clips are the fixed
evaluation set's first ``--clips`` (rendered into a temporary workspace when missing).

Writes benchmarks/results/evaluate_speed.json.
    python benchmarks/evaluate_speed.py --model build/grpo [--clips 96] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "evaluate_speed.json"


def _loop_bootstrap(predictions, resamples: int, seed: int) -> np.ndarray:
    """The obvious way: resample base ids within their generator, rebuild the list, recompute."""
    from vigil.core.metrics.skyra import skyra_scores

    by_base: dict[str, list] = {}
    for p in predictions:
        by_base.setdefault(p.base_id, []).append(p)
    strata: dict[str, list[str]] = {}
    for base, rows in by_base.items():
        key = ",".join(sorted({r.video_id.split("/")[0] for r in rows if r.gt == "Fake"})) or "Real"
        strata.setdefault(key, []).append(base)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        sample = []
        for key in sorted(strata):
            bases = strata[key]
            for k, i in enumerate(rng.integers(0, len(bases), len(bases))):
                # a cluster drawn twice must count twice: each draw gets its own ids
                sample += [r.model_copy(update={"base_id": f"{bases[i]}#{k}", "video_id": f"{r.video_id}#{k}"})
                           for r in by_base[bases[i]]]
        values.append(skyra_scores(sample)["paired_balanced_accuracy"])
    return np.array(values)


def _whole_pairs(clips, n: int) -> tuple:
    """About ``n`` clips made of whole real/fake pairs, taken round-robin across generators."""
    by_generator: dict[str, list[str]] = {}
    for c in clips:
        if c.gt == "Fake":
            by_generator.setdefault(c.aigc_model_name, []).append(c.base_id)
    chosen: list[str] = []
    rounds = zip(*(sorted(v) for _, v in sorted(by_generator.items())), strict=False)
    for batch in rounds:
        chosen += batch
        if 2 * len(chosen) >= n:
            break
    keep = set(chosen)
    return tuple(c for c in clips if c.base_id in keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model folder (config.json + weights)")
    ap.add_argument("--clips", type=int, default=96)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--workspace", default=None, help="where the fixed set is (default: a temporary folder)")
    a = ap.parse_args()

    import torch

    from vigil.config.params import load_params
    from vigil.core.gate import cluster_table, metric_draws, resample_counts
    from vigil.evaluate.evalsets import zoo_evalset
    from vigil.evaluate.predict import predict_offline

    params = load_params(REPO / "params.yaml")
    root = Path(a.workspace or tempfile.mkdtemp(prefix="vigil-evalbench-"))
    heldout = params.train.heldout
    full = zoo_evalset(params.zoo, heldout.zoo_seed, heldout.pairs_per_generator, root / "evalsets")
    evalset = dataclasses.replace(full, clips=_whole_pairs(full.clips, a.clips))
    profile = params.model.active
    results: dict = {"machine": machine(), "torch_threads": torch.get_num_threads(), "clips": len(evalset.clips)}

    timings = {}
    answers = {}
    for name, batch in (("batched", params.evaluate.batch_size), ("one clip at a time", 1)):
        started = time.perf_counter()
        preds = predict_offline(a.model, evalset, profile, model_name="bench", batch_size=batch,
                                max_new_tokens=params.evaluate.max_new_tokens)
        timings[name] = time.perf_counter() - started
        answers[name] = [p.answer for p in preds]
        print(f"prediction, {name} (batch {batch}): {timings[name]:.1f} s", flush=True)
    results["prediction"] = {
        "batch_size": params.evaluate.batch_size,
        "batched_clips_per_s": round(len(evalset.clips) / timings["batched"], 2),
        "sequential_clips_per_s": round(len(evalset.clips) / timings["one clip at a time"], 2),
        "speedup": round(timings["one clip at a time"] / timings["batched"], 2),
        "same_answers": sum(x == y for x, y in zip(answers["batched"], answers["one clip at a time"])),
    }

    # the bootstrap, on the full fixed set's worth of predictions (batched answers, repeated to size)
    preds = predict_offline(a.model, evalset, profile, model_name="bench", batch_size=params.evaluate.batch_size,
                            max_new_tokens=params.evaluate.max_new_tokens)
    started = time.perf_counter()
    table = cluster_table(preds)
    vector = metric_draws(table, resample_counts(table.strata, a.resamples, 0))["paired_balanced_accuracy"][1:]
    vector_s = time.perf_counter() - started
    started = time.perf_counter()
    loop = _loop_bootstrap(preds, a.resamples, 1)
    loop_s = time.perf_counter() - started
    results["bootstrap"] = {
        "resamples": a.resamples, "predictions": len(preds), "vectorised_s": round(vector_s, 4),
        "loop_s": round(loop_s, 2), "speedup": round(loop_s / vector_s, 1),
        "vectorised_mean_sd": [round(float(vector.mean()), 4), round(float(vector.std()), 4)],
        "loop_mean_sd": [round(float(np.nanmean(loop)), 4), round(float(np.nanstd(loop)), 4)],
    }
    print(json.dumps(results, indent=1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
