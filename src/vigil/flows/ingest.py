"""The ``ingest`` flow: crawled clips → a validated dataset version in the data registry."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.context import TaskRunContext

from vigil.core.hashing import sha256_json
from vigil.core.progress import periodic_lines
from vigil.flows.resources import INGEST_POLICY, snapshot_ref, task_runtime
from vigil.io.ledger import code_revision
from vigil.jobs.ingest import IngestReport, excluded_samples, ingest
from vigil.jobs.runtime import load_runtime


def ingest_cache_key(context: TaskRunContext, arguments: dict) -> str:
    """Same crawled records + same params + same code = same dataset version: skip the work.

    Prefect's default key hashes only the arguments (here a snapshot hash), which would wrongly reuse
    a result after new clips were crawled; this key hashes what the result actually depends on: the
    crawl records, the raw objects present (one missing from the store is left out for a run only,
    and a restored one must be ingested), and the samples an operator excluded (``vigil data exclude``).
    """
    rt = load_runtime(params_ref=arguments["params_ref"], check_store=False)
    records = list(rt.store.list_keys("provenance/"))
    return sha256_json({
        "records": records, "raw": list(rt.store.list_keys("raw/")), "excluded": excluded_samples(rt.workspace),
        "params": rt.params_hash, "code": code_revision(), "store": rt.store.describe(),
        "workspace": str(rt.workspace),
    })


@task(name="ingest-batch", cache_key_fn=ingest_cache_key, persist_result=True, **INGEST_POLICY)
def ingest_batch(params_ref: str) -> IngestReport:
    # Safe to retry: per-clip work is cached in the workspace and publishing is all-or-nothing.
    logger = get_run_logger()
    report = ingest(task_runtime(params_ref), progress=periodic_lines("ingest", logger.info))
    logger.info("ingest: %s", report.summary())
    return report


@flow(name="ingest")
def ingest_flow(params_file: str | None = None, params_ref: str | None = None) -> IngestReport:
    """Probe, sample, split and validate everything crawled; publish a new version if it passes."""
    return ingest_batch(snapshot_ref(params_file, params_ref))
