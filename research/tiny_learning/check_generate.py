"""Serve-path check: load the stage-2 folder with Auto classes, run the real processor at 56x56 on
the 14-frame overlapped video of held-out clips, greedy-generate, parse the verdict."""
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import frame_index, load_data  # noqa: E402
from vigil.models.compat import ensure_transformers_compat  # noqa: E402

ensure_transformers_compat()
from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: E402

torch.set_num_threads(1)
path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40
pool = len(sys.argv) > 3 and sys.argv[3] == "pool"  # feed 2x average-pooled frames (as in training)
proc = AutoProcessor.from_pretrained(path)
for p in (proc.video_processor,):
    p.max_pixels = p.min_pixels = 56 * 56
    p.size = {"shortest_edge": 56 * 56, "longest_edge": 56 * 56}
model = AutoModelForImageTextToText.from_pretrained(path).eval()
data, tr, te = load_data("/tmp/zoo8x112.npz")
fidx = frame_index(8, "overlap")
msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Is this video real or fake?"}]}]
prefix = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
rng = np.random.default_rng(0)
pairs = rng.choice(np.unique(data["pair"][te]), n // 2, replace=False)
hits, outs = [], []
for p in pairs:
    for i in np.flatnonzero(data["pair"] == p):
        v = data["frames"][i][fidx]
        if pool:
            v = v.reshape(len(v), 56, 2, 56, 2, 3).astype(np.float32).mean(axis=(2, 4)).round().astype(np.uint8)
        enc = proc(text=[prefix], videos=[list(v)], return_tensors="pt",
                   videos_kwargs={"do_sample_frames": False})
        if len(sys.argv) > 4:
            enc.pop(sys.argv[4], None)
        g = model.generate(**enc, max_new_tokens=12, do_sample=False)
        text = proc.tokenizer.decode(g[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        m = re.search(r"<answer>(Real|Fake)</answer>", text)
        outs.append(text)
        hits.append(m is not None and (m.group(1) == "Fake") == bool(data["label"][i]))
print("malformed:", [o for o in outs if not re.search(r"<answer>(Real|Fake)</answer>", o)][:5])
print("keys", list(enc.keys()), {k: enc[k].tolist() for k in enc if "second" in k}, "grid", enc["video_grid_thw"].tolist(), "example:", repr(outs[0]), repr(outs[1]))
print(f"{len(hits)} clips, well-formed {sum(bool(re.search(r'<answer>(Real|Fake)</answer>', o)) for o in outs)}, "
      f"accuracy {np.mean(hits):.3f} (balanced by construction: pairs)")
