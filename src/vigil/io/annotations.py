"""Annotation records and re-annotation flags in the store (append-only, never overwritten)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone

from vigil.core.annotation import Annotation, annotation_key
from vigil.core.hashing import sha256_json
from vigil.io.store import ObjectExists, ObjectStore

log = logging.getLogger(__name__)

ANNOTATIONS_PREFIX = "annotations/"
FLAGS_PREFIX = "annotation-flags/"


def write_annotation(store: ObjectStore, annotation: Annotation) -> str:
    """Store one record under its content id; writing the same record twice is a no-op."""
    key = annotation_key(annotation.sample_id, annotation.annotation_id)
    try:
        store.put_json(key, annotation.model_dump(mode="json"), if_absent=True)
    except ObjectExists:
        pass
    return key


def load_annotations(store: ObjectStore, sample_ids: Iterable[str] | None = None) -> dict[str, list[Annotation]]:
    """Every record per sample, oldest first; an unreadable record is logged and skipped."""
    wanted = set(sample_ids) if sample_ids is not None else None
    found: dict[str, list[Annotation]] = {}
    for key in store.list_keys(ANNOTATIONS_PREFIX):
        sample_id = key.split("/")[2] if key.count("/") >= 3 else ""
        if wanted is not None and sample_id not in wanted:
            continue
        try:
            annotation = Annotation.model_validate(store.get_json(key))
        except Exception as exc:
            log.warning("skipping unreadable annotation %s: %s", key, exc)
            continue
        found.setdefault(annotation.sample_id, []).append(annotation)
    for records in found.values():
        records.sort(key=lambda a: a.created_at)
    return found


def flag_sample(store: ObjectStore, sample_id: str, *, by: str, reason: str) -> str:
    """Record a person's request to re-annotate ``sample_id``; returns the flag's key."""
    record = {"sample_id": sample_id, "by": by, "reason": reason,
              "time": datetime.now(timezone.utc).isoformat()}
    key = f"{FLAGS_PREFIX}{sample_id}/{sha256_json(record)[:16]}.json"
    store.put_json(key, record, if_absent=True)
    return key


def open_flags(store: ObjectStore, annotations: dict[str, list[Annotation]]) -> dict[str, dict]:
    """Flags not yet answered: the newest flag per sample with no annotation made after it."""
    flags: dict[str, dict] = {}
    for key in store.list_keys(FLAGS_PREFIX):
        flag = store.get_json(key)
        current = flags.get(flag["sample_id"])
        if current is None or flag["time"] > current["time"]:
            flags[flag["sample_id"]] = flag
    return {sid: flag for sid, flag in flags.items()
            if not any(a.created_at > flag["time"] for a in annotations.get(sid, []))}
