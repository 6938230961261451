"""The ``crawl`` flow: fetch new clips from the configured sources into the store."""

from __future__ import annotations

from prefect import flow, task

from vigil.crawl.crawler import CrawlReport
from vigil.flows.resources import CRAWL_POLICY, snapshot_ref, task_runtime
from vigil.jobs.crawl import resolved_sources, run_crawl


@task(name="crawl-sources", **CRAWL_POLICY)
def crawl_sources(params_ref: str) -> CrawlReport:
    # Safe to retry: the crawler resumes from its state and never stores a clip twice.
    rt = task_runtime(params_ref)
    with resolved_sources(rt.params, rt.workspace) as sources:
        return run_crawl(rt, sources)


@flow(name="crawl")
def crawl_flow(params_file: str | None = None, params_ref: str | None = None) -> CrawlReport:
    """Crawl every configured source once."""
    return crawl_sources(snapshot_ref(params_file, params_ref))
