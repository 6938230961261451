"""Human annotation through Label Studio: export a labelled version as tasks, import exports back.

Both hold the workspace's ``annotate`` lock (:data:`vigil.jobs.annotate.ANNOTATE_LOCK`), the one the
annotate job holds: an import writes the annotation records a labelled version is chosen from, and
an export opens the data registry the annotate job publishes to, so none of them runs beside another;
a second is refused with :class:`~vigil.io.locks.WorkspaceBusy` (exit 7) naming the holder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vigil.config.errors import NotFoundError
from vigil.core.annotation import Annotation
from vigil.core.hashing import sha256_file
from vigil.core.taxonomy import load_taxonomy
from vigil.io.annotations import write_annotation
from vigil.io.locks import workspace_lock
from vigil.io.store import ObjectStore
from vigil.jobs.annotate import ANNOTATE_LOCK
from vigil.jobs.runtime import Runtime


@dataclass(frozen=True)
class ExportReport:
    tasks_path: Path
    tag: str
    n_tasks: int
    config_path: Path | None
    n_needs_grounding: int = 0  # label-only tasks, first in the file: a person grounds these first


@dataclass(frozen=True)
class ImportReport:
    n_imported: int
    problems: tuple[str, ...]


def export_version(rt: Runtime, out_path: str | Path, *, tag: str | None = None,
                   media_base_url: str = "/data/local-files/?d=", config_path: str | Path | None = None) -> ExportReport:
    """Tasks for every sample of a labelled version, its chosen annotation as the pre-annotation.

    Label-only samples (a verdict without grounded evidence) are queued for a person: first in the
    file and flagged ``needs_grounding`` (:mod:`vigil.annotate.labelstudio.export`); the human
    annotation imported back overrides the label-only one in the next labelled version.
    Media and frame URLs are ``media_base_url`` + the store key, which is how Label Studio's
    local-files or cloud-storage source reaches the same objects.
    """
    with workspace_lock(rt.workspace, ANNOTATE_LOCK):
        return _export_version(rt, out_path, tag=tag, media_base_url=media_base_url, config_path=config_path)


def _export_version(rt: Runtime, out_path: str | Path, *, tag: str | None, media_base_url: str,
                    config_path: str | Path | None) -> ExportReport:
    import pandas as pd

    from vigil.annotate.labelstudio.config import labeling_config
    from vigil.annotate.labelstudio.export import ExportItem, export_tasks
    from vigil.io.registry import file_at, files_at, latest_version, list_versions, open_registry, read_manifest_at

    store = rt.store
    registry = open_registry(rt.workspace / "registry", store)
    version = latest_version(registry) if tag is None else next((v for v in list_versions(registry) if v.tag == tag), None)
    if version is None:
        raise NotFoundError(f"no dataset version {tag or ''} to export: run `vigil run` first")
    if "annotations.parquet" not in files_at(registry, version.tag):
        raise NotFoundError(f"{version.tag} is not a labelled version: run `vigil annotate` first")
    manifest = read_manifest_at(registry, version.tag).set_index("sample_id")
    table = pd.read_parquet(file_at(registry, version.tag, "annotations.parquet"))
    annotations = _chosen_records(store, table)
    items = []
    for sample_id, row in manifest.iterrows():
        frames = [f"{media_base_url}frames/{row['frames_dir']}/{i}.png" for i in range(1, int(row["n_frames"]) + 1)]
        items.append(ExportItem(sample_id=sample_id, video_url=f"{media_base_url}{row['media_key']}",
                                frame_urls=tuple(frames), duration_s=float(row["duration_s"]), fps=float(row["fps"]),
                                annotation=annotations.get(sample_id)))
    written = export_tasks(items, out_path, model_version=f"vigil:{version.tag}")
    if config_path is not None:
        Path(config_path).write_text(labeling_config(load_taxonomy()))
    return ExportReport(Path(written), version.tag, len(items), Path(config_path) if config_path else None,
                        n_needs_grounding=sum(1 for i in items if i.annotation is not None and i.annotation.label_only))


def _chosen_records(store: ObjectStore, table) -> dict[str, Annotation]:
    from vigil.core.annotation import annotation_key

    out: dict[str, Annotation] = {}
    for sample_id, annotation_id in zip(table["sample_id"], table["annotation_id"]):
        if isinstance(annotation_id, str):
            out[sample_id] = Annotation.model_validate(store.get_json(annotation_key(sample_id, annotation_id)))
    return out


def import_export(rt: Runtime, export_path: str | Path) -> ImportReport:
    """Store every human annotation of a Label Studio export as a new record; returns (count, problems)."""
    with workspace_lock(rt.workspace, ANNOTATE_LOCK):
        return _import_export(rt, export_path)


def _import_export(rt: Runtime, export_path: str | Path) -> ImportReport:
    from vigil.annotate.labelstudio.imports import import_annotations
    from vigil.core.grammar import PROMPT_VERSION

    result = import_annotations(export_path, prompt_version=rt.params.annotate.prompt_version or PROMPT_VERSION,
                                taxonomy_version=load_taxonomy().version)
    keys = [write_annotation(rt.store, a) for a in result.annotations]
    rt.ledger.append(
        "annotation.import", inputs={"export": str(export_path), "export_sha256": sha256_file(export_path)},
        outputs={"annotations": [k.rsplit("/", 1)[1].removesuffix(".json") for k in keys]},
        params={"annotators": sorted({a.provenance.annotator for a in result.annotations})})
    return ImportReport(len(keys), tuple(str(p) for p in result.problems))
