"""Tiny-profile training speed: SFT samples/s and GRPO step time, and what the caps buy.

The tiny profile's defaults (8 frames, 56x56 pixels per frame, frame pairs, the compact system
prompt) are compared with the obvious alternative of not capping: the gallery's full 112x112 frames,
and the grammar's full ~760-token system prompt; plus 4 frames instead of 8. Each variant runs a few
real SFT and GRPO steps (TRL, the stages' own code) from the same model on the same prepared data;
the weights do not matter for speed. Ratios are to the default.

Needs a prepared dataset and a model folder: run `make run` (or `vigil train`) first, or point
--project at a folder holding build/prepare and build/pretrain (benchmarks/tiny_learning.py --workdir
DIR leaves them in DIR/project).

Writes benchmarks/results/train_speed.json.
    python benchmarks/train_speed.py [--project DIR] [--sft-steps 12] [--grpo-steps 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "train_speed.json"

VARIANTS = {
    "default (8 frames, 56x56, compact prompt)": {},
    "4 frames": {"max_frames": 4},
    "112x112 pixels (no pixel cap)": {"max_pixels": 112 * 112, "min_pixels": 112 * 112},
    "full system prompt": {"system_prompt": "full"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", default=str(REPO), help="folder with build/prepare and build/pretrain")
    ap.add_argument("--sft-steps", type=int, default=12)
    ap.add_argument("--grpo-steps", type=int, default=4)
    a = ap.parse_args()
    build = Path(a.project) / "build"
    if not (build / "prepare" / "samples.jsonl").is_file() or not (build / "pretrain" / "config.json").is_file():
        sys.exit(f"{build} has no prepare/ and pretrain/ outputs: run `make run` first, or pass --project")

    from vigil.config.params import load_params
    from vigil.train.prepare import read_samples
    from vigil.train.trl_stages import run_grpo, run_sft

    params = load_params(REPO / "params.yaml")
    samples = read_samples(build / "prepare", ("train",))
    sft_params = params.train.sft.model_copy(update={"max_steps": a.sft_steps, "log_every": 1,
                                                     "checkpoint_every": 10_000})
    grpo_params = params.train.grpo.model_copy(update={"max_steps": a.grpo_steps, "log_every": 1,
                                                       "checkpoint_every": 10_000})
    results = {}
    for name, change in VARIANTS.items():
        profile = params.model.active.model_copy(update=change)
        with tempfile.TemporaryDirectory(prefix="vigil-speed-") as tmp:
            tmp = Path(tmp)
            sft = run_sft(build / "pretrain", build / "prepare", samples, sft_params, profile, tmp / "sft",
                          tmp / "ck-sft", tmp / "metrics", progress=False)
            grpo = run_grpo(tmp / "sft", build / "prepare", samples, grpo_params, profile, tmp / "grpo",
                            tmp / "ck-grpo", tmp / "metrics", progress=False)
        results[name] = {"change": change, "sft_samples_per_s": sft["samples_per_s"],
                         "sft_s_per_step": sft["s_per_step"], "grpo_s_per_step": grpo["s_per_step"]}
        print(name, results[name], flush=True)
    default = results[next(iter(VARIANTS))]
    for row in results.values():
        row["sft_speed_vs_default"] = round(row["sft_samples_per_s"] / default["sft_samples_per_s"], 3)
        row["grpo_step_time_vs_default"] = round(row["grpo_s_per_step"] / default["grpo_s_per_step"], 3)
    report = {"benchmark": "train_speed", "machine": machine(), "profile": params.model.profile,
              "sft": {"steps": a.sft_steps, "batch_size": sft_params.batch_size},
              "grpo": {"steps": a.grpo_steps, "batch_size": grpo_params.batch_size,
                       "num_generations": grpo_params.num_generations},
              "note": "s/step includes TRL's data collation (the processor) and, for GRPO, generation; the first "
                      "step's warm-up is included, as a user sees it",
              "variants": results}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: {m: v[m] for m in ("sft_samples_per_s", "grpo_s_per_step")} for k, v in results.items()}))


if __name__ == "__main__":
    main()
