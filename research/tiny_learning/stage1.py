"""Stage 1: train the Qwen2.5-VL vision tower (+ a linear per-token head) on artifact masks.

Clip score = max over merged vision tokens of the token logit. Loss = token BCE on ground-truth
masks + clip BCE on the max. Saves the whole Qwen2.5-VL (tower trained) + the head.

python research/tiny_learning/stage1.py --data /tmp/zoo8x112.npz --frames overlap --init tdiff --minutes 5
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import MODEL_SIZES, frame_index, load_data, patchify, report, token_targets  # noqa: E402


def build(size, seed=0, out="/tmp/tiny_model"):
    from vigil.models.compat import ensure_transformers_compat
    ensure_transformers_compat()
    from transformers import Qwen2_5_VLForConditionalGeneration
    from vigil.models.tiny import TinyModelConfig, build_tiny_model
    path = Path(f"{out}_{size}_{seed}")
    if not (path / "config.json").exists():
        build_tiny_model(path, TinyModelConfig(seed=seed, **MODEL_SIZES[size]))
    return Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=torch.float32), path


def designed_init(conv, frac_diff=0.5, frac_lowdiff=0.25, gain=3.0, seed=0):
    """Temporal-difference filters in the Conv3d patch embedding: w[:, :, 0] = -w[:, :, 1]."""
    g = torch.Generator().manual_seed(seed)
    w = conv.weight.data  # (D, 3, tp, p, p)
    d, c, tp, p, _ = w.shape
    n1, n2 = int(d * frac_diff), int(d * frac_lowdiff)
    std = w.std().item()
    # high-pass temporal differences: random zero-mean spatial filter, +s on frame 0, -s on frame 1
    s = torch.randn(n1, c, p, p, generator=g)
    s = s - s.mean(dim=(2, 3), keepdim=True)
    s = s / s.flatten(1).std(dim=1).view(-1, 1, 1, 1) * std * gain
    w[:n1, :, 0], w[:n1, :, 1] = s, -s
    # low-frequency temporal differences: smooth blobs (colour/brightness changes, vanish)
    yy, xx = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    for k in range(n2):
        cy, cx = torch.rand(2, generator=g) * p
        col = torch.randn(c, generator=g)
        blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (p / 3) ** 2))
        f = col.view(c, 1, 1) * blob
        f = f / f.std() * std * gain
        w[n1 + k, :, 0], w[n1 + k, :, 1] = f, -f


def scores_of(visual, head, data, idx, fidx, bs=32):
    out = []
    with torch.no_grad():
        for i in range(0, len(idx), bs):
            j = idx[i:i + bs]
            x, grid = patchify(data["frames"][j], fidx)
            tok = visual(x, grid_thw=grid).pooler_output
            lg = head(tok).view(len(j), -1)
            out.append(lg.max(dim=1).values)
    return torch.cat(out).numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/zoo8x112.npz")
    ap.add_argument("--extra-data", default=None, help="another prerender (other --seed): all train")
    ap.add_argument("--frames", default="plain", choices=["plain", "overlap"])
    ap.add_argument("--init", default="default", choices=["default", "tdiff"])
    ap.add_argument("--gain", type=float, default=3.0)
    ap.add_argument("--size", default="probe")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--wd", type=float, default=0.0)
    ap.add_argument("--batch-pairs", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--token-w", type=float, default=1.0)
    ap.add_argument("--clip-w", type=float, default=1.0)
    ap.add_argument("--pos-weight", type=float, default=3.0)
    ap.add_argument("--flip", action="store_true", help="random horizontal flip augmentation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--downsample", type=int, default=None, help="average-pool frames by k (112->56)")
    ap.add_argument("--eval-train", type=int, default=600)
    ap.add_argument("--save", default=None)
    ap.add_argument("--log", default=str(Path(__file__).parent / "results.jsonl"))
    ap.add_argument("--name", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import common
    if a.downsample is None:
        a.downsample = 1
    common.DOWNSAMPLE = a.downsample
    torch.manual_seed(a.seed)
    data, tr, te = load_data(a.data, extra=a.extra_data)
    model, mpath = build(a.size)
    visual = model.model.visual
    if a.init == "tdiff":
        designed_init(visual.patch_embed.proj, gain=a.gain)
    D = visual.merger.mlp[-1].out_features
    head = torch.nn.Linear(D, 1)
    params = list(visual.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.wd)
    fidx = frame_index(data["frames"].shape[1], a.frames)
    tr_pairs = np.unique(data["pair"][tr])
    by_pair = {}
    for i in tr:
        by_pair.setdefault(data["pair"][i], []).append(i)
    rng = np.random.default_rng(a.seed)
    t0, step, hist = time.time(), 0, []
    visual.train()
    while time.time() - t0 < a.minutes * 60:
        ps = rng.choice(tr_pairs, a.batch_pairs, replace=False)
        j = np.array([i for p in ps for i in by_pair[p]])
        fr, mk = data["frames"][j], data["masks"][j]
        if a.flip and rng.random() < 0.5:
            fr, mk = fr[:, :, :, ::-1], mk[:, :, :, ::-1]
        x, grid = patchify(np.ascontiguousarray(fr), fidx)
        tgt = token_targets(np.ascontiguousarray(mk), fidx)
        y = torch.from_numpy(data["label"][j]).float()
        tok = visual(x, grid_thw=grid).pooler_output
        lg = head(tok).view(len(j), -1)
        lt = F.binary_cross_entropy_with_logits(lg, tgt, pos_weight=torch.tensor(a.pos_weight))
        lc = F.binary_cross_entropy_with_logits(lg.max(dim=1).values, y)
        loss = a.token_w * lt + a.clip_w * lc
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        hist.append((lt.item(), lc.item()))
        step += 1
        if step % 50 == 0:
            h = np.mean(hist[-50:], axis=0)
            print(f"step {step} t={time.time() - t0:.0f}s token {h[0]:.4f} clip {h[1]:.4f}", flush=True)
    train_s = time.time() - t0
    visual.eval()
    te_s = scores_of(visual, head, data, te, fidx)
    tr_ev = np.sort(np.random.default_rng(1).choice(tr, min(a.eval_train, len(tr)), replace=False))
    tr_s = scores_of(visual, head, data, tr_ev, fidx)
    name = a.name or f"s1 {a.frames} {a.init} lr{a.lr} {a.minutes}min"
    report(name, data, tr_ev, tr_s, te, te_s,
           extra={"steps": step, "train_s": round(train_s, 1), "s_per_step": round(train_s / step, 3),
                  "args": vars(a), "eval_s": round(time.time() - t0 - train_s, 1)}, out=a.log)
    if a.save:
        Path(a.save).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(a.save)
        torch.save(head.state_dict(), Path(a.save) / "token_head.pt")
        from transformers import AutoProcessor
        AutoProcessor.from_pretrained(mpath).save_pretrained(a.save)
        (Path(a.save) / "stage1.json").write_text(json.dumps(vars(a)))


if __name__ == "__main__":
    main()
