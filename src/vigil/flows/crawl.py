"""The ``crawl`` flow: fetch new clips from the configured sources into the store."""

from __future__ import annotations

from prefect import flow, get_run_logger, task

from vigil.core.progress import periodic_lines
from vigil.crawl.crawler import CrawlReport
from vigil.flows.resources import CRAWL_POLICY, snapshot_ref, task_runtime
from vigil.jobs.crawl import resolved_sources, run_crawl


@task(name="crawl-sources", **CRAWL_POLICY)
def crawl_sources(params_ref: str) -> CrawlReport:
    # Safe to retry: the crawler resumes from its state and never stores a clip twice.
    rt, logger = task_runtime(params_ref), get_run_logger()
    with resolved_sources(rt.params, rt.workspace) as sources:
        report = run_crawl(rt, sources, progress=periodic_lines("crawl", logger.info))
    logger.info("crawl: %s", report.summary())
    return report


@flow(name="crawl")
def crawl_flow(params_file: str | None = None, params_ref: str | None = None) -> CrawlReport:
    """Crawl every configured source once."""
    return crawl_sources(snapshot_ref(params_file, params_ref))
