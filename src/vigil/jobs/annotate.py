"""Annotate: explain every clip of the newest dataset version, check the explanations, and
publish a labelled version (manifest + frames + annotation table + annotator-quality report).

Annotation records are append-only in the store (``annotations/…``); the labelled version
carries, per sample, the chosen record: a current human one first, else the newest current one,
else the newest accepted one. ``reannotate`` redoes exactly the samples that need it: those whose
annotations are all stale (made under another prompt, taxonomy or annotator version), hard
examples (a model's prediction disagrees with the label) and those a person flagged. Switching
the annotator (synthetic → a teacher) makes every machine annotation stale, so that
``reannotate`` hands the whole version to the new annotator; human annotations stay.

A fake without ground-truth artifacts (a crawled clip from a real generator: only its source's claim
says it is fake) goes to the teacher when one is configured, label-conditioned like every clip.
Without a teacher, or when the teacher cannot ground it, it gets a ``label_only`` record
(:mod:`vigil.annotate.label_only`): the verdict without evidence, which training uses where a verdict
is enough and the Label Studio export queues for a person first. A label-only record is current for
the synthetic source (re-annotating cannot do better without a teacher) and stale for a teacher, so
``reannotate`` hands it to one; a grounded current record is always chosen over it.

One annotation run per workspace: :func:`annotate` holds ``workspace_lock(workspace, "annotate")``,
the lock the Label Studio import and export take as well (:mod:`vigil.jobs.labelstudio`), since all
of them write the annotation records and the registry a labelled version is made of. A second run is
refused with :class:`~vigil.io.locks.WorkspaceBusy` (exit 7) naming the holder. The staging folder of
a version is the run's own (``annotate/batches/<batch>-<random>``), removed when the run ends.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vigil.config.errors import ConfigError, NotFoundError
from vigil.config.params import AnnotateParams
from vigil.core.annotation import LABEL_ONLY_KIND, Annotation, annotation_row, is_current
from vigil.core.annotator_quality import quality_html, score_annotator
from vigil.core.hashing import sha256_json
from vigil.core.progress import ProgressCallback
from vigil.core.records import ArtifactTruth
from vigil.core.taxonomy import load_taxonomy
from vigil.io.annotations import load_annotations, open_flags, write_annotation
from vigil.io.locks import workspace_lock
from vigil.io.store import ObjectStore
from vigil.jobs.ingest import crawled_items, stage_batch
from vigil.jobs.runtime import Runtime

log = logging.getLogger(__name__)

#: The workspace lock of every job that writes annotation records or labelled versions.
ANNOTATE_LOCK = "annotate"


class AnnotateError(NotFoundError):
    """Annotation cannot start; the message says what to do first."""


@dataclass(frozen=True)
class TeacherEndpoint:
    """Where the teacher is (from settings: VIGIL_TEACHER_URL / _MODEL / _API_KEY)."""

    url: str
    model: str
    api_key: str | None = None


@dataclass(frozen=True)
class Versions:
    """The versions an annotation must carry to be current."""

    annotator: str
    kind: str
    prompt_version: str
    taxonomy_version: int
    annotator_version: str


@dataclass(frozen=True)
class AnnotateReport:
    status: str  # published | unchanged | rejected
    base_tag: str
    source: str
    annotator: str
    n_samples: int
    selected: dict[str, int]  # reason -> count of samples (re-)annotated this run
    n_accepted: int  # records accepted this run: grounded + label-only
    n_rejected: int
    rejection_reasons: dict[str, int] = field(default_factory=dict)
    version_tag: str | None = None
    quality: dict | None = None
    quality_report: str | None = None
    docs_index: str | None = None
    validation_summary: str = ""
    failed_expectations: tuple[str, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    n_grounded: int = 0  # accepted this run with grounded evidence (synthetic, teacher)
    n_label_only: int = 0  # accepted this run as label-only: a verdict without evidence
    n_queued_for_humans: int = 0  # samples whose chosen annotation is label-only: first in the Label Studio export

    def summary(self) -> str:
        reasons = f" {self.rejection_reasons}" if self.rejection_reasons else ""
        return (f"{self.status}; {self.source} ({self.annotator}) on {self.base_tag}; selected "
                f"{self.selected or 'nothing'}; {self.n_accepted} accepted ({self.n_grounded} grounded, "
                f"{self.n_label_only} label-only), {self.n_rejected} rejected{reasons}; "
                f"{self.n_queued_for_humans} queued for human grounding; labelled version {self.version_tag or '-'}")


def choose_source(params: AnnotateParams, teacher: TeacherEndpoint | None) -> str:
    if params.source == "teacher" and teacher is None:
        raise ConfigError("annotate.source is 'teacher' but VIGIL_TEACHER_URL is not set: point it at an "
                            "OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1) or use source: synthetic")
    if params.source == "auto":
        return "teacher" if teacher is not None else "synthetic"
    return params.source


def current_versions(source: str, params: AnnotateParams, teacher: TeacherEndpoint | None) -> Versions:
    from vigil.annotate.synthetic import SYNTHETIC_ANNOTATOR, SYNTHETIC_VERSION
    from vigil.core.grammar import PROMPT_VERSION

    prompt_version = params.prompt_version or PROMPT_VERSION
    taxonomy_version = load_taxonomy().version
    if source == "teacher":
        assert teacher is not None
        return Versions(teacher.model, "teacher", prompt_version, taxonomy_version, "1")
    return Versions(SYNTHETIC_ANNOTATOR, "synthetic", prompt_version, taxonomy_version, SYNTHETIC_VERSION)


def _current(a: Annotation, v: Versions) -> bool:
    if a.provenance.kind == LABEL_ONLY_KIND and v.kind == "synthetic":
        from vigil.annotate.label_only import LABEL_ONLY_ANNOTATOR, LABEL_ONLY_VERSION

        # the synthetic source's own answer for a clip without ground truth: current beside it
        return is_current(a.provenance, annotator=LABEL_ONLY_ANNOTATOR, prompt_version=v.prompt_version,
                          taxonomy_version=v.taxonomy_version, annotator_version=LABEL_ONLY_VERSION)
    return is_current(a.provenance, annotator=v.annotator, prompt_version=v.prompt_version,
                      taxonomy_version=v.taxonomy_version, annotator_version=v.annotator_version)


def choose_annotation(records: Iterable[Annotation], versions: Versions) -> Annotation | None:
    """The record a labelled version carries for one sample (see the module note): a current human
    one, else the newest current grounded one, else a current label-only one, else the newest
    accepted (grounded before label-only)."""
    accepted = [a for a in records if a.status == "accepted"]
    current = [a for a in accepted if _current(a, versions)]
    for pool in ([a for a in current if a.provenance.kind == "human"], [a for a in current if not a.label_only],
                 current, [a for a in accepted if not a.label_only], accepted):
        if pool:
            return max(pool, key=lambda a: a.created_at)
    return None


def select_samples(manifest: pd.DataFrame, annotations: Mapping[str, list[Annotation]], versions: Versions, *,
                   reannotate: bool, hard: Iterable[str] = (), flagged: Iterable[str] = ()) -> dict[str, str]:
    """Sample id → why it is (re-)annotated now: ``new``, ``stale``, ``hard`` or ``flagged``."""
    hard, flagged = set(hard), set(flagged)
    chosen: dict[str, str] = {}
    for sample_id, label in zip(manifest["sample_id"], manifest["label"]):
        if label not in ("real", "fake"):
            continue  # nothing to condition an explanation on
        records = annotations.get(sample_id, [])
        if not records:
            chosen[sample_id] = "new"
        elif not reannotate:
            continue
        elif sample_id in flagged:
            chosen[sample_id] = "flagged"
        elif sample_id in hard:
            chosen[sample_id] = "hard"
        elif not any(a.status == "accepted" and _current(a, versions) for a in records):
            chosen[sample_id] = "stale"
    return chosen


def hard_examples(predictions_path: str | Path, manifest: pd.DataFrame) -> set[str]:
    """Samples where a model's answer disagrees with the label, from a predictions JSON list.

    Rows name the sample by ``sample_id`` or by Skyra's ``video_id`` (``generator/base_id``, whose
    base id is the sample id) and give ``answer`` (raw model output, parsed with the grammar) or
    ``pred`` (real/fake). Unparsable answers count as disagreeing.
    """
    from vigil.core.grammar import parse

    try:
        rows = json.loads(Path(predictions_path).read_text())
    except (OSError, ValueError) as exc:
        raise AnnotateError(f"cannot read predictions {predictions_path}: {exc}") from exc
    if not isinstance(rows, list):
        raise AnnotateError(f"{predictions_path}: expected a JSON list of predictions")
    labels = dict(zip(manifest["sample_id"], manifest["label"]))
    hard: set[str] = set()
    for i, row in enumerate(rows):
        sample_id = row.get("sample_id") or str(row.get("video_id", "")).rsplit("/", 1)[-1]
        if sample_id not in labels:
            log.warning("prediction %d names unknown sample %r; ignored", i, sample_id)
            continue
        predicted = row.get("pred") or parse(str(row.get("answer", ""))).label
        if predicted != labels[sample_id]:
            hard.add(sample_id)
    return hard


def _ground_truth(store: ObjectStore) -> tuple[dict[str, tuple[ArtifactTruth, ...]], dict[str, str | None]]:
    items = crawled_items(store)
    return ({i.sha256: i.artifacts for i in items},
            {i.sha256: (store.uri(i.mask_key) if i.mask_key else None) for i in items})


def _produce(selected: Mapping[str, str], manifest: pd.DataFrame, source: str, versions: Versions,
             params: AnnotateParams, teacher: TeacherEndpoint | None, workspace: Path,
             truth: Mapping[str, tuple[ArtifactTruth, ...]], masks: Mapping[str, str | None],
             flags: Mapping[str, dict], progress: ProgressCallback | None) -> list[Annotation]:
    from vigil.annotate.label_only import label_only_annotation

    rows = manifest.set_index("sample_id").loc[list(selected)]
    if source == "synthetic":
        from vigil.annotate.synthetic import synthetic_annotation

        out = []
        for done, (sample_id, row) in enumerate(rows.iterrows(), start=1):
            mask_uri = masks.get(sample_id)
            mask_uris = {a.mask_index: mask_uri for a in truth.get(sample_id, ()) if a.mask_index is not None and mask_uri}
            if row["label"] == "fake" and not truth.get(sample_id):  # only its source's claim: keep the verdict
                ann = label_only_annotation(sample_id, "fake", prompt_version=versions.prompt_version,
                                            taxonomy_version=versions.taxonomy_version)
            else:
                ann = synthetic_annotation(sample_id, row["label"], truth.get(sample_id, ()), float(row["duration_s"]),
                                           prompt_version=versions.prompt_version,
                                           taxonomy_version=versions.taxonomy_version, mask_uris=mask_uris)
            out.append(_with_flag(ann, flags.get(sample_id)))
            if progress:
                progress("annotate", done, len(rows))
        return out
    from vigil.annotate.teacher import TeacherConfig, TeacherRequest, annotate_batch_sync

    assert teacher is not None
    config = TeacherConfig(
        base_url=teacher.url, model=teacher.model, api_key=teacher.api_key,
        max_concurrency=params.max_concurrency, requests_per_minute=params.requests_per_minute,
        timeout_s=params.timeout_s, max_retries=params.max_retries, max_repairs=params.max_repairs,
        temperature=params.temperature, max_tokens=params.max_tokens, max_frames=params.max_frames,
        cost_per_1k_prompt_tokens=params.cost_per_1k_prompt_tokens,
        cost_per_1k_completion_tokens=params.cost_per_1k_completion_tokens,
        prompt_version=versions.prompt_version, annotator_version=versions.annotator_version,
    )
    samples_dir = workspace / "ingest" / "samples"
    requests = []
    for sample_id, row in rows.iterrows():
        frames_dir = samples_dir / sample_id / "frames"
        if not (frames_dir / "timestamps.txt").is_file():
            raise AnnotateError(f"frames of {sample_id} are not in {frames_dir}: run `vigil ingest` in this workspace first")
        requests.append(TeacherRequest(sample_id, row["label"], float(row["duration_s"]), frames_dir))
    out = []
    for a in annotate_batch_sync(requests, config, progress=progress):
        out.append(_with_flag(a, flags.get(a.sample_id)))
        if a.status == "rejected" and a.label == "fake":  # the teacher could not ground it: keep the verdict
            out.append(_with_flag(label_only_annotation(a.sample_id, "fake", prompt_version=versions.prompt_version,
                                                        taxonomy_version=versions.taxonomy_version),
                                  flags.get(a.sample_id)))
    return out


def _with_flag(annotation: Annotation, flag: dict | None) -> Annotation:
    return annotation.model_copy(update={"flagged_by": flag["by"]}) if flag else annotation


def annotate(
    rt: Runtime,
    *,
    teacher: TeacherEndpoint | None = None,
    reannotate: bool = False,
    predictions: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> AnnotateReport:
    """Annotate what needs it, validate the annotation table, publish a labelled version (under the
    workspace's annotate lock: :class:`~vigil.io.locks.WorkspaceBusy` while another run holds it)."""
    with workspace_lock(rt.workspace, ANNOTATE_LOCK):
        return _annotate(rt, teacher=teacher, reannotate=reannotate, predictions=predictions, progress=progress)


def _annotate(rt: Runtime, *, teacher: TeacherEndpoint | None, reannotate: bool, predictions: str | Path | None,
              progress: ProgressCallback | None) -> AnnotateReport:
    from vigil.io.registry import files_at, latest_version, open_registry, publish_version, read_manifest_at
    from vigil.io.validation import validate_annotations

    store, workspace, params, ledger = rt.store, rt.workspace, rt.params, rt.ledger
    cfg = params.annotate
    source = choose_source(cfg, teacher)
    versions = current_versions(source, cfg, teacher)
    registry = open_registry(workspace / "registry", store)
    latest = latest_version(registry)
    if latest is None:
        raise AnnotateError("no dataset version to annotate yet: run `vigil run` or `vigil ingest` first")
    manifest = read_manifest_at(registry, latest.tag)
    ids = list(manifest["sample_id"])
    existing = load_annotations(store, ids)
    flags = open_flags(store, existing)
    hard = hard_examples(predictions, manifest) if predictions else set()
    selected = select_samples(manifest, existing, versions, reannotate=reannotate, hard=hard, flagged=flags)
    truth, masks = _ground_truth(store)
    produced = (_produce(selected, manifest, source, versions, cfg, teacher, workspace, truth, masks, flags, progress)
                if selected else [])
    for annotation in produced:
        write_annotation(store, annotation)
        existing.setdefault(annotation.sample_id, []).append(annotation)

    labels = dict(zip(manifest["sample_id"], manifest["label"]))
    chosen = {sid: choose_annotation(existing.get(sid, []), versions) for sid in ids}
    table = pd.DataFrame([annotation_row(sid, labels[sid], chosen[sid]) for sid in ids])
    rejected = [a for a in produced if a.status == "rejected"]
    label_only = [a for a in produced if a.status == "accepted" and a.label_only]
    reasons: dict[str, int] = {}
    for a in rejected:
        key = (a.rejection_reason or "unknown").split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    base = dict(base_tag=latest.tag, source=source, annotator=versions.annotator, n_samples=len(ids),
                selected={r: list(selected.values()).count(r) for r in sorted(set(selected.values()))},
                n_accepted=len(produced) - len(rejected), n_rejected=len(rejected), rejection_reasons=reasons,
                n_grounded=len(produced) - len(rejected) - len(label_only), n_label_only=len(label_only),
                n_queued_for_humans=sum(1 for c in chosen.values() if c is not None and c.label_only),
                prompt_tokens=sum(a.usage.prompt_tokens for a in produced),
                completion_tokens=sum(a.usage.completion_tokens for a in produced),
                cost_usd=round(sum(a.usage.cost_usd for a in produced), 6))

    content_id = sha256_json({"manifest": latest.manifest_md5,
                              "annotations": [c.annotation_id if c else None for c in chosen.values()]})
    if "annotations.parquet" in files_at(registry, latest.tag) and latest.metadata.get("content_id") == content_id:
        return AnnotateReport(status="unchanged", version_tag=latest.tag, **base)

    batch = content_id[:16]
    docs_dir = workspace / "reports" / "annotation-docs" / batch
    validation = validate_annotations(table, cfg, docs_dir)
    quality = score_annotator({s: a for s, a in chosen.items() if a is not None}, labels, truth, versions.annotator)
    reports_dir = workspace / "reports" / "annotator-quality"
    reports_dir.mkdir(parents=True, exist_ok=True)
    quality_json = reports_dir / f"{batch}.json"
    quality_json.write_text(json.dumps(quality.to_dict(), indent=2))
    quality_page = reports_dir / f"{batch}.html"
    quality_page.write_text(quality_html(quality, title=f"Annotator quality: {versions.annotator} on {latest.tag}"))
    store.put_file(f"reports/annotator-quality/{batch}.json", quality_json, content_type="application/json")
    store.put_file(f"reports/annotator-quality/{batch}.html", quality_page, content_type="text/html")
    batches = workspace / "annotate" / "batches"
    batches.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f"{batch}-", dir=batches))  # this run's own: never shared, never reused
    try:
        table_path = stage / "annotations.parquet"
        table.to_parquet(table_path, index=False)
        base.update(quality=quality.to_dict(), quality_report=str(quality_page),
                    docs_index=str(validation.docs_index), validation_summary=validation.summary())
        inputs = {"dataset": latest.tag, "manifest_md5": latest.manifest_md5,
                  "annotations": sha256_json(sorted(c.annotation_id for c in chosen.values() if c))}

        if not validation.success:
            qkey = f"quarantine/annotations/{batch}"
            store.put_file(f"{qkey}/annotations.parquet", table_path)
            store.put_json(f"{qkey}/reason.json", {"reason": "validation_failed",
                                                   "failed_expectations": validation.failed_names(),
                                                   "detail": validation.summary()})
            ledger.append("annotation.reject", inputs=inputs, outputs={"quarantine": store.uri(qkey)},
                          params={"annotate": cfg.model_dump(mode="json"), "source": source})
            return AnnotateReport(status="rejected", failed_expectations=tuple(validation.failed_names()), **base)

        manifest_path, frames_root = stage_batch(manifest, workspace / "ingest" / "samples", stage / "version")
        version = publish_version(
            registry, manifest_path, frames_root, move=True,
            message=f"labelled: {len(ids)} samples annotated by {versions.annotator} ({source})",
            extra_files={"annotations.parquet": table_path, "annotator_quality.json": quality_json},
            metadata={"kind": "labelled", "base_tag": latest.tag, "content_id": content_id, "source": source,
                      "annotator": versions.annotator, "prompt_version": versions.prompt_version,
                      "taxonomy_version": versions.taxonomy_version, "annotator_quality": quality.to_dict(),
                      "label_only": base["n_queued_for_humans"],
                      "counts": latest.metadata.get("counts", {})},
        )
        ledger.append("annotation.publish", inputs=inputs,
                      outputs={"tag": version.tag, "git_rev": version.git_rev, "manifest_md5": version.manifest_md5,
                               "annotations": [a.annotation_id for a in produced],
                               "quality_report": store.uri(f"reports/annotator-quality/{batch}.json")},
                      params={"annotate": cfg.model_dump(mode="json"), "source": source,
                              "annotator": versions.annotator, "selected": base["selected"]})
        return AnnotateReport(status="published", version_tag=version.tag, **base)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
