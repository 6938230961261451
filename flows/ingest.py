"""The ``ingest`` flow: crawled clips → a validated dataset version in the data registry."""

from __future__ import annotations

import dataclasses

from prefect import flow, task
from prefect.context import TaskRunContext

from vigil.core.hashing import sha256_json
from vigil.io.ledger import code_revision
from vigil.jobs.ingest import ingest
from vigil.jobs.runtime import load_runtime


def ingest_cache_key(context: TaskRunContext, arguments: dict) -> str:
    """Same crawled records + same params + same code = same dataset version: skip the work.

    Prefect's default key hashes only the arguments (here a file name), which would wrongly reuse
    a result after new clips were crawled; this key hashes what the result actually depends on.
    """
    rt = load_runtime(arguments.get("params_file"), check_store=False)
    records = list(rt.store.list_keys("provenance/"))
    return sha256_json({
        "records": records, "params": rt.params.model_dump(mode="json"), "code": code_revision(),
        "store": rt.store.describe(), "workspace": str(rt.workspace),
    })


@task(name="ingest-batch", retries=1, retry_delay_seconds=10, timeout_seconds=3600,
      cache_key_fn=ingest_cache_key, persist_result=True)
def ingest_batch(params_file: str | None = None) -> dict:
    # Safe to retry: per-clip work is cached in the workspace and publishing is all-or-nothing.
    rt = load_runtime(params_file)
    report = ingest(rt.store, rt.workspace, rt.params, ledger=rt.ledger)
    result = dataclasses.asdict(report)
    result["problems"] = [dataclasses.asdict(p) for p in report.problems]
    return result


@flow(name="ingest")
def ingest_flow(params_file: str | None = None) -> dict:
    """Probe, sample, split and validate everything crawled; publish a new version if it passes."""
    return ingest_batch(params_file)
