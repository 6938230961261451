"""The ``crawl`` flow: fetch new clips from the configured sources into the store."""

from __future__ import annotations

from prefect import flow, task

from vigil.jobs.crawl import resolved_sources, run_crawl
from vigil.jobs.runtime import load_runtime


@task(name="crawl-sources", retries=2, retry_delay_seconds=30, timeout_seconds=3600)
def crawl_sources(params_file: str | None = None) -> dict:
    # Safe to retry: the crawler resumes from its state and never stores a clip twice.
    rt = load_runtime(params_file)
    with resolved_sources(rt.params, rt.workspace) as sources:
        report = run_crawl(rt.store, rt.workspace, rt.params, sources, ledger=rt.ledger)
    return {
        "discovered": report.discovered, "stored": report.stored, "duplicates": report.duplicates,
        "near_duplicates": report.near_duplicates, "quarantined": report.quarantined,
        "skipped": report.skipped, "failed": report.failed, "elapsed_s": round(report.elapsed_s, 2),
        "problems": [f"{p.reason}: {p.url}" for p in report.problems][:50],
    }


@flow(name="crawl")
def crawl_flow(params_file: str | None = None) -> dict:
    """Crawl every configured source once."""
    return crawl_sources(params_file)
