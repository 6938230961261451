"""Shared helpers: data loading/splitting, Qwen2.5-VL video patchify (processor order), metrics."""
import json
import time
from pathlib import Path

import numpy as np
import torch

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])

MODEL_SIZES = {
    # the ENVIRONMENT.md probe's size (3.83 M params)
    "probe": dict(text_hidden_size=256, text_layers=4, text_heads=4, text_kv_heads=2,
                  text_intermediate_size=512, vision_depth=4, vision_hidden_size=128,
                  vision_heads=2, vision_intermediate_size=256),
    "default": dict(),
}


def load_data(path, holdout=0.2, seed=0, max_pairs=None, extra=None):
    """Split `path` by pair; every pair of `extra` (another prerender, other zoo seed) joins train."""
    d = np.load(path)
    data = {k: d[k] for k in d.files}
    n_main = len(data["label"])
    if extra:
        e = np.load(extra)
        off = data["pair"].max() + 1
        for k in data:
            data[k] = np.concatenate([data[k], e[k] + off if k == "pair" else e[k]])
    main_pairs = np.unique(data["pair"][:n_main])
    rng = np.random.default_rng(seed)
    perm = rng.permutation(main_pairs)
    n_test = int(len(main_pairs) * holdout)
    test_pairs = set(perm[:n_test].tolist())
    train_pairs = np.concatenate([perm[n_test:], np.unique(data["pair"][n_main:])])
    if max_pairs:
        train_pairs = train_pairs[:max_pairs]
    train_pairs = set(train_pairs.tolist())
    is_test = np.array([p in test_pairs for p in data["pair"]])
    is_train = np.array([p in train_pairs for p in data["pair"]])
    return data, np.flatnonzero(is_train), np.flatnonzero(is_test)


def frame_index(n_frames, mode):
    if mode == "plain":
        return list(range(n_frames))
    if mode == "overlap":  # (0,1),(1,2),...: every transition lies inside one temporal patch
        idx = []
        for t in range(n_frames - 1):
            idx += [t, t + 1]
        return idx
    raise ValueError(mode)


DOWNSAMPLE = 1  # set by the scripts' --downsample: average-pool frames/masks by this factor


def _pool(x, k):
    if k == 1:
        return x
    b, t, h, w = x.shape[:4]
    rest = x.shape[4:]
    return x.reshape(b, t, h // k, k, w // k, k, *rest).mean(dim=(3, 5))


def patchify(frames, idx, patch=14, merge=2, tp=2):
    """(B,T,H,W,3) uint8 -> Qwen2-VL video processor's flattened patches + grid_thw."""
    x = _pool(torch.from_numpy(frames[:, idx]).float(), DOWNSAMPLE).div_(255)
    x = (x - MEAN) / STD
    x = x.permute(0, 1, 4, 2, 3).contiguous()  # B,T,C,H,W
    b, t, c, h, w = x.shape
    gt, gh, gw = t // tp, h // patch, w // patch
    x = x.view(b, gt, tp, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9).reshape(b * gt * gh * gw, c * tp * patch * patch)
    grid = torch.tensor([[gt, gh, gw]] * b)
    return x, grid


def token_targets(masks, idx, patch=14, merge=2, tp=2, thresh=0.02):
    """(B,T,H,W) bool -> (B, n_merged_tokens) float: fraction of the token's pixels in a mask > thresh."""
    m = _pool(torch.from_numpy(masks[:, idx]).float(), DOWNSAMPLE)
    b, t, h, w = m.shape
    s = patch * merge
    m = m.view(b, t // tp, tp, h // s, s, w // s, s).mean(dim=(2, 4, 6))
    return (m.reshape(b, -1) > thresh).float()


def auc(scores, labels):
    scores, labels = np.asarray(scores, float), np.asarray(labels, int)
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]))
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    # ties: average ranks
    allv = np.concatenate([pos, neg])
    for v in np.unique(allv):
        sel = allv == v
        if sel.sum() > 1:
            ranks[sel] = ranks[sel].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def paired_ba(scores, labels, pairs, thr):
    pred = np.asarray(scores) > thr
    labels = np.asarray(labels)
    accs = []
    for p in np.unique(pairs):
        sel = pairs == p
        accs.append(np.mean(pred[sel] == labels[sel].astype(bool)))
    return float(np.mean(accs))


def best_threshold(scores, labels, pairs):
    cands = np.unique(np.quantile(scores, np.linspace(0.02, 0.98, 97)))
    return max(cands, key=lambda t: paired_ba(scores, labels, pairs, t))


def report(name, data, idx_tr, s_tr, idx_te, s_te, extra=None, out=None):
    y_tr, y_te = data["label"][idx_tr], data["label"][idx_te]
    p_tr, p_te = data["pair"][idx_tr], data["pair"][idx_te]
    thr = best_threshold(s_tr, y_tr, p_tr)
    r = {"name": name, "train_auc": auc(s_tr, y_tr), "test_auc": auc(s_te, y_te),
         "train_pba": paired_ba(s_tr, y_tr, p_tr, thr), "test_pba": paired_ba(s_te, y_te, p_te, thr),
         "test_pba_oracle_thr": paired_ba(s_te, y_te, p_te, best_threshold(s_te, y_te, p_te)),
         "thr": float(thr)}
    gens = data["generator"][idx_te]
    r["per_generator_test"] = {
        g: {"auc": round(auc(s_te[gens == g], y_te[gens == g]), 3),
            "pba": round(paired_ba(s_te[gens == g], y_te[gens == g], p_te[gens == g], thr), 3)}
        for g in np.unique(gens)}
    types = data["types"][idx_te]
    per_type = {}
    reals = s_te[y_te == 0]
    for ty in sorted({t for s in types for t in s.split(",") if t}):
        sel = np.array([ty in s for s in types])
        per_type[ty] = round(auc(np.concatenate([s_te[sel], reals]),
                                 np.r_[np.ones(sel.sum()), np.zeros(len(reals))]), 3)
    r["per_type_test_auc"] = per_type
    if extra:
        r.update(extra)
    print(json.dumps(r), flush=True)
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(r) + "\n")
    return r
