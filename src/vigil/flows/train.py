"""The train flow: `dvc repro` of prepare → pretrain → sft → grpo → heldout for the dataset version
in params (train.dataset), under the global GPU concurrency limit, then the candidate's registration.

The stages themselves are DVC's (resumable, cached by params and data); the flow adds what DVC does
not: one GPU job at a time across every flow and worker, retries on a crash (a retry resumes from the
last checkpoint), and the registry record with its ledger event. The flow holds the workspace's
``train`` lock from the first task to the last (the tasks run in the flow's thread and take it again),
so a second training cannot slip in between the repro and the registration.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.concurrency.sync import concurrency

from vigil.core.model_version import ModelVersion
from vigil.flows.resources import GPU_LIMIT, RECORD_POLICY, TRAIN_POLICY, ensure_gpu_limit, snapshot_ref, task_runtime


@task(name="dvc-repro", **TRAIN_POLICY)
def repro_task(project: str, params_ref: str, force: bool = False) -> dict[str, Any]:
    from vigil.jobs.train import collect_metrics, repro

    rt = task_runtime(params_ref)  # bad config or an unreachable store fails before DVC starts
    with concurrency(GPU_LIMIT, occupy=1):
        repro(rt, project, force=force)
    return collect_metrics(project)


@task(name="register-candidate", **RECORD_POLICY)
def register_task(project: str, params_ref: str) -> ModelVersion:
    from vigil.jobs.train import register_candidate

    return register_candidate(task_runtime(params_ref), project)


@flow(name="train")
def train_flow(params_file: str | None = None, params_ref: str | None = None, project: str = ".",
               force: bool = False) -> ModelVersion:
    """Train SFT then GRPO on the labelled version and register the result as a candidate."""
    from vigil.config.settings import load_settings
    from vigil.io.locks import workspace_lock
    from vigil.jobs.train import LOCK_NAME, project_dir

    ref = snapshot_ref(params_file, params_ref)
    folder = str(project_dir(project))
    with workspace_lock(load_settings().workspace_path, LOCK_NAME):
        ensure_gpu_limit()
        repro_task(folder, ref, force)
        return register_task(folder, ref)
