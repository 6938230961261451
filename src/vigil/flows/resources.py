"""What flows share: the global GPU concurrency limit, the step policies, the run's parameter snapshot."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.states import Failed, State

from vigil.config.errors import is_user_error
from vigil.io.locks import WorkspaceBusy
from vigil.jobs.runtime import Runtime, load_runtime

GPU_LIMIT = "gpu"  # global concurrency limit shared by every GPU flow (created with one slot if missing)


def retry_unless_user_error(task, task_run, state) -> bool:
    """Prefect's retry condition: retry crashes and outages, never a user error (bad config, a name that
    does not exist, bad input, another run holding the workspace), which would fail the same way again
    after the delay."""
    try:
        state.result()
    except Exception as exc:  # the task's own exception, re-raised by result()
        return not is_user_error(exc)
    return True


def _policy(retries: int, retry_delay_seconds: float, timeout_seconds: float | None = None) -> dict:
    return dict(retries=retries, retry_delay_seconds=retry_delay_seconds, timeout_seconds=timeout_seconds,
                retry_condition_fn=retry_unless_user_error)


# Step policies, declared on the @task where they apply (Metaflow's @retry/@timeout, in Prefect terms).
HOUR = 3600
CRAWL_POLICY = _policy(2, 30, HOUR)
INGEST_POLICY = _policy(1, 10, HOUR)
ANNOTATE_POLICY = _policy(1, 30, 6 * HOUR)
TRAIN_POLICY = _policy(1, 5, 6 * HOUR)
EVALUATE_POLICY = _policy(1, 5, 3 * HOUR)
RECORD_POLICY = _policy(2, 2)  # small store writes: cheap to retry


def ensure_gpu_limit(slots: int = 1) -> None:
    """Create the ``gpu`` global concurrency limit if this Prefect API does not have it yet."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(GPU_LIMIT)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=GPU_LIMIT, limit=slots))


def snapshot_ref(params_file: str | None, params_ref: str | None) -> str:
    """The parameter snapshot a flow hands its tasks: ``params_ref`` when a parent flow gave one, else
    ``params_file`` (or the configured default) loaded once, checked and stored."""
    return params_ref or load_runtime(params_file).params_hash


def task_runtime(params_ref: str) -> Runtime:
    """The runtime inside a task: settings from the environment, parameters from the run's snapshot."""
    return load_runtime(params_ref=params_ref)


def refused(job: str, exc: WorkspaceBusy) -> State:
    """A flow's end when another run holds its lock: one log line, a Failed state whose result is
    ``exc`` (so the caller gets the WorkspaceBusy itself, exit 7 on the command line), no traceback."""
    get_run_logger().error("%s refused: %s", job, exc)
    return Failed(message=str(exc), data=exc)
