"""The evaluate flow: a candidate against the champion on the fixed set and the recent slice, the
gate's decision (store + ledger), the report, and, on a pass, the champion alias.

Evaluation runs models, so it takes the global GPU slot like training; each evaluation is cached by
(model, evaluation set, settings), so a retry or a re-run only computes what is missing.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.concurrency.sync import concurrency

from flows.train import GPU_LIMIT, ensure_gpu_limit


@task(name="gate", retries=1, retry_delay_seconds=5, timeout_seconds=3 * 3600)
def gate_task(candidate: str, params_file: str | None, champion: str | None, promote: bool) -> dict:
    from vigil.jobs.evaluate import gate
    from vigil.jobs.runtime import load_runtime

    rt = load_runtime(params_file)
    with concurrency(GPU_LIMIT, occupy=1):
        outcome = gate(rt, candidate, champion=champion, promote=promote)
    return {"decision": outcome.decision.model_dump(mode="json"), "record": outcome.record_uri,
            "report_html": str(outcome.report_html), "report_md": str(outcome.report_md),
            "metrics_diff": outcome.metrics_diff, "promoted": outcome.promoted}


@flow(name="evaluate")
def evaluate_flow(candidate: str, params_file: str | None = None, champion: str | None = None,
                  promote: bool = True) -> dict:
    """Gate a candidate model version (mv-…) against the champion and record the decision."""
    ensure_gpu_limit()
    return gate_task(candidate, params_file, champion, promote)
