"""Check common.patchify against the tiny model's Qwen2.5-VL video processor."""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import frame_index, patchify  # noqa: E402
from vigil.models.compat import ensure_transformers_compat  # noqa: E402

ensure_transformers_compat()
from transformers import AutoProcessor  # noqa: E402

proc = AutoProcessor.from_pretrained(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny_model_probe_0")
d = np.load("/tmp/zoo_small.npz")
fr = d["frames"][:2]
for mode in ("plain", "overlap"):
    idx = frame_index(8, mode)
    x, grid = patchify(fr, idx)
    out = proc.video_processor(videos=[list(v[idx]) for v in fr], return_tensors="pt",
                               do_sample_frames=False)
    ref = out["pixel_values_videos"]
    print(mode, x.shape, tuple(ref.shape), grid.tolist(), out["video_grid_thw"].tolist(),
          "max abs diff", float((x - ref).abs().max()))
