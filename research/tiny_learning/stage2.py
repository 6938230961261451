"""Stage 2: teach the Qwen2.5-VL language model to write <answer>Real|Fake</answer>.

Loads a stage-1 checkpoint (tower trained on masks). Modes:
  --mode frozen : tower frozen, its video tokens cached per clip; only the LM trains (answer CE).
  --mode aux    : tower trains too, with the stage-1 token/clip mask loss kept (weight --aux-w).
Score = logit(first verdict token of "Fake") - logit("Real") at the verdict position (teacher
forced; the same as greedy decoding's choice at threshold 0).

python research/tiny_learning/stage2.py --ckpt /tmp/tl/s1_best --minutes 4 --mode frozen
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
from common import frame_index, load_data, patchify, report, token_targets  # noqa: E402

PROMPT = "Is this video real or fake?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/zoo8x112.npz")
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--mode", default="frozen", choices=["frozen", "aux"])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--tower-lr", type=float, default=3e-4)
    ap.add_argument("--aux-w", type=float, default=1.0)
    ap.add_argument("--no-processor-inputs", dest="processor_inputs", action="store_false",
                    help="omit mm_token_type_ids/second_per_grid_ts (E5/E10 did: mismatched serving)")
    ap.add_argument("--batch-pairs", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--downsample", type=int, default=None, help="average-pool frames by k (112->56)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-train", type=int, default=600)
    ap.add_argument("--save", default=None)
    ap.add_argument("--log", default=str(Path(__file__).parent / "results.jsonl"))
    ap.add_argument("--name", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import common
    if a.downsample is None:
        a.downsample = json.loads((Path(a.ckpt) / "stage1.json").read_text()).get("downsample", 1)
    common.DOWNSAMPLE = a.downsample
    torch.manual_seed(a.seed)
    s1 = json.loads((Path(a.ckpt) / "stage1.json").read_text())
    from vigil.models.compat import ensure_transformers_compat
    ensure_transformers_compat()
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
    from transformers.modeling_outputs import BaseModelOutputWithPooling
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(a.ckpt, dtype=torch.float32)
    proc = AutoProcessor.from_pretrained(s1.get("model_path") or a.ckpt)
    visual = model.model.visual
    D = visual.merger.mlp[-1].out_features
    head = torch.nn.Linear(D, 1)
    head.load_state_dict(torch.load(Path(a.ckpt) / "token_head.pt"))
    data, tr, te = load_data(a.data)
    fidx = frame_index(data["frames"].shape[1], s1["frames"])
    example = common._pool(torch.from_numpy(data["frames"][:1][:, fidx]).float(),
                           a.downsample)[0].round().to(torch.uint8).numpy()

    # token template: one example through the real processor, then swap the verdict
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": PROMPT}]}]
    prefix = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    ids, extra_in = {}, {}
    for word in ("Real", "Fake"):
        enc = proc(text=[prefix + f"<answer>{word}</answer><|im_end|>\n"],
                   videos=[list(example)], return_tensors="pt",
                   videos_kwargs={"do_sample_frames": False})
        ids[word] = enc["input_ids"][0]
        # the processor's extra inputs decide the M-RoPE positions: train with them, as served
        extra_in[word] = {k: v for k, v in enc.items()
                          if k not in ("input_ids", "attention_mask", "pixel_values_videos",
                                       "video_grid_thw")}
    n_prefix = len(proc(text=[prefix], videos=[list(example)], return_tensors="pt",
                        videos_kwargs={"do_sample_frames": False})["input_ids"][0])
    L = max(len(v) for v in ids.values())
    pad_id = proc.tokenizer.pad_token_id
    attn = {}
    for w, v in list(ids.items()):
        attn[w] = torch.cat([torch.ones(len(v), dtype=torch.long), torch.zeros(L - len(v), dtype=torch.long)])
        ids[w] = torch.cat([v, torch.full((L - len(v),), pad_id, dtype=v.dtype)])
        if "mm_token_type_ids" in extra_in[w]:
            m = extra_in[w]["mm_token_type_ids"][0]
            extra_in[w]["mm_token_type_ids"] = torch.cat([m, torch.zeros(L - len(m), dtype=m.dtype)])
    if not a.processor_inputs:
        extra_in = {w: {} for w in extra_in}
    print("extra processor inputs used in training:", {w: list(v) for w, v in extra_in.items()})
    diff = (ids["Real"] != ids["Fake"]).nonzero()[0].item()
    tok_real, tok_fake = ids["Real"][diff].item(), ids["Fake"][diff].item()
    print("verdict pos", diff, "prefix", n_prefix, "len", len(ids["Real"]),
          proc.tokenizer.convert_ids_to_tokens(ids["Fake"][n_prefix:].tolist()), flush=True)

    cache, current = {}, {}
    if a.mode == "frozen":
        for p in visual.parameters():
            p.requires_grad_(False)
        orig_forward = visual.forward

        def cached_forward(hidden_states, grid_thw, **kw):
            return BaseModelOutputWithPooling(pooler_output=current["tokens"])
        visual.forward = cached_forward
    else:
        captured = {}
        visual.register_forward_hook(lambda m, i, o: captured.__setitem__("tok", o.pooler_output))

    def batch(j):
        x, grid = patchify(data["frames"][j], fidx)
        if a.mode == "frozen":
            miss = [i for i in j if i not in cache]
            if miss:
                xm, gm = patchify(data["frames"][miss], fidx)
                with torch.no_grad():
                    tk = orig_forward(xm, grid_thw=gm).pooler_output.view(len(miss), -1, D)
                for i, t in zip(miss, tk):
                    cache[i] = t
            current["tokens"] = torch.cat([cache[i] for i in j])
        inp = torch.stack([ids["Fake"] if data["label"][i] else ids["Real"] for i in j])
        am = torch.stack([attn["Fake"] if data["label"][i] else attn["Real"] for i in j])
        labels = inp.clone()
        labels[:, :n_prefix] = -100
        labels[am == 0] = -100
        more = {}
        for k in extra_in["Real"]:
            rows = [extra_in["Fake" if data["label"][i] else "Real"][k] for i in j]
            more[k] = (torch.stack(rows) if k == "mm_token_type_ids"
                       else torch.cat([r.reshape(-1) for r in rows]))
        return dict(input_ids=inp, attention_mask=am, pixel_values_videos=x,
                    video_grid_thw=grid, labels=labels, **more)

    def scores(idx, bs=32):
        out = []
        model.eval()
        with torch.no_grad():
            for i in range(0, len(idx), bs):
                j = idx[i:i + bs]
                lg = model(**batch(j)).logits[:, diff - 1]
                out.append(lg[:, tok_fake] - lg[:, tok_real])
        model.train()
        return torch.cat(out).numpy()

    lm_params = [p for n, p in model.named_parameters() if not n.startswith("model.visual")]
    groups = [{"params": lm_params, "lr": a.lr}]
    if a.mode == "aux":
        groups.append({"params": list(visual.parameters()) + list(head.parameters()),
                       "lr": a.tower_lr})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    by_pair = {}
    for i in tr:
        by_pair.setdefault(data["pair"][i], []).append(i)
    tr_pairs = np.array(sorted(by_pair))
    rng = np.random.default_rng(a.seed)
    t0, step, hist = time.time(), 0, []
    model.train()
    while time.time() - t0 < a.minutes * 60:
        ps = rng.choice(tr_pairs, a.batch_pairs, replace=False)
        j = [i for p in ps for i in by_pair[p]]
        out = model(**batch(j))
        lg = out.logits[:, diff - 1]
        y = torch.from_numpy(data["label"][j])
        verdict = F.cross_entropy(lg, torch.where(y == 1, tok_fake, tok_real))
        loss = out.loss
        if a.mode == "aux":
            tl = head(captured["tok"]).view(len(j), -1)
            tgt = token_targets(data["masks"][j], fidx)
            aux = F.binary_cross_entropy_with_logits(tl, tgt, pos_weight=torch.tensor(3.0)) + \
                F.binary_cross_entropy_with_logits(tl.max(1).values, y.float())
            loss = loss + a.aux_w * aux
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        opt.step()
        hist.append((out.loss.item(), verdict.item()))
        step += 1
        if step % 50 == 0:
            h = np.mean(hist[-50:], axis=0)
            print(f"step {step} t={time.time() - t0:.0f}s completion {h[0]:.4f} verdict {h[1]:.4f}",
                  flush=True)
    train_s = time.time() - t0
    te_s = scores(te)
    tr_ev = np.sort(np.random.default_rng(1).choice(tr, min(a.eval_train, len(tr)), replace=False))
    tr_s = scores(tr_ev)
    from common import paired_ba
    name = a.name or f"s2 {a.mode} lr{a.lr} {a.minutes}min"
    report(name, data, tr_ev, tr_s, te, te_s,
           extra={"steps": step, "train_s": round(train_s, 1), "s_per_step": round(train_s / step, 3),
                  "test_pba_decoded_thr0": paired_ba(te_s, data["label"][te], data["pair"][te], 0.0),
                  "ckpt": a.ckpt, "args": vars(a), "eval_s": round(time.time() - t0 - train_s, 1)},
           out=a.log)
    if a.save:
        if a.mode == "frozen":
            visual.forward = orig_forward
        model.save_pretrained(a.save)
        proc.save_pretrained(a.save)


if __name__ == "__main__":
    main()
