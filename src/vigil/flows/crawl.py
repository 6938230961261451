"""The ``crawl`` flow: fetch new clips from the configured sources into the store.

A crawl already running on the workspace is a refusal, not a crash: the flow takes the workspace's
crawl lock before its task starts and, when another run holds it, ends Failed with the lock's one-line
message (naming the holder) and no traceback; whoever called the flow gets the
:class:`~vigil.io.locks.WorkspaceBusy` (exit 7 on the command line). The task is not retried on such a
refusal either: the other crawl would still be running 30 s later, and this one has nothing to add.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.states import State

from vigil.config.settings import load_settings
from vigil.core.progress import periodic_lines
from vigil.crawl.crawler import CrawlReport
from vigil.flows.resources import CRAWL_POLICY, refused, snapshot_ref, task_runtime
from vigil.io.locks import WorkspaceBusy, workspace_lock
from vigil.jobs.crawl import LOCK_NAME, resolved_sources, run_crawl


@task(name="crawl-sources", **CRAWL_POLICY)
def crawl_sources(params_ref: str) -> CrawlReport:
    # Safe to retry: the crawler resumes from its state and never stores a clip twice.
    rt, logger = task_runtime(params_ref), get_run_logger()
    with resolved_sources(rt.params, rt.workspace) as sources:
        report = run_crawl(rt, sources, progress=periodic_lines("crawl", logger.info))
    logger.info("crawl: %s", report.summary())
    for outcome in report.sources:  # a source that gave nothing says why (the crawler warns too)
        logger.info("%s", outcome.line())
    return report


@flow(name="crawl")
def crawl_flow(params_file: str | None = None, params_ref: str | None = None) -> CrawlReport | State:
    """Crawl every configured source once; refused (Failed, WorkspaceBusy) while another crawl runs here."""
    ref = snapshot_ref(params_file, params_ref)
    try:
        # Held across the task (same thread: re-entered by run_crawl), so none can start in between.
        with workspace_lock(load_settings().workspace_path, LOCK_NAME):
            return crawl_sources(ref)
    except WorkspaceBusy as exc:
        return refused("crawl", exc)

