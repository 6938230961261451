"""The ``prepare`` stage: a labelled dataset version, resolved and copied out for training.

Output (a folder, DVC-tracked): ``dataset.json`` (which version: tag, git revision, manifest md5),
``samples.jsonl`` (one training record per sample) and ``frames/<sample>/`` (Skyra layout). The
output depends only on the version's content, so a re-run on the same version writes the same bytes
and DVC skips the training stages after it.

A ``label_only`` annotation (a verdict its source states, no artifact localised) becomes a sample
with ``label_only=True`` and no truth: GRPO's answer reward reads only the label and its grounding
reward gives 0 without truth, while SFT keeps or leaves it out per ``train.sft.label_only``
(:func:`vigil.train.trl_stages.sft_samples`).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from vigil.core.annotation import LABEL_ONLY_KIND
from vigil.io.registry import (
    RegistryError,
    file_at,
    files_at,
    get_version,
    list_versions,
    manifest_md5_at,
    materialize_frames,
    open_registry,
    read_manifest_at,
)
from vigil.io.store import ObjectStore

log = logging.getLogger(__name__)

ANNOTATIONS_FILE = "annotations.parquet"
# Annotations whose artifacts are the truth (not a model's opinion): the grounding reward uses them.
TRUTH_KINDS = ("synthetic", "human")


@dataclass(frozen=True)
class TrainingSample:
    """One clip as the trainers see it."""

    sample_id: str
    split: str
    label: str
    generator: str
    pair_id: str | None
    duration_s: float | None
    frames_dir: str  # relative to the prepare folder
    target: str  # the annotation's explanation in the output grammar: the SFT completion
    truth: list[dict] | None  # ground-truth artifacts (type, t, bbox) when the annotation is truth
    label_only: bool = False  # the annotation is a verdict without grounded evidence (kind label_only)


def resolve_version(registry, wanted: str):
    """``latest`` (the newest labelled version) or a tag, checked to be a labelled version."""
    if wanted == "latest":
        labelled = [v for v in list_versions(registry) if ANNOTATIONS_FILE in files_at(registry, v.tag)]
        if not labelled:
            raise RegistryError(f"no labelled dataset version in {registry.path}: run `vigil run` (or `vigil ingest` "
                                "then `vigil annotate`) first")
        return labelled[-1]
    version = get_version(registry, wanted)
    if ANNOTATIONS_FILE not in files_at(registry, version.tag):
        raise RegistryError(f"{wanted} has no {ANNOTATIONS_FILE}: train on a labelled version (`vigil data versions`)")
    return version


def _training_samples(manifest: pd.DataFrame, annotations: pd.DataFrame) -> list[TrainingSample]:
    table = manifest.merge(annotations[["sample_id", "explanation", "kind", "artifacts_json", "label_agrees"]],
                           on="sample_id", how="left")
    samples = []
    for row in table.itertuples(index=False):
        if not isinstance(row.explanation, str) or row.label not in ("real", "fake") or row.label_agrees is False:
            continue  # no usable annotation: validation already reported the coverage
        truth = json.loads(row.artifacts_json) if row.kind in TRUTH_KINDS else None
        if truth is not None:
            truth = [a for a in truth if a.get("type")]
        duration = float(row.duration_s) if pd.notna(row.duration_s) else None
        samples.append(TrainingSample(
            sample_id=row.sample_id, split=row.split, label=row.label, generator=str(row.generator),
            pair_id=row.pair_id if isinstance(row.pair_id, str) else None, duration_s=duration,
            frames_dir=f"frames/{row.frames_dir}", target=row.explanation, truth=truth,
            label_only=row.kind == LABEL_ONLY_KIND))
    return sorted(samples, key=lambda s: s.sample_id)


def prepare(workspace: str | Path, store: ObjectStore, dataset: str, out_dir: str | Path) -> dict:
    """Write the training copy of ``dataset`` to ``out_dir``; returns ``dataset.json``'s content."""
    registry = open_registry(Path(workspace) / "registry", store)
    version = resolve_version(registry, dataset)
    manifest = read_manifest_at(registry, version.tag)
    annotations = pd.read_parquet(file_at(registry, version.tag, ANNOTATIONS_FILE))
    samples = _training_samples(manifest, annotations)
    if not samples:
        raise RegistryError(f"{version.tag}: no sample has an accepted annotation that agrees with its label")
    out = Path(out_dir)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    materialize_frames(registry, version.tag, [Path(s.frames_dir).name for s in samples], staging / "frames")
    with (staging / "samples.jsonl").open("w") as fh:
        for sample in samples:
            fh.write(json.dumps(asdict(sample), sort_keys=True) + "\n")
    counts: dict[str, dict[str, int]] = {}
    for sample in samples:
        counts.setdefault(sample.split, {}).setdefault(sample.label, 0)
        counts[sample.split][sample.label] += 1
    info = {"tag": version.tag, "git_rev": version.git_rev, "manifest_md5": manifest_md5_at(registry, version.tag),
            "n_samples": len(samples), "counts": counts, "n_label_only": sum(s.label_only for s in samples)}
    (staging / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    log.info("prepared %s: %d samples %s", version.tag, len(samples), counts)
    return info


def read_samples(prepared: str | Path, splits: tuple[str, ...] | None = None) -> list[TrainingSample]:
    """The records ``prepare`` wrote, optionally only some splits."""
    rows = [json.loads(line) for line in (Path(prepared) / "samples.jsonl").read_text().splitlines() if line]
    return [TrainingSample(**r) for r in rows if splits is None or r["split"] in splits]


def shuffle_labels(samples: list[TrainingSample], seed: int) -> list[TrainingSample]:
    """A negative control: every clip keeps its frames but takes the label, explanation and truth of a
    random other clip, so a model trained on it can learn nothing about the clips (the gate must refuse it).

    >>> a = TrainingSample("a", "train", "real", "real", "p1", 2.0, "frames/a", "<answer>Real</answer>", [])
    >>> b = TrainingSample("b", "train", "fake", "g", "p1", 2.0, "frames/b", "<answer>Fake</answer>", [])
    >>> [s.frames_dir for s in shuffle_labels([a, b], 0)] == ["frames/a", "frames/b"]
    True
    >>> sorted(s.label for s in shuffle_labels([a, b], 0))
    ['fake', 'real']
    """
    import random
    from dataclasses import replace

    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    return [replace(s, label=samples[j].label, generator=samples[j].generator, target=samples[j].target,
                    truth=samples[j].truth, label_only=samples[j].label_only)
            for s, j in zip(samples, order, strict=True)]
