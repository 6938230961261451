"""Evaluation sets: folders in Skyra's layout plus ``clips.jsonl`` (vigil.core.evaluation.EvalClip).

Two kinds feed the gate:

* the **fixed set**: zoo clips from a seed no stage trains on (``train.heldout``), rendered once and
  kept, with every frame, the ground-truth artifacts, per-frame masks and a reference explanation;
* a **recent slice**: one split (``evaluate.recent_split``) of a labelled dataset version, i.e. clips
  the crawler found, with their annotations as reference and truth where the annotation is truth.

A set's id is the hash of its ``clips.jsonl``, so the same clips give the same id wherever they were
built, and predictions cached under that id can be reused. Each folder also holds a
``test_index.json`` in the format Skyra's inference script reads (generator → frame folders).
"""

from __future__ import annotations

import json
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.config.params import ZooParams
from vigil.core.evaluation import REAL, EvalClip, TruthArtifact, read_clips
from vigil.core.hashing import sha256_file, sha256_json

log = logging.getLogger(__name__)

EVALSET_FILE = "evalset.json"
ZOO_EVALSET_VERSION = "zoo-evalset-v1"


@dataclass(frozen=True)
class EvalSet:
    """An evaluation set on disk."""

    path: Path
    evalset_id: str
    kind: str  # "zoo" | "dataset"
    source: dict  # zoo seed and pairs, or dataset tag, git rev and split
    clips: tuple[EvalClip, ...]

    def frames_dir(self, clip: EvalClip) -> Path:
        return self.path / clip.frames_dir


def open_evalset(path: str | Path) -> EvalSet:
    """An evaluation set folder (written by this module, or by hand in the same layout)."""
    path = Path(path)
    if not (path / "clips.jsonl").is_file():
        raise FileNotFoundError(f"{path} is not an evaluation set: no clips.jsonl (see vigil.evaluate.evalsets)")
    info = json.loads((path / EVALSET_FILE).read_text()) if (path / EVALSET_FILE).is_file() else {}
    clips = tuple(read_clips(path))
    evalset_id = info.get("evalset_id") or f"es-{sha256_file(path / 'clips.jsonl')[:12]}"
    return EvalSet(path, evalset_id, info.get("kind", "folder"), info.get("source", {"path": str(path)}), clips)


def _write_frames(folder: Path, frames: np.ndarray, timestamps: list[float]) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(folder / f"{k}.png", optimize=False, compress_level=1)
    (folder / "timestamps.txt").write_text("".join(f"{t:.4f}\n" for t in timestamps))


def _existing_or_staging(out: Path, *subfolders: str) -> tuple[EvalSet | None, Path]:
    """The finished set at ``out``, or a fresh staging folder to build it in (moved into place at the end)."""
    if (out / EVALSET_FILE).is_file():
        return open_evalset(out), out
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for name in subfolders:
        (staging / name).mkdir(parents=True)
    return None, staging


def _finish(staging: Path, out: Path, clips: list[EvalClip], kind: str, source: dict) -> EvalSet:
    """Write clips.jsonl, Skyra's test_index.json and evalset.json, then move the folder into place."""
    clips = sorted(clips, key=lambda c: c.video_id)
    (staging / "clips.jsonl").write_text("".join(c.model_dump_json() + "\n" for c in clips))
    index: dict[str, list[str]] = {}
    for c in clips:
        index.setdefault(c.aigc_model_name, []).append(c.frames_dir)
    (staging / "test_index.json").write_text(json.dumps(index, indent=1))
    evalset_id = f"es-{sha256_file(staging / 'clips.jsonl')[:12]}"
    (staging / EVALSET_FILE).write_text(json.dumps({"evalset_id": evalset_id, "kind": kind, "source": source,
                                                    "clips": len(clips)}, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return open_evalset(out)


# ------------------------------------------------------------------------------------ zoo set

def _render_zoo_chunk(job: tuple[dict, list[int], str]) -> list[tuple[int, dict | None, str | None]]:
    """Render catalog items into ``frames/<video>/`` (+ masks); returns (index, clip record or None, reason)."""
    from vigil.annotate.synthetic import synthetic_explanation
    from vigil.core.records import ArtifactTruth
    from vigil.zoo.catalog import ZooConfig, build_catalog, render_clip

    zoo_kwargs, indices, staging = job
    items = build_catalog(ZooConfig(**zoo_kwargs))
    out: list[tuple[int, dict | None, str | None]] = []
    for i in indices:
        item = items[i]
        try:
            clip = render_clip(item)
            truth = [ArtifactTruth(type=a.truth.type, t=a.truth.t, bbox=a.truth.bbox) for a in clip.artifacts]
            duration = len(clip.frames) / item.fps
            reference = synthetic_explanation(item.label, truth, duration, seed=item.artifact_seed)
        except ValueError as exc:  # the zoo cannot place an artifact in this clip, or explain it
            out.append((i, None, str(exc)))
            continue
        fake = item.label == "fake"
        name = f"{item.pair_generator if fake else REAL}__{item.pair_id}"
        folder = Path(staging) / "frames" / name
        _write_frames(folder, clip.frames, [k / item.fps for k in range(len(clip.frames))])
        masks = None
        if fake:
            union = np.zeros(clip.frames.shape[:3], dtype=bool)
            for a in clip.artifacts:
                union |= a.mask
            np.save(Path(staging) / "masks" / f"{name}.npy", union)
            masks = f"masks/{name}.npy"
        record = EvalClip(
            video_id=f"{item.pair_generator if fake else REAL}/{item.pair_id}",
            aigc_model_name=item.pair_generator if fake else REAL, gt="Fake" if fake else "Real",
            base_id=item.pair_id, frames_dir=f"frames/{name}", duration_s=round(duration, 4),
            truth=tuple(truth), has_truth=True,
            masks=masks, reference=reference)
        out.append((i, record.model_dump(mode="json"), None))
    return out


def zoo_evalset(zoo: ZooParams, seed: int, pairs_per_generator: int, root: str | Path, *,
                workers: int = 2) -> EvalSet:
    """The fixed evaluation set for a zoo seed (rendered once under ``root``, then reused)."""
    from vigil.zoo.catalog import ZOO_RENDER_VERSION, ZooConfig, build_catalog, zoo_geometry

    zoo_kwargs = dict(seed=seed, pairs_per_generator=pairs_per_generator, **zoo_geometry(zoo))
    key = sha256_json([ZOO_EVALSET_VERSION, ZOO_RENDER_VERSION, zoo_kwargs])[:12]
    out = Path(root) / f"zoo-{seed}-{key}"
    existing, staging = _existing_or_staging(out, "masks")
    if existing:
        return existing
    items = build_catalog(ZooConfig(**zoo_kwargs))
    n_chunks = max(1, workers) * 8
    jobs = [(zoo_kwargs, list(range(k, len(items), n_chunks)), str(staging)) for k in range(n_chunks)]
    rendered: list[tuple[int, dict | None, str | None]] = []
    with ProcessPoolExecutor(max(1, workers)) as pool:
        for chunk in pool.map(_render_zoo_chunk, jobs):
            rendered.extend(chunk)
    bad = {items[i].pair_id for i, record, _ in rendered if record is None}
    if bad:
        log.info("zoo evaluation set (seed %d): %d of %d pairs left out (an artifact did not fit the clip)",
                 seed, len(bad), len(items) // 2)
    clips = []
    for i, record, _ in rendered:
        if record is None or items[i].pair_id in bad:
            if record is not None:  # its partner failed: remove its files too
                shutil.rmtree(staging / record["frames_dir"], ignore_errors=True)
                if record["masks"]:
                    (staging / record["masks"]).unlink(missing_ok=True)
            continue
        clips.append(EvalClip.model_validate(record))
    source = {"zoo_seed": seed, "pairs_per_generator": pairs_per_generator, "zoo": zoo_kwargs}
    evalset = _finish(staging, out, clips, "zoo", source)
    log.info("zoo evaluation set %s: %d clips (seed %d) in %s", evalset.evalset_id, len(clips), seed, out)
    return evalset


# ------------------------------------------------------------------------------- dataset slice

def dataset_evalset(prepared_dir: str | Path, split: str, root: str | Path) -> EvalSet:
    """One split of a prepared dataset version (``vigil.train.prepare``'s folder) as an evaluation set."""
    from vigil.train.prepare import read_samples

    prepared_dir = Path(prepared_dir)
    info = json.loads((prepared_dir / "dataset.json").read_text())
    samples = read_samples(prepared_dir, (split,))
    key = sha256_json(["dataset-evalset-v1", info["tag"], info["manifest_md5"], split])[:12]
    out = Path(root) / f"{info['tag']}-{split}-{key}"
    existing, staging = _existing_or_staging(out, "frames")
    if existing:
        return existing
    clips = []
    for s in samples:
        base_id = s.pair_id or s.sample_id[:16]
        fake = s.label == "fake"
        generator = s.generator if fake else REAL
        name = f"{generator}__{base_id}__{s.sample_id[:8]}"
        shutil.copytree(prepared_dir / s.frames_dir, staging / "frames" / name)
        truth = tuple(TruthArtifact(type=a["type"], t=a["t"], bbox=a["bbox"])
                      for a in (s.truth or []) if a.get("type") and a.get("bbox"))
        clips.append(EvalClip(
            video_id=f"{generator}/{base_id}", aigc_model_name=generator, gt="Fake" if fake else "Real",
            base_id=base_id, frames_dir=f"frames/{name}", duration_s=s.duration_s or 0.0, truth=truth,
            has_truth=s.truth is not None, reference=s.target, sample_id=s.sample_id))
    seen: dict[str, int] = {}
    for c in clips:
        seen[c.video_id] = seen.get(c.video_id, 0) + 1
    duplicated = [v for v, n in seen.items() if n > 1]
    if duplicated:  # two clips of one generator from one source clip: keep video ids unique
        clips = [c.model_copy(update={"video_id": f"{c.video_id}#{c.sample_id[:8]}"}) if c.video_id in duplicated
                 else c for c in clips]
    source = {"dataset": info["tag"], "git_rev": info["git_rev"], "manifest_md5": info["manifest_md5"],
              "split": split}
    evalset = _finish(staging, out, clips, "dataset", source)
    log.info("%s %s slice %s: %d clips", info["tag"], split, evalset.evalset_id, len(clips))
    return evalset
