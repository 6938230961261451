"""Pre-render zoo clips (frames + union artifact mask) to one .npz for the tiny-learning probes.

python research/tiny_learning/prerender.py --pairs-per-generator 250 --out /tmp/zoo8x112.npz --workers 2
"""
import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from vigil.zoo.catalog import ZooConfig, build_catalog, render_clip


def _render(args):
    kw, idx = args
    items = build_catalog(ZooConfig(**kw))
    out = []
    for i in idx:
        it = items[i]
        try:
            clip = render_clip(it)
        except ValueError as e:  # zoo bug on short clips (e.g. "no span for a physics violation")
            out.append((i, None, None, f"ERROR {e}"))
            continue
        f = clip.frames
        m = np.zeros(f.shape[:3], dtype=bool)
        for a in clip.artifacts:
            m |= a.mask
        types = ",".join(sorted({a.truth.type for a in clip.artifacts}))
        out.append((i, f, m, types))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs-per-generator", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--fps", type=float, default=4.0)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    kw = dict(seed=a.seed, pairs_per_generator=a.pairs_per_generator, fps=a.fps,
              duration_s=(a.frames / a.fps, a.frames / a.fps), width=a.size, height=a.size)
    cfg = ZooConfig(**kw)
    items = build_catalog(cfg)
    t0 = time.time()
    chunks = [list(range(k, len(items), a.workers * 8)) for k in range(a.workers * 8)]
    res = []
    with ProcessPoolExecutor(a.workers) as ex:
        for r in ex.map(_render, [(kw, c) for c in chunks]):
            res.extend(r)
    res.sort(key=lambda r: r[0])
    bad_pairs = {items[r[0]].pair_id for r in res if r[1] is None}
    for r in res:
        if r[1] is None:
            print("dropping pair:", items[r[0]].pair_generator, r[3])
    keep = [k for k, r in enumerate(res) if items[r[0]].pair_id not in bad_pairs]
    res = [res[k] for k in keep]
    items = [items[k] for k in keep]
    frames = np.stack([r[1] for r in res])
    masks = np.stack([r[2] for r in res])
    pair_ids = [it.pair_id for it in items]
    uniq = {p: k for k, p in enumerate(dict.fromkeys(pair_ids))}
    np.savez(a.out, frames=frames, masks=masks,
             label=np.array([it.label == "fake" for it in items], dtype=np.int64),
             pair=np.array([uniq[p] for p in pair_ids]),
             generator=np.array([it.pair_generator for it in items]),
             types=np.array([r[3] for r in res]))
    print(f"{len(items)} clips {frames.shape} in {time.time() - t0:.1f}s -> {a.out}")


if __name__ == "__main__":
    main()
