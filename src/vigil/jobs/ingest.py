"""Ingest: crawled clips → probed, frame-sampled, split, validated → a published dataset version.

Resumable by construction: each clip's work lands in ``<workspace>/ingest/samples/<sha>/`` and is
marked done only by the last, atomic write (``row.json`` or ``quarantined.json``), so a run killed
half-way redoes at most the clips it was working on. A bad clip is quarantined with its reason and
never stops the batch; a batch that fails validation is quarantined whole and not published.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vigil.config.params import Params
from vigil.core.hashing import sha256_json
from vigil.core.phash import is_near_duplicate
from vigil.core.progress import ProgressCallback
from vigil.core.records import CrawledItem, labels_conflict
from vigil.core.sample import Sample, write_manifest
from vigil.core.splits import assign_splits
from vigil.io.media.errors import MediaError
from vigil.io.media.frame_folder import sample_frames
from vigil.io.media.probing import probe
from vigil.io.store import ObjectStore, quarantine
from vigil.jobs.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestProblem:
    sample_id: str
    reason: str
    detail: str
    quarantine_key: str | None = None


@dataclass(frozen=True)
class IngestReport:
    n_crawled: int
    n_samples: int
    n_new: int
    problems: tuple[IngestProblem, ...]
    published: bool
    status: str  # published | unchanged | rejected | empty
    version_tag: str | None = None
    manifest_uri: str | None = None
    docs_index: str | None = None
    validation_summary: str = ""
    failed_expectations: tuple[str, ...] = ()
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.status}; {self.n_samples} samples ({self.n_new} new), {len(self.problems)} quarantined; "
                f"version {self.version_tag or '-'}")


def crawled_items(store: ObjectStore) -> list[CrawledItem]:
    """One record per stored clip (its earliest sighting); near-duplicates, never stored, are left out."""
    by_sha: dict[str, CrawledItem] = {}
    for key in store.list_keys("provenance/"):
        if not key.endswith(".json"):
            continue
        try:
            item = CrawledItem.model_validate(store.get_json(key))
        except Exception as exc:  # a damaged record must not stop the batch
            log.warning("skipping unreadable crawl record %s: %s", key, exc)
            continue
        if item.media_key is None:
            continue
        current = by_sha.get(item.sha256)
        if current is None or item.fetched_at < current.fetched_at:
            by_sha[item.sha256] = item
    return [by_sha[sha] for sha in sorted(by_sha)]


def _write_json_atomic(path: Path, value: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def prepare_sample(item: CrawledItem, store: ObjectStore, samples_dir: Path, params: Params) -> dict | IngestProblem:
    """Probe and frame-sample one clip into ``samples_dir/<sha>/``; cached across runs."""
    sample_dir = samples_dir / item.sha256
    done, rejected = sample_dir / "row.json", sample_dir / "quarantined.json"
    if done.is_file():
        return json.loads(done.read_text())
    if rejected.is_file():
        return IngestProblem(**json.loads(rejected.read_text()))
    sample_dir.mkdir(parents=True, exist_ok=True)
    media_path = sample_dir / f".media{Path(item.media_key or '').suffix}"
    try:
        store.download(item.media_key, media_path)  # type: ignore[arg-type]
        cfg = params.ingest
        facts = probe(media_path, max_bytes=params.crawl.max_bytes, max_duration_s=cfg.max_duration_s)
        frames = sample_frames(media_path, sample_dir / "frames", cfg.frames, cfg.max_side, cfg.max_pixels,
                               prefer_keyframes=cfg.prefer_keyframes, max_bytes=params.crawl.max_bytes,
                               max_duration_s=cfg.max_duration_s)
    except MediaError as exc:
        key = quarantine(store, reason=exc.reason, detail=exc.detail, source=item.media_key or item.media_url,
                         extra={"sample_id": item.sha256, "stage": "ingest", "media_url": item.media_url})
        problem = IngestProblem(item.sha256, exc.reason, exc.detail, key)
        _write_json_atomic(rejected, problem.__dict__)
        return problem
    finally:
        media_path.unlink(missing_ok=True)
    row = {
        "container": facts.container, "codec": facts.codec, "duration_s": facts.duration_s,
        "fps": facts.fps, "width": facts.display_width, "height": facts.display_height,
        "frame_count": facts.frame_count, "bitrate": facts.bitrate, "rotation": facts.rotation,
        "n_frames": len(frames.frame_paths), "sampling_strategy": frames.strategy,
    }
    _write_json_atomic(done, row)
    return row


def near_duplicate_groups(phashes: dict[str, str], max_distance: float,
                          labels: dict[str, str] | None = None) -> dict[str, str]:
    """Group id (the smallest sample id) for every clip that nearly duplicates another.

    Clips whose known labels differ are never grouped (a fake and its paired real): see
    :func:`vigil.core.records.labels_conflict`.
    """
    labels = labels or {}
    ids = sorted(phashes)
    parent = {i: i for i in ids}

    def root(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a_index, a in enumerate(ids):
        for b in ids[a_index + 1:]:
            if labels_conflict(labels.get(a, "unknown"), labels.get(b, "unknown")):
                continue
            try:
                close = is_near_duplicate(phashes[a], phashes[b], max_distance)
            except ValueError:
                continue  # hashes of different shapes never match
            if close:
                ra, rb = root(a), root(b)
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for i in ids:
        groups.setdefault(root(i), []).append(i)
    return {member: gid for gid, members in groups.items() if len(members) > 1 for member in members}


def build_manifest(items: Iterable[CrawledItem], prepared: dict[str, dict], params: Params) -> pd.DataFrame:
    items = [i for i in items if i.sha256 in prepared]
    dup_groups = near_duplicate_groups({i.sha256: i.phash for i in items}, params.crawl.near_duplicate_distance,
                                       {i.sha256: i.label for i in items})
    rows = []
    for item in items:
        facts = prepared[item.sha256]
        rows.append({
            "sample_id": item.sha256, "source_url": item.final_url, "domain": item.domain,
            "source": item.source, "crawled_at": item.fetched_at, "generator": item.generator,
            "label": item.label, "pair_id": item.pair_id, "split": "train",
            **{k: facts[k] for k in ("container", "codec", "duration_s", "fps", "width", "height",
                                     "frame_count", "bitrate", "rotation", "n_frames")},
            "frames_dir": item.sha256, "phash": item.phash,
            "near_duplicate_group": dup_groups.get(item.sha256), "licence": item.licence,
            "prompt": item.prompt, "media_key": item.media_key,
            "artifact_count": len(item.artifacts), "artifact_types": [a.type for a in item.artifacts],
            "has_masks": item.mask_key is not None,
        })
    rows = [Sample.model_validate(r).model_dump() for r in rows]
    df = pd.DataFrame(rows)
    if not df.empty:
        cfg = params.ingest
        df["split"] = assign_splits(df, salt=cfg.split_salt, train_fraction=cfg.train_fraction,
                                    val_fraction=cfg.val_fraction)
    return df


def stage_batch(df: pd.DataFrame, samples_dir: Path, batch_dir: Path) -> tuple[Path, Path]:
    """Manifest + frames of one batch, frames hard-linked from the per-sample cache (no copies)."""
    if batch_dir.exists():
        shutil.rmtree(batch_dir)
    frames_root = batch_dir / "frames"
    frames_root.mkdir(parents=True)
    for sample_id in df["sample_id"]:
        src = samples_dir / sample_id / "frames"
        dest = frames_root / sample_id
        dest.mkdir()
        for f in src.iterdir():
            try:
                os.link(f, dest / f.name)
            except OSError:
                shutil.copy2(f, dest / f.name)
    manifest = write_manifest(df, batch_dir / "manifest.parquet")
    return manifest, frames_root


def _batch_counts(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Rows per generator, label and split of a batch (missing values left out); ``{}`` for an
    empty batch, which may have no columns (unlike the registry's diff counts)."""
    return {col: {str(k): int(v) for k, v in df[col].value_counts().sort_index().items()}
            for col in ("generator", "label", "split")} if not df.empty else {}


def allowed_generators(params: Params) -> tuple[str, ...]:
    if params.validation.allowed_generators is not None:
        return params.validation.allowed_generators
    from vigil.zoo.generators import GENERATORS

    return ("real", "unknown", *sorted(GENERATORS))


def ingest(rt: Runtime, *, progress: ProgressCallback | None = None) -> IngestReport:
    """Turn everything crawled so far into the next dataset version, if it passes validation."""
    from vigil.io.registry import list_versions, open_registry, publish_version
    from vigil.io.validation import validate_manifest

    store, workspace, params, ledger = rt.store, rt.workspace, rt.params, rt.ledger
    samples_dir = workspace / "ingest" / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    items = crawled_items(store)
    prepared: dict[str, dict] = {}
    problems: list[IngestProblem] = []
    n_new = sum(1 for i in items if not (samples_dir / i.sha256 / "row.json").is_file()
                and not (samples_dir / i.sha256 / "quarantined.json").is_file())
    with ThreadPoolExecutor(max_workers=params.ingest.workers) as pool:
        futures = {pool.submit(prepare_sample, item, store, samples_dir, params): item for item in items}
        for done_count, future in enumerate(as_completed(futures), start=1):
            item = futures[future]
            result = future.result()
            if isinstance(result, IngestProblem):
                problems.append(result)
            else:
                prepared[item.sha256] = result
            if progress:
                progress("ingest", done_count, len(items))
    df = build_manifest(items, prepared, params)
    base = dict(n_crawled=len(items), n_samples=len(df), n_new=n_new, problems=tuple(problems), counts=_batch_counts(df))
    if df.empty:
        return IngestReport(**base, published=False, status="empty")

    registry = open_registry(workspace / "registry", store)
    params_hash = sha256_json(params.model_dump(mode="json"))
    content_id = sha256_json({"samples": sorted(df["sample_id"]), "params": params_hash})
    # Labelled versions (kind "labelled") sit on top of a dataset version; compare with the
    # newest version ingest itself made, so that a re-run with nothing new changes nothing.
    datasets = [v for v in list_versions(registry) if v.metadata.get("kind", "dataset") == "dataset"]
    if datasets and datasets[-1].metadata.get("content_id") == content_id:
        return IngestReport(**base, published=False, status="unchanged", version_tag=datasets[-1].tag,
                            manifest_uri=datasets[-1].metadata.get("manifest_uri"))

    batch_dir = workspace / "ingest" / "batches" / content_id[:16]
    manifest_path, frames_root = stage_batch(df, samples_dir, batch_dir)
    docs_dir = workspace / "reports" / "data-docs" / content_id[:16]
    validation = validate_manifest(df, params.validation, allowed_generators(params), docs_dir)
    validation_record = {
        "success": validation.success, "statistics": dict(validation.statistics),
        "expectations": [{"name": e.name, "success": e.success, "observed": e.observed} for e in validation.expectations],
    }
    report_key = f"reports/validation/{content_id[:16]}.json"
    store.put_json(report_key, validation_record)
    common_inputs = {"samples": content_id, "n_samples": len(df), "params_sha256": params_hash}

    if not validation.success:
        qkey = f"quarantine/batches/{content_id[:16]}"
        store.put_file(f"{qkey}/manifest.parquet", manifest_path)
        store.put_json(f"{qkey}/reason.json", {
            "reason": "validation_failed", "failed_expectations": validation.failed_names(),
            "detail": validation.summary(), "validation_report": report_key,
        })
        ledger.append("dataset.reject", inputs=common_inputs,
                      outputs={"quarantine": store.uri(qkey), "validation_report": store.uri(report_key)},
                      params={"validation": params.validation.model_dump(mode="json")})
        return IngestReport(**base, published=False, status="rejected", docs_index=str(validation.docs_index),
                            validation_summary=validation.summary(),
                            failed_expectations=tuple(validation.failed_names()))

    version = publish_version(
        registry, manifest_path, frames_root, move=True,  # the staged batch is hard links: hand it over
        message=f"dataset: {len(df)} samples ({n_new} new)",
        metadata={"kind": "dataset", "content_id": content_id, "params_sha256": params_hash, "counts": _batch_counts(df),
                  "validation_report": store.uri(report_key), "manifest_uri": store.uri("dvc/")},
    )
    ledger.append(
        "dataset.publish",
        inputs={**common_inputs, "crawl_records": sha256_json(sorted(df["sample_id"]))},
        outputs={"tag": version.tag, "git_rev": version.git_rev, "manifest_md5": version.manifest_md5,
                 "frames_md5": version.frames_md5, "validation_report": store.uri(report_key)},
        params={"ingest": params.ingest.model_dump(mode="json"), "validation": params.validation.model_dump(mode="json")},
    )
    shutil.rmtree(batch_dir, ignore_errors=True)
    return IngestReport(**base, published=True, status="published", version_tag=version.tag,
                        manifest_uri=store.uri("dvc/"), docs_index=str(validation.docs_index),
                        validation_summary=validation.summary())
