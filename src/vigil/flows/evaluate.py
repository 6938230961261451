"""The evaluate flow: a candidate against the champion on the fixed set and the recent slice, the
gate's decision (store + ledger), the report, the metrics repository and, on a pass, the champion
alias: one task per step of :mod:`vigil.jobs.evaluate`'s gate.

Evaluation runs models, so it takes the global GPU slot like training; each evaluation is cached by
(model, evaluation set, settings), so a retry or a re-run only computes what is missing.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.concurrency.sync import concurrency

from vigil.flows.resources import (
    EVALUATE_POLICY,
    GPU_LIMIT,
    RECORD_POLICY,
    ensure_gpu_limit,
    snapshot_ref,
    task_runtime,
)
from vigil.jobs import evaluate as steps


@task(name="gate-evaluate", **EVALUATE_POLICY)
def evaluate_task(candidate: str, params_ref: str, champion: str | None) -> steps.GateEvaluations:
    rt = task_runtime(params_ref)
    with concurrency(GPU_LIMIT, occupy=1):
        return steps.evaluate_for_gate(rt, candidate, champion=champion)


@task(name="gate-decide")
def decide_task(runs: steps.GateEvaluations, params_ref: str):
    return steps.decide_gate(task_runtime(params_ref), runs)


@task(name="gate-record", **RECORD_POLICY)
def record_task(decision, params_ref: str) -> steps.GateRecord:
    return steps.record_decision(task_runtime(params_ref), decision)


@task(name="gate-report", **RECORD_POLICY)
def report_task(runs: steps.GateEvaluations, decision, params_ref: str) -> tuple[Path, Path]:
    return steps.report_gate(task_runtime(params_ref), runs, decision)


@task(name="gate-metrics-repo", **RECORD_POLICY)
def metrics_task(runs: steps.GateEvaluations, decision_id: str, params_ref: str) -> str:
    return steps.compare_metrics(task_runtime(params_ref), runs, decision_id)


@task(name="gate-promote", **RECORD_POLICY)
def promote_task(candidate: str, record: steps.GateRecord, params_ref: str) -> bool:
    return steps.promote_on_pass(task_runtime(params_ref), candidate, record)


@flow(name="evaluate")
def evaluate_flow(candidate: str, params_file: str | None = None, champion: str | None = None,
                  promote: bool = True, params_ref: str | None = None) -> steps.GateOutcome:
    """Gate a candidate model version (mv-…) against the champion and record the decision."""
    ref = snapshot_ref(params_file, params_ref)
    ensure_gpu_limit()
    runs = evaluate_task(candidate, ref, champion)
    decision = decide_task(runs, ref)
    record = record_task(decision, ref)
    html, md = report_task(runs, decision, ref)
    diff = metrics_task(runs, decision.decision_id, ref)
    promoted = promote_task(runs.candidate, record, ref) if promote else False
    return steps.GateOutcome(decision, record.record_uri, html, md, diff, promoted)
