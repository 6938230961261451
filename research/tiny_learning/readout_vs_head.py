"""Does the language model read what the tower knows? Both readers, on the same held-out clips.

For a training project (a `build/` with `pretrain/` and `sft/`), scores the `heldout` stage's zoo clips
with (1) the pretrain stage's token head (max over the clip's token logits) and (2) the SFT model's
teacher-forced decision score, logit(`<type>`) - logit(`<t>`) after `<think>`: what greedy decoding
compares. Prints AUC, paired balanced accuracy at 0 and at the best threshold, and the head's AUC per
generator. FINDINGS.md, "The readout is not the ceiling; the tower is".

    VIGIL_WORKSPACE=<workspace> python research/tiny_learning/readout_vs_head.py <project> [params.yaml]
"""
import sys
from pathlib import Path

from vigil.models.compat import ensure_transformers_compat

ensure_transformers_compat()
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from vigil.core.metrics.calibration import roc_auc  # noqa: E402
from vigil.core.metrics.classification import paired_balanced_accuracy  # noqa: E402
from vigil.jobs.runtime import load_runtime  # noqa: E402
from vigil.models.inputs import ClipFrames, clip_images, detector_messages  # noqa: E402
from vigil.models.profile import load_for_training  # noqa: E402
from vigil.train.heldout import heldout_clips  # noqa: E402
from vigil.train.pretrain import HEAD_FILE, _clip_scores, fast_tower  # noqa: E402
from vigil.train.trl_stages import decision_offset  # noqa: E402


def head_scores(model_dir: Path, clips, profile) -> np.ndarray:
    model, processor = load_for_training(model_dir, profile)
    visual = model.model.visual
    fast_tower(visual)
    visual.eval()
    head = torch.nn.Linear(visual.merger.mlp[-1].out_features, 1)
    head.load_state_dict(torch.load(model_dir / HEAD_FILE))
    image = processor.image_processor
    return _clip_scores(visual, head, clips, np.arange(len(clips.label)), list(image.image_mean),
                        list(image.image_std), profile.frame_pairs)


def decision_scores(model_dir: Path, clips, profile, fps: float, batch: int = 32) -> np.ndarray:
    model, processor = load_for_training(model_dir, profile)
    model.eval()
    tok = processor.tokenizer
    k = decision_offset(tok)  # the SFT loss's own decision point
    fake, real = (tok(text, add_special_tokens=False).input_ids for text in ("<think><type>", "<think><t>"))
    assert fake[:k] == real[:k] and fake[k] != real[k], "the condensed grammar's decision point moved"
    prefix = tok.decode(fake[:k])
    stamps = tuple(i / fps for i in range(clips.frames.shape[1]))
    out = []
    for start in range(0, len(clips.label), batch):
        prompts, images = [], []
        for r in range(start, min(start + batch, len(clips.label))):
            imgs, ts = clip_images(ClipFrames(clips.frames[r], stamps), profile.frame_pairs)
            prompts.append(processor.apply_chat_template(detector_messages(ts, system_prompt=profile.system_prompt),
                                                         add_generation_prompt=True, tokenize=False) + prefix)
            images.append([Image.fromarray(im) for im in imgs])
        inputs = processor(text=prompts, images=images, padding=True, padding_side="left", return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits[:, -1]
        out += (logits[:, fake[k]] - logits[:, real[k]]).tolist()
    return np.array(out)


def report(name: str, scores: np.ndarray, clips) -> None:
    labels, pairs = clips.label.astype(int), clips.pair.astype(str).tolist()

    def pba(threshold: float) -> float:
        return paired_balanced_accuracy((scores > threshold).astype(int).tolist(), labels.tolist(), pairs)

    best = max(pba(t) for t in np.quantile(scores, np.linspace(0.02, 0.98, 97)))
    print(f"{name:>14}: AUC {roc_auc(scores, labels):.4f}  pBA@0 {pba(0.0):.4f}  pBA@best {best:.4f}")


def main() -> None:
    project = Path(sys.argv[1])
    rt = load_runtime(sys.argv[2] if len(sys.argv) > 2 else None, check_store=False)
    profile = rt.params.model.active
    clips = heldout_clips(rt.params.zoo, rt.params.train.heldout, profile, rt.workspace / "cache")
    head = head_scores(project / "build" / "pretrain", clips, profile)
    report("tower head", head, clips)
    report("SFT decision", decision_scores(project / "build" / "sft", clips, profile, rt.params.zoo.fps), clips)
    for generator in sorted(set(clips.generator.tolist())):
        rows = clips.generator == generator
        print(f"  head AUC {generator}: {roc_auc(head[rows], clips.label[rows]):.3f}")


if __name__ == "__main__":
    main()
