"""What every training stage records: metric rows for ``dvc plots``, a summary for ``dvc metrics``,
checkpoints mirrored to the store, and a fingerprint that says whether a checkpoint may be resumed."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from vigil.io.store import ObjectStore

log = logging.getLogger(__name__)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of a stage's inputs (params, data identity, code version)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class MetricLog:
    """Rows of step metrics in a CSV file that ``dvc plots`` reads; appends across a resume."""

    def __init__(self, path: str | Path, resume_from_step: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        if resume_from_step and self.path.is_file():
            with self.path.open() as fh:
                self.rows = [r for r in csv.DictReader(fh) if int(float(r["step"])) <= resume_from_step]
        self._write()

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns or ["step"])
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def mirror_checkpoint(store: ObjectStore | None, local: str | Path, prefix: str) -> None:
    """Upload a checkpoint (file or folder) under ``prefix`` in the store, checksum-verified.

    A failed upload is logged, not raised: the local checkpoint still resumes this machine.
    """
    if store is None:
        return
    local = Path(local)
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    try:
        for f in files:
            rel = f.name if local.is_file() else f.relative_to(local).as_posix()
            store.put_file(f"{prefix.rstrip('/')}/{rel}", f)
    except Exception as exc:  # the store may be down; training goes on
        log.warning("could not mirror checkpoint %s to the store: %s", local, exc)
