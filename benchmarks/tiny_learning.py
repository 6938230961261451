"""Does the tiny profile learn? Held-out paired balanced accuracy after every training stage.

Runs what `make run` runs, with the default params.yaml: the data plane (crawl → ingest → annotate)
into a throwaway workspace, then the stages of dvc.yaml in order (prepare, pretrain, sft, grpo) and
the held-out check on zoo clips from a seed no stage trains on. Records the time of every stage (the
issue's budget: at most 15 minutes of training in all on 2 cores), the held-out paired balanced
accuracy of the SFT and the GRPO model (target >= 0.75; GRPO must not lower it), fake recall per
artifact type and per-generator accuracy. The obvious alternative, answer-only SFT of the randomly
initialised model, stays at chance (../shared/ENVIRONMENT.md "Learning on CPU"): it is run too
(`--baseline`) with the same SFT budget and no pretrain stage.

Writes benchmarks/results/tiny_learning.json.
    python benchmarks/tiny_learning.py [--baseline]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", action="store_true", help="also SFT the random model without the pretrain stage")
    ap.add_argument("--workdir", default=None, help="keep the workspace and build here (default: a temp folder)")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="vigil-bench-"))
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
    times, results = {}, {}
    for stage in ("prepare", "pretrain", "sft", "grpo", "heldout"):
        t0 = time.perf_counter()
        results[stage] = run_stage(rt, stage, project, progress=False)
        times[stage] = round(time.perf_counter() - t0, 1)
        print(f"{stage}: {times[stage]} s", flush=True)
    training_s = {s: results[s]["train_s"] for s in ("pretrain", "sft", "grpo")}
    heldout = results["heldout"]
    report = {
        "machine": machine(),
        "params": {"model": rt.params.model.profile, "pretrain_steps": rt.params.train.pretrain.max_steps,
                   "sft_steps": rt.params.train.sft.max_steps, "grpo_steps": rt.params.train.grpo.max_steps},
        "data_plane_s": round(data_plane_s, 1),
        "stage_wall_s": times,
        "training_s": training_s,
        "training_total_min": round(sum(training_s.values()) / 60, 2),
        "pretrain_data_render_s": round(times["pretrain"] - training_s["pretrain"], 1),
        "heldout_paired_balanced_accuracy": {k: heldout[k]["paired_balanced_accuracy"] for k in ("sft", "grpo")},
        "grpo_minus_sft": heldout["grpo_minus_sft"],
        "target": 0.75,
        "heldout": heldout,
        "pretrain_holdout": {k: results["pretrain"][k] for k in ("holdout_auc", "holdout_paired_balanced_accuracy")},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("training_s", "training_total_min", "heldout_paired_balanced_accuracy")}))


if __name__ == "__main__":
    main()
