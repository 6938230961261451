"""Does the tiny profile learn? Held-out paired balanced accuracy after SFT and after GRPO.

Runs what `make run` runs, with the default params.yaml: the data plane (crawl → ingest → annotate)
into a throwaway workspace, then the stages of dvc.yaml in order (prepare, pretrain, sft, grpo) and
the held-out check on zoo clips from a seed no stage trains on. Records the time of every stage (the
issue's budget: at most 15 minutes of training in all on 2 cores), the held-out paired balanced
accuracy of the SFT and the GRPO model (target >= 0.75; GRPO must not lower it), fake recall per
artifact type and per-generator accuracy.

The obvious alternative is the same SFT on the same data without the pretrain stage, i.e. from the
randomly initialised tower (what ../shared/ENVIRONMENT.md "Learning on CPU" found stays at chance).
`--baseline` runs it too, with the same SFT params, and records its held-out numbers beside ours.

Writes benchmarks/results/tiny_learning.json.
    python benchmarks/tiny_learning.py [--baseline] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "tiny_learning.json"
HEADLINE = ("paired_balanced_accuracy", "accuracy", "fake_recall", "real_recall", "unparsable", "format_compliance")


def _baseline(rt, project: Path, work: Path) -> dict:
    """SFT from the random tower (no pretrain stage) on the same prepared data, then the held-out check."""
    from vigil.jobs.train import run_stage
    from vigil.models.profile import build_base
    from vigil.train.heldout import evaluate_heldout, heldout_clips

    baseline = work / "baseline"
    (baseline / "build").mkdir(parents=True, exist_ok=True)
    prepared = baseline / "build" / "prepare"
    if not prepared.exists():
        prepared.symlink_to(project / "build" / "prepare")
    build_base(rt.params.model.active, baseline / "build" / "pretrain")
    sft = run_stage(rt, "sft", baseline, progress=False)
    clips = heldout_clips(rt.params.zoo, rt.params.train.heldout, rt.params.model.active, rt.workspace / "cache")
    heldout = evaluate_heldout(baseline / "build" / "sft", clips, rt.params.model.active, rt.params.train.heldout,
                               rt.params.zoo.fps, progress=False)
    return {"sft_train_s": sft["train_s"], "heldout": {k: heldout[k] for k in HEADLINE}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", action="store_true", help="also SFT the random model without the pretrain stage")
    ap.add_argument("--workdir", default=None, help="keep the workspace and build here (default: a temp folder)")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="vigil-bench-")).resolve()
    os.environ["VIGIL_WORKSPACE"] = str(work / "ws")
    os.environ.pop("VIGIL_PARAMS_FILE", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vigil.cli", "run", "--no-train"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    data_plane_s = time.perf_counter() - started

    from vigil.jobs.runtime import load_runtime
    from vigil.jobs.train import run_stage

    rt = load_runtime(REPO / "params.yaml")
    project = work / "project"
    project.mkdir(exist_ok=True)
    # The zoo clips of the pretrain stage and the held-out check are data, rendered once and cached:
    # rendered here first, so that every stage's wall time below is training (or evaluation) only.
    t0 = time.perf_counter()
    from vigil.train.heldout import heldout_clips
    from vigil.train.pretrain import render_pretrain_data

    render_pretrain_data(rt.params.zoo, rt.params.train.pretrain, rt.params.model.active, rt.workspace / "cache",
                         seed=rt.params.train.seed)
    heldout_clips(rt.params.zoo, rt.params.train.heldout, rt.params.model.active, rt.workspace / "cache")
    render_s = round(time.perf_counter() - t0, 1)
    times, results = {}, {}
    for stage in ("prepare", "pretrain", "sft", "grpo", "heldout"):
        t0 = time.perf_counter()
        results[stage] = run_stage(rt, stage, project, progress=False)
        times[stage] = round(time.perf_counter() - t0, 1)
        print(f"{stage}: {times[stage]} s", flush=True)
    # the budget counts each training stage's whole wall time: loading, dataset building, saving
    training_s = {s: times[s] for s in ("pretrain", "sft", "grpo")}
    heldout = results["heldout"]
    train = rt.params.train
    report = {
        "benchmark": "tiny_learning",
        "machine": machine(),
        "params": {"model": rt.params.model.profile, "profile": rt.params.model.active.model_dump(mode="json"),
                   "pretrain_steps": train.pretrain.max_steps, "sft_steps": train.sft.max_steps,
                   "grpo_steps": train.grpo.max_steps, "heldout_zoo_seed": train.heldout.zoo_seed,
                   "heldout_pairs": train.heldout.pairs_per_generator * len(heldout["sft"]["per_generator_paired_balanced_accuracy"])},
        "data_plane_s": round(data_plane_s, 1),
        "stage_wall_s": times,
        "training_s": training_s,
        "training_total_min": round(sum(training_s.values()) / 60, 2),
        "trainer_loop_s": {s: results[s]["train_s"] for s in ("pretrain", "sft", "grpo")},
        "budget_min": 15,
        "zoo_render_s": render_s,
        "target_paired_balanced_accuracy": 0.75,
        "heldout_paired_balanced_accuracy": {k: heldout[k]["paired_balanced_accuracy"] for k in ("sft", "grpo")},
        "grpo_minus_sft": heldout["grpo_minus_sft"],
        "heldout": heldout,
        "pretrain_holdout": {k: results["pretrain"][k] for k in ("holdout_auc", "holdout_paired_balanced_accuracy")},
        "sft": results["sft"], "grpo": results["grpo"],
    }
    if a.baseline:
        report["baseline_no_pretrain"] = _baseline(rt, project, work)
        base = report["baseline_no_pretrain"]["heldout"]["paired_balanced_accuracy"]
        report["pba_gain_over_baseline"] = round(heldout["grpo"]["paired_balanced_accuracy"] - base, 4)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report.get(k) for k in ("training_s", "training_total_min", "heldout_paired_balanced_accuracy",
                                                  "pba_gain_over_baseline")}))


if __name__ == "__main__":
    main()
