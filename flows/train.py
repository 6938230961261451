"""The train flow: `dvc repro` of prepare → pretrain → sft → grpo → heldout for the dataset version
in params (train.dataset), under the global GPU concurrency limit, then the candidate's registration.

The stages themselves are DVC's (resumable, cached by params and data); the flow adds what DVC does
not: one GPU job at a time across every flow and worker, retries on a crash (a retry resumes from the
last checkpoint), and the registry record with its ledger event.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.concurrency.sync import concurrency

GPU_LIMIT = "gpu"  # global concurrency limit shared by every GPU flow (created with one slot if missing)


def ensure_gpu_limit(slots: int = 1) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(GPU_LIMIT)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=GPU_LIMIT, limit=slots))


@task(name="dvc-repro", retries=1, retry_delay_seconds=5, timeout_seconds=6 * 3600)
def repro_task(project: str, params_file: str | None, force: bool = False) -> dict:
    from vigil.jobs.runtime import load_runtime
    from vigil.jobs.train import collect_metrics, repro

    load_runtime(params_file)  # bad config or an unreachable store fails before DVC starts
    with concurrency(GPU_LIMIT, occupy=1):
        repro(project, force=force)
    return collect_metrics(project)


@task(name="register-candidate", retries=2, retry_delay_seconds=2)
def register_task(project: str, params_file: str | None) -> dict:
    from vigil.jobs.runtime import load_runtime
    from vigil.jobs.train import register_candidate

    return register_candidate(load_runtime(params_file), project)


@flow(name="train")
def train_flow(params_file: str | None = None, project: str = ".", force: bool = False) -> dict:
    """Train SFT then GRPO on the labelled version and register the result as a candidate."""
    from vigil.jobs.train import project_dir

    ensure_gpu_limit()
    folder = str(project_dir(project))
    repro_task(folder, params_file, force)
    return register_task(folder, params_file)
