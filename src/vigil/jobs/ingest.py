"""Ingest: crawled clips → probed, frame-sampled, split, validated → a published dataset version.

One run at a time: :func:`ingest` holds the workspace's ``ingest`` lock (:mod:`vigil.io.locks`) for
the whole job, and a second run is refused at once with :class:`~vigil.io.locks.WorkspaceBusy`
(exit 7) naming the holder: it would only redo the same work, and two runs over one sample cache
used to publish half a dataset and quarantine good clips. Scratch paths are per run all the same
(downloads get a pid + random name, the staged batch a folder of its own), and publishing still
queues on the registry's DVC lock.

Resumable by construction: each clip's work lands in ``<workspace>/ingest/samples/<sha>/`` and is
marked done only by the last, atomic write (``row.json`` or ``quarantined.json``), so a run killed
half-way redoes at most the clips it was working on. What is left out of a version, and for how long:

* a clip that cannot be probed or sampled (:class:`MediaError`): quarantined, cached for good;
* a row that fails a **row-level** expectation (vigil.io.validation: an fps, a size, a generator no
  one allows, a label its source never claimed…): quarantined as ``validation:<expectation>`` with the
  column, value, bound and the setting to change, cached with the settings it was judged by (a change
  to ``validation`` or to a source's ``label``/``generator`` in params.yaml judges it again); the rest
  of the batch is validated again and published. One bad clip never rejects a batch;
* a sample an operator excluded (:func:`exclude_sample`, ``vigil data exclude``): cached for good;
* a raw object missing from the store (``missing_raw``): quarantined for this run only and never
  cached, so an object restored from a backup is picked up by the next run;
* a store that fails (:class:`~vigil.io.store.StoreError`) is no verdict on the clip: it propagates,
  the run fails cleanly, and a later run resumes.

A batch that fails a **batch-level** expectation (row count, class balance, uniqueness, split
hygiene) is quarantined whole, recorded as ``dataset.reject`` and not published; the report says
which ``params.yaml`` setting to change.

There is no merge step: every run rebuilds the manifest from every crawl record in the store, so the
table validated is the whole version that would be published (the previous version's rows, old reals
included, unless quarantined or excluded since, plus the new ones). Class balance is therefore judged
on the version, not on what one crawl brought; the previous version's sample ids only let the advice
tell the new rows' share apart.

What a source says in params.yaml is a claim about each of its clips: a clip recorded with label or
generator ``unknown`` takes its source's ``crawl.sources[*].label`` / ``.generator`` when set
(:func:`with_source_claims`), so setting them fixes clips crawled before, without a re-crawl.

Publishing is the registry's all-or-nothing commit + tag, then the ``dataset.publish`` ledger event.
A run killed between the two leaves a version with no event; the next run finds its content already
published and reconciles: it appends the missing event (``outputs.repaired: true``) instead of
silently taking the "unchanged" path.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from vigil.config.errors import InputError, NotFoundError
from vigil.config.params import Params
from vigil.core.hashing import sha256_json
from vigil.core.phash import is_near_duplicate
from vigil.core.progress import ProgressCallback
from vigil.core.records import CrawledItem, labels_conflict
from vigil.core.sample import Sample, write_manifest
from vigil.core.splits import assign_splits
from vigil.io.ledger import default_actor, find_events
from vigil.io.locks import workspace_lock
from vigil.io.media.errors import MediaError
from vigil.io.media.frame_folder import sample_frames
from vigil.io.media.probing import probe
from vigil.io.store import ObjectStore, quarantine
from vigil.jobs.runtime import Runtime

log = logging.getLogger(__name__)

LOCK_NAME = "ingest"
DONE_FILE, QUARANTINED_FILE = "row.json", "quarantined.json"
MISSING_RAW = "missing_raw"
EXCLUDED = "excluded"
VALIDATION_PREFIX = "validation:"
MIN_PREFIX = 8  # shortest sample id prefix `vigil data exclude` accepts


@dataclass(frozen=True)
class IngestProblem:
    sample_id: str
    reason: str
    detail: str
    quarantine_key: str | None = None
    stage: str = "prepare"  # prepare | validate | exclude
    judged_with: str | None = None  # validation: digest of the settings that judged it (see validation_digest)

    @classmethod
    def from_json(cls, value: dict) -> IngestProblem:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in known})


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
    repaired: bool = False  # the version's missing dataset.publish event was recorded by this run
    batch_problems: tuple[str, ...] = ()  # batch-level failures, each naming the setting to change

    @property
    def quarantined_rows(self) -> tuple[IngestProblem, ...]:
        """Rows left out by validation in this run or an earlier one (the rest of ``problems`` are media)."""
        return tuple(p for p in self.problems if p.stage == "validate")

    def summary(self) -> str:
        repaired = f"; recorded the missing dataset.publish event of {self.version_tag}" if self.repaired else ""
        return (f"{self.status}; {self.n_samples} samples ({self.n_new} new), {len(self.problems)} quarantined; "
                f"version {self.version_tag or '-'}{repaired}")


@dataclass(frozen=True)
class Exclusion:
    """What :func:`exclude_sample` did."""

    sample_id: str
    reason: str
    actor: str
    quarantine_key: str
    in_latest_version: str | None  # the newest dataset version that still holds it, if any


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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def scratch_media_path(sample_dir: Path, media_key: str | None) -> Path:
    """A download name no other call uses (pid + random), so no two runs or threads share one file."""
    return sample_dir / f".media-{os.getpid()}-{uuid.uuid4().hex}{Path(media_key or '').suffix}"


def validation_digest(params: Params) -> str:
    """Digest of what a row-level verdict depends on: the validation settings, the allowed generators
    and what the sources claim (a label set on a source turns its clips' ``unknown`` into one)."""
    from vigil.io.validation import source_claims

    claims = [[c.name, c.label, c.generator] for c in source_claims(params.crawl.sources).values()]
    return sha256_json({"validation": params.validation.model_dump(mode="json"),
                        "generators": list(allowed_generators(params)), "sources": claims})


def cached_problem(sample_dir: Path, params: Params) -> IngestProblem | None:
    """The sample's cached quarantine, if it still holds: a validation verdict made under other
    validation settings is stale (the sample is judged again)."""
    path = sample_dir / QUARANTINED_FILE
    if not path.is_file():
        return None
    problem = IngestProblem.from_json(json.loads(path.read_text()))
    if problem.stage == "validate" and problem.judged_with != validation_digest(params):
        return None
    return problem


def prepare_sample(item: CrawledItem, store: ObjectStore, samples_dir: Path, params: Params) -> dict | IngestProblem:
    """Probe and frame-sample one clip into ``samples_dir/<sha>/``; cached across runs.

    A quarantine (``quarantined.json``) wins over a prepared row: a sample excluded or refused by
    validation after it was prepared stays out. A raw object missing from the store is quarantined
    for this run only; any other store failure propagates.
    """
    sample_dir = samples_dir / item.sha256
    done, rejected = sample_dir / DONE_FILE, sample_dir / QUARANTINED_FILE
    problem = cached_problem(sample_dir, params)
    if problem is not None:
        return problem
    if done.is_file():
        return json.loads(done.read_text())
    sample_dir.mkdir(parents=True, exist_ok=True)
    for leftover in sample_dir.glob("*.media*"):  # a killed run's download and its .part (we hold the lock)
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
    media_path = scratch_media_path(sample_dir, item.media_key)
    try:
        try:
            store.download(item.media_key, media_path)  # type: ignore[arg-type]
        except KeyError:
            return _missing_raw(item, store)
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


def _missing_raw(item: CrawledItem, store: ObjectStore) -> IngestProblem:
    """The crawl record names an object the store does not have: leave the sample out of this run,
    but cache nothing, so that the object, once restored, is ingested by the next run."""
    detail = f"raw object {store.uri(item.media_key or '')} is missing from the store (crawled from {item.media_url})"
    log.warning("%s: %s", item.sha256[:12], detail)
    key = quarantine(store, reason=MISSING_RAW, detail=detail, source=item.media_key or item.media_url,
                     extra={"sample_id": item.sha256, "stage": "ingest", "media_url": item.media_url})
    return IngestProblem(item.sha256, MISSING_RAW, detail, key)


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


def with_source_claims(item: CrawledItem, params: Params) -> CrawledItem:
    """``item`` with its source's ``label`` / ``generator`` from params.yaml where the crawl recorded
    ``unknown`` (the user who wrote them meant every clip of the source); a claim the clip itself
    made wins. Read with ``getattr``: params files whose sources have no such settings change nothing."""
    source = next((s for s in params.crawl.sources if s.name == item.source), None)
    label, generator = getattr(source, "label", None), getattr(source, "generator", None)
    update: dict[str, str] = {}
    if item.label == "unknown" and label in ("real", "fake"):
        update["label"] = label
    if item.generator == "unknown" and generator:
        update["generator"] = str(generator)
    elif item.generator == "unknown" and update.get("label") == "real":
        update["generator"] = "real"  # the zoo's convention for camera footage (SourceParams.label)
    return item.model_copy(update=update) if update else item


def build_manifest(items: Iterable[CrawledItem], prepared: dict[str, dict], params: Params) -> pd.DataFrame:
    items = [with_source_claims(i, params) for i in items if i.sha256 in prepared]
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
    """Generators a row may claim: ``validation.allowed_generators`` (default: real, unknown and the
    zoo's), plus every generator a source names in ``crawl.sources[*].generator`` (the user who wrote
    it meant it). Generators a source derives from URL paths are not known in advance: they must be
    listed in ``validation.allowed_generators``, and the refusal says so."""
    if params.validation.allowed_generators is not None:
        base: tuple[str, ...] = tuple(params.validation.allowed_generators)
    else:
        from vigil.zoo.generators import GENERATORS

        base = ("real", "unknown", *sorted(GENERATORS))
    named = [str(g) for s in params.crawl.sources if (g := getattr(s, "generator", None))]
    return (*base, *sorted(set(named) - set(base)))


def ingest(rt: Runtime, *, progress: ProgressCallback | None = None, wait_s: float = 0.0) -> IngestReport:
    """Turn everything crawled so far into the next dataset version, if it passes validation.

    Holds the workspace's ``ingest`` lock throughout; another run holding it makes this one wait up
    to ``wait_s`` and then raise :class:`~vigil.io.locks.WorkspaceBusy` naming the holder.
    """
    with workspace_lock(rt.workspace, LOCK_NAME, wait_s=wait_s):
        return _ingest_locked(rt, progress)


def _prepare_all(rt: Runtime, items: list[CrawledItem], samples_dir: Path,
                 progress: ProgressCallback | None) -> tuple[dict[str, dict], list[IngestProblem]]:
    prepared: dict[str, dict] = {}
    problems: list[IngestProblem] = []
    with ThreadPoolExecutor(max_workers=rt.params.ingest.workers) as pool:
        futures = {pool.submit(prepare_sample, item, rt.store, samples_dir, rt.params): item for item in items}
        for done_count, future in enumerate(as_completed(futures), start=1):
            item = futures[future]
            result = future.result()  # a StoreError propagates: the run fails and resumes later
            if isinstance(result, IngestProblem):
                problems.append(result)
            else:
                prepared[item.sha256] = result
            if progress:
                progress("ingest", done_count, len(items))
    return prepared, problems


def _ingest_locked(rt: Runtime, progress: ProgressCallback | None) -> IngestReport:
    from vigil.io.registry import list_versions, open_registry
    from vigil.io.validation import validate_manifest

    store, workspace, params = rt.store, rt.workspace, rt.params
    samples_dir = workspace / "ingest" / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workspace / "ingest" / "batches", ignore_errors=True)  # killed runs' staging; we hold the lock
    items = crawled_items(store)
    n_new = sum(1 for i in items if not (samples_dir / i.sha256 / DONE_FILE).is_file()
                and not (samples_dir / i.sha256 / QUARANTINED_FILE).is_file())
    prepared, problems = _prepare_all(rt, items, samples_dir, progress)
    registry = None
    previous = None
    params_hash = sha256_json(params.model_dump(mode="json"))
    while True:  # each round quarantines the rows validation refused and judges the rest again
        df = build_manifest(items, prepared, params)
        base = dict(n_crawled=len(items), n_samples=len(df), n_new=n_new, problems=tuple(problems),
                    counts=_batch_counts(df))
        if df.empty:
            return IngestReport(**base, published=False, status="empty")
        registry = registry or open_registry(workspace / "registry", store)
        content_id = sha256_json({"samples": sorted(df["sample_id"]), "params": params_hash})
        # Labelled versions (kind "labelled") sit on top of a dataset version; compare with the
        # newest version ingest itself made, so that a re-run with nothing new changes nothing.
        datasets = [v for v in list_versions(registry) if v.metadata.get("kind", "dataset") == "dataset"]
        if datasets and datasets[-1].metadata.get("content_id") == content_id:
            repaired = _reconcile_publish_event(rt, datasets[-1], df, params_hash)
            return IngestReport(**base, published=False, status="unchanged", version_tag=datasets[-1].tag,
                                manifest_uri=datasets[-1].metadata.get("manifest_uri"), repaired=repaired)
        docs_dir = workspace / "reports" / "data-docs" / content_id[:16]
        previous = previous or _previous_version(registry, datasets)
        validation = validate_manifest(df, params.validation, allowed_generators(params), docs_dir,
                                       sources=params.crawl.sources, previous=previous)
        refused = {sid: why for sid, why in validation.rejected_rows().items() if sid in prepared}
        if not refused:  # nothing to quarantine row by row: the batch is judged as it is
            break
        for sample_id, rejections in sorted(refused.items()):
            problems.append(_quarantine_row(rt, samples_dir, df, sample_id, rejections))
            prepared.pop(sample_id, None)
    return _judge_batch(rt, registry, df, validation, base, content_id, params_hash, n_new)


def _previous_version(registry: Any, datasets: list) -> Any:
    """The newest dataset version's tag and sample ids (None before the first): class-balance advice
    tells the new rows from those the version already held."""
    from vigil.io.registry import read_manifest_at
    from vigil.io.validation import PreviousVersion

    if not datasets:
        return None
    tag = datasets[-1].tag
    return PreviousVersion(tag, frozenset(read_manifest_at(registry, tag)["sample_id"]))


def _quarantine_row(rt: Runtime, samples_dir: Path, df: pd.DataFrame, sample_id: str,
                    rejections: list) -> IngestProblem:
    """Quarantine one row validation refused, and cache the verdict with the settings that made it."""
    row = df.loc[df["sample_id"] == sample_id].iloc[0]
    first = rejections[0]
    reason = f"{VALIDATION_PREFIX}{first.expectation}"
    detail = "; ".join(r.describe() for r in rejections)
    key = quarantine(rt.store, reason=reason, detail=detail, source=str(row["media_key"]),
                     extra={"sample_id": sample_id, "stage": "validate", "column": first.column,
                            "value": first.value, "bound": first.bound, "hint": first.hint,
                            "source": str(row["source"]),
                            "expectations": [r.expectation for r in rejections]})
    problem = IngestProblem(sample_id, reason, detail, key, stage="validate", judged_with=validation_digest(rt.params))
    sample_dir = samples_dir / sample_id
    sample_dir.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(sample_dir / QUARANTINED_FILE, problem.__dict__)
    log.warning("quarantined %s: %s (%s)", sample_id[:12], reason, detail)
    return problem


def _publish_event_fields(version: Any, df: pd.DataFrame, params: Params, params_hash: str,
                          validation_report: str | None) -> dict[str, Any]:
    """The ``dataset.publish`` event of ``version``: the same facts whether recorded at once or repaired."""
    return dict(
        inputs={"samples": version.metadata.get("content_id"), "n_samples": len(df), "params_sha256": params_hash,
                "crawl_records": sha256_json(sorted(df["sample_id"]))},
        outputs={"tag": version.tag, "git_rev": version.git_rev, "manifest_md5": version.manifest_md5,
                 "frames_md5": version.frames_md5, "validation_report": validation_report},
        params={"ingest": params.ingest.model_dump(mode="json"),
                "validation": params.validation.model_dump(mode="json")},
    )


def _reconcile_publish_event(rt: Runtime, version: Any, df: pd.DataFrame, params_hash: str) -> bool:
    """Append the ``dataset.publish`` event of ``version`` if the ledger has none (a run killed after
    ``git tag`` and before the ledger append); True when it did."""
    if find_events(rt.ledger.store, "dataset.publish", tag=version.tag):
        return False
    event = _publish_event_fields(version, df, rt.params, params_hash, version.metadata.get("validation_report"))
    event["outputs"]["repaired"] = True
    rt.ledger.append("dataset.publish", **event)
    log.warning("dataset version %s had no dataset.publish event (an interrupted run); recorded it now", version.tag)
    return True


def _judge_batch(rt: Runtime, registry: Any, df: pd.DataFrame, validation: Any, base: dict, content_id: str,
                 params_hash: str, n_new: int) -> IngestReport:
    """Reject the batch on a batch-level failure, else publish it and record ``dataset.publish``."""
    from vigil.io.registry import publish_version

    store, params, ledger = rt.store, rt.params, rt.ledger
    batch_dir = rt.workspace / "ingest" / "batches" / f"{content_id[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    manifest_path, frames_root = stage_batch(df, rt.workspace / "ingest" / "samples", batch_dir)
    validation_record = {
        "success": validation.success, "statistics": dict(validation.statistics),
        "expectations": [{"name": e.name, "success": e.success, "observed": e.observed, "scope": e.scope,
                          **({"advice": e.advice} if e.advice else {})} for e in validation.expectations],
        "notes": list(validation.notes),
    }
    report_key = f"reports/validation/{content_id[:16]}.json"
    store.put_json(report_key, validation_record)
    common_inputs = {"samples": content_id, "n_samples": len(df), "params_sha256": params_hash}
    docs_index = str(validation.docs_index) if validation.docs_index else None

    if not validation.success:
        advice = tuple(f"{e.name}: {e.advice}" for e in validation.batch_failures)
        qkey = f"quarantine/batches/{content_id[:16]}"
        store.put_file(f"{qkey}/manifest.parquet", manifest_path)
        store.put_json(f"{qkey}/reason.json", {
            "reason": "validation_failed", "failed_expectations": validation.failed_names(),
            "detail": validation.summary(), "advice": list(advice), "validation_report": report_key,
        })
        ledger.append("dataset.reject", inputs=common_inputs,
                      outputs={"quarantine": store.uri(qkey), "validation_report": store.uri(report_key)},
                      params={"validation": params.validation.model_dump(mode="json")})
        shutil.rmtree(batch_dir, ignore_errors=True)
        return IngestReport(**base, published=False, status="rejected", docs_index=docs_index,
                            validation_summary=validation.summary(), batch_problems=advice,
                            failed_expectations=tuple(validation.failed_names()))

    version = publish_version(
        registry, manifest_path, frames_root, move=True,  # the staged batch is hard links: hand it over
        message=f"dataset: {len(df)} samples ({n_new} new)",
        metadata={"kind": "dataset", "content_id": content_id, "params_sha256": params_hash,
                  "counts": _batch_counts(df),
                  "validation_report": store.uri(report_key), "manifest_uri": store.uri("dvc/")},
    )
    ledger.append("dataset.publish", **_publish_event_fields(version, df, params, params_hash, store.uri(report_key)))
    shutil.rmtree(batch_dir, ignore_errors=True)
    return IngestReport(**base, published=True, status="published", version_tag=version.tag,
                        manifest_uri=store.uri("dvc/"), docs_index=docs_index,
                        validation_summary=validation.summary())


# ---------------------------------------------------------------------------------------------
# exclusion: what validation cannot judge


def _known_sample_ids(rt: Runtime) -> set[str]:
    """Every sample id crawled (from provenance keys, one listing) or prepared in this workspace."""
    ids = {key.split("/")[2] for key in rt.store.list_keys("provenance/") if key.count("/") >= 3}
    samples_dir = rt.workspace / "ingest" / "samples"
    if samples_dir.is_dir():
        ids |= {p.name for p in samples_dir.iterdir() if p.is_dir()}
    return ids


def resolve_sample_id(rt: Runtime, given: str) -> str:
    """The full sample id for a full sha256 or a unique prefix of at least 8 hex characters."""
    text = given.strip().lower()
    if len(text) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in text):
        raise InputError(f"sample {given!r} is not a sample id: give its sha256 (64 hex characters) or at least "
                         f"{MIN_PREFIX} of its first characters (the sample_id column of a manifest)")
    matches = sorted(i for i in _known_sample_ids(rt) if i.startswith(text))
    if not matches:
        raise NotFoundError(f"no crawled sample has an id starting with {text!r} in {rt.store.uri('provenance/')}: "
                            "check the id (the sample_id column of a manifest)")
    if len(matches) > 1:
        shown = ", ".join(m[:16] for m in matches[:5])
        raise InputError(f"sample prefix {text!r} matches {len(matches)} samples ({shown}…): give more characters")
    return matches[0]


def _media_key_of(rt: Runtime, sample_id: str) -> str | None:
    for key in rt.store.list_keys(f"provenance/{sample_id[:2]}/{sample_id}/"):
        try:
            return CrawledItem.model_validate(rt.store.get_json(key)).media_key
        except Exception:  # a damaged record: try the next sighting
            continue
    return None


def excluded_samples(workspace: Path) -> list[str]:
    """Ids of the samples an operator excluded (their cached quarantine says ``excluded``)."""
    out = []
    for path in sorted((Path(workspace) / "ingest" / "samples").glob(f"*/{QUARANTINED_FILE}")):
        try:
            if json.loads(path.read_text()).get("reason") == EXCLUDED:
                out.append(path.parent.name)
        except (OSError, ValueError):
            continue
    return out


def exclude_sample(rt: Runtime, sample_id: str, reason: str, *, actor: str | None = None) -> Exclusion:
    """Leave a sample out of every later version, for a reason validation cannot judge (a clip that is
    mislabelled, licensed wrongly, or shows a person who asked to be removed).

    Writes a quarantine record (reason ``excluded``), the sample's cached ``quarantined.json`` (so the
    next ingest leaves it out and publishes a version without it) and a ``dataset.exclude`` ledger
    event. Takes the ingest lock: a running ingest must not read the cache half-written.
    """
    from vigil.io.registry import list_versions, open_registry, read_manifest_at

    text = reason.strip()
    if not text:
        raise InputError("--reason is empty: say why the sample is excluded (it goes into the ledger)")
    actor = actor or default_actor()
    with workspace_lock(rt.workspace, LOCK_NAME):
        full = resolve_sample_id(rt, sample_id)
        source = _media_key_of(rt, full) or f"sample:{full}"
        detail = f"excluded by {actor}: {text}"
        key = quarantine(rt.store, reason=EXCLUDED, detail=detail, source=source,
                         extra={"sample_id": full, "stage": "exclude", "actor": actor, "operator_reason": text})
        sample_dir = rt.workspace / "ingest" / "samples" / full
        sample_dir.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(sample_dir / QUARANTINED_FILE,
                           IngestProblem(full, EXCLUDED, detail, key, stage="exclude").__dict__)
        rt.ledger.append("dataset.exclude", inputs={"sample_id": full, "reason": text},
                         outputs={"quarantine": rt.store.uri(key)}, actor=actor)
        holder = None
        registry_path = rt.workspace / "registry"
        if registry_path.is_dir():
            registry = open_registry(registry_path, rt.store)
            datasets = [v for v in list_versions(registry) if v.metadata.get("kind", "dataset") == "dataset"]
            if datasets and full in set(read_manifest_at(registry, datasets[-1].tag)["sample_id"]):
                holder = datasets[-1].tag
    log.info("excluded %s: %s", full, text)
    return Exclusion(full, text, actor, key, holder)
