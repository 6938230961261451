"""The ``pretrain`` stage (tiny profile): the vision tower learns the zoo's artifact masks.

A randomly initialised tiny Qwen2.5-VL trained on Real/Fake answers alone stays at chance
(../shared/ENVIRONMENT.md, "Learning on CPU"): one verdict token per clip is too little signal to
teach a vision tower from scratch. This stage gives the tower dense supervision first, in the spirit
of Ivy-Fake's progressive training: for every merged vision token, "is this token inside an
artifact's mask" (token BCE), and for the clip, "is the most suspicious token an artifact" (clip BCE
on the max token logit). The clips are rendered by the zoo from seeds that neither the gallery nor
the held-out set uses, at the gallery's geometry, and reach the tower exactly as the processor would
send them (same resize, same frame pairs, same patch order; a test checks it against the processor).
The recipe and its evidence: research/tiny_learning/FINDINGS.md.

A profile with a pretrained tower (``vision_pretrain: false``) skips the stage: it only records
its base.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.config.params import ModelProfile, PretrainParams, ZooParams
from vigil.core.metrics.calibration import roc_auc
from vigil.core.metrics.classification import paired_balanced_accuracy
from vigil.core.progress import periodic_lines
from vigil.models.inputs import subsample
from vigil.train.runlog import MetricLog, fingerprint, mirror_checkpoint, write_metrics

log = logging.getLogger(__name__)

HEAD_FILE = "token_head.pt"
CHECKPOINT_FILE = "last.pt"
HOLDOUT_FRACTION = 0.1  # of the first seed's pairs: the stage's own check, never trained on


# ---------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class PretrainData:
    frames: np.ndarray  # (N, T, h, w, 3) uint8, already resized as the processor resizes
    targets: np.ndarray  # (N, tokens) bool: merged vision tokens inside an artifact mask
    label: np.ndarray  # (N,) 1 = fake
    pair: np.ndarray  # (N,) pair index
    generator: np.ndarray  # (N,) str
    types: np.ndarray  # (N,) str, comma-joined artifact types
    holdout: np.ndarray  # (N,) bool


def _target_size(height: int, width: int, profile: ModelProfile) -> tuple[int, int]:
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    return smart_resize(height, width, factor=28, min_pixels=profile.min_pixels, max_pixels=profile.max_pixels)


def _render_chunk(job: tuple[dict, list[int], str, float]) -> list[tuple]:
    """Render catalog items -> (index, resized frames, token targets, types) or (index, None, reason)."""
    from vigil.models.compat import ensure_transformers_compat

    ensure_transformers_compat()
    import torch
    import torch.nn.functional as F
    from torchvision.transforms.v2 import functional as tvF

    from vigil.zoo.catalog import ZooConfig, build_catalog, render_clip

    torch.set_num_threads(1)
    zoo_kwargs, indices, profile_doc, threshold = job
    profile = ModelProfile.model_validate_json(profile_doc)
    items = build_catalog(ZooConfig(**zoo_kwargs))
    out = []
    for i in indices:
        try:
            clip = render_clip(items[i])
        except ValueError as exc:  # the zoo cannot place an artifact in this short clip
            out.append((i, None, None, str(exc)))
            continue
        keep = subsample(len(clip.frames), profile.max_frames)
        frames = torch.from_numpy(np.ascontiguousarray(clip.frames[keep])).permute(0, 3, 1, 2)
        h, w = _target_size(frames.shape[2], frames.shape[3], profile)
        # the processor's own resize (torchvision bicubic, antialiased, on uint8)
        resized = tvF.resize(frames, [h, w], interpolation=tvF.InterpolationMode.BICUBIC, antialias=True)
        mask = np.zeros(clip.frames.shape[:3], dtype=np.float32)
        for artifact in clip.artifacts:
            mask = np.maximum(mask, artifact.mask.astype(np.float32))
        pooled = F.adaptive_avg_pool2d(torch.from_numpy(mask[keep])[:, None], (h // 28, w // 28))[:, 0]
        if profile.frame_pairs:
            pooled = (pooled[:-1] + pooled[1:]) / 2
        types = ",".join(sorted({a.truth.type for a in clip.artifacts}))
        out.append((i, resized.permute(0, 2, 3, 1).numpy(), (pooled.reshape(-1) > threshold).numpy(), types))
    return out


def render_pretrain_data(zoo: ZooParams, params: PretrainParams, profile: ModelProfile, cache_dir: str | Path,
                         seed: int = 0) -> PretrainData:
    """Render (or load from the cache) the stage's clips; pairs the zoo cannot render are dropped."""
    from vigil.zoo.catalog import ZOO_RENDER_VERSION, ZooConfig, build_catalog, zoo_geometry

    # Only what the render reads is in the key: the gallery's own seed and size do not change these clips.
    geometry = zoo_geometry(zoo)
    key = fingerprint("pretrain-data-v2", ZOO_RENDER_VERSION, geometry, params.zoo_seeds, params.pairs_per_generator,
                      profile.max_frames, profile.min_pixels, profile.max_pixels, profile.frame_pairs,
                      params.token_threshold, seed)
    cache = Path(cache_dir) / f"pretrain-{key}.npz"
    if cache.is_file():
        d = np.load(cache)
        return PretrainData(**{k: d[k] for k in d.files})
    started = time.perf_counter()
    parts: list[dict[str, np.ndarray]] = []
    pair_offset = 0
    for n, (zoo_seed, pairs) in enumerate(zip(params.zoo_seeds, params.pairs_per_generator, strict=True)):
        zoo_kwargs = dict(seed=zoo_seed, pairs_per_generator=pairs, **geometry)
        items = build_catalog(ZooConfig(**zoo_kwargs))
        n_chunks = params.render_workers * 8
        jobs = [(zoo_kwargs, list(range(k, len(items), n_chunks)), profile.model_dump_json(),
                 params.token_threshold) for k in range(n_chunks)]
        rendered = []
        with ProcessPoolExecutor(params.render_workers) as pool:
            for chunk in pool.map(_render_chunk, jobs):
                rendered.extend(chunk)
        rendered.sort(key=lambda r: r[0])
        bad = {items[r[0]].pair_id for r in rendered if r[1] is None}
        if bad:
            log.info("pretrain data: zoo seed %d: %d of %d pairs dropped (an artifact did not fit the clip)",
                     zoo_seed, len(bad), len(items) // 2)
        rendered = [r for r in rendered if items[r[0]].pair_id not in bad]
        pair_index = {p: k for k, p in enumerate(dict.fromkeys(items[r[0]].pair_id for r in rendered))}
        pair = np.array([pair_index[items[r[0]].pair_id] + pair_offset for r in rendered])
        rng = np.random.default_rng([seed, zoo_seed])
        held = set(rng.permutation(len(pair_index))[: int(len(pair_index) * HOLDOUT_FRACTION)] + pair_offset) \
            if n == 0 else set()
        parts.append(dict(
            frames=np.stack([r[1] for r in rendered]), targets=np.stack([r[2] for r in rendered]),
            label=np.array([items[r[0]].label == "fake" for r in rendered], dtype=np.int64), pair=pair,
            generator=np.array([items[r[0]].pair_generator for r in rendered]),
            types=np.array([r[3] for r in rendered]), holdout=np.array([p in held for p in pair])))
        pair_offset += len(pair_index)
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    os.replace(tmp, cache)
    log.info("pretrain data: %d clips rendered in %.0f s", len(data["label"]), time.perf_counter() - started)
    return PretrainData(**data)


# ------------------------------------------------------------------------------- model inputs

def pixel_values(frames, image_mean, image_std, frame_pairs: bool, patch: int = 14, merge: int = 2):
    """``(B, T, h, w, 3)`` uint8 frames (already resized) -> the processor's ``pixel_values`` and
    ``image_grid_thw`` for the clip's images (frame pairs, or single frames repeated), in its order."""
    import torch

    x = torch.as_tensor(frames).float().div_(255)
    x = (x - torch.tensor(image_mean)) / torch.tensor(image_std)
    b, t, h, w, c = x.shape
    if frame_pairs:
        idx = [k for i in range(t - 1) for k in (i, i + 1)]
    else:
        idx = [k for i in range(t) for k in (i, i)]
    x = x[:, idx].permute(0, 1, 4, 2, 3)  # B, 2*images, C, h, w
    n_images = len(idx) // 2
    gh, gw = h // patch, w // patch
    x = x.reshape(b, n_images, 2, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9).reshape(b * n_images * gh * gw, c * 2 * patch * patch)
    grid = torch.tensor([[1, gh, gw]] * (b * n_images))
    return x, grid


def temporal_difference_init(conv, seed: int, frac_sharp: float = 0.5, frac_smooth: float = 0.25,
                             gain: float = 3.0) -> None:
    """A designed start for the Conv3d patch embedding (no download): half its filters are
    zero-mean spatial patterns with opposite signs on the two frames of a temporal patch (they
    respond to change, not to content), a quarter are smooth blobs of the same kind (brightness or
    colour changes, vanishing objects); the rest keep their random init."""
    import torch

    g = torch.Generator().manual_seed(seed)
    w = conv.weight.data  # (D, C, 2, p, p)
    d, c, _, p, _ = w.shape
    n_sharp, n_smooth = int(d * frac_sharp), int(d * frac_smooth)
    std = w.std().item()
    s = torch.randn(n_sharp, c, p, p, generator=g)
    s = s - s.mean(dim=(2, 3), keepdim=True)
    s = s / s.flatten(1).std(dim=1).view(-1, 1, 1, 1) * std * gain
    w[:n_sharp, :, 0], w[:n_sharp, :, 1] = s, -s
    yy, xx = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    for k in range(n_smooth):
        cy, cx = torch.rand(2, generator=g) * p
        blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (p / 3) ** 2))
        f = torch.randn(c, generator=g).view(c, 1, 1) * blob
        f = f / f.std() * std * gain
        w[n_sharp + k, :, 0], w[n_sharp + k, :, 1] = f, -f


# ------------------------------------------------------------------------------------ training

def _vision_attention(self, hidden_states, cu_seqlens, position_embeddings=None, max_seqlen=None, **kwargs):
    """Qwen2.5-VL's vision attention with every window of the same length done in one batched call
    (the library loops over windows one by one off flash-attention); other shapes take the original path."""
    import torch.nn.functional as F
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

    lengths = cu_seqlens[1:] - cu_seqlens[:-1]
    n = int(lengths[0])
    s = hidden_states.shape[0]
    if not bool((lengths == n).all()) or self.training and self.attention_dropout:
        return type(self).forward(self, hidden_states, cu_seqlens, position_embeddings, max_seqlen, **kwargs)
    q, k, v = self.qkv(hidden_states).reshape(s, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = position_embeddings
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    q, k, v = (t.reshape(s // n, n, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, scale=self.scaling)
    return self.proj(out.transpose(1, 2).reshape(s, -1))


def fast_tower(visual) -> None:
    """Same model, faster on CPU: the patch embedding (a Conv3d whose stride is its kernel) as the
    matrix product it is, and the vision attention batched over equal windows. Training only; the
    saved model is the library's."""
    import types

    import torch.nn.functional as F

    embed = visual.patch_embed

    def patch_embed(hidden_states):
        w = embed.proj.weight
        return F.linear(hidden_states.to(w.dtype).reshape(-1, w[0].numel()), w.flatten(1))

    embed.forward = patch_embed
    for block in visual.blocks:
        block.attn.forward = types.MethodType(_vision_attention, block.attn)


def vision_index(visual, grid_thw) -> dict:
    """The vision tower's position ids and attention windows for ``grid_thw``, computed by the library's
    own helpers, to pass back as keyword arguments: they depend only on the grid, which every
    pretrain step repeats, and recomputing them (Python loops over 112 images) took a fifth of a step."""
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

    window_index, cu_window_seqlens = qwen.get_vision_window_index(
        grid_thw, spatial_merge_size=visual.spatial_merge_size, window_size=visual.window_size,
        patch_size=visual.patch_size)
    return {"position_ids": qwen.get_vision_position_ids(grid_thw, visual.spatial_merge_size),
            "cu_seqlens": qwen.get_vision_attention_seqlens(grid_thw, visual.config)[0],
            "window_index": window_index, "cu_window_seqlens": cu_window_seqlens}


def _batch(data: PretrainData, pairs_by_id: dict[int, np.ndarray], train_pairs: np.ndarray, n_pairs: int,
           seed: int, step: int, flip: bool):
    """The batch of a step: a pure function of (seed, step), so a resumed run sees the same batches."""
    rng = np.random.default_rng([seed, step])
    chosen = rng.choice(train_pairs, n_pairs, replace=False)
    rows = np.concatenate([pairs_by_id[p] for p in chosen])
    frames, targets = data.frames[rows], data.targets[rows]
    if flip and rng.random() < 0.5:
        frames = frames[:, :, :, ::-1]
        gh, gw = frames.shape[2] // 28, frames.shape[3] // 28
        targets = targets.reshape(len(rows), -1, gh, gw)[..., ::-1].reshape(len(rows), -1)
    return np.ascontiguousarray(frames), np.ascontiguousarray(targets), data.label[rows]


def _clip_scores(visual, head, data: PretrainData, rows: np.ndarray, image_mean, image_std, frame_pairs: bool,
                 batch: int = 64) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            r = rows[i:i + batch]
            x, grid = pixel_values(data.frames[r], image_mean, image_std, frame_pairs)
            logits = head(visual(x, grid_thw=grid).pooler_output).view(len(r), -1)
            out.append(logits.max(dim=1).values)
    return torch.cat(out).numpy()


def lr_factor(step: int, max_steps: int, decay_fraction: float) -> float:
    """Learning-rate multiplier at ``step``: 1, then linearly to 0 over the last ``decay_fraction``.

    >>> [lr_factor(s, 10, 0.5) for s in (0, 4, 5, 7, 9)]
    [1.0, 1.0, 1.0, 0.6, 0.2]
    >>> lr_factor(9, 10, 0.0)
    1.0
    """
    decay_steps = round(max_steps * decay_fraction)
    return min(1.0, (max_steps - step) / decay_steps) if decay_steps else 1.0


def run_pretrain(base_dir: str | Path, data: PretrainData, params: PretrainParams, profile: ModelProfile,
                 out_dir: str | Path, checkpoint_dir: str | Path, metrics_dir: str | Path, *, seed: int = 0,
                 store=None, store_prefix: str | None = None, progress: bool = True) -> dict:
    """Train the tower of ``base_dir``'s model on ``data``; save the model (tower trained) to ``out_dir``.

    Resumes from ``checkpoint_dir/last.pt`` when it was written by a run with the same inputs.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from vigil.models.profile import load_for_training

    torch.manual_seed(seed)
    model, processor = load_for_training(base_dir, profile)
    visual = model.model.visual
    for p in visual.parameters():
        p.requires_grad_(True)
    image = processor.image_processor
    mean, std = list(image.image_mean), list(image.image_std)
    if params.temporal_difference_init:
        temporal_difference_init(visual.patch_embed.proj, seed)
    if params.fast_tower:
        fast_tower(visual)
    head = torch.nn.Linear(visual.merger.mlp[-1].out_features, 1)
    trainable = list(visual.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=params.lr, weight_decay=0.0)

    run_key = fingerprint(params.model_dump(mode="json"), profile.model_dump(mode="json"), seed, len(data.label),
                          int(data.targets.sum()))
    ckpt_dir = Path(checkpoint_dir)
    ckpt_path = ckpt_dir / CHECKPOINT_FILE
    start = 0
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, weights_only=False)
        if state.get("run_key") == run_key:
            visual.load_state_dict(state["visual"])
            head.load_state_dict(state["head"])
            optimizer.load_state_dict(state["optimizer"])
            start = int(state["step"])
            log.info("pretrain: resuming from step %d (%s)", start, ckpt_path)
        else:
            log.info("pretrain: ignoring checkpoint %s from different inputs", ckpt_path)
    metrics_dir = Path(metrics_dir)
    metric_log = MetricLog(metrics_dir / "pretrain_log.csv", resume_from_step=start)

    train_rows = np.flatnonzero(~data.holdout)
    pairs_by_id: dict[int, np.ndarray] = {}
    for row in train_rows:
        pairs_by_id.setdefault(int(data.pair[row]), []).append(row)
    pairs_by_id = {k: np.array(v) for k, v in pairs_by_id.items()}
    train_pairs = np.array(sorted(pairs_by_id))
    pos_weight = torch.tensor(params.pos_weight)

    visual.train()
    index: dict = {}
    window: list[tuple[float, float]] = []
    started = time.perf_counter()
    last_log = started
    bar = tqdm(total=params.max_steps, initial=start, desc="pretrain", unit="step", disable=not progress)
    lines = None if progress else periodic_lines("pretrain", log.info, every_s=30)  # logs get lines, not bars
    for step in range(start, params.max_steps):
        frames, targets, labels = _batch(data, pairs_by_id, train_pairs, params.batch_pairs, seed, step, params.flip)
        x, grid = pixel_values(frames, mean, std, profile.frame_pairs)
        if not index:  # every batch has the same grid
            index = vision_index(visual, grid)
        logits = head(visual(x, grid_thw=grid, **index).pooler_output).view(len(labels), -1)
        token_loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(targets).float(),
                                                        pos_weight=pos_weight)
        clip_loss = F.binary_cross_entropy_with_logits(logits.max(dim=1).values, torch.from_numpy(labels).float())
        loss = token_loss + clip_loss
        for group in optimizer.param_groups:
            group["lr"] = params.lr * lr_factor(step, params.max_steps, params.decay_fraction)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, params.grad_clip)
        optimizer.step()
        window.append((token_loss.item(), clip_loss.item()))
        bar.update(1)
        done = step + 1
        if done % params.log_every == 0 or done == params.max_steps:
            now = time.perf_counter()
            n = len(window)
            metric_log.add({"step": done, "token_loss": round(float(np.mean([w[0] for w in window])), 5),
                            "clip_loss": round(float(np.mean([w[1] for w in window])), 5),
                            "step_s": round((now - last_log) / n, 4),
                            "clips_per_s": round(n * len(labels) / (now - last_log), 2)})
            bar.set_postfix(clip_loss=f"{np.mean([w[1] for w in window]):.3f}")
            if lines:
                lines(f"clip loss {np.mean([w[1] for w in window]):.3f}, step", done, params.max_steps)
            window, last_log = [], now
        if done % params.checkpoint_every == 0 and done < params.max_steps:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save({"run_key": run_key, "step": done, "visual": visual.state_dict(), "head": head.state_dict(),
                        "optimizer": optimizer.state_dict()}, tmp)
            os.replace(tmp, ckpt_path)
            if store_prefix:
                mirror_checkpoint(store, ckpt_path, f"{store_prefix}/pretrain")
    bar.close()
    train_s = time.perf_counter() - started

    visual.eval()
    held = np.flatnonzero(data.holdout)
    scores = _clip_scores(visual, head, data, held, mean, std, profile.frame_pairs)
    labels = data.label[held]
    predictions = (scores > 0).astype(int).tolist()
    metrics = {"steps": params.max_steps, "resumed_from_step": start, "train_s": round(train_s, 1),
               "s_per_step": round(train_s / max(params.max_steps - start, 1), 4),
               "holdout_clips": int(len(held)), "holdout_auc": round(roc_auc(scores, labels), 4),
               "holdout_paired_balanced_accuracy": round(paired_balanced_accuracy(
                   predictions, labels.tolist(), data.pair[held].astype(str).tolist()), 4)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    torch.save(head.state_dict(), out / HEAD_FILE)
    write_metrics(metrics_dir / "pretrain.json", metrics)
    log.info("pretrain: %s", metrics)
    return metrics
